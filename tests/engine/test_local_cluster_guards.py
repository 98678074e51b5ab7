"""The guards of an update on the local Kubernetes cluster, through the real engine.

A cluster of its own (so this module runs beside test_local_cluster_deploy.py under pytest-xdist). After a
first up, each unsafe switch is tried with `lastmile up` and with the program alone (plain `pulumi up`): a
flip to a slot changed behind Pulumi's back, to a slot scaled to 0, a release into the active slot, a stack
file changed while `lastmile up` runs; each is refused with traffic on the old slot, and a flip and a
rollback go ahead. Also: Ctrl-C and SIGTERM during a rollout end clean; an up past its deadline (--timeout)
is interrupted and leaves the state true to the cluster; an up that changes only the ready timeout returns.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time

import pytest
from cluster_live import (FRESH_NEVER_READY_IMAGE, NAMESPACE, NEVER_READY_DIGEST, NEVER_READY_IMAGE, STACK,
                          active_and_idle, deployment, golden_server, ok, stable_selector, until, with_image)

pytestmark = [pytest.mark.engine, pytest.mark.kube]


def test_up(live) -> None:
    ok(live.checkout.lastmile("up", STACK))
    active, idle = active_and_idle(live.checkout.stack_file(STACK).read_text())
    assert until(lambda: live.slot_ips(idle)) and until(lambda: live.stable_endpoint_ips() == live.slot_ips(active))


def test_a_flip_to_a_slot_whose_live_rollout_is_incomplete_is_refused(live) -> None:
    """The state says the idle slot's Deployment is complete, but the cluster's copy was changed behind
    Pulumi's back to a release that never becomes ready. The program's switch check reads that Deployment
    live and refuses, under plain `pulumi up`/`preview` and `lastmile up` (exit 1) alike; the next up with
    the flip undone puts the stack file's release back."""
    original = live.checkout.stack_file(STACK).read_text()
    active, idle = active_and_idle(original)
    serving = live.slot_ips(active)
    name = deployment(live, idle)["metadata"]["name"]
    patch = [{"op": "replace", "path": f"/spec/template/spec/{kind}/0/image", "value": NEVER_READY_IMAGE}
             for kind in ("containers", "initContainers")]
    live.kubectl("-n", NAMESPACE, "patch", "deployment", name, "--type", "json", "-p", json.dumps(patch))
    assert until(lambda: live.slot_ips(idle, ready=False))

    live.edit_stack(rf"^(    active_slot: ){active}$", rf"\g<1>{idle}")
    for verb in ("preview", "up"):
        plain = live.plain(verb)
        assert plain.returncode == 4 and f"switch check: not ready, nothing was changed: slot {idle}" in plain.stderr
        assert "its pod template is not the one the stack deployed" in plain.stderr, plain.stderr[-3000:]
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert f"switch check: not ready, nothing was changed: slot {idle}" in refused.stderr
    assert f"traffic stays on slot {active}" in refused.stderr and "Traceback" not in refused.stdout + refused.stderr
    assert live.stable_endpoint_ips() == serving and stable_selector(live) == active

    live.checkout.stack_file(STACK).write_text(original)
    ok(live.checkout.lastmile("up", STACK))
    image = deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image != NEVER_READY_IMAGE and until(lambda: live.slot_ips(idle))


def test_a_flip_to_a_slot_scaled_to_zero_is_refused(live) -> None:
    """0 of 0 replicas passes even `kubectl rollout status`; the switch check's replica floor
    (capacity.min_count) refuses the flip on every path, and traffic stays."""
    original = live.checkout.stack_file(STACK).read_text()
    active, idle = active_and_idle(original)
    serving = live.slot_ips(active)
    name = deployment(live, idle)["metadata"]["name"]
    live.kubectl("-n", NAMESPACE, "scale", "deployment", name, "--replicas=0")
    assert until(lambda: not live.slot_ips(idle) and not live.slot_ips(idle, ready=False))

    live.edit_stack(rf"^(    active_slot: ){active}$", rf"\g<1>{idle}")
    plain = live.plain("up")
    assert plain.returncode == 4 and "0 available replica(s), the stack's floor is 1" in plain.stderr, plain.stderr[-3000:]
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 1 and "the stack's floor is 1" in refused.stderr, refused.stderr[-3000:]
    assert live.stable_endpoint_ips() == serving and stable_selector(live) == active

    live.checkout.stack_file(STACK).write_text(original)
    live.kubectl("-n", NAMESPACE, "scale", "deployment", name, "--replicas=1")  # the HPA stops at 0: by hand
    assert until(lambda: live.slot_ips(idle))


def test_a_release_into_the_active_slot_is_refused(live) -> None:
    """A new release in the slot that serves would update live traffic in place: refused on every path
    (serving.allow_in_place_release is the named opt-in), and the active Deployment is untouched."""
    original = live.checkout.stack_file(STACK).read_text()
    active, _ = active_and_idle(original)
    serving = live.slot_ips(active)
    before = deployment(live, active)["spec"]["template"]
    live.edit_slot(active, FRESH_NEVER_READY_IMAGE)
    plain = live.plain("up")
    assert plain.returncode == 4 and "would change the release of the active slot in place" in plain.stderr
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 2 and "serving.allow_in_place_release: true" in refused.stderr, refused.stderr[-3000:]
    assert deployment(live, active)["spec"]["template"] == before
    assert live.stable_endpoint_ips() == serving
    live.checkout.stack_file(STACK).write_text(original)


def test_the_stack_file_changed_during_lastmile_up_cannot_slip_a_release_and_flip_through(live) -> None:
    """`lastmile up --golden-url` reads the stack file for its golden gate; the file is changed while the gate
    asks (the golden server rewrites it) into a release and flip in one. The program reads the file it deploys
    and refuses: the decision and the deployment read the same config."""
    original = live.checkout.stack_file(STACK).read_text()
    active, idle = active_and_idle(original)
    serving = live.slot_ips(active)
    flip = re.sub(rf"^(    active_slot: ){active}$", rf"\g<1>{idle}", original, flags=re.M)
    swapped = with_image(flip, idle, FRESH_NEVER_READY_IMAGE)
    live.checkout.stack_file(STACK).write_text(flip)
    with golden_server(live, idle, then=lambda: live.checkout.stack_file(STACK).write_text(swapped)) as url:
        refused = live.checkout.lastmile("up", STACK, "--golden-url", url)
    assert "golden" in refused.stderr and refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "switch check: refused" in refused.stderr and "would both change its release" in refused.stderr
    assert live.stable_endpoint_ips() == serving and stable_selector(live) == active
    assert deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] != FRESH_NEVER_READY_IMAGE
    live.checkout.stack_file(STACK).write_text(original)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_rollout_ends_clean_and_the_next_up_restores(live, signum) -> None:
    """Ctrl-C (or SIGTERM) while a release rolls out: the engine is asked to stop, the lock is released, no plugin
    is left behind, the state is refreshed, lastmile exits 130 (143) with no traceback; putting the stack file
    back and `lastmile up` restores it, with no manual step."""
    original = live.checkout.stack_file(STACK).read_text()
    _, idle = active_and_idle(original)
    good_image = deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
    # A never-ready template of this test's own: the deadline test below needs FRESH_NEVER_READY_IMAGE unused.
    never_ready = f"docker.io/lastmile/signal-{signal.Signals(signum).name.lower()}@{NEVER_READY_DIGEST}"
    live.edit_slot(idle, never_ready)
    up = live.start("up", STACK)
    try:
        assert until(lambda: deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
                     == never_ready, timeout_seconds=120), "the rollout never started"
        second = live.checkout.lastmile("up", STACK)  # a second up while the first holds the stack
        assert second.returncode == 3 and "another operation holds the stack's lock" in second.stderr, second.stderr
        assert up.poll() is None, "the second up broke the first"
        up.send_signal(signum)
        stdout, stderr = up.communicate(timeout=300)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    expected = 130 if signum == signal.SIGINT else 143
    assert up.returncode == expected, stdout[-3000:] + stderr[-3000:]
    assert f"{signal.Signals(signum).name} received" in stderr and "the stack's state was refreshed" in stderr
    assert "Traceback" not in stdout + stderr
    assert live.locks() == [] and until(lambda: live.orphaned_plugins() == [], timeout_seconds=20)
    live.checkout.stack_file(STACK).write_text(original)
    ok(live.checkout.lastmile("up", STACK))
    assert deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == good_image
    assert until(lambda: live.slot_ips(idle))


def test_ctrl_c_during_the_golden_check_deploys_nothing_and_the_next_up_works(live) -> None:
    """Ctrl-C while `lastmile up --golden-url` waits for the golden answer (before the engine starts): exit 130,
    no lock, nothing deployed, and the next up goes ahead."""
    original = live.checkout.stack_file(STACK).read_text()
    active, idle = active_and_idle(original)
    serving = live.slot_ips(active)
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    live.edit_stack(rf"^(    active_slot: ){active}$", rf"\g<1>{idle}")
    up = live.start("up", STACK, "--golden-url", f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        listener.settimeout(60)
        connection, _ = listener.accept()  # the golden check is asking
        up.send_signal(signal.SIGINT)
        stdout, stderr = up.communicate(timeout=60)
        connection.close()
    finally:
        listener.close()
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert up.returncode == 130 and "stopped by Ctrl-C" in stderr, stdout[-2000:] + stderr[-2000:]
    assert "Traceback" not in stdout + stderr and live.locks() == []
    assert live.stable_endpoint_ips() == serving and stable_selector(live) == active
    live.checkout.stack_file(STACK).write_text(original)
    ok(live.checkout.lastmile("up", STACK))


def test_a_flip_and_a_rollback_go_ahead_on_both_paths(live) -> None:
    original = live.checkout.stack_file(STACK).read_text()
    active, idle = active_and_idle(original)
    target = live.slot_ips(idle)
    live.edit_stack(rf"^(    active_slot: ){active}$", rf"\g<1>{idle}")
    flipped = live.plain("up")
    assert flipped.returncode == 0, flipped.stdout[-3000:] + flipped.stderr[-3000:]
    assert until(lambda: live.stable_endpoint_ips() == target)
    live.checkout.stack_file(STACK).write_text(original)
    ok(live.checkout.lastmile("up", STACK))
    assert until(lambda: live.stable_endpoint_ips() == live.slot_ips(active))


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
