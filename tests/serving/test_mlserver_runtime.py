"""The slot's runtime under the real MLServer: ``mlserver start`` on what a rendered slot provides.

The model repository holds exactly what the init container leaves there: model-settings.json and
lastmile_runtime.py from the rendered ConfigMap, the release's artifact unpacked next to them. The server
runs with the rendered container's argv and env (ports moved to free loopback ports), and readiness is
polled on the path of the rendered readinessProbe.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from serving_harness import MODEL, MLServer, http_status, post_json

pytestmark = pytest.mark.serving

README_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def v2(rows, *, datatype="FP64", shape=None, name="instances") -> bytes:
    flat = np.asarray(rows).ravel().tolist() if datatype != "BYTES" else rows
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": shape or list(np.shape(rows)),
                                   "data": flat}]}).encode()


@pytest.fixture
def served(green_server):
    return green_server


def infer_url(server: MLServer) -> str:
    return f"{server.base_url}/v2/models/{MODEL}/infer"


def test_serves_the_rendered_slot_on_loopback(served):
    status, body = post_json(infer_url(served), v2(README_ROWS))
    assert status == 200, body
    assert body["model_name"] == MODEL and body["model_version"] == "1.1.0"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["datatype"] == "BYTES" and outputs["label"]["data"] == ["setosa", "virginica"]
    probabilities = np.asarray(outputs["probabilities"]["data"]).reshape(outputs["probabilities"]["shape"])
    assert probabilities.shape == (2, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
    log = served.log()
    for line in (f"HTTP server running on http://127.0.0.1:{served.http_port}",
                 f"gRPC server running on http://127.0.0.1:{served.grpc_port}",
                 f"Metrics server running on http://127.0.0.1:{served.metrics_port}"):
        assert line in log  # every listener on loopback
    print(f"\nmlserver start -> ready: {served.ready_seconds:.2f} s")


def test_request_latency(served):
    body = v2(README_ROWS)
    post_json(infer_url(served), body)  # warm
    times = []
    for _ in range(20):
        start = time.perf_counter()
        status, _ = post_json(infer_url(served), body)
        times.append(time.perf_counter() - start)
        assert status == 200
    print(f"\nV2 HTTP infer, 2 rows: median {1000 * sorted(times)[10]:.1f} ms, max {1000 * max(times):.1f} ms")
    assert sorted(times)[10] < 2.0


def test_the_same_over_grpc(served):
    import grpc
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc.dataplane_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL), timeout=10).ready
        response = stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=[pb.ModelInferRequest.InferInputTensor(
            name="instances", datatype="FP64", shape=[2, 4],
            contents=pb.InferTensorContents(fp64_contents=np.ravel(README_ROWS).tolist()))]), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=[pb.ModelInferRequest.InferInputTensor(
                name="instances", datatype="FP64", shape=[1, 3],
                contents=pb.InferTensorContents(fp64_contents=[5.1, 3.5, 1.4]))]), timeout=10)
    assert response.model_version == "1.1.0"
    (label,) = [o for o in response.outputs if o.name == "label"]
    assert [b.decode() for b in label.contents.bytes_contents] == ["setosa", "virginica"]
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "instances have 3 features, expected 4" in refused.value.details()


@pytest.mark.parametrize("body, message", [
    (v2([[5.1, 3.5, 1.4]]), "instances have 3 features, expected 4 (sepal length (cm), sepal width (cm), "
                            "petal length (cm), petal width (cm))"),
    (v2([5.1, 3.5, 1.4, 0.2]), "instances must be 2-dimensional (rows x features), got 1 dimension(s)"),
    (v2([5.1, 3.5, 1.4], shape=[1, 4]), "input tensor 'instances' (datatype FP64, shape [1, 4]) cannot be decoded: "
                                         "cannot reshape array of size 3 into shape (1,4)"),
    (v2(["a", "b", "c", "d"], datatype="BYTES", shape=[1, 4]), "instances must be numeric, got dtype <U1"),
    (json.dumps({"inputs": []}).encode(), "expected exactly one input tensor, got 0"),
], ids=["3-features", "1-d", "shape-vs-data", "bytes", "no-input"])
def test_bad_input_is_a_400_naming_the_problem(served, body, message):
    status, answer = post_json(infer_url(served), body)
    assert (status, answer) == (400, {"error": message})


def test_an_empty_body_is_refused_by_mlserver_before_the_runtime(served):
    # Not a V2 request at all: MLServer's request model refuses it (FastAPI validation: 422, not 400).
    status, answer = post_json(infer_url(served), b"")
    assert status == 422
    assert answer["detail"][0]["loc"] == ["body"] and answer["detail"][0]["msg"] == "Field required"


def test_readiness_answers_200_only_once_the_model_is_loaded(make_pod, green, start_mlserver, tmp_path):
    """An artifact whose core blocks in load_model() until the test opens a gate: no 200 before."""
    gate, loading = tmp_path / "gate", tmp_path / "loading"
    pod = make_pod(green)
    pod.place_artifact(gated_artifact(green.artifact, tmp_path / "gated.tar.gz", gate, loading))
    server = start_mlserver(pod)
    deadline = time.monotonic() + 60
    while not loading.exists():
        assert time.monotonic() < deadline and server.popen.poll() is None, server.log()
        time.sleep(0.05)
    probes = [http_status(server.readiness_url, timeout=1.0) for _ in range(3)]  # the probe's 2 s timeout, shortened
    assert 200 not in probes
    gate.touch()
    server.wait_ready(timeout=60)
    assert http_status(server.readiness_url) == 200


def test_a_model_that_fails_to_load_is_never_ready(make_pod, green, blue, start_mlserver):
    pod = make_pod(green)  # the slot pins 1.1.0 ...
    pod.place_artifact(blue.artifact)  # ... the repository holds 1.0.0
    server = start_mlserver(pod)
    seen = set()
    deadline = time.monotonic() + 60
    while server.popen.poll() is None and time.monotonic() < deadline:
        seen.add(http_status(server.readiness_url, timeout=1.0))
        time.sleep(0.1)
    assert server.popen.poll() is not None, "mlserver kept running with a model that failed to load"
    assert 200 not in seen
    assert "ValueError: artifact holds iris-classifier 1.0.0, the slot pins 1.1.0" in server.log()


def gated_artifact(source: Path, target: Path, gate: Path, loading: Path) -> Path:
    """A copy of ``source`` whose code/iris_model.py waits for ``gate`` before loading the real core."""
    wrapper = f'''
import importlib.util, os, time
def load_model(model_dir):
    open({str(loading)!r}, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:
        time.sleep(0.05)
    path = os.path.join(model_dir, "code", "iris_model_real.py")
    spec = importlib.util.spec_from_file_location("_gated_real_core", path)
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    return core.load_model(model_dir)
'''.encode()
    with tarfile.open(source) as original, tarfile.open(target, "w:gz") as copy:
        for member in original.getmembers():
            data = original.extractfile(member).read() if member.isfile() else None
            if member.name == "code/iris_model.py":
                real = tarfile.TarInfo("code/iris_model_real.py")
                real.size = len(data)
                copy.addfile(real, io.BytesIO(data))
                member.size, data = len(wrapper), wrapper
            copy.addfile(member, io.BytesIO(data) if data is not None else None)
    return target

