"""The output marker is a list of file names, never of paths: a `.lastmile-output` that lists a traversal
(`..`), an absolute path or a symlink is refused (exit 2) with nothing written or deleted, and lastmile
writes through no symlink. Each case runs on a temporary directory with a victim file beside the output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lastmile.common import REPO_ROOT, Refused
from lastmile.exitcodes import ExitCode
from lastmile.outputs import MARKER, check_targets, claim_dir, name_problem, write_files

VICTIM_TEXT = "someone else's file\n"


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """(out, victim): a marked output directory lastmile wrote (a.yaml, b.yaml) and a file beside it."""
    victim = tmp_path / "victim" / "important.txt"
    victim.parent.mkdir()
    victim.write_text(VICTIM_TEXT)
    out = claim_dir(tmp_path / "out", option="--out")
    out.commit(out.write_all({"a.yaml": "a\n", "b.yaml": "b\n"}), prune=True)
    return out.path, victim


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (f"-> {os.readlink(p)}" if p.is_symlink() else p.read_text())
            for p in sorted(root.rglob("*")) if p.is_symlink() or p.is_file()}


def add_to_marker(out: Path, *entries: str) -> None:
    with (out / MARKER).open("a") as marker:
        marker.writelines(f"{entry}\n" for entry in entries)


@pytest.mark.parametrize("entry, problem", [
    ("../victim/important.txt", "a path, not a file name that climbs out with '..'"),
    ("..", "not a file name"),
    (".", "not a file name"),
    ("sub/../../victim/important.txt", "climbs out with '..'"),
    ("victim/important.txt", "a path, not a file name"),
    ("..\\victim\\important.txt", "a path, not a file name"),
    ("ABSOLUTE", "an absolute path"),
])
def test_a_marker_listing_a_path_is_refused_and_nothing_is_deleted(site, entry, problem):
    out, victim = site
    entry = str(victim) if entry == "ABSOLUTE" else entry
    add_to_marker(out, entry)
    before = snapshot(out.parent)
    with pytest.raises(Refused) as refused:
        claim_dir(out, option="--out")
    message = str(refused.value)
    assert f"line 4 {entry!r} (" in message and problem in message, message
    assert "nothing was written or deleted" in message and "allowed: plain file names" in message
    assert f"fix: remove those lines from {out / MARKER}" in message
    assert snapshot(out.parent) == before


def test_a_marker_listing_a_symlink_is_refused(site):
    out, victim = site
    (out / "link.yaml").symlink_to(victim)
    add_to_marker(out, "link.yaml")
    with pytest.raises(Refused, match=r"line 4 'link.yaml' \(a symlink \(to .*important.txt\)"):
        claim_dir(out, option="--out")
    assert victim.read_text() == VICTIM_TEXT and (out / "link.yaml").is_symlink()


def test_every_bad_entry_is_named_at_once(site):
    out, victim = site
    add_to_marker(out, "../x", str(victim))
    with pytest.raises(Refused) as refused:
        claim_dir(out, option="--out")
    assert "line 4 '../x'" in str(refused.value) and f"line 5 '{victim}'" in str(refused.value)


def test_a_symlink_where_lastmile_writes_is_refused_not_followed(site):
    out, victim = site
    (out / "a.yaml").unlink()
    (out / "a.yaml").symlink_to(victim)  # a rendered file swapped for a link to someone else's
    with pytest.raises(Refused, match=r"line 2 'a.yaml' \(a symlink"):
        claim_dir(out, option="--out")
    with pytest.raises(Refused, match=r"lastmile would write 'a.yaml', which is a symlink"):
        write_files(out, {"a.yaml": "overwritten\n", "c.yaml": "c\n"})
    assert victim.read_text() == VICTIM_TEXT and not (out / "c.yaml").exists()  # checked before any write


def test_a_symlinked_marker_or_directory_is_refused(site, tmp_path):
    out, victim = site
    linked = tmp_path / "linked-out"
    linked.symlink_to(out)
    with pytest.raises(Refused, match="is a symlink .* lastmile does not write through one"):
        claim_dir(linked, option="--out")
    (out / MARKER).unlink()
    (out / MARKER).symlink_to(victim)
    with pytest.raises(Refused, match=f"its {MARKER} is a symlink"):
        claim_dir(out, option="--out")
    assert victim.read_text() == VICTIM_TEXT


def test_a_clean_marker_still_prunes_only_its_own_files(site):
    out, victim = site
    (out / "theirs.yaml").write_text("kept")
    again = claim_dir(out, option="--out")
    assert again.commit(again.write_all({"a.yaml": "a2\n"}), prune=True) == ["b.yaml"]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "a.yaml", "theirs.yaml"]
    assert victim.read_text() == VICTIM_TEXT


@pytest.mark.parametrize("name", ["", ".", "..", "/etc/x", "a/b", "a\\b", "a\nb"])
def test_names_that_are_not_plain_file_names(name):
    assert name_problem(name) is not None
    with pytest.raises(Refused):
        check_targets(Path("/nonexistent"), [name])


def test_plain_names_pass():
    for name in ("aws-prod.json", "deployment-serving-iris-blue.yaml", ".hidden", "a..b"):
        assert name_problem(name) is None, name


def test_render_refuses_a_traversal_marker_end_to_end(tmp_path):
    """`lastmile render --out` of a real stack, then a marker pointing out of the directory: exit 2."""
    victim = tmp_path / "victim" / "important.txt"
    victim.parent.mkdir()
    victim.write_text(VICTIM_TEXT)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LASTMILE_LOG_DIR": str(tmp_path / "logs")}

    def render() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lastmile", "render", "onprem-local", "--out", str(out)],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)

    first = render()
    assert first.returncode == ExitCode.OK, first.stderr
    add_to_marker(out, "../victim/important.txt")
    before = snapshot(tmp_path)
    done = render()
    assert done.returncode == ExitCode.REFUSED, done.stdout + done.stderr
    assert "'../victim/important.txt'" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(tmp_path) == before
