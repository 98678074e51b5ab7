"""`lastmile drift` on the local Kubernetes cluster through the real engine (a cluster of its own, so this module
runs beside the other cluster modules under pytest-xdist).

Before any up: exit 2, never deployed. After `lastmile up`: no drift, exit 0. Then each hand edit alone -- the
active slot scaled to 0, another image digest set on the idle slot, the stable Service's selector patched to the
other slot, a label added by hand, a resource deleted by hand -- is exit 1 naming the resource, the field and
both values, with the stack's state file byte-identical before and after; then `lastmile up` and drift again.
What an up restores and what it does not (a replica count and a label, fields the stack does not set) is
asserted as it is. Then: the cluster stopped, exit 3 with the fix; a fresh cluster under the old state (drift names
everything as gone, an up deploys it all again); an up interrupted by Ctrl-C mid-rollout, named by drift and
restored by the next up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from cluster_live import NAMESPACE, NEVER_READY_DIGEST, STACK, active_and_idle, deployment, ok, stable_selector, until

from lastmile.exitcodes import ExitCode

pytestmark = [pytest.mark.engine, pytest.mark.kube]
OTHER_IMAGE = "docker.io/seldonio/mlserver@sha256:" + "1" * 64


def state_file(live) -> Path:
    return live.checkout.root / ".pulumi-state" / ".pulumi" / "stacks" / "lastmile" / f"{STACK}.json"


def drift(live) -> tuple[int, list[dict], str]:
    """`lastmile drift STACK --json`: (exit code, its rows, stderr); the state file is byte-identical after it."""
    before = state_file(live).read_bytes() if state_file(live).exists() else None
    result = live.checkout.lastmile("drift", STACK, "--json")
    assert "Traceback" not in result.stdout + result.stderr
    after = state_file(live).read_bytes() if state_file(live).exists() else None
    assert before == after, "lastmile drift wrote the stack's state"
    [report] = json.loads(result.stdout)["stacks"]
    assert report["exit_code"] == result.returncode, report
    return result.returncode, report["drift"], report["message"]


def one(rows: list[dict], resource: str, field: str) -> dict:
    matches = [r for r in rows if resource in r["resource"] and r["field"] == field]
    assert len(matches) == 1, (resource, field, rows)
    return matches[0]


def test_never_deployed_is_exit_2_saying_so(live) -> None:
    code, rows, message = drift(live)
    assert code == ExitCode.REFUSED and rows == [] and "never deployed" in message, message
    assert not state_file(live).exists(), "drift created the stack's state"


def test_after_an_up_there_is_no_drift(live) -> None:
    ok(live.checkout.lastmile("up", STACK))
    code, rows, message = drift(live)
    assert (code, rows) == (ExitCode.OK, []), message


def test_a_selector_patched_to_the_other_slot_is_named_and_an_up_restores_it(live) -> None:
    active, idle = active_and_idle(live.checkout.stack_file(STACK).read_text())
    name = live.stable_service()["metadata"]["name"]
    live.kubectl("-n", NAMESPACE, "patch", "service", name, "-p", json.dumps({"spec": {"selector": {
        "lastmile.dev/slot": idle}}}))
    code, rows, _ = drift(live)
    assert code == ExitCode.FINDINGS
    row = one(rows, f"Service {NAMESPACE}/{name}", 'spec.selector["lastmile.dev/slot"]')
    assert row["stack"] == active and row["live"].startswith(idle)
    assert {"engine refresh", "stable Service slot", "field manager"} == set(row["found_by"])
    ok(live.checkout.lastmile("up", STACK))
    assert stable_selector(live) == active
    assert drift(live)[:2] == (ExitCode.OK, [])


def test_another_image_digest_is_named_and_an_up_restores_it(live) -> None:
    _, idle = active_and_idle(live.checkout.stack_file(STACK).read_text())
    name = deployment(live, idle)["metadata"]["name"]
    good = deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
    live.kubectl("-n", NAMESPACE, "set", "image", f"deployment/{name}", f"*={OTHER_IMAGE}")
    code, rows, _ = drift(live)
    assert code == ExitCode.FINDINGS
    row = one(rows, f"Deployment {NAMESPACE}/{name}", "spec.template.spec.containers[0].image")
    assert row["stack"] == good and row["live"].startswith(OTHER_IMAGE)
    assert {"engine refresh", "slot image digest", "field manager"} == set(row["found_by"])
    ok(live.checkout.lastmile("up", STACK))
    assert deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == good
    assert until(lambda: live.slot_ips(idle))
    assert drift(live)[:2] == (ExitCode.OK, [])


def test_a_resource_deleted_by_hand_is_named_and_an_up_creates_it_again(live) -> None:
    preview = next(s for s in live.kubectl("-n", NAMESPACE, "get", "svc", "-o", "json")["items"]
                   if s["metadata"]["name"].startswith("iris-classifier-router-preview"))["metadata"]["name"]
    live.kubectl("-n", NAMESPACE, "delete", "service", preview)
    code, rows, _ = drift(live)
    assert code == ExitCode.FINDINGS
    row = one(rows, f"Service {NAMESPACE}/{preview}", "(the whole resource)")
    assert (row["stack"], row["live"]) == ("exists", "deleted outside Pulumi")
    ok(live.checkout.lastmile("up", STACK))  # created again, under a new generated name (the old one left the state)
    assert [s for s in live.kubectl("-n", NAMESPACE, "get", "svc", "-o", "json")["items"]
            if s["metadata"]["name"].startswith("iris-classifier-router-preview")]
    assert drift(live)[:2] == (ExitCode.OK, [])


def test_a_label_added_by_hand_is_named_and_an_up_leaves_it(live) -> None:
    """The stack does not set the label, so an up (server-side apply of what the stack sets) leaves it: drift
    still names it after the up; removing it by hand, as the finding says, makes drift clean."""
    name = live.stable_service()["metadata"]["name"]
    live.kubectl("-n", NAMESPACE, "label", "service", name, "incident=4711")
    code, rows, _ = drift(live)
    assert code == ExitCode.FINDINGS
    row = one(rows, f"Service {NAMESPACE}/{name}", "metadata.labels.incident")
    assert row["stack"] == "(not set)" and row["live"] == "4711 (set by kubectl-label)"
    assert f"kubectl -n {NAMESPACE} label service {name} incident-" in row["fix"]
    ok(live.checkout.lastmile("up", STACK))
    code, rows, _ = drift(live)
    assert code == ExitCode.FINDINGS and [r["field"] for r in rows] == ["metadata.labels.incident"]
    live.kubectl("-n", NAMESPACE, "label", "service", name, "incident-")
    assert drift(live)[:2] == (ExitCode.OK, [])


def test_the_active_slot_scaled_to_0_is_named_and_an_up_does_not_restore_it(live) -> None:
    """spec.replicas is the autoscaler's (the stack never sets it) and a HorizontalPodAutoscaler does not scale
    up from 0: `lastmile up` changes nothing, the slot stays at 0 and drift still names it. The finding's fix
    (kubectl scale to the floor) restores it."""
    active, _ = active_and_idle(live.checkout.stack_file(STACK).read_text())
    name = deployment(live, active)["metadata"]["name"]
    live.kubectl("-n", NAMESPACE, "scale", "deployment", name, "--replicas=0")
    assert until(lambda: not live.slot_ips(active) and not live.slot_ips(active, ready=False))
    code, rows, _ = drift(live)
    assert code == ExitCode.FINDINGS
    row = one(rows, f"Deployment {NAMESPACE}/{name}", "status.availableReplicas")
    assert row["stack"] == "at least 1 (capacity.min_count)" and row["live"].startswith("0 (spec.replicas 0)")
    assert f"kubectl -n {NAMESPACE} scale deployment {name} --replicas=1" in row["fix"]
    ok(live.checkout.lastmile("up", STACK))
    assert deployment(live, active)["spec"]["replicas"] == 0, "an up restored the replicas after all: say so"
    assert drift(live)[0] == ExitCode.FINDINGS
    live.kubectl("-n", NAMESPACE, "scale", "deployment", name, "--replicas=1")
    assert until(lambda: live.slot_ips(active))
    assert until(lambda: drift(live)[:2] == (ExitCode.OK, []), timeout_seconds=30)


def test_kubernetes_verify_passes_on_the_deployed_stack(live) -> None:
    result = live.checkout.lastmile("verify", "--stack", STACK)
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    assert "serves iris-classifier" in result.stdout


def test_the_cluster_down_is_exit_3_with_the_fix(live) -> None:
    ok(live.checkout.lastmile("cluster", "down"))
    result = live.checkout.lastmile("drift", STACK)
    assert result.returncode == ExitCode.UNAVAILABLE, result.stdout + result.stderr
    assert "not running" in result.stderr and "`lastmile cluster up`" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_fresh_cluster_under_old_state_is_drift_and_an_up_deploys_everything_again(live) -> None:
    """The README's "start from nothing": the cluster stopped (the test above), its directory removed, a new
    cluster. The stack's state still lists what the old cluster ran: drift names it as gone, and `lastmile up`
    (which reads what runs first) deploys everything again -- never "unchanged" over an empty cluster."""
    shutil.rmtree(live.checkout.root / ".lastmile" / "cluster")
    ok(live.checkout.lastmile("cluster", "up"))
    code, rows, _ = drift(live)
    assert code == ExitCode.FINDINGS
    gone = [r for r in rows if r["field"] == "(the whole resource)" and r["live"] == "deleted outside Pulumi"]
    assert any(r["resource"].startswith("Deployment ") for r in gone), rows
    up = live.checkout.lastmile("up", STACK)
    ok(up)
    assert "created" in up.stdout, up.stdout[-3000:]
    assert live.kubectl("get", "namespace", NAMESPACE, "-o", "json")["metadata"]["name"] == NAMESPACE
    active, _ = active_and_idle(live.checkout.stack_file(STACK).read_text())
    assert until(lambda: live.slot_ips(active)) and until(lambda: live.stable_endpoint_ips() == live.slot_ips(active))
    assert until(lambda: drift(live)[:2] == (ExitCode.OK, []), timeout_seconds=30)


def test_an_interrupted_up_is_named_by_drift_and_the_next_up_restores(live) -> None:
    """Ctrl-C while a release rolls out (the stack file then put back): drift names what the interruption left
    (the slot's image), and the next `lastmile up` restores the stack file's release."""
    original = live.checkout.stack_file(STACK).read_text()
    _, idle = active_and_idle(original)
    good = deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
    stray = "docker.io/lastmile/drift-probe@" + NEVER_READY_DIGEST
    live.edit_slot(idle, stray)
    up = live.start("up", STACK)
    try:
        assert until(lambda: deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == stray,
                     timeout_seconds=120), "the rollout never started"
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=300)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert up.returncode == ExitCode.INTERRUPTED
    live.checkout.stack_file(STACK).write_text(original)
    code, rows, _ = drift(live)
    name = deployment(live, idle)["metadata"]["name"]
    assert code == ExitCode.FINDINGS
    row = one(rows, f"Deployment {NAMESPACE}/{name}", "spec.template.spec.containers[0].image")
    assert stray in row["live"] and good in row["stack"], row
    ok(live.checkout.lastmile("up", STACK))
    assert deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == good
    assert until(lambda: drift(live)[:2] == (ExitCode.OK, []), timeout_seconds=60)
