"""lastmile.switch: the rollout rule, and the order of the checks before an up moves traffic (with a stand-in
for the engine; tests/engine/test_local_cluster_deploy.py and test_local_cluster_guards.py run them on the
real engine and cluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from components.k8s.common import SLOT_LABEL
from lastmile.engine import validate_stack
from lastmile.exitcodes import ExitCode
from lastmile.switch import DEPLOYMENT, SwitchRefused, active_slot_change, check_switch, incomplete

GREEN_URN = "urn:pulumi:onprem-local::lastmile::lastmile:k8s:ModelServer$kubernetes:apps/v1:Deployment::green"


def deployment(observed: int = 2, replicas: int = 2, updated: int = 2, available: int = 2, reason: str = "",
               desired: int | None = 2) -> dict[str, Any]:
    spec = {} if desired is None else {"replicas": desired}
    return {"metadata": {"generation": 2, "labels": {SLOT_LABEL: "green"}}, "spec": spec,
            "status": {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated,
                       "availableReplicas": available,
                       "conditions": [{"type": "Progressing", "reason": reason or "NewReplicaSetAvailable",
                                       "message": "m"}]}}


def test_the_rule_is_kubectl_rollout_status() -> None:
    assert incomplete(deployment()) == []
    assert incomplete(deployment(observed=1)) == [
        "the Deployment controller has not observed its current version (status.observedGeneration 1, "
        "metadata.generation 2)"]
    assert incomplete({"metadata": {"generation": 1}}) == [
        "the Deployment controller has not observed its current version (status.observedGeneration None, "
        "metadata.generation 1)"]
    assert incomplete(deployment(updated=1)) == [
        "1 of 2 replicas run the current version", "1 replica(s) of the previous version are still running"]
    assert incomplete(deployment(replicas=3)) == ["1 replica(s) of the previous version are still running"]
    assert incomplete(deployment(available=1)) == ["1 of 2 updated replicas are available"]
    assert incomplete(deployment(reason="ProgressDeadlineExceeded")) == [
        "the rollout exceeded its progress deadline (m)"]
    assert incomplete(deployment(replicas=1, updated=1, available=1, desired=None)) == []  # omitted: 1


@dataclass
class FakeEngine:
    """What check_switch asks of the engine: outputs, the state, a preview's steps, a refresh."""

    active: str | None
    recorded: dict[str, Any] | None
    live: dict[str, Any] | None = None
    changing: tuple[str, ...] = ()
    calls: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, Any]:
        return {} if self.active is None else {"active_slot": SimpleNamespace(value=self.active)}

    @property
    def stack(self) -> FakeEngine:
        return self

    def export_stack(self) -> Any:
        resources = [] if self.recorded is None else [{"type": DEPLOYMENT, "urn": GREEN_URN, "outputs": self.recorded}]
        return SimpleNamespace(deployment={"resources": resources})

    def preview(self, on_event: Any, **_: Any) -> None:
        self.calls.append("preview")
        for urn in (GREEN_URN, "urn:other"):
            op = SimpleNamespace(value="update" if urn in self.changing else "same")
            on_event(SimpleNamespace(resource_pre_event=SimpleNamespace(metadata=SimpleNamespace(op=op, urn=urn))))

    def refresh(self, target: list[str], **_: Any) -> None:
        self.calls.append(f"refresh {target}")
        if self.live is not None:
            self.recorded = self.live


@pytest.fixture
def to_green():
    """onprem-local with active_slot green (the committed file): an up from blue switches to green."""
    return validate_stack("onprem-local")


def _check(engine: FakeEngine, settings: Any) -> list[str]:
    said: list[str] = []
    check_switch(engine, settings, active_slot_change(engine, settings), said.append)
    return said


def test_no_switch_no_check(to_green) -> None:
    for engine in (FakeEngine(active="green", recorded=None), FakeEngine(active=None, recorded=None)):
        assert _check(engine, to_green) == [] and engine.calls == []


def test_a_switch_to_a_complete_slot_goes_ahead_after_a_live_read(to_green) -> None:
    engine = FakeEngine(active="blue", recorded=deployment(observed=1), live=deployment())
    said = _check(engine, to_green)
    assert engine.calls == ["preview", f"refresh {[GREEN_URN]}"]
    assert said[-1] == "lastmile up onprem-local: slot green's rollout is complete (read live); the switch may go ahead"


def test_a_switch_that_also_updates_the_slot_is_refused_before_any_read(to_green) -> None:
    engine = FakeEngine(active="blue", recorded=deployment(), changing=(GREEN_URN,))
    with pytest.raises(SwitchRefused) as refused:
        _check(engine, to_green)
    assert refused.value.code == ExitCode.REFUSED and engine.calls == ["preview"]
    assert "would both update slot green's Deployment" in str(refused.value)
    assert "fix: first `lastmile up onprem-local` with slot green's release as it should be and active_slot " \
           "still blue" in str(refused.value)


def test_a_switch_to_a_slot_whose_live_rollout_is_incomplete_is_refused(to_green) -> None:
    engine = FakeEngine(active="blue", recorded=deployment(), live=deployment(updated=1, available=1,
                                                                              reason="ProgressDeadlineExceeded"))
    with pytest.raises(SwitchRefused) as refused:
        _check(engine, to_green)
    assert refused.value.code == ExitCode.FINDINGS
    assert ("slot green's Deployment has not completed its rollout (read live just now): the rollout exceeded its "
            "progress deadline (m); 1 of 2 replicas run the current version") in str(refused.value)
    assert "Traffic stays on slot blue" in str(refused.value)


def test_a_switch_to_a_slot_without_a_deployment_is_refused(to_green) -> None:
    with pytest.raises(SwitchRefused) as refused:
        _check(FakeEngine(active="blue", recorded=None), to_green)
    assert refused.value.code == ExitCode.REFUSED and "slot green has no Deployment yet" in str(refused.value)


def test_render_mode_and_aws_stacks_are_not_checked() -> None:
    from lastmile.stackfile import stack_settings
    from lastmile.synthesis import STACKS_DIR

    for stack in ("onprem-gitops", "aws-prod"):
        settings = stack_settings(stack, STACKS_DIR, assume_team_secrets=True)
        engine = FakeEngine(active="blue" if settings.serving.active_slot.value == "green" else "green",
                            recorded=None)
        assert _check(engine, settings) == [] and engine.calls == []
