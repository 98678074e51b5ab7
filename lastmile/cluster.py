"""The local Kubernetes cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1.

    lastmile cluster up            start it (or reuse it when its recorded processes are alive and healthy)
    lastmile cluster status        each process with pid, port and health (exit 0 all healthy, 3 otherwise)
    lastmile cluster kubeconfig    the path of the admin kubeconfig (exit 3 when the cluster is not up)
    lastmile cluster down          stop the processes `up` started, by recorded pid; the data stays

The binaries come from ``tools/kube/bootstrap.sh`` (built from the Go module proxy, cached by version); the
Gateway API CRDs of the standard channel (pinned, ``tools/kube/gateway-api.sh``) and one local Gateway are
installed on every ``up`` (``lastmile/gateway_api.py``), so the API server validates routes and weights.
No containers run: kwok plays the kubelet of two fake nodes, and its Stages (``lastmile/kwok-stages.yaml``)
move pods through Pending -> Running/Ready, assign pod IPs, and delete them. A pod with a container whose
image is pinned to the all-zero digest (``NEVER_READY_DIGEST``) runs but never becomes Ready: a release
whose readiness probe never passes.

Everything lives in one work directory (default ``.lastmile/cluster/`` in the repository, 0700, ignored by git):
``pki/`` (CAs, certificates, service-account keys), ``tokens.csv``, one kubeconfig per client,
``etcd/`` (the data, 0700), ``logs/``, and ``state.json`` (pids, binaries, process start times and ports).
etcd listens on 127.0.0.1 only, over TLS, and admits only clients with a certificate of its own CA: the
API server (see ``_PKI_FILES``). Other local users can neither read its Secrets nor write around RBAC.
``down`` signals only a recorded pid whose ``/proc`` entry still shows the recorded binary and start time,
then removes ``state.json``; the certificates and the etcd data stay, so the next ``up`` finds its
namespaces, nodes and workloads again. ``rm -rf .lastmile/cluster`` (after ``down``) starts from nothing.

From Python (tests, engine tests)::

    with local_cluster(workdir) as cluster:      # fresh cluster in workdir; stopped and workdir removed on exit
        cluster.kubeconfig_path, cluster.url
        cluster.request("GET", "/api/v1/nodes")

``start(workdir)`` / ``stop(workdir)`` / ``status(workdir)`` are what the verbs run. Processes started by
``local_cluster`` also die with the Python process (Linux ``PR_SET_PDEATHSIG``); the CLI's outlive it.
Linux only: process ownership is checked through ``/proc``.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lastmile.exitcodes import ExitCode

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO_ROOT / ".lastmile" / "cluster"
BOOTSTRAP = REPO_ROOT / "tools" / "kube" / "bootstrap.sh"
STAGES_FILE = Path(__file__).resolve().with_name("kwok-stages.yaml")

HOST = "127.0.0.1"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"  # kwok hands out pod IPs from here
NODE_IP = "10.200.0.1"  # the InternalIP kwok gives the fake nodes
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "lastmile-admin"
KWOK_USER = "lastmile-kwok"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
FAKE_NODE_ANNOTATION_VALUE = "fake"
NODE_LABEL = "lastmile.dev/local-cluster"
NODE_NAMES = ("lastmile-node-a", "lastmile-node-b")
NODE_ZONES = ("local-a", "local-b")
NEVER_READY_DIGEST = "sha256:" + "0" * 64
"""An image pinned to this digest (``<repository>@sha256:000...``) runs on the local cluster but never becomes Ready."""

ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK = (
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
ALL_COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK)
APISERVER_ONLY = (ETCD, APISERVER)

CERT_VALID_DAYS = 30
CERT_RENEW_BEFORE = datetime.timedelta(days=1)
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 15.0
_LOG_TAIL_LINES = 25
_STATE_FILE = "state.json"


class ClusterError(RuntimeError):
    """The cluster could not be started, checked or stopped; the message says why (with log tails)."""


class ClusterStartError(ClusterError):
    """A process exited or did not become ready in time (the message has the log tails)."""


ApiServerStartError = ClusterStartError  # the name the API-server-only tests knew


class ClusterUnavailable(ClusterError):
    """The binaries cannot be had (bootstrap failed), or no cluster is recorded / healthy in the workdir."""


# ---- state ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Component:
    """One started process as recorded in state.json."""

    name: str
    pid: int
    binary: str
    start_ticks: int  # field 22 of /proc/<pid>/stat: with the binary, tells our process from a recycled pid
    port: int
    health_url: str
    log: str
    extra_ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    port: int
    running: bool
    healthy: bool
    detail: str


@dataclass(frozen=True)
class Cluster:
    """A running local cluster: where it is and how to talk to it as the cluster admin."""

    workdir: Path
    url: str
    token: str
    kubeconfig_path: Path
    ca_cert_path: Path
    components: tuple[Component, ...]
    nodes: tuple[str, ...]
    reused: bool = False

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json") -> tuple[int, Any]:
        """One REST call as the admin: (status, decoded JSON body or None)."""
        return _api_request(self.url, self.token, self.ca_cert_path, method, path, body, content_type=content_type)

    def get(self, path: str) -> Any:
        """GET ``path``; raises ClusterError unless it answers 200."""
        status, body = self.request("GET", path)
        if status != 200:
            raise ClusterError(f"GET {path} answered {status}: {body}")
        return body


@dataclass(frozen=True)
class _Paths:
    workdir: Path

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.workdir / "etcd"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def state(self) -> Path:
        return self.workdir / _STATE_FILE

    @property
    def tokens(self) -> Path:
        return self.workdir / "tokens.csv"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def kubeconfig(self, client: str) -> Path:
        return self.workdir / f"{client}.kubeconfig"


def _read_state(paths: _Paths) -> dict[str, Any] | None:
    try:
        data = json.loads(paths.state.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ClusterError(f"{paths.state} is unreadable ({error}); stop stray processes by hand, "
                           f"then remove the file") from error
    data["components"] = [Component(**c) for c in data.get("components", [])]
    return data


def _write_state(paths: _Paths, url: str, components: list[Component], nodes: Sequence[str]) -> None:
    data = {"url": url, "kubeconfig": str(paths.admin_kubeconfig), "ca_cert": str(paths.pki / "ca.crt"),
            "components": [asdict(c) for c in components], "nodes": list(nodes)}
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(paths.state)


# ---- processes --------------------------------------------------------------------------------------

def _proc_identity(pid: int) -> tuple[str, int, str] | None:
    """(executable, start time in clock ticks, state letter) of a live pid, or None."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or not ours to inspect
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is index 0
    exe = exe.removesuffix(" (deleted)")  # the binary was replaced in the cache while it ran
    return exe, int(fields[19]), fields[0]


def _reap(pid: int) -> None:
    """Collect the exit status when ``pid`` is our own child (no zombie left); otherwise nothing."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _owned(component: Component) -> bool:
    """The recorded pid still runs the recorded binary, started at the recorded time (not a recycled pid)."""
    identity = _proc_identity(component.pid)
    if identity is None:
        return False
    exe, start_ticks, state = identity
    if state in ("Z", "X"):
        _reap(component.pid)
        return False
    return exe == component.binary and start_ticks == component.start_ticks


def _describe_pid(pid: int) -> str:
    identity = _proc_identity(pid)
    return "no process" if identity is None else f"{identity[0]} (state {identity[2]})"


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the Python process that started it dies (Linux)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


def _spawn(name: str, argv: list[str], log_path: Path, *, die_with_parent: bool,
           env: dict[str, str] | None = None) -> tuple[int, int]:
    """Start one daemon in its own session, output to ``log_path``; returns (pid, start ticks)."""
    with log_path.open("ab") as log:
        log.write(f"\n---- {datetime.datetime.now().isoformat(timespec='seconds')} lastmile starts {name}\n".encode())
        log.flush()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True, env=env,
                                   preexec_fn=_die_with_parent if die_with_parent else None)
    # From here on the process is tracked by pid (state.json), not by this Popen object: a returncode
    # stops Popen.__del__ from warning "still running"; _reap() collects a child's exit status.
    process.returncode = 0
    identity = _proc_identity(process.pid)
    if identity is None:
        _reap(process.pid)
        raise ClusterStartError(f"{name} exited at once; last lines of {log_path}:\n{_tail(log_path)}")
    return process.pid, identity[1]


def _signal_and_wait(components: Sequence[Component], timeout_seconds: float) -> dict[str, str]:
    """SIGTERM every owned component at once, SIGKILL what is left after the timeout. Outcome per name."""
    outcome: dict[str, str] = {}
    pending: list[Component] = []
    for component in components:
        if _owned(component):
            try:
                os.kill(component.pid, signal.SIGTERM)
                pending.append(component)
            except ProcessLookupError:
                outcome[component.name] = "not running"
        elif _proc_identity(component.pid) is None:
            outcome[component.name] = "not running"
        else:
            outcome[component.name] = (f"left alone: pid {component.pid} is now {_describe_pid(component.pid)}, "
                                       f"not the {component.name} lastmile started")
    deadline = time.monotonic() + timeout_seconds
    killed: set[str] = set()
    while pending:
        pending = [c for c in pending if _owned(c)]
        if not pending:
            break
        if time.monotonic() > deadline:
            for component in pending:
                if component.name not in killed:
                    try:
                        os.kill(component.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    killed.add(component.name)
            if time.monotonic() > deadline + timeout_seconds:
                for component in pending:
                    outcome[component.name] = f"still running after SIGKILL (pid {component.pid})"
                break
        time.sleep(0.05)
    for component in components:
        outcome.setdefault(component.name, "killed (did not stop on SIGTERM)" if component.name in killed
                           else "stopped")
    return outcome


# ---- PKI, tokens, kubeconfigs -----------------------------------------------------------------------

# What pki/ holds. The cluster CA (ca.crt, ca.key) signs the serving certificates and is the
# controller-manager's cluster-signing CA. etcd trusts only the etcd CA (etcd-ca.crt), which signs etcd's
# own certificate (client serving and peer) and the API server's etcd client certificate; its key is
# never written, so no further etcd client can be minted, and no certificate the cluster CA signs (an
# approved CSR, say) opens etcd.
_PKI_FILES = ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "controllers.crt", "controllers.key",
              "etcd-ca.crt", "etcd.crt", "etcd.key", "apiserver-etcd-client.crt", "apiserver-etcd-client.key",
              "sa.pub", "sa.key")
_CA_FILES = ("ca.crt", "etcd-ca.crt")


def _pki_valid(pki: Path) -> bool:
    from cryptography import x509

    if not all((pki / name).is_file() for name in _PKI_FILES):
        return False
    now = datetime.datetime.now(datetime.timezone.utc)
    for name in _CA_FILES:
        try:
            expiry = x509.load_pem_x509_certificate((pki / name).read_bytes()).not_valid_after_utc
        except ValueError:
            return False
        if expiry - now <= CERT_RENEW_BEFORE:
            return False
    return True


def _write_pki(pki: Path) -> None:
    """Both CAs (see _PKI_FILES), the certificates they sign (all for 127.0.0.1), and the service-account
    key pair. Private keys are 0600."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=CERT_VALID_DAYS)
    server, client = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
    loopback = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)

    def authority(common_name: str) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cert, key

    Pair = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]

    def issue(ca: Pair, common_name: str, names: list[x509.GeneralName], usages: list[x509.ObjectIdentifier]) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(ca[0].subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca[1], hashes.SHA256()), key

    pem = serialization.Encoding.PEM

    def write_pair(stem: str, pair: Pair) -> None:
        (pki / f"{stem}.crt").write_bytes(pair[0].public_bytes(pem))
        write_key(pki / f"{stem}.key", pair[1])

    cluster_ca, etcd_ca = authority("lastmile-local-ca"), authority("lastmile-local-etcd-ca")
    write_pair("apiserver", issue(cluster_ca, "kube-apiserver", [
        *loopback, x509.IPAddress(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE)[1]),
        x509.DNSName("kubernetes.default.svc")], [server]))
    write_pair("controllers", issue(cluster_ca, "lastmile-local-controllers", loopback, [server]))
    write_pair("etcd", issue(etcd_ca, "lastmile-etcd", loopback, [server, client]))  # client: for its peer port
    write_pair("apiserver-etcd-client", issue(etcd_ca, "kube-apiserver-etcd-client", [], [client]))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    # The CA certificates go last: _pki_valid() checks them, so a half-written set is regenerated.
    write_key(pki / "ca.key", cluster_ca[1])
    (pki / "etcd-ca.crt").write_bytes(etcd_ca[0].public_bytes(pem))
    (pki / "ca.crt").write_bytes(cluster_ca[0].public_bytes(pem))


# Who talks to the API server: kubeconfig name -> (user, groups). The controller-manager and the scheduler
# are the users the bootstrap RBAC policy grants their roles to; kwok gets the ClusterRole below.
_CLIENTS = {
    "admin": (ADMIN_USER, ("system:masters",)),
    CONTROLLER_MANAGER: ("system:kube-controller-manager", ()),
    SCHEDULER: ("system:kube-scheduler", ()),
    KWOK: (KWOK_USER, ()),
}


def _tokens(paths: _Paths, regenerate: bool) -> dict[str, str]:
    """One random bearer token per client, kept in tokens.csv (0600) across restarts."""
    tokens: dict[str, str] = {}
    if not regenerate and paths.tokens.is_file():
        for line in paths.tokens.read_text().splitlines():
            parts = line.split(",")
            for client, (user, _) in _CLIENTS.items():
                if len(parts) >= 2 and parts[1] == user:
                    tokens[client] = parts[0]
    if set(tokens) != set(_CLIENTS):
        tokens = {client: secrets.token_urlsafe(32) for client in _CLIENTS}
        lines = [f'{tokens[c]},{user},{user}' + (f',"{",".join(groups)}"' if groups else "")
                 for c, (user, groups) in _CLIENTS.items()]
        paths.tokens.write_text("\n".join(lines) + "\n")
        paths.tokens.chmod(0o600)
    return tokens


def _write_kubeconfig(path: Path, url: str, user: str, token: str, ca_cert: Path) -> None:
    ca_data = base64.b64encode(ca_cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lastmile-local", "cluster": {"server": url, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "lastmile-local", "context": {"cluster": "lastmile-local", "user": user}}],
        "current-context": "lastmile-local",
    }
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML: every client reads it
    tmp.replace(path)


# ---- HTTP -------------------------------------------------------------------------------------------

def _http_get(url: str, *, token: str | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _api_request(url: str, token: str, ca_cert: Path, method: str, path: str, body: Any = None, *,
                 content_type: str = "application/json") -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": content_type}
    request = urllib.request.Request(f"{url}{path}", method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    context = ssl.create_default_context(cafile=str(ca_cert))
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode(errors="replace")


def etcd_client_context(pki: Path) -> ssl.SSLContext:
    """TLS to the local etcd as its one client, the API server: the etcd CA and the API server's etcd certificate."""
    context = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
    context.load_cert_chain(pki / "apiserver-etcd-client.crt", pki / "apiserver-etcd-client.key")
    return context


def _health(component: Component, pki: Path, admin_token: str) -> tuple[bool, str]:
    """Probe one component's health endpoint: (healthy, short detail)."""
    token = admin_token if component.name == APISERVER else None
    try:
        context = (etcd_client_context(pki) if component.name == ETCD
                   else ssl.create_default_context(cafile=str(pki / "ca.crt")))
        status, body = _http_get(component.health_url, token=token, context=context)
    except (OSError, urllib.error.URLError, ssl.SSLError) as error:
        return False, f"{component.health_url}: {getattr(error, 'reason', error)}"
    if component.name == ETCD:
        try:
            ok = status == 200 and json.loads(body).get("health") == "true"
        except ValueError:
            ok = False
    else:
        ok = status == 200 and body.strip() == "ok"
    return ok, f"{component.health_url} -> {status} {body.strip()[:60]}"


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now on 127.0.0.1 (held together so they are distinct)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def _wait_until(probe: Callable[[], bool], deadline: float, what: str, watched: Sequence[Component],
                *, interval: float = 0.2) -> None:
    """Call ``probe()`` until True; fail early (with log tails) when a watched process died, or at the deadline."""
    last_error = ""
    while True:
        for component in watched:
            if not _owned(component):
                raise ClusterStartError(f"{component.name} (pid {component.pid}) exited while waiting for {what}; "
                                        f"last lines of {component.log}:\n{_tail(Path(component.log))}")
        try:
            if probe():
                return
        except (OSError, urllib.error.URLError, ValueError, ClusterError) as error:
            last_error = str(error)
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {c.name} ({c.log}):\n{_tail(Path(c.log))}" for c in watched)
            raise ClusterStartError(f"{what}: not ready in time (last error: {last_error or 'none'})\n{tails}")
        time.sleep(interval)


# ---- binaries ---------------------------------------------------------------------------------------

def find_binaries(bin_dir: Path | None = None, *, quiet: bool = True) -> Path:
    """The directory with the five binaries: ``bin_dir``, else ``$LASTMILE_KUBE_BIN``, else what
    tools/kube/bootstrap.sh prints (it builds them on first use: 15-40 min cold on 2 cores; its log goes
    to stderr unless ``quiet``, then into the error). Raises ClusterUnavailable."""
    chosen = bin_dir or (Path(os.environ["LASTMILE_KUBE_BIN"]) if os.environ.get("LASTMILE_KUBE_BIN") else None)
    if chosen is None:
        try:
            result = subprocess.run([str(BOOTSTRAP)], stdout=subprocess.PIPE, text=True,
                                    stderr=subprocess.PIPE if quiet else None, timeout=3600)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ClusterUnavailable(f"{BOOTSTRAP} could not run: {error}") from error
        if result.returncode != 0:
            detail = (result.stderr or "").strip()[-3000:]
            raise ClusterUnavailable(f"{BOOTSTRAP} failed (exit {result.returncode})" + (f":\n{detail}" if detail else ""))
        chosen = Path(result.stdout.strip())
    return Path(chosen).resolve()


def _check_binaries(bin_dir: Path, components: Sequence[str]) -> dict[str, str]:
    binaries = {name: bin_dir / name for name in components}
    missing = [str(path) for path in binaries.values() if not (path.is_file() and os.access(path, os.X_OK))]
    if missing:
        raise ClusterUnavailable(f"missing binaries: {', '.join(missing)} (run tools/kube/bootstrap.sh)")
    return {name: str(path.resolve()) for name, path in binaries.items()}


# ---- start ------------------------------------------------------------------------------------------

def _install_gateway_api(cluster: Cluster) -> None:
    """The Gateway API CRDs and the local Gateway (lastmile/gateway_api.py), so the API server validates routes."""
    from lastmile import gateway_api

    try:
        gateway_api.install(cluster.request, gateway_api.crd_directory())
    except gateway_api.GatewayApiError as error:
        raise ClusterStartError(str(error)) from error


def _kwok_rbac() -> list[tuple[str, dict[str, Any]]]:
    """Least privilege for kwok: read nodes, write node/pod status, delete pods, renew node leases, events."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "lastmile:kwok"},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes/status", "pods/status"], "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch", "update", "delete"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "list", "watch", "create", "update", "patch"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]},
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "lastmile:kwok"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "lastmile:kwok"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KWOK_USER}],
    }
    return [("/apis/rbac.authorization.k8s.io/v1/clusterroles", role),
            ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)]


def _fake_node(name: str, zone: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: FAKE_NODE_ANNOTATION_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "topology.kubernetes.io/zone": zone, "type": "kwok", NODE_LABEL: "true"},
        },
        # No taint: every node of this cluster is a kwok node, and stacks' pods carry no kwok toleration.
        "spec": {},
    }


def _create(cluster: Cluster, collection: str, obj: dict[str, Any]) -> None:
    """POST unless it exists (409); anything else is an error."""
    status, body = cluster.request("POST", collection, obj)
    if status not in (200, 201, 409):
        raise ClusterStartError(f"creating {obj['kind']} {obj['metadata']['name']} answered {status}: {body}")


def _nodes_ready(cluster: Cluster) -> bool:
    nodes = cluster.get(f"/api/v1/nodes?labelSelector={NODE_LABEL}%3Dtrue").get("items") or []
    ready = {n["metadata"]["name"] for n in nodes
             if any(c.get("type") == "Ready" and c.get("status") == "True" for c in n.get("status", {}).get("conditions") or [])}
    return set(cluster.nodes) <= ready


def _smoke_check(cluster: Cluster, deadline: float, watched: Sequence[Component]) -> None:
    """Prove the cluster usable: a new namespace gets its default ServiceAccount; a Deployment becomes
    Available with a Ready pod; its Service's EndpointSlice lists the pod IP as ready. Cleans up after itself."""
    namespace = f"lastmile-smoke-{secrets.token_hex(3)}"
    labels = {"app.kubernetes.io/name": "smoke"}
    _create(cluster, "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    try:
        _wait_until(lambda: cluster.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")[0] == 200,
                    deadline, "the default ServiceAccount of a new namespace (serviceaccount controller)", watched)
        _create(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "smoke"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"automountServiceAccountToken": False,
                         "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                             "seccompProfile": {"type": "RuntimeDefault"}},
                         "containers": [{"name": "smoke", "image": "registry.k8s.io/pause:3.10",
                                         "securityContext": {"allowPrivilegeEscalation": False,
                                                             "capabilities": {"drop": ["ALL"]}}}]}}}})
        _create(cluster, f"/api/v1/namespaces/{namespace}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "smoke"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})

        def available() -> bool:
            deployment = cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/smoke")
            return any(c.get("type") == "Available" and c.get("status") == "True"
                       for c in deployment.get("status", {}).get("conditions") or []) \
                and deployment["status"].get("readyReplicas") == 1

        _wait_until(available, deadline, "a Deployment to become Available (scheduler, kwok)", watched)
        pods = cluster.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io%2Fname%3Dsmoke")
        pod_ips = {p.get("status", {}).get("podIP") for p in pods.get("items") or []}

        def endpoints_listed() -> bool:
            slices = cluster.get(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
                                 f"?labelSelector=kubernetes.io%2Fservice-name%3Dsmoke").get("items") or []
            ready = {address for s in slices for e in s.get("endpoints") or []
                     if (e.get("conditions") or {}).get("ready") for address in e.get("addresses") or []}
            return bool(ready) and ready == pod_ips

        _wait_until(endpoints_listed, deadline, "an EndpointSlice listing the pod IP (endpointslice controller)",
                    watched)
    finally:
        cluster.request("DELETE", f"/api/v1/namespaces/{namespace}")


def _argv(name: str, binary: str, paths: _Paths, ports: dict[str, int], url: str, etcd_url: str) -> list[str]:
    pki = paths.pki
    serving_flags = [f"--bind-address={HOST}", f"--secure-port={ports[name]}",
                     f"--tls-cert-file={pki / 'controllers.crt'}", f"--tls-private-key-file={pki / 'controllers.key'}",
                     f"--kubeconfig={paths.kubeconfig(name)}",
                     f"--authentication-kubeconfig={paths.kubeconfig(name)}",
                     f"--authorization-kubeconfig={paths.kubeconfig(name)}",
                     "--leader-elect=false", "--profiling=false", "--v=1"]
    if name == ETCD:
        # Client and peer ports on 127.0.0.1 only, TLS on both, and only certificates of the etcd CA
        # get in: the API server's on the client port, etcd's own on the (unused, single-member) peer port.
        peer_url = f"https://{HOST}:{ports['etcd-peer']}"
        return [binary, "--name=lastmile", f"--data-dir={paths.etcd_data}",
                f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=lastmile={peer_url}", "--initial-cluster-state=new",
                "--client-cert-auth", f"--trusted-ca-file={pki / 'etcd-ca.crt'}",
                f"--cert-file={pki / 'etcd.crt'}", f"--key-file={pki / 'etcd.key'}",
                "--peer-client-cert-auth", f"--peer-trusted-ca-file={pki / 'etcd-ca.crt'}",
                f"--peer-cert-file={pki / 'etcd.crt'}", f"--peer-key-file={pki / 'etcd.key'}",
                "--unsafe-no-fsync",  # local, rebuildable data: durability only costs start-up time here
                "--log-level=warn"]
    if name == APISERVER:
        return [binary, f"--etcd-servers={etcd_url}", f"--etcd-cafile={pki / 'etcd-ca.crt'}",
                f"--etcd-certfile={pki / 'apiserver-etcd-client.crt'}",
                f"--etcd-keyfile={pki / 'apiserver-etcd-client.key'}",
                f"--bind-address={HOST}", f"--advertise-address={HOST}",
                f"--secure-port={ports[name]}", f"--cert-dir={paths.workdir / 'certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--token-auth-file={paths.tokens}", "--anonymous-auth=false", "--authorization-mode=RBAC",
                # The defaults (NamespaceLifecycle, LimitRanger, ServiceAccount, PodSecurity, ...) stay on;
                # PodSecurity is named so that a change of defaults cannot silently drop it.
                "--enable-admission-plugins=PodSecurity,ServiceAccount,NamespaceLifecycle",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}", "--profiling=false", "--v=1"]
    if name == CONTROLLER_MANAGER:
        return [binary, *serving_flags, "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}", "--cluster-name=lastmile-local",
                "--controllers=*"]
    if name == SCHEDULER:
        return [binary, *serving_flags]
    if name == KWOK:
        return [binary, f"--kubeconfig={paths.kubeconfig(name)}", f"--config={STAGES_FILE}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}={FAKE_NODE_ANNOTATION_VALUE}",
                f"--server-address={HOST}:{ports[name]}", f"--tls-cert-file={pki / 'controllers.crt'}",
                f"--tls-private-key-file={pki / 'controllers.key'}", f"--cidr={POD_CIDR}", f"--node-ip={NODE_IP}",
                "--node-lease-duration-seconds=40"]  # leases in kube-node-lease, as kubelets renew them
    raise ValueError(f"unknown component {name!r}")


def _health_url(name: str, ports: dict[str, int]) -> str:
    port = ports[name]
    return {ETCD: f"https://{HOST}:{port}/health", APISERVER: f"https://{HOST}:{port}/readyz",
            CONTROLLER_MANAGER: f"https://{HOST}:{port}/healthz", SCHEDULER: f"https://{HOST}:{port}/healthz",
            KWOK: f"https://{HOST}:{port}/healthz"}[name]


def _reusable(paths: _Paths, components: Sequence[str]) -> Cluster | None:
    """The recorded cluster when it has exactly these components, all owned and healthy."""
    state = _read_state(paths)
    if state is None or [c.name for c in state["components"]] != list(components):
        return None
    tokens = _tokens(paths, regenerate=False) if paths.tokens.is_file() else {}
    if "admin" not in tokens:
        return None
    ca_cert = paths.pki / "ca.crt"
    for component in state["components"]:
        if not _owned(component) or not _health(component, paths.pki, tokens["admin"])[0]:
            return None
    return Cluster(workdir=paths.workdir, url=state["url"], token=tokens["admin"],
                   kubeconfig_path=paths.admin_kubeconfig, ca_cert_path=ca_cert,
                   components=tuple(state["components"]), nodes=tuple(state.get("nodes") or ()), reused=True)


def start(workdir: Path = DEFAULT_WORKDIR, bin_dir: Path | None = None, *,
          components: Sequence[str] = ALL_COMPONENTS, die_with_parent: bool = False,
          timeout_seconds: float = START_TIMEOUT_SECONDS, smoke_check: bool = True,
          progress: Callable[[str], None] | None = None) -> Cluster:
    """Start the cluster in ``workdir`` (or reuse it: recorded pids alive, ours, and healthy) and wait until usable.

    With all components: fake nodes are created and Ready, and (``smoke_check``, fresh start only) a
    throwaway Deployment proves the controllers, scheduler and kwok work. Certificates, tokens and etcd
    data in ``workdir`` are kept across restarts. Raises ClusterUnavailable (binaries missing),
    ClusterStartError (a process exited or was not ready by ``timeout_seconds``; the processes
    started so far are stopped again).
    """
    paths = _Paths(Path(workdir).resolve())
    if list(components[:2]) != list(APISERVER_ONLY) or list(components) != [c for c in ALL_COMPONENTS if c in components]:
        raise ValueError(f"components {list(components)}: allowed are {list(ALL_COMPONENTS)} in this order, "
                         f"starting with {list(APISERVER_ONLY)}")
    paths.workdir.mkdir(parents=True, exist_ok=True)
    paths.workdir.chmod(0o700)
    paths.logs.mkdir(exist_ok=True)
    with _locked(paths):
        return _start_locked(paths, bin_dir, components, die_with_parent, timeout_seconds, smoke_check, progress)


@contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    """One `up` or `down` at a time per work directory (a second caller waits)."""
    import fcntl

    with (paths.workdir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _start_locked(paths: _Paths, bin_dir: Path | None, components: Sequence[str], die_with_parent: bool,
                  timeout_seconds: float, smoke_check: bool, progress: Callable[[str], None] | None) -> Cluster:
    say = progress or (lambda _message: None)
    reused = _reusable(paths, components)
    if reused is not None:
        if KWOK in components:
            _wait_until(lambda: _nodes_ready(reused), time.monotonic() + timeout_seconds, "fake nodes Ready",
                        reused.components)
        _install_gateway_api(reused)  # idempotent; a cluster started before lastmile installed them gets them
        say(f"reusing the running cluster in {paths.workdir}")
        return reused
    if paths.state.exists():  # a partly dead cluster: stop what is left of it (ours only), then start afresh
        say("stopping what is left of the previous cluster")
        _stop_locked(paths, STOP_TIMEOUT_SECONDS)
        paths.state.unlink(missing_ok=True)

    binaries = _check_binaries(find_binaries(bin_dir, quiet=progress is None), components)
    deadline = time.monotonic() + timeout_seconds
    fresh_pki = not _pki_valid(paths.pki)
    if fresh_pki:
        say("generating certificates and keys")
        _write_pki(paths.pki)
    tokens = _tokens(paths, regenerate=fresh_pki)
    paths.etcd_data.mkdir(mode=0o700, exist_ok=True)
    paths.etcd_data.chmod(0o700)  # a data directory made by an older lastmile, or by hand
    port_names = [ETCD, "etcd-peer", *components[1:]]
    ports = dict(zip(port_names, _free_ports(len(port_names)), strict=True))
    etcd_url = f"https://{HOST}:{ports[ETCD]}"
    url = f"https://{HOST}:{ports[APISERVER]}"
    ca_cert = paths.pki / "ca.crt"
    for client, (user, _) in _CLIENTS.items():
        if client == "admin" or client in components:
            path = paths.admin_kubeconfig if client == "admin" else paths.kubeconfig(client)
            _write_kubeconfig(path, url, user, tokens[client], ca_cert)

    started: list[Component] = []
    cluster = Cluster(workdir=paths.workdir, url=url, token=tokens["admin"], kubeconfig_path=paths.admin_kubeconfig,
                      ca_cert_path=ca_cert, components=(), nodes=NODE_NAMES if KWOK in components else ())
    try:
        for name in components:
            say(f"starting {name}")
            log = paths.logs / f"{name}.log"
            env = None
            if name == KWOK:  # kwok also reads ~/.kwok/kwok.yaml when it exists: give it a home of its own
                (paths.workdir / "kwok-home").mkdir(exist_ok=True)
                env = {**os.environ, "HOME": str(paths.workdir / "kwok-home")}
            pid, start_ticks = _spawn(name, _argv(name, binaries[name], paths, ports, url, etcd_url), log,
                                      die_with_parent=die_with_parent, env=env)
            component = Component(name=name, pid=pid, binary=binaries[name], start_ticks=start_ticks,
                                  port=ports[name], health_url=_health_url(name, ports), log=str(log),
                                  extra_ports={"peer": ports["etcd-peer"]} if name == ETCD else {})
            started.append(component)
            _write_state(paths, url, started, cluster.nodes)
            if name == APISERVER:
                # kwok's role must exist before kwok starts; the controllers need nothing from us.
                _wait_until(lambda: _health(component, paths.pki, tokens["admin"])[0], deadline, name, started)
                if KWOK in components:
                    for collection, obj in _kwok_rbac():
                        _create(cluster, collection, obj)
                    # A kwok instance holds a node's Lease under a random identity; the previous one
                    # (stopped) would keep the new one off the nodes until its Leases expire (~40 s).
                    for node in NODE_NAMES:
                        cluster.request("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}")
                say("installing the Gateway API CRDs (standard channel, pinned) and the local Gateway")
                _install_gateway_api(cluster)
            elif name == ETCD:
                _wait_until(lambda: _health(component, paths.pki, tokens["admin"])[0], deadline, name, started)
        for component in started[2:]:
            _wait_until(lambda c=component: _health(c, paths.pki, tokens["admin"])[0], deadline, component.name, started)
        cluster = Cluster(workdir=cluster.workdir, url=url, token=cluster.token, kubeconfig_path=cluster.kubeconfig_path,
                          ca_cert_path=ca_cert, components=tuple(started), nodes=cluster.nodes)
        if KWOK in components:
            say("creating the fake nodes " + ", ".join(NODE_NAMES))
            for name, zone in zip(NODE_NAMES, NODE_ZONES, strict=True):
                _create(cluster, "/api/v1/nodes", _fake_node(name, zone))
            _wait_until(lambda: _nodes_ready(cluster), deadline, "fake nodes Ready (kwok)", started)
            if smoke_check and CONTROLLER_MANAGER in components and SCHEDULER in components:
                say("checking a Deployment becomes Available and its EndpointSlice lists the pod")
                _smoke_check(cluster, deadline, started)
    except BaseException:
        _signal_and_wait(list(reversed(started)), STOP_TIMEOUT_SECONDS)
        paths.state.unlink(missing_ok=True)
        raise
    return cluster


# ---- stop / status ----------------------------------------------------------------------------------

def stop(workdir: Path = DEFAULT_WORKDIR, *, timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> dict[str, str] | None:
    """Stop the recorded processes (only those that still are the recorded binary) and forget them.

    kwok, the scheduler and the controller-manager first, then kube-apiserver, then etcd. Returns the
    outcome per component, or None when nothing is recorded. Nothing else in ``workdir`` is removed.
    """
    paths = _Paths(Path(workdir).resolve())
    if not paths.state.exists():
        return None
    with _locked(paths):
        return _stop_locked(paths, timeout_seconds)


def _stop_locked(paths: _Paths, timeout_seconds: float) -> dict[str, str] | None:
    state = _read_state(paths)
    if state is None:
        return None
    components: list[Component] = state["components"]
    by_name = {c.name: c for c in components}
    outcome: dict[str, str] = {}
    waves = [[by_name[n] for n in (KWOK, SCHEDULER, CONTROLLER_MANAGER) if n in by_name],
             [by_name[n] for n in (APISERVER,) if n in by_name], [by_name[n] for n in (ETCD,) if n in by_name]]
    for wave in waves:
        outcome.update(_signal_and_wait(wave, timeout_seconds))
    if not any(o.startswith("still running") for o in outcome.values()):
        paths.state.unlink(missing_ok=True)
    return {c.name: outcome[c.name] for c in components}


def status(workdir: Path = DEFAULT_WORKDIR) -> list[ComponentStatus] | None:
    """Each recorded process: pid, port, running (ours), healthy. None when nothing is recorded."""
    paths = _Paths(Path(workdir).resolve())
    state = _read_state(paths)
    if state is None:
        return None
    tokens = _tokens(paths, regenerate=False) if paths.tokens.is_file() else {}
    result = []
    for component in state["components"]:
        if not _owned(component):
            detail = ("not running" if _proc_identity(component.pid) is None
                      else f"pid {component.pid} is now {_describe_pid(component.pid)}")
            result.append(ComponentStatus(component.name, component.pid, component.port, False, False, detail))
            continue
        healthy, detail = _health(component, paths.pki, tokens.get("admin", ""))
        result.append(ComponentStatus(component.name, component.pid, component.port, True, healthy, detail))
    return result


@contextmanager
def local_cluster(workdir: Path, bin_dir: Path | None = None, *, components: Sequence[str] = ALL_COMPONENTS,
                  timeout_seconds: float = START_TIMEOUT_SECONDS, smoke_check: bool = False,
                  keep_workdir: bool = False) -> Iterator[Cluster]:
    """A cluster for tests: started fresh in ``workdir``; on exit its processes are stopped and
    ``workdir`` is removed (unless ``keep_workdir``). The processes also die with this Python process."""
    workdir = Path(workdir)
    try:
        yield start(workdir, bin_dir, components=components, die_with_parent=True,
                    timeout_seconds=timeout_seconds, smoke_check=smoke_check)
    finally:
        stop(workdir)
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def local_apiserver(bin_dir: Path, workdir: Path, *, start_timeout_seconds: float = 60) -> Iterator[Cluster]:
    """etcd + kube-apiserver only: objects are stored and admitted for real, nothing runs them
    (no controllers: no default ServiceAccount, pods never start, namespaces never finish deleting)."""
    with local_cluster(workdir, bin_dir, components=APISERVER_ONLY, timeout_seconds=start_timeout_seconds) as cluster:
        yield cluster


# ---- the verbs --------------------------------------------------------------------------------------

def _workdir(args: argparse.Namespace) -> Path:
    return Path(args.workdir).resolve() if args.workdir else DEFAULT_WORKDIR


def _print_status(rows: list[ComponentStatus]) -> None:
    print(f"{'component':<24} {'pid':>8} {'port':>6}  health")
    for row in rows:
        health = "healthy" if row.healthy else ("UNHEALTHY" if row.running else "NOT RUNNING")
        print(f"{row.name:<24} {row.pid:>8} {row.port:>6}  {health}  ({row.detail})")


def _not_up(workdir: Path) -> str:
    return f"no local cluster is up in {workdir}; start one with `lastmile cluster up`"


def _cmd_up(args: argparse.Namespace) -> int:
    workdir = _workdir(args)
    started = time.monotonic()
    try:
        cluster = start(workdir, Path(args.bin_dir) if args.bin_dir else None, timeout_seconds=args.timeout,
                        smoke_check=not args.skip_check,
                        progress=lambda message: print(f"cluster: {message}", file=sys.stderr, flush=True))
    except ClusterError as error:
        print(f"error: the local cluster did not come up: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    verb = "reused" if cluster.reused else "up"
    print(f"local cluster {verb} in {time.monotonic() - started:.1f}s: {cluster.url} (data in {workdir})")
    _print_status(status(workdir) or [])
    print(f"fake nodes (kwok): {', '.join(cluster.nodes)}")
    print(f"\n  export KUBECONFIG={cluster.kubeconfig_path}     # or: kubectl --kubeconfig \"$(lastmile cluster kubeconfig)\"\n"
          f"  kubectl get nodes\n"
          f"  lastmile cluster status | lastmile cluster down   (logs: {workdir / 'logs'})\n"
          f"A pod whose image is pinned to @{NEVER_READY_DIGEST[:15]}...0 (64 zeros) runs but never becomes Ready.")
    return ExitCode.OK


def _cmd_down(args: argparse.Namespace) -> int:
    workdir = _workdir(args)
    started = time.monotonic()
    try:
        outcome = stop(workdir)
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    if outcome is None:
        print(f"nothing to stop: no local cluster is recorded in {workdir}")
        return ExitCode.OK
    for name, result in outcome.items():
        print(f"{name:<24} {result}")
    stuck = [name for name, result in outcome.items() if result.startswith("still running")]
    if stuck:
        print(f"error: {', '.join(stuck)} did not stop; see {workdir / _STATE_FILE}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    print(f"stopped in {time.monotonic() - started:.1f}s; data kept in {workdir} (`lastmile cluster up` resumes it)")
    return ExitCode.OK


def _cmd_status(args: argparse.Namespace) -> int:
    workdir = _workdir(args)
    try:
        rows = status(workdir)
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    if rows is None:
        print(_not_up(workdir), file=sys.stderr)
        return ExitCode.UNAVAILABLE
    _print_status(rows)
    return ExitCode.OK if all(row.healthy for row in rows) else ExitCode.UNAVAILABLE


def _cmd_kubeconfig(args: argparse.Namespace) -> int:
    workdir = _workdir(args)
    try:
        rows = status(workdir)
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    if rows is None or not all(row.healthy for row in rows):
        unhealthy = ", ".join(row.name for row in rows or [] if not row.healthy)
        print(_not_up(workdir) + (f" (not healthy: {unhealthy})" if unhealthy else ""), file=sys.stderr)
        return ExitCode.UNAVAILABLE
    print(_Paths(workdir).admin_kubeconfig)
    return ExitCode.OK


def register(commands: argparse._SubParsersAction) -> None:
    """``lastmile cluster up | down | status | kubeconfig``."""
    cluster = commands.add_parser("cluster", help="the local Kubernetes cluster (etcd, control plane, kwok nodes)",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = cluster.add_subparsers(dest="cluster_command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help_text)
        parser.add_argument("--workdir", help=f"cluster data directory (default {DEFAULT_WORKDIR.relative_to(REPO_ROOT)})")
        parser.set_defaults(func=handler)
        return parser

    up = add("up", _cmd_up, "start the cluster, or reuse it when it is running and healthy")
    up.add_argument("--bin-dir", help="directory with the binaries (default: what tools/kube/bootstrap.sh builds)")
    up.add_argument("--timeout", type=float, default=START_TIMEOUT_SECONDS,
                    help=f"seconds to wait until usable (default {START_TIMEOUT_SECONDS:.0f})")
    up.add_argument("--skip-check", action="store_true",
                    help="skip the throwaway Deployment that proves the controllers, scheduler and kwok work")
    add("down", _cmd_down, "stop the processes `up` started (by recorded pid); keep the data")
    add("status", _cmd_status, "each process with pid, port and health (exit 0 all healthy, 3 otherwise)")
    add("kubeconfig", _cmd_kubeconfig, "print the path of the admin kubeconfig (exit 3 when not up)")
