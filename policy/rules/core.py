"""The shared vocabulary of the rules: findings, the Rule record, resource type tokens, graph helpers.

Standard library only: the CrossGuard pack's virtualenv needs nothing but pulumi-policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

Resource = dict[str, Any]
GraphDict = dict[str, Any]
Check = Callable[[Resource, GraphDict], Iterable[str]]

SECRET_MASK = "[secret]"
UNKNOWN = "[unknown]"
ENVIRONMENTS = ("dev", "staging", "prod")
PROD = ("prod",)
STAGING_PROD = ("staging", "prod")


@dataclass(frozen=True, order=True)
class Finding:
    """One violation: which rule, on which resource, what is wrong and how to fix it."""

    rule: str
    urn: str
    message: str

    @property
    def resource_name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    def render(self) -> str:
        return f"[{self.rule}] {self.resource_name}: {self.message}"


@dataclass(frozen=True)
class Rule:
    """A requirement of docs/security-checklist.md checked on every resource of ``types``."""

    id: str
    anchor: str
    requirement: str
    types: tuple[str, ...]
    check: Check
    environments: tuple[str, ...] = ENVIRONMENTS
    # The CrossGuard engine hands policies plaintext secret values (no marker): rules that judge
    # whether a value is secret can only run on the offline graph, where secrets are masked.
    needs_secret_markers: bool = False

    def applies(self, resource: Resource, graph: GraphDict) -> bool:
        return resource.get("type") in self.types and environment_of(graph) in self.environments

    def __call__(self, resource: Resource, graph: GraphDict) -> list[Finding]:
        if not self.applies(resource, graph):
            return []
        return [Finding(self.id, resource["urn"], message) for message in self.check(resource, graph)]


# ---------------------------------------------------------------------------------------------
# Resource types


KMS_KEY = "aws:kms/key:Key"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
BUCKET_PAB = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
BUCKET_OWNERSHIP = ("aws:s3/bucketOwnershipControls:BucketOwnershipControls",)
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SM_MODEL = "aws:sagemaker/model:Model"
SM_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SM_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET = "aws:appautoscaling/target:Target"
IAM_ROLE = "aws:iam/role:Role"
IAM_IDENTITY_POLICIES = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy")
IAM_ATTACHMENTS = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SECURITY_GROUPS = ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

K8S_NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
K8S_SECRET = "kubernetes:core/v1:Secret"
K8S_NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
K8S_PDB = "kubernetes:policy/v1:PodDisruptionBudget"
K8S_HPA = ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "kubernetes:autoscaling/v1:HorizontalPodAutoscaler")
K8S_ROLES = ("kubernetes:rbac.authorization.k8s.io/v1:Role", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
K8S_CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
K8S_TEMPLATED = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
    "kubernetes:batch/v1:Job",
)
K8S_CRONJOB = "kubernetes:batch/v1:CronJob"
K8S_POD = "kubernetes:core/v1:Pod"
K8S_WORKLOADS = (*K8S_TEMPLATED, K8S_CRONJOB, K8S_POD)
K8S_SCALED = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")

STATEFUL_TYPES = (KMS_KEY, *BUCKETS, LOG_GROUP, VPN_CONNECTION)
RETAINED_TYPES = (KMS_KEY, *BUCKETS)  # losing these loses data (encrypted objects, artifacts, captures)


# ---------------------------------------------------------------------------------------------
# Graph helpers


def environment_of(graph: GraphDict) -> str:
    """dev | staging | prod: the graph's ``environment``, its output, or its stack name's suffix."""
    env = graph.get("environment") or (graph.get("outputs") or {}).get("environment")
    if env in ENVIRONMENTS:
        return env
    suffix = str(graph.get("stack", "")).rsplit("-", 1)[-1]
    if suffix == "local":
        return "dev"
    return suffix if suffix in ENVIRONMENTS else "prod"


def resources(graph: GraphDict, types: str | tuple[str, ...]) -> list[Resource]:
    wanted = (types,) if isinstance(types, str) else types
    return [r for r in graph.get("resources", []) if r.get("type") in wanted]


def depends_on(resource: Resource) -> list[str]:
    return list((resource.get("options") or {}).get("depends_on") or [])


def dependents(resource: Resource, graph: GraphDict, types: str | tuple[str, ...]) -> list[Resource]:
    """Resources of ``types`` that take an output of ``resource`` as input (or depend on it)."""
    return [r for r in resources(graph, types) if resource["urn"] in depends_on(r)]


def dependencies(resource: Resource, graph: GraphDict, types: str | tuple[str, ...]) -> list[Resource]:
    """Resources of ``types`` whose outputs ``resource`` takes as input (or depends on)."""
    deps = set(depends_on(resource))
    return [r for r in resources(graph, types) if r["urn"] in deps]


def inputs(resource: Resource) -> dict[str, Any]:
    return resource.get("inputs") or {}


def get(value: Any, path: str, default: Any = None) -> Any:
    """``get(d, "spec.template.spec")``: a dotted path through dicts; ``default`` when absent."""
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def known(value: Any) -> bool:
    """False for absent, masked or not-yet-known values."""
    return value not in (None, "", UNKNOWN, SECRET_MASK)


def policy_document(value: Any) -> dict[str, Any] | None:
    """An IAM/KMS/S3 policy given as JSON text or as an object; None when absent or unreadable."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [s for s in as_list((document or {}).get("Statement")) if isinstance(s, dict)]


def principals(statement: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) pairs: ("*", "*") for a bare wildcard, ("Service", "sagemaker.amazonaws.com") ..."""
    principal = statement.get("Principal")
    if principal == "*":
        return [("*", "*")]
    if isinstance(principal, dict):
        return [(kind, str(v)) for kind, values in sorted(principal.items()) for v in as_list(values)]
    return []


def condition_keys(statement: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for body in (statement.get("Condition") or {}).values():
        if isinstance(body, dict):
            keys.update(k.lower() for k in body)
    return keys


def k8s_name(resource: Resource) -> str | None:
    return get(inputs(resource), "metadata.name")


def k8s_namespace(resource: Resource) -> str | None:
    return get(inputs(resource), "metadata.namespace")


def pod_spec(resource: Resource) -> dict[str, Any]:
    props = inputs(resource)
    if resource.get("type") == K8S_POD:
        return get(props, "spec", {}) or {}
    if resource.get("type") == K8S_CRONJOB:
        return get(props, "spec.jobTemplate.spec.template.spec", {}) or {}
    return get(props, "spec.template.spec", {}) or {}


def pod_labels(resource: Resource) -> dict[str, str]:
    props = inputs(resource)
    if resource.get("type") == K8S_POD:
        return get(props, "metadata.labels", {}) or {}
    return get(props, "spec.template.metadata.labels", {}) or {}


def containers(spec: dict[str, Any], *, init: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """(label, container) for app containers and, with ``init``, init and ephemeral (debug) containers."""
    kinds = (("container", "containers"), ("init container", "initContainers"),
             ("ephemeral container", "ephemeralContainers"))
    found = [(f"{label} {c.get('name', i)}", c) for label, key in (kinds if init else kinds[:1])
             for i, c in enumerate(as_list(spec.get(key))) if isinstance(c, dict)]
    return found


def same_namespace(a: Resource, b: Resource, graph: GraphDict) -> bool:
    """Both in one namespace: equal metadata.namespace, or both depending on the same Namespace."""
    ns_a, ns_b = k8s_namespace(a), k8s_namespace(b)
    if known(ns_a) and ns_a == ns_b:
        return True
    deps_a = {n["urn"] for n in dependencies(a, graph, K8S_NAMESPACE)}
    deps_b = {n["urn"] for n in dependencies(b, graph, K8S_NAMESPACE)}
    return bool(deps_a & deps_b)
