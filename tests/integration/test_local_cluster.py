"""The local cluster of ``lastmile cluster`` (lastmile/cluster.py): a real control plane, kwok as the kubelet.

One cluster per session (fixture ``local_cluster``) serves the tests that work in their own
namespaces: every process healthy; a new namespace gets its ``default`` ServiceAccount (controller
manager); a restricted Deployment becomes Available with Running/Ready pods on the fake nodes
(scheduler, kwok) and its Service's EndpointSlice lists exactly those pod IPs; a Deployment whose
image is pinned to the never-ready digest runs but never becomes Ready, so its Service has no ready
endpoint. The last test drives the CLI on a cluster of its own: up, status, kubeconfig, down (no
process left, status then exits 3), up again on the kept data.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lastmile import cluster as local

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[2]
# A well-formed digest that is not the never-ready one (no image is pulled: kwok runs no containers).
READY_IMAGE = "registry.k8s.io/pause@sha256:" + hashlib.sha256(b"lastmile local cluster test image").hexdigest()
NEVER_READY_IMAGE = f"registry.k8s.io/pause@{local.NEVER_READY_DIGEST}"
WAIT_SECONDS = 90
CLI_TIMEOUT_SECONDS = 400
Kubectl = Callable[..., subprocess.CompletedProcess[str]]  # conftest.Kubectl: kubectl(*args, stdin=None)
LocalCluster = Any  # conftest.LocalCluster: .cluster (lastmile.cluster.Cluster), .kubectl, .start_seconds


def run_kubectl(kubectl: Kubectl, *args: str, stdin: str | None = None) -> str:
    result = kubectl(*args, stdin=stdin)
    assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(run_kubectl(kubectl, "get", "-o", "json", *args))


def eventually(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout:.0f} s (last seen: {last!r})")


def restricted_namespace(kubectl: Kubectl, name: str) -> None:
    run_kubectl(kubectl, "apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))


def app_manifests(namespace: str, name: str, image: str, replicas: int) -> list[dict[str, Any]]:
    """A Deployment that meets the restricted Pod Security Standard, and its Service."""
    labels = {"app.kubernetes.io/name": name}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "initContainers": [{"name": "prepare", "image": READY_IMAGE,
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}}],
                "containers": [{"name": "server", "image": image,
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}},
                                "securityContext": {"allowPrivilegeEscalation": False,
                                                    "readOnlyRootFilesystem": True,
                                                    "capabilities": {"drop": ["ALL"]}}}],
            }},
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
               "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return [deployment, service]


def apply(kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
    result = kubectl("apply", "--server-side", "--field-manager=lastmile-test", "-f", "-",
                     stdin=yaml.safe_dump_all(objects))
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, f"the API server warned (Pod Security?): {result.stderr}"


def pods(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    return get_json(kubectl, "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={name}")["items"]


def condition(obj: dict[str, Any], kind: str) -> str | None:
    return next((c.get("status") for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == kind), None)


def endpoints(kubectl: Kubectl, namespace: str, service: str) -> tuple[set[str], set[str]]:
    """(ready addresses, all addresses) over the Service's EndpointSlices."""
    slices = get_json(kubectl, "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")
    ready, every = set(), set()
    for item in slices["items"]:
        for endpoint in item.get("endpoints") or []:
            every.update(endpoint.get("addresses") or [])
            if (endpoint.get("conditions") or {}).get("ready"):
                ready.update(endpoint.get("addresses") or [])
    return ready, every


# ---- the session cluster ---------------------------------------------------------------------------

def test_every_process_is_ours_and_healthy(local_cluster: LocalCluster) -> None:
    rows = local.status(local_cluster.cluster.workdir)
    assert rows is not None
    assert [row.name for row in rows] == list(local.ALL_COMPONENTS)
    assert all(row.running and row.healthy for row in rows), rows
    assert len({row.pid for row in rows}) == len(rows)
    assert all(row.port > 0 for row in rows)
    nodes = get_json(local_cluster.kubectl, "nodes")["items"]
    assert {n["metadata"]["name"] for n in nodes} == set(local.NODE_NAMES)
    assert all(condition(n, "Ready") == "True" for n in nodes), [n["status"].get("conditions") for n in nodes]
    assert all(n["metadata"]["annotations"].get(local.FAKE_NODE_ANNOTATION) == "fake" for n in nodes)


def test_new_namespace_gets_its_default_service_account(local_cluster: LocalCluster) -> None:
    kubectl = local_cluster.kubectl
    run_kubectl(kubectl, "create", "namespace", "sa-check")
    eventually(lambda: kubectl("get", "serviceaccount", "default", "-n", "sa-check").returncode == 0,
               "the default ServiceAccount in a new namespace")
    # The root CA ConfigMap is another controller-manager controller at work.
    eventually(lambda: kubectl("get", "configmap", "kube-root-ca.crt", "-n", "sa-check").returncode == 0,
               "kube-root-ca.crt in a new namespace")


def test_restricted_deployment_becomes_available_and_its_endpointslice_lists_exactly_its_pods(
        local_cluster: LocalCluster) -> None:
    kubectl, namespace, name = local_cluster.kubectl, "ready-app", "model-server"
    restricted_namespace(kubectl, namespace)
    apply(kubectl, app_manifests(namespace, name, READY_IMAGE, replicas=2))
    run_kubectl(kubectl, "wait", "-n", namespace, "--for=condition=Available", f"--timeout={WAIT_SECONDS}s",
                f"deployment/{name}")
    deployment = get_json(kubectl, "deployment", "-n", namespace, name)
    assert deployment["status"].get("readyReplicas") == 2
    assert deployment["status"].get("availableReplicas") == 2

    running = pods(kubectl, namespace, name)
    assert len(running) == 2
    for pod in running:
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready") == "True"
        assert condition(pod, "ContainersReady") == "True"
        assert condition(pod, "Initialized") == "True"
        assert [s["ready"] for s in pod["status"]["containerStatuses"]] == [True]
        assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
        assert pod["spec"]["nodeName"] in local.NODE_NAMES
    pod_ips = {pod["status"]["podIP"] for pod in running}
    assert len(pod_ips) == 2 and all(pod_ips)

    def exactly_the_pods() -> Any:
        ready, every = endpoints(kubectl, namespace, name)
        return (ready, every) if ready == pod_ips == every else False

    eventually(exactly_the_pods, f"the EndpointSlice of service {name} listing exactly {sorted(pod_ips)}")


def test_never_ready_image_runs_but_never_becomes_ready_nor_an_endpoint(local_cluster: LocalCluster) -> None:
    kubectl, namespace, name = local_cluster.kubectl, "never-ready-app", "model-server"
    restricted_namespace(kubectl, namespace)
    apply(kubectl, app_manifests(namespace, name, NEVER_READY_IMAGE, replicas=2))

    def both_running() -> Any:
        found = pods(kubectl, namespace, name)
        return found if len(found) == 2 and all(p["status"].get("phase") == "Running" for p in found) else False

    running = eventually(both_running, "two never-ready pods Running")
    # Running is where the ready pods become Ready; give kwok time to (wrongly) move these on.
    time.sleep(5)
    running = pods(kubectl, namespace, name)
    for pod in running:
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready") == "False"
        assert condition(pod, "ContainersReady") == "False"
        assert [(s["ready"], "running" in s["state"]) for s in pod["status"]["containerStatuses"]] == [(False, True)]
    pod_ips = {pod["status"]["podIP"] for pod in running}

    deployment = get_json(kubectl, "deployment", "-n", namespace, name)
    assert not deployment["status"].get("availableReplicas")
    assert not deployment["status"].get("readyReplicas")
    assert condition(deployment, "Available") == "False"
    wait = kubectl("wait", "-n", namespace, "--for=condition=Available", "--timeout=3s", f"deployment/{name}")
    assert wait.returncode != 0

    # The EndpointSlice knows the pods, but none as ready: a Service sends them no traffic.
    ready, every = eventually(lambda: (lambda r: r if r[1] == pod_ips else False)(endpoints(kubectl, namespace, name)),
                              "the EndpointSlice listing the never-ready pods (not ready)")
    assert ready == set()


def test_job_pods_complete_and_a_deleted_namespace_goes_away(local_cluster: LocalCluster) -> None:
    """pod-complete (a Job's pod Succeeds) and pod-delete (pods of a deleted namespace are removed)."""
    kubectl, namespace = local_cluster.kubectl, "job-and-delete"
    restricted_namespace(kubectl, namespace)
    deployment, _ = app_manifests(namespace, "batch", READY_IMAGE, replicas=1)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": namespace},
           "spec": {"backoffLimit": 0, "template": {"spec": {**deployment["spec"]["template"]["spec"],
                                                             "restartPolicy": "Never"}}}}
    apply(kubectl, [job, deployment])
    run_kubectl(kubectl, "wait", "-n", namespace, "--for=condition=Complete", f"--timeout={WAIT_SECONDS}s", "job/once")
    job_pods = get_json(kubectl, "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=once")["items"]
    assert [p["status"]["phase"] for p in job_pods] == ["Succeeded"]
    run_kubectl(kubectl, "wait", "-n", namespace, "--for=condition=Available", f"--timeout={WAIT_SECONDS}s",
                "deployment/batch")

    run_kubectl(kubectl, "delete", "namespace", namespace, "--wait=true", f"--timeout={WAIT_SECONDS}s")
    assert kubectl("get", "namespace", namespace).returncode != 0


# ---- the CLI on a cluster of its own ---------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lastmile.cli", "cluster", *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_SECONDS, cwd=REPO_ROOT)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_cli_up_status_kubeconfig_down_leaves_no_process(kube_bin: Path, kubectl_path: str,
                                                         tmp_path: Path) -> None:
    workdir = tmp_path / "cluster"
    options = ("--workdir", str(workdir))
    try:
        started = time.monotonic()
        up = cli("up", *options, "--bin-dir", str(kube_bin))
        up_seconds = time.monotonic() - started
        assert up.returncode == 0, up.stderr
        assert "local cluster up" in up.stdout and "export KUBECONFIG=" in up.stdout

        state = json.loads((workdir / "state.json").read_text())
        pids = {c["name"]: c["pid"] for c in state["components"]}
        assert list(pids) == list(local.ALL_COMPONENTS)
        assert all(alive(pid) for pid in pids.values()), "the processes outlive the CLI"

        status = cli("status", *options)
        assert status.returncode == 0, status.stdout + status.stderr
        assert all(f"{pid}" in status.stdout for pid in pids.values())

        kubeconfig = cli("kubeconfig", *options)
        assert kubeconfig.returncode == 0
        kubeconfig_path = Path(kubeconfig.stdout.strip())
        assert kubeconfig_path == workdir.resolve() / "kubeconfig"
        assert kubeconfig_path.stat().st_mode & 0o077 == 0
        def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run([kubectl_path, f"--kubeconfig={kubeconfig_path}",
                                   f"--cache-dir={tmp_path / 'kubectl-cache'}", *args],
                                  input=stdin, capture_output=True, text=True, timeout=60)

        run_kubectl(kubectl, "create", "namespace", "kept-across-restarts")

        again = cli("up", *options, "--bin-dir", str(kube_bin))
        assert again.returncode == 0 and "local cluster reused" in again.stdout, again.stdout + again.stderr
        assert {c["name"]: c["pid"] for c in json.loads((workdir / "state.json").read_text())["components"]} == pids

        started = time.monotonic()
        down = cli("down", *options)
        down_seconds = time.monotonic() - started
        assert down.returncode == 0, down.stdout + down.stderr
        assert [pid for pid in pids.values() if alive(pid)] == []
        assert not (workdir / "state.json").exists()
        assert (workdir / "etcd").is_dir() and (workdir / "pki" / "ca.crt").is_file(), "down keeps the data"

        after = cli("status", *options)
        assert after.returncode == 3 and "lastmile cluster up" in after.stderr
        assert cli("kubeconfig", *options).returncode == 3

        started = time.monotonic()
        warm = cli("up", *options, "--bin-dir", str(kube_bin))
        warm_seconds = time.monotonic() - started
        assert warm.returncode == 0, warm.stderr
        run_kubectl(kubectl, "get", "namespace", "kept-across-restarts")
        print(f"\ncluster up (cold data dir) {up_seconds:.1f}s, down {down_seconds:.1f}s, "
              f"up (warm data dir) {warm_seconds:.1f}s")
    finally:
        local.stop(workdir)
    leftover = [c for c in (local.status(workdir) or []) if c.running]
    assert leftover == []
    assert not os.path.exists(workdir / "state.json")
