"""lastmile.verify against a real local SageMaker API (moto's server on 127.0.0.1) and as pure checks.

moto implements create/describe of models, endpoint configs and endpoints but not UpdateEndpoint
(docs/design-notes.md §Offline verification): a stack that deployed config B while the endpoint still runs config A is, from
the verifier's side, exactly a silent rollback. Statuses and failure reasons moto never produces
are set on its in-process backend (the threaded server shares it).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from rungs import moto_server
import requests
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from lastmile import cli, verify
from lastmile.verify import ExitCode, Expected, Status, check, exit_code

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/lastmile-sagemaker"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving@sha256:" + "a" * 64


def main(argv: list[str]) -> int:
    """`lastmile verify ARGV`, in process."""
    return cli.main(["verify", *argv])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """One moto server per module, on a free loopback port; state is reset per test."""
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Dummy credentials only; no profile, config file or instance metadata can leak in."""
    leaky = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
    for key in leaky:
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@dataclass
class Deployed:
    """Model m-a, config cfg-a and endpoint ep (on cfg-a) in a fresh moto."""

    url: str
    tmp_path: Path
    client: Any

    def backend_endpoint(self, name: str = "ep") -> Any:
        return get_backend("sagemaker")[DEFAULT_ACCOUNT_ID][REGION].endpoints[name]

    def add_config(self, config: str, model: str) -> None:
        self.client.create_model(ModelName=model, ExecutionRoleArn=ROLE,
                                 PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://artifacts/{model}.tar.gz"})
        self.client.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "primary", "ModelName": model, "InitialInstanceCount": 2, "InstanceType": "ml.m5.large",
        }])

    def outputs(self, **overrides: Any) -> str:
        outputs: dict[str, Any] = {"endpoint_name": "ep", "endpoint_config_name": "cfg-a", "region": REGION,
                                   "variant_name": "primary", "model_names": ["m-a"]}
        outputs.update(overrides)
        path = self.tmp_path / "outputs.json"
        path.write_text(json.dumps({k: v for k, v in outputs.items() if v is not None}))
        return str(path)

    def verify(self, *extra: str, **overrides: Any) -> int:
        return main(["--outputs-file", self.outputs(**overrides), "--endpoint-url", self.url, *extra])


@pytest.fixture
def deployed(moto_url: str, aws_env: dict[str, str], tmp_path: Path) -> Deployed:
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    client = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_url)
    env = Deployed(moto_url, tmp_path, client)
    env.add_config("cfg-a", "m-a")
    client.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-a")
    return env


# ---------------------------------------------------------------------------------------------
# Against moto


def test_endpoint_running_the_deployed_config_verifies(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert deployed.verify() == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == [
        "endpoint-status", "endpoint-config", "variant-name", "variant-models", "variant-capacity:primary",
    ]
    assert all(line.startswith("ok ") for line in lines[:-1]), out
    assert lines[-1] == "verified: endpoint ep in eu-west-1 (5 ok) -> exit 0"


def test_endpoint_still_on_the_old_config_is_a_rollback(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.add_config("cfg-b", "m-b")  # the stack deployed B; moto cannot UpdateEndpoint, so ep stays on A

    code = deployed.verify(endpoint_config_name="cfg-b", model_names=["m-b"], rollback_alarm_names=["ep-5xx"])

    out = capsys.readouterr().out
    assert code == ExitCode.FAILED == 1
    assert "FAIL    endpoint-config" in out
    assert "SageMaker rolled endpoint ep back: it runs config cfg-a, the stack deployed config cfg-b" in out
    assert "Check the rollback alarms (ep-5xx) in CloudWatch" in out
    assert "aws sagemaker describe-endpoint --endpoint-name ep --region eu-west-1" in out
    # The models check looks at what really runs: config A serves m-a, not the deployed m-b.
    assert "config cfg-a serves primary: m-a; the stack deployed models m-b" in out


def test_rollback_message_carries_the_deployment_details(deployed: Deployed,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    deployed.add_config("cfg-b", "m-b")
    endpoint = deployed.backend_endpoint()
    # What DescribeEndpoint shows after a blue/green update was rolled back by an alarm.
    endpoint.failure_reason = "Rolled back: alarm ep-5xx went into ALARM during the canary bake."
    endpoint.last_deployment_config = {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
            "Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep-5xx"}, {"AlarmName": "ep-latency"}]},
    }

    code = deployed.verify("--json", endpoint_config_name="cfg-b", model_names=["m-b"])

    report = json.loads(capsys.readouterr().out)
    assert code == report["exit_code"] == 1
    by_check = {f["check"]: f for f in report["findings"]}
    assert by_check["endpoint-status"]["status"] == "FAIL"
    message = by_check["endpoint-config"]["message"]
    assert by_check["endpoint-config"]["status"] == "FAIL"
    assert "cfg-a" in message and "cfg-b" in message
    assert "FailureReason: Rolled back: alarm ep-5xx went into ALARM" in message
    assert "last deployment: CANARY 10 CAPACITY_PERCENT" in message
    assert "rollback alarms: ep-5xx, ep-latency" in message


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("Failed", "The primary container for production variant primary did not pass the ping health check."),
        ("UpdateRollbackFailed", "Rollback to config cfg-a failed: insufficient capacity."),
        ("RollingBack", None),
        ("InService", "Update failed and was rolled back."),  # settled, but the update did not land
    ],
)
def test_failed_or_rolling_back_endpoint_fails(deployed: Deployed, capsys: pytest.CaptureFixture[str],
                                                status: str, reason: str | None) -> None:
    endpoint = deployed.backend_endpoint()
    endpoint.endpoint_status = status
    endpoint.failure_reason = reason

    assert deployed.verify() == 1

    out = capsys.readouterr().out
    status_line = next(line for line in out.splitlines() if " endpoint-status " in line)
    assert status_line.startswith("FAIL") and f"endpoint ep is {status}" in status_line
    if reason:
        assert reason in status_line


def test_missing_endpoint_fails_with_a_clear_message(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = deployed.verify(endpoint_name="ep-gone")

    captured = capsys.readouterr()
    assert code == 3  # could not check
    assert "cannot describe endpoint ep-gone: it does not exist in region eu-west-1" in captured.out
    assert "Could not find endpoint" in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_deleted_running_config_fails(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.client.delete_endpoint_config(EndpointConfigName="cfg-a")  # complaint #2: deleted under the endpoint

    assert deployed.verify() == 1
    out = capsys.readouterr().out
    assert "cannot read endpoint config cfg-a that endpoint ep runs" in out


def test_no_credentials_fails_without_traceback(deployed: Deployed, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    assert deployed.verify() == 3  # could not check
    captured = capsys.readouterr()
    assert "no AWS credentials to describe endpoint ep" in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_waits_while_updating_then_verifies(deployed: Deployed, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = deployed.backend_endpoint()
    endpoint.endpoint_status = "Updating"
    assert deployed.verify() == ExitCode.DEPLOYING == 3
    assert "still deploying" in capsys.readouterr().out

    # The update finishes while the verifier polls: the third DescribeEndpoint sees InService.
    calls: list[str] = []
    real_client = verify.sagemaker_client

    def client(region: str, endpoint_url: str | None) -> Any:
        sagemaker = real_client(region, endpoint_url)
        describe = sagemaker.describe_endpoint

        def describe_endpoint(**kwargs: Any) -> dict[str, Any]:
            calls.append(kwargs["EndpointName"])
            if len(calls) == 3:
                endpoint.endpoint_status = "InService"
            return describe(**kwargs)

        sagemaker.describe_endpoint = describe_endpoint
        return sagemaker

    monkeypatch.setattr(verify, "sagemaker_client", client)
    assert deployed.verify("--wait-seconds", "60", "--poll-seconds", "0.01") == 0
    captured = capsys.readouterr()
    assert calls == ["ep", "ep", "ep"]
    assert captured.err.count("endpoint ep is Updating; waiting") == 2
    assert captured.out.splitlines()[-1].startswith("verified:")


def test_wait_gives_up_after_the_limit(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.backend_endpoint().endpoint_status = "Creating"
    assert deployed.verify("--wait-seconds", "0.2", "--poll-seconds", "0.05") == 3
    assert "PENDING endpoint-status" in capsys.readouterr().out


def test_verify_runs_as_the_lastmile_command(deployed: Deployed, aws_env: dict[str, str]) -> None:
    env = {**os.environ, **aws_env, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "lastmile", "verify", "--outputs-file", deployed.outputs(), "--endpoint-url", deployed.url],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "verified: endpoint ep in eu-west-1 (5 ok) -> exit 0"

    rolled_back = subprocess.run(
        [sys.executable, "-m", "lastmile", "verify", "--outputs-file", deployed.outputs(endpoint_config_name="cfg-b"),
         "--endpoint-url", deployed.url, "--json"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120, check=False,
    )
    assert rolled_back.returncode == 1
    assert json.loads(rolled_back.stdout)["exit_code"] == 1


def test_stack_outputs_come_from_the_pulumi_cli(deployed: Deployed, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """--stack runs `pulumi stack output --json --show-secrets=false --stack <stack>` (a stand-in CLI here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "pulumi-args"
    outputs = json.dumps({"endpoint_name": "ep", "endpoint_config_name": "cfg-a", "region": REGION})
    fake = bin_dir / "pulumi"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {args_file}\ncat <<'EOF'\n{outputs}\nEOF\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    assert main(["--stack", "aws-prod", "--endpoint-url", deployed.url]) == 0
    assert args_file.read_text().split() == ["stack", "output", "--json", "--show-secrets=false", "--stack", "aws-prod"]


def test_unusable_outputs_list_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"endpoint_name": "[secret]", "model_names": "m-a"}))

    assert main(["--outputs-file", str(path)]) == 3  # could not check
    err = capsys.readouterr().err
    for problem in ("'endpoint_name' is a secret", "'endpoint_config_name' is missing", "'region' is missing",
                    "'model_names' must be a list"):
        assert problem in err


# ---------------------------------------------------------------------------------------------
# check(): pure, over plain dicts


EXPECTED = Expected(endpoint_name="ep", endpoint_config_name="cfg-b", region=REGION, variant_name="primary",
                    model_names=("m-b",))


def _endpoint(status: str = "InService", config: str = "cfg-b", **extra: Any) -> dict[str, Any]:
    return {"EndpointName": "ep", "EndpointConfigName": config, "EndpointStatus": status,
            "ProductionVariants": [{"VariantName": "primary", "CurrentInstanceCount": 2, "DesiredInstanceCount": 2}],
            **extra}


def _config(name: str = "cfg-b", model: str = "m-b") -> dict[str, Any]:
    return {"EndpointConfigName": name, "ProductionVariants": [{"VariantName": "primary", "ModelName": model}]}


def test_check_all_ok() -> None:
    findings = check(_endpoint(), _config(), EXPECTED)
    assert {f.status for f in findings} == {Status.OK}
    assert exit_code(findings) == ExitCode.OK


@pytest.mark.parametrize("status", ["Updating", "SystemUpdating", "Creating"])
def test_check_updating_is_still_deploying(status: str) -> None:
    findings = check(_endpoint(status=status), _config(), EXPECTED)
    assert exit_code(findings) == ExitCode.DEPLOYING == 3
    status_finding = findings[0]
    assert status_finding.status == Status.PENDING
    assert f"endpoint ep is {status}: still deploying" in status_finding.message


def test_check_update_in_progress_towards_the_deployed_config_is_pending_not_a_rollback() -> None:
    endpoint = _endpoint(status="Updating", config="cfg-a",
                         PendingDeploymentSummary={"EndpointConfigName": "cfg-b", "StartTime": "2026-01-01T00:00:00Z"})
    findings = check(endpoint, _config("cfg-a", "m-a"), EXPECTED)
    config_finding = next(f for f in findings if f.check == "endpoint-config")
    assert config_finding.status == Status.PENDING
    assert "pending deployment of config cfg-b" in config_finding.message


def test_check_wrong_model_fails() -> None:
    findings = check(_endpoint(), _config(model="m-old"), EXPECTED)
    models = next(f for f in findings if f.check == "variant-models")
    assert models.status == Status.FAIL
    assert "serves primary: m-old; the stack deployed models m-b" in models.message
    assert exit_code(findings) == ExitCode.FAILED


def test_check_wrong_variant_name_fails() -> None:
    config = {"EndpointConfigName": "cfg-b", "ProductionVariants": [{"VariantName": "blue", "ModelName": "m-b"}]}
    findings = check(_endpoint(), config, EXPECTED)
    assert next(f for f in findings if f.check == "variant-name").status == Status.FAIL


def test_check_capacity_short_of_desired_fails_when_settled_and_waits_when_updating() -> None:
    short = [{"VariantName": "primary", "CurrentInstanceCount": 1, "DesiredInstanceCount": 2,
              "VariantStatus": [{"Status": "Updating", "StatusMessage": "launching instances"}]}]
    settled = check(_endpoint(ProductionVariants=short), _config(), EXPECTED)
    capacity = next(f for f in settled if f.check == "variant-capacity:primary")
    assert capacity.status == Status.FAIL
    assert "has 1 instances of 2 desired (variant status: Updating: launching instances)" in capacity.message
    assert exit_code(check(_endpoint(status="Updating", ProductionVariants=short), _config(), EXPECTED)) == 3


def test_check_zero_instances_fails_and_serverless_passes() -> None:
    zero = [{"VariantName": "primary", "CurrentInstanceCount": 0}]
    assert exit_code(check(_endpoint(ProductionVariants=zero), _config(), EXPECTED)) == 1
    serverless = [{"VariantName": "primary", "CurrentServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}]
    assert exit_code(check(_endpoint(ProductionVariants=serverless), _config(), EXPECTED)) == 0


def test_check_without_model_names_reports_what_runs_and_passes() -> None:
    expected = Expected(endpoint_name="ep", endpoint_config_name="cfg-b", region=REGION)
    findings = check(_endpoint(), _config(), expected)
    models = next(f for f in findings if f.check == "variant-models")
    assert models.status == Status.SKIP and "serves primary: m-b" in models.message
    assert exit_code(findings) == ExitCode.OK


def test_check_unreadable_config_fails() -> None:
    findings = check(_endpoint(), None, EXPECTED, config_error="ValidationException: Could not find endpoint config")
    models = next(f for f in findings if f.check == "variant-models")
    assert models.status == Status.FAIL and "Could not find endpoint config" in models.message
