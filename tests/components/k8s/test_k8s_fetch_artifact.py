"""The init container's fetcher, run for real: TLS, SigV4, digest check, refusal, safe unpacking.

It is the serving image's code path that guards against a tampered artifact, so it is exercised as a
subprocess (real exit codes) against a local HTTPS store with a throwaway CA.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import io
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.k8s.model_server import RUNTIME_DIR, _runtime_files
from infra.manifest import load_manifest

SCRIPT = RUNTIME_DIR / "fetch_artifact.py"
KEY = "iris-classifier/1.0.0/model.tar.gz"
CREDENTIALS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}


def load_script():
    spec = importlib.util.spec_from_file_location("fetch_artifact_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_signature_matches_botocore():
    fetch = load_script()
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    url = "https://minio.example.internal:9000/lastmile-models/" + KEY
    ours = fetch.signed_headers("GET", url, "eu-west-1", CREDENTIALS["access_key_id"], CREDENTIALS["secret_access_key"],
                                now=now)
    request = AWSRequest(method="GET", url=url, headers={})
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        S3SigV4Auth(Credentials(CREDENTIALS["access_key_id"], CREDENTIALS["secret_access_key"]), "s3",
                    "eu-west-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"]


# -- a local HTTPS store -----------------------------------------------------------------------------

def _certificate(subject: str, issuer_key, issuer_name, key, *, ca: bool, san: bool):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("lastmile test CA", ca_key, None, ca_key, ca=True, san=False)
    server_cert = _certificate("localhost", ca_key, ca_cert.subject, server_key, ca=False, san=True)
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(pem))
    (directory / "server.crt").write_bytes(server_cert.public_bytes(pem))
    (directory / "server.key").write_bytes(server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory


class Store:
    """Objects by path; records every request's path and headers."""

    def __init__(self, tls_dir: Path) -> None:
        self.objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                store.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = store.objects.get(self.path)
                if body is None or "authorization" not in {k.lower() for k in self.headers}:
                    self.send_response(404 if body is None else 403)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_dir / "server.crt", tls_dir / "server.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.endpoint = f"https://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def store(tls):
    running = Store(tls)
    yield running
    running.server.shutdown()


def run_fetch(tmp_path: Path, endpoint: str, sha256: str, ca: Path | None) -> tuple[subprocess.CompletedProcess, Path]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(exist_ok=True)

    class Args:  # what _runtime_files reads
        model_name, model_version, core_module = "iris-classifier", "1.0.0", "iris_model"

    for name, text in _runtime_files(Args).items():
        (runtime / name).write_text(text)
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps(CREDENTIALS))
    repository = tmp_path / "models"
    repository.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LASTMILE_STORE_ENDPOINT": endpoint, "LASTMILE_STORE_BUCKET": "lastmile-models",
        "LASTMILE_STORE_REGION": "us-east-1", "LASTMILE_ARTIFACT_KEY": KEY, "LASTMILE_ARTIFACT_SHA256": sha256,
        "LASTMILE_CREDENTIALS_FILE": str(credentials), "LASTMILE_CA_BUNDLE": str(ca) if ca else "",
        "LASTMILE_MODEL_REPOSITORY": str(repository), "LASTMILE_MODEL_NAME": "iris-classifier",
        "LASTMILE_RUNTIME_DIR": str(runtime), "LASTMILE_MAX_ARTIFACT_BYTES": str(1 << 20),
    }
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    return result, repository


@pytest.fixture(scope="module")
def artifact() -> tuple[bytes, str]:
    release = load_manifest()[("iris-classifier", "1.0.0")]
    data = release.artifact_path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def test_fetches_verifies_and_unpacks_the_pinned_artifact(tmp_path, store, tls, artifact):
    data, digest = artifact
    store.objects["/lastmile-models/" + KEY] = data
    result, repository = run_fetch(tmp_path, store.endpoint, digest, tls / "ca.crt")
    assert result.returncode == 0, result.stderr
    model_dir = repository / "iris-classifier"
    assert (model_dir / "artifact" / "model.json").is_file()
    assert (model_dir / "artifact" / "code" / "iris_model.py").is_file()
    assert json.loads((model_dir / "model-settings.json").read_text())["parameters"]["version"] == "1.0.0"
    assert (model_dir / "lastmile_runtime.py").is_file()
    assert [p.name for p in repository.iterdir()] == ["iris-classifier"]  # no scratch left behind
    (path, headers), = store.requests
    assert path == "/lastmile-models/" + KEY
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    # the unpacked core really is a model: load and predict with it
    spec = importlib.util.spec_from_file_location("core_under_test", model_dir / "artifact" / "code" / "iris_model.py")
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    prediction = core.load_model(str(model_dir / "artifact")).predict([[5.1, 3.5, 1.4, 0.2]])
    assert prediction["model_version"] == "1.0.0" and prediction["predictions"][0]["label"] == "setosa"


def test_refuses_an_artifact_whose_digest_differs(tmp_path, store, tls, artifact):
    data, digest = artifact
    store.objects["/lastmile-models/" + KEY] = data + b"tampered"
    result, repository = run_fetch(tmp_path, store.endpoint, digest, tls / "ca.crt")
    assert result.returncode == 4
    assert "refusing to serve it" in result.stderr
    assert list(repository.iterdir()) == []  # nothing for the server to load


def test_refuses_plain_http(tmp_path, artifact):
    result, _ = run_fetch(tmp_path, "http://localhost:9", artifact[1], None)
    assert result.returncode == 2 and "https" in result.stderr


def test_refuses_a_store_whose_certificate_it_cannot_verify(tmp_path, store, artifact):
    store.objects["/lastmile-models/" + KEY] = artifact[0]
    result, repository = run_fetch(tmp_path, store.endpoint, artifact[1], None)  # system trust store only
    assert result.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert list(repository.iterdir()) == []


def test_refuses_an_archive_that_escapes_its_directory(tmp_path, store, tls):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        payload = b"owned"
        info = tarfile.TarInfo("../escape.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    data = buffer.getvalue()
    store.objects["/lastmile-models/" + KEY] = data
    result, repository = run_fetch(tmp_path, store.endpoint, hashlib.sha256(data).hexdigest(), tls / "ca.crt")
    assert result.returncode == 5 and "escapes" in result.stderr
    assert not (tmp_path / "escape.txt").exists() and list(repository.iterdir()) == []
