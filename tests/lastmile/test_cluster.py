"""lastmile/cluster.py without a cluster: what `down` may signal, the verbs' exit codes, and etcd's PKI and flags.

``down`` must signal only a recorded pid that still runs the recorded binary and started at the
recorded time; a pid recycled by an unrelated process (here: ``sleep``) is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from lastmile import cluster as local
from lastmile.cli import main
from lastmile.exitcodes import ExitCode

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process ownership is read from /proc")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated long-running process, always cleaned up."""
    process = subprocess.Popen(["sleep", "300"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def record(workdir: Path, *components: local.Component) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "state.json").write_text(json.dumps({
        "url": "https://127.0.0.1:1", "components": [asdict(c) for c in components], "nodes": []}))


def component(name: str, pid: int, binary: str, ticks: int) -> local.Component:
    return local.Component(name=name, pid=pid, binary=binary, start_ticks=ticks, port=1,
                           health_url="http://127.0.0.1:1/healthz", log="/dev/null")


def sleep_binary() -> str:
    found = shutil.which("sleep")
    assert found
    return os.path.realpath(found)


def test_down_leaves_a_recycled_pid_alone(tmp_path: Path, sleeper: subprocess.Popen[bytes],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # The recorded kube-apiserver's pid now belongs to `sleep`: other binary, so not ours.
    record(tmp_path, component(local.APISERVER, sleeper.pid, "/opt/kube/bin/kube-apiserver", start_ticks(sleeper.pid)))
    assert main(["cluster", "down", "--workdir", str(tmp_path)]) == ExitCode.OK
    assert sleeper.poll() is None, "down signalled a process it did not start"
    assert "left alone" in capsys.readouterr().out
    assert not (tmp_path / "state.json").exists()


def test_down_leaves_the_same_binary_started_at_another_time_alone(tmp_path: Path,
                                                                   sleeper: subprocess.Popen[bytes]) -> None:
    record(tmp_path, component(local.ETCD, sleeper.pid, sleep_binary(), start_ticks(sleeper.pid) - 1))
    outcome = local.stop(tmp_path)
    assert outcome is not None and outcome[local.ETCD].startswith("left alone")
    assert sleeper.poll() is None


def test_down_stops_a_process_it_recorded(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """The control: binary and start time match, so this one is stopped."""
    record(tmp_path, component(local.ETCD, sleeper.pid, sleep_binary(), start_ticks(sleeper.pid)))
    outcome = local.stop(tmp_path, timeout_seconds=5)
    assert outcome == {local.ETCD: "stopped"}
    assert sleeper.wait(timeout=5) == -15


def test_status_of_a_recorded_but_dead_cluster_exits_3(tmp_path: Path, sleeper: subprocess.Popen[bytes],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    record(tmp_path, component(local.ETCD, sleeper.pid, "/opt/kube/bin/etcd", start_ticks(sleeper.pid)))
    assert main(["cluster", "status", "--workdir", str(tmp_path)]) == ExitCode.UNAVAILABLE
    assert "NOT RUNNING" in capsys.readouterr().out
    assert main(["cluster", "kubeconfig", "--workdir", str(tmp_path)]) == ExitCode.UNAVAILABLE


def test_verbs_without_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "status", "--workdir", str(tmp_path)]) == ExitCode.UNAVAILABLE
    assert "lastmile cluster up" in capsys.readouterr().err
    assert main(["cluster", "kubeconfig", "--workdir", str(tmp_path)]) == ExitCode.UNAVAILABLE
    captured = capsys.readouterr()
    assert captured.out == "" and "no local cluster is up" in captured.err
    assert main(["cluster", "down", "--workdir", str(tmp_path)]) == ExitCode.OK
    assert "nothing to stop" in capsys.readouterr().out


def test_up_with_missing_binaries_exits_3_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "up", "--workdir", str(tmp_path / "c"), "--bin-dir", str(tmp_path)]) == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert "missing binaries" in err and str(tmp_path / "kube-apiserver") in err
    assert not (tmp_path / "c" / "state.json").exists()


def test_the_never_ready_digest_is_the_one_the_kwok_stages_select() -> None:
    stages = local.STAGES_FILE.read_text()
    zero_digest = local.NEVER_READY_DIGEST
    assert zero_digest == "sha256:" + "0" * 64
    # pod-ready excludes it, pod-never-ready selects it: both name the same digest.
    assert stages.count(f'endswith("@{zero_digest}")') == 2


# ---- etcd: only the API server gets in ---------------------------------------------------------------

def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def signed_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_etcd_trusts_a_ca_of_its_own_that_signs_only_its_certificate_and_the_api_servers(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    local._write_pki(pki)
    assert local._pki_valid(pki)
    cluster_ca, etcd_ca = load_cert(pki / "ca.crt"), load_cert(pki / "etcd-ca.crt")
    etcd, client = load_cert(pki / "etcd.crt"), load_cert(pki / "apiserver-etcd-client.crt")
    assert signed_by(etcd, etcd_ca) and signed_by(client, etcd_ca)
    assert usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    # Nothing the cluster CA signs (the serving certificates, any CSR the controller-manager approves)
    # chains to the CA etcd trusts, and the etcd CA's key is not kept to mint another client.
    assert not signed_by(client, cluster_ca) and not signed_by(etcd, cluster_ca)
    for name in ("apiserver.crt", "controllers.crt"):
        assert signed_by(load_cert(pki / name), cluster_ca) and not signed_by(load_cert(pki / name), etcd_ca)
    assert not (pki / "etcd-ca.key").exists()
    assert sorted(p.name for p in pki.iterdir()) == sorted(local._PKI_FILES)
    assert {oct(p.stat().st_mode & 0o777) for p in pki.glob("*.key")} == {"0o600"}
    assert pki.stat().st_mode & 0o077 == 0


def test_a_pki_without_the_etcd_certificates_is_regenerated(tmp_path: Path) -> None:
    """A work directory from before etcd had TLS: up writes a whole new set instead of starting etcd without one."""
    pki = tmp_path / "pki"
    local._write_pki(pki)
    (pki / "etcd-ca.crt").unlink()
    assert not local._pki_valid(pki)


def test_etcd_and_the_api_server_are_started_with_client_certificate_tls_on_loopback(tmp_path: Path) -> None:
    paths = local._Paths(tmp_path)
    ports = {local.ETCD: 2379, "etcd-peer": 2380, local.APISERVER: 6443}
    etcd_url = f"https://{local.HOST}:2379"
    pki = paths.pki
    etcd = local._argv(local.ETCD, "etcd", paths, ports, "https://127.0.0.1:6443", etcd_url)
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in etcd[1:] if "=" in arg)
    for key in ("listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"):
        assert all(url.startswith("https://127.0.0.1:") for url in flags[key].split(",")), (key, flags[key])
    assert {"--client-cert-auth", "--peer-client-cert-auth"} <= set(etcd)
    assert flags["trusted-ca-file"] == flags["peer-trusted-ca-file"] == str(pki / "etcd-ca.crt")
    assert flags["data-dir"] == str(tmp_path / "etcd")
    apiserver = local._argv(local.APISERVER, "kube-apiserver", paths, ports, "https://127.0.0.1:6443", etcd_url)
    assert {f"--etcd-servers={etcd_url}", f"--etcd-cafile={pki / 'etcd-ca.crt'}",
            f"--etcd-certfile={pki / 'apiserver-etcd-client.crt'}",
            f"--etcd-keyfile={pki / 'apiserver-etcd-client.key'}"} <= set(apiserver)
