"""Golden sets: pinned in the manifest, asked of the real MLServer (V2) and of SageMaker (moto's runtime).

The two releases' probabilities differ on every row (the first failing row is 0) and their labels on three
of the seven rows (build.py picks those rows; the first is row 4), so a server running one release fails
the golden set of the other even on labels alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from lastmile import golden
from lastmile.exitcodes import ExitCode
import moto_sagemaker
from serving_harness import MODEL, free_ports
from sklearn_container import Container

pytestmark = pytest.mark.serving

FIRST_DIFFERENT_ROW = 4  # load_iris() row 77


@pytest.fixture(scope="module")
def sets():
    return {v: golden.load_golden_set(MODEL, v) for v in ("1.0.0", "1.1.0")}


def run_verb(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lastmile")
    golden.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["golden", *argv])
    return args.func(args)


# -- the pinned sets ---------------------------------------------------------------------------------------

def test_each_release_pins_a_golden_set_that_tells_the_releases_apart(sets):
    old, new = sets["1.0.0"], sets["1.1.0"]
    assert [r.input for r in old.rows] == [r.input for r in new.rows] and len(new.rows) == 7
    differing = [i for i, (a, b) in enumerate(zip(old.rows, new.rows)) if a.label != b.label]
    assert differing == [4, 5, 6]
    assert new.rows[0].input == (5.1, 3.5, 1.4, 0.2) and new.rows[0].label == "setosa"
    assert new.probability_tolerance == 1e-4


def test_a_release_without_a_golden_set_is_refused():
    document = {"models": {MODEL: {"releases": {"9.9.9": {"artifact": "x"}}}}}
    with pytest.raises(golden.GoldenError, match="has no golden set"):
        golden.golden_set_from_manifest(document, MODEL, "9.9.9")
    with pytest.raises(golden.GoldenError, match=r"not in model_artifacts/manifest.json \(releases: iris-classifier 9.9.9\)"):
        golden.golden_set_from_manifest(document, MODEL, "1.0.0")


def test_compare_names_the_first_failing_row(sets):
    pinned = sets["1.1.0"]
    right = golden.Answer("1.1.0", tuple(r.label for r in pinned.rows), tuple(r.probabilities for r in pinned.rows))
    assert golden.compare(pinned, right, "x").passed
    nudged = list(right.probabilities)
    nudged[2] = (nudged[2][0] + 2e-4, nudged[2][1] - 2e-4, nudged[2][2])
    result = golden.compare(pinned, golden.Answer("1.1.0", right.labels, tuple(nudged)), "x")
    assert result.failure.index == 2 and "differ by up to 0.0002 (tolerance 0.0001)" in result.failure.reason
    short = golden.compare(pinned, golden.Answer("1.1.0", right.labels[:3], right.probabilities[:3]), "x")
    assert short.failure.index == 3 and short.failure.reason.startswith("no answer")
    other = golden.compare(pinned, golden.Answer("1.0.0", right.labels, right.probabilities), "x")
    assert not other.passed and other.failure is None
    assert other.problem == "the endpoint says model_version '1.0.0'; the golden set is of 1.1.0"


# -- V2 against the real MLServer ---------------------------------------------------------------------------

def test_the_right_release_passes_over_v2(green_server, sets):
    result = golden.check_v2(sets["1.1.0"], green_server.base_url)
    assert result.passed, result.message()
    assert result.served_version == "1.1.0" and result.to_evidence()["passed"] is True


def test_another_release_fails_naming_the_row(green_server, sets):
    result = golden.check_v2(sets["1.0.0"], green_server.base_url)  # the server runs 1.1.0
    assert not result.passed
    failure = result.failure  # the releases' probabilities differ already on row 0, the label on row 4
    assert (failure.index, failure.input, failure.expected_label, failure.got_label) == (
        0, (5.1, 3.5, 1.4, 0.2), "setosa", "setosa")
    message = result.message()
    assert "row 0: input [5.1, 3.5, 1.4, 0.2]: probabilities differ by up to 0.0194 (tolerance 0.0001)" in message
    assert "model_version '1.1.0'; the golden set is of 1.0.0" in message
    evidence = result.to_evidence()
    assert evidence["passed"] is False and evidence["first_failing_row"]["index"] == 0
    print("\n" + message)
    labels_only = dataclasses.replace(sets["1.0.0"], probability_tolerance=1.0)
    failure = golden.check_v2(labels_only, green_server.base_url).failure
    assert (failure.index, failure.input, failure.expected_label, failure.got_label) == (
        FIRST_DIFFERENT_ROW, (6.7, 3.0, 5.0, 1.7), "virginica", "versicolor")
    assert failure.reason == "label 'versicolor', pinned 'virginica'"


def test_the_verb_exit_codes(green_server, capsys):
    assert run_verb("--stack", "onprem-local", "--url", green_server.base_url) == ExitCode.OK  # active: green 1.1.0
    assert run_verb("--stack", "onprem-local", "--slot", "blue", "--url", green_server.base_url,
                    "--evidence") == ExitCode.FINDINGS
    out, err = capsys.readouterr()
    assert "stack onprem-local slot blue: golden set of iris-classifier 1.0.0" in err and "FAILED\n  row 0:" in err
    assert json.loads(out.strip().splitlines()[-1])["first_failing_row"]["index"] == 0
    (closed,) = free_ports(1)
    assert run_verb("--stack", "onprem-local", "--url", f"http://127.0.0.1:{closed}", "--timeout", "2") \
        == ExitCode.UNAVAILABLE
    assert "could not check: POST http://127.0.0.1:" in capsys.readouterr().err
    assert run_verb("--stack", "onprem-nowhere", "--url", green_server.base_url) == ExitCode.REFUSED
    assert run_verb("--stack", "onprem-local", "--slot", "purple", "--url", green_server.base_url) == ExitCode.REFUSED
    assert run_verb("--stack", "onprem-local", "--url", "ftp://x") == ExitCode.REFUSED
    assert run_verb("--stack", "onprem-local") == ExitCode.REFUSED
    err = capsys.readouterr().err
    assert "--slot 'purple': stack onprem-local has slots blue, green" in err
    assert "--url 'ftp://x': scheme ftp://; only http and https are asked" in err


def test_https_is_verified(tls, tmp_path, sets):
    """An https URL whose certificate the trust store does not vouch for: could not check, not a pass."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://localhost:{server.server_address[1]}"
        with pytest.raises(golden.EndpointUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            golden.check_v2(sets["1.1.0"], url, timeout_seconds=5)
        result = golden.check_v2(sets["1.1.0"], url, timeout_seconds=5, ca_file=str(tls.ca))  # trusted: it answers
        assert not result.passed and "HTTP 500" in result.problem
    finally:
        server.shutdown()
        server.server_close()


# -- SageMaker: moto's sagemaker-runtime answering what code/inference.py answers ---------------------------

@pytest.fixture
def sagemaker_runtime(moto_backends):
    """moto's server on 127.0.0.1: a sagemaker-runtime client for it, and ``answer(body, type)`` queues a result."""
    with moto_sagemaker.sagemaker_runtime("eu-west-1") as runtime:
        yield runtime.client(), lambda body, content_type: runtime.answer(
            body, content_type, InvokedProductionVariant="primary")


@pytest.mark.parametrize("served_version, passes", [("1.1.0", True), ("1.0.0", False)])
def test_sagemaker_endpoint_golden_set(sagemaker_runtime, sets, tmp_path, served_version, passes):
    client, answer = sagemaker_runtime
    pinned = sets["1.1.0"]
    from infra.manifest import load_manifest

    container = Container(load_manifest()[(MODEL, served_version)].artifact_path, tmp_path)
    answer(*container.invoke(golden.sagemaker_request(pinned), "application/json", "application/json"))
    result = golden.check_sagemaker(pinned, "iris-prod", client)
    assert result.passed is passes, result.message()
    assert result.served_version == served_version
    if not passes:
        assert result.failure.index == 0 and "probabilities differ" in result.failure.reason
        labels_only = dataclasses.replace(pinned, probability_tolerance=1.0)
        failure = golden.check_sagemaker(labels_only, "iris-prod", client).failure  # moto: same body again
        assert (failure.index, failure.expected_label, failure.got_label) == (FIRST_DIFFERENT_ROW, "versicolor",
                                                                              "virginica")
        assert result.endpoint == "sagemaker endpoint iris-prod"


def test_sagemaker_unreachable_is_unavailable(sets):
    import boto3
    from botocore.config import Config

    (closed,) = free_ports(1)
    client = boto3.client("sagemaker-runtime", endpoint_url=f"http://127.0.0.1:{closed}", region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    with pytest.raises(golden.EndpointUnavailable, match="InvokeEndpoint on sagemaker endpoint x failed"):
        golden.check_sagemaker(sets["1.1.0"], "x", client)
