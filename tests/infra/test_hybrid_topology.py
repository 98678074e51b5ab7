"""The hybrid topology on every committed hybrid-* stack: the security checklist (docs/security-checklist.md) on the synthesized graph.

Each stack file is synthesized under the recording mocks (no cloud, no engine) and judged four ways:
the policy rules (``policy/rules/``, zero findings), explicit assertions of every applicable §3 item
(the VPN, network and state-safety items one by one), botocore's API contract (``lastmile.contract`` for
SageMaker, autoscaling and alarms; the network component tests' CreateVpnConnection/... translators and
documented-value walker for the VPN and VPC requests, enums included) and parliament on the IAM/KMS/S3
documents. Invalid config fails with a ConfigError naming the field and registers nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import ipaddress
import json
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from parliament import analyze_policy_string, enhance_finding

from components.network.tunnel_crypto import (
    DEFAULT_DH_GROUPS,
    DEFAULT_ENCRYPTION,
    DEFAULT_INTEGRITY,
    EncryptionAlgorithm,
    IntegrityAlgorithm,
)
from components.network.vpn import TunnelOptions
from lastmile.contract import check_graph
from infra.manifest import load_manifest
from infra.settings.hybrid import TunnelSettings
from infra.settings.loader import ConfigError
from lastmile.synthesis import (
    MOCK_RESOLVER_IPS,
    MOCK_TUNNEL_ADDRESSES,
    SECRET_MASK,
    STACKS_DIR,
    Graph,
    Node,
    RecordingMocks,
    RecordingMonitor,
    list_stacks,
    physical_name,
    synthesize,
)
from infra.topologies import hybrid
from policy.rules import RULES, evaluate

STACKS = ("hybrid-staging", "hybrid-prod")
# Resources per stack (components included). A change here is a reviewed change of what a hybrid stack
# deploys: prod has a third zone (subnet, route table + association, propagation) and serves one release
# on SageMaker; staging also runs green's release as a shadow variant (a second model).
# With the namespace's create-only provider; the Gateway API entry: its component, a backend Service per slot,
# an HTTPRoute and a GRPCRoute (the Ingress path had its component, the Ingress and its TLS Secret).
RESOURCE_COUNTS = {"hybrid-staging": 100, "hybrid-prod": 103}

KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
CUSTOMER_GATEWAY = "aws:ec2/customerGateway:CustomerGateway"
VPN_GATEWAY = "aws:ec2/vpnGateway:VpnGateway"
PROPAGATION = "aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation"
VPN_ROUTE = "aws:ec2/vpnConnectionRoute:VpnConnectionRoute"
RESOLVER = "aws:route53/resolverEndpoint:ResolverEndpoint"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NETWORK_COMPONENTS = ("lastmile:network:PrivateNetwork", "lastmile:network:SiteToSiteVpn",
                      "lastmile:network:PrivateServiceAccess")
POLICY_DOCUMENTS = {KEY: "policy", ROLE: "assumeRolePolicy", ROLE_POLICY: "policy",
                    "aws:s3/bucketPolicy:BucketPolicy": "policy"}
SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
OPEN = ("0.0.0.0/0", "::/0")
# The lastmile.verify contract (shared with the aws stacks), the on-prem half's outputs, the traffic policy.
OUTPUTS = {
    "environment", "endpoint_name", "endpoint_config_name", "variant_name", "model_names", "region", "model_version",
    "model_sha256", "artifact_bucket", "kms_key_arn", "rollback_alarm_names",
    "active_slot", "active_release", "slots", "namespace", "stable_service", "deployer_role", "preview_service",
    "traffic_primary", "traffic_failover", "onprem_service_url", "sagemaker_endpoint_name",
    "sagemaker_runtime_private_dns", "resolver_inbound_ips", "vpn_tunnel_addresses", "vpn_connection_id",
    "vpn_alarm_names", "vpc_cidr",
    "slot_releases", "slot_deployments", "slot_templates", "slot_weights",  # what the next switch check reads back
    "entry", "http_route", "grpc_route",
}
PSKS = {"lastmile:vpn_tunnel1_psk": "Hybrid_Tunnel.Key1", "lastmile:vpn_tunnel2_psk": "Hybrid_Tunnel.Key2"}


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]


def hybrid_config(stack: str) -> dict[str, Any]:
    return stack_config(stack)["lastmile:hybrid"]


def statements(node: Node, field: str = "policy") -> list[dict[str, Any]]:
    return json.loads(node.inputs[field])["Statement"]


def network_children(graph: Graph) -> list[Node]:
    """The custom resources the three network components register."""
    parents = {n.urn for n in graph.nodes.values() if n.type in NETWORK_COMPONENTS}
    return [n for n in graph.nodes.values() if n.custom and n.parent in parents]


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


@pytest.fixture
def graph(stack, stack_graph) -> Graph:
    return stack_graph(stack)


def test_every_hybrid_stack_is_committed_and_tested():
    assert sorted(s for s in list_stacks() if s.startswith("hybrid-")) == sorted(STACKS)


# ---------------------------------------------------------------------------------------------
# the security checklist (docs/security-checklist.md) as the policy rules, and the API contract


def test_policy_rules_find_nothing(graph):
    document = graph.to_json()
    assert [f.render() for f in evaluate(document)] == []
    exercised = {rule.id for rule in RULES for r in document["resources"] if rule.applies(r, document)}
    assert exercised >= {"vpn-tunnel-crypto", "vpn-tunnel-logging", "vpn-tunnel-state-alarms", "no-open-ingress",
                         "vpc-flow-logs", "vpc-sagemaker-runtime-endpoint", "sagemaker-model-vpc", "log-group-kms",
                         "k8s-default-deny", "k8s-pod-restricted-profile", "secrets-masked"}


def test_sagemaker_requests_satisfy_the_api_contract(graph):
    report = check_graph(graph)
    assert report.ok, report.text()
    assert {r.operation for r in report.requests} >= {"CreateModel", "CreateEndpointConfig", "CreateEndpoint",
                                                      "PutMetricAlarm", "RegisterScalableTarget"}


def test_network_requests_satisfy_botocore_shapes_including_enums(graph):
    """`lastmile contract` over the stack: the network requests (VPN, gateways, endpoints, resolver, logs) are
    among those it checks, enums and documented values included, and none breaks the API contract."""
    from lastmile.contract import check_graph

    report = check_graph(graph)
    assert {request.operation for request in report.requests} >= {
        "CreateVpnConnection", "CreateCustomerGateway", "CreateVpnGateway", "EnableVgwRoutePropagation",
        "CreateFlowLogs", "CreateVpcEndpoint", "CreateResolverEndpoint", "CreateLogGroup", "PutRetentionPolicy"}
    assert not report.violations, "\n".join(map(str, report.violations))


def test_parliament_finds_nothing_above_low(graph, stack):
    analysed = 0
    for node in graph.nodes.values():
        field = POLICY_DOCUMENTS.get(node.type)
        if field is None:
            continue
        analysed += 1
        document = node.inputs[field]  # the mocks give every ARN the form AWS gives it
        for finding in map(enhance_finding, analyze_policy_string(document).findings):
            if SEVERITIES.index(finding.severity) <= SEVERITIES.index("LOW"):
                continue  # e.g. RESOURCE_STAR in the key policy, where "*" means "this key"
            if field == "assumeRolePolicy" and finding.issue == "MALFORMED" and "neither Resource" in str(finding.detail):
                continue  # a trust policy has no Resource; parliament reads every document as an identity policy
            pytest.fail(f"parliament {finding.severity} {finding.issue} on {node.name}: {finding.detail}")
    assert analysed >= 9  # key, two trust policies, bucket policy, the flow-log and execution roles' policies


# ---------------------------------------------------------------------------------------------
# VPN (docs/security-checklist.md §VPN; Security Hub EC2.20)


def test_both_tunnels_are_hardened_from_config(graph, stack):
    vpn = graph.one(VPN_CONNECTION).inputs
    tunnels = hybrid_config(stack)["tunnels"]
    assert len(tunnels) == 2
    for number, tunnel in enumerate(tunnels, start=1):
        t = f"tunnel{number}"
        assert vpn[f"{t}IkeVersions"] == ["ikev2"]
        assert vpn[f"{t}InsideCidr"] == tunnel["inside_cidr"]
        for phase in ("Phase1", "Phase2"):
            assert vpn[f"{t}{phase}EncryptionAlgorithms"] == [a.value for a in DEFAULT_ENCRYPTION]
            assert set(vpn[f"{t}{phase}EncryptionAlgorithms"]) <= {"AES256", "AES256-GCM-16"}
            assert vpn[f"{t}{phase}IntegrityAlgorithms"] == [a.value for a in DEFAULT_INTEGRITY]
            assert all(a.startswith("SHA2-") for a in vpn[f"{t}{phase}IntegrityAlgorithms"])
            assert vpn[f"{t}{phase}DhGroupNumbers"] == [int(g) for g in DEFAULT_DH_GROUPS]
            assert min(vpn[f"{t}{phase}DhGroupNumbers"]) >= 14
        assert (vpn[f"{t}DpdTimeoutAction"], vpn[f"{t}StartupAction"]) == ("restart", "start")
    assert vpn["type"] == "ipsec.1" and vpn["staticRoutesOnly"] is False  # routing: bgp


def test_tunnel_logging_goes_to_an_encrypted_log_group(graph):
    vpn = graph.one(VPN_CONNECTION)
    logs = graph.named("vpn-tunnel-logs")
    assert logs.urn in vpn.depends_on
    for t in ("tunnel1", "tunnel2"):
        options = vpn.inputs[f"{t}LogOptions"]["cloudwatchLogOptions"]
        assert options["logEnabled"] is True and options["logOutputFormat"] == "json"
        assert options["logGroupArn"].endswith(":log-group:" + physical_name(LOG_GROUP, logs.name))
    assert logs.inputs["kmsKeyId"] == graph.outputs["kms_key_arn"]


def test_a_tunnel_state_alarm_per_tunnel(graph):
    vpn = graph.one(VPN_CONNECTION)
    alarms = [a for a in graph.of_type(ALARM) if a.inputs["namespace"] == "AWS/VPN"]
    assert sorted(a.inputs["dimensions"]["TunnelIpAddress"] for a in alarms) == sorted(MOCK_TUNNEL_ADDRESSES)
    for alarm in alarms:
        assert alarm.inputs["metricName"] == "TunnelState" and vpn.urn in alarm.depends_on
        assert alarm.inputs["dimensions"]["VpnId"] == graph.outputs["vpn_connection_id"]
        assert alarm.inputs["comparisonOperator"] == "LessThanThreshold" and alarm.inputs["threshold"] == 1
        assert alarm.inputs["treatMissingData"] == "breaching"
    assert sorted(graph.outputs["vpn_alarm_names"]) == sorted(physical_name(ALARM, a.name) for a in alarms)
    assert graph.outputs["vpn_tunnel_addresses"] == list(MOCK_TUNNEL_ADDRESSES)


def test_gateways_and_routes_follow_config(graph, stack):
    config = hybrid_config(stack)
    cgw = graph.one(CUSTOMER_GATEWAY).inputs
    assert (cgw["ipAddress"], cgw["bgpAsn"], cgw["type"]) == (
        config["customer_gateway"]["ip_address"], str(config["customer_gateway"]["bgp_asn"]), "ipsec.1")
    assert ipaddress.IPv4Address(cgw["ipAddress"]).is_global
    assert graph.one(VPN_GATEWAY).inputs["amazonSideAsn"] == str(config["amazon_side_asn"])
    tables = {t.urn for t in graph.of_type("aws:ec2/routeTable:RouteTable")}
    propagations = graph.of_type(PROPAGATION)
    assert len(propagations) == len(tables) == len(config["availability_zones"])
    assert all(tables & set(p.depends_on) for p in propagations)
    assert not graph.of_type(VPN_ROUTE)  # BGP learns the on-prem prefixes


def test_static_routing_adds_one_vpn_route_per_onprem_cidr():
    config = copy.deepcopy(hybrid_config("hybrid-staging")) | {"routing": "static"}
    graph = synthesize("hybrid-staging", overrides={"lastmile:hybrid": config})
    assert graph.one(VPN_CONNECTION).inputs["staticRoutesOnly"] is True
    assert sorted(r.inputs["destinationCidrBlock"] for r in graph.of_type(VPN_ROUTE)) == sorted(config["onprem_cidrs"])


def test_committed_stacks_let_aws_generate_the_keys_and_never_export_them(graph):
    vpn = graph.one(VPN_CONNECTION)
    assert "tunnel1PresharedKey" not in vpn.inputs and "tunnel2PresharedKey" not in vpn.inputs
    assert {"tunnel1PresharedKey", "tunnel2PresharedKey", "customerGatewayConfiguration"} <= set(
        vpn.additional_secret_outputs)
    assert not [k for k in graph.outputs if "psk" in k or "preshared" in k or "configuration" in k]


def test_preshared_keys_from_config_stay_secret():
    """Keys given as secrets reach the connection masked and appear nowhere in the graph or the outputs."""
    graph = synthesize("hybrid-prod", overrides=PSKS)
    vpn = graph.one(VPN_CONNECTION)
    assert vpn.inputs["tunnel1PresharedKey"] == vpn.inputs["tunnel2PresharedKey"] == SECRET_MASK
    dumped = graph.dumps() + json.dumps(graph.outputs)
    assert not [key for key in PSKS.values() if key in dumped]
    assert evaluate(graph.to_json()) == []


# ---------------------------------------------------------------------------------------------
# Network (docs/security-checklist.md §Network)


def test_private_subnets_in_distinct_zones_without_an_internet_path(graph, stack):
    config = hybrid_config(stack)
    subnets = graph.of_type(SUBNET)
    assert sorted(s.inputs["availabilityZone"] for s in subnets) == sorted(config["availability_zones"])
    vpc = ipaddress.ip_network(config["vpc_cidr"])
    assert all(ipaddress.ip_network(s.inputs["cidrBlock"]).subnet_of(vpc) for s in subnets)
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert not [n.name for n in graph.nodes.values()
                if n.type.split(":")[-1] in ("InternetGateway", "EgressOnlyInternetGateway", "NatGateway", "Eip")]
    assert graph.one(VPC).inputs["cidrBlock"] == graph.outputs["vpc_cidr"] == config["vpc_cidr"]


def test_flow_logs_capture_all_traffic_to_an_encrypted_log_group(graph, stack):
    flow_log, vpc, logs = graph.one(FLOW_LOG), graph.one(VPC), graph.named("network-flow-logs")
    assert flow_log.inputs["trafficType"] == "ALL" and flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert {vpc.urn, logs.urn} <= set(flow_log.depends_on)
    assert logs.inputs["kmsKeyId"] == graph.outputs["kms_key_arn"]
    assert logs.inputs["retentionInDays"] == stack_config(stack)["lastmile:aws"]["log_retention_days"]


def test_the_default_security_group_is_closed(graph):
    default = graph.one(DEFAULT_SG)
    assert default.inputs["ingress"] == [] and default.inputs["egress"] == []
    assert graph.one(VPC).urn in default.depends_on


def test_ingress_only_from_onprem_and_the_vpc(graph, stack):
    config = hybrid_config(stack)
    allowed = {*config["onprem_cidrs"], config["vpc_cidr"]}
    sources = [(sg.name, cidr) for sg in graph.of_type(SECURITY_GROUP) + graph.of_type(DEFAULT_SG)
               for rule in sg.inputs.get("ingress") or [] for cidr in rule.get("cidrBlocks") or []]
    assert sources and {cidr for _, cidr in sources} <= allowed
    for policy in graph.of_type(NETWORK_POLICY):
        for rule in policy.inputs["spec"].get("ingress", []):
            assert all(peer.get("ipBlock", {}).get("cidr") not in OPEN for peer in rule["from"])
    resolver_sg = graph.named("private-access-resolver-sg").inputs["ingress"]
    assert {(r["protocol"], r["fromPort"]) for r in resolver_sg} == {("udp", 53), ("tcp", 53)}
    assert all(r["cidrBlocks"] == config["onprem_cidrs"] for r in resolver_sg)


def test_model_containers_are_isolated_in_the_private_subnets(graph, stack):
    group = graph.named(hybrid.MODELS_SECURITY_GROUP)
    assert group.inputs["ingress"] == []
    s3_gateway = next(e for e in graph.of_type(VPC_ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway")
    assert s3_gateway.urn in group.depends_on  # the prefix list is the gateway endpoint's output
    prefix_list = group.inputs["egress"][-1].get("prefixListIds", [""])[0]
    assert prefix_list.startswith("pl-")
    assert group.inputs["egress"] == [
        {"cidrBlocks": [hybrid_config(stack)["vpc_cidr"]], "fromPort": 443, "toPort": 443, "protocol": "tcp",
         "description": "HTTPS to the interface endpoints in the VPC"},
        # artifacts and image layers come from S3 through the gateway endpoint's prefix list
        {"prefixListIds": [prefix_list], "fromPort": 443, "toPort": 443, "protocol": "tcp",
         "description": "HTTPS to S3 through the gateway endpoint"}]
    subnets = graph.of_type(SUBNET)
    for model in graph.of_type(MODEL):
        assert model.inputs["enableNetworkIsolation"] is True
        assert model.inputs["vpcConfig"]["securityGroupIds"] == [physical_name(SECURITY_GROUP, group.name)]
        assert group.urn in model.depends_on
        assert len(model.inputs["vpcConfig"]["subnets"]) == len(subnets) >= 2
        assert {s.urn for s in subnets} <= set(model.depends_on)


def test_private_runtime_endpoint_with_private_dns_invokes_this_endpoint_only(graph, stack):
    region = stack_config(stack)["lastmile:aws"]["region"]
    account = stack_config(stack)["lastmile:aws"]["account_id"]
    runtime = [e for e in graph.of_type(VPC_ENDPOINT) if e.inputs["serviceName"].endswith(".sagemaker.runtime")]
    assert len(runtime) == 1
    endpoint = runtime[0].inputs
    assert endpoint["serviceName"] == f"com.amazonaws.{region}.sagemaker.runtime"
    assert (endpoint["vpcEndpointType"], endpoint["privateDnsEnabled"]) == ("Interface", True)
    assert len(endpoint["subnetIds"]) == len(hybrid_config(stack)["availability_zones"])
    [statement] = statements(runtime[0])
    assert statement["Action"] == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"]
    name = graph.one(ENDPOINT).inputs["name"]
    assert statement["Resource"] == [f"arn:aws:sagemaker:{region}:{account}:endpoint/{name}"]
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account}}
    assert graph.outputs["sagemaker_runtime_private_dns"] == f"runtime.sagemaker.{region}.amazonaws.com"
    for other in graph.of_type(VPC_ENDPOINT):
        if other.inputs["vpcEndpointType"] == "Interface":
            assert other.inputs["privateDnsEnabled"] is True, other.name


def test_onprem_dns_reaches_the_private_names_through_the_resolver(graph):
    resolver = graph.one(RESOLVER).inputs
    assert resolver["direction"] == "INBOUND" and len({a["subnetId"] for a in resolver["ipAddresses"]}) == 2
    assert graph.outputs["resolver_inbound_ips"] == list(MOCK_RESOLVER_IPS)  # computed by the mocks


def test_serving_namespace_may_reach_the_vpc_on_443_only(graph, stack):
    vpc_cidr = hybrid_config(stack)["vpc_cidr"]
    rules = [rule for policy in graph.of_type(NETWORK_POLICY) for rule in policy.inputs["spec"].get("egress", [])]
    to_vpc = [rule for rule in rules if any(p.get("ipBlock", {}).get("cidr") == vpc_cidr for p in rule["to"])]
    assert to_vpc == [{"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": [{"port": 443, "protocol": "TCP"}]}]
    assert not [rule for rule in rules for p in rule["to"] if p.get("ipBlock", {}).get("cidr") in OPEN]


# ---------------------------------------------------------------------------------------------
# Encryption, state safety, availability


def test_one_key_encrypts_everything_and_admits_every_log_group(graph):
    key_arn = graph.outputs["kms_key_arn"]
    key = graph.one(KEY)
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    [logs_statement] = [s for s in statements(key) if s["Principal"] == {"Service": "logs.eu-central-1.amazonaws.com"}]
    admitted = logs_statement["Condition"]["StringLike"]["kms:EncryptionContext:aws:logs:arn"]
    for group in graph.of_type(LOG_GROUP):
        assert group.inputs["kmsKeyId"] == key_arn, group.name
        name = group.inputs.get("name") or physical_name(LOG_GROUP, group.name)
        assert any(fnmatch.fnmatchcase(name, arn.split(":log-group:", 1)[1]) for arn in admitted), name
    assert graph.one(CONFIG).inputs["kmsKeyArn"] == key_arn


def test_state_safety(graph, stack):
    prod = stack == "hybrid-prod"
    stateful = [graph.one(KEY), graph.one(BUCKET), *graph.of_type(LOG_GROUP), graph.one(VPN_CONNECTION)]
    assert len(stateful) == 6
    for node in stateful:
        assert node.protect is prod, node.name
    for node in (graph.one(KEY), graph.one(BUCKET), *graph.of_type(LOG_GROUP)):
        assert node.retain_on_delete is prod, node.name
    guards = {"artifacts-encryption", "artifacts-versioning", "artifacts-public-access", "artifacts-ownership",
              "artifacts-policy", "artifacts-lifecycle"}
    expected = {"encryption-key", "artifacts-bucket", "serving-logs", "network-flow-logs", "vpn-tunnel-logs",
                "vpn-connection", *guards} if prod else set()
    assert {n.name for n in graph.nodes.values() if n.protect} == expected


def test_prod_availability(stack_graph):
    graph = stack_graph("hybrid-prod")
    routing = graph.one(ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing["type"] == "CANARY" and routing["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 10}
    assert all(v["initialInstanceCount"] >= 2 for v in graph.one(CONFIG).inputs["productionVariants"])
    assert graph.one(TARGET).inputs["minCapacity"] >= 2
    for hpa in graph.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
        assert hpa.inputs["spec"]["minReplicas"] >= 2
    assert len(graph.of_type("kubernetes:policy/v1:PodDisruptionBudget")) == 2
    assert len({s.inputs["availabilityZone"] for s in graph.of_type(SUBNET)}) == 3


# ---------------------------------------------------------------------------------------------
# Composition: images, providers, outputs


def test_each_plane_runs_its_own_image_of_the_same_release(graph, stack):
    serving = stack_config(stack)["lastmile:serving"]
    manifest = load_manifest()
    for model in graph.of_type(MODEL):
        slot = model.name.rsplit("-", 1)[-1]
        release = serving["slots"][slot]
        pinned = manifest[(release["model"], release["version"])]
        assert model.inputs["primaryContainer"]["image"] == pinned.sagemaker_images["eu-central-1"]
        assert f"/{release['version']}/{release['sha256']}/" in model.inputs["primaryContainer"]["modelDataUrl"]
    for deployment in graph.of_type(DEPLOYMENT):
        slot = deployment.name.split("-")[-2]
        [server] = [c for c in deployment.inputs["spec"]["template"]["spec"]["containers"]]
        assert server["image"] == serving["slots"][slot]["image"] and "@sha256:" in server["image"]


def test_two_explicit_providers_and_nothing_ambient(graph, stack):
    aws_config = stack_config(stack)["lastmile:aws"]
    aws_provider = graph.one("pulumi:providers:aws")
    assert aws_provider.inputs["region"] == aws_config["region"]
    assert json.loads(aws_provider.inputs["allowedAccountIds"]) == [aws_config["account_id"]]
    k8s_providers = {p.name: p for p in graph.of_type("pulumi:providers:kubernetes")}
    assert set(k8s_providers) == {"kubernetes", "kubernetes-create-only"}  # the second creates the namespace
    assert all(p.inputs["kubeconfig"] == SECRET_MASK for p in k8s_providers.values())
    for node in graph.nodes.values():
        if node.custom and node.type.startswith("aws:"):
            assert node.provider == aws_provider.name, node.name
        elif node.custom and node.type.startswith("kubernetes:"):
            assert node.provider in k8s_providers, node.name


def test_outputs_carry_the_traffic_policy(graph, stack):
    config, outputs = hybrid_config(stack), graph.outputs
    assert set(outputs) == OUTPUTS
    policy = config["traffic_policy"]
    expected = (policy["primary"], policy.get("failover", True))  # omitted: failover on
    assert (outputs["traffic_primary"], outputs["traffic_failover"]) == expected
    assert outputs["sagemaker_endpoint_name"] == outputs["endpoint_name"] == graph.one(ENDPOINT).inputs["name"]
    host = stack_config(stack)["lastmile:onprem"]["gateway"]["hostname"]
    assert outputs["onprem_service_url"] == f"https://{host}/v2/models/iris-classifier/infer"
    assert outputs["namespace"] == stack_config(stack)["lastmile:onprem"]["namespace"]
    assert outputs["region"] == "eu-central-1"
    assert SECRET_MASK not in json.dumps(outputs)  # nothing secret is exported, not even masked


def test_traffic_policies_differ_as_designed(stack_graph):
    staging, prod = (stack_graph(s).outputs for s in STACKS)
    assert (staging["traffic_primary"], staging["traffic_failover"]) == ("sagemaker", True)
    assert (prod["traffic_primary"], prod["traffic_failover"]) == ("onprem", True)
    assert staging["vpc_cidr"] != prod["vpc_cidr"]  # both VPNs end on one on-prem device


def test_resource_counts_and_unique_urns(graph, stack):
    assert len(graph.nodes) == RESOURCE_COUNTS[stack], graph.summary()
    assert len({(n.type, n.name, n.parent) for n in graph.nodes.values()}) == len(graph.nodes)


def test_a_rerun_is_identical(stack, stack_graph):
    """No duplicate URN (the recording monitor refuses one), nothing depends on run order or live state."""
    assert synthesize(stack).dumps() == stack_graph(stack).dumps()


def test_stateful_urns_are_pinned(stack_graph):
    """Logical names are an API: renaming one of these replaces a key, a bucket, a log group or the VPN."""
    prefix = "urn:pulumi:hybrid-prod::lastmile::"
    graph = stack_graph("hybrid-prod")
    assert graph.one(KEY).urn == prefix + "lastmile:aws:EncryptionKey$aws:kms/key:Key::encryption-key"
    assert graph.one(BUCKET).urn == prefix + "lastmile:aws:ArtifactStore$aws:s3/bucket:Bucket::artifacts-bucket"
    assert graph.named("serving-logs").urn == (
        prefix + "lastmile:aws:ModelEndpoint$aws:cloudwatch/logGroup:LogGroup::serving-logs")
    assert graph.named("network-flow-logs").urn == (
        prefix + "lastmile:network:PrivateNetwork$aws:cloudwatch/logGroup:LogGroup::network-flow-logs")
    assert graph.named("vpn-tunnel-logs").urn == (
        prefix + "lastmile:network:SiteToSiteVpn$aws:cloudwatch/logGroup:LogGroup::vpn-tunnel-logs")
    assert graph.one(VPN_CONNECTION).urn == (
        prefix + "lastmile:network:SiteToSiteVpn$aws:ec2/vpnConnection:VpnConnection::vpn-connection")


def test_a_release_change_leaves_the_network_untouched(stack_graph):
    """Promotion is one diff: SageMaker's config and the on-prem Services move, the VPC and VPN do not."""
    before = stack_graph("hybrid-prod")
    serving = copy.deepcopy(stack_config("hybrid-prod")["lastmile:serving"]) | {"active_slot": "green"}
    after = synthesize("hybrid-prod", overrides={"lastmile:serving": serving})
    assert after.one(CONFIG).inputs["name"] != before.one(CONFIG).inputs["name"]
    assert after.named("iris-classifier-router-stable").inputs["spec"]["selector"]["lastmile.dev/slot"] == "green"
    assert after.outputs["model_version"] == "1.1.0" and after.outputs["active_slot"] == "green"
    for node in network_children(before) + [before.one(KEY)]:
        assert after.nodes[node.urn] == node, node.name


# ---------------------------------------------------------------------------------------------
# Invalid input: a ConfigError naming the field, and not one resource registered


def _hybrid_with(**changes: Any) -> dict[str, Any]:
    return {"lastmile:hybrid": copy.deepcopy(hybrid_config("hybrid-prod")) | changes}


INVALID = {
    "on-prem CIDR overlapping the VPC": (
        _hybrid_with(onprem_cidrs=["10.40.128.0/17", "192.168.50.0/24"]), "hybrid.onprem_cidrs.0", "overlaps the VPC"),
    "a non-private on-prem CIDR": (
        _hybrid_with(onprem_cidrs=["10.20.0.0/16", "100.64.0.0/24"]), "hybrid.onprem_cidrs.1", "private RFC 1918"),
    "AES128 outside the allow-list": (
        _hybrid_with(tunnels=[{"phase1_encryption_algorithms": ["AES128"]}, {}]),
        "hybrid.tunnels.0.phase1_encryption_algorithms.0", "AES256"),
    "DH group 2 outside the allow-list": (
        _hybrid_with(tunnels=[{}, {"phase2_dh_group_numbers": [2, 14]}]),
        "hybrid.tunnels.1.phase2_dh_group_numbers.0", "14"),
    "SHA1 outside the allow-list": (
        _hybrid_with(tunnels=[{"phase1_integrity_algorithms": ["SHA1"]}, {}]),
        "hybrid.tunnels.0.phase1_integrity_algorithms.0", "SHA2-256"),
    "a single configured tunnel": (
        _hybrid_with(tunnels=[{"inside_cidr": "169.254.10.0/30"}]), "hybrid.tunnels", "both must be configured"),
    "a documentation-range customer gateway": (
        _hybrid_with(customer_gateway={"ip_address": "203.0.113.10", "bgp_asn": 65010}),
        "hybrid.customer_gateway.ip_address", "public"),
    "subnets given for the VPC the hybrid stack builds itself": (
        {"lastmile:aws": {**copy.deepcopy(stack_config("hybrid-prod")["lastmile:aws"]), "vpc": {
            "subnets": [{"id": "subnet-0a1b2c3d", "availability_zone": "eu-central-1a"}],
            "security_group_ids": ["sg-0123abcd"]}}},
        "aws.vpc", "builds its own private VPC"),
}


@pytest.mark.parametrize("overrides, field, says", INVALID.values(), ids=INVALID.keys())
def test_invalid_input_fails_clearly_and_registers_nothing(overrides, field, says):
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        synthesize("hybrid-prod", overrides=overrides, monitor=monitor)
    problems = {p.field: p for p in caught.value.problems}
    assert field in problems, list(problems)
    assert says in problems[field].message and problems[field].fix
    assert f"lastmile:{field}" in str(caught.value) and "nothing was deployed" in str(caught.value)
    assert monitor.nodes == {}


# ---------------------------------------------------------------------------------------------
# Pure parts of the builder


def test_every_tunnel_setting_reaches_the_component():
    """tunnel_options maps by field name: a field added on one side only must fail here, not be dropped."""
    assert set(TunnelSettings.model_fields) == {f.name for f in dataclasses.fields(TunnelOptions)} - {"preshared_key"}
    narrowed = TunnelSettings(phase1_encryption_algorithms=[EncryptionAlgorithm.AES256_GCM_16],
                              phase2_integrity_algorithms=[IntegrityAlgorithm.SHA2_512], dpd_timeout_seconds=60,
                              inside_cidr="169.254.30.0/30")
    settings = SimpleNamespace(hybrid=SimpleNamespace(tunnels=[narrowed, TunnelSettings()]), secrets={})
    first, second = hybrid.tunnel_options(settings)
    assert first.phase1_encryption_algorithms == (EncryptionAlgorithm.AES256_GCM_16,)
    assert first.phase2_integrity_algorithms == (IntegrityAlgorithm.SHA2_512,)
    assert (first.dpd_timeout_seconds, first.inside_cidr, first.preshared_key) == (60, "169.254.30.0/30", None)
    assert second == TunnelOptions()  # omitted fields: the hardened profile


def test_output_names_never_shadow_each_other():
    assert hybrid._merged({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="exported twice"):
        hybrid._merged({"endpoint_name": 1}, {"endpoint_name": 2})


def test_runtime_dns_name_per_partition():
    assert hybrid.sagemaker_runtime_dns("eu-central-1") == "runtime.sagemaker.eu-central-1.amazonaws.com"
    assert hybrid.sagemaker_runtime_dns("cn-north-1") == "runtime.sagemaker.cn-north-1.amazonaws.com.cn"


def test_with_observability_the_tunnel_alarms_reach_the_alert_topic(stack_graph):
    """Off (committed hybrid stacks): the tunnel alarms only change state. On: they notify the topic."""
    assert all(a.inputs.get("alarmActions", []) == [] for a in stack_graph("hybrid-prod").of_type(ALARM)
               if a.inputs.get("namespace") == "AWS/VPN")
    watched = synthesize("hybrid-prod", overrides={"lastmile:observability": {
        "enabled": True, "notifications": {"emails": ["ml-oncall@example.com"]}, "retraining": {"target": "topic"}}})
    topic = watched.outputs["alert_topic_arn"]
    tunnel_alarms = [a for a in watched.of_type(ALARM) if a.inputs.get("namespace") == "AWS/VPN"]
    assert len(tunnel_alarms) == 2
    for alarm in tunnel_alarms:
        assert alarm.inputs["alarmActions"] == [topic] and alarm.inputs["okActions"] == [topic]
    assert evaluate(watched.to_json()) == []
