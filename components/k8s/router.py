"""SlotRouter: the blue/green switch. One stable Service follows ``active``; a preview Service the idle slot.

Switching is data: the stable Service's selector is the model-server labels plus the active slot's
``lastmile.dev/slot`` value, so a flip of ``active_slot`` in the stack file changes exactly that
selector (and the preview's). Logical names carry no slot, so a flip never renames or replaces a
Service.

Readiness: the stable Service depends on the active slot's Deployment, and waits for ready endpoints no
longer than that Deployment's rollout timeout (``pulumi.com/timeoutSeconds``). That order alone does not keep
traffic off pods that are not ready: pulumi-kubernetes 4.25.0's await can report a rollout complete too early,
and a Deployment scaled to 0 of 0 counts as complete. The program's switch check (infra/switch_check.py) runs
before any of this is registered and refuses an unsafe switch on every path (plain ``pulumi up`` included). The
previous slot's Deployment is untouched by a flip, so it keeps serving the preview Service and a flip back is
instant; it goes away only when the stack file drops its release. In render mode nothing is awaited (no
cluster): the GitOps controller applying the rendered YAML orders the rollout (e.g. Argo CD sync waves) and
should gate the Service on the Deployment's health.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.common import SLOT_LABEL
from components.k8s.model_server import ModelServer
from components.problems import Problem, raise_problems


@dataclass(frozen=True, kw_only=True)
class SlotRouterArgs:
    namespace: pulumi.Input[str]
    active: ModelServer
    idle: ModelServer | None = None
    """The other slot's server, when it has a release. Omitted: no preview Service."""

    def __post_init__(self) -> None:
        problems = []
        if self.idle is not None and self.idle.slot == self.active.slot:
            problems.append(Problem("idle", self.idle.slot.value, f"the idle server must be on the other slot, both "
                                    f"are {self.active.slot.value}", "pass the other slot's server as idle"))
        if self.idle is not None and _model_labels(self.idle) != _model_labels(self.active):
            problems.append(Problem("idle", _model_labels(self.idle), "active and idle servers must serve the same "
                                    "model (same labels but the slot)", "pass the same model's other-slot server"))
        raise_problems("SlotRouterArgs", problems)


def _model_labels(server: ModelServer) -> dict[str, str]:
    return {k: v for k, v in server.pod_labels.items() if k != SLOT_LABEL}


class SlotRouter(pulumi.ComponentResource):
    """Stable and preview ClusterIP Services over the slots' model servers."""

    stable_service_name: pulumi.Output[str]
    preview_service_name: pulumi.Output[str] | None
    port: int

    def __init__(self, name: str, args: SlotRouterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:SlotRouter", name, None, opts)
        self.port = args.active.port
        stable = slot_service(self, f"{name}-stable", args.namespace, args.active, "stable")
        self.stable_service_name = stable.metadata.name
        self.preview_service_name = None
        if args.idle is not None:
            self.preview_service_name = slot_service(self, f"{name}-preview", args.namespace, args.idle,
                                                     "preview").metadata.name
        self.register_outputs({"stable_service_name": self.stable_service_name})



def slot_service(owner: pulumi.Resource, name: str, namespace: pulumi.Input[str], server: ModelServer, role: str, *,
                 grpc: bool = False) -> k8s.core.v1.Service:
    """A ClusterIP Service over one slot's pods (``http``, and ``grpc`` when asked), a child of ``owner``, created
    after the slot's Deployment; its await (ready endpoints) is bounded like the Deployment's rollout."""
    labels = {k: v for k, v in server.pod_labels.items() if k != SLOT_LABEL} | {"lastmile.dev/route": role}
    ports = [k8s.core.v1.ServicePortArgs(name="http", port=server.port, target_port="http", protocol="TCP")]
    if grpc:
        ports.append(k8s.core.v1.ServicePortArgs(name="grpc", port=server.grpc_port, target_port="grpc", protocol="TCP",
                                                 app_protocol="kubernetes.io/h2c"))
    return k8s.core.v1.Service(
        name,
        # The Service's await (ready endpoints) is bounded like its Deployment's, not by the provider's 10 min.
        metadata=k8s.meta.v1.ObjectMetaArgs(namespace=namespace, labels=labels, annotations={
            "pulumi.com/timeoutSeconds": str(server.rollout_timeout_seconds)}),
        spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=server.pod_labels, ports=ports),
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[server.deployment]),
    )
