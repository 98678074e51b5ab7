"""A throwaway local Kubernetes API server: etcd + kube-apiserver on 127.0.0.1, no containers.

    with local_apiserver(Path(bin_dir), Path(workdir)) as api:
        subprocess.run(["kubectl", "--kubeconfig", str(api.kubeconfig_path), "get", "ns"], check=True)

``bin_dir`` holds ``etcd`` and ``kube-apiserver`` (``tools/kube/bootstrap.sh`` prints it). Everything
the servers need is generated in ``workdir``: a CA and a serving certificate for 127.0.0.1, the
service-account signing key pair, a token file with one admin token (group ``system:masters``), the
etcd data directory, the logs and a kubeconfig. Authorization is RBAC; the default admission plugins
stay on, which include PodSecurity and ServiceAccount. There is no kubelet and no controller-manager:
objects are stored and admitted for real, but nothing runs them (no default ServiceAccount is created
in new namespaces, pods never start, namespaces never finish deleting).

On exit both processes are terminated by PID (killed when they do not stop in time) and the workdir
is removed. Run ``python tools/kube/apiserver.py BIN_DIR`` to keep one up by hand until Ctrl-C.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

HOST = "127.0.0.1"
ADMIN_USER = "lastmile-admin"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
_LOG_TAIL_LINES = 25


class ApiServerStartError(RuntimeError):
    """etcd or kube-apiserver exited or did not become ready in time (the message has their log tails)."""


@dataclass(frozen=True)
class ApiServer:
    """A running local API server: where it is and how to talk to it as cluster admin."""

    url: str
    token: str
    kubeconfig_path: Path
    ca_cert_path: Path


@dataclass(frozen=True)
class _Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_public_key: Path
    sa_private_key: Path


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now on 127.0.0.1 (held together so they are distinct)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def _write_pki(directory: Path) -> _Pki:
    """A CA, a serving certificate for 127.0.0.1/localhost signed by it, and the service-account keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(name("lastmile-local-ca")).issuer_name(name("lastmile-local-ca"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving_cert = (
        x509.CertificateBuilder().subject_name(name("kube-apiserver")).issuer_name(ca_cert.subject)
        .public_key(serving_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(HOST)),
            x509.IPAddress(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE)[1]),
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
        ]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pki = _Pki(directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key",
               directory / "sa.pub", directory / "sa.key")
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    pki.serving_key.write_bytes(key_pem(serving_key))
    pki.sa_private_key.write_bytes(key_pem(sa_key))
    pki.sa_public_key.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for path in (pki.serving_key, pki.sa_private_key):
        path.chmod(0o600)
    return pki


def _write_kubeconfig(path: Path, url: str, token: str, ca_cert: Path) -> None:
    ca_data = base64.b64encode(ca_cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lastmile-local", "cluster": {"server": url, "certificate-authority-data": ca_data}}],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [{"name": "lastmile-local", "context": {"cluster": "lastmile-local", "user": ADMIN_USER}}],
        "current-context": "lastmile-local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGKILL when the Python process dies, however it dies.

    The context manager stops the servers on every normal exit; this covers a SIGKILLed test run,
    which would otherwise leave etcd and kube-apiserver running in their own session. SIGKILL, not
    SIGTERM: both would get it at once, and a kube-apiserver whose etcd is gone never finishes its
    graceful shutdown.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


class _Process:
    """One server process with its log file; stopped by PID, killed when it does not stop in time."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=_die_with_parent)

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ApiServerStartError(f"{self.name} exited with code {code}; last lines of {self.log_path.name}:\n"
                                      f"{_tail(self.log_path)}")

    def stop(self, timeout_seconds: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=timeout_seconds)


def _wait_until(probe: Callable[[], bool], processes: list[_Process], deadline: float, what: str,
                logs: list[Path]) -> None:
    """Call ``probe()`` until it returns True; fail early when a process died, or at the deadline."""
    last_error = ""
    while True:
        for process in processes:
            process.check_alive()
        try:
            if probe():
                return
        except (OSError, urllib.error.URLError, ValueError) as error:
            last_error = str(error)
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}:\n{_tail(p)}" for p in logs)
            raise ApiServerStartError(f"{what} not ready in time (last error: {last_error or 'none'})\n{tails}")
        time.sleep(0.2)


def _get(url: str, *, token: str | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@contextmanager
def local_apiserver(bin_dir: Path, workdir: Path, *, start_timeout_seconds: float = 60) -> Iterator[ApiServer]:
    """Start etcd and kube-apiserver on free 127.0.0.1 ports; yield once ``/readyz`` answers ok.

    ``workdir`` is created if missing and removed on exit, together with both processes.
    Raises ApiServerStartError (with the servers' log tails) when a binary is missing, a server
    exits, or the API server is not ready within ``start_timeout_seconds``.
    """
    bin_dir, workdir = Path(bin_dir), Path(workdir)
    etcd_bin, apiserver_bin = bin_dir / "etcd", bin_dir / "kube-apiserver"
    missing = [str(p) for p in (etcd_bin, apiserver_bin) if not p.is_file()]
    if missing:
        raise ApiServerStartError(f"missing binaries: {', '.join(missing)} (run tools/kube/bootstrap.sh)")

    deadline = time.monotonic() + start_timeout_seconds
    processes: list[_Process] = []
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        pki = _write_pki(workdir / "pki")
        token = secrets.token_urlsafe(32)
        token_file = workdir / "tokens.csv"
        token_file.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        token_file.chmod(0o600)
        etcd_client_port, etcd_peer_port, secure_port = _free_ports(3)
        etcd_url = f"http://{HOST}:{etcd_client_port}"
        etcd_peer_url = f"http://{HOST}:{etcd_peer_port}"
        url = f"https://{HOST}:{secure_port}"

        etcd = _Process("etcd", [
            str(etcd_bin),
            "--name=lastmile",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={etcd_peer_url}",
            f"--initial-advertise-peer-urls={etcd_peer_url}",
            f"--initial-cluster=lastmile={etcd_peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # throwaway data: durability only costs start-up time here
            "--log-level=warn",
        ], workdir / "etcd.log")
        processes.append(etcd)

        def etcd_healthy() -> bool:
            status, body = _get(f"{etcd_url}/health")
            return status == 200 and json.loads(body).get("health") == "true"

        _wait_until(etcd_healthy, processes, deadline, "etcd", [etcd.log_path])

        apiserver = _Process("kube-apiserver", [
            str(apiserver_bin),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={secure_port}",
            f"--cert-dir={workdir / 'certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--token-auth-file={token_file}",
            "--anonymous-auth=false",
            "--authorization-mode=RBAC",
            # The defaults (NamespaceLifecycle, LimitRanger, ServiceAccount, PodSecurity, ...) stay on;
            # PodSecurity is named so that a change of defaults cannot silently drop it.
            "--enable-admission-plugins=PodSecurity,ServiceAccount,NamespaceLifecycle",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--profiling=false",
            "--v=1",
        ], workdir / "kube-apiserver.log")
        processes.append(apiserver)

        tls = ssl.create_default_context(cafile=str(pki.ca_cert))

        def apiserver_ready() -> bool:
            status, _ = _get(f"{url}/readyz", token=token, context=tls)
            return status == 200

        _wait_until(apiserver_ready, processes, deadline, "kube-apiserver", [etcd.log_path, apiserver.log_path])
        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, url, token, pki.ca_cert)
        yield ApiServer(url=url, token=token, kubeconfig_path=kubeconfig, ca_cert_path=pki.ca_cert)
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/kube/apiserver.py BIN_DIR   (BIN_DIR: what tools/kube/bootstrap.sh prints)",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    with local_apiserver(Path(argv[0]), Path(tempfile.mkdtemp(prefix="lastmile-kube-"))) as api:
        print(f"ready in {time.monotonic() - started:.1f}s: {api.url}\n"
              f"export KUBECONFIG={api.kubeconfig_path}\n(Ctrl-C stops both servers and removes the workdir)",
              file=sys.stderr)
        # Blocked only now: the servers must not inherit a blocked mask.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
