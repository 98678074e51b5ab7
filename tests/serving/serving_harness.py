"""Harness of tests/serving (its conftest.py exposes the fixtures): the real serving processes, started by the tests: MLServer and a TLS S3 store (moto), on 127.0.0.1.

Everything a pod gets comes from the synthesized graph of a committed stack (onprem-local), not re-typed:
the slot's ConfigMap data (runtime, model-settings.json, fetch script), the init container's argv and env,
the server container's argv, env and readiness probe. ``Pod`` plays the kubelet's part: each volume
becomes a folder under the test's tmp directory, and every path in an argv or env value that lies under a
container's mountPath is rewritten to that folder. The only other changes are the ones a laptop forces,
and they are named where they are made: loopback ports instead of 8080-8082, the test store's endpoint
and CA, and ``python``/``mlserver`` from this virtualenv.

Every process is started in its own process group and the whole group is killed on teardown; a test
that leaves a process behind fails.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from infra.manifest import load_manifest
from lastmile.synthesis import Graph, synthesize

STACK = "onprem-local"
MODEL = "iris-classifier"
BIN = Path(sys.executable).parent
# Fake keys for the local store only (moto accepts any); the pod reads the same JSON shape from its Secret.
STORE_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}

_GRAPH: dict[str, Graph] = {}


def stack_graph(stack: str = STACK) -> Graph:
    if stack not in _GRAPH:
        _GRAPH[stack] = synthesize(stack)
    return _GRAPH[stack]


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out on 127.0.0.1 right now (all held at once, so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# -- the rendered slot --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RenderedSlot:
    """One slot of the rendered stack: its ConfigMap data and its Deployment's pod template."""

    slot: str
    version: str
    sha256: str
    runtime_files: dict[str, str]
    pod: dict[str, Any]

    @property
    def init_container(self) -> dict[str, Any]:
        (init,) = self.pod["initContainers"]
        return init

    @property
    def server_container(self) -> dict[str, Any]:
        (server,) = self.pod["containers"]
        return server

    @property
    def readiness_path(self) -> str:
        return self.server_container["readinessProbe"]["httpGet"]["path"]

    @property
    def artifact(self) -> Path:
        return load_manifest()[(MODEL, self.version)].artifact_path


def rendered_slot(slot: str, stack: str = STACK) -> RenderedSlot:
    graph = stack_graph(stack)
    config_map = graph.named(f"{MODEL}-{slot}-runtime").inputs
    deployment = graph.named(f"{MODEL}-{slot}-deployment").inputs
    template = deployment["spec"]["template"]
    init_env = {e["name"]: e["value"] for e in template["spec"]["initContainers"][0]["env"]}
    return RenderedSlot(
        slot=slot,
        version=template["metadata"]["labels"]["app.kubernetes.io/version"],
        sha256=init_env["LASTMILE_ARTIFACT_SHA256"],
        runtime_files=dict(config_map["data"]),
        pod=template["spec"],
    )


@pytest.fixture(scope="session")
def green() -> RenderedSlot:
    """onprem-local's green slot: iris-classifier 1.1.0 (the active one)."""
    return rendered_slot("green")


@pytest.fixture(scope="session")
def blue() -> RenderedSlot:
    """onprem-local's blue slot: iris-classifier 1.0.0."""
    return rendered_slot("blue")


# -- a pod on the laptop -----------------------------------------------------------------------------

@dataclass
class Pod:
    """The slot's volumes as folders, and its containers' argv/env with mount paths rewritten to them."""

    slot: RenderedSlot
    root: Path
    volumes: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for volume in self.slot.pod["volumes"]:
            path = self.root / "volumes" / volume["name"]
            path.mkdir(parents=True)
            if "configMap" in volume:  # the runtime ConfigMap (the store CA's, if any, is written by the test)
                if volume["name"] == "runtime":
                    for name, text in self.slot.runtime_files.items():
                        (path / name).write_text(text)
            elif "secret" in volume:  # the model store's read-only key
                (path / "credentials.json").write_text(json.dumps(STORE_CREDENTIALS))
            self.volumes[volume["name"]] = path

    def _mounts(self, container: dict[str, Any]) -> list[tuple[str, Path]]:
        mounts = [(m["mountPath"], self.volumes[m["name"]]) for m in container["volumeMounts"]]
        return sorted(mounts, key=lambda m: -len(m[0]))  # longest mount path first

    def localize(self, container: dict[str, Any], value: str) -> str:
        for mount_path, local in self._mounts(container):
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(local) + value[len(mount_path):]
        return value

    def env(self, container: dict[str, Any], **overrides: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "")}
        env.update({e["name"]: self.localize(container, e["value"]) for e in container["env"]})
        env.update(overrides)
        return env

    def argv(self, container: dict[str, Any]) -> list[str]:
        command = [self.localize(container, part) for part in container["command"]]
        # the serving image's interpreter and console script: this virtualenv's
        executable = {"python": sys.executable, "mlserver": str(BIN / "mlserver")}[command[0]]
        return [executable, *command[1:]]

    @property
    def model_repository(self) -> Path:
        return self.volumes["model-repository"]

    @property
    def model_dir(self) -> Path:
        return self.model_repository / MODEL

    def place_artifact(self, artifact: Path) -> None:
        """What a successful init container leaves behind, without the store: runtime files + unpacked artifact."""
        self.model_dir.mkdir()
        for name in ("model-settings.json", "lastmile_runtime.py"):
            shutil.copyfile(self.volumes["runtime"] / name, self.model_dir / name)
        with tarfile.open(artifact) as tar:
            tar.extractall(self.model_dir / "artifact", filter="data")


@pytest.fixture
def make_pod(tmp_path):
    count = iter(range(100))

    def make(slot: RenderedSlot) -> Pod:
        return Pod(slot, tmp_path / f"pod-{next(count)}")

    return make


# -- processes ---------------------------------------------------------------------------------------

class Process:
    """A child in its own process group; ``stop`` kills the whole group and checks it is gone."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self.pgid = self.popen.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if not self.group_alive():
                break
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                self.popen.poll()  # reap the leader, so the group can vanish
                if not self.group_alive():
                    break
                time.sleep(0.05)
        self.popen.poll()
        self._log.close()
        assert not self.group_alive(), f"process group {self.pgid} survived SIGKILL"


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """GET url: the HTTP status, or None if nothing answered (refused, reset, timed out)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


class MLServer(Process):
    """``mlserver start`` as the slot's model-server container runs it, on loopback ports."""

    def __init__(self, pod: Pod, log: Path) -> None:
        container = pod.slot.server_container
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        rendered = {e["name"]: e["value"] for e in container["env"]}
        (http_port,) = [p["containerPort"] for p in container["ports"] if p["name"] == "http"]
        assert str(http_port) == rendered["MLSERVER_HTTP_PORT"]  # the probe's port is the server's HTTP port
        env = pod.env(
            container,
            # The pod binds 0.0.0.0 inside its own network namespace; on this machine: loopback only.
            MLSERVER_HOST="127.0.0.1",
            MLSERVER_HTTP_PORT=str(self.http_port),
            MLSERVER_GRPC_PORT=str(self.grpc_port),
            MLSERVER_METRICS_PORT=str(self.metrics_port),
        )
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.readiness_url = self.base_url + pod.slot.readiness_path
        super().__init__(pod.argv(container), env, Path(pod.localize(container, container["workingDir"])), log)

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Poll the readiness probe's endpoint until 200; seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_status(self.readiness_url, timeout=2.0) == 200:
                return time.monotonic() - self.started
            if self.popen.poll() is not None:
                raise AssertionError(f"mlserver exited with {self.popen.returncode} before ready:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"mlserver not ready after {timeout} s:\n{self.log()}")


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process a test starts is appended here and stopped (process group killed) on teardown."""
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def green_server(tmp_path_factory) -> Iterator[MLServer]:
    """onprem-local's green slot (1.1.0) serving, shared by the request tests (one start per worker)."""
    root = tmp_path_factory.mktemp("green-server")
    pod = Pod(rendered_slot("green"), root / "pod")
    pod.place_artifact(pod.slot.artifact)
    server = MLServer(pod, root / "mlserver.log")
    try:
        server.ready_seconds = server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_mlserver(processes, tmp_path):
    def start(pod: Pod) -> MLServer:
        server = MLServer(pod, tmp_path / f"mlserver-{len(processes)}.log")
        processes.append(server)
        return server

    return start


def post_json(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


# -- TLS -----------------------------------------------------------------------------------------------

def _certificate(subject: str, issuer_key, issuer_name, key, *, ca: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Tls:
    ca: Path
    """PEM of the CA that signed the store's certificate."""
    other_ca: Path
    """PEM of an unrelated CA: trusting only it must fail the handshake."""
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> Tls:
    """A throwaway CA, a server certificate for localhost/127.0.0.1 it signs, and an unrelated CA."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory = tmp_path_factory.mktemp("tls")
    pem = serialization.Encoding.PEM
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("lastmile test CA", ca_key, None, ca_key, ca=True)
    other = _certificate("lastmile unrelated CA", other_key, None, other_key, ca=True)
    server = _certificate("localhost", ca_key, ca.subject, server_key, ca=False)
    (directory / "ca.crt").write_bytes(ca.public_bytes(pem))
    (directory / "other-ca.crt").write_bytes(other.public_bytes(pem))
    (directory / "server.crt").write_bytes(server.public_bytes(pem))
    (directory / "server.key").write_bytes(server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Tls(directory / "ca.crt", directory / "other-ca.crt", directory / "server.crt", directory / "server.key")


# -- moto, served over TLS -------------------------------------------------------------------------------

class MotoServer:
    """moto's server application (what ``moto_server`` and ``ThreadedMotoServer`` serve) on 127.0.0.1:0.

    ``ThreadedMotoServer`` has no TLS option; ``moto_server -c/-k`` has, at the cost of a process. This is
    ThreadedMotoServer's few lines with werkzeug's ``ssl_context``: the same app and request handler.
    """

    def __init__(self, tls: Tls | None) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(tls.cert, tls.key)
        self.server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
                                  request_handler=MotoRequestHandler, ssl_context=context)
        port = self.server.server_address[1]
        self.endpoint = f"{'https' if tls else 'http'}://localhost:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def moto_backends() -> Iterator[None]:
    """moto's in-process state (every bucket, every canned result), reset after the test."""
    from moto.moto_api._internal.models import moto_api_backend

    yield
    moto_api_backend.reset()


@pytest.fixture
def tls_store(tls, moto_backends) -> Iterator[MotoServer]:
    server = MotoServer(tls)
    yield server
    server.stop()


@pytest.fixture
def plain_store(moto_backends) -> Iterator[MotoServer]:
    server = MotoServer(None)
    yield server
    server.stop()


def s3_client(store: MotoServer, ca: Path | None):
    import boto3

    return boto3.client("s3", endpoint_url=store.endpoint, region_name="us-east-1", verify=str(ca) if ca else False,
                        aws_access_key_id=STORE_CREDENTIALS["access_key_id"],
                        aws_secret_access_key=STORE_CREDENTIALS["secret_access_key"])
