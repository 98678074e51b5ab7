"""The switch check: its rules (components/k8s/readiness.py, infra/switch_check.py), and, under recording mocks,
that a refusal registers none of the serving half's resources (the engine tests in tests/engine/ run it on the
real engine and cluster, with `lastmile up` and with the program alone)."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime import mocks as pulumi_mocks

from components.k8s.readiness import below_floor, incomplete, template_fingerprint
from components.slots import Slot
from infra.switch_check import (DEPLOYMENTS_OUTPUT, RELEASES_OUTPUT, SWITCH_NOT_READY, SWITCH_REFUSED,
                                TEMPLATES_OUTPUT, judge_live, judge_plan, release_of)
from lastmile.engine import changes_of, validate_stack
from lastmile.exitcodes import ExitCode
from lastmile.switch import refusal_code
from lastmile.synthesis import RecordingMocks, RecordingMonitor, run_with_mocks
from lastmile.stackfile import read_stack_file
from lastmile.synthesis import STACKS_DIR
from components.slots import Slot

TEMPLATE = {"metadata": {"labels": {"lastmile.dev/slot": "green"}}, "spec": {"containers": [{"image": "x@sha256:1"}]}}


def deployment(observed: int = 2, replicas: int = 2, updated: int = 2, available: int = 2, reason: str = "",
               desired: int | None = 2, template: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": template or TEMPLATE} | ({} if desired is None else {"replicas": desired})
    return {"metadata": {"generation": 2}, "spec": spec,
            "status": {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated,
                       "availableReplicas": available,
                       "conditions": [{"type": "Progressing", "reason": reason or "NewReplicaSetAvailable",
                                       "message": "m"}]}}


def test_the_rollout_rule_is_kubectl_rollout_status() -> None:
    assert incomplete(deployment()) == []
    assert incomplete(deployment(observed=1)) == [
        "the Deployment controller has not observed its current version (status.observedGeneration 1, "
        "metadata.generation 2)"]
    assert incomplete(deployment(updated=1)) == [
        "1 of 2 replicas run the current version", "1 replica(s) of the previous version are still running"]
    assert incomplete(deployment(replicas=3)) == ["1 replica(s) of the previous version are still running"]
    assert incomplete(deployment(available=1)) == ["1 of 2 updated replicas are available"]
    assert incomplete(deployment(reason="ProgressDeadlineExceeded")) == [
        "the rollout exceeded its progress deadline (m)"]
    assert incomplete(deployment(replicas=1, updated=1, available=1, desired=None)) == []  # omitted: 1


def test_zero_of_zero_passes_the_rollout_rule_but_not_the_floor() -> None:
    scaled_down = deployment(replicas=0, updated=0, available=0, desired=0)
    assert incomplete(scaled_down) == []
    assert below_floor(scaled_down, 1) == ["0 available replica(s), the stack's floor is 1 (capacity.min_count; "
                                           "spec.replicas is 0)"]
    assert below_floor(deployment(), 2) == []


def test_the_fingerprint_follows_the_template_not_its_spelling() -> None:
    assert template_fingerprint(TEMPLATE) == template_fingerprint({**TEMPLATE, "extra": None, "empty": {}})
    changed = {**TEMPLATE, "spec": {"containers": [{"image": "x@sha256:2"}]}}
    assert template_fingerprint(changed) != template_fingerprint(TEMPLATE)


@pytest.fixture(scope="module")
def to_green():
    """onprem-local with active_slot green (the committed file)."""
    return validate_stack("onprem-local")


def previous(settings: Any, active: str, **releases: dict[str, str]) -> dict[str, Any]:
    """The last outputs of an update that served the stack file's releases (but those given) with ``active``."""
    recorded = {slot.value: release_of(r) for slot, r in settings.serving.slots.items()} | releases
    return {"active_slot": active, RELEASES_OUTPUT: recorded,
            DEPLOYMENTS_OUTPUT: {slot: f"lastmile-local/{slot}" for slot in recorded},
            TEMPLATES_OUTPUT: {slot: template_fingerprint(TEMPLATE) for slot in recorded}}


def test_a_first_update_and_an_update_without_a_switch_are_not_checked(to_green) -> None:
    assert judge_plan(None, to_green) == (None, None)
    assert judge_plan({}, to_green) == (None, None)
    assert judge_plan(previous(to_green, "green"), to_green) == (None, None)
    assert judge_plan(previous(to_green, "green", blue={"model": "m", "version": "9.9.9", "sha256": "0",
                                                        "image": "i"}), to_green) == (None, None)  # the idle slot


def test_a_flip_to_an_unchanged_slot_reads_it_live(to_green) -> None:
    assert judge_plan(previous(to_green, "blue"), to_green) == (None, "green")


def test_release_and_activate_in_one_update_is_refused(to_green) -> None:
    other = {"model": "iris-classifier", "version": "1.0.0", "sha256": "0" * 64, "image": "x@sha256:" + "1" * 64}
    refusal, read = judge_plan(previous(to_green, "blue", green=other), to_green)
    assert read is None and refusal is not None and refusal.first == SWITCH_REFUSED
    assert "would both change its release" in refusal.message()
    assert "fix: first update with slot green's new release, its weight 0 and active_slot still blue" in refusal.message()
    assert refusal_code(refusal.message()) == ExitCode.REFUSED


def test_a_flip_to_a_slot_without_a_deployed_release_is_refused(to_green) -> None:
    last = previous(to_green, "blue")
    del last[RELEASES_OUTPUT]["green"]
    refusal, _ = judge_plan(last, to_green)
    assert refusal is not None and "has no release deployed yet" in refusal.message()
    old = {"active_slot": "blue"}  # an update made before the outputs existed
    refusal, _ = judge_plan(old, to_green)
    assert refusal is not None and "did not record what each slot serves" in refusal.message()


def test_a_release_in_the_active_slot_is_refused_unless_the_stack_allows_it(to_green) -> None:
    other = {"model": "iris-classifier", "version": "1.0.9", "sha256": "0" * 64, "image": "x@sha256:" + "1" * 64}
    refusal, _ = judge_plan(previous(to_green, "green", green=other), to_green)
    assert refusal is not None and "change the release of the active slot in place" in refusal.message()
    assert "serving.allow_in_place_release: true" in refusal.message()
    allowing = to_green.model_copy(update={"serving": to_green.serving.model_copy(
        update={"allow_in_place_release": True})})
    assert judge_plan(previous(allowing, "green", green=other), allowing) == (None, "green")


@pytest.mark.parametrize(("live", "reason"), [
    (deployment(replicas=0, updated=0, available=0, desired=0), "0 available replica(s), the stack's floor is 1"),
    (deployment(observed=1), "has not observed its current version"),
    (deployment(reason="ProgressDeadlineExceeded"), "exceeded its progress deadline"),
    (deployment(template={**TEMPLATE, "spec": {"containers": [{"image": "y@sha256:0"}]}}),
     "its pod template is not the one the stack deployed"),
])
def test_a_slot_that_is_not_ready_live_is_refused(live: dict[str, Any], reason: str) -> None:
    refusal = judge_live("green", live, template_fingerprint(TEMPLATE), 1, "blue")
    assert refusal is not None and refusal.first == SWITCH_NOT_READY and reason in refusal.message()
    assert "traffic stays on slot blue" in refusal.message()
    assert refusal_code(refusal.message()) == ExitCode.FINDINGS


def test_a_ready_slot_goes_ahead() -> None:
    assert judge_live("green", deployment(), template_fingerprint(TEMPLATE), 2, "blue") is None


def test_lastmile_reads_the_programs_words() -> None:
    assert refusal_code(f"error: {SWITCH_REFUSED}: slot green: x") == ExitCode.REFUSED
    assert refusal_code(f"error: {SWITCH_NOT_READY}: slot green: x") == ExitCode.FINDINGS
    assert refusal_code("error: anything else") is None


def test_a_preview_counts_the_checks_reads_as_no_change() -> None:
    assert changes_of({"same": 30, "read": 2}) == 0 and changes_of({"same": 30, "read": 2, "update": 1}) == 1


class LastUpdateMocks(RecordingMocks):
    """Recording mocks whose stack reference answers with the given last outputs, and whose live reads of a
    Deployment answer with ``live``."""

    def __init__(self, outputs: dict[str, Any], live: dict[str, Any]) -> None:
        super().__init__()
        self.outputs, self.live, self.reads = outputs, live, []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            self.reads.append(args.typ)
            return args.name, {"name": args.inputs.get("name"), "outputs": self.outputs, "secretOutputNames": []}
        if args.typ == "kubernetes:apps/v1:Deployment" and args.resource_id:
            self.reads.append(f"{args.typ} {args.resource_id}")
            return args.resource_id, self.live
        return super().new_resource(args)


def _run(outputs: dict[str, Any], live: dict[str, Any]) -> tuple[RecordingMonitor, LastUpdateMocks, Exception | None]:
    from infra.program import run

    stack_file = read_stack_file("onprem-local", STACKS_DIR)
    mocks = LastUpdateMocks(outputs, live)
    monitor = RecordingMonitor(mocks)
    try:
        run_with_mocks(run, stack="onprem-local", config=stack_file.config, secret_keys=stack_file.secret_keys,
                       monitor=monitor)
    except Exception as error:  # noqa: BLE001 -- the refusal is what the test looks at
        return monitor, mocks, error
    return monitor, mocks, None


def test_under_mocks_a_refusal_registers_nothing_of_the_serving_half(to_green) -> None:
    other = {"model": "iris-classifier", "version": "1.0.0", "sha256": "0" * 64, "image": "x@sha256:" + "1" * 64}
    monitor, mocks, error = _run(previous(to_green, "blue", green=other), deployment())
    assert error is not None and SWITCH_REFUSED in str(error)
    assert mocks.reads == ["pulumi:pulumi:StackReference"]  # decided without reading the cluster
    registered = {node.type for node in monitor.nodes.values()}
    assert registered <= {"pulumi:providers:kubernetes"}, registered


def test_under_mocks_a_flip_reads_the_slot_live_and_refuses_when_it_is_scaled_down(to_green) -> None:
    api = {"metadata": {"generation": 2, "name": "g", "namespace": "lastmile-local"},
           "spec": {"replicas": 0, "template": TEMPLATE},
           "status": {"observedGeneration": 2, "replicas": 0, "updatedReplicas": 0, "availableReplicas": 0}}
    monitor, mocks, error = _run(previous(to_green, "blue"), api)
    assert mocks.reads == ["pulumi:pulumi:StackReference", "kubernetes:apps/v1:Deployment lastmile-local/green"]
    assert error is not None and SWITCH_NOT_READY in str(error) and "the stack's floor is 1" in str(error)
    assert {node.type for node in monitor.nodes.values()} <= {"pulumi:providers:kubernetes"}


def test_under_mocks_a_flip_to_a_ready_slot_builds_everything(to_green) -> None:
    api = {"metadata": {"generation": 2, "name": "g", "namespace": "lastmile-local"},
           "spec": {"replicas": 2, "template": TEMPLATE},
           "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}
    monitor, _, error = _run(previous(to_green, "blue"), api)
    assert error is None and any(n.type == "kubernetes:core/v1:Service" for n in monitor.nodes.values())


class _Outputs:
    def __init__(self, outputs: dict[str, Any]) -> None:
        self._outputs = {k: type("Value", (), {"value": v})() for k, v in outputs.items()}

    def outputs(self) -> dict[str, Any]:
        return self._outputs


def test_the_golden_gate_asks_on_a_flip_and_on_an_in_place_release_only(to_green) -> None:
    from lastmile.switch import active_slot_change

    assert active_slot_change(_Outputs({}), to_green) == (None, "green")  # the first up
    assert active_slot_change(_Outputs({"active_slot": "blue"}), to_green) == ("blue", "green")
    same = previous(to_green, "green")
    assert active_slot_change(_Outputs(same), to_green) is None
    other = {"model": "iris-classifier", "version": "1.0.9", "sha256": "0" * 64, "image": "x@sha256:" + "1" * 64}
    assert active_slot_change(_Outputs(previous(to_green, "green", green=other)), to_green) == ("green", "green")


def _weighted(settings: Any, blue: int, green: int) -> Any:
    return settings.model_copy(update={"serving": settings.serving.model_copy(
        update={"weights": {Slot.BLUE: blue, Slot.GREEN: green}})})


def test_a_weight_from_0_is_a_switch_with_a_flips_gates(to_green) -> None:
    from infra.switch_check import WEIGHTS_OUTPUT

    canary = _weighted(to_green, 10, 90)  # active green; blue goes 0 -> 10
    assert judge_plan(previous(to_green, "green"), canary) == (None, "blue")  # read blue live, as for a flip
    assert judge_plan(previous(to_green, "green") | {WEIGHTS_OUTPUT: {"blue": 10, "green": 90}}, canary) == (None, None)
    other = {"model": "iris-classifier", "version": "1.0.9", "sha256": "0" * 64, "image": "x@sha256:" + "1" * 64}
    refusal, read = judge_plan(previous(to_green, "green", blue=other), canary)
    assert read is None and refusal is not None and "give it traffic (weight 0 -> 10)" in refusal.message()
    # A slot that keeps its weight and changes its release is an in-place release of live traffic.
    refusal, _ = judge_plan(previous(to_green, "green", blue=other) | {WEIGHTS_OUTPUT: {"blue": 10, "green": 90}},
                            canary)
    assert refusal is not None and "slot blue, which takes traffic (weight 10)" in refusal.message()


def test_the_golden_gate_asks_the_release_of_a_slot_given_weight(to_green) -> None:
    from lastmile.switch import active_slot_change

    weighted = to_green.model_copy(update={"serving": to_green.serving.model_copy(
        update={"weights": {Slot.BLUE: 10, Slot.GREEN: 90}})})
    last = previous(to_green, "green") | {"slot_weights": {"blue": 0, "green": 100}}
    assert active_slot_change(_Outputs(last), weighted) == ("green", "blue")
    assert active_slot_change(_Outputs(last | {"slot_weights": {"blue": 10, "green": 90}}), weighted) is None
