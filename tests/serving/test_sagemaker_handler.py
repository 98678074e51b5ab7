"""code/inference.py of each release through the sklearn serving container's request path (sklearn_container.py).

The container itself does not run here (see sklearn_container.py); its dispatch does, on the shipped
artifact: model_fn once, then input_fn -> predict_fn -> output_fn per request, with the container's
body decoding and Content-Type / Accept defaults. Each release must answer its own golden set.
"""

from __future__ import annotations

import json

import pytest

from infra.manifest import load_manifest
from lastmile import golden
from serving_harness import MODEL
from sklearn_container import Container

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module", params=["1.0.0", "1.1.0"])
def container(request, tmp_path_factory):
    version = request.param
    return version, Container(load_manifest()[(MODEL, version)].artifact_path, tmp_path_factory.mktemp(version))


def test_each_release_answers_its_golden_set(container):
    version, served = container
    pinned = golden.load_golden_set(MODEL, version)
    body, mimetype = served.invoke(golden.sagemaker_request(pinned), "application/json", "application/json")
    assert mimetype == "application/json"
    result = golden.compare(pinned, golden.parse_sagemaker_response(body.encode()), "handler")
    assert result.passed, result.message()


def test_container_defaults_csv_and_accept_any(container):
    version, served = container
    pinned = golden.load_golden_set(MODEL, version)
    csv = "\n".join(",".join(repr(x) for x in row.input) for row in pinned.rows).encode()
    from_csv, _ = served.invoke(csv, "text/csv", "*/*")
    from_default, _ = served.invoke(golden.sagemaker_request(pinned), None, None)  # no Content-Type, no Accept
    assert json.loads(from_csv) == json.loads(from_default)
    assert [p["label"] for p in json.loads(from_csv)["predictions"]] == [r.label for r in pinned.rows]


@pytest.mark.parametrize("body, content_type, accept, message", [
    (b'{"instances": [[5.1, 3.5, 1.4]]}', "application/json", None, "3 features, expected 4"),
    (b"5.1,3.5,1.4,0.2", "application/x-npy", None, "unsupported content type 'application/x-npy'"),
    (b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}', "application/json", "text/csv", "unsupported accept type 'text/csv'"),
])
def test_bad_requests_raise_value_error_naming_the_problem(container, body, content_type, accept, message):
    _, served = container
    with pytest.raises(ValueError, match=message):
        served.invoke(body, content_type, accept)
