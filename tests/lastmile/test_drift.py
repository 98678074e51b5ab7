"""`lastmile drift`'s reading of the engine's refresh and its rules, without an engine: on events recorded from a
real `preview_refresh` of onprem-local on the local cluster (tests/lastmile/data/drift_refresh_events.json, the
SDK's events as `lastmile.drift.plain` turns them into data; ConfigMap contents trimmed), after five hand edits:
the active slot (green) scaled to 0, blue's image set to another digest, the stable Service's selector patched
to blue, a label added to the preview Service, green's runtime ConfigMap deleted.

The AWS half is the same reading on the same event shape re-typed as AWS resources: the AWS provider plugin is
not available here, so no AWS refresh was ever recorded (see the module docstring of lastmile/drift.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lastmile import cli, drift
from lastmile.exitcodes import ExitCode

RECORDED = Path(__file__).parent / "data" / "drift_refresh_events.json"
STACK = "onprem-local"
GOOD = "docker.io/seldonio/mlserver@sha256:f1ce1afa2dddffa9697e51d15e3c7c95d5cdb1e1d31771305307f96eb08e7007"
OTHER = "docker.io/seldonio/mlserver@sha256:" + "1" * 64


def recorded() -> list[dict]:
    return json.loads(RECORDED.read_text())


def judged(events: list[dict], min_count: int | None = 1) -> list[drift.Drift]:
    observed, outputs = drift.observed_from_events(events)
    assert outputs is not None
    return drift.judge(observed, outputs, stack=STACK, min_count=min_count)


def row(found: list[drift.Drift], resource: str, field: str) -> drift.Drift:
    [match] = [d for d in found if resource in d.resource and d.field == field]
    return match


def test_the_recorded_hand_edits_are_each_named_with_field_and_both_values():
    found = judged(recorded())
    deleted = row(found, "ConfigMap lastmile-local/iris-classifier-green-runtime", "(the whole resource)")
    assert (deleted.stack, deleted.live, deleted.found_by) == ("exists", "deleted outside Pulumi", (drift.Rule.ENGINE,))
    selector = row(found, "Service lastmile-local/iris-classifier-router-stable", 'spec.selector["lastmile.dev/slot"]')
    assert (selector.stack, selector.live.split(" ")[0]) == ("green", "blue")
    assert set(selector.found_by) == {drift.Rule.ENGINE, drift.Rule.STABLE_SLOT, drift.Rule.FIELD_MANAGER}
    for kind in ("containers", "initContainers"):
        image = row(found, "Deployment lastmile-local/iris-classifier-blue-deployment", f"spec.template.spec.{kind}[0].image")
        assert (image.stack, image.live.split(" ")[0]) == (GOOD, OTHER)
        assert set(image.found_by) == {drift.Rule.ENGINE, drift.Rule.IMAGE, drift.Rule.FIELD_MANAGER}
    label = row(found, "Service lastmile-local/iris-classifier-router-preview", "metadata.labels.hand")
    assert label.stack == drift.NOT_SET and label.live == "added (set by kubectl-label)"
    assert "label service iris-classifier-router-preview-" in label.fix and label.fix.count("hand-") == 1
    floor = row(found, "Deployment lastmile-local/iris-classifier-green-deployment", "status.availableReplicas")
    assert floor.found_by == (drift.Rule.FLOOR,) and floor.live.startswith("0 (spec.replicas 0)")
    assert "--replicas=1" in floor.fix and "active" in floor.fix
    assert len(found) == 6, [d.words() for d in found]


def test_what_the_engine_alone_sees_and_what_the_live_rules_add():
    """The refresh itself reports the deletion, the selector and the images; the scale to 0 and the label are
    fields pulumi-kubernetes never set, which only lastmile's rules find."""
    observed, _ = drift.observed_from_events(recorded())
    engine = {(d.resource.split(" ")[1].rsplit("-", 1)[0], d.field) for r in observed for d in drift.engine_drift(r, STACK)}
    assert engine == {("lastmile-local/iris-classifier-green-runtime", "(the whole resource)"),
                      ("lastmile-local/iris-classifier-router-stable", 'spec.selector["lastmile.dev/slot"]'),
                      ("lastmile-local/iris-classifier-blue-deployment", "spec.template.spec.containers[0].image"),
                      ("lastmile-local/iris-classifier-blue-deployment", "spec.template.spec.initContainers[0].image")}


def test_a_clean_refresh_is_no_drift():
    events = recorded()
    for event in events:
        metadata = event["res_outputs_event"]["metadata"]
        old, new = metadata.get("old") or {}, metadata.get("new")
        if metadata["op"] == "delete":
            metadata["new"] = copy.deepcopy(old)
        elif new:
            live = copy.deepcopy(old.get("outputs") or {})
            if "status" in (new.get("outputs") or {}):
                live["status"] = {**new["outputs"]["status"], "availableReplicas": 1}
            new["outputs"] = live
            # The state's last up recorded the hand label of an earlier round of this recording: not in a clean run.
            meta = live.get("metadata") or {}
            (meta.get("labels") or {}).pop("hand", None)
            meta["managedFields"] = [m for m in meta.get("managedFields") or [] if m["manager"] != "kubectl-label"]
        metadata["op"], metadata["detailed_diff"] = "same", {}
    assert judged(events) == []


def test_the_engine_bookkeeping_and_components_are_not_drift():
    events = [{"res_outputs_event": {"metadata": {"op": "update", "type": "pulumi:pulumi:StackReference", "urn": "u",
                                                  "old": {"outputs": {"outputs": {}}}, "new": {"outputs": {"x": 1}}}}},
              {"res_outputs_event": {"metadata": {"op": "same", "type": "pulumi:pulumi:Stack", "urn": "root",
                                                  "old": {"outputs": {"active_slot": "green"}}}}}]
    observed, outputs = drift.observed_from_events(events)
    assert observed == [] and outputs == {"active_slot": "green"}
    assert drift.observed_from_events([]) == ([], None)  # no root resource: never deployed, or destroyed


# -- the AWS half: the recorded event shape, re-typed (never recorded from a real AWS refresh) ---------------------

def aws_event(op: str, old_inputs: dict, new_outputs: dict | None, detailed: dict | None = None) -> dict:
    return {"res_outputs_event": {"metadata": {
        "op": op, "type": "aws:sagemaker/endpoint:Endpoint",
        "urn": "urn:pulumi:aws-prod::lastmile::lastmile:aws:Endpoint$aws:sagemaker/endpoint:Endpoint::iris-endpoint",
        "old": {"custom": True, "inputs": old_inputs, "outputs": {**old_inputs, "arn": "arn:aws:sagemaker:x"}},
        "new": None if new_outputs is None else {"custom": True, "outputs": new_outputs},
        "detailed_diff": detailed or {}}}}


ROOT = {"res_outputs_event": {"metadata": {"op": "same", "type": "pulumi:pulumi:Stack", "urn": "root",
                                           "old": {"outputs": {"endpoint_name": "iris"}}}}}


def test_aws_a_changed_field_with_a_detailed_diff():
    before = {"endpointConfigName": "iris-config-1", "tags": {"team": "ml"}}
    after = {"endpointConfigName": "iris-config-0", "tags": {"team": "ml", "owner": "someone"}}
    found = judged([ROOT, aws_event("update", before, after, {"endpointConfigName": {"diff_kind": "update"},
                                                              'tags["owner"]': {"diff_kind": "add"}})], None)
    assert [(d.resource, d.field, d.stack, d.live) for d in found] == [
        ("aws:sagemaker/endpoint:Endpoint iris-endpoint", "endpointConfigName", "iris-config-1", "iris-config-0"),
        ("aws:sagemaker/endpoint:Endpoint iris-endpoint", 'tags["owner"]', drift.NOT_SET, "someone")]


def test_aws_a_changed_field_without_a_detailed_diff_compares_the_inputs():
    before = {"endpointConfigName": "iris-config-1", "name": "iris"}
    found = judged([ROOT, aws_event("update", before, {"endpointConfigName": "iris-config-0", "name": "iris"})], None)
    assert [(d.field, d.stack, d.live) for d in found] == [("endpointConfigName", "iris-config-1", "iris-config-0")]


def test_aws_a_deleted_resource_and_no_kubernetes_rules():
    found = judged([ROOT, aws_event("delete", {"name": "iris"}, None)], None)
    assert [(d.field, d.live, d.found_by) for d in found] == [
        ("(the whole resource)", "deleted outside Pulumi", (drift.Rule.ENGINE,))]


# -- the pieces -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,tokens", [
    ('spec.selector["lastmile.dev/slot"]', ["spec", "selector", "lastmile.dev/slot"]),
    ("spec.template.spec.containers[0].image", ["spec", "template", "spec", "containers", 0, "image"]),
    ('metadata.labels["a\\"b"]', ["metadata", "labels", 'a"b'])])
def test_property_paths(path, tokens):
    assert drift.path_tokens(path) == tokens
    rebuilt = ""
    for token in tokens:
        rebuilt = drift.join(rebuilt, token)
    assert drift.path_tokens(rebuilt) == tokens


def test_a_secret_value_is_never_shown():
    resource = drift.Observed("u", "kubernetes:core/v1:Secret", "update", {"data": {"k": "a"}},
                              {"data": {"k": "a"}}, {"data": {"k": "b"}}, {"data.k": {"diff_kind": "update"}})
    [found] = drift.engine_drift(resource, STACK)
    assert found.stack == found.live == "(a secret value)"


def test_the_exit_code_of_several_stacks():
    report = {code: drift.Report("s", code, "m") for code in ExitCode}
    assert drift.overall([report[ExitCode.OK], report[ExitCode.FINDINGS]], every=True) == ExitCode.FINDINGS
    assert drift.overall([report[ExitCode.FINDINGS], report[ExitCode.UNAVAILABLE]], every=True) == ExitCode.UNAVAILABLE
    assert drift.overall([report[ExitCode.OK], report[ExitCode.REFUSED]], every=True) == ExitCode.OK
    assert drift.overall([report[ExitCode.REFUSED]], every=False) == ExitCode.REFUSED


def test_the_issue_table_escapes_cells():
    row_ = drift.Drift("Service a/b", "x", "p|q", "r", (drift.Rule.ENGINE,), "f")
    table = drift.Report("s", ExitCode.FINDINGS, "m", (row_,)).table()
    assert table.splitlines()[2] == "| Service a/b | `x` | p\\|q | r | engine refresh |"


def test_all_checks_team_stacks_only():
    stacks = drift.team_stacks(None)
    assert "onprem-local" not in stacks and "onprem-gitops" not in stacks and "aws-prod" in stacks
    assert drift.team_stacks("prod") == [s for s in stacks if s.endswith("-prod")]


@pytest.mark.parametrize("argv,says", [
    (["drift"], "name one stack or --all"),
    (["drift", "onprem-local", "--all"], "name one stack or --all"),
    (["drift", "onprem-local", "--environment", "prod"], "--environment ENV chooses the stacks of --all")])
def test_refused_arguments(argv, says, capsys):
    assert cli.main(argv) == ExitCode.REFUSED
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("stack,says", [("no-such-stack", "unknown stack"), ("onprem-gitops", "render-mode stack")])
def test_refused_stacks_before_the_engine(stack, says, capsys):
    assert cli.main(["drift", stack, "--json"]) == ExitCode.REFUSED
    [report] = json.loads(capsys.readouterr().out)["stacks"]
    assert report["status"] == "not deployed" and says in report["message"]


def test_there_is_no_accept_and_the_help_says_why(capsys):
    with pytest.raises(SystemExit):
        cli.main(["drift", "--help"])
    text = capsys.readouterr().out
    assert "--accept" in text and "reviewed decision" in text
    with pytest.raises(SystemExit):
        cli.build_parser("drift").parse_args(["drift", "onprem-local", "--accept", "spec.replicas"])
