"""What `lastmile up` adds around the program's switch check (infra/switch_check.py).

The check itself is part of the program, so it holds under plain `pulumi up` and in the deploy workflow too:
before any resource of the serving half changes, it reads the stack's last outputs and the live Deployment of
the slot about to get traffic, and stops the update when the switch is unsafe. `lastmile up` only

- maps its refusal to lastmile's exit codes (``refusal_code``): 2 for an update the check refuses whatever the
  cluster says (release and activate in one update, a slot without a release, a release changed in place),
  1 for a slot that is not ready live (rollout incomplete, below the replica floor, changed by hand);
- asks, for ``--golden-url``, whether the update changes what takes traffic (``active_slot_change``: a flip,
  a weight from 0, or an allowed in-place release), so the golden set of the release about to take traffic is
  asked of the URL first. For an in-place release no
  slot serves the new release yet, so its golden set can only pass where the URL already serves it.
"""

from __future__ import annotations

from typing import Any

from components.slots import Slot
from lastmile.exitcodes import ExitCode

# The first words of the program's refusal (infra.switch_check.SWITCH_REFUSED / SWITCH_NOT_READY); spelled here
# too so that reading an engine message does not import the program.
_REFUSED = "switch check: refused"
_NOT_READY = "switch check: not ready"


def refusal_code(engine_message: str) -> int | None:
    """The exit code for an engine failure that is the switch check's refusal; None for any other failure."""
    if _REFUSED in engine_message:
        return ExitCode.REFUSED
    if _NOT_READY in engine_message:
        return ExitCode.FINDINGS
    return None


def guards_switches(settings: Any) -> bool:
    """Whether this stack's switches are checked: it deploys Kubernetes slots to a cluster (not render mode)."""
    return settings.onprem is not None and settings.onprem.render_directory is None


def active_slot_change(engine: Any, settings: Any) -> tuple[str | None, str] | None:
    """(where traffic was: the deployed active slot, None before the first up; the slot whose release is about to
    take traffic) when this up changes which release takes traffic: the active slot moves, a slot's route weight
    goes from 0 to more than 0, or (an allowed in-place release) a serving slot's release changes, given as
    (slot, slot). None when traffic stays on what it is on."""
    outputs = engine.outputs()
    before = outputs.get("active_slot")
    after = settings.serving.active_slot.value
    if before is None or before.value != after:
        return (None if before is None else before.value, after)
    recorded_weights = outputs.get("slot_weights")
    was = dict(recorded_weights.value or {}) if recorded_weights is not None else {after: 100}
    now = {slot.value: weight for slot, weight in settings.serving.traffic_weights.items()}
    entering = sorted(slot for slot, weight in now.items() if weight > 0 and int(was.get(slot, 0) or 0) <= 0)
    if entering:
        return (after, entering[0])
    recorded = outputs.get("slot_releases")
    served = dict(recorded.value or {}) if recorded is not None else {}
    for slot in sorted({after} | {slot for slot, weight in now.items() if weight > 0}):
        release = settings.serving.slots.get(Slot(slot))
        if release is None or served.get(slot) is None:
            continue
        if dict(served[slot]) != release.model_dump():  # a Release's fields are what the outputs record
            return (slot, slot)
    return None
