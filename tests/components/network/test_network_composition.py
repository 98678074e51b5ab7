"""The three network components composed as the hybrid builder will: the security checklist (docs/security-checklist.md) over the whole graph."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.network.tunnel_crypto import VpnRouting
from components.network.vpn import TunnelOptions
from lastmile.synthesis import SECRET_MASK, Graph
from network_helpers import hybrid_network

COMPONENTS = {"lastmile:network:PrivateNetwork", "lastmile:network:SiteToSiteVpn", "lastmile:network:PrivateServiceAccess"}
OPEN = {"0.0.0.0/0", "::/0"}
PSKS = ("Composed_Key.One1", "Composed_Key.Two2")


def _ingress_sources(graph: Graph) -> list[tuple[str, str]]:
    """(resource, source CIDR) for every ingress the graph declares, in any of the ways AWS has."""
    found = []
    for node in graph.nodes.values():
        if node.type in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
            for rule in node.inputs.get("ingress") or []:
                found += [(node.name, c) for c in (rule.get("cidrBlocks") or []) + (rule.get("ipv6CidrBlocks") or [])]
        elif node.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
            found += [(node.name, node.inputs.get(k)) for k in ("cidrIpv4", "cidrIpv6") if node.inputs.get(k)]
        elif node.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and node.inputs.get("type") == "ingress":
            found += [(node.name, c) for c in node.inputs.get("cidrBlocks") or []]
        elif node.type == "aws:ec2/networkAclRule:NetworkAclRule" and not node.inputs.get("egress"):
            found.append((node.name, node.inputs.get("cidrBlock")))
    return found


@pytest.fixture
def graph(mock_run) -> Graph:
    def program():
        tunnels = tuple(TunnelOptions(preshared_key=pulumi.Output.secret(k)) for k in PSKS)
        return hybrid_network(tunnels=tunnels)

    return mock_run(program)


def test_no_ingress_from_anywhere(graph: Graph):
    sources = _ingress_sources(graph)
    assert sources, "the check must see the security groups it guards"
    assert not [s for s in sources if s[1] in OPEN]


def test_no_internet_gateway_or_public_address(graph: Graph):
    assert not [n for n in graph.nodes.values()
                if n.type.split(":")[-1] in ("InternetGateway", "EgressOnlyInternetGateway", "NatGateway", "Eip")]
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in graph.of_type("aws:ec2/subnet:Subnet"))


def test_every_log_group_is_kms_encrypted_with_retention_and_protected(graph: Graph):
    groups = graph.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert {g.name for g in groups} == {"hybrid-flow-logs", "hybrid-tunnel-logs"}
    for group in groups:
        assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:") and group.inputs["retentionInDays"] >= 365
        assert group.protect and group.retain_on_delete


def test_vpn_connection_protected_and_nothing_else_needlessly(graph: Graph):
    protected = sorted(n.type for n in graph.nodes.values() if n.protect)
    assert protected == ["aws:cloudwatch/logGroup:LogGroup", "aws:cloudwatch/logGroup:LogGroup",
                         "aws:ec2/vpnConnection:VpnConnection"]


def test_nothing_protected_outside_production(mock_run):
    graph = mock_run(lambda: hybrid_network(protect_state=False))
    assert not [n.name for n in graph.nodes.values() if n.protect or n.retain_on_delete]


def test_vpn_routes_reach_the_private_route_tables(graph: Graph):
    tables = {t.urn for t in graph.of_type("aws:ec2/routeTable:RouteTable")}
    propagations = graph.of_type("aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation")
    assert len(propagations) == len(tables) == 2
    assert all(tables & set(p.depends_on) for p in propagations)


def test_private_dns_on_every_interface_endpoint(graph: Graph):
    interface = [n for n in graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if n.inputs["vpcEndpointType"] == "Interface"]
    assert len(interface) == 6 and all(n.inputs["privateDnsEnabled"] is True for n in interface)


def test_preshared_keys_never_in_plaintext(graph: Graph):
    dumped = graph.dumps()
    assert not [k for k in PSKS if k in dumped]
    connection = graph.one("aws:ec2/vpnConnection:VpnConnection")
    assert connection.inputs["tunnel1PresharedKey"] == connection.inputs["tunnel2PresharedKey"] == SECRET_MASK
    assert SECRET_MASK not in json.dumps(graph.outputs) and not [k for k in PSKS if k in json.dumps(graph.outputs)]


def test_every_resource_belongs_to_a_network_component(graph: Graph):
    component_urns = {n.urn for n in graph.nodes.values() if n.type in COMPONENTS}
    assert len(component_urns) == 3
    assert all(n.parent in component_urns for n in graph.nodes.values() if n.custom)


def test_static_routing_composes_too(mock_run):
    graph = mock_run(lambda: hybrid_network(routing=VpnRouting.STATIC))
    assert len(graph.of_type("aws:ec2/vpnConnectionRoute:VpnConnectionRoute")) == 2


def test_network_graph_meets_every_policy_rule(graph: Graph):
    """The repository's policy rules (policy/rules/: docs/security-checklist.md as checks) find nothing to fault."""
    from policy.rules import evaluate

    document = {**graph.to_json(), "environment": "prod"}
    assert [f.render() for f in evaluate(document)] == []
    vpn = next(r for r in document["resources"] if r["type"] == "aws:ec2/vpnConnection:VpnConnection")
    vpn["inputs"]["tunnel2IkeVersions"] = ["ikev1", "ikev2"]  # the rules see what they guard
    assert {f.rule for f in evaluate(document)} == {"vpn-tunnel-crypto"}
