"""The SageMaker scikit-learn serving container's request path, for code/inference.py.

The container (sagemaker-scikit-learn-container 1.2-1, built on sagemaker-containers) cannot run here:
``sagemaker-containers==2.8.6.post2`` installs from PyPI but does not import on Python >= 3.10 (its
``collections.Mapping``), and the container needs nginx + gunicorn. What it does with the script-mode
module is small and is reproduced here, step for step:

- the model archive is unpacked to /opt/ml/model; ``SAGEMAKER_SUBMIT_DIRECTORY`` (/opt/ml/model/code) holds
  ``SAGEMAKER_PROGRAM`` (inference.py), imported as a module; ``model_fn("/opt/ml/model")`` runs once;
- per /invocations request: the body is decoded to ``str`` for the UTF-8 content types (JSON, CSV, ...) and
  passed as bytes otherwise; Content-Type defaults to application/json; an Accept that is absent or
  ``*/*`` becomes ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (application/json);
- ``input_fn(content, content_type)`` -> ``predict_fn(data, model)`` -> ``output_fn(prediction, accept)``,
  whose ``(body, content_type)`` tuple becomes the HTTP response.
"""

from __future__ import annotations

import importlib.util
import tarfile
import uuid
from pathlib import Path
from typing import Any

UTF8_TYPES = ("application/json", "text/csv", "application/jsonlines", "text/plain")  # as the toolkit lists them
DEFAULT_ACCEPT = "application/json"


class Container:
    def __init__(self, artifact: Path, root: Path) -> None:
        self.model_dir = root / "opt" / "ml" / "model"
        self.model_dir.mkdir(parents=True)
        with tarfile.open(artifact) as tar:
            tar.extractall(self.model_dir, filter="data")
        program = self.model_dir / "code" / "inference.py"
        spec = importlib.util.spec_from_file_location(f"inference_{uuid.uuid4().hex}", program)
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.model = self.module.model_fn(str(self.model_dir))

    def invoke(self, body: bytes, content_type: str | None = None, accept: str | None = None) -> tuple[Any, str]:
        content_type = content_type or "application/json"
        content = body.decode("utf-8") if content_type.split(";")[0].strip() in UTF8_TYPES else body
        if not accept or accept == "*/*":
            accept = DEFAULT_ACCEPT
        data = self.module.input_fn(content, content_type)
        prediction = self.module.predict_fn(data, self.model)
        response, mimetype = self.module.output_fn(prediction, accept)
        return response, mimetype
