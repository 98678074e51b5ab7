"""onprem-local on the local Kubernetes cluster through the real engine, as a user runs it: deploy, flip,
a release that never becomes ready, rollback, destroy.

One cluster (etcd, control plane, kwok nodes) in a repository copy for the module; `lastmile up` there:
both slots' pods Running/Ready; the stable Service's EndpointSlices list only the active slot's pods;
a flip moves them to the other slot's; a release that never becomes ready fails the up at the
Deployment's await and traffic stays on the old slot (a flip to it, or a release and flip in one up, is
refused); rolling back is one line; the RBAC and Pod Security checks hold on what the engine applied;
destroy removes the namespace it created, and never takes over or deletes another team's. The guards of an up (live rollout check, deadline) are in
test_local_cluster_guards.py, on a cluster of their own.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from cluster_live import (NAMESPACE, NEVER_READY_IMAGE, STACK, deployment, ok, pod_ready,
                          stable_selector, until, with_image)

pytestmark = [pytest.mark.engine, pytest.mark.kube]


def test_up_waits_for_both_slots_and_the_stable_service_selects_only_the_active_one(live) -> None:
    ok(live.checkout.lastmile("up", STACK))
    deployments = live.kubectl("-n", NAMESPACE, "get", "deploy", "-o", "json")["items"]
    assert len(deployments) == 2
    for applied in deployments:  # the engine returned only after the Deployments were available
        status = applied["status"]
        assert status.get("availableReplicas") == applied["spec"]["replicas"], applied["metadata"]["name"]
    pods = live.pods()
    assert pods and all(p["status"]["phase"] == "Running" and pod_ready(p) for p in pods)
    green, blue = live.slot_ips("green"), live.slot_ips("blue")
    assert green and blue
    assert until(lambda: live.stable_endpoint_ips() == green)
    assert json.loads(live.checkout.lastmile("outputs", STACK).stdout)["active_slot"] == "green"
    no_op = live.checkout.lastmile("preview", STACK)
    assert no_op.returncode == 0 and "no changes" in no_op.stderr


def test_what_the_engine_applied_is_restricted_and_least_privilege(live) -> None:
    namespace = live.kubectl("get", "namespace", NAMESPACE, "-o", "json")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for pod in live.pods():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["automountServiceAccountToken"] is False
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
            assert context["readOnlyRootFilesystem"] is True and "@sha256:" in container["image"]
    group = "lastmile-deployers"
    for verb, resource, allowed in (("get", "secrets", "no"), ("create", "pods/exec", "no"), ("escalate", "roles", "no"),
                                    ("bind", "roles", "no"), ("list", "deployments.apps", "yes"),
                                    ("patch", "services", "yes"), ("get", "deployments.apps", "yes")):
        answer = subprocess.run(["kubectl", "--kubeconfig", str(live.cluster.kubeconfig_path), "auth", "can-i", verb,
                                 resource, "-n", NAMESPACE, "--as", "ci-runner", "--as-group", group],
                                capture_output=True, text=True, timeout=60, check=False).stdout.strip()
        assert answer == allowed, (verb, resource, answer)
    other = subprocess.run(["kubectl", "--kubeconfig", str(live.cluster.kubeconfig_path), "auth", "can-i", "list",
                            "deployments.apps", "-n", "default", "--as", "ci-runner", "--as-group", group],
                           capture_output=True, text=True, timeout=60, check=False).stdout.strip()
    assert other == "no"


def test_flip_moves_traffic_to_the_other_slot_in_one_up(live) -> None:
    blue = live.slot_ips("blue")
    live.edit_stack(r"^(    active_slot: )green$", r"\g<1>blue")
    ok(live.checkout.lastmile("up", STACK))
    assert until(lambda: live.stable_endpoint_ips() == blue), live.stable_endpoint_ips()


def test_a_release_that_never_becomes_ready_is_never_switched_to_and_rollback_is_one_line(live) -> None:
    """A release whose pods never become Ready, for the idle slot (green). Made active in the same up: refused
    before anything is deployed. Released on its own: its pods run unready and traffic stays on blue. The
    flip to it: refused, traffic stays on blue. Rollback: the stack file as it was, one up."""
    blue = live.slot_ips("blue")
    original = live.checkout.stack_file(STACK).read_text()
    # The stack's own ready timeout (60 s, the floor): the rollback below then changes only the image.
    assert re.search(r"^    ready_timeout_seconds: 60$", original, re.M), "onprem-local's ready timeout changed"
    assert re.search(r"^    active_slot: blue$", original, re.M)
    good_image = deployment(live, "green")["spec"]["template"]["spec"]["containers"][0]["image"]
    never_ready = with_image(original, "green", NEVER_READY_IMAGE)
    flipped = re.sub(r"^(    active_slot: )blue$", r"\g<1>green", never_ready, flags=re.M)

    live.checkout.stack_file(STACK).write_text(flipped)  # release and switch in one up
    plain = live.plain("up")  # the program alone, as `pulumi up` runs it
    assert plain.returncode == 4 and "switch check: refused, nothing was changed: slot green" in plain.stderr
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "switch check: refused" in refused.stderr and "would both change its release" in refused.stderr
    assert deployment(live, "green")["spec"]["template"]["spec"]["containers"][0]["image"] == good_image
    assert live.stable_endpoint_ips() == blue and stable_selector(live) == "blue"

    live.checkout.stack_file(STACK).write_text(never_ready)  # the release alone, active_slot still blue
    started = time.monotonic()
    released = live.checkout.lastmile("up", STACK)
    # Exit 4: the Deployment's await failed after the 60 s ready timeout. (The provider can also report the
    # rollout complete on stale data, exit 0; the flip below is refused either way.)
    assert released.returncode in (0, 4), released.stdout[-3000:] + released.stderr[-3000:]
    assert "Traceback" not in released.stdout + released.stderr
    assert time.monotonic() - started < 300
    assert live.slot_ips("green", ready=False), "the new release's pods run but are not ready"
    assert live.stable_endpoint_ips() == blue and stable_selector(live) == "blue"

    live.checkout.stack_file(STACK).write_text(flipped)  # the flip to it
    plain = live.plain("up")
    assert plain.returncode == 4 and "switch check: " in plain.stderr, plain.stderr[-3000:]
    flip = live.checkout.lastmile("up", STACK)
    # Exit 2: the failed release was never recorded, so this is a release and flip in one; exit 1: the
    # provider reported it complete early and recorded it, and the live read finds it not ready.
    assert flip.returncode in (1, 2), flip.stdout[-3000:] + flip.stderr[-3000:]
    assert "switch check: " in flip.stderr and "Traceback" not in flip.stdout + flip.stderr
    assert live.stable_endpoint_ips() == blue and stable_selector(live) == "blue", "traffic stayed on blue"

    live.checkout.stack_file(STACK).write_text(original)  # the rollback: the stack file as it was
    started = time.monotonic()
    ok(live.checkout.lastmile("up", STACK))
    rollback_seconds = time.monotonic() - started
    assert live.stable_endpoint_ips() == blue and until(lambda: live.slot_ips("green"))
    print(f"rollback up took {rollback_seconds:.1f} s")


def test_destroy_removes_the_namespace(live) -> None:
    destroyed = live.checkout.lastmile("destroy", STACK)
    ok(destroyed)
    assert f"namespace {NAMESPACE} was deleted (this stack created it" in destroyed.stderr
    gone = until(lambda: subprocess.run(["kubectl", "--kubeconfig", str(live.cluster.kubeconfig_path), "get",
                                          "namespace", NAMESPACE], capture_output=True, text=True,
                                         check=False).returncode != 0, timeout_seconds=120)
    assert gone, "the namespace is still there"


def test_another_teams_namespace_is_never_taken_over_or_deleted(live) -> None:
    """A namespace that exists already, with another team's ConfigMap in it, named by the stack file: the
    create fails before anything is deployed into it (plain `pulumi up` and `lastmile up`, which says why,
    exit 2); its labels stay the team's; destroy keeps it, and says so."""
    live.kubectl("create", "namespace", "team-x")
    live.kubectl("-n", "team-x", "create", "configmap", "precious", "--from-literal=keep=me")
    live.edit_stack(rf"^(    namespace: ){NAMESPACE}$", r"\g<1>team-x")
    plain = live.plain("up")
    assert plain.returncode == 4 and 'namespaces "team-x" already exists' in plain.stderr, plain.stderr[-3000:]
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "namespace team-x exists already and this stack did not create it" in refused.stderr
    labels = live.kubectl("get", "namespace", "team-x", "-o", "json")["metadata"].get("labels", {})
    assert not any(key.startswith(("pod-security.", "lastmile.", "app.kubernetes.io")) for key in labels), labels
    assert live.kubectl("-n", "team-x", "get", "networkpolicies,resourcequotas,deployments", "-o", "json")["items"] == []
    destroyed = live.checkout.lastmile("destroy", STACK)
    ok(destroyed)
    assert "namespace team-x was kept: it is not labelled as onprem-local's" in destroyed.stderr
    assert live.kubectl("-n", "team-x", "get", "configmap", "precious", "-o", "json")["data"] == {"keep": "me"}


def test_up_without_the_cluster_says_how_to_start_it(make_checkout) -> None:
    checkout = make_checkout("no-cluster")
    result = checkout.lastmile("up", STACK)
    assert result.returncode == 3 and "lastmile cluster up" in result.stderr and "Traceback" not in result.stderr
