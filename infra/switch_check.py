"""The blue/green switch check, inside the program: it holds for `pulumi up`, `pulumi preview`, the deploy
workflow and `lastmile up` alike, because it is part of what the engine runs.

Why: pulumi-kubernetes 4.25.0's Deployment await can report a rollout complete too early (a rollout back to a
ReplicaSet scaled to 0, or a stale object; docs/design-notes.md, "The switch"), and a Deployment scaled to
0 of 0 passes even ``kubectl rollout status``. Ordering the stable Service after the Deployment is therefore
not enough to keep traffic off pods that are not ready.

What: on a stack that deploys slots to a cluster, before any resource of the serving half is registered,
the program reads

- the stack's own outputs of its last update (a ``StackReference`` to itself): which slot was active, the
  release each slot held, its Deployment's name and pod-template fingerprint; and, only when traffic would
  move,
- the live Deployment of the slot that would take traffic (``Deployment.get`` with the stack's provider),

and refuses the whole update (a ``pulumi.RunError``: the engine reports it, nothing is changed) when

1. one update would both change a slot's release and make that slot active (``refused``);
2. the slot to activate has no release deployed yet (``refused``);
3. the active slot's release would change in place, unless ``serving.allow_in_place_release`` says so
   (``refused``): that is an update of live traffic that no switch check can see before it happens;
4. the slot to activate (or, for an allowed in-place release, the active slot) is not ready live: its
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
from infra.settings.loader import StackSettings

SWITCH_REFUSED = "switch check: refused, nothing was changed"
SWITCH_NOT_READY = "switch check: not ready, nothing was changed"
# Stack outputs the check reads back on the next update (the builder exports them).
RELEASES_OUTPUT = "slot_releases"
DEPLOYMENTS_OUTPUT = "slot_deployments"
TEMPLATES_OUTPUT = "slot_templates"


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
    """A release as the stack's outputs record it (the fields that identify what a slot serves)."""
    return {"model": release.model, "version": release.version, "sha256": release.sha256, "image": release.image}


def judge_plan(previous: Mapping[str, Any] | None, settings: StackSettings) -> tuple[Refusal | None, str | None]:
    """Decide from the last outputs and the stack file alone: (a refusal, or None; the slot whose live
    Deployment must be read before the update may go ahead, or None)."""
    if not previous or previous.get("active_slot") is None:
        return None, None  # the stack's first update: nothing serves yet
    serving = settings.serving
    before, after = str(previous["active_slot"]), serving.active_slot.value
    releases = previous.get(RELEASES_OUTPUT)
    if releases is None:
        if before == after:
            return None, None
        return Refusal(SWITCH_REFUSED, after, (
            "the stack's last update did not record what each slot serves (it was made by an older lastmile)",),
            f"run one update with active_slot still {before}; it records them; then flip"), None
    desired = release_of(serving.active)
    if before != after:
        deployed = releases.get(after)
        if deployed is None:
            return Refusal(SWITCH_REFUSED, after, ("it has no release deployed yet, so nothing is ready to take "
                                                   "traffic",),
                           f"release into slot {after} with active_slot still {before} (one update), check it, "
                           "then flip"), None
        if dict(deployed) != desired:
            return Refusal(SWITCH_REFUSED, after, (
                f"this update would both change its release ({_name(deployed)} -> {_name(desired)}) and make it "
                "active; the engine can report a rollout complete before the pods are ready",),
                f"first update with slot {after}'s new release and active_slot still {before}; check it through "
                f"the preview Service; then flip active_slot to {after}"), None
        return None, after
    deployed = releases.get(after)
    if deployed is not None and dict(deployed) != desired:
        if not serving.allow_in_place_release:
            return Refusal(SWITCH_REFUSED, after, (
                f"this update would change the release of the active slot in place ({_name(deployed)} -> "
                f"{_name(desired)}): live traffic would move to pods no check has seen",),
                f"put the new release into the idle slot {serving.active_slot.other.value} and flip to it; or, "
                "for a rolling update of live traffic by choice, set serving.allow_in_place_release: true"), None
        return None, after
    return None, None


def judge_live(slot: str, live: Mapping[str, Any], deployed_fingerprint: str | None, min_count: int,
               before: str) -> Refusal | None:
    """Decide from the live Deployment of the slot that would take traffic."""
    reasons = [*incomplete(live), *below_floor(live, min_count)]
    fingerprint = template_fingerprint((live.get("spec") or {}).get("template"))
    if deployed_fingerprint is not None and fingerprint != deployed_fingerprint:
        reasons.append("its pod template is not the one the stack deployed (changed behind Pulumi's back)")
    if not reasons:
        return None
    return Refusal(SWITCH_NOT_READY, slot, (*reasons, f"traffic stays on slot {before}"),
                   f"`kubectl rollout status` of slot {slot}'s Deployment shows what it waits for; `lastmile "
                   f"refresh` then `lastmile up` puts back what the stack declares; release a working version into "
                   f"slot {slot}, or leave active_slot at {before}")


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
