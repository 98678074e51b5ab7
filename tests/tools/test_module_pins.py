"""The pinned Go builds (tools/lib/cached_build.sh, tools/kube/bootstrap.sh, tools/engine/bootstrap.sh):
a module that is not the one a committed go.sum pins stops the build with one clear message.

Runs the bootstraps' own verification step (``download_modules`` then ``verify_modules``, as
``tools/kube/bootstrap.sh`` runs it before compiling) on a one-module wrapper against a local file proxy
and a module cache of its own, with the checksum database off (the worst case: nothing but go.sum
protects the build). The cases: the intact module passes; a proxy serving other bits, a module
directory changed in the cache, an edited hash in go.sum and a module without a pin are each refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from rungs import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE, VERSION = "example.local/pinned", "v1.0.0"
REFUSAL = "module checksum verification failed against"
SOURCE = 'package pinned\n\n// Answer is what the build links.\nconst Answer = 42\n'


def find_go() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if found is None:
        unavailable("the Go toolchain", "go is not on PATH nor /usr/local/go/bin/go")
    return str(found)


def publish(proxy: Path, source: str) -> None:
    """Put MODULE@VERSION with ``source`` on a GOPROXY=file:// directory (the proxy protocol's files)."""
    versions = proxy / MODULE / "@v"
    versions.mkdir(parents=True, exist_ok=True)
    go_mod = f"module {MODULE}\n\ngo 1.22\n"
    (versions / "list").write_text(f"{VERSION}\n")
    (versions / f"{VERSION}.info").write_text(json.dumps({"Version": VERSION, "Time": "2026-01-01T00:00:00Z"}))
    (versions / f"{VERSION}.mod").write_text(go_mod)
    with zipfile.ZipFile(versions / f"{VERSION}.zip", "w") as archive:
        archive.writestr(f"{MODULE}@{VERSION}/go.mod", go_mod)
        archive.writestr(f"{MODULE}@{VERSION}/pinned.go", source)


@dataclass(frozen=True)
class Wrapper:
    """A wrapper module requiring MODULE, its go.sum (the pins) and the Go environment it builds in."""

    dir: Path
    proxy: Path
    go: str
    tmp: Path

    @property
    def pins(self) -> Path:
        return self.dir / "go.sum"

    def env(self, modcache: Path) -> dict[str, str]:
        return {**os.environ, "PATH": f"{Path(self.go).parent}:{os.environ['PATH']}", "GOMODCACHE": str(modcache),
                "GOPROXY": f"file://{self.proxy}", "GOSUMDB": "off", "GOCACHE": str(self.tmp / "gocache"),
                "GOFLAGS": "", "GOENV": "off"}

    def verification(self, modcache: Path) -> subprocess.CompletedProcess[str]:
        """The kube bootstrap's verification step over this wrapper."""
        script = ('source tools/kube/bootstrap.sh && pinned_go_env && download_modules "$1" "$2" '
                  '&& verify_modules "$1" "$2" "$3" && echo verified')
        return subprocess.run(["bash", "-c", script, "verify", str(self.dir), str(self.pins), MODULE],
                              cwd=REPO_ROOT, env=self.env(modcache), capture_output=True, text=True, timeout=120)


def writable(path: Path) -> None:
    """Go makes module directories read-only; let tmp_path's clean-up remove them."""
    if path.exists():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)


@pytest.fixture
def wrapper(tmp_path: Path) -> Wrapper:
    """The pins are made once, as for the real wrappers: from a download (here, of the intact module)."""
    go = find_go()
    proxy, directory = tmp_path / "proxy", tmp_path / "wrapper"
    publish(proxy, SOURCE)
    directory.mkdir()
    (directory / "go.mod").write_text(f"module lastmile.local/test/wrapper\n\ngo 1.22\n\nrequire {MODULE} {VERSION}\n")
    made = Wrapper(directory, proxy, go, tmp_path)
    modcache = tmp_path / "pinning-modcache"
    listed = subprocess.run([go, "mod", "download", "-json", f"{MODULE}@{VERSION}"], cwd=directory,
                            env={**made.env(modcache), "GOFLAGS": "-mod=mod"}, capture_output=True, text=True,
                            timeout=60, check=True)
    info = json.loads(listed.stdout)
    made.pins.write_text(f"{MODULE} {VERSION} {info['Sum']}\n{MODULE} {VERSION}/go.mod {info['GoModSum']}\n")
    writable(modcache)
    return made


@pytest.fixture
def modcache(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "modcache"
    yield path
    writable(path)


def assert_refused(result: subprocess.CompletedProcess[str], wrapper: Wrapper, go_says: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verified" not in result.stdout
    assert f"{REFUSAL} {wrapper.pins}" in result.stderr, result.stderr
    assert go_says in result.stderr, result.stderr
    assert "nothing is built or published" in result.stderr


def test_the_pinned_module_passes(wrapper: Wrapper, modcache: Path) -> None:
    result = wrapper.verification(modcache)
    assert result.returncode == 0 and result.stdout.strip() == "verified", result.stderr


def test_a_proxy_serving_other_bits_is_refused(wrapper: Wrapper, modcache: Path) -> None:
    publish(wrapper.proxy, SOURCE.replace("42", "43"))
    assert_refused(wrapper.verification(modcache), wrapper, "SECURITY ERROR")


def test_a_module_changed_in_the_module_cache_after_its_download_is_refused(wrapper: Wrapper,
                                                                           modcache: Path) -> None:
    assert wrapper.verification(modcache).returncode == 0
    source = modcache / f"{MODULE}@{VERSION}" / "pinned.go"
    source.chmod(0o644)
    source.write_text(SOURCE.replace("42", "43"))
    assert_refused(wrapper.verification(modcache), wrapper, "dir has been modified")


def test_an_edited_hash_in_go_sum_is_refused(wrapper: Wrapper, modcache: Path) -> None:
    lines = wrapper.pins.read_text().splitlines()
    pinned = lines[0].rsplit(" ", 1)[1]
    lines[0] = lines[0].replace(pinned, pinned[:5] + ("A" if pinned[5] != "A" else "B") + pinned[6:])
    wrapper.pins.write_text("\n".join(lines) + "\n")
    assert_refused(wrapper.verification(modcache), wrapper, "checksum mismatch")


def test_a_module_without_a_pin_is_refused_even_with_the_checksum_database_off(wrapper: Wrapper,
                                                                              modcache: Path) -> None:
    # Only the go.mod line is left: `go mod download` alone would fetch the module on trust.
    wrapper.pins.write_text(wrapper.pins.read_text().splitlines()[1] + "\n")
    assert_refused(wrapper.verification(modcache), wrapper, "missing go.sum entry")


def test_the_provider_modules_directory_hash_is_the_one_go_records(wrapper: Wrapper, modcache: Path) -> None:
    """tools/engine/bootstrap.sh checks the copied provider module with module_dir_hash against K8S_MODULE_SUM."""
    assert wrapper.verification(modcache).returncode == 0
    directory = modcache / f"{MODULE}@{VERSION}"

    def dir_hash() -> str:
        return subprocess.run(["bash", "-c", 'source tools/lib/cached_build.sh && module_dir_hash "$1" "$2"', "hash",
                               str(directory), f"{MODULE}@{VERSION}"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()

    assert dir_hash() == wrapper.pins.read_text().split()[2]
    (directory / "pinned.go").chmod(0o644)
    (directory / "pinned.go").write_text(SOURCE.replace("42", "43"))
    assert dir_hash() != wrapper.pins.read_text().split()[2]



def test_the_engine_cache_is_kept_unless_it_was_built_under_other_pins(tmp_path: Path) -> None:
    """Keyed by version: a cache recording today's pins, or none (built before pinning), is kept; other pins rebuild."""
    def kept(buildinfo: str | None) -> bool:
        env = {**os.environ, "LASTMILE_ENGINE_HOME": str(tmp_path / "engine-home")}
        script = ('source tools/engine/bootstrap.sh && mkdir -p "$ENGINE_DIR" && rm -f "$ENGINE_DIR/BUILDINFO" && '
                  'if [[ -n "$1" ]]; then printf "%s\\n" "${1//@PINS@/$(pins_hash)}" >"$ENGINE_DIR/BUILDINFO"; fi && '
                  'pins_match')
        return subprocess.run(["bash", "-c", script, "pins", buildinfo or ""], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=30).returncode == 0

    assert kept("pulumi=v3.274.1 (built)\npins=@PINS@")
    assert kept("pulumi=v3.274.1 (built)")
    assert kept(None)
    assert not kept("pulumi=v3.274.1 (built)\npins=0123456789abcdef")
