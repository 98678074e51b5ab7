"""The check `lastmile up` makes before it moves traffic between Kubernetes slots (a change of ``active_slot``).

Why lastmile checks what the engine awaits: pulumi-kubernetes 4.25.0's Deployment await can report an
update complete too early (docs/design-notes.md, Performance: measured, a rollout back to an existing
ReplicaSet reported complete before that ReplicaSet was scaled up, 2 of 19 times under load; and 3 of 7
ups got back a Deployment whose ``status.observedGeneration`` was below its ``metadata.generation``). The stable Service
depends on the active slot's Deployment, so when one up both changes a slot's release and makes it active,
the Service can move before the new pods are ready. So, for a stack that deploys to a cluster, an up that
changes the active slot first:

1. refuses (exit 2, nothing deployed) when the same up would also update the Deployment of the slot
   about to get traffic (its release changes, or its last update did not complete): release into the idle
   slot first, check it through the preview Service, then flip;
2. reads that slot's Deployment live (a refresh of that one resource) and refuses (exit 1, nothing
   deployed) unless it passes the rule ``kubectl rollout status`` applies: the controller has observed
   the current generation, the rollout is not past its progress deadline, every desired replica runs the
   current version, none of the previous version is left, and every updated replica is available.

Render-mode stacks (no cluster) and stacks without a Kubernetes half are not checked; neither is the first
up of a stack (no traffic to protect yet).
"""

from __future__ import annotations

from typing import Any

from lastmile.exitcodes import ExitCode

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


class SwitchRefused(Exception):
    """The up would move traffic unsafely; ``code`` is the exit code, the message says why and what to do."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def incomplete(deployment: dict[str, Any]) -> list[str]:
    """Why a Deployment (an API object: metadata, spec, status) has not completed its rollout; empty if it has."""
    generation = deployment.get("metadata", {}).get("generation")
    status = deployment.get("status") or {}
    observed = status.get("observedGeneration")
    if generation is None or observed is None or observed < generation:
        return [f"the Deployment controller has not observed its current version (status.observedGeneration "
                f"{observed}, metadata.generation {generation})"]
    reasons = []
    progressing = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        reasons.append(f"the rollout exceeded its progress deadline ({progressing.get('message')})")
    desired = (deployment.get("spec") or {}).get("replicas", 1)
    updated, replicas = status.get("updatedReplicas", 0), status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < desired:
        reasons.append(f"{updated} of {desired} replicas run the current version")
    if replicas > updated:
        reasons.append(f"{replicas - updated} replica(s) of the previous version are still running")
    if available < updated:
        reasons.append(f"{available} of {updated} updated replicas are available")
    return reasons


def guards_switches(settings: Any) -> bool:
    """Whether this stack's switches are checked: it deploys Kubernetes slots to a cluster (not render mode)."""
    return settings.onprem is not None and settings.onprem.render_directory is None


def active_slot_change(engine: Any, settings: Any) -> tuple[str | None, str] | None:
    """(the deployed active slot, None before the first up; the stack file's) when this up changes the active
    slot; None when it stays. Read once per up: the switch check and the golden gate both ask it."""
    before = engine.outputs().get("active_slot")
    after = settings.serving.active_slot.value
    if before is not None and before.value == after:
        return None
    return (None if before is None else before.value, after)


def slot_deployment(engine: Any, slot: str) -> dict[str, Any] | None:
    """The state's record of the Deployment of ``slot`` (urn, outputs), or None."""
    from components.k8s.common import SLOT_LABEL  # loaded by the engine's program already

    resources = engine.stack.export_stack().deployment.get("resources") or []
    return next((r for r in resources if r.get("type") == DEPLOYMENT
                 and ((r.get("outputs") or {}).get("metadata") or {}).get("labels", {}).get(SLOT_LABEL) == slot), None)


def check_switch(engine: Any, settings: Any, change: tuple[str | None, str] | None, say: Any) -> None:
    """Raise SwitchRefused unless this up may make the change ``change`` (``active_slot_change``) of the
    active slot (see the module doc); ``say`` prints progress."""
    from pulumi.automation.errors import CommandError

    if change is None or change[0] is None or not guards_switches(settings):
        return
    before, after = change
    stack = settings.stack
    deployment = slot_deployment(engine, after)
    if deployment is None:
        raise SwitchRefused(f"lastmile up {stack}: refused, nothing was deployed: slot {after} has no Deployment yet, "
                            f"so there is nothing ready to switch to.\n  fix: release into slot {after} with "
                            f"active_slot still {before} (one up), check it, then flip", ExitCode.REFUSED)
    say(f"lastmile up {stack}: the active slot changes {before} -> {after}; checking slot {after} first")
    changing: set[str] = set()

    def collect(event: Any) -> None:
        step = event.resource_pre_event.metadata if event.resource_pre_event else None
        if step is not None and getattr(step.op, "value", step.op) not in ("same", "read"):
            changing.add(step.urn)

    engine.stack.preview(on_event=collect, diff=False, color="never")
    if deployment["urn"] in changing:
        raise SwitchRefused(
            f"lastmile up {stack}: refused, nothing was deployed: this up would both update slot {after}'s Deployment "
            f"(its release changes, or its last update did not complete) and make it active. The engine can report "
            f"a Deployment's rollout complete too early, so traffic could move before the new pods are ready.\n"
            f"  fix: first `lastmile up {stack}` with slot {after}'s release as it should be and active_slot still "
            f"{before}; check it through the preview Service (`lastmile golden` or `--golden-url`); then flip "
            f"active_slot to {after}", ExitCode.REFUSED)
    try:
        engine.stack.refresh(target=[deployment["urn"]], color="never")
    except CommandError:
        pass  # a Deployment that is not ready fails its read; its live status is recorded all the same
    live = (slot_deployment(engine, after) or {}).get("outputs") or {}
    reasons = incomplete(live)
    if reasons:
        raise SwitchRefused(
            f"lastmile up {stack}: refused, nothing was deployed: slot {after}'s Deployment has not completed its "
            f"rollout (read live just now): {'; '.join(reasons)}. Traffic stays on slot {before}.\n  fix: "
            f"`kubectl rollout status` of that Deployment shows what it waits for; release a working version into "
            f"slot {after}, or leave active_slot at {before}", ExitCode.FINDINGS)
    say(f"lastmile up {stack}: slot {after}'s rollout is complete (read live); the switch may go ahead")
