"""moto's sagemaker-runtime on 127.0.0.1 with canned InvokeEndpoint answers (moto's static-results API):
what the golden-set checks and the promotion journey ask instead of a real SageMaker endpoint."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.server import ThreadedMotoServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class SageMakerRuntime:
    base: str
    region: str

    def client(self) -> Any:
        import boto3

        return boto3.client("sagemaker-runtime", endpoint_url=self.base, region_name=self.region,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def env(self) -> dict[str, str]:
        """What a `lastmile` process needs to ask this server instead of AWS."""
        return {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.base, **CREDENTIALS}

    def answer(self, body: str, content_type: str, **extra: str) -> None:
        """The endpoint's answer to the next InvokeEndpoint (and to identical ones after it: moto remembers
        a request's answer, so the in-process state is reset first)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        request = urllib.request.Request(f"{self.base}/moto-api/static/sagemaker/endpoint-results", method="POST",
                                         data=json.dumps({"region": self.region, "results": [
                                             {"Body": body, "ContentType": content_type, **extra}]}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201


@contextmanager
def sagemaker_runtime(region: str) -> Iterator[SageMakerRuntime]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield SageMakerRuntime(f"http://{host}:{port}", region)
    finally:
        server.stop()
