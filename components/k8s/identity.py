"""DeployerAccess: the namespaced Role and RoleBinding CI's ``pulumi up`` runs with.

Least privilege by construction:
- namespaced Role only (no ClusterRole), bound to one Group (the identity CI authenticates as: an
  OIDC group or a certificate organisation), never to a ServiceAccount of this namespace (a pod
  created by the deployer could otherwise borrow the deployer's own token);
- release-owned kinds are written: Deployments, Services, ConfigMaps, ServiceAccounts, Ingresses,
  PodDisruptionBudgets, HorizontalPodAutoscalers;
- Secrets get no verb at all: not only no get, list or watch, but no create, update or patch either,
  since the answer to a patch or update carries the whole object, data included (a write is a read).
  The TLS key and the model-store key are platform-owned: creating or rotating them is a platform
  change. (Whoever may create workloads in a namespace can still mount its Secrets into a pod: keep
  only this stack's own Secrets in its namespace.);
- what readiness awaits watch is read-only: Pods, ReplicaSets, Events, Endpoints, EndpointSlices;
- platform-owned kinds are read-only: NetworkPolicies, ResourceQuotas, LimitRanges, Roles,
  RoleBindings. Changing them (and the cluster-scoped Namespace) is a platform change made with an
  administrator's kubeconfig, as is the first ``pulumi up`` of a stack;
- no wildcards, no pods/exec, pods/attach or pods/portforward, no bind, escalate or impersonate.
Model-server ServiceAccounts get no binding at all (see ModelServer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.common import base_labels
from components.problems import Problem, raise_problems

WRITE = ("get", "list", "watch", "create", "update", "patch", "delete")
READ = ("get", "list", "watch")

# (apiGroups, resources, verbs). Reviewed as data; tests/policy/test_kubernetes_rules.py checks it with the policy rules.
DEPLOYER_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (("apps",), ("deployments",), WRITE),
    (("",), ("services", "configmaps", "serviceaccounts"), WRITE),
    (("networking.k8s.io",), ("ingresses",), WRITE),
    (("policy",), ("poddisruptionbudgets",), WRITE),
    (("autoscaling",), ("horizontalpodautoscalers",), WRITE),
    (("apps",), ("replicasets",), READ),
    (("",), ("pods", "events", "endpoints", "resourcequotas", "limitranges"), READ),
    (("discovery.k8s.io",), ("endpointslices",), READ),
    (("networking.k8s.io",), ("networkpolicies",), READ),
    (("rbac.authorization.k8s.io",), ("roles", "rolebindings"), READ),
)
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,252}$")


@dataclass(frozen=True, kw_only=True)
class DeployerAccessArgs:
    namespace: pulumi.Input[str]
    group_name: str
    """RBAC Group CI authenticates as. ``system:`` groups are refused (system:authenticated is everyone)."""

    def __post_init__(self) -> None:
        if not GROUP_NAME.match(self.group_name) or self.group_name.startswith("system:"):
            raise_problems("DeployerAccessArgs", [Problem(
                "group_name", self.group_name, "must be a non-system group name (system:authenticated is everyone)",
                "use the group CI authenticates as, e.g. lastmile-deployers")])


class DeployerAccess(pulumi.ComponentResource):
    """The CI deployer's namespaced Role and its RoleBinding to one Group."""

    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: DeployerAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:DeployerAccess", name, None, opts)
        labels = base_labels("lastmile-deployer", "rbac")
        role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=list(groups), resources=list(resources), verbs=list(verbs))
                   for groups, resources, verbs in DEPLOYER_RULES],
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name),
            subjects=[k8s.rbac.v1.SubjectArgs(api_group="rbac.authorization.k8s.io", kind="Group", name=args.group_name)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_name = role.metadata.name
        self.register_outputs({"role_name": self.role_name})
