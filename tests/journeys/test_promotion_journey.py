"""dev -> staging -> prod and back, as the README and promotions/README.md tell a user to do it."""

from __future__ import annotations

import json
import subprocess

from ruamel.yaml import YAML


def _edit_serving(path, edit) -> None:
    """A reviewed edit of a stack file (what a person does in a pull request), comments kept."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
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


def test_dev_to_staging_to_prod_and_rollback(fresh_checkout):
    c = fresh_checkout
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
         _endpoint_config_name(c, "aws-dev"), "--verifier", "me", expect=("manual",))
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
         expect=("only manual evidence in aws-staging",))
    _run(c, "promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name", config,
         "--verifier", "lastmile.verify", env=WORKFLOW, expect=("by the workflow run",))
    _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod",
         expect=("promoted iris-classifier 1.1.0", "aws-prod slot green"))
    for verb in (("synth", "aws-prod"), ("policy", "aws-prod"), ("contract", "--stack", "aws-prod")):
        _run(c, *verb)
    _run(c, "plan", "--stack", "aws-prod", "--base", "HEAD", code=1, expect=("1.1.0",))
    _run(c, "promote", "--topology", "aws", "--from", "staging", "--to", "prod",
         expect=("already in aws-prod slot green (idle): nothing to promote",))
    _run(c, "promote", "status", "--topology", "aws", expect=("aws-prod           green (idle  ) iris-classifier 1.1.0",))
    _run(c, "promote", "check-log", "--against", "HEAD", expect=("intact",))

    # The switch, then a rollback: active_slot back to blue, which kept 1.0.0.
    _edit_serving(c.stack_file("aws-prod"), lambda s: s.__setitem__("active_slot", "green"))
    _run(c, "synth", "aws-prod")
    _commit(c, "prod serves 1.1.0")
    _edit_serving(c.stack_file("aws-prod"), lambda s: s.__setitem__("active_slot", "blue"))
    _run(c, "synth", "aws-prod")
    _run(c, "policy", "aws-prod")
    _run(c, "plan", "--stack", "aws-prod", "--base", "HEAD", code=1, expect=("1.0.0",))
    _run(c, "promote", "status", "--topology", "aws", expect=("aws-prod           blue  (active) iris-classifier 1.0.0",))
