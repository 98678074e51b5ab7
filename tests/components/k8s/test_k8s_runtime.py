"""lastmile_runtime.py (the MLServer runtime shipped in the slot's ConfigMap) on the real artifact.

MLServer is not a project dependency, so a minimal stand-in of the five names the runtime imports is
installed into sys.modules for these tests; what is exercised is the runtime's own logic: import the
artifact's core by path, refuse a version other than the pinned one, turn predictions into V2 tensors,
answer bad input with InferenceError (HTTP 400 in MLServer).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tarfile
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from components.k8s.model_server import RUNTIME_DIR
from infra.manifest import load_manifest


@dataclass
class Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: Any


@dataclass
class Parameters:
    uri: str
    version: str | None
    extra: dict = field(default_factory=dict)


@dataclass
class Settings:
    name: str
    parameters: Parameters


class InferenceError(Exception):
    pass


def fake_mlserver() -> dict[str, types.ModuleType]:
    mlserver = types.ModuleType("mlserver")

    class MLModel:
        def __init__(self, settings):
            self._settings = settings
            self.name = settings.name
            self.ready = False

    mlserver.MLModel = MLModel
    codecs = types.ModuleType("mlserver.codecs")
    codecs.NumpyCodec = types.SimpleNamespace(
        decode_input=lambda t: np.asarray(t.data, dtype=np.float64).reshape(t.shape),
        encode_output=lambda name, a: Tensor(name, list(a.shape), "FP64", a.tolist()))
    codecs.StringCodec = types.SimpleNamespace(
        encode_output=lambda name, values: Tensor(name, [len(values)], "BYTES", list(values)))
    errors = types.ModuleType("mlserver.errors")
    errors.InferenceError = InferenceError
    types_module = types.ModuleType("mlserver.types")
    types_module.InferenceRequest = object
    types_module.InferenceResponse = lambda **kw: types.SimpleNamespace(**kw)
    utils = types.ModuleType("mlserver.utils")

    async def get_model_uri(settings):
        return settings.parameters.uri

    utils.get_model_uri = get_model_uri
    return {"mlserver": mlserver, "mlserver.codecs": codecs, "mlserver.errors": errors,
            "mlserver.types": types_module, "mlserver.utils": utils}


@pytest.fixture
def runtime(monkeypatch):
    for name, module in fake_mlserver().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("lastmile_runtime_under_test", RUNTIME_DIR / "lastmile_runtime.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("artifact")
    with tarfile.open(load_manifest()[("iris-classifier", "1.1.0")].artifact_path) as tar:
        tar.extractall(directory, filter="data")
    return directory


def model(runtime, artifact_dir, version="1.1.0"):
    return runtime.LastmileRuntime(Settings("iris-classifier", Parameters(
        uri=str(artifact_dir), version=version, extra={"core_module": "iris_model"})))


def request(rows, shape=None):
    rows = np.asarray(rows, dtype=np.float64)
    return types.SimpleNamespace(id="r1", inputs=[Tensor("instances", list(shape or rows.shape), "FP64", rows.ravel().tolist())])


def test_loads_the_artifact_core_and_predicts_v2_tensors(runtime, artifact_dir):
    served = model(runtime, artifact_dir)
    assert asyncio.run(served.load()) is True and served.ready
    response = asyncio.run(served.predict(request([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])))
    labels, probabilities = response.outputs
    assert response.model_version == "1.1.0" and response.id == "r1"
    assert labels.name == "label" and labels.data == ["setosa", "virginica"]
    assert probabilities.shape == [2, 3] and np.allclose(np.sum(probabilities.data, axis=1), 1.0)


def test_refuses_an_artifact_of_another_version(runtime, artifact_dir):
    with pytest.raises(ValueError, match="pins 1.0.0"):
        asyncio.run(model(runtime, artifact_dir, version="1.0.0").load())


def test_bad_input_is_an_inference_error(runtime, artifact_dir):
    served = model(runtime, artifact_dir)
    asyncio.run(served.load())
    with pytest.raises(InferenceError, match="expected 4"):
        asyncio.run(served.predict(request([[1.0, 2.0, 3.0]])))
    with pytest.raises(InferenceError, match="exactly one input"):
        asyncio.run(served.predict(types.SimpleNamespace(id=None, inputs=[])))
