"""The blue/green switch check, inside the program: it holds for `pulumi up`, `pulumi preview`, the deploy
workflow and `lastmile up` alike, because it is part of what the engine runs.

Why: pulumi-kubernetes 4.25.0's Deployment await can report a rollout complete too early (a rollout back to a
ReplicaSet scaled to 0, or a stale object; docs/design-notes.md, "The switch"), and a Deployment scaled to
0 of 0 passes even ``kubectl rollout status``. Ordering the stable Service after the Deployment is therefore
not enough to keep traffic off pods that are not ready.

What: on a stack that deploys slots to a cluster, before any resource of the serving half is registered,
the program reads

- the stack's own outputs of its last update (a ``StackReference`` to itself): which slot was active, the
  route weights, the release each slot held, its Deployment's name and pod-template fingerprint; and, only
  when traffic would move,
- the live Deployment of the slot that would take traffic (``Deployment.get`` with the stack's provider),

and refuses the whole update (a ``pulumi.RunError``: the engine reports it, nothing is changed) when

A slot *enters* traffic when it becomes ``active_slot`` (a flip) or when its route weight
(``serving.weights``, recorded as ``slot_weights``) goes from 0 to more than 0: a weight change is a switch too.

1. one update would both change a slot's release and make that slot enter traffic (``refused``);
2. the slot to enter traffic has no release deployed yet (``refused``);
3. the release of a slot that takes traffic before and after the update (the active slot, or one with a
   weight) would change in place, unless ``serving.allow_in_place_release`` says so (``refused``): that is
   an update of live traffic that no switch check can see before it happens;
4. the slot to enter traffic (or, for an allowed in-place release, that slot) is not ready live: its
   rollout is incomplete, it has fewer available replicas than ``capacity.min_count``, or its pod template
   is no longer the one the stack deployed (changed behind Pulumi's back) (``not ready``).

The first up of a stack has no outputs to compare with and nothing serving to protect: it is not checked.
Offline synthesis runs under mocks whose stack reference has no outputs, so it builds as a first up.
The message's first line starts with ``SWITCH_REFUSED`` or ``SWITCH_NOT_READY``: ``lastmile up`` maps them
to its exit codes 2 and 1; under plain ``pulumi up`` they are the engine's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.readiness import below_floor, incomplete, template_fingerprint
from components.slots import Slot
from infra.settings.loader import StackSettings

SWITCH_REFUSED = "switch check: refused, nothing was changed"
SWITCH_NOT_READY = "switch check: not ready, nothing was changed"
# Stack outputs the check reads back on the next update (the builder exports them).
RELEASES_OUTPUT = "slot_releases"
DEPLOYMENTS_OUTPUT = "slot_deployments"
TEMPLATES_OUTPUT = "slot_templates"
WEIGHTS_OUTPUT = "slot_weights"


@dataclass(frozen=True)
class Refusal:
    """Why the update may not go ahead: ``first`` is SWITCH_REFUSED or SWITCH_NOT_READY."""

    first: str
    slot: str
    reasons: tuple[str, ...]
    fix: str

    def message(self) -> str:
        return "\n".join([f"{self.first}: slot {self.slot}: " + "; ".join(self.reasons), f"  fix: {self.fix}"])


def release_of(release: Any) -> dict[str, str]:
    """A release as the stack's outputs record it: every field of infra.settings.common.Release, which are the
    fields that identify what a slot serves (lastmile.switch compares against the same dump)."""
    return release.model_dump()


def judge_plan(previous: Mapping[str, Any] | None, settings: StackSettings) -> tuple[Refusal | None, str | None]:
    """Decide from the last outputs and the stack file alone: (a refusal, or None; the slot whose live
    Deployment must be read before the update may go ahead, or None).

    A slot *enters* traffic when it becomes active_slot (a flip) or when its route weight goes from 0 (or
    nothing recorded) to more than 0: both get the same gates. A slot that takes traffic before and after the
    update and changes its release is an in-place release. With two slots at most one slot can enter (the
    weights of the last update summed to more than 0), so one live read decides."""
    if not previous or previous.get("active_slot") is None:
        return None, None  # the stack's first update: nothing serves yet
    serving = settings.serving
    before, after = str(previous["active_slot"]), serving.active_slot.value
    was = weights_of(previous)
    now = {slot.value: weight for slot, weight in serving.traffic_weights.items()}
    entering = sorted({after} - {before} | {slot for slot, weight in now.items() if weight > 0 and was.get(slot, 0) <= 0})
    releases = previous.get(RELEASES_OUTPUT)
    if releases is None:
        if not entering:
            return None, None
        return Refusal(SWITCH_REFUSED, entering[0], (
            "the stack's last update did not record what each slot serves (it was made by an older lastmile)",),
            f"run one update with active_slot still {before} and the weights unchanged; it records them; then "
            "switch"), None
    for slot in entering:
        how = "make it active" if slot == after != before else f"give it traffic (weight 0 -> {now[slot]})"
        deployed = releases.get(slot)
        desired = release_of(serving.slots[Slot(slot)])
        if deployed is None:
            return Refusal(SWITCH_REFUSED, slot, (f"this update would {how}, but it has no release deployed yet, "
                                                  "so nothing is ready to take traffic",),
                           f"release into slot {slot} with its weight 0 and active_slot still {before} (one update), "
                           "check it, then switch"), None
        if dict(deployed) != desired:
            return Refusal(SWITCH_REFUSED, slot, (
                f"this update would both change its release ({_name(deployed)} -> {_name(desired)}) and {how}; "
                "the engine can report a rollout complete before the pods are ready",),
                f"first update with slot {slot}'s new release, its weight 0 and active_slot still {before}; check it "
                f"through the preview Service; then give it traffic (active_slot or serving.weights)"), None
    if entering:
        return None, entering[0]
    serving_before = {slot for slot, weight in was.items() if weight > 0} | {before}
    for slot in sorted(serving_before & ({slot for slot, weight in now.items() if weight > 0} | {after})):
        deployed = releases.get(slot)
        desired = release_of(serving.slots[Slot(slot)]) if Slot(slot) in serving.slots else None
        if deployed is None or desired is None or dict(deployed) == desired:
            continue
        if not serving.allow_in_place_release:
            what = "the active slot" if slot == after else f"slot {slot}, which takes traffic (weight {now[slot]}),"
            return Refusal(SWITCH_REFUSED, slot, (
                f"this update would change the release of {what} in place ({_name(deployed)} -> "
                f"{_name(desired)}): live traffic would move to pods no check has seen",),
                f"put the new release into a slot that takes no traffic (weight 0, not active) and switch to it; or, "
                "for a rolling update of live traffic by choice, set serving.allow_in_place_release: true"), None
        return None, slot
    return None, None


def weights_of(previous: Mapping[str, Any]) -> dict[str, int]:
    """The route weights the last update recorded; an update made before weights existed sent all traffic to
    its active slot."""
    recorded = previous.get(WEIGHTS_OUTPUT)
    if recorded is None:
        return {str(previous["active_slot"]): 100}
    return {str(slot): int(weight) for slot, weight in dict(recorded).items()}


def judge_live(slot: str, live: Mapping[str, Any], deployed_fingerprint: str | None, min_count: int,
               before: str) -> Refusal | None:
    """Decide from the live Deployment of the slot that would take traffic."""
    short = below_floor(live, min_count)
    reasons = [*incomplete(live), *short]
    fingerprint = template_fingerprint((live.get("spec") or {}).get("template"))
    changed = deployed_fingerprint is not None and fingerprint != deployed_fingerprint
    if changed:
        reasons.append("its pod template is not the one the stack deployed (changed behind Pulumi's back)")
    if not reasons:
        return None
    fixes = [f"`kubectl rollout status` of slot {slot}'s Deployment shows what it waits for"]
    if changed:
        fixes.append(f"an up with active_slot still {before} puts back the template the stack declares")
    if short:  # the autoscaler owns replicas and does not scale up from 0: no up restores them
        fixes.append(f"`kubectl scale` slot {slot}'s Deployment back to at least {min_count} replicas")
    fixes.append(f"release a working version into slot {slot}, or leave traffic on slot {before}")
    return Refusal(SWITCH_NOT_READY, slot, (*reasons, f"traffic stays on slot {before}"), "; ".join(fixes))


def switch_check(settings: StackSettings, provider: k8s.Provider) -> pulumi.Output[list[pulumi.Resource]]:
    """An Output that resolves (to no resources) once the update may go ahead, and fails with the
    refusal otherwise. Pass it as ``depends_on`` of every component of the serving half: none of them is
    registered before the check has passed."""
    stack = pulumi.get_stack()
    own = pulumi.StackReference("switch-check-last-update",
                                stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}")

    async def check() -> list[pulumi.Resource]:
        previous = await own.outputs.future() or {}
        refusal, read_slot = judge_plan(previous, settings)
        if refusal is None and read_slot is not None:
            name = (previous.get(DEPLOYMENTS_OUTPUT) or {}).get(read_slot)
            if name is None:
                refusal = Refusal(SWITCH_REFUSED, read_slot, ("the last update did not record its Deployment",),
                                  "run one update without changing active_slot or the active slot's release")
            else:
                live = await _live_deployment(f"switch-check-{read_slot}", name, provider)
                refusal = judge_live(read_slot, live, (previous.get(TEMPLATES_OUTPUT) or {}).get(read_slot),
                                     settings.capacity.min_count, str(previous["active_slot"]))
        if refusal is not None:
            raise pulumi.RunError(refusal.message())
        return []

    return pulumi.Output.from_input(check())


async def _live_deployment(name: str, namespaced_name: str, provider: k8s.Provider) -> dict[str, Any]:
    """The live Deployment as an API-shaped dict (the fields the readiness rules read, and the template)."""
    live = k8s.apps.v1.Deployment.get(name, namespaced_name, opts=pulumi.ResourceOptions(provider=provider))
    metadata, spec, status = (await live.metadata.future(), await live.spec.future(), await live.status.future())

    def of_status(field: str) -> Any:
        return None if status is None else getattr(status, field)

    conditions = [{"type": c.type, "reason": c.reason, "message": c.message} for c in of_status("conditions") or []]
    return {
        "metadata": {"generation": metadata.generation},
        "spec": {"replicas": spec.replicas, "template": spec.template},
        "status": {"observedGeneration": of_status("observed_generation"), "replicas": of_status("replicas"),
                   "updatedReplicas": of_status("updated_replicas"),
                   "availableReplicas": of_status("available_replicas"), "conditions": conditions},
    }


def _name(release: Mapping[str, Any]) -> str:
    return f"{release.get('model')} {release.get('version')} ({str(release.get('image'))[-12:]})"
