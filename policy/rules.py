"""lastmile policy rules: REFERENCE.md §3 as small pure checks over a resource graph.

Each rule is a plain function of one resource and the whole graph, in the shape of the offline
synthesis (``lastmile.synthesis.Graph.to_json()``)::

    resource = {"urn", "type", "name", "parent", "options": {"protect", "retain_on_delete", ...,
                "depends_on": [urn, ...]}, "inputs": {camelCase Pulumi properties}}
    graph    = {"stack": "aws-prod", "resources": [resource, ...], "outputs": {...},
                "environment": "prod"  # optional; else outputs["environment"], else the stack name}

``RULES`` lists them as data (id, REFERENCE anchor, resource types, environments). They run
unchanged in three places: the tests (directly), the plan diff (``lastmile.plandiff``) and the
CrossGuard pack (``policy/__main__.py``), which converts ``StackValidationArgs.resources`` to the
same shape. This module imports nothing but the standard library, so the pack's virtualenv needs
only ``pulumi-policy``.

How resources are linked: a resource that takes another's output as input (a public-access block
taking ``bucket.id``, an endpoint taking ``alarm.name``) depends on it; the engine and the recording
mocks both report that dependency, so ``depends_on`` links children to what they configure even
while names are unknown (first preview) or auto-generated.

An unknown environment (no ``environment`` key, output, or ``<topology>-<env>`` stack name) is
judged as prod: the strictest reading is the safe default.
"""

from __future__ import annotations

import json
import re
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
    """A REFERENCE §3 requirement checked on every resource of ``types``."""

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


def by_urn(graph: GraphDict, urn: str) -> Resource | None:
    return next((r for r in graph.get("resources", []) if r.get("urn") == urn), None)


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
    """(label, container) for app containers and, with ``init``, init containers."""
    found = [(f"container {c.get('name', i)}", c) for i, c in enumerate(as_list(spec.get("containers")))]
    if init:
        found += [(f"init container {c.get('name', i)}", c) for i, c in enumerate(as_list(spec.get("initContainers")))]
    return [(label, c) for label, c in found if isinstance(c, dict)]


def same_namespace(a: Resource, b: Resource, graph: GraphDict) -> bool:
    """Both in one namespace: equal metadata.namespace, or both depending on the same Namespace."""
    ns_a, ns_b = k8s_namespace(a), k8s_namespace(b)
    if known(ns_a) and ns_a == ns_b:
        return True
    deps_a = {n["urn"] for n in dependencies(a, graph, K8S_NAMESPACE)}
    deps_b = {n["urn"] for n in dependencies(b, graph, K8S_NAMESPACE)}
    return bool(deps_a & deps_b)


# ---------------------------------------------------------------------------------------------
# Encryption: KMS keys, buckets, log groups


def kms_rotation(r: Resource, g: GraphDict) -> Iterable[str]:
    spec = inputs(r).get("customerMasterKeySpec") or inputs(r).get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and inputs(r).get("enableKeyRotation") is not True:
        yield "automatic key rotation is off; set enable_key_rotation=True"


def kms_deletion_window(r: Resource, g: GraphDict) -> Iterable[str]:
    days = inputs(r).get("deletionWindowInDays")
    if days is not None and days < 30:
        yield f"deletion window is {days} days; keep the 30-day window (omit deletion_window_in_days or set 30)"


def kms_key_policy(r: Resource, g: GraphDict) -> Iterable[str]:
    raw = inputs(r).get("policy")
    document = policy_document(raw)
    if document is None:
        if raw in (UNKNOWN, SECRET_MASK):
            return
        yield "no explicit key policy: AWS's default grants the whole account; pass a key policy naming its principals"
        return
    for i, statement in enumerate(statements(document)):
        if statement.get("Effect") == "Allow" and any(v == "*" for _, v in principals(statement)):
            yield f"key policy statement {statement.get('Sid', i)!s} allows the '*' principal; name the principals"


def _bucket_related(bucket: Resource, graph: GraphDict, types: tuple[str, ...]) -> list[Resource]:
    """Bucket-configuring resources: those depending on the bucket or naming it literally."""
    name = inputs(bucket).get("bucket")
    return [r for r in resources(graph, types)
            if bucket["urn"] in depends_on(r) or (known(name) and inputs(r).get("bucket") == name)]


def _sse_rules(bucket: Resource, graph: GraphDict) -> list[dict[str, Any]]:
    rules = []
    inline = inputs(bucket).get("serverSideEncryptionConfiguration")
    for config in [inline, *as_list(inputs(bucket).get("serverSideEncryptionConfigurations"))]:
        if isinstance(config, dict):
            rules += as_list(config.get("rule")) + as_list(config.get("rules"))
    for config in _bucket_related(bucket, graph, BUCKET_SSE):
        rules += as_list(inputs(config).get("rules"))
    return [rule for rule in rules if isinstance(rule, dict)]


def s3_sse_kms(r: Resource, g: GraphDict) -> Iterable[str]:
    rules = _sse_rules(r, g)
    if not rules:
        yield "no server-side encryption configuration; encrypt with SSE-KMS (a customer-managed key) and a bucket key"
        return
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") not in ("aws:kms", "aws:kms:dsse"):
            yield f"default encryption is {default.get('sseAlgorithm')!r}, not SSE-KMS; set sse_algorithm='aws:kms'"
        elif not default.get("kmsMasterKeyId"):
            yield "SSE-KMS without kms_master_key_id uses the AWS-managed key; pass the stack's customer-managed key"
        if rule.get("bucketKeyEnabled") is not True:
            yield "bucket key is off; set bucket_key_enabled=True (fewer KMS calls, same protection)"


def s3_public_access_block(r: Resource, g: GraphDict) -> Iterable[str]:
    blocks = _bucket_related(r, g, BUCKET_PAB)
    if not blocks:
        yield "no public-access block; add one with all four settings true"
        return
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for block in blocks:
        off = [f for f in flags if inputs(block).get(f) is not True]
        if off:
            yield f"public-access block {block['name']} leaves {', '.join(off)} off; set all four to true"


def s3_ownership_enforced(r: Resource, g: GraphDict) -> Iterable[str]:
    controls = _bucket_related(r, g, BUCKET_OWNERSHIP)
    owners = [get(inputs(c), "rule.objectOwnership") for c in controls]
    if "BucketOwnerEnforced" not in owners:
        yield "ACLs are not disabled; add ownership controls with object_ownership='BucketOwnerEnforced'"


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    for body in (statement.get("Condition") or {}).values():
        if isinstance(body, dict):
            for key, value in body.items():
                if key.lower() == "aws:securetransport" and [str(v).lower() for v in as_list(value)] == ["false"]:
                    return True
    return False


def s3_tls_only(r: Resource, g: GraphDict) -> Iterable[str]:
    documents = [policy_document(inputs(p).get("policy")) for p in _bucket_related(r, g, BUCKET_POLICY)]
    documents.append(policy_document(inputs(r).get("policy")))
    if not any(_denies_insecure_transport(s) for d in documents for s in statements(d)):
        yield "no bucket policy denies requests without TLS; add a Deny on aws:SecureTransport = false"


def s3_versioning(r: Resource, g: GraphDict) -> Iterable[str]:
    statuses = [get(inputs(v), "versioningConfiguration.status") for v in _bucket_related(r, g, BUCKET_VERSIONING)]
    inline = [get(inputs(r), "versioning.enabled")] + [v.get("enabled") for v in as_list(inputs(r).get("versionings"))
                                                         if isinstance(v, dict)]
    if "Enabled" not in statuses and True not in inline:
        yield "versioning is off; add bucket versioning with status 'Enabled'"


def log_group_kms(r: Resource, g: GraphDict) -> Iterable[str]:
    if not inputs(r).get("kmsKeyId"):
        yield "log group is not KMS-encrypted; pass kms_key_id (the stack's key, whose policy admits CloudWatch Logs)"


def log_group_retention(r: Resource, g: GraphDict) -> Iterable[str]:
    days = inputs(r).get("retentionInDays")
    if not days:
        yield "no retention: logs are kept (and paid for) forever; set retention_in_days"
    elif environment_of(g) == "prod" and days < 365:
        yield f"prod keeps logs at least 365 days (CKV_AWS_338); retention is {days}"


# ---------------------------------------------------------------------------------------------
# SageMaker


def sagemaker_network_isolation(r: Resource, g: GraphDict) -> Iterable[str]:
    if inputs(r).get("enableNetworkIsolation") is not True:
        yield "network isolation is off: the container can reach the network; set enable_network_isolation=True"


def sagemaker_model_vpc(r: Resource, g: GraphDict) -> Iterable[str]:
    vpc = inputs(r).get("vpcConfig") or {}
    subnets, groups = as_list(vpc.get("subnets")), as_list(vpc.get("securityGroupIds"))
    if not vpc:
        yield f"{environment_of(g)} models run in private subnets; set vpc_config (>= 2 subnets in distinct AZs)"
        return
    if len(subnets) < 2:
        yield f"vpc_config has {len(subnets)} subnet(s); use >= 2 private subnets in distinct availability zones"
    if not groups:
        yield "vpc_config has no security group"
    declared = dependencies(r, g, SUBNET)
    zones = {inputs(s).get("availabilityZone") for s in declared if known(inputs(s).get("availabilityZone"))}
    if len(declared) >= 2 and len(zones) < 2:
        yield f"the model's subnets share one availability zone ({', '.join(sorted(zones))}); spread them over two"


def sagemaker_config_kms(r: Resource, g: GraphDict) -> Iterable[str]:
    if not inputs(r).get("kmsKeyArn"):
        yield "kms_key_arn is not set: instance storage is encrypted with an AWS-managed key; pass the stack's key"


def sagemaker_prod_instances(r: Resource, g: GraphDict) -> Iterable[str]:
    for variant in as_list(inputs(r).get("productionVariants")):
        name = variant.get("variantName", "?")
        if variant.get("serverlessConfig"):
            yield f"variant {name} is serverless; prod variants run >= 2 instances"
        elif (variant.get("initialInstanceCount") or 0) < 2:
            yield f"variant {name} starts {variant.get('initialInstanceCount')} instance(s); prod needs >= 2"


def sagemaker_progressive_rollout(r: Resource, g: GraphDict) -> Iterable[str]:
    config = inputs(r).get("deploymentConfig") or {}
    routing = get(config, "blueGreenUpdatePolicy.trafficRoutingConfiguration.type")
    if routing not in ("CANARY", "LINEAR"):
        yield (f"traffic routing is {routing or 'not set'}; prod shifts traffic by CANARY or LINEAR blue/green "
               "(set rollout.strategy canary or linear)")
    if not as_list(get(config, "autoRollbackConfiguration.alarms")):
        yield "no auto-rollback alarms; SageMaker would keep a failing release; pass the 5XX and latency alarms"


def _auto_named(logical: str, physical: str) -> bool:
    """Pulumi auto-naming (and the offline synthesis's stand-in): ``<logical name>-<7 hex>``."""
    return re.fullmatch(re.escape(logical) + r"-[0-9a-f]{7}", physical) is not None


def sagemaker_rollback_alarms_declared(r: Resource, g: GraphDict) -> Iterable[str]:
    """Every auto-rollback alarm is a MetricAlarm of this stack: by its name, or (name not yet known) by dependency."""
    wanted = [a.get("alarmName") for a in as_list(get(inputs(r), "deploymentConfig.autoRollbackConfiguration.alarms"))
              if isinstance(a, dict)]
    alarms = resources(g, METRIC_ALARM)

    def declared(name: str) -> bool:
        return any(inputs(a).get("name") == name or _auto_named(a["name"], name) for a in alarms)

    missing = [str(name) for name in wanted if known(name) and not declared(name)]
    pending = sum(1 for name in wanted if not known(name))
    if missing:
        yield (f"auto-rollback alarm(s) {', '.join(missing)} are not declared in this stack; "
               "pass alarm.name of a MetricAlarm defined with the endpoint")
    if pending > len(dependencies(r, g, METRIC_ALARM)):
        yield f"{pending} auto-rollback alarm name(s) are unknown and not produced by a MetricAlarm of this stack"


def autoscaling_min_capacity(r: Resource, g: GraphDict) -> Iterable[str]:
    if inputs(r).get("serviceNamespace") == "sagemaker" and (inputs(r).get("minCapacity") or 0) < 2:
        yield f"autoscaling floor is {inputs(r).get('minCapacity')}; prod keeps >= 2 instances"


# ---------------------------------------------------------------------------------------------
# IAM

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
FORBIDDEN_MANAGED_POLICIES = ("AmazonSageMakerFullAccess", "AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
# Actions that AWS authorizes only on Resource "*" (no resource-level permissions).
WILDCARD_RESOURCE_ACTIONS = frozenset({
    "ecr:getauthorizationtoken", "cloudwatch:putmetricdata", "sts:getcalleridentity",
    "ec2:createnetworkinterface", "ec2:createnetworkinterfacepermission", "ec2:deletenetworkinterface",
    "ec2:deletenetworkinterfacepermission", "ec2:describenetworkinterfaces", "ec2:describevpcs",
    "ec2:describedhcpoptions", "ec2:describesubnets", "ec2:describesecuritygroups",
    "logs:describeloggroups", "s3:listallmybuckets",
})
SCOPED_ACTIONS = ("kms:decrypt", "iam:passrole")


def iam_trust(r: Resource, g: GraphDict) -> Iterable[str]:
    document = policy_document(inputs(r).get("assumeRolePolicy"))
    if document is None:
        return
    used_by_sagemaker = any(d["type"].startswith("aws:sagemaker/") for d in g.get("resources", [])
                            if r["urn"] in depends_on(d))
    trusted = [(s, principals(s)) for s in statements(document) if s.get("Effect", "Allow") == "Allow"]
    for statement, found in trusted:
        if any(v == "*" for _, v in found):
            yield "the trust policy admits any principal ('*'); name the one service that assumes the role"
    mentions = any(v == SAGEMAKER_SERVICE for _, found in trusted for _, v in found)
    if not (used_by_sagemaker or mentions):
        return
    for statement, found in trusted:
        others = sorted(f"{k}:{v}" for k, v in found if v != SAGEMAKER_SERVICE)
        if others:
            yield f"a SageMaker execution role is trusted only by {SAGEMAKER_SERVICE}; also trusted: {', '.join(others)}"
        elif "aws:sourceaccount" not in condition_keys(statement):
            yield "the trust of sagemaker.amazonaws.com has no aws:SourceAccount condition (confused deputy)"


def _identity_documents(r: Resource) -> list[tuple[str, dict[str, Any] | None]]:
    if r["type"] == IAM_ROLE:
        return [(f"inline policy {p.get('name', i)}", policy_document(p.get("policy")))
                for i, p in enumerate(as_list(inputs(r).get("inlinePolicies"))) if isinstance(p, dict)]
    return [("policy", policy_document(inputs(r).get("policy")))]


def _allow_statements(r: Resource) -> Iterable[tuple[str, dict[str, Any]]]:
    for where, document in _identity_documents(r):
        for i, statement in enumerate(statements(document)):
            if statement.get("Effect") == "Allow":
                yield f"{where} statement {statement.get('Sid', i)}", statement


def iam_no_wildcard_action(r: Resource, g: GraphDict) -> Iterable[str]:
    for where, statement in _allow_statements(r):
        if "NotAction" in statement:
            yield f"{where} allows NotAction (everything but a list); allow named actions"
        wild = sorted(str(a) for a in as_list(statement.get("Action")) if a == "*" or str(a).endswith(":*"))
        if wild:
            yield f"{where} allows wildcard action(s) {', '.join(wild)}; allow named actions"


def iam_no_wildcard_resource(r: Resource, g: GraphDict) -> Iterable[str]:
    for where, statement in _allow_statements(r):
        actions = [str(a).lower() for a in as_list(statement.get("Action"))]
        targets = [str(t) for t in as_list(statement.get("Resource"))]
        if "NotResource" in statement:
            yield f"{where} uses NotResource; name the resources"
        scoped = sorted(a for a in actions if a in SCOPED_ACTIONS)
        if scoped and any("*" in t for t in targets):
            yield f"{where}: {', '.join(scoped)} must name ARNs, not a wildcard"
        elif "*" in targets and not all(a in WILDCARD_RESOURCE_ACTIONS for a in actions):
            named = sorted(a for a in actions if a not in WILDCARD_RESOURCE_ACTIONS)
            yield f"{where} grants {', '.join(named)} on Resource '*'; name the resources"


def iam_no_full_access(r: Resource, g: GraphDict) -> Iterable[str]:
    arns = as_list(inputs(r).get("managedPolicyArns")) + as_list(inputs(r).get("policyArn"))
    for arn in sorted(str(a) for a in arns):
        if arn.rsplit("/", 1)[-1] in FORBIDDEN_MANAGED_POLICIES:
            yield f"attaches {arn.rsplit('/', 1)[-1]}; grant only what the role uses"


# ---------------------------------------------------------------------------------------------
# VPN

TUNNELS = ("tunnel1", "tunnel2")
VPN_ENCRYPTION = {"AES256", "AES256-GCM-16"}
VPN_INTEGRITY = {"SHA2-256", "SHA2-384", "SHA2-512"}
VPN_MIN_DH_GROUP = 14


def vpn_tunnel_crypto(r: Resource, g: GraphDict) -> Iterable[str]:
    props = inputs(r)
    for tunnel in TUNNELS:
        ike = as_list(props.get(f"{tunnel}IkeVersions"))
        if ike != ["ikev2"]:
            yield f"{tunnel} IKE versions are {ike or 'the default (ikev1 and ikev2)'}; allow only ikev2"
        for phase in ("Phase1", "Phase2"):
            encryption = set(as_list(props.get(f"{tunnel}{phase}EncryptionAlgorithms")))
            integrity = set(as_list(props.get(f"{tunnel}{phase}IntegrityAlgorithms")))
            groups = [int(n) for n in as_list(props.get(f"{tunnel}{phase}DhGroupNumbers"))]
            if not encryption or not encryption <= VPN_ENCRYPTION:
                yield (f"{tunnel} {phase.lower()} encryption is {sorted(encryption) or 'the default (includes AES128)'}; "
                       f"allow only {sorted(VPN_ENCRYPTION)}")
            if not integrity or not integrity <= VPN_INTEGRITY:
                yield (f"{tunnel} {phase.lower()} integrity is {sorted(integrity) or 'the default (includes SHA1)'}; "
                       f"allow only {sorted(VPN_INTEGRITY)}")
            if not groups or min(groups) < VPN_MIN_DH_GROUP:
                yield (f"{tunnel} {phase.lower()} DH groups are {sorted(groups) or 'the default (includes 2)'}; "
                       f"allow only groups >= {VPN_MIN_DH_GROUP}")


def vpn_tunnel_logging(r: Resource, g: GraphDict) -> Iterable[str]:
    for tunnel in TUNNELS:
        options = get(inputs(r), f"{tunnel}LogOptions.cloudwatchLogOptions") or {}
        if options.get("logEnabled") is not True or not options.get("logGroupArn"):
            yield f"{tunnel} logging is off; send tunnel logs to a KMS-encrypted log group"


def vpn_tunnel_alarms(r: Resource, g: GraphDict) -> Iterable[str]:
    alarms = [a for a in dependents(r, g, METRIC_ALARM)
              if inputs(a).get("metricName") == "TunnelState" and inputs(a).get("namespace") == "AWS/VPN"]
    if len(alarms) < len(TUNNELS):
        yield f"{len(alarms)} TunnelState alarm(s) watch this connection; add one per tunnel (AWS/VPN TunnelState)"


# ---------------------------------------------------------------------------------------------
# Network

OPEN_CIDRS = ("0.0.0.0/0", "::/0")


def no_open_ingress(r: Resource, g: GraphDict) -> Iterable[str]:
    props, type_ = inputs(r), r["type"]
    cidrs: list[str] = []
    if type_ in SECURITY_GROUPS:
        for rule in as_list(props.get("ingress")):
            cidrs += as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks"))
    elif type_ == SG_RULE and props.get("type") == "ingress":
        cidrs += as_list(props.get("cidrBlocks")) + as_list(props.get("ipv6CidrBlocks"))
    elif type_ == SG_INGRESS_RULE:
        cidrs += [props.get("cidrIpv4"), props.get("cidrIpv6")]
    elif type_ == K8S_NETWORK_POLICY:
        for rule in as_list(get(props, "spec.ingress")):
            cidrs += [get(peer, "ipBlock.cidr") for peer in as_list(rule.get("from")) if isinstance(peer, dict)]
    for cidr in sorted({c for c in cidrs if c in OPEN_CIDRS}):
        yield f"ingress from {cidr}: admit only the CIDRs or security groups that need it"


def vpc_flow_logs(r: Resource, g: GraphDict) -> Iterable[str]:
    if not dependents(r, g, FLOW_LOG):
        yield "no flow log on this VPC; add one to a KMS-encrypted log group"


def vpc_sagemaker_runtime_endpoint(r: Resource, g: GraphDict) -> Iterable[str]:
    if not any(x["type"].startswith("aws:sagemaker/") for x in g.get("resources", [])):
        return
    endpoints = [e for e in dependents(r, g, VPC_ENDPOINT) if str(inputs(e).get("serviceName", "")).endswith(".sagemaker.runtime")]
    if not endpoints:
        yield "no private sagemaker.runtime interface endpoint in this VPC; invocations would leave it"
    for endpoint in endpoints:
        if inputs(endpoint).get("vpcEndpointType") != "Interface" or inputs(endpoint).get("privateDnsEnabled") is not True:
            yield f"{endpoint['name']}: the sagemaker.runtime endpoint must be an Interface endpoint with private DNS"


# ---------------------------------------------------------------------------------------------
# Kubernetes

PSS_LABEL = "pod-security.kubernetes.io/enforce"
RESTRICTED_VOLUME_KEYS = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                          "projected", "secret", "name"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def k8s_namespace_pss(r: Resource, g: GraphDict) -> Iterable[str]:
    labels = get(inputs(r), "metadata.labels", {}) or {}
    if labels.get(PSS_LABEL) != "restricted":
        yield f"namespace is not labelled {PSS_LABEL}: restricted (found {labels.get(PSS_LABEL)!r})"


def k8s_pod_restricted(r: Resource, g: GraphDict) -> Iterable[str]:
    spec = pod_spec(r)
    pod_ctx = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            yield f"{flag} is on; the restricted profile forbids host namespaces"
    for volume in as_list(spec.get("volumes")):
        kinds = sorted(set(volume) - RESTRICTED_VOLUME_KEYS)
        if kinds:
            yield f"volume {volume.get('name')} is {', '.join(kinds)}; restricted allows {', '.join(sorted(RESTRICTED_VOLUME_KEYS - {'name'}))}"
    pod_seccomp = get(pod_ctx, "seccompProfile.type")
    for label, c in containers(spec):
        ctx = c.get("securityContext") or {}
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            yield f"{label}: runAsNonRoot is not true"
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            yield f"{label}: runs as UID 0"
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield f"{label}: allowPrivilegeEscalation is not false"
        if ctx.get("privileged"):
            yield f"{label}: privileged"
        caps = ctx.get("capabilities") or {}
        if "ALL" not in as_list(caps.get("drop")):
            yield f"{label}: capabilities do not drop ALL"
        added = sorted(set(as_list(caps.get("add"))) - {"NET_BIND_SERVICE"})
        if added:
            yield f"{label}: adds capabilities {', '.join(added)}"
        if get(ctx, "seccompProfile.type", pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            yield f"{label}: seccompProfile is not RuntimeDefault"
        if any(p.get("hostPort") for p in as_list(c.get("ports")) if isinstance(p, dict)):
            yield f"{label}: uses a hostPort"


def k8s_readonly_root(r: Resource, g: GraphDict) -> Iterable[str]:
    for label, c in containers(pod_spec(r)):
        if get(c, "securityContext.readOnlyRootFilesystem") is not True:
            yield f"{label}: readOnlyRootFilesystem is not true (mount an emptyDir where it writes)"


def k8s_resources(r: Resource, g: GraphDict) -> Iterable[str]:
    for label, c in containers(pod_spec(r)):
        for kind in ("requests", "limits"):
            missing = [res for res in ("cpu", "memory") if not known(get(c, f"resources.{kind}.{res}"))]
            if missing:
                yield f"{label}: no {kind} for {', '.join(missing)}"


def k8s_probes(r: Resource, g: GraphDict) -> Iterable[str]:
    if r["type"] in ("kubernetes:batch/v1:Job", K8S_CRONJOB):
        return
    for label, c in containers(pod_spec(r), init=False):
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
        if missing:
            yield f"{label}: no {' and no '.join(missing)}"


def k8s_image_digest(r: Resource, g: GraphDict) -> Iterable[str]:
    for label, c in containers(pod_spec(r)):
        image = str(c.get("image", ""))
        if not DIGEST.search(image):
            yield f"{label}: image {image or '(none)'} is not pinned by @sha256 digest"


def k8s_service_account(r: Resource, g: GraphDict) -> Iterable[str]:
    if r["type"] == K8S_SERVICE_ACCOUNT:
        if inputs(r).get("automountServiceAccountToken") is not False:
            yield "automountServiceAccountToken is not false; pods get an API token they do not need"
        return
    spec = pod_spec(r)
    if spec.get("serviceAccountName") in (None, "", "default"):
        yield "the pod runs as the namespace's default ServiceAccount; give it a dedicated one"
    if spec.get("automountServiceAccountToken") is True:
        yield "the pod mounts a ServiceAccount token; set automountServiceAccountToken false"


def _is_default_deny(policy: Resource) -> bool:
    spec = get(inputs(policy), "spec", {}) or {}
    return (not (spec.get("podSelector") or {}).get("matchLabels") and not (spec.get("podSelector") or {}).get("matchExpressions")
            and {"Ingress", "Egress"} <= set(as_list(spec.get("policyTypes")))
            and not spec.get("ingress") and not spec.get("egress"))


def k8s_default_deny(r: Resource, g: GraphDict) -> Iterable[str]:
    name = k8s_name(r)
    policies = [p for p in resources(g, K8S_NETWORK_POLICY)
                if r["urn"] in depends_on(p) or (known(name) and k8s_namespace(p) == name)]
    if not any(_is_default_deny(p) for p in policies):
        yield "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules) in this namespace"


RBAC_ESCALATION_VERBS = {"bind", "escalate", "impersonate"}
RBAC_READ_VERBS = {"get", "list", "watch"}
RBAC_EXEC = {"pods/exec", "pods/attach", "pods/portforward"}


def k8s_rbac_least_privilege(r: Resource, g: GraphDict) -> Iterable[str]:
    for i, rule in enumerate(as_list(inputs(r).get("rules"))):
        verbs = {str(v) for v in as_list(rule.get("verbs"))}
        kinds = {str(x) for x in as_list(rule.get("resources"))}
        groups = {str(x) for x in as_list(rule.get("apiGroups"))}
        where = f"rule {i}"
        for field, values in (("verbs", verbs), ("resources", kinds), ("apiGroups", groups)):
            if "*" in values:
                yield f"{where}: wildcard in {field}; list what is needed"
        if "secrets" in kinds and verbs & (RBAC_READ_VERBS | {"*"}) and (not rule.get("resourceNames") or verbs & {"list", "watch", "*"}):
            yield f"{where}: reads secrets ({', '.join(sorted(verbs & (RBAC_READ_VERBS | {'*'})))}); name them with resourceNames and get only"
        if kinds & RBAC_EXEC:
            yield f"{where}: grants {', '.join(sorted(kinds & RBAC_EXEC))}"
        if verbs & RBAC_ESCALATION_VERBS:
            yield f"{where}: grants {', '.join(sorted(verbs & RBAC_ESCALATION_VERBS))}"


def k8s_rbac_namespaced(r: Resource, g: GraphDict) -> Iterable[str]:
    yield "a ClusterRoleBinding grants cluster-wide; bind a namespaced Role with a RoleBinding"


def _selects(selector_owner: Resource, labels: dict[str, str]) -> bool:
    match = get(inputs(selector_owner), "spec.selector.matchLabels") or {}
    return bool(match) and match.items() <= labels.items()


def k8s_availability(r: Resource, g: GraphDict) -> Iterable[str]:
    props, name = inputs(r), k8s_name(r)
    hpas = [h for h in resources(g, K8S_HPA)
            if r["urn"] in depends_on(h) or (known(name) and get(inputs(h), "spec.scaleTargetRef.name") == name)]
    floor = min((get(inputs(h), "spec.minReplicas", 1) for h in hpas), default=None)
    replicas = floor if floor is not None else get(props, "spec.replicas", 1)
    if replicas < 2:
        yield f"runs {replicas} replica(s); prod needs >= 2 (and an HPA floor of >= 2)"
    labels = pod_labels(r)
    pdbs = [p for p in resources(g, K8S_PDB) if same_namespace(p, r, g) and _selects(p, labels)]
    if not pdbs:
        yield "no PodDisruptionBudget selects these pods"
    spec = pod_spec(r)
    if not spec.get("topologySpreadConstraints") and not get(spec, "affinity.podAntiAffinity"):
        yield "pods are not spread (no topologySpreadConstraints or podAntiAffinity)"


# ---------------------------------------------------------------------------------------------
# State safety and secrets


def prod_stateful_protected(r: Resource, g: GraphDict) -> Iterable[str]:
    options = r.get("options") or {}
    if options.get("protect") is not True:
        yield "stateful resource is not protected in prod; set protect=True (ResourceOptions)"
    if r["type"] in RETAINED_TYPES and options.get("retain_on_delete") is False:
        yield "deleting this resource loses data; set retain_on_delete=True in prod"


SECRET_INPUTS = {VPN_CONNECTION: ("tunnel1PresharedKey", "tunnel2PresharedKey")}


def secrets_masked(r: Resource, g: GraphDict) -> Iterable[str]:
    props = inputs(r)
    if r["type"] == K8S_SECRET:
        for field in ("data", "stringData"):
            value = props.get(field)
            if isinstance(value, dict):
                leaked = sorted(k for k, v in value.items() if v != SECRET_MASK)
                if leaked:
                    yield f"{field} keys {', '.join(leaked)} are plaintext; pass them as secret Outputs (secure: config)"
            elif value not in (None, SECRET_MASK):
                yield f"{field} is plaintext; pass it as a secret Output"
        return
    for field in SECRET_INPUTS.get(r["type"], ()):
        if props.get(field) not in (None, SECRET_MASK):
            yield f"{field} is plaintext; take it from secure: config (Output.secret) or let AWS generate it"


# ---------------------------------------------------------------------------------------------
# The rules, as data: id, REFERENCE §3 anchor, requirement, resource types, check, environments.

RULES: tuple[Rule, ...] = (
    Rule("kms-key-rotation", "Security Hub KMS.4; checkov CKV_AWS_7", "KMS keys rotate", (KMS_KEY,), kms_rotation),
    Rule("kms-key-deletion-window", "Security Hub KMS.3", "30-day deletion window", (KMS_KEY,), kms_deletion_window),
    Rule("kms-key-policy-no-wildcard-principal", "Security Hub KMS.5; checkov CKV_AWS_33",
         "explicit key policy without a * principal", (KMS_KEY,), kms_key_policy),
    Rule("s3-sse-kms-bucket-key", "Security Hub S3.17", "buckets SSE-KMS with bucket key", BUCKETS, s3_sse_kms),
    Rule("s3-public-access-block", "Security Hub S3.1/S3.8", "all four public-access blocks", BUCKETS,
         s3_public_access_block),
    Rule("s3-ownership-enforced", "Security Hub S3.12", "ACLs off (BucketOwnerEnforced)", BUCKETS, s3_ownership_enforced),
    Rule("s3-tls-only", "Security Hub S3.5", "TLS-only bucket policy", BUCKETS, s3_tls_only),
    Rule("s3-versioning", "Security Hub S3.14", "versioning", BUCKETS, s3_versioning),
    Rule("log-group-kms", "checkov CKV_AWS_158", "log groups KMS-encrypted", (LOG_GROUP,), log_group_kms),
    Rule("log-group-retention", "checkov CKV_AWS_338", "log groups with retention (prod >= 365 days)", (LOG_GROUP,),
         log_group_retention),
    Rule("sagemaker-model-network-isolation", "Security Hub SageMaker.5; checkov CKV_AWS_370",
         "models with network isolation", (SM_MODEL,), sagemaker_network_isolation),
    Rule("sagemaker-model-vpc", "Security Hub SageMaker.5; checkov CKV_AWS_370",
         "VPC config in >= 2 private subnets in distinct AZs (staging, prod)", (SM_MODEL,), sagemaker_model_vpc,
         STAGING_PROD),
    Rule("sagemaker-endpoint-config-kms", "checkov CKV_AWS_98", "endpoint config kms_key_arn set", (SM_CONFIG,),
         sagemaker_config_kms),
    Rule("sagemaker-prod-instance-count", "Security Hub SageMaker.4", "every production variant >= 2 instances in prod",
         (SM_CONFIG,), sagemaker_prod_instances, PROD),
    Rule("sagemaker-progressive-rollout", "REFERENCE §3 Availability", "blue/green CANARY or LINEAR with auto-rollback",
         (SM_ENDPOINT,), sagemaker_progressive_rollout, PROD),
    Rule("sagemaker-rollback-alarms-declared", "REFERENCE §3 Availability",
         "auto-rollback alarms declared in the same stack", (SM_ENDPOINT,), sagemaker_rollback_alarms_declared),
    Rule("autoscaling-min-capacity", "REFERENCE §3 Availability; Security Hub SageMaker.4", "autoscaling min >= 2",
         (SCALING_TARGET,), autoscaling_min_capacity, PROD),
    Rule("iam-sagemaker-trust", "Security Hub IAM.21; REFERENCE §3 IAM",
         "execution role trusted only by sagemaker.amazonaws.com with aws:SourceAccount", (IAM_ROLE,), iam_trust),
    Rule("iam-no-wildcard-action", "Security Hub IAM.1/IAM.21", "no * action", (IAM_ROLE, *IAM_IDENTITY_POLICIES),
         iam_no_wildcard_action),
    Rule("iam-no-wildcard-resource", "Security Hub IAM.21; REFERENCE §3 IAM",
         "no * resource where one can be named; kms:Decrypt and iam:PassRole scoped to ARNs",
         (IAM_ROLE, *IAM_IDENTITY_POLICIES), iam_no_wildcard_resource),
    Rule("iam-no-full-access-policy", "Security Hub IAM.1; REFERENCE §1", "never AmazonSageMakerFullAccess",
         (IAM_ROLE, *IAM_ATTACHMENTS), iam_no_full_access),
    Rule("vpn-tunnel-crypto", "REFERENCE §3 VPN", "both tunnels IKEv2 only, AES256 / SHA2 / DH >= 14",
         (VPN_CONNECTION,), vpn_tunnel_crypto),
    Rule("vpn-tunnel-logging", "REFERENCE §3 VPN", "tunnel logging on", (VPN_CONNECTION,), vpn_tunnel_logging),
    Rule("vpn-tunnel-state-alarms", "Security Hub EC2.20", "a TunnelState alarm per tunnel", (VPN_CONNECTION,),
         vpn_tunnel_alarms),
    Rule("no-open-ingress", "REFERENCE §3 Network", "no 0.0.0.0/0 ingress",
         (*SECURITY_GROUPS, SG_RULE, SG_INGRESS_RULE, K8S_NETWORK_POLICY), no_open_ingress),
    Rule("vpc-flow-logs", "Security Hub EC2.6", "VPC flow logs", (VPC,), vpc_flow_logs),
    Rule("vpc-sagemaker-runtime-endpoint", "REFERENCE §3 Network", "private sagemaker.runtime endpoint", (VPC,),
         vpc_sagemaker_runtime_endpoint),
    Rule("k8s-namespace-restricted", "REFERENCE §3 Kubernetes (Pod Security Standards)",
         "namespace labelled pod-security.kubernetes.io/enforce: restricted", (K8S_NAMESPACE,), k8s_namespace_pss),
    Rule("k8s-pod-restricted-profile", "REFERENCE §3 Kubernetes (PSS restricted)",
         "runAsNonRoot, no privilege escalation, drop ALL, seccomp RuntimeDefault, restricted volumes", K8S_WORKLOADS,
         k8s_pod_restricted),
    Rule("k8s-readonly-root-filesystem", "REFERENCE §3 Kubernetes", "readOnlyRootFilesystem", K8S_WORKLOADS,
         k8s_readonly_root),
    Rule("k8s-resources", "REFERENCE §3 Kubernetes", "requests and limits", K8S_WORKLOADS, k8s_resources),
    Rule("k8s-probes", "REFERENCE §3 Kubernetes", "readiness and liveness probes", K8S_WORKLOADS, k8s_probes),
    Rule("k8s-image-digest", "REFERENCE §3 Kubernetes", "images by digest", K8S_WORKLOADS, k8s_image_digest),
    Rule("k8s-service-account", "REFERENCE §3 Kubernetes",
         "dedicated ServiceAccount with automountServiceAccountToken: false", (K8S_SERVICE_ACCOUNT, *K8S_WORKLOADS),
         k8s_service_account),
    Rule("k8s-default-deny", "REFERENCE §3 Kubernetes", "default-deny NetworkPolicy", (K8S_NAMESPACE,), k8s_default_deny),
    Rule("k8s-rbac-least-privilege", "REFERENCE §3 Kubernetes (RBAC)",
         "no wildcards, no secrets read, no pods/exec, no bind/escalate/impersonate", K8S_ROLES,
         k8s_rbac_least_privilege),
    Rule("k8s-rbac-namespaced", "REFERENCE §3 Kubernetes (RBAC)", "bindings namespaced", (K8S_CLUSTER_ROLE_BINDING,),
         k8s_rbac_namespaced),
    Rule("k8s-availability", "REFERENCE §3 Kubernetes", ">= 2 replicas, PodDisruptionBudget, spread (prod)", K8S_SCALED,
         k8s_availability, PROD),
    Rule("prod-stateful-protected", "REFERENCE §3 State safety",
         "protect (and retain on delete) on keys, buckets, log groups and the VPN connection in prod", STATEFUL_TYPES,
         prod_stateful_protected, PROD),
    Rule("secrets-masked", "REFERENCE §3 Secrets", "pre-shared keys and Secret data only as secrets",
         (VPN_CONNECTION, K8S_SECRET), secrets_masked, needs_secret_markers=True),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def evaluate(graph: GraphDict, rules: Iterable[Rule] = RULES, *, secret_markers: bool = True) -> list[Finding]:
    """Every finding of ``rules`` over every resource of ``graph``, sorted (deterministic)."""
    findings: list[Finding] = []
    for rule in rules:
        if rule.needs_secret_markers and not secret_markers:
            continue
        for resource in graph.get("resources", []):
            findings.extend(rule(resource, graph))
    return sorted(set(findings))
