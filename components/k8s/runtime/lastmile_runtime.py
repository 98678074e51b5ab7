"""MLServer inference runtime for lastmile model artifacts.

Shipped in the slot's ConfigMap and copied by the init container next to ``model-settings.json``
(MLServer puts that folder on ``sys.path`` while it imports ``implementation``). The model itself
comes from the verified artifact: its framework-free core module (``code/<core_module>.py``, e.g.
``code/iris_model.py``) is imported by path, and ``load_model(artifact_dir)`` returns an object whose
``predict(rows)`` gives ``{"model_name", "model_version", "classes", "predictions": [{"label",
"probabilities"}]}``.

Open Inference Protocol (V2) contract:
  request   one input tensor, shape [n, n_features], FP32/FP64/INT
  response  "label" BYTES [n, 1] and "probabilities" FP64 [n, n_classes]; model_version = the artifact's
Bad input (wrong number of features, non-numeric data, a shape that does not match the data, not exactly one
input) is answered with HTTP 400 (InferenceError) and a message naming the problem. (A request that is not a V2
request at all, e.g. an empty body, is refused by MLServer itself before it reaches the runtime: HTTP 422.)
"""

import importlib.util
import os

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


def import_core(artifact_dir, core_module):
    """Import ``<artifact_dir>/code/<core_module>.py`` by path, without touching sys.modules."""
    path = os.path.join(artifact_dir, "code", core_module + ".py")
    if not os.path.isfile(path):
        raise FileNotFoundError("the artifact has no code/{}.py".format(core_module))
    spec = importlib.util.spec_from_file_location("_lastmile_core_" + core_module, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def to_outputs(result):
    """The core's predict() dict as V2 output tensors."""
    labels = [p["label"] for p in result["predictions"]]
    probabilities = np.asarray([p["probabilities"] for p in result["predictions"]], dtype=np.float64)
    return [
        StringCodec.encode_output("label", labels),
        NumpyCodec.encode_output("probabilities", probabilities),
    ]


class LastmileRuntime(MLModel):
    """Serves one verified lastmile artifact; refuses to load one whose version is not the pinned one."""

    async def load(self) -> bool:
        settings = self._settings
        artifact_dir = await get_model_uri(settings)
        extra = dict((settings.parameters.extra or {}) if settings.parameters else {})
        core = import_core(artifact_dir, extra["core_module"])
        self._model = core.load_model(artifact_dir)
        pinned = settings.parameters.version if settings.parameters else None
        if pinned and str(self._model.version) != pinned:
            raise ValueError(
                "artifact holds {} {}, the slot pins {}".format(self._model.name, self._model.version, pinned)
            )
        self.ready = True
        return self.ready

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if len(payload.inputs) != 1:
            raise InferenceError("expected exactly one input tensor, got {}".format(len(payload.inputs)))
        tensor = payload.inputs[0]
        try:
            rows = NumpyCodec.decode_input(tensor)
        except (ValueError, TypeError) as error:  # e.g. a shape that does not match the data's length
            raise InferenceError("input tensor {!r} (datatype {}, shape {}) cannot be decoded: {}".format(
                tensor.name, tensor.datatype, list(tensor.shape), error))
        try:
            result = self._model.predict(rows)
        except ValueError as error:
            raise InferenceError(str(error))
        return InferenceResponse(
            model_name=self.name,
            model_version=str(result["model_version"]),
            id=payload.id,
            outputs=to_outputs(result),
        )
