"""The local cluster of ``lastmile cluster`` (lastmile/cluster.py): a real control plane, kwok as the kubelet.

One cluster per session (fixture ``local_cluster``) serves the tests that work in their own
namespaces: every process healthy; a new namespace gets its ``default`` ServiceAccount (controller
manager); a restricted Deployment becomes Available with Running/Ready pods on the fake nodes
(scheduler, kwok) and its Service's EndpointSlice lists exactly those pod IPs; a Deployment whose
image is pinned to the never-ready digest runs but never becomes Ready, so its Service has no ready
endpoint; a Secret written through the API server is in etcd, which answers the API server's
certificate only (not none, not one of the cluster CA, not plain http, not on its peer port), on
127.0.0.1 only, with a 0700 data directory. The last test drives the CLI on a cluster of its own: up,
status, kubeconfig, down (no process left, status then exits 3), up again on the kept data.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
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


# ---- etcd: only the API server gets in ---------------------------------------------------------------

EtcdOutcome = tuple[int, Any] | str  # (status, JSON body), or the connection's error


def etcd_call(url: str, context: ssl.SSLContext | None, body: dict[str, str]) -> EtcdOutcome:
    """POST ``body`` to etcd's JSON gateway at ``url``."""
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:  # URLError, ssl.SSLError, ConnectionResetError: refused before any answer
        return f"{type(error).__name__}: {getattr(error, 'reason', error)}"


def cluster_ca_client_context(pki: Path, scratch: Path) -> ssl.SSLContext:
    """TLS with a client certificate the cluster CA signed, as an approved CertificateSigningRequest would get."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-etcd-client")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (scratch / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (scratch / "client.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    context = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
    context.load_cert_chain(scratch / "client.crt", scratch / "client.key")
    return context


def test_a_secret_written_through_the_api_server_is_in_etcd_and_only_the_api_servers_certificate_reads_it(
        local_cluster: LocalCluster, tmp_path: Path) -> None:
    kubectl, cluster = local_cluster.kubectl, local_cluster.cluster
    pki = cluster.workdir / "pki"
    namespace, value = "etcd-tls", secrets.token_hex(16)
    run_kubectl(kubectl, "create", "namespace", namespace)
    run_kubectl(kubectl, "create", "secret", "generic", "held", "-n", namespace, f"--from-literal=token={value}")
    # The API server stores through etcd's TLS port and reads back what it stored.
    stored = get_json(kubectl, "secret", "held", "-n", namespace)
    assert base64.b64decode(stored["data"]["token"]).decode() == value

    etcd = next(c for c in cluster.components if c.name == local.ETCD)
    range_url = f"https://{local.HOST}:{etcd.port}/v3/kv/range"
    query = {"key": base64.b64encode(f"/registry/secrets/{namespace}/held".encode()).decode()}
    # The control: with the API server's etcd certificate the Secret's bytes are there to read.
    status, answer = etcd_call(range_url, local.etcd_client_context(pki), query)
    assert status == 200 and value.encode() in base64.b64decode(answer["kvs"][0]["value"]), answer

    attempts = {
        "no client certificate": etcd_call(range_url, ssl.create_default_context(cafile=str(pki / "etcd-ca.crt")),
                                           query),
        "a client certificate of the cluster CA": etcd_call(range_url, cluster_ca_client_context(pki, tmp_path), query),
        "plain http": etcd_call(f"http://{local.HOST}:{etcd.port}/v3/kv/range", None, query),
        "the peer port without a certificate": etcd_call(
            f"https://{local.HOST}:{etcd.extra_ports['peer']}/v3/kv/range",
            ssl.create_default_context(cafile=str(pki / "etcd-ca.crt")), query),
    }
    answered = {what: outcome for what, outcome in attempts.items()
                if isinstance(outcome, tuple) and (outcome[0] == 200 or value in json.dumps(outcome[1]))}
    assert answered == {}, f"etcd answered clients other than the API server: {answered}"
    print("\netcd refused: " + "; ".join(f"{what}: {str(outcome)[:90]}" for what, outcome in attempts.items()))


def listening_addresses(pid: int) -> set[str]:
    """The host:port of every TCP socket ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, width, 8))
            found.add(f"{ipaddress.ip_address(raw)}:{int(port, 16)}")
    return found


def test_etcd_listens_on_loopback_only_and_its_data_directory_is_private(local_cluster: LocalCluster) -> None:
    cluster = local_cluster.cluster
    etcd = next(c for c in cluster.components if c.name == local.ETCD)
    assert listening_addresses(etcd.pid) == {f"{local.HOST}:{etcd.port}", f"{local.HOST}:{etcd.extra_ports['peer']}"}
    assert (cluster.workdir / "etcd").stat().st_mode & 0o777 == 0o700


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
