"""ServingNamespace: a namespace that is locked down before anything runs in it.

Ownership: the namespace carries ``lastmile.dev/owner: <owner>`` (the stack), and Pulumi never deletes it
(``retain_on_delete``; ``retained`` False for rendered manifests): a destroy removes what the stack put into
it, and the namespace goes only when nothing else is left in it (``lastmile destroy`` checks and says so), so
objects other teams put there survive. Pass a provider that creates without server-side apply (infra's
``create_only``) so that an existing namespace is never taken over.

Safe defaults, all always on:
- Pod Security admission labels at ``restricted`` for enforce, warn and audit, each pinned to
  ``pod_security_version`` (a pinned version keeps a cluster upgrade from changing what is admitted);
- a ResourceQuota (CPU, memory, pods; no LoadBalancer or NodePort Services, which would bypass the
  TLS ingress) and a LimitRange whose defaults give any container requests and limits;
- a default-deny NetworkPolicy for every pod (ingress and egress), plus narrow allows for the model
  servers: ingress on the serving port only from the ingress sources; egress only to cluster DNS
  (port 53) and to the model store (its CIDRs and port); ``extra_egress_cidrs`` (HTTPS, 443) is for
  the hybrid topology's cloud endpoints and is empty by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.common import ContainerResources, base_labels, check_cidrs, check_dns_label
from components.problems import Problem, check_range, raise_problems

POD_SECURITY_LEVEL = "restricted"
OWNER_LABEL = "lastmile.dev/owner"


@dataclass(frozen=True, kw_only=True)
class ResourceBudget:
    """The namespace's ResourceQuota (requests and limits alike, since containers set them equal)."""

    cpu_millicores: int
    memory_mib: int
    pods: int

    def __post_init__(self) -> None:
        raise_problems("ResourceBudget", [p for name in ("cpu_millicores", "memory_mib", "pods")
                                          for p in check_range(name, getattr(self, name), 1)])


@dataclass(frozen=True, kw_only=True)
class ServingNamespaceArgs:
    namespace_name: str
    """Physical name of the namespace (from stack config: other systems address it by name)."""
    owner: str
    """Who owns the namespace (the stack's name): the value of its lastmile.dev/owner label."""
    retained: bool = True
    """Pulumi never deletes the namespace (deleting it deletes everything in it, other teams' objects too).
    False where a destroy deletes no object, e.g. rendered manifests: the namespace's manifest goes with it."""
    pod_security_version: str
    """Pod Security admission version pin, e.g. v1.33."""
    quota: ResourceBudget
    container_defaults: ContainerResources
    """LimitRange default requests/limits for a container that sets none, and the per-container maximum."""
    server_pod_labels: dict[str, str]
    """Labels every model-server pod carries; the allow policies select these pods only."""
    server_port: int
    grpc_port: int | None = None
    """A second serving port the ingress sources may reach (MLServer's gRPC). Omitted: server_port only."""
    ingress_source_namespaces: tuple[str, ...] = ()
    """Namespaces (by name) whose pods may reach the model servers. Omitted: none."""
    ingress_source_pod_labels: dict[str, str] = field(default_factory=dict)
    """Labels of the pods in those namespaces that may (the gateway's proxies). Omitted: any pod there."""
    ingress_source_cidrs: tuple[str, ...] = ()
    """Networks that may reach the model servers. Omitted: none."""
    dns_namespace: str = "kube-system"
    """Namespace of the cluster DNS pods (port 53 egress goes there only). Omitted: kube-system."""
    dns_pod_labels: dict[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    """Labels of the cluster DNS pods. Omitted: k8s-app=kube-dns (CoreDNS and kube-dns alike)."""
    model_store_cidrs: tuple[str, ...]
    model_store_port: int
    extra_egress_cidrs: tuple[str, ...] = ()
    """More HTTPS (443) destinations for the model servers (hybrid: cloud endpoints). Omitted: none."""

    def __post_init__(self) -> None:
        raise_problems("ServingNamespaceArgs", [
            *check_dns_label("namespace_name", self.namespace_name),
            *check_dns_label("owner", self.owner),
            *self._policy_problems(),
            *[p for i, name in enumerate(self.ingress_source_namespaces)
              for p in check_dns_label(f"ingress_source_namespaces.{i}", name)],
            *check_dns_label("dns_namespace", self.dns_namespace),
            *check_cidrs("ingress_source_cidrs", self.ingress_source_cidrs),
            *check_cidrs("model_store_cidrs", self.model_store_cidrs),
            *check_cidrs("extra_egress_cidrs", self.extra_egress_cidrs),
            *check_range("server_port", self.server_port, 1, 65535),
            *([] if self.grpc_port is None else check_range("grpc_port", self.grpc_port, 1, 65535)),
            *check_range("model_store_port", self.model_store_port, 1, 65535),
        ])

    def _policy_problems(self) -> list[Problem]:
        problems = []
        if not self.pod_security_version.startswith("v1."):
            problems.append(Problem("pod_security_version", self.pod_security_version, "must be pinned as v1.<minor>",
                                    "use the cluster's version, e.g. v1.33"))
        if not self.server_pod_labels:
            problems.append(Problem("server_pod_labels", {}, "an empty selector would open every pod",
                                    "pass the labels every model-server pod carries"))
        if not (self.ingress_source_namespaces or self.ingress_source_cidrs):
            problems.append(Problem("ingress_source_namespaces", (), "with no ingress_source_cidrs either, nothing "
                                    "could reach the servers",
                                    "give ingress_source_namespaces or ingress_source_cidrs"))
        if not self.model_store_cidrs:
            problems.append(Problem("model_store_cidrs", (), "must name where the model store answers",
                                    "list the store's network, e.g. 10.20.0.0/24"))
        return problems


class ServingNamespace(pulumi.ComponentResource):
    """The serving namespace with Pod Security admission, quota, limits and default-deny networking."""

    namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: ServingNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:ServingNamespace", name, None, opts)
        labels = base_labels(args.namespace_name, "serving-namespace")
        psa = {f"pod-security.kubernetes.io/{mode}": POD_SECURITY_LEVEL for mode in ("enforce", "warn", "audit")}
        psa |= {f"pod-security.kubernetes.io/{mode}-version": args.pod_security_version
                for mode in ("enforce", "warn", "audit")}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace_name,
                                                labels=labels | psa | {OWNER_LABEL: args.owner}),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retained),
        )
        ns = namespace.metadata.name

        def meta(role: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(namespace=ns, labels=labels | {"lastmile.dev/policy": role})

        quantity = {"cpu": f"{args.quota.cpu_millicores}m", "memory": f"{args.quota.memory_mib}Mi"}
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard={
                "requests.cpu": quantity["cpu"], "limits.cpu": quantity["cpu"],
                "requests.memory": quantity["memory"], "limits.memory": quantity["memory"],
                "pods": str(args.quota.pods),
                "services.loadbalancers": "0", "services.nodeports": "0",
            }),
            opts=pulumi.ResourceOptions(parent=self),
        )
        defaults = args.container_defaults.quantities()
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta("limits"),
            spec=k8s.core.v1.LimitRangeSpecArgs(limits=[k8s.core.v1.LimitRangeItemArgs(
                type="Container", default=defaults, default_request=defaults, max=defaults,
            )]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=meta("default-deny"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        servers = k8s.meta.v1.LabelSelectorArgs(match_labels=args.server_pod_labels)
        sources = [
            k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels={"kubernetes.io/metadata.name": source}), pod_selector=(
                    k8s.meta.v1.LabelSelectorArgs(match_labels=args.ingress_source_pod_labels)
                    if args.ingress_source_pod_labels else None))
            for source in args.ingress_source_namespaces
        ] + [k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
             for cidr in args.ingress_source_cidrs]
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-ingress",
            metadata=meta("allow-ingress"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=servers,
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=sources, ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP")
                                          for port in (args.server_port, args.grpc_port) if port is not None],
                )],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        egress = [
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[k8s.networking.v1.NetworkPolicyPeerArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": args.dns_namespace}),
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.dns_pod_labels),
                )],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol=p) for p in ("UDP", "TCP")],
            ),
            _cidr_egress(args.model_store_cidrs, args.model_store_port),
        ]
        if args.extra_egress_cidrs:
            egress.append(_cidr_egress(args.extra_egress_cidrs, 443))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-egress",
            metadata=meta("allow-egress"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(pod_selector=servers, policy_types=["Egress"], egress=egress),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace_name = ns
        self.register_outputs({"namespace_name": ns})


def _cidr_egress(cidrs: tuple[str, ...], port: int) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=c)) for c in cidrs],
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP")],
    )
