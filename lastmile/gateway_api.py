"""The Gateway API of the local cluster: the standard channel's CRDs, and one Gateway for routes to attach to.

Owns: finding the pinned CRD files (``tools/kube/gateway-api.sh``: the Go module ``sigs.k8s.io/gateway-api``
at the version ``tools/kube/gateway-api/go.mod`` requires, checked against the committed go.sum, cached by
version), applying them to a cluster with server-side apply (the CRDs, and the bundle's
ValidatingAdmissionPolicy ``safe-upgrades`` with its binding), waiting until every CRD is Established, and
the local Gateway (``LOCAL_GATEWAY``). Never touches anything else in the cluster.

The local cluster runs no Gateway implementation: the API server validates every route and weight (the
CRDs' OpenAPI schemas and CEL rules), the Gateway below gives a route a real parent to name, and nothing
ever sets a route's status (so the local stack does not await ``Accepted``). Its HTTPS listener names a
certificate Secret that does not exist: nothing would serve it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CRDS_SCRIPT = REPO_ROOT / "tools" / "kube" / "gateway-api.sh"
FIELD_MANAGER = "lastmile-cluster"
GROUP = "gateway.networking.k8s.io"
LOCAL_GATEWAY = {"namespace": "lastmile-gateway", "name": "lastmile-local", "section_name": "https",
                 "class": "lastmile-local"}
"""The Gateway `lastmile cluster up` creates (Pulumi.onprem-local.yaml's onprem.gateway names it)."""

_PATHS = {
    "CustomResourceDefinition": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "ValidatingAdmissionPolicy": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
    "Namespace": "/api/v1/namespaces",
    "GatewayClass": f"/apis/{GROUP}/v1/gatewayclasses",
}

Request = Callable[..., tuple[int, Any]]


class GatewayApiError(RuntimeError):
    """The CRDs cannot be had (script failed) or a cluster refused them."""


def crd_directory() -> Path:
    """The directory of the pinned CRD files: ``$LASTMILE_GATEWAY_API_CRDS``, else what the script prints."""
    if os.environ.get("LASTMILE_GATEWAY_API_CRDS"):
        return Path(os.environ["LASTMILE_GATEWAY_API_CRDS"])
    try:
        result = subprocess.run([str(CRDS_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GatewayApiError(f"{CRDS_SCRIPT} could not run: {error}") from error
    if result.returncode != 0:
        raise GatewayApiError(f"{CRDS_SCRIPT} failed (exit {result.returncode}):\n{result.stderr.strip()[-3000:]}")
    return Path(result.stdout.strip())


def bundle(directory: Path) -> list[dict[str, Any]]:
    """Every object of the bundle, admission policy first (it guards the CRDs' own upgrades)."""
    objects = [doc for path in sorted(directory.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return sorted(objects, key=lambda o: o["kind"] == "CustomResourceDefinition")


def local_gateway_objects() -> list[dict[str, Any]]:
    """The namespace, GatewayClass and Gateway a local stack's routes attach to."""
    gw = LOCAL_GATEWAY
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": gw["namespace"]}},
        {"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": gw["class"]},
         "spec": {"controllerName": "lastmile.dev/none",
                  "description": "local cluster: no implementation, routes only validated"}},
        {"apiVersion": f"{GROUP}/v1", "kind": "Gateway",
         "metadata": {"name": gw["name"], "namespace": gw["namespace"]},
         "spec": {"gatewayClassName": gw["class"], "listeners": [{
             "name": gw["section_name"], "protocol": "HTTPS", "port": 443,
             "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "lastmile-local-tls"}]},
             "allowedRoutes": {"namespaces": {"from": "All"}}}]}},
    ]


def _path(obj: dict[str, Any]) -> str:
    if obj["kind"] == "Gateway":
        return f"/apis/{GROUP}/v1/namespaces/{obj['metadata']['namespace']}/gateways/{obj['metadata']['name']}"
    return f"{_PATHS[obj['kind']]}/{obj['metadata']['name']}"


def apply(request: Request, obj: dict[str, Any]) -> None:
    """Server-side apply of one object as ``lastmile-cluster`` (forced: the bundle's fields are ours)."""
    status, body = request("PATCH", f"{_path(obj)}?fieldManager={FIELD_MANAGER}&force=true", obj,
                           content_type="application/apply-patch+yaml")
    if status not in (200, 201):
        raise GatewayApiError(f"applying {obj['kind']} {obj['metadata']['name']} answered {status}: {body}")


def install(request: Request, directory: Path, *, timeout_seconds: float = 60) -> list[str]:
    """Apply the bundle, wait until every CRD is Established, then create the local Gateway. Returns the CRDs."""
    objects = bundle(directory)
    for obj in objects:
        apply(request, obj)
    names = [o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"]
    deadline = time.monotonic() + timeout_seconds
    waiting = list(names)
    while waiting:
        status, body = request("GET", f"{_PATHS['CustomResourceDefinition']}/{waiting[0]}")
        conditions = (body or {}).get("status", {}).get("conditions") or [] if status == 200 else []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise GatewayApiError(f"CRD {waiting[0]} not Established after {timeout_seconds:.0f} s: {body}")
        time.sleep(0.2)
    for obj in local_gateway_objects():
        apply(request, obj)
    return names
