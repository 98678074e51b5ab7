"""Bad input, per command: a clear message (field or argument, the value, the fix), exit 2, no traceback, nothing
written (the copy's files are compared before and after), nothing deployed (refusal comes before any engine)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from repo_copy import tree_digest

PEM = "-----BEGIN " + "PRIVATE KEY-----\\nMIIB\\n-----END " + "PRIVATE KEY-----"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    expect: tuple[str, ...]  # the field/argument and the value, in the message
    stack: str = ""  # the stack file to break ...
    old: str = ""  # ... by replacing this text
    new: str = ""  # ... with this (old "" = replace the whole file)
    code: int = 2


def synth(stack: str) -> tuple[str, ...]:
    return ("synth", stack)


GREEN_SLOT = """      green:
        model: iris-classifier
        version: 1.1.0
        sha256: 325e91ebb8ab698301cbcf1f501b4311d34aa92ecc9cb2b049c7469c23ca9227
        image: docker.io/seldonio/mlserver@sha256:f1ce1afa2dddffa9697e51d15e3c7c95d5cdb1e1d31771305307f96eb08e7007
"""

CASES = [
    # The stack file itself (lastmile/stackfile.py)
    Case("yaml-syntax", synth("aws-prod"), ("not valid YAML", "line"), "aws-prod", "  lastmile:rollout:\n",
         "  lastmile:rollout: [\n"),
    Case("not-a-mapping", synth("aws-prod"), ("a stack file is a YAML mapping", "list"), "aws-prod", "", "- a\n- b\n"),
    Case("config-not-a-mapping", synth("aws-dev"), ("'config' must be a mapping",), "aws-dev", "", "config: 3\n"),
    Case("duplicate-key", synth("aws-prod"), ("'wait_seconds'", "given twice"), "aws-prod", "    wait_seconds: 600\n",
         "    wait_seconds: 600\n    wait_seconds: 0\n"),
    Case("namespace-typo", synth("aws-prod"), ("lastmil:serving", "unknown config namespace", "'lastmile:serving'"),
         "aws-prod", "  lastmile:serving:", "  lastmil:serving:"),
    Case("environment-contradicts-name", synth("aws-prod"), ("lastmile:environment = 'dev'", "'aws-prod'"), "aws-prod",
         "lastmile:environment: prod", "lastmile:environment: dev"),
    Case("topology-contradicts-name", synth("aws-dev"), ("lastmile:topology = 'onprem'",), "aws-dev",
         "lastmile:topology: aws", "lastmile:topology: onprem"),
    Case("plaintext-secret", synth("onprem-prod"), ("lastmile:tls_private_key", "secure", "pulumi config set --secret"),
         "onprem-prod", "config:\n", f'config:\n  lastmile:tls_private_key: "{PEM}"\n'),
    Case("private-key-anywhere", synth("onprem-prod"), ("private key",), "onprem-prod", "config:\n",
         f'config:\n  kubernetes:context: "{PEM}"\n'),
    Case("unknown-stack", synth("aws-nowhere"), ("unknown stack 'aws-nowhere'", "allowed:")),
    # Values (infra/settings)
    Case("bool-for-int", synth("aws-prod"), ("rollout.wait_seconds = True", "whole number"), "aws-prod",
         "wait_seconds: 600", "wait_seconds: true"),
    Case("string-for-int", synth("aws-prod"), ("capacity.min_count = '2'", "whole number"), "aws-prod",
         "min_count: 2", 'min_count: "2"'),
    Case("zero-wait-prod", synth("aws-prod"), ("rollout.wait_seconds = 0", "alarm window"), "aws-prod",
         "wait_seconds: 600", "wait_seconds: 0"),
    Case("zero-bake-prod", synth("hybrid-prod"), ("rollout.bake_seconds = 0", "alarm window"), "hybrid-prod",
         "bake_seconds: 900", "bake_seconds: 0"),
    Case("duplicate-subnet", synth("aws-prod"), ("aws.vpc.subnets[1]", "given twice"), "aws-prod",
         "subnet-0f1e2d3c4b5a60022", "subnet-0f1e2d3c4b5a60021"),
    Case("unknown-instance-type", synth("aws-prod"), ("aws.instance_type = 'ml.m5.huge'", "SageMaker has no"),
         "aws-prod", "instance_type: ml.m5.xlarge", "instance_type: ml.m5.huge"),
    Case("same-release-both-slots", synth("aws-prod"), ("serving.slots", "both slots hold iris-classifier 1.0.0"),
         "aws-prod", "version: 1.1.0\n        sha256: 325e91ebb8ab698301cbcf1f501b4311d34aa92ecc9cb2b049c7469c23ca9227",
         "version: 1.0.0\n        sha256: 0792f2856edf45b34431435100480a4a17269585b7d5723bd352314f6fce0cac"),
    Case("unknown-lastmile-key", synth("aws-dev"), ("lastmile:servng", "unknown key"), "aws-dev", "lastmile:serving:",
         "lastmile:servng:"),
    # Image references (the OCI distribution reference grammar) and a shadow slot nothing would honour
    Case("image-uppercase-path", synth("onprem-prod"), ("serving.slots.blue.image", "'Seldon'", "allowed:"),
         "onprem-prod", "image: docker.io/seldonio/mlserver@", "image: Docker.io/Seldon/MLServer@"),
    Case("image-registry-dash", synth("onprem-prod"), ("serving.slots.blue.image", "registry '-docker.io'"),
         "onprem-prod", "image: docker.io/seldonio/mlserver@", "image: -docker.io/x@"),
    Case("image-dot-dot", synth("onprem-prod"), ("serving.slots.blue.image", "path component '..'"),
         "onprem-prod", "image: docker.io/seldonio/mlserver@", "image: docker.io/seldonio/../mlserver@"),
    Case("image-short-digest", synth("onprem-prod"), ("serving.slots.blue.image", "64 lowercase hex digits, not 63"),
         "onprem-prod", "eb08e7007\n", "eb08e700\n"),
    Case("shadow-slot-onprem", synth("onprem-prod"), ("serving.shadow_slot = 'green'", "would do nothing"),
         "onprem-prod", "    active_slot: blue\n", "    active_slot: blue\n    shadow_slot: green\n"),
    # Gateway API entry and route weights (infra/settings/onprem.py)
    Case("weights-sum-zero", synth("onprem-prod"), ("serving.weights", "sum to 0", "fix:"), "onprem-prod",
         "    active_slot: blue\n", "    active_slot: blue\n    weights: {blue: 0, green: 0}\n"),
    Case("weight-negative", synth("onprem-prod"), ("serving.weights.blue = -1", "0 to 1000000"), "onprem-prod",
         "    active_slot: blue\n", "    active_slot: blue\n    weights: {blue: -1, green: 10}\n"),
    Case("weight-not-integer", synth("onprem-prod"), ("serving.weights.green = 0.5", "whole number"), "onprem-prod",
         "    active_slot: blue\n", "    active_slot: blue\n    weights: {blue: 1, green: 0.5}\n"),
    Case("weight-without-release", synth("onprem-prod"), ("serving.weights.green = 10", "has no release", "fix:"),
         "onprem-prod", GREEN_SLOT, "    weights: {blue: 90, green: 10}\n"),
    Case("gateway-missing", synth("onprem-dev"), ("onprem.gateway", "entry gateway needs", "fix:"), "onprem-dev",
         "    gateway:", "    other_gateway:"),
    Case("wildcard-hostname-prod", synth("onprem-prod"), ("onprem.gateway.hostname = '*.serving.example.internal'",
                                                          "wildcard", "fix:"), "onprem-prod",
         "hostname: iris.serving.example.internal", "hostname: '*.serving.example.internal'"),
    # The same refusals through the other verbs that read stack files
    Case("render-bad-stack", ("render", "onprem-prod"), ("lastmile:environment = 'dev'",), "onprem-prod",
         "lastmile:environment: prod", "lastmile:environment: dev"),
    Case("policy-bad-stack", ("policy", "aws-prod"), ("aws.instance_type",), "aws-prod", "instance_type: ml.m5.xlarge",
         "instance_type: ml.m5.huge"),
    Case("contract-bad-stack", ("contract", "--stack", "aws-prod"), ("given twice",), "aws-prod",
         "    wait_seconds: 600\n", "    wait_seconds: 600\n    wait_seconds: 0\n"),
    Case("preview-bad-stack", ("preview", "aws-prod"), ("lastmile:environment = 'dev'",), "aws-prod",
         "lastmile:environment: prod", "lastmile:environment: dev"),
    Case("up-bad-stack", ("up", "onprem-local"), ("not valid YAML",), "onprem-local", "config:\n", "config:\n  x: [\n"),
    Case("up-unknown-stack", ("up", "aws-nowhere"), ("unknown stack 'aws-nowhere'",)),
    # Output locations
    Case("render-out-stacks", ("render", "onprem-prod", "--out", "stacks"), ("--out stacks", "not empty", "fix:")),
    Case("synth-out-foreign-dir", ("synth", "aws-dev", "--out", "docs"), ("--out docs", "not empty", "fix:")),
    Case("plan-out-foreign-file", ("plan", "--stack", "aws-dev", "--base", "HEAD", "--out", "README.md"),
         ("--out README.md", "lastmile did not write it", "fix:")),
    Case("render-no-kubernetes", ("render", "aws-dev"), ("declares no Kubernetes resources", "fix:")),
    # Revisions
    Case("plan-unknown-ref", ("plan", "--stack", "aws-dev", "--base", "no-such-ref"), ("'no-such-ref'", "fix:")),
    Case("plan-affected-unknown-ref", ("plan", "affected", "--base", "no-such-ref"), ("'no-such-ref'", "fix:")),
    Case("check-log-unknown-ref", ("promote", "check-log", "--against", "no-such-ref"), ("'no-such-ref'", "fix:"),
         code=3),  # a check that cannot run fails closed: could not check (#22)
    # Promotion
    Case("promote-backwards", ("promote", "--topology", "aws", "--from", "prod", "--to", "staging"),
         ("cannot promote aws-prod -> aws-staging", "fix:")),
    Case("promote-unknown-topology", ("promote", "--topology", "gcp", "--from", "dev", "--to", "prod"),
         ("gcp-dev is not on the promotion path", "fix:")),
    Case("promote-skip", ("promote", "--topology", "aws", "--from", "dev", "--to", "prod"), ("skips aws-staging", "fix:")),
    Case("promote-bad-now", ("promote", "--topology", "aws", "--from", "dev", "--to", "staging", "--now", "soon"),
         ("'soon' is not an ISO time", "fix:")),
    Case("status-unknown-topology", ("promote", "status", "--topology", "gcp"), ("'gcp'", "fix:")),
    Case("record-unknown-stack", ("promote", "record-verification", "--stack", "aws-nowhere", "--endpoint-config-name",
                                  "x", "--verifier", "me"), ("unknown stack 'aws-nowhere'",)),
    Case("record-any-config-name", ("promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name",
                                    "x", "--verifier", "me"), ("--endpoint-config-name 'x'", "lastmile-aws-staging-", "fix:")),
    Case("record-k8s-for-sagemaker", ("promote", "record-verification", "--stack", "aws-staging", "--k8s-revision",
                                      "lastmile-serving/blue/3", "--verifier", "me"), ("--k8s-revision", "SageMaker")),
    Case("record-bad-k8s-revision", ("promote", "record-verification", "--stack", "onprem-dev", "--k8s-revision", "3",
                                     "--verifier", "me"), ("--k8s-revision '3'", "lastmile-dev/green/", "fix:")),
    Case("record-idle-slot", ("promote", "record-verification", "--stack", "aws-prod", "--slot", "idle",
                              "--endpoint-config-name", "x", "--verifier", "me"), ("serves no traffic", "fix:")),
    Case("record-release-not-in-manifest", ("promote", "record-verification", "--stack", "aws-dev",
                                            "--endpoint-config-name", "x", "--verifier", "me"),
         ("would not deploy", "serving.slots.green.version"), "aws-dev", "version: 1.1.0", "version: 9.9.9"),
    Case("record-bad-time", ("promote", "record-verification", "--stack", "onprem-dev", "--k8s-revision",
                             "lastmile-dev/green/3", "--verifier", "me", "--verified-at", "yesterday"),
         ("'yesterday' is not an ISO time",)),
    Case("import-missing-file", ("promote", "import-verifications", "nowhere.jsonl"), ("nowhere.jsonl: no such file",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(checkout, case: Case):
    path = checkout.stack_file(case.stack) if case.stack else None
    original = path.read_text() if path else None
    try:
        if path:
            if case.old:
                assert case.old in original, f"the corpus case {case.id} no longer matches {path.name}"
                path.write_text(original.replace(case.old, case.new, 1))
            else:
                path.write_text(case.new)
        before = tree_digest(checkout.root)
        done = checkout.lastmile(*case.args)
        after = tree_digest(checkout.root)
    finally:
        if path:
            path.write_text(original)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == case.code, f"exit {done.returncode}:\n{output}"
    for text in case.expect:
        assert text in output, f"{text!r} not in:\n{output}"
    assert "fix" in output.lower(), output
    assert after == before, f"files changed: {sorted(set(after.items()) ^ set(before.items()))}"
