"""Contract check: what the network components register, as the AWS API requests the provider sends.

No provider validates values under mocks (docs/design-notes.md §Offline verification), so each network resource in the graph is
translated into its API request and validated against botocore's service model with
``lastmile.contract.validate_request`` (ParamValidator + a walker for enums, ranges, lengths, patterns).
``lastmile.contract`` does not map these resource types (its translator covers SageMaker, autoscaling and
alarms), so the translations live here, explicit per type: an input without a mapping fails the test.

EC2 models the tunnel crypto members as plain strings and integers: their allowed values exist only
in the member documentation ("Valid values: AES128 | AES256 | ..."). ``documented_value_violations``
parses those lists from the same botocore model and checks every value against them, so the enum
check is not vacuous where the model has no ``enum``. Tests at the end prove both walkers reject what
AWS would reject.
"""

from __future__ import annotations

import copy
import functools
import html
import json
import re
from typing import Any

import botocore.session
import pytest

from components.network.tunnel_crypto import DhGroup, EncryptionAlgorithm, IntegrityAlgorithm, VpnRouting
from lastmile.contract import check_node, validate_request
from lastmile.synthesis import SECRET_MASK, Graph, Node
from network_helpers import hybrid_network

PSK_PLACEHOLDER = "Placeholder_psk.1"  # the real key is masked; its format is checked by the component

# pulumi-aws VpnConnection tunnel<N>* input suffix -> EC2 VpnTunnelOptionsSpecification member.
TUNNEL_MEMBERS = {
    "InsideCidr": "TunnelInsideCidr",
    "InsideIpv6Cidr": "TunnelInsideIpv6Cidr",
    "PresharedKey": "PreSharedKey",
    "Phase1LifetimeSeconds": "Phase1LifetimeSeconds",
    "Phase2LifetimeSeconds": "Phase2LifetimeSeconds",
    "RekeyMarginTimeSeconds": "RekeyMarginTimeSeconds",
    "RekeyFuzzPercentage": "RekeyFuzzPercentage",
    "ReplayWindowSize": "ReplayWindowSize",
    "DpdTimeoutSeconds": "DPDTimeoutSeconds",
    "DpdTimeoutAction": "DPDTimeoutAction",
    "Phase1EncryptionAlgorithms": "Phase1EncryptionAlgorithms",
    "Phase2EncryptionAlgorithms": "Phase2EncryptionAlgorithms",
    "Phase1IntegrityAlgorithms": "Phase1IntegrityAlgorithms",
    "Phase2IntegrityAlgorithms": "Phase2IntegrityAlgorithms",
    "Phase1DhGroupNumbers": "Phase1DHGroupNumbers",
    "Phase2DhGroupNumbers": "Phase2DHGroupNumbers",
    "IkeVersions": "IKEVersions",
    "StartupAction": "StartupAction",
    "LogOptions": "LogOptions",
    "EnableTunnelLifecycleControl": "EnableTunnelLifecycleControl",
}
VALUE_LISTS = {"Phase1EncryptionAlgorithms", "Phase2EncryptionAlgorithms", "Phase1IntegrityAlgorithms",
               "Phase2IntegrityAlgorithms", "Phase1DHGroupNumbers", "Phase2DHGroupNumbers", "IKEVersions"}
CLOUDWATCH_LOG_MEMBERS = {"logEnabled": "LogEnabled", "logGroupArn": "LogGroupArn", "logOutputFormat": "LogOutputFormat",
                          "bgpLogEnabled": "BgpLogEnabled", "bgpLogGroupArn": "BgpLogGroupArn",
                          "bgpLogOutputFormat": "BgpLogOutputFormat"}
CONNECTION_TOP = {"customerGatewayId": "CustomerGatewayId", "vpnGatewayId": "VpnGatewayId", "type": "Type"}
CONNECTION_OPTIONS = {"staticRoutesOnly": "StaticRoutesOnly", "enableAcceleration": "EnableAcceleration",
                      "tunnelInsideIpVersion": "TunnelInsideIpVersion", "localIpv4NetworkCidr": "LocalIpv4NetworkCidr",
                      "remoteIpv4NetworkCidr": "RemoteIpv4NetworkCidr", "outsideIpAddressType": "OutsideIpAddressType",
                      "tunnelBandwidth": "TunnelBandwidth"}


class Unmapped(AssertionError):
    """An input the translation does not know: extend the mapping rather than dropping it."""


def create_vpn_connection_request(node: Node) -> dict[str, Any]:
    """pulumi-aws VpnConnection inputs -> EC2 CreateVpnConnection params (Options.TunnelOptions[0..1])."""
    params: dict[str, Any] = {}
    options: dict[str, Any] = {}
    tunnels: list[dict[str, Any]] = [{}, {}]
    for key, value in node.inputs.items():
        if key in CONNECTION_TOP:
            params[CONNECTION_TOP[key]] = value
        elif key in CONNECTION_OPTIONS:
            options[CONNECTION_OPTIONS[key]] = value
        elif (match := re.fullmatch(r"tunnel([12])(\w+)", key)) and match.group(2) in TUNNEL_MEMBERS:
            member = TUNNEL_MEMBERS[match.group(2)]
            tunnels[int(match.group(1)) - 1][member] = _tunnel_value(member, value)
        elif key != "tags":
            raise Unmapped(f"VpnConnection input {key!r} has no CreateVpnConnection mapping")
    options["TunnelOptions"] = tunnels
    params["Options"] = options
    return params


def _tunnel_value(member: str, value: Any) -> Any:
    if member in VALUE_LISTS:
        return [{"Value": item} for item in value]
    if member == "PreSharedKey":
        assert value == SECRET_MASK, "a pre-shared key reached the graph unmasked"
        return PSK_PLACEHOLDER
    if member == "LogOptions":
        unknown = set(value) - {"cloudwatchLogOptions"}
        if unknown:
            raise Unmapped(f"log options {sorted(unknown)}")
        cloudwatch = value["cloudwatchLogOptions"]
        if set(cloudwatch) - set(CLOUDWATCH_LOG_MEMBERS):
            raise Unmapped(f"cloudwatch log options {sorted(set(cloudwatch) - set(CLOUDWATCH_LOG_MEMBERS))}")
        return {"CloudWatchLogOptions": {CLOUDWATCH_LOG_MEMBERS[k]: v for k, v in cloudwatch.items()}}
    return value


def _only(node: Node, mapping: dict[str, Any], fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Inputs renamed by ``mapping`` (a callable value converts); any other input is Unmapped."""
    params = dict(fixed or {})
    for key, value in node.inputs.items():
        if key not in mapping:
            raise Unmapped(f"{node.type} input {key!r} has no API mapping")
        target = mapping[key]
        if target is None:
            continue  # consumed by the provider, not sent (e.g. name of a resource the API names itself)
        name, convert = target if isinstance(target, tuple) else (target, lambda v: v)
        params[name] = convert(value)
    return params


def requests_for(node: Node) -> list[tuple[str, str, dict[str, Any]]]:
    """(service, operation, params) the provider sends to create ``node``; [] for types not covered here."""
    t = node.type
    if t == "aws:ec2/vpnConnection:VpnConnection":
        return [("ec2", "CreateVpnConnection", create_vpn_connection_request(node))]
    if t == "aws:ec2/customerGateway:CustomerGateway":
        return [("ec2", "CreateCustomerGateway", _only(node, {
            "type": "Type", "ipAddress": "IpAddress", "bgpAsn": ("BgpAsn", int), "bgpAsnExtended": ("BgpAsnExtended", int)}))]
    if t == "aws:ec2/vpnGateway:VpnGateway":
        # The provider creates the gateway (type ipsec.1), then attaches it to vpcId.
        return [("ec2", "CreateVpnGateway", _only(node, {"amazonSideAsn": ("AmazonSideAsn", int), "vpcId": None},
                                                  {"Type": "ipsec.1"})),
                ("ec2", "AttachVpnGateway", {"VpcId": node.inputs["vpcId"], "VpnGatewayId": "vgw-0123456789abcdef0"})]
    if t == "aws:ec2/vpnConnectionRoute:VpnConnectionRoute":
        return [("ec2", "CreateVpnConnectionRoute", _only(node, {
            "destinationCidrBlock": "DestinationCidrBlock", "vpnConnectionId": "VpnConnectionId"}))]
    if t == "aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation":
        return [("ec2", "EnableVgwRoutePropagation", _only(node, {
            "vpnGatewayId": "GatewayId", "routeTableId": "RouteTableId"}))]
    if t == "aws:ec2/flowLog:FlowLog":
        return [("ec2", "CreateFlowLogs", _only(node, {
            "vpcId": ("ResourceIds", lambda v: [v]), "trafficType": "TrafficType",
            "logDestinationType": "LogDestinationType", "logDestination": "LogDestination",
            "iamRoleArn": "DeliverLogsPermissionArn", "maxAggregationInterval": "MaxAggregationInterval"},
            {"ResourceType": "VPC"}))]
    if t == "aws:ec2/vpcEndpoint:VpcEndpoint":
        return [("ec2", "CreateVpcEndpoint", _only(node, {
            "vpcId": "VpcId", "serviceName": "ServiceName", "vpcEndpointType": "VpcEndpointType",
            "privateDnsEnabled": "PrivateDnsEnabled", "subnetIds": "SubnetIds", "securityGroupIds": "SecurityGroupIds",
            "routeTableIds": "RouteTableIds", "policy": "PolicyDocument"}))]
    if t == "aws:route53/resolverEndpoint:ResolverEndpoint":
        return [("route53resolver", "CreateResolverEndpoint", _only(node, {
            "direction": "Direction", "resolverEndpointType": "ResolverEndpointType", "protocols": "Protocols",
            "securityGroupIds": "SecurityGroupIds",
            "ipAddresses": ("IpAddresses", lambda v: [{"SubnetId": a["subnetId"]} for a in v])},
            {"CreatorRequestId": "lastmile-test"}))]
    if t == "aws:cloudwatch/logGroup:LogGroup":
        name = node.name + "-0123456"  # the provider auto-names from the logical name
        return [("logs", "CreateLogGroup", _only(node, {"kmsKeyId": "kmsKeyId", "retentionInDays": None},
                                                 {"logGroupName": name})),
                ("logs", "PutRetentionPolicy", {"logGroupName": name, "retentionInDays": node.inputs["retentionInDays"]})]
    return []


# ---------------------------------------------------------------------------------------------
# Documented values: EC2 states the allowed values of many string/int members only in their docs.

_VALID_VALUES = re.compile(r"Valid [Vv]alues:?\s*(.*?)</p>", re.S)


def documented_values(member_shape) -> list[str] | None:
    """The values a member's documentation enumerates as "Valid values: <code>a</code> | <code>b</code>".

    None when it enumerates none (a range such as "Valid values: 1 to 2,147,483,647" is no enumeration).
    """
    match = _VALID_VALUES.search(member_shape.documentation or "")
    if not match:
        return None
    codes = re.findall(r"<code>(.*?)</code>", match.group(1))
    separators = re.sub(r"<code>.*?</code>", "", match.group(1))
    if not codes or separators.replace("|", "").strip():
        return None
    return [html.unescape(code).strip() for code in codes]


@functools.lru_cache(maxsize=None)
def _service_model(service: str):
    return botocore.session.get_session().get_service_model(service)


def documented_value_violations(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    shape = _service_model(service).operation_model(operation).input_shape
    found: list[str] = []

    def walk(value: Any, shape, path: str) -> None:
        if shape.type_name == "structure" and isinstance(value, dict):
            for key, item in value.items():
                if key not in shape.members:
                    continue
                member = shape.members[key]
                allowed = documented_values(member)
                if allowed and member.type_name != "boolean":
                    items = ([v.get("Value") for v in item] if member.type_name == "list" and isinstance(item, list)
                             and all(isinstance(v, dict) for v in item) else [item])
                    for index, single in enumerate(items):
                        if str(single) not in allowed:
                            found.append(f"{path}.{key}[{index}]: {single!r} is not a documented value: {allowed}")
                walk(item, member, f"{path}.{key}")
        elif shape.type_name == "list" and isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, shape.member, f"{path}[{index}]")

    walk(params, shape, "$")
    return found


# ---------------------------------------------------------------------------------------------


@pytest.fixture
def graph(mock_run) -> Graph:
    return mock_run(hybrid_network)


@pytest.fixture
def static_graph(mock_run) -> Graph:
    return mock_run(lambda: hybrid_network(routing=VpnRouting.STATIC))


def _all_requests(graph: Graph) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [(node.name, *request) for node in graph.nodes.values() for request in requests_for(node)]


def test_every_network_resource_is_translated(graph: Graph, static_graph: Graph):
    """No network resource escapes the contract check because nobody mapped its type."""
    untranslated_ok = {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable",
                       "aws:ec2/routeTableAssociation:RouteTableAssociation",
                       "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/securityGroup:SecurityGroup",
                       "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/metricAlarm:MetricAlarm"}
    for g in (graph, static_graph):
        types = {n.type for n in g.nodes.values() if n.custom}
        missing = {t for t in types if t not in untranslated_ok and not any(requests_for(n) for n in g.of_type(t))}
        assert not missing


def test_create_vpn_connection_request_carries_both_hardened_tunnels(graph: Graph):
    params = create_vpn_connection_request(graph.one("aws:ec2/vpnConnection:VpnConnection"))
    tunnels = params["Options"]["TunnelOptions"]
    assert len(tunnels) == 2
    for tunnel in tunnels:
        assert tunnel["IKEVersions"] == [{"Value": "ikev2"}]
        assert {v["Value"] for v in tunnel["Phase1EncryptionAlgorithms"]} <= {e.value for e in EncryptionAlgorithm}
        assert {v["Value"] for v in tunnel["Phase2IntegrityAlgorithms"]} <= {i.value for i in IntegrityAlgorithm}
        assert min(v["Value"] for v in tunnel["Phase1DHGroupNumbers"]) >= 14
        assert tunnel["LogOptions"]["CloudWatchLogOptions"]["LogEnabled"] is True
        assert tunnel["DPDTimeoutAction"] == "restart" and tunnel["StartupAction"] == "start"


@pytest.mark.parametrize("which", ["graph", "static_graph"])
def test_requests_satisfy_botocore_shapes_including_enums(which: str, request: pytest.FixtureRequest):
    g: Graph = request.getfixturevalue(which)
    checked = _all_requests(g)
    assert {op for _, _, op, _ in checked} >= {"CreateVpnConnection", "CreateCustomerGateway", "CreateVpnGateway",
                                               "EnableVgwRoutePropagation", "CreateFlowLogs", "CreateVpcEndpoint",
                                               "CreateResolverEndpoint", "CreateLogGroup", "PutRetentionPolicy"}
    problems = [f"{name}: {v}" for name, service, op, params in checked for v in validate_request(service, op, params)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("which", ["graph", "static_graph"])
def test_requests_use_only_documented_values(which: str, request: pytest.FixtureRequest):
    g: Graph = request.getfixturevalue(which)
    problems = [f"{name} {op}: {p}" for name, service, op, params in _all_requests(g)
                for p in documented_value_violations(service, op, params)]
    assert not problems, "\n".join(problems)


def test_static_routing_requests_one_route_per_onprem_cidr(static_graph: Graph):
    ops = [(op, params) for _, _, op, params in _all_requests(static_graph) if op == "CreateVpnConnectionRoute"]
    assert sorted(p["DestinationCidrBlock"] for _, p in ops) == ["10.20.0.0/16", "192.168.50.0/24"]
    vpn = create_vpn_connection_request(static_graph.one("aws:ec2/vpnConnection:VpnConnection"))
    assert vpn["Options"]["StaticRoutesOnly"] is True


def test_tunnel_state_alarms_satisfy_put_metric_alarm(mock_run):
    """Under plain mocks TunnelIpAddress is None (no mock computes tunnel addresses): see mock_run."""
    graph = mock_run(hybrid_network)
    alarms = graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == 2
    for alarm in alarms:
        report = check_node(alarm)
        assert report.ok, report.text()
        (request,) = report.requests
        assert request.params["Namespace"] == "AWS/VPN" and request.params["MetricName"] == "TunnelState"


# --- the walkers are not vacuous: what AWS refuses, they refuse ---------------------------------------


def _tampered(graph: Graph, mutate) -> dict[str, Any]:
    params = copy.deepcopy(create_vpn_connection_request(graph.one("aws:ec2/vpnConnection:VpnConnection")))
    mutate(params)
    return params


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda p: p["Options"]["TunnelOptions"][0].update(Phase1EncryptionAlgorithms=[{"Value": "AES512"}]),
         "Phase1EncryptionAlgorithms"),
        (lambda p: p["Options"]["TunnelOptions"][1].update(IKEVersions=[{"Value": "ikev3"}]), "IKEVersions"),
        (lambda p: p["Options"]["TunnelOptions"][0].update(Phase2DHGroupNumbers=[{"Value": 13}]), "Phase2DHGroupNumbers"),
        (lambda p: p["Options"]["TunnelOptions"][0].update(DPDTimeoutAction="sometimes"), "DPDTimeoutAction"),
        (lambda p: p["Options"]["TunnelOptions"][0]["LogOptions"]["CloudWatchLogOptions"].update(LogOutputFormat="xml"),
         "LogOutputFormat"),
    ],
)
def test_documented_value_walker_rejects_values_aws_rejects(graph: Graph, mutate, where: str):
    problems = documented_value_violations("ec2", "CreateVpnConnection", _tampered(graph, mutate))
    assert len(problems) == 1 and where in problems[0], problems


def test_documented_lists_are_what_the_allow_lists_narrow():
    """Each lastmile allow-list is a subset of what EC2 documents, and the weak values AWS allows are left out."""
    tunnel = _service_model("ec2").shape_for("VpnTunnelOptionsSpecification")
    encryption = documented_values(tunnel.members["Phase1EncryptionAlgorithms"])
    integrity = documented_values(tunnel.members["Phase2IntegrityAlgorithms"])
    dh1 = documented_values(tunnel.members["Phase1DHGroupNumbers"])
    dh2 = documented_values(tunnel.members["Phase2DHGroupNumbers"])
    assert {e.value for e in EncryptionAlgorithm} < set(encryption) and "AES128" not in {e.value for e in EncryptionAlgorithm}
    assert {i.value for i in IntegrityAlgorithm} < set(integrity) and "SHA1" in integrity
    assert {str(g.value) for g in DhGroup} < set(dh1) & set(dh2) and {"2", "5"} & set(dh2)
    assert documented_values(tunnel.members["IKEVersions"]) == ["ikev1", "ikev2"]


def test_model_enum_walker_rejects_modelled_enums(graph: Graph):
    params = _tampered(graph, lambda p: p["Options"].update(TunnelInsideIpVersion="ipv5", Bogus=True))
    rules = {(v.path, str(v.rule)) for v in validate_request("ec2", "CreateVpnConnection", params)}
    assert ("$.Options.TunnelInsideIpVersion", "enum") in rules
    assert any(path.endswith("Bogus") and rule == "unknown" for path, rule in rules)


def test_unmapped_inputs_fail_instead_of_being_dropped(graph: Graph):
    node = graph.one("aws:ec2/vpnConnection:VpnConnection")
    tampered = Node(**{**node.__dict__, "inputs": {**node.inputs, "tunnel1SomethingNew": 1}})
    with pytest.raises(Unmapped):
        create_vpn_connection_request(tampered)


def test_translated_policy_documents_are_json(graph: Graph):
    for _, _, op, params in _all_requests(graph):
        if op == "CreateVpcEndpoint":
            assert json.loads(params["PolicyDocument"])["Statement"]
