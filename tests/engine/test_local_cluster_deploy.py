"""onprem-local on the local Kubernetes cluster through the real engine, as a user runs it.

One cluster (etcd, control plane, kwok nodes) in a repository copy for the module; `lastmile up` there:
both slots' pods Running/Ready; the stable Service's EndpointSlices list only the active slot's pods;
a flip moves them to the other slot's; a release that never becomes ready fails the up at the
Deployment's await and traffic stays on the old slot (a flip to it, or a release and flip in one up, is
refused); a flip to a slot whose live rollout is incomplete is refused; rolling back is one line; an up
past its deadline (--timeout) is interrupted and leaves the state true to the cluster; an up that
changes only the ready timeout returns; the RBAC and Pod Security checks hold on what the engine
applied; destroy removes the namespace.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest

from lastmile import cluster as cluster_module

pytestmark = [pytest.mark.engine, pytest.mark.kube]

STACK = "onprem-local"
NAMESPACE = "lastmile-local"
SLOT_LABEL = "lastmile.dev/slot"
NEVER_READY_IMAGE = "docker.io/seldonio/mlserver@" + cluster_module.NEVER_READY_DIGEST
# Never ready too, but a pod template no earlier test used. Going back to a template whose ReplicaSet exists
# (scaled to 0) is a path where pulumi-kubernetes 4.25.0's await can report the rollout complete before the
# ReplicaSet is scaled up (docs/design-notes.md): the deadline test needs an up that really waits.
FRESH_NEVER_READY_IMAGE = "docker.io/lastmile/deadline-probe@" + cluster_module.NEVER_READY_DIGEST


class Live:
    def __init__(self, checkout: Any, cluster: Any) -> None:
        self.checkout = checkout
        self.cluster = cluster

    def kubectl(self, *args: str) -> Any:
        result = subprocess.run(["kubectl", "--kubeconfig", str(self.cluster.kubeconfig_path), *args],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if "-o" in args and "json" in args else result.stdout

    def pods(self) -> list[dict[str, Any]]:
        return self.kubectl("-n", NAMESPACE, "get", "pods", "-o", "json")["items"]

    def stable_endpoint_ips(self) -> set[str]:
        """Ready addresses of the stable Service's EndpointSlices."""
        services = self.kubectl("-n", NAMESPACE, "get", "svc", "-o", "json")["items"]
        stable = next(s["metadata"]["name"] for s in services if s["metadata"]["name"].startswith("iris-classifier-router-stable"))
        slices = self.kubectl("-n", NAMESPACE, "get", "endpointslices", "-l", f"kubernetes.io/service-name={stable}",
                              "-o", "json")["items"]
        return {address for s in slices for e in (s.get("endpoints") or [])
                if (e.get("conditions") or {}).get("ready") for address in e["addresses"]}

    def slot_ips(self, slot: str, *, ready: bool = True) -> set[str]:
        return {p["status"]["podIP"] for p in self.pods()
                if p["metadata"]["labels"].get(SLOT_LABEL) == slot and p["status"].get("podIP")
                and _ready(p) == ready}

    def edit_stack(self, pattern: str, replacement: str) -> None:
        path = self.checkout.stack_file(STACK)
        text = path.read_text()
        changed = re.sub(pattern, replacement, text, flags=re.M)
        assert changed != text, pattern
        path.write_text(changed)


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _until(probe: Any, timeout_seconds: float = 60) -> Any:
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


@pytest.fixture(scope="module")
def live(make_checkout):
    checkout = make_checkout("local-cluster")
    with cluster_module.local_cluster(checkout.root / ".lastmile" / "cluster") as cluster:
        yield Live(checkout, cluster)


def _ok(result: Any) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-3000:]}"


def test_up_waits_for_both_slots_and_the_stable_service_selects_only_the_active_one(live) -> None:
    _ok(live.checkout.lastmile("up", STACK))
    deployments = live.kubectl("-n", NAMESPACE, "get", "deploy", "-o", "json")["items"]
    assert len(deployments) == 2
    for deployment in deployments:  # the engine returned only after the Deployments were available
        status = deployment["status"]
        assert status.get("availableReplicas") == deployment["spec"]["replicas"], deployment["metadata"]["name"]
    pods = live.pods()
    assert pods and all(p["status"]["phase"] == "Running" and _ready(p) for p in pods)
    green, blue = live.slot_ips("green"), live.slot_ips("blue")
    assert green and blue
    assert _until(lambda: live.stable_endpoint_ips() == green)
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
    _ok(live.checkout.lastmile("up", STACK))
    assert _until(lambda: live.stable_endpoint_ips() == blue), live.stable_endpoint_ips()


def _image(text: str, slot: str, image: str) -> str:
    """The stack file ``text`` with ``slot``'s image replaced."""
    start = text.index(f"      {slot}:")
    return text[:start] + re.sub(r"(        image: )\S+", rf"\g<1>{image}", text[start:], count=1)


def _stable_selector(live: Live) -> str:
    services = live.kubectl("-n", NAMESPACE, "get", "svc", "-o", "json")["items"]
    stable = next(s for s in services if s["metadata"]["name"].startswith("iris-classifier-router-stable"))
    return stable["spec"]["selector"][SLOT_LABEL]


def test_a_release_that_never_becomes_ready_is_never_switched_to_and_rollback_is_one_line(live) -> None:
    """A release whose pods never become Ready, for the idle slot (green). Made active in the same up: refused
    before anything is deployed. Released on its own: its pods run unready and traffic stays on blue. The
    flip to it: refused, traffic stays on blue. Rollback: the stack file as it was, one up."""
    blue = live.slot_ips("blue")
    original = live.checkout.stack_file(STACK).read_text()
    # The stack's own ready timeout (60 s, the floor): the rollback below then changes only the image.
    assert re.search(r"^    ready_timeout_seconds: 60$", original, re.M), "onprem-local's ready timeout changed"
    assert re.search(r"^    active_slot: blue$", original, re.M)
    good_image = _deployment(live, "green")["spec"]["template"]["spec"]["containers"][0]["image"]
    never_ready = _image(original, "green", NEVER_READY_IMAGE)
    flipped = re.sub(r"^(    active_slot: )blue$", r"\g<1>green", never_ready, flags=re.M)

    live.checkout.stack_file(STACK).write_text(flipped)  # release and switch in one up
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "refused, nothing was deployed: this up would both update slot green's Deployment" in refused.stderr
    assert _deployment(live, "green")["spec"]["template"]["spec"]["containers"][0]["image"] == good_image

    live.checkout.stack_file(STACK).write_text(never_ready)  # the release alone, active_slot still blue
    started = time.monotonic()
    released = live.checkout.lastmile("up", STACK)
    # Exit 4: the Deployment's await failed after the 60 s ready timeout. (The provider can also report the
    # rollout complete on stale data, exit 0; the flip below is refused either way.)
    assert released.returncode in (0, 4), released.stdout[-3000:] + released.stderr[-3000:]
    assert "Traceback" not in released.stdout + released.stderr
    assert time.monotonic() - started < 300
    assert live.slot_ips("green", ready=False), "the new release's pods run but are not ready"
    assert live.stable_endpoint_ips() == blue and _stable_selector(live) == "blue"

    live.checkout.stack_file(STACK).write_text(flipped)  # the flip to it
    flip = live.checkout.lastmile("up", STACK)
    # Exit 2: its failed update would be retried in the same up; exit 1: its live rollout is incomplete.
    assert flip.returncode in (1, 2), flip.stdout[-3000:] + flip.stderr[-3000:]
    assert "refused, nothing was deployed" in flip.stderr and "Traceback" not in flip.stdout + flip.stderr
    assert live.stable_endpoint_ips() == blue and _stable_selector(live) == "blue", "traffic stayed on blue"

    live.checkout.stack_file(STACK).write_text(original)  # the rollback: the stack file as it was
    started = time.monotonic()
    _ok(live.checkout.lastmile("up", STACK))
    rollback_seconds = time.monotonic() - started
    assert live.stable_endpoint_ips() == blue and _until(lambda: live.slot_ips("green"))
    print(f"rollback up took {rollback_seconds:.1f} s")


def test_a_flip_to_a_slot_whose_live_rollout_is_incomplete_is_refused(live) -> None:
    """The state says green's Deployment is complete, but the cluster's copy was changed behind Pulumi's back
    to a release that never becomes ready. The flip reads green's Deployment live and refuses (exit 1);
    the next up puts the stack file's release back."""
    blue = live.slot_ips("blue")
    original = live.checkout.stack_file(STACK).read_text()
    name = _deployment(live, "green")["metadata"]["name"]
    patch = [{"op": "replace", "path": f"/spec/template/spec/{kind}/0/image", "value": NEVER_READY_IMAGE}
             for kind in ("containers", "initContainers")]
    live.kubectl("-n", NAMESPACE, "patch", "deployment", name, "--type", "json", "-p", json.dumps(patch))
    assert _until(lambda: live.slot_ips("green", ready=False))

    live.edit_stack(r"^(    active_slot: )blue$", r"\g<1>green")
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "slot green's Deployment has not completed its rollout (read live just now)" in refused.stderr
    assert "Traffic stays on slot blue" in refused.stderr and "Traceback" not in refused.stdout + refused.stderr
    assert live.stable_endpoint_ips() == blue and _stable_selector(live) == "blue"

    live.checkout.stack_file(STACK).write_text(original)
    _ok(live.checkout.lastmile("up", STACK))
    image = _deployment(live, "green")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image != NEVER_READY_IMAGE and _until(lambda: live.slot_ips("green"))


def _deployment(live: Live, slot: str) -> dict[str, Any]:
    deployments = live.kubectl("-n", NAMESPACE, "get", "deploy", "-o", "json")["items"]
    return next(d for d in deployments if d["metadata"]["name"].startswith(f"iris-classifier-{slot}-deployment"))


def test_an_up_past_its_deadline_is_interrupted_and_leaves_the_state_true(live) -> None:
    """A deadline (--timeout) shorter than the Deployment's own ready timeout: the up is interrupted at the
    deadline, says so, and refreshes the state, so the cluster's half-applied change is in the state and
    putting the stack file back is a rollback that really happens (not a no-op)."""
    original = live.checkout.stack_file(STACK).read_text()
    idle = "green" if re.search(r"^    active_slot: blue$", original, re.M) else "blue"
    good_image = _deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"]
    live.checkout.stack_file(STACK).write_text(_image(original, idle, FRESH_NEVER_READY_IMAGE))

    started = time.monotonic()
    stopped = live.checkout.lastmile("up", STACK, "--timeout", "15")
    elapsed = time.monotonic() - started
    assert stopped.returncode == 4, stopped.stdout[-3000:] + stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stdout + stopped.stderr
    assert f"lastmile up {STACK}: stopped at its deadline of 15 s" in stopped.stderr
    assert "the engine cancelled what was in flight" in stopped.stderr
    assert "the stack's state was refreshed" in stopped.stderr, stopped.stderr[-3000:]
    assert elapsed < 50, f"{elapsed:.0f} s: not stopped at the deadline but at the 60 s ready timeout"
    assert _deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == FRESH_NEVER_READY_IMAGE

    live.checkout.stack_file(STACK).write_text(original)
    _ok(live.checkout.lastmile("up", STACK))
    assert _deployment(live, idle)["spec"]["template"]["spec"]["containers"][0]["image"] == good_image
    assert _until(lambda: live.slot_ips(idle)), "the rolled-back slot's pods are ready again"


def test_an_up_that_changes_only_the_ready_timeout_returns(live) -> None:
    """Both Deployments' specs change (progress deadline, await annotation) without a new ReplicaSet. With
    pulumi-kubernetes 4.25.0 such an up hung once (docs/design-notes.md); now the deadline would turn a hang
    into exit 4 within 2 x 75 + 300 s, and the test's own 600 s limit is never reached."""
    live.edit_stack(r"^(    ready_timeout_seconds: )60$", r"\g<1>75")
    started = time.monotonic()
    _ok(live.checkout.lastmile("up", STACK))
    print(f"timeout-only up took {time.monotonic() - started:.1f} s")
    for slot in ("blue", "green"):
        deployment = _deployment(live, slot)
        assert deployment["spec"]["progressDeadlineSeconds"] == 75
        assert deployment["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "75"
    no_op = live.checkout.lastmile("preview", STACK)
    assert no_op.returncode == 0 and "no changes" in no_op.stderr, no_op.stdout[-3000:]


def test_destroy_removes_the_namespace(live) -> None:
    _ok(live.checkout.lastmile("destroy", STACK))
    gone = _until(lambda: subprocess.run(["kubectl", "--kubeconfig", str(live.cluster.kubeconfig_path), "get",
                                          "namespace", NAMESPACE], capture_output=True, text=True,
                                         check=False).returncode != 0, timeout_seconds=120)
    assert gone, "the namespace is still there"


def test_up_without_the_cluster_says_how_to_start_it(make_checkout) -> None:
    checkout = make_checkout("no-cluster")
    result = checkout.lastmile("up", STACK)
    assert result.returncode == 3 and "lastmile cluster up" in result.stderr and "Traceback" not in result.stderr
