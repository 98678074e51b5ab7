"""dev -> staging -> prod and back, as the README and promotions/README.md tell a user to do it."""

from __future__ import annotations

import json
import subprocess
from contextlib import contextmanager

import moto_sagemaker
from sklearn_container import Container

from infra.manifest import load_manifest
from lastmile import golden
from lastmile.stack_edit import round_trip_yaml


def _edit_serving(path, edit) -> None:
    """A reviewed edit of a stack file (what a person does in a pull request), comments and layout kept."""
    yaml = round_trip_yaml()
    document = yaml.load(path.read_text())
    edit(document["config"]["lastmile:serving"])
    with path.open("w") as handle:
        yaml.dump(document, handle)


def _commit(checkout, message: str) -> None:
    env = {**checkout.env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    for argv in (["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", *argv], cwd=checkout.root, env=env, check=True, capture_output=True)


def _run(checkout, *args, code=0, expect=(), env=None):
    done = checkout.lastmile(*args, extra_env=env)
    output = done.stdout + done.stderr
    assert done.returncode == code, f"lastmile {' '.join(args)} -> {done.returncode}:\n{output}"
    assert "Traceback" not in output, output
    for text in expect:
        assert text in output, f"{text!r} not in:\n{output}"
    return output


def _endpoint_config_name(checkout, stack: str) -> str:
    """What `pulumi stack output endpoint_config_name` gives after a deploy (here: the offline graph's)."""
    _run(checkout, "synth", stack)
    return json.loads((checkout.root / "build" / "synth" / f"{stack}.json").read_text())["outputs"]["endpoint_config_name"]


WORKFLOW = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "4242", "GITHUB_REPOSITORY": "acme/lastmile"}
SIGNED = "signed by trusted key"
REGION = "eu-central-1"  # aws-staging's


@contextmanager
def sagemaker_serving(tmp_path):
    """moto's sagemaker-runtime on 127.0.0.1; ``serve(version)`` makes the endpoint answer the next
    InvokeEndpoint with what that release's own code/inference.py answers to the golden rows."""
    with moto_sagemaker.sagemaker_runtime(REGION) as runtime:
        def serve(version: str) -> None:
            container = Container(load_manifest()[("iris-classifier", version)].artifact_path, tmp_path / version)
            rows = golden.sagemaker_request(golden.load_golden_set("iris-classifier", "1.1.0"))
            runtime.answer(*container.invoke(rows, "application/json", "application/json"))

        yield serve, runtime.env()


def test_dev_to_staging_to_prod_and_rollback(fresh_checkout, tmp_path):
    c = fresh_checkout
    # Once per team: a CI key (generated here, never committed), its public half trusted in a reviewed commit.
    key = tmp_path / "secrets" / "ci.pem"
    _run(c, "promote", "trust-key", "--name", "ci", "--environments", "dev,staging,prod", "--generate-ed25519",
         str(key), expect=("CODEOWNERS", "LASTMILE_EVIDENCE_KEY"))
    ci = {**WORKFLOW, "LASTMILE_EVIDENCE_KEY": key.read_text()}  # the deploy workflow's secret
    # The state a release starts from: dev serves 1.1.0; staging and prod serve 1.0.0 and have nothing staged.
    for stack in ("aws-staging", "aws-prod"):
        _edit_serving(c.stack_file(stack), lambda s: (s.pop("shadow_slot", None), s["slots"].pop("green")))
    _commit(c, "staging and prod serve 1.0.0 only")
    _run(c, "synth", "aws-staging")
    _run(c, "synth", "aws-prod")

    # dev -> staging: evidence typed by hand is enough outside prod.
    _run(c, "promote", "--topology", "aws", "--from", "dev", "--to", "staging", code=2,
         expect=("no evidence of a good deployment in aws-dev",))
    _run(c, "promote", "record-verification", "--stack", "aws-dev", "--endpoint-config-name",
         _endpoint_config_name(c, "aws-dev"), "--verifier", "me", expect=("unsigned: manual",))
    _run(c, "promote", "--topology", "aws", "--from", "dev", "--to", "staging",
         expect=("promoted iris-classifier 1.1.0", "aws-staging slot green", "active_slot blue -> green"))
    for verb in (("synth", "aws-staging"), ("policy", "aws-staging"), ("contract", "--stack", "aws-staging")):
        _run(c, *verb)
    _run(c, "plan", "--stack", "aws-staging", "--base", "HEAD", code=1, expect=("1.1.0",))
    _edit_serving(c.stack_file("aws-staging"), lambda s: s.__setitem__("active_slot", "green"))  # the reviewed switch
    _run(c, "synth", "aws-staging")
    _commit(c, "staging serves 1.1.0")

    # staging -> prod: only evidence the deploy workflow recorded counts.
    config = _endpoint_config_name(c, "aws-staging")
    _run(c, "promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name", config,
         "--verifier", "me")
    _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod", code=2,
         expect=("only manual evidence in aws-staging", "prod needs evidence signed by a trusted CI key",
                 "LASTMILE_EVIDENCE_KEY", "deploy aws-staging through the deploy workflow"))
    # A shell that sets GITHUB_* is not CI: still unsigned, still refused.
    _run(c, "promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name", config,
         "--verifier", "lastmile.verify", env=WORKFLOW, expect=("unsigned: manual",))
    _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod", code=2, env=WORKFLOW,
         expect=("only manual evidence in aws-staging",))
    _run(c, "promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name", config,
         "--verifier", "lastmile.verify", env=ci, expect=(SIGNED,))
    _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod", code=2,
         expect=("no passed golden set in its evidence from aws-staging", "--golden-sagemaker-endpoint"))
    # The workflow's verification asks the deployed endpoint the release's golden set (moto's
    # sagemaker-runtime answering what a release's own code/inference.py answers).
    with sagemaker_serving(tmp_path) as (serve, aws):
        serve("1.0.0")  # the endpoint still serves the old model: row 0 differs, the release is revoked
        _run(c, "promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name", config,
             "--verifier", "lastmile.verify", "--golden-sagemaker-endpoint", "iris-staging", env={**ci, **aws},
             code=1, expect=("FAILED", "row 0: input [5.1, 3.5, 1.4, 0.2]", "must not receive traffic"))
        _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod", code=2,
             expect=("no evidence of a good deployment in aws-staging", "golden set of iris-classifier 1.1.0", "row 0"))
        serve("1.1.0")  # after the fix
        _run(c, "promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name", config,
             "--verifier", "lastmile.verify", "--golden-sagemaker-endpoint", "iris-staging", env={**ci, **aws},
             expect=("all 7 rows answered as pinned", SIGNED))
    _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod",
         expect=("promoted iris-classifier 1.1.0", "aws-prod slot green"))
    for verb in (("synth", "aws-prod"), ("policy", "aws-prod"), ("contract", "--stack", "aws-prod")):
        _run(c, *verb)
    _run(c, "plan", "--stack", "aws-prod", "--base", "HEAD", code=1, expect=("1.1.0",))
    _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod",
         expect=("already in aws-prod slot green (idle): nothing to promote",))
    _run(c, "promote", "status", "--topology", "aws", expect=("aws-prod           green (idle  ) iris-classifier 1.1.0",))
    _run(c, "promote", "check-log", "--against", "HEAD", expect=("intact", "3 signed by a trusted key"))

    # The switch, then a rollback: active_slot back to blue, which kept 1.0.0.
    _edit_serving(c.stack_file("aws-prod"), lambda s: s.__setitem__("active_slot", "green"))
    _run(c, "synth", "aws-prod")
    _commit(c, "prod serves 1.1.0")
    _edit_serving(c.stack_file("aws-prod"), lambda s: s.__setitem__("active_slot", "blue"))
    _run(c, "synth", "aws-prod")
    _run(c, "policy", "aws-prod")
    _run(c, "plan", "--stack", "aws-prod", "--base", "HEAD", code=1, expect=("1.0.0",))
    _run(c, "promote", "status", "--topology", "aws", expect=("aws-prod           blue  (active) iris-classifier 1.0.0",))
