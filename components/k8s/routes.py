"""GatewayRoutes: the way in through Gateway API, with the slots' traffic weights as data.

One backend Service per slot (``<name>-<slot>``, selecting exactly that slot's pods, ports ``http`` and
``grpc``), and two routes in the serving namespace, attached by ``parentRefs`` to a Gateway the cluster
provides (its name, namespace and listener ``sectionName``):

- an ``HTTPRoute`` for MLServer's V2 REST protocol (path prefix ``/v2``), and
- a ``GRPCRoute`` for its V2 gRPC protocol (service ``inference.GRPCInferenceService``),

each with one ``backendRef`` per slot carrying that slot's weight (a proportion; 0 keeps the slot listed and
takes no traffic). Both backends live in the routes' own namespace, so no ``ReferenceGrant`` is needed: a
route attaching to a Gateway in another namespace is admitted by that Gateway's listener
(``allowedRoutes.namespaces``), which is the platform team's to set, not by a ReferenceGrant.

TLS: the stack creates no listener. TLS terminates at the Gateway's listener named by ``section_name``
with the certificate its owner keeps there; the routes name that listener so they never attach to a
plain-HTTP listener of the same Gateway.

Await: with ``wait_for_accepted`` each route is awaited (``pulumi.com/waitFor``) until its parent reports it
``Accepted``, bounded by ``timeout_seconds``; without it both routes carry ``pulumi.com/skipAwait`` (a
cluster with no Gateway implementation never sets a status; pulumi-kubernetes 4.25.0 does not await custom
resources unless ``PULUMI_K8S_AWAIT_ALL`` is set, and the annotation keeps that switch from hanging an up).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.common import base_labels, check_dns_label
from components.k8s.model_server import ModelServer
from components.k8s.router import slot_service
from components.problems import Problem, check_range, raise_problems

GATEWAY_API = "gateway.networking.k8s.io/v1"
MAX_WEIGHT = 1_000_000  # Gateway API: rules[].backendRefs[].weight, 0..1000000
GRPC_SERVICE = "inference.GRPCInferenceService"  # the KServe V2 gRPC service MLServer implements
ACCEPTED = 'jsonpath={.status.parents[0].conditions[?(@.type=="Accepted")].status}=True'


@dataclass(frozen=True, kw_only=True)
class ParentGateway:
    """The Gateway the routes attach to, and the listener (sectionName) where TLS terminates."""

    name: str
    namespace: str
    section_name: str


@dataclass(frozen=True, kw_only=True)
class WeightedServer:
    server: ModelServer
    weight: int
    """This slot's share of the routes' traffic (a proportion of the sum of all weights)."""


@dataclass(frozen=True, kw_only=True)
class GatewayRoutesArgs:
    namespace: pulumi.Input[str]
    gateway: ParentGateway
    hostname: str
    backends: tuple[WeightedServer, ...]
    """One per slot that has a release, in slot order."""
    wait_for_accepted: bool = True
    """Wait until the Gateway's controller accepts each route. False where no Gateway implementation
    runs (the routes are still created and validated by the API server)."""
    timeout_seconds: int = 600
    """How long a route's await may take. Omitted: 600 s."""

    def __post_init__(self) -> None:
        problems = [*check_dns_label("gateway.namespace", self.gateway.namespace),
                    *check_dns_label("gateway.section_name", self.gateway.section_name),
                    *check_range("timeout_seconds", self.timeout_seconds, 1)]
        if not self.gateway.name:
            problems.append(Problem("gateway.name", self.gateway.name, "the parent Gateway is required",
                                    "name the cluster's Gateway"))
        if not self.backends:
            problems.append(Problem("backends", (), "a route needs at least one backend", "pass the slots' servers"))
        slots = [b.server.slot for b in self.backends]
        if len(set(slots)) != len(slots):
            problems.append(Problem("backends", [s.value for s in slots], "one backend per slot",
                                    "pass each slot's server once"))
        for backend in self.backends:
            problems += check_range(f"backends.{backend.server.slot.value}.weight", backend.weight, 0, MAX_WEIGHT)
        if self.backends and sum(b.weight for b in self.backends) <= 0:
            problems.append(Problem("backends", [b.weight for b in self.backends], "the weights sum to 0: every "
                                    "request would go nowhere", "give the active slot a positive weight"))
        raise_problems("GatewayRoutesArgs", problems)


class GatewayRoutes(pulumi.ComponentResource):
    """Per-slot backend Services and an HTTPRoute + GRPCRoute carrying the slots' weights."""

    http_route_name: pulumi.Output[str]
    grpc_route_name: pulumi.Output[str]
    url: str

    def __init__(self, name: str, args: GatewayRoutesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:GatewayRoutes", name, None, opts)
        services = {b.server.slot: slot_service(self, f"{name}-{b.server.slot.value}", args.namespace, b.server,
                                                f"backend-{b.server.slot.value}", grpc=True) for b in args.backends}
        parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": args.gateway.name,
                  "namespace": args.gateway.namespace, "sectionName": args.gateway.section_name}

        def backend_refs(port_of: str) -> list[dict[str, object]]:
            return [{"kind": "Service", "name": services[b.server.slot].metadata.name,
                     "port": getattr(b.server, port_of), "weight": b.weight} for b in args.backends]

        await_annotations = ({"pulumi.com/waitFor": ACCEPTED, "pulumi.com/timeoutSeconds": str(args.timeout_seconds)}
                             if args.wait_for_accepted else {"pulumi.com/skipAwait": "true"})
        labels = base_labels("lastmile-routes", "routes")
        depends = list(services.values())
        http = k8s.apiextensions.CustomResource(
            f"{name}-http",
            api_version=GATEWAY_API, kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels, annotations=await_annotations),
            spec={"parentRefs": [parent], "hostnames": [args.hostname],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
                             "backendRefs": backend_refs("port")}]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        grpc = k8s.apiextensions.CustomResource(
            f"{name}-grpc",
            api_version=GATEWAY_API, kind="GRPCRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels, annotations=await_annotations),
            spec={"parentRefs": [parent], "hostnames": [args.hostname],
                  "rules": [{"matches": [{"method": {"type": "Exact", "service": GRPC_SERVICE}}],
                             "backendRefs": backend_refs("grpc_port")}]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.http_route_name = http.metadata.apply(_name)
        self.grpc_route_name = grpc.metadata.apply(_name)
        self.url = f"https://{args.hostname}/v2"
        self.register_outputs({"http_route_name": self.http_route_name, "grpc_route_name": self.grpc_route_name})


def _name(metadata: object) -> str:
    """A custom resource's metadata comes back untyped (a dict) from some engines and typed from others."""
    return metadata["name"] if isinstance(metadata, dict) else metadata.name  # type: ignore[attr-defined]
