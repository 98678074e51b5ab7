"""Every policy rule passes a compliant graph and fails, on purpose, a graph broken in one place.

The compliant graphs (policy_samples.py) are built with the real SDKs under the recording mocks, so
inputs have exactly the shape the offline synthesis and the CrossGuard engine hand the rules.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, Callable

import pytest

import policy_samples as sample_graphs
from policy import rules as r
from policy.rules import RULES, RULES_BY_ID, environment_of, evaluate


@cache
def _compliant(kind: str) -> dict[str, Any]:
    return {"aws": sample_graphs.aws_prod, "hybrid": sample_graphs.hybrid_prod, "onprem": sample_graphs.onprem_prod}[kind]()


def graph(kind: str) -> dict[str, Any]:
    return copy.deepcopy(_compliant(kind))


def named(g: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [x for x in g["resources"] if x["name"] == name]
    return found


def drop(g: dict[str, Any], name: str) -> None:
    g["resources"] = [x for x in g["resources"] if x["name"] != name]


def set_path(resource: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = [part.replace("~1", "/") for part in path.split("/")]  # JSON-pointer escape
    node = resource
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[leaf]
    else:
        node[int(leaf) if isinstance(node, list) else leaf] = value


DELETE = object()
Mutation = Callable[[dict[str, Any]], None]


def change(name: str, path: str, value: Any) -> Mutation:
    return lambda g: set_path(named(g, name), path, value)


def remove(name: str) -> Mutation:
    return lambda g: drop(g, name)


def add(resource: dict[str, Any]) -> Mutation:
    return lambda g: g["resources"].append(copy.deepcopy(resource))


def trust(document: dict[str, Any]) -> str:
    import json

    return json.dumps(document)


SM_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
POD = "spec/template/spec"
CONTAINER = f"{POD}/containers/0"
ONPREM_STACK = "urn:pulumi:onprem-prod::lastmile::pulumi:pulumi:Stack$"


def _policy(statement: dict[str, Any]) -> Mutation:
    import json

    return change("prod-role", "inputs/inlinePolicies/0/policy", json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


# (rule id, compliant graph, mutation, expected words in the finding) — each a failing input on purpose.
FAILING: list[tuple[str, str, Mutation, str]] = [
    ("kms-key-rotation", "aws", change("prod-key", "inputs/enableKeyRotation", False), "rotation is off"),
    ("kms-key-deletion-window", "aws", change("prod-key", "inputs/deletionWindowInDays", 7), "7 days"),
    ("kms-key-policy-no-wildcard-principal", "aws", change("prod-key", "inputs/policy", trust(
        {"Statement": [{"Sid": "Open", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]})),
     "Open allows the '*' principal"),
    ("kms-key-policy-no-wildcard-principal", "aws", change("prod-key", "inputs/policy", DELETE), "no explicit key policy"),
    ("s3-sse-kms-bucket-key", "aws", remove("prod-artifacts-sse"), "no server-side encryption"),
    ("s3-sse-kms-bucket-key", "aws", change("prod-artifacts-sse",
                                             "inputs/rules/0/applyServerSideEncryptionByDefault/sseAlgorithm", "AES256"),
     "'AES256', not SSE-KMS"),
    ("s3-sse-kms-bucket-key", "aws", change("prod-artifacts-sse", "inputs/rules/0/bucketKeyEnabled", False), "bucket key is off"),
    ("s3-public-access-block", "aws", change("prod-artifacts-pab", "inputs/restrictPublicBuckets", False),
     "leaves restrictPublicBuckets off"),
    ("s3-public-access-block", "aws", remove("prod-artifacts-pab"), "no public-access block"),
    ("s3-ownership-enforced", "aws", change("prod-artifacts-ownership", "inputs/rule/objectOwnership", "ObjectWriter"),
     "ACLs are not disabled"),
    ("s3-tls-only", "aws", remove("prod-artifacts-tls"), "without TLS"),
    ("s3-versioning", "aws", change("prod-artifacts-versioning", "inputs/versioningConfiguration/status", "Suspended"),
     "versioning is off"),
    ("log-group-kms", "aws", change("prod-logs", "inputs/kmsKeyId", DELETE), "not KMS-encrypted"),
    ("log-group-retention", "aws", change("prod-logs", "inputs/retentionInDays", DELETE), "kept (and paid for) forever"),
    ("log-group-retention", "aws", change("prod-logs", "inputs/retentionInDays", 30), "at least 365 days"),
    ("sagemaker-model-network-isolation", "aws", change("prod-model", "inputs/enableNetworkIsolation", False),
     "network isolation is off"),
    ("sagemaker-model-vpc", "aws", change("prod-model", "inputs/vpcConfig", DELETE), "set vpc_config"),
    ("sagemaker-model-vpc", "aws", change("prod-model", "inputs/vpcConfig/subnets", ["subnet-0a1b2c3d"]), "1 subnet(s)"),
    ("sagemaker-endpoint-config-kms", "aws", change("prod-config", "inputs/kmsKeyArn", DELETE), "kms_key_arn is not set"),
    ("sagemaker-prod-instance-count", "aws", change("prod-config", "inputs/productionVariants/0/initialInstanceCount", 1),
     "variant primary starts 1 instance(s)"),
    ("sagemaker-progressive-rollout", "aws", change(
        "prod-endpoint", "inputs/deploymentConfig/blueGreenUpdatePolicy/trafficRoutingConfiguration/type", "ALL_AT_ONCE"),
     "traffic routing is ALL_AT_ONCE"),
    ("sagemaker-progressive-rollout", "aws", change("prod-endpoint", "inputs/deploymentConfig/autoRollbackConfiguration",
                                                     DELETE), "no auto-rollback alarms"),
    ("sagemaker-rollback-alarms-declared", "aws", change(
        "prod-endpoint", "inputs/deploymentConfig/autoRollbackConfiguration/alarms/1", {"alarmName": "someone-elses-alarm"}),
     "someone-elses-alarm are not declared"),
    ("autoscaling-min-capacity", "aws", change("prod-scaling", "inputs/minCapacity", 1), "floor is 1"),
    ("iam-sagemaker-trust", "aws", change("prod-role", "inputs/assumeRolePolicy", trust(SM_TRUST)), "aws:SourceAccount"),
    ("iam-sagemaker-trust", "aws", change("prod-role", "inputs/assumeRolePolicy", trust({"Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "sagemaker.amazonaws.com",
                                                                     "AWS": "arn:aws:iam::123456789012:root"},
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]})),
     "also trusted: AWS:arn:aws:iam::123456789012:root"),
    ("iam-sagemaker-trust", "aws", change("prod-role", "inputs/assumeRolePolicy", trust(
        {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "*"}]})), "admits any principal"),
    ("iam-no-wildcard-action", "aws", _policy({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}),
     "wildcard action(s) s3:*"),
    ("iam-no-wildcard-action", "aws", _policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}),
     "NotAction"),
    ("iam-no-wildcard-resource", "aws", _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
     "grants s3:getobject on Resource '*'"),
    ("iam-no-wildcard-resource", "aws", _policy({"Effect": "Allow", "Action": "kms:Decrypt",
                                                 "Resource": "arn:aws:kms:eu-west-1:123456789012:key/*"}),
     "kms:decrypt must name ARNs"),
    ("iam-no-full-access-policy", "aws", change("prod-role", "inputs/managedPolicyArns",
                                                ["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]),
     "attaches AmazonSageMakerFullAccess"),
    ("prod-stateful-protected", "aws", change("prod-key", "options/protect", False), "not protected in prod"),
    ("prod-stateful-protected", "aws", change("prod-artifacts", "options/retain_on_delete", False), "retain_on_delete"),
    ("vpn-tunnel-crypto", "hybrid", change("prod-vpn", "inputs/tunnel2IkeVersions", ["ikev1", "ikev2"]), "allow only ikev2"),
    ("vpn-tunnel-crypto", "hybrid", change("prod-vpn", "inputs/tunnel1Phase1IntegrityAlgorithms", ["SHA1", "SHA2-256"]),
     "tunnel1 phase1 integrity"),
    ("vpn-tunnel-crypto", "hybrid", change("prod-vpn", "inputs/tunnel1Phase2DhGroupNumbers", [2, 14]),
     "tunnel1 phase2 DH groups are [2, 14]"),
    ("vpn-tunnel-crypto", "hybrid", change("prod-vpn", "inputs/tunnel2Phase1EncryptionAlgorithms", DELETE),
     "tunnel2 phase1 encryption is the default"),
    ("vpn-tunnel-logging", "hybrid", change("prod-vpn", "inputs/tunnel2LogOptions", DELETE), "tunnel2 logging is off"),
    ("vpn-tunnel-state-alarms", "hybrid", remove("prod-tunnel2-state"), "1 TunnelState alarm(s)"),
    ("no-open-ingress", "hybrid", change("prod-endpoints-sg", "inputs/ingress/0/cidrBlocks", ["0.0.0.0/0"]),
     "ingress from 0.0.0.0/0"),
    ("no-open-ingress", "onprem", change("allow-ingress", "inputs/spec/ingress/0/from", [{"ipBlock": {"cidr": "::/0"}}]),
     "ingress from ::/0"),
    ("vpc-flow-logs", "hybrid", remove("prod-flow-log"), "no flow log"),
    ("vpc-sagemaker-runtime-endpoint", "hybrid", change("prod-sagemaker-runtime", "inputs/privateDnsEnabled", False),
     "Interface endpoint with private DNS"),
    ("vpc-sagemaker-runtime-endpoint", "hybrid", remove("prod-sagemaker-runtime"), "no private sagemaker.runtime"),
    ("secrets-masked", "hybrid", change("prod-vpn", "inputs/tunnel1PresharedKey", "plaintext-psk"),
     "tunnel1PresharedKey is plaintext"),
    ("secrets-masked", "onprem", change("serving-tls", "inputs/stringData",
                                                  {"tls.crt": "[secret]", "tls.key": "-----BEGIN KEY"}),
     "stringData keys tls.key are plaintext"),
    ("k8s-namespace-restricted", "onprem", change("serving-ns", "inputs/metadata/labels/pod-security.kubernetes.io~1enforce",
                                                  "baseline"), "found 'baseline'"),
    ("k8s-pod-restricted-profile", "onprem", change("server-blue", f"inputs/{POD}/securityContext/runAsNonRoot", False),
     "runAsNonRoot is not true"),
    ("k8s-pod-restricted-profile", "onprem", change("server-blue", f"inputs/{CONTAINER}/securityContext/allowPrivilegeEscalation",
                                                    True), "allowPrivilegeEscalation is not false"),
    ("k8s-pod-restricted-profile", "onprem", change("server-blue", f"inputs/{CONTAINER}/securityContext/capabilities",
                                                    {"add": ["SYS_ADMIN"]}), "do not drop ALL"),
    ("k8s-pod-restricted-profile", "onprem", change("server-blue", f"inputs/{POD}/securityContext/seccompProfile/type",
                                                    "Unconfined"), "seccompProfile is not RuntimeDefault"),
    ("k8s-pod-restricted-profile", "onprem", change("server-blue", f"inputs/{POD}/volumes/0",
                                                    {"name": "host", "hostPath": {"path": "/"}}), "volume host is hostPath"),
    ("k8s-pod-restricted-profile", "onprem", change("server-blue", f"inputs/{POD}/hostNetwork", True), "hostNetwork is on"),
    ("k8s-readonly-root-filesystem", "onprem", change("server-green", f"inputs/{CONTAINER}/securityContext/readOnlyRootFilesystem",
                                                      False), "readOnlyRootFilesystem is not true"),
    ("k8s-resources", "onprem", change("server-blue", f"inputs/{CONTAINER}/resources/limits", DELETE),
     "no limits for cpu, memory"),
    ("k8s-probes", "onprem", change("server-blue", f"inputs/{CONTAINER}/livenessProbe", DELETE), "no livenessProbe"),
    ("k8s-image-digest", "onprem", change("server-blue", f"inputs/{CONTAINER}/image", "mlserver:1.6"),
     "mlserver:1.6 is not pinned"),
    ("k8s-service-account", "onprem", change("model-server", "inputs/automountServiceAccountToken", True),
     "automountServiceAccountToken is not false"),
    ("k8s-service-account", "onprem", change("server-blue", f"inputs/{POD}/serviceAccountName", "default"),
     "default ServiceAccount"),
    ("k8s-default-deny", "onprem", remove("default-deny"), "no default-deny NetworkPolicy"),
    ("k8s-default-deny", "onprem", change("default-deny", "inputs/spec/podSelector", {"matchLabels": {"app": "x"}}),
     "no default-deny NetworkPolicy"),
    ("k8s-rbac-least-privilege", "onprem", change("deployer", "inputs/rules/0/verbs", ["*"]), "wildcard in verbs"),
    ("k8s-rbac-least-privilege", "onprem", change("deployer", "inputs/rules/2", {
        "apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}), "reads secrets (list)"),
    ("k8s-rbac-least-privilege", "onprem", change("deployer", "inputs/rules/1/resources", ["pods/exec"]), "grants pods/exec"),
    ("k8s-rbac-least-privilege", "onprem", change("deployer", "inputs/rules/0/verbs", ["get", "escalate"]), "grants escalate"),
    ("k8s-rbac-namespaced", "onprem", add({
        "urn": ONPREM_STACK + "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding::ci", "name": "ci",
        "type": "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "options": {}, "inputs": {}}),
     "grants cluster-wide"),
    ("k8s-availability", "onprem", change("server-blue", "inputs/spec/replicas", 1), "runs 1 replica(s)"),
    ("k8s-availability", "onprem", remove("server-green-pdb"), "no PodDisruptionBudget"),
    ("k8s-availability", "onprem", change("server-blue", f"inputs/{POD}/topologySpreadConstraints", DELETE), "not spread"),
    ("k8s-route-own-services", "onprem", change("route", "inputs/spec/rules/0/backendRefs/0/namespace", "other"),
     "in namespace other"),
    ("k8s-route-own-services", "onprem", change("route", "inputs/spec/rules/0/backendRefs/0/kind", "ServiceImport"),
     "route to Services only"),
    ("k8s-route-weights", "onprem", change("route", "inputs/spec/rules/0/backendRefs/0/weight", 0), "sum to 0"),
    ("k8s-route-hostnames", "onprem", change("route", "inputs/spec/hostnames", ["*.example.internal"]), "wildcard"),
    ("k8s-route-hostnames", "onprem", change("route", "inputs/spec/hostnames", DELETE), "no hostnames"),
    ("k8s-route-released-slot", "onprem", remove("server-green"), "selects no Deployment"),
    ("k8s-gateway-tls", "onprem", change("gateway", "inputs/spec/listeners/0/protocol", "HTTP"), "speaks HTTP"),
    ("k8s-gateway-tls", "onprem", change("gateway", "inputs/spec/listeners/0/tls", DELETE), "no tls.certificateRefs"),
]

# Rules that ban a resource kind outright: their passing input is a graph without one.
BANS = {"k8s-rbac-namespaced"}


@pytest.mark.parametrize("rule_id", [rule.id for rule in RULES])
def test_rule_passes_the_compliant_graphs(rule_id):
    rule = RULES_BY_ID[rule_id]
    applicable = 0
    for kind in ("aws", "hybrid", "onprem"):
        g = graph(kind)
        for resource in g["resources"]:
            applicable += rule.applies(resource, g)
            assert rule(resource, g) == [], f"{rule_id} on {resource['name']} of the compliant {kind} graph"
    assert applicable or rule_id in BANS, f"no compliant graph exercises {rule_id}"


@pytest.mark.parametrize(("rule_id", "kind", "mutation", "expected"), FAILING,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(FAILING)])
def test_rule_fails_a_broken_graph_on_purpose(rule_id, kind, mutation, expected):
    g = graph(kind)
    mutation(g)
    findings = [f for f in evaluate(g) if f.rule == rule_id]
    assert findings, f"{rule_id} did not catch the mutation"
    assert any(expected in f.message for f in findings), [f.message for f in findings]


def test_every_rule_has_a_failing_case():
    assert {rule.id for rule in RULES} == {case[0] for case in FAILING}


def test_environment_scopes_the_prod_rules():
    dev = sample_graphs.aws_prod(env="dev")
    assert environment_of(dev) == "dev" and evaluate(dev) == []
    as_prod = {**copy.deepcopy(dev), "environment": "prod"}
    fired = {f.rule for f in evaluate(as_prod)}
    assert fired == {"sagemaker-prod-instance-count", "autoscaling-min-capacity", "prod-stateful-protected"}


@pytest.mark.parametrize(("graph_", "expected"), [
    ({"stack": "aws-staging"}, "staging"),
    ({"stack": "onprem-local"}, "dev"),
    ({"stack": "test"}, "prod"),  # unknown: judged strictest
    ({"stack": "aws-prod", "environment": "dev"}, "dev"),
    ({"stack": "x", "outputs": {"environment": "staging"}}, "staging"),
])
def test_environment_of(graph_, expected):
    assert environment_of(graph_) == expected


def test_findings_are_sorted_and_render():
    g = graph("aws")
    set_path(named(g, "prod-key"), "inputs/enableKeyRotation", False)
    set_path(named(g, "prod-logs"), "inputs/kmsKeyId", DELETE)
    findings = evaluate(g)
    assert findings == sorted(findings)
    assert findings[0].render().startswith("[")


def test_unknown_values_are_not_violations():
    g = graph("aws")
    set_path(named(g, "prod-config"), "inputs/kmsKeyArn", r.UNKNOWN)
    set_path(named(g, "prod-key"), "inputs/policy", r.UNKNOWN)
    assert evaluate(g) == []
