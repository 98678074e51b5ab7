"""Contract check of what the network components register: tests of ``lastmile.contract_network``.

The mappings (pulumi-aws inputs -> EC2 / Route 53 Resolver / CloudWatch Logs requests) live in the
package, so ``lastmile contract --stack hybrid-prod`` checks them; these tests run that code on the
hybrid composition and prove that what AWS would refuse (a tunnel option outside its documented
values, an enum outside the model's, an input nobody mapped) fails the check, naming the Pulumi input.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from components.network.tunnel_crypto import DhGroup, EncryptionAlgorithm, IntegrityAlgorithm, VpnRouting
from lastmile.contract import COVERED_TYPES, Request, check_graph, check_node, requests_for, validate_request
from lastmile.contract_network import NETWORK_MAPPINGS, documented_value_violations, documented_values
from lastmile.contract_shapes import Rule, service_model
from lastmile.synthesis import Graph, Node, synthesize
from network_helpers import hybrid_network

VPN = "aws:ec2/vpnConnection:VpnConnection"


@pytest.fixture
def graph(mock_run) -> Graph:
    return mock_run(hybrid_network)


@pytest.fixture
def static_graph(mock_run) -> Graph:
    return mock_run(lambda: hybrid_network(routing=VpnRouting.STATIC))


def _all_requests(graph: Graph) -> list[Request]:
    return [request for node in graph.nodes.values() for request in requests_for(node)]


def _vpn_request(graph: Graph) -> dict[str, Any]:
    (request,) = requests_for(graph.one(VPN))
    return request.params


def _with_inputs(node: Node, **inputs: Any) -> Node:
    return replace(node, inputs={**node.inputs, **inputs})


def test_network_types_are_covered_by_the_package():
    assert set(NETWORK_MAPPINGS) <= set(COVERED_TYPES)


def test_every_network_resource_is_translated(graph: Graph, static_graph: Graph):
    """No network resource escapes the contract check because nobody mapped its type."""
    untranslated_ok = {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable",
                       "aws:ec2/routeTableAssociation:RouteTableAssociation",
                       "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/securityGroup:SecurityGroup",
                       "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"}
    for g in (graph, static_graph):
        types = {n.type for n in g.nodes.values() if n.custom}
        missing = {t for t in types if t not in untranslated_ok and not any(requests_for(n) for n in g.of_type(t))}
        assert not missing


def test_create_vpn_connection_request_carries_both_hardened_tunnels(graph: Graph):
    tunnels = _vpn_request(graph)["Options"]["TunnelOptions"]
    assert len(tunnels) == 2
    for tunnel in tunnels:
        assert tunnel["IKEVersions"] == [{"Value": "ikev2"}]
        assert {v["Value"] for v in tunnel["Phase1EncryptionAlgorithms"]} <= {e.value for e in EncryptionAlgorithm}
        assert {v["Value"] for v in tunnel["Phase2IntegrityAlgorithms"]} <= {i.value for i in IntegrityAlgorithm}
        assert min(v["Value"] for v in tunnel["Phase1DHGroupNumbers"]) >= 14
        assert tunnel["LogOptions"]["CloudWatchLogOptions"]["LogEnabled"] is True
        assert tunnel["DPDTimeoutAction"] == "restart" and tunnel["StartupAction"] == "start"


@pytest.mark.parametrize("which", ["graph", "static_graph"])
def test_network_requests_meet_the_contract_including_documented_values(which: str, request: pytest.FixtureRequest):
    g: Graph = request.getfixturevalue(which)
    report = check_graph(g)
    assert {r.operation for r in report.requests} >= {
        "CreateVpnConnection", "CreateCustomerGateway", "CreateVpnGateway", "AttachVpnGateway",
        "EnableVgwRoutePropagation", "CreateFlowLogs", "CreateVpcEndpoint", "CreateResolverEndpoint",
        "CreateLogGroup", "PutRetentionPolicy", "PutMetricAlarm"}
    assert report.ok, report.text()
    for r in report.requests:
        if g.nodes[r.resource].type in NETWORK_MAPPINGS:
            assert documented_value_violations(r.service, r.operation, r.params) == []


def test_committed_hybrid_stack_checks_its_network_resources():
    report = check_graph(synthesize("hybrid-prod"))
    assert report.ok, report.text()
    assert {r.operation for r in report.requests} >= {"CreateVpnConnection", "CreateResolverEndpoint", "CreateLogGroup"}


def test_static_routing_requests_one_route_per_onprem_cidr(static_graph: Graph):
    routes = [r for r in _all_requests(static_graph) if r.operation == "CreateVpnConnectionRoute"]
    assert sorted(r.params["DestinationCidrBlock"] for r in routes) == ["10.20.0.0/16", "192.168.50.0/24"]
    assert _vpn_request(static_graph)["Options"]["StaticRoutesOnly"] is True


def test_tunnel_state_alarms_satisfy_put_metric_alarm(graph: Graph):
    """Under plain mocks TunnelIpAddress is None (no mock computes tunnel addresses): see mock_run."""
    alarms = graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == 2
    for alarm in alarms:
        report = check_node(alarm)
        assert report.ok, report.text()
        (request,) = report.requests
        assert request.params["Namespace"] == "AWS/VPN" and request.params["MetricName"] == "TunnelState"


# --- what AWS refuses, the check refuses, naming the Pulumi input -------------------------------------


@pytest.mark.parametrize(
    "inputs, path, input_path",
    [
        ({"tunnel1Phase1EncryptionAlgorithms": ["AES512"]},
         "$.Options.TunnelOptions[0].Phase1EncryptionAlgorithms[0].Value", "tunnel1Phase1EncryptionAlgorithms[0]"),
        ({"tunnel2IkeVersions": ["ikev3"]}, "$.Options.TunnelOptions[1].IKEVersions[0].Value", "tunnel2IkeVersions[0]"),
        ({"tunnel1Phase2DhGroupNumbers": [13]},
         "$.Options.TunnelOptions[0].Phase2DHGroupNumbers[0].Value", "tunnel1Phase2DhGroupNumbers[0]"),
        ({"tunnel1DpdTimeoutAction": "sometimes"}, "$.Options.TunnelOptions[0].DPDTimeoutAction", "tunnel1DpdTimeoutAction"),
        ({"tunnel1LogOptions": {"cloudwatchLogOptions": {"logEnabled": True, "logOutputFormat": "xml"}}},
         "$.Options.TunnelOptions[0].LogOptions.CloudWatchLogOptions.LogOutputFormat",
         "tunnel1LogOptions.cloudwatchLogOptions.logOutputFormat"),
        ({"tunnelInsideIpVersion": "ipv5"}, "$.Options.TunnelInsideIpVersion", "tunnelInsideIpVersion"),
    ],
)
def test_tunnel_option_outside_the_allowed_values_fails(graph: Graph, inputs: dict[str, Any], path: str,
                                                        input_path: str):
    report = check_node(_with_inputs(graph.one(VPN), **inputs))
    assert not report.ok
    assert [(v.path, v.rule, v.input_path) for v in report.violations] == [(path, Rule.ENUM, input_path)], report.text()
    assert "hybrid-connection" in report.text() and input_path in report.text()


def test_documented_lists_are_what_the_allow_lists_narrow():
    """Each lastmile allow-list is a subset of what EC2 documents, and the weak values AWS allows are left out."""
    tunnel = service_model("ec2").shape_for("VpnTunnelOptionsSpecification")
    encryption = documented_values(tunnel.members["Phase1EncryptionAlgorithms"])
    integrity = documented_values(tunnel.members["Phase2IntegrityAlgorithms"])
    dh1 = documented_values(tunnel.members["Phase1DHGroupNumbers"])
    dh2 = documented_values(tunnel.members["Phase2DHGroupNumbers"])
    assert {e.value for e in EncryptionAlgorithm} < set(encryption) and "AES128" not in {e.value for e in EncryptionAlgorithm}
    assert {i.value for i in IntegrityAlgorithm} < set(integrity) and "SHA1" in integrity
    assert {str(g.value) for g in DhGroup} < set(dh1) & set(dh2) and {"2", "5"} & set(dh2)
    assert documented_values(tunnel.members["IKEVersions"]) == ["ikev1", "ikev2"]


def test_unknown_members_of_a_request_fail(graph: Graph):
    params = _vpn_request(graph)
    params["Options"]["Bogus"] = True
    rules = {(v.path, str(v.rule)) for v in validate_request("ec2", "CreateVpnConnection", params)}
    assert ("$.Options.Bogus", "unknown") in rules


@pytest.mark.parametrize("type_, key", [(VPN, "tunnel1SomethingNew"), ("aws:ec2/customerGateway:CustomerGateway", "somethingNew"),
                                        ("aws:cloudwatch/logGroup:LogGroup", "somethingNew")])
def test_unmapped_inputs_fail_instead_of_being_dropped(graph: Graph, type_: str, key: str):
    node = graph.of_type(type_)[0]
    report = check_node(_with_inputs(node, **{key: 1}))
    assert [(v.rule, v.input_path) for v in report.violations] == [(Rule.MAPPING, key)], report.text()
    assert "lastmile/contract_network.py" in report.text()


def test_translated_policy_documents_are_json(graph: Graph):
    for r in _all_requests(graph):
        if r.operation == "CreateVpcEndpoint":
            assert json.loads(r.params["PolicyDocument"])["Statement"]
