"""SageMaker scikit-learn container handlers ("script mode") for the iris-classifier.

Shipped as ``code/inference.py`` inside model.tar.gz, next to ``code/iris_model.py`` (the
framework-free core) and ``model.json`` at the tarball root. The container loads this module when
the model is created with the environment

    SAGEMAKER_PROGRAM=inference.py
    SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code

Contract
    request   application/json  {"instances": [[5.1, 3.5, 1.4, 0.2], ...]}
              text/csv          one instance per line: 5.1,3.5,1.4,0.2 (no header)
    response  application/json  {"model_name": ..., "model_version": ..., "classes": [...],
                                 "predictions": [{"label": ..., "probabilities": [...]}, ...]}

Bad input raises ValueError with a message naming the problem.
"""

import importlib.util
import json
import os

_HERE = os.path.dirname(os.path.abspath(__file__))

JSON_CONTENT_TYPE = "application/json"
CSV_CONTENT_TYPE = "text/csv"
SUPPORTED_CONTENT_TYPES = (JSON_CONTENT_TYPE, CSV_CONTENT_TYPE)


def _load_core():
    """Import iris_model.py from this file's own directory.

    Loading it by path (without registering it in sys.modules) means the core that is used is
    always the one shipped next to this file, whatever the working directory or sys.path is, and
    two releases loaded into one process cannot shadow each other. If the file is absent (the
    container may pip-install the code directory as top-level modules), fall back to a normal
    import.
    """
    path = os.path.join(_HERE, "iris_model.py")
    if os.path.isfile(path):
        spec = importlib.util.spec_from_file_location("_lastmile_iris_model", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    import iris_model  # noqa: E402  (fallback, see docstring)

    return iris_model


iris_model = _load_core()


def _media_type(header):
    """'application/json; charset=utf-8' -> 'application/json'."""
    return (header or "").split(";", 1)[0].strip().lower()


def _as_text(request_body):
    if isinstance(request_body, (bytes, bytearray)):
        try:
            return bytes(request_body).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("request body is not valid UTF-8")
    if isinstance(request_body, str):
        return request_body
    raise ValueError("unsupported request body type {}".format(type(request_body).__name__))


def _parse_json(text):
    try:
        payload = json.loads(text)
    except ValueError as error:
        raise ValueError("request body is not valid JSON: {}".format(error))
    if not isinstance(payload, dict) or "instances" not in payload:
        raise ValueError('JSON request must be an object of the form {"instances": [[...], ...]}')
    return payload["instances"]


def _parse_csv(text):
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = []
        for cell in line.split(","):
            try:
                row.append(float(cell.strip()))
            except ValueError:
                raise ValueError(
                    "CSV line {}: {!r} is not a number (send numbers only, no header)".format(
                        line_number, cell.strip()
                    )
                )
        rows.append(row)
    return rows


def model_fn(model_dir):
    """Load the model from the extracted model.tar.gz (model.json at its root)."""
    return iris_model.load_model(model_dir)


def input_fn(request_body, content_type):
    """Deserialize a request into a 2-D float array (rows x features)."""
    media_type = _media_type(content_type)
    if media_type == JSON_CONTENT_TYPE:
        instances = _parse_json(_as_text(request_body))
    elif media_type == CSV_CONTENT_TYPE:
        instances = _parse_csv(_as_text(request_body))
    else:
        raise ValueError(
            "unsupported content type {!r}; use one of {}".format(
                content_type, ", ".join(SUPPORTED_CONTENT_TYPES)
            )
        )
    return iris_model.as_matrix(instances)


def predict_fn(input_data, model):
    """Predict labels and class probabilities; checks the feature count against the model."""
    return model.predict(input_data)


def output_fn(prediction, accept):
    """Serialize to JSON; returns (body, content type) as the container expects."""
    accepted = [_media_type(part) for part in (accept or "").split(",")]
    if not any(a in ("", "*/*", "application/*", JSON_CONTENT_TYPE) for a in accepted):
        raise ValueError(
            "unsupported accept type {!r}; this model responds with {}".format(
                accept, JSON_CONTENT_TYPE
            )
        )
    return json.dumps(prediction), JSON_CONTENT_TYPE
