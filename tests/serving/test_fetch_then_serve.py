"""The init container's fetch for real, then MLServer on what it unpacked (the pod's two steps, chained), then
the release's golden set against it.

``fetch_artifact.py`` runs as the rendered init container runs it (its argv and env; the script is the
ConfigMap's copy) against moto's S3 served over TLS on 127.0.0.1 with a certificate from a CA the test
makes. Only the endpoint and the CA bundle differ from the render: onprem-local's store is
``https://minio.lastmile.localhost:9000`` trusted through the system store; the test's store is
``https://localhost:<port>`` signed by the test CA, passed as ``LASTMILE_CA_BUNDLE`` (what a stack with
``model_store.ca_bundle_pem`` mounts). Every refusal must exit non-zero and leave the model repository
(the emptyDir MLServer serves) empty.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from lastmile import golden
from serving_harness import MODEL, MLServer, Pod, Process, post_json, s3_client

pytestmark = pytest.mark.serving


def run_init_container(pod: Pod, store_endpoint: str, ca: str, **overrides: str) -> subprocess.CompletedProcess:
    init = pod.slot.init_container
    env = pod.env(init, LASTMILE_STORE_ENDPOINT=store_endpoint, LASTMILE_CA_BUNDLE=ca, **overrides)
    return subprocess.run(pod.argv(init), env=env, cwd=pod.root, capture_output=True, text=True, timeout=120)


def upload(store, ca, pod: Pod, body: bytes) -> None:
    env = {e["name"]: e["value"] for e in pod.slot.init_container["env"]}
    client = s3_client(store, ca)
    client.create_bucket(Bucket=env["LASTMILE_STORE_BUCKET"])
    client.put_object(Bucket=env["LASTMILE_STORE_BUCKET"], Key=env["LASTMILE_ARTIFACT_KEY"], Body=body)


def refused(result: subprocess.CompletedProcess, pod: Pod, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert list(pod.model_repository.iterdir()) == []  # nothing for MLServer to load
    print(f"\n  exit {result.returncode}: {result.stderr.strip()}")
    return result.stderr


def test_fetch_then_serve(make_pod, green, tls, tls_store, processes, tmp_path):
    pod = make_pod(green)
    upload(tls_store, tls.ca, pod, green.artifact.read_bytes())
    start = time.monotonic()
    result = run_init_container(pod, tls_store.endpoint, str(tls.ca))
    fetch_seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    key = f"{MODEL}/{green.version}/model.tar.gz"
    assert result.stdout.strip() == f"fetched {key} (sha256 {green.sha256}) into {pod.model_dir / 'artifact'}"
    assert [p.name for p in pod.model_repository.iterdir()] == [MODEL]  # no scratch left behind
    assert sorted(p.name for p in pod.model_dir.iterdir()) == ["artifact", "lastmile_runtime.py", "model-settings.json"]
    assert (pod.model_dir / "model-settings.json").read_text() == green.runtime_files["model-settings.json"]
    assert sorted(p.name for p in (pod.model_dir / "artifact").iterdir()) == ["code", "model.json"]

    server = MLServer(pod, tmp_path / "mlserver.log")
    processes.append(server)
    ready = server.wait_ready()
    status, body = post_json(f"{server.base_url}/v2/models/{MODEL}/infer", (
        b'{"inputs": [{"name": "instances", "datatype": "FP64", "shape": [2, 4],'
        b' "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}'))
    assert status == 200 and body["model_version"] == green.version
    assert body["outputs"][0]["data"] == ["setosa", "virginica"]
    result = golden.check_v2(golden.load_golden_set(MODEL, green.version), server.base_url)  # before any switch
    assert result.passed, result.message()
    print(f"\n  init container (fetch over TLS, verify, unpack): {fetch_seconds:.2f} s; mlserver ready: {ready:.2f} s")


def test_refuses_an_artifact_whose_sha256_differs(make_pod, green, blue, tls, tls_store):
    pod = make_pod(green)
    upload(tls_store, tls.ca, pod, blue.artifact.read_bytes())  # a real artifact, but not the pinned one
    stderr = refused(run_init_container(pod, tls_store.endpoint, str(tls.ca)), pod, 4)
    assert f"has sha256 {blue.sha256}, the release pins {green.sha256}: refusing to serve it" in stderr


def test_refuses_an_oversized_object(make_pod, green, tls, tls_store):
    pod = make_pod(green)
    data = green.artifact.read_bytes()
    upload(tls_store, tls.ca, pod, data)
    # the render allows the emptyDir's size (256 MiB); a 256 MiB object is not worth it here: lower the limit
    result = run_init_container(pod, tls_store.endpoint, str(tls.ca), LASTMILE_MAX_ARTIFACT_BYTES=str(len(data) - 1))
    assert f"artifact exceeds {len(data) - 1} bytes; refusing" in refused(result, pod, 3)


def hostile_tarball(kind: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        payload = b"owned"
        if kind == "symlink":
            link = tarfile.TarInfo("model.json")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
        else:
            info = tarfile.TarInfo({"dotdot": "code/../../escape.txt", "absolute": "/tmp/lastmile-escape.txt"}[kind])
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.mark.parametrize("kind, message", [
    ("symlink", "archive member 'model.json' is not a regular file or directory"),
    ("dotdot", "archive member 'code/../../escape.txt' escapes the target directory"),
    ("absolute", "archive member '/tmp/lastmile-escape.txt' escapes the target directory"),
])
def test_refuses_a_hostile_tarball(make_pod, green, tls, tls_store, kind, message):
    pod = make_pod(green)
    data = hostile_tarball(kind)
    upload(tls_store, tls.ca, pod, data)
    # even with a pin that matches the hostile bytes, unpacking refuses
    result = run_init_container(pod, tls_store.endpoint, str(tls.ca),
                                LASTMILE_ARTIFACT_SHA256=hashlib.sha256(data).hexdigest())
    assert message in refused(result, pod, 5)
    assert not (pod.root / "escape.txt").exists() and not (pod.model_repository.parent / "escape.txt").exists()
    assert not Path("/tmp/lastmile-escape.txt").exists()


def test_refuses_plain_http(make_pod, green, tls, plain_store):
    pod = make_pod(green)
    upload(plain_store, None, pod, green.artifact.read_bytes())  # the object is there, over http
    stderr = refused(run_init_container(pod, plain_store.endpoint, str(tls.ca)), pod, 2)
    assert f"the model store endpoint must be https://host[:port], got '{plain_store.endpoint}'" in stderr


@pytest.mark.parametrize("trust", ["unrelated-ca", "system-store"])
def test_refuses_a_store_whose_certificate_it_cannot_verify(make_pod, green, tls, tls_store, trust):
    pod = make_pod(green)
    upload(tls_store, tls.ca, pod, green.artifact.read_bytes())
    ca = {"unrelated-ca": str(tls.other_ca), "system-store": ""}[trust]  # "": as onprem-local renders it
    stderr = refused(run_init_container(pod, tls_store.endpoint, ca), pod, 3)
    assert "CERTIFICATE_VERIFY_FAILED" in stderr


def test_processes_fixture_kills_the_group(processes, tmp_path):
    """A child that forks a grandchild: stop() must leave neither."""

    process = Process([sys.executable, "-c", "import os, time; os.fork(); time.sleep(60)"], {}, tmp_path,
                      tmp_path / "sleep.log")
    time.sleep(0.3)
    assert process.group_alive()
    process.stop()
    assert not process.group_alive()
