"""The team setup of shared stacks, end to end against a local moto server (S3 + KMS on 127.0.0.1): state
in an S3 bucket (`pulumi login s3://...`), secrets with the `awskms://` provider, a stack initialised with
the team's key, secrets set, `lastmile up` and `preview` through the engine, and the state object in the
bucket holding no plaintext secret.

The stack is onprem-dev of a repository copy, switched to render mode (the only provider the engine has
here is Kubernetes); everything else is what a team does.
"""

from __future__ import annotations

import json
import re
import subprocess

import boto3
import pytest
import yaml
from rungs import moto_server

pytestmark = pytest.mark.engine

STACK = "onprem-dev"
REGION = "us-east-1"
BUCKET = "lastmile-state"
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBteamtestcertificatebody\n-----END CERTIFICATE-----\n"
STORE_KEY = '{"access_key_id":"team-test","secret_access_key":"team-test-value-never-in-state"}'  # pragma: allowlist secret


@pytest.fixture
def moto_endpoint():
    with moto_server() as url:
        yield url


def test_team_stack_state_in_s3_and_secrets_under_kms_hold_no_plaintext(make_checkout, engine_bin, moto_endpoint) -> None:
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    key_id = kms.create_key(Description="lastmile-dev stack secrets")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/lastmile-dev", TargetKeyId=key_id)

    checkout = make_checkout("team-backend")
    local = yaml.safe_load(checkout.stack_file("onprem-gitops").read_text())
    config = {k: v for k, v in local["config"].items() if not (isinstance(v, dict) and "secure" in v)}
    config["lastmile:onprem"] = {**config["lastmile:onprem"], "namespace": "lastmile-dev",
                                 "render_directory": "rendered/onprem-dev"}
    secrets_provider = f"awskms://alias/lastmile-dev?region={REGION}&endpoint={moto_endpoint}"
    checkout.stack_file(STACK).write_text(yaml.safe_dump({"config": config, "secretsprovider": secrets_provider}))

    backend = f"s3://{BUCKET}?region={REGION}&endpoint={moto_endpoint}&use_path_style=true&disable_https=true"
    env = {**checkout.env, **credentials, "PULUMI_BACKEND_URL": backend, "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_HOME": checkout.env["LASTMILE_PULUMI_HOME"]}

    def pulumi(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run([str(engine_bin / "pulumi"), *args, "--non-interactive"], cwd=checkout.root, env=env,
                                input=stdin, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, f"pulumi {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result.stdout

    pulumi("stack", "init", STACK, "--secrets-provider", secrets_provider)
    pulumi("config", "set", "--secret", "lastmile:tls_certificate", "--stack", STACK, stdin=CERTIFICATE)
    pulumi("config", "set", "--secret", "lastmile:tls_private_key", "--stack", STACK, stdin="team-test-private-key")
    pulumi("config", "set", "--secret", "lastmile:model_store_credentials", "--stack", STACK, stdin=STORE_KEY)

    stack_text = checkout.stack_file(STACK).read_text()
    stack_document = yaml.safe_load(stack_text)
    assert stack_document["encryptedkey"], "the data key, encrypted with the team's KMS key, is in the stack file"
    assert "BEGIN CERTIFICATE" not in stack_text and "team-test-value" not in stack_text
    assert len(re.findall(r"secure: ", stack_text)) == 3

    up = subprocess.run([*checkout.lastmile_argv("up", STACK)], cwd=checkout.root, env=env, capture_output=True,
                        text=True, timeout=600, check=False)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    preview = subprocess.run([*checkout.lastmile_argv("preview", STACK)], cwd=checkout.root, env=env,
                             capture_output=True, text=True, timeout=600, check=False)
    assert preview.returncode == 0 and "no changes" in preview.stderr, preview.stdout[-3000:] + preview.stderr

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    state_keys = [k for k in keys if k.endswith(f"stacks/lastmile/{STACK}.json")]
    assert state_keys, keys
    state = s3.get_object(Bucket=BUCKET, Key=state_keys[0])["Body"].read().decode()
    deployment = json.loads(state)
    assert deployment["checkpoint"]["latest"]["resources"], "the state lists the deployed resources"
    for plaintext in ("BEGIN CERTIFICATE", "teamtestcertificatebody", "team-test-value-never-in-state", "team-test-private-key"):
        assert plaintext not in state
    assert "ciphertext" in state  # secret inputs are stored encrypted
    assert not (checkout.root / ".pulumi-state").exists(), "a team stack never touches the local file backend"

    # `preview --base` of a team stack never deploys the base revision into the team's state (or anywhere):
    # its secrets are under the team's key, which a throwaway state cannot use, so it is refused.
    objects = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    base = subprocess.run([*checkout.lastmile_argv("preview", STACK, "--base", "HEAD")], cwd=checkout.root, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert base.returncode == 2 and "a throwaway local state" in base.stderr, base.stdout[-3000:] + base.stderr
    assert "Traceback" not in base.stdout + base.stderr
    assert {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])} == objects
