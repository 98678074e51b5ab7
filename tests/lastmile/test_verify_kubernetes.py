"""`lastmile verify --stack` for a Kubernetes stack: the pure check over the live stable Service and the active
slot's Deployment (the command around it runs on the local cluster in tests/engine/test_local_cluster_drift.py)."""

from __future__ import annotations

import copy

import pytest

from lastmile.verify import KubernetesExpected, OutputsError, Status, check_kubernetes

IMAGE = "docker.io/seldonio/mlserver@sha256:" + "f" * 64
OUTPUTS = {"active_slot": "green", "namespace": "ns", "stable_service": "stable",
           "slot_deployments": {"blue": "ns/blue-d", "green": "ns/green-d"},
           "slot_releases": {"green": {"model": "iris-classifier", "version": "1.1.0", "sha256": "0" * 64, "image": IMAGE}}}
EXPECTED = KubernetesExpected.from_outputs(OUTPUTS, min_count=1)
STABLE = {"spec": {"selector": {"lastmile.dev/slot": "green"}}}
ACTIVE = {"metadata": {"generation": 2},
          "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app.kubernetes.io/version": "1.1.0"}},
                                               "spec": {"containers": [{"image": IMAGE}], "initContainers": [{"image": IMAGE}]}}},
          "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}


def statuses(stable, active) -> dict[str, Status]:
    return {f.check: f.status for f in check_kubernetes(stable, active, EXPECTED)}


def test_the_cluster_serves_what_the_stack_says():
    assert set(statuses(STABLE, ACTIVE).values()) == {Status.OK}


def test_traffic_on_the_other_slot_another_image_and_too_few_replicas_fail():
    moved = {"spec": {"selector": {"lastmile.dev/slot": "blue"}}}
    assert statuses(moved, ACTIVE)["stable-slot"] == Status.FAIL
    other = copy.deepcopy(ACTIVE)
    other["spec"]["template"]["spec"]["containers"][0]["image"] = IMAGE[:-1] + "0"
    assert statuses(STABLE, other)["active-release"] == Status.FAIL
    scaled = copy.deepcopy(ACTIVE)
    scaled["spec"]["replicas"], scaled["status"] = 0, {"observedGeneration": 2}
    [finding] = [f for f in check_kubernetes(STABLE, scaled, EXPECTED) if f.check == "active-replicas"]
    assert finding.status == Status.FAIL and "the stack's floor is 1" in finding.message


def test_missing_objects_fail_and_missing_outputs_are_refused():
    assert statuses(None, None) == {"stable-slot": Status.FAIL, "active-release": Status.FAIL}
    with pytest.raises(OutputsError, match="slot_releases"):
        KubernetesExpected.from_outputs({k: v for k, v in OUTPUTS.items() if k != "slot_releases"}, 1)
