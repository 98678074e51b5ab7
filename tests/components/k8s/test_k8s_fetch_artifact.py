"""The init container's fetcher: its SigV4 signature is botocore's.

The fetch itself (TLS, digest check, refusals, safe unpacking, then MLServer serving what it unpacked) runs
as the rendered init container against a TLS S3 store in tests/serving/test_fetch_then_serve.py.
"""

from __future__ import annotations

import datetime
import importlib.util
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from components.k8s.model_server import RUNTIME_DIR

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
