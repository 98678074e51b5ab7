"""The guards of `lastmile up` on the local Kubernetes cluster, through the real engine.

A cluster of its own (so this module runs beside test_local_cluster_deploy.py under pytest-xdist). After a
first up: a flip to a slot whose live rollout is incomplete (changed behind Pulumi's back) is refused; an up
past its deadline (--timeout) is interrupted and leaves the state true to the cluster; an up that changes
only the ready timeout returns.
"""

from __future__ import annotations

import json
import time

import pytest
from cluster_live import (FRESH_NEVER_READY_IMAGE, NAMESPACE, NEVER_READY_IMAGE, STACK, active_and_idle, deployment,
                          ok, stable_selector, until, with_image)

pytestmark = [pytest.mark.engine, pytest.mark.kube]


def test_up(live) -> None:
    ok(live.checkout.lastmile("up", STACK))
    active, idle = active_and_idle(live.checkout.stack_file(STACK).read_text())
    assert until(lambda: live.slot_ips(idle)) and until(lambda: live.stable_endpoint_ips() == live.slot_ips(active))


def test_a_flip_to_a_slot_whose_live_rollout_is_incomplete_is_refused(live) -> None:
    """The state says the idle slot's Deployment is complete, but the cluster's copy was changed behind
    Pulumi's back to a release that never becomes ready. The flip reads that Deployment live and refuses
    (exit 1); the next up puts the stack file's release back."""
    original = live.checkout.stack_file(STACK).read_text()
    active, idle = active_and_idle(original)
    serving = live.slot_ips(active)
    name = deployment(live, idle)["metadata"]["name"]
    patch = [{"op": "replace", "path": f"/spec/template/spec/{kind}/0/image", "value": NEVER_READY_IMAGE}
             for kind in ("containers", "initContainers")]
    live.kubectl("-n", NAMESPACE, "patch", "deployment", name, "--type", "json", "-p", json.dumps(patch))
    assert until(lambda: live.slot_ips(idle, ready=False))

    live.edit_stack(rf"^(    active_slot: ){active}$", rf"\g<1>{idle}")
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert f"slot {idle}'s Deployment has not completed its rollout (read live just now)" in refused.stderr
    assert f"Traffic stays on slot {active}" in refused.stderr and "Traceback" not in refused.stdout + refused.stderr
    assert live.stable_endpoint_ips() == serving and stable_selector(live) == active

    live.checkout.stack_file(STACK).write_text(original)
    ok(live.checkout.lastmile("up", STACK))
    image = deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image != NEVER_READY_IMAGE and until(lambda: live.slot_ips(idle))


def test_an_up_past_its_deadline_is_interrupted_and_leaves_the_state_true(live) -> None:
    """A deadline (--timeout) shorter than the Deployment's own ready timeout: the up is interrupted at the
    deadline, says so, and refreshes the state, so the cluster's half-applied change is in the state and
    putting the stack file back is a rollback that really happens (not a no-op)."""
    original = live.checkout.stack_file(STACK).read_text()
    _, idle = active_and_idle(original)
    good_image = deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
    live.checkout.stack_file(STACK).write_text(with_image(original, idle, FRESH_NEVER_READY_IMAGE))

    started = time.monotonic()
    stopped = live.checkout.lastmile("up", STACK, "--timeout", "15")
    elapsed = time.monotonic() - started
    assert stopped.returncode == 4, stopped.stdout[-3000:] + stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stdout + stopped.stderr
    assert f"lastmile up {STACK}: stopped at its deadline of 15 s" in stopped.stderr
    assert "the engine cancelled what was in flight" in stopped.stderr
    assert "the stack's state was refreshed" in stopped.stderr, stopped.stderr[-3000:]
    assert elapsed < 50, f"{elapsed:.0f} s: not stopped at the deadline but at the 60 s ready timeout"
    assert deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == FRESH_NEVER_READY_IMAGE

    live.checkout.stack_file(STACK).write_text(original)
    ok(live.checkout.lastmile("up", STACK))
    assert deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == good_image
    assert until(lambda: live.slot_ips(idle)), "the rolled-back slot's pods are ready again"


def test_an_up_that_changes_only_the_ready_timeout_returns(live) -> None:
    """Both Deployments' specs change (progress deadline, await annotation) without a new ReplicaSet. With
    pulumi-kubernetes 4.25.0 such an up hung once (docs/design-notes.md); now the deadline would turn a hang
    into exit 4 within 2 x 75 + 300 s, and the test's own 600 s limit is never reached."""
    live.edit_stack(r"^(    ready_timeout_seconds: )60$", r"\g<1>75")
    started = time.monotonic()
    ok(live.checkout.lastmile("up", STACK))
    print(f"timeout-only up took {time.monotonic() - started:.1f} s")
    for slot in ("blue", "green"):
        applied = deployment(live, slot)
        assert applied["spec"]["progressDeadlineSeconds"] == 75
        assert applied["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "75"
    no_op = live.checkout.lastmile("preview", STACK)
    assert no_op.returncode == 0 and "no changes" in no_op.stderr, no_op.stdout[-3000:]
