"""SiteToSiteVpn under recording mocks: docs/security-checklist.md §VPN items asserted on the graph."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.problems import ArgsError
from components.network.tunnel_crypto import (
    DhGroup,
    DpdTimeoutAction,
    EncryptionAlgorithm,
    IntegrityAlgorithm,
    StartupAction,
    VpnRouting,
)
from components.network.vpn import SiteToSiteVpn, TunnelOptions
from lastmile.synthesis import SECRET_MASK, Graph
from lastmile.synthesis import MOCK_TUNNEL_ADDRESSES as TUNNEL_ADDRESSES
from network_helpers import CGW_IP, KMS_KEY_ARN, ONPREM_CIDRS, vpn_args

CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PSK_1 = "Tunnel1_Secret.Key9"
PSK_2 = "Tunnel2_Secret.Key8"
ALLOWED = {
    "EncryptionAlgorithms": {e.value for e in EncryptionAlgorithm},
    "IntegrityAlgorithms": {i.value for i in IntegrityAlgorithm},
    "DhGroupNumbers": {int(g) for g in DhGroup},
}


def _vpn(run, **overrides) -> Graph:
    def program():
        vpn = SiteToSiteVpn("site", vpn_args(**overrides))
        return {"vpn_connection_id": vpn.vpn_connection_id, "tunnel_addresses": vpn.tunnel_addresses,
                "alarm_names": vpn.alarm_names}

    return run(program)


def _with_psks(run, second_secret: bool = True) -> Graph:
    """PSK 1 as a secret Output; PSK 2 as an Output that nobody marked secret (the component must)."""

    def program():
        second = pulumi.Output.secret(PSK_2) if second_secret else pulumi.Output.from_input(PSK_2)
        tunnels = (TunnelOptions(preshared_key=pulumi.Output.secret(PSK_1)), TunnelOptions(preshared_key=second))
        vpn = SiteToSiteVpn("site", vpn_args(tunnels=tunnels))
        return {"vpn_connection_id": vpn.vpn_connection_id, "tunnel_addresses": vpn.tunnel_addresses,
                "alarm_names": vpn.alarm_names}

    return run(program)


@pytest.mark.parametrize("tunnel", [1, 2])
def test_both_tunnels_are_configured_explicitly(mock_run, tunnel: int):
    inputs = _vpn(mock_run).one(CONNECTION).inputs
    prefix = f"tunnel{tunnel}"
    for option in ("IkeVersions", "Phase1EncryptionAlgorithms", "Phase2EncryptionAlgorithms", "Phase1IntegrityAlgorithms",
                   "Phase2IntegrityAlgorithms", "Phase1DhGroupNumbers", "Phase2DhGroupNumbers", "DpdTimeoutAction",
                   "DpdTimeoutSeconds", "StartupAction", "LogOptions", "InsideCidr"):
        assert inputs.get(prefix + option) not in (None, []), f"{prefix}{option} left to AWS's defaults"


@pytest.mark.parametrize("tunnel", [1, 2])
def test_tunnels_negotiate_only_ikev2_aes256_sha2_and_dh_14_or_more(mock_run, tunnel: int):
    inputs = _vpn(mock_run).one(CONNECTION).inputs
    prefix = f"tunnel{tunnel}"
    assert inputs[f"{prefix}IkeVersions"] == ["ikev2"]
    for phase in (1, 2):
        for kind, allowed in ALLOWED.items():
            values = inputs[f"{prefix}Phase{phase}{kind}"]
            assert values and set(values) <= allowed, (phase, kind, values)
        assert min(inputs[f"{prefix}Phase{phase}DhGroupNumbers"]) >= 14
    assert inputs[f"{prefix}DpdTimeoutAction"] == "restart" and inputs[f"{prefix}DpdTimeoutSeconds"] == 30
    assert inputs[f"{prefix}StartupAction"] == "start"


def test_no_weak_value_anywhere_in_the_connection(mock_run):
    text = json.dumps(_vpn(mock_run).one(CONNECTION).inputs)
    for weak in ('"ikev1"', '"SHA1"', '"AES128"', '"AES128-GCM-16"'):
        assert weak not in text


def test_narrowed_profile_reaches_the_graph(mock_run):
    narrow = TunnelOptions(phase1_encryption_algorithms=(EncryptionAlgorithm.AES256_GCM_16,),
                           phase1_integrity_algorithms=(IntegrityAlgorithm.SHA2_512,),
                           phase1_dh_group_numbers=(DhGroup.ECP_384,), dpd_timeout_seconds=45,
                           dpd_timeout_action=DpdTimeoutAction.CLEAR, startup_action=StartupAction.ADD)
    inputs = _vpn(mock_run, tunnels=(narrow, narrow)).one(CONNECTION).inputs
    assert inputs["tunnel2Phase1EncryptionAlgorithms"] == ["AES256-GCM-16"]
    assert inputs["tunnel2Phase1IntegrityAlgorithms"] == ["SHA2-512"]
    assert inputs["tunnel2Phase1DhGroupNumbers"] == [20]
    assert (inputs["tunnel1DpdTimeoutSeconds"], inputs["tunnel1DpdTimeoutAction"], inputs["tunnel1StartupAction"]) == (
        45, "clear", "add")


def test_tunnel_logging_is_on_to_a_kms_log_group(mock_run):
    graph = _vpn(mock_run)
    log_group = graph.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["kmsKeyId"] == KMS_KEY_ARN and log_group.inputs["retentionInDays"] == 365
    connection = graph.one(CONNECTION)
    assert log_group.urn in connection.depends_on
    for tunnel in (1, 2):
        options = connection.inputs[f"tunnel{tunnel}LogOptions"]["cloudwatchLogOptions"]
        assert options["logEnabled"] is True
        assert "site-tunnel-logs" in options["logGroupArn"]
        assert options["logOutputFormat"] == "json"


def test_a_tunnel_state_alarm_watches_each_tunnel(mock_run):
    graph = _vpn(mock_run)
    connection_id = graph.outputs["vpn_connection_id"]
    alarms = sorted(graph.of_type(ALARM), key=lambda n: n.name)
    assert [a.name for a in alarms] == ["site-tunnel1-state", "site-tunnel2-state"]
    for alarm, address in zip(alarms, TUNNEL_ADDRESSES):
        assert alarm.inputs["namespace"] == "AWS/VPN" and alarm.inputs["metricName"] == "TunnelState"
        assert alarm.inputs["dimensions"] == {"VpnId": connection_id, "TunnelIpAddress": address}
        assert alarm.inputs["comparisonOperator"] == "LessThanThreshold" and alarm.inputs["threshold"] == 1
        assert alarm.inputs["treatMissingData"] == "breaching"
    assert graph.outputs["tunnel_addresses"] == list(TUNNEL_ADDRESSES)
    first, second = graph.outputs["alarm_names"]  # auto-named from the logical names
    assert first.startswith("site-tunnel1-state-") and second.startswith("site-tunnel2-state-")


def test_alarm_actions_are_passed_through(mock_run):
    topic = "arn:aws:sns:eu-west-1:111111111111:vpn-alerts"
    for alarm in _vpn(mock_run, alarm_action_arns=(topic,)).of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [topic] and alarm.inputs["okActions"] == [topic]


@pytest.mark.parametrize("second_secret", [True, False])
def test_preshared_keys_are_secret_and_never_plaintext(mock_run, second_secret: bool):
    graph = _with_psks(mock_run, second_secret)
    connection = graph.one(CONNECTION)
    assert connection.inputs["tunnel1PresharedKey"] == SECRET_MASK
    assert connection.inputs["tunnel2PresharedKey"] == SECRET_MASK
    assert {"tunnel1PresharedKey", "tunnel2PresharedKey", "customerGatewayConfiguration"} <= set(
        connection.additional_secret_outputs)
    dumped = graph.dumps()
    assert PSK_1 not in dumped and PSK_2 not in dumped
    assert SECRET_MASK not in json.dumps(graph.outputs)  # the exported values are not secrets at all
    assert PSK_1 not in json.dumps(graph.outputs) and PSK_2 not in json.dumps(graph.outputs)


def test_without_keys_aws_generates_them_and_they_stay_secret(mock_run):
    connection = _vpn(mock_run).one(CONNECTION)
    assert "tunnel1PresharedKey" not in connection.inputs and "tunnel2PresharedKey" not in connection.inputs
    assert {"tunnel1PresharedKey", "tunnel2PresharedKey", "customerGatewayConfiguration"} <= set(
        connection.additional_secret_outputs)


def test_outputs_are_not_secret_and_are_only_the_public_facts(mock_run):
    """Secret outputs would hide the tunnel addresses on-prem needs; only addresses/ids/names are exported."""
    graph = _with_psks(mock_run)
    assert set(graph.outputs) == {"vpn_connection_id", "tunnel_addresses", "alarm_names"}
    assert SECRET_MASK not in json.dumps(graph.outputs)


def test_plain_string_key_is_refused_without_echoing_it():
    with pytest.raises(ArgsError) as caught:
        TunnelOptions(preshared_key=PSK_1)  # type: ignore[arg-type]
    assert "preshared_key" in {f.field for f in caught.value.problems}
    assert PSK_1 not in str(caught.value)


def test_a_key_ec2_would_refuse_fails_the_run_without_echoing_it(mock_run):
    bad = "0_starts_with_zero"

    def program():
        tunnels = (TunnelOptions(preshared_key=pulumi.Output.secret(bad)), TunnelOptions())
        SiteToSiteVpn("site", vpn_args(tunnels=tunnels))

    with pytest.raises(Exception) as caught:
        mock_run(program)
    assert "pre-shared key" in str(caught.value) and bad not in str(caught.value)


def test_gateways(mock_run):
    graph = _vpn(mock_run)
    customer = graph.one("aws:ec2/customerGateway:CustomerGateway").inputs
    assert customer == {"bgpAsn": "65010", "ipAddress": CGW_IP, "type": "ipsec.1"}
    gateway = graph.one("aws:ec2/vpnGateway:VpnGateway").inputs
    assert gateway == {"amazonSideAsn": "64512", "vpcId": "vpc-0123456789abcdef0"}
    connection = graph.one(CONNECTION).inputs
    assert connection["type"] == "ipsec.1" and connection["vpnGatewayId"] and connection["customerGatewayId"]
    assert "transitGatewayId" not in connection


def test_four_byte_customer_asn_uses_the_extended_field(mock_run):
    customer = _vpn(mock_run, customer_gateway_bgp_asn=4_200_000_001).one("aws:ec2/customerGateway:CustomerGateway")
    assert customer.inputs["bgpAsnExtended"] == "4200000001" and "bgpAsn" not in customer.inputs


def test_bgp_routing_propagates_and_adds_no_static_routes(mock_run):
    graph = _vpn(mock_run)
    assert graph.one(CONNECTION).inputs["staticRoutesOnly"] is False
    assert graph.of_type("aws:ec2/vpnConnectionRoute:VpnConnectionRoute") == []
    propagations = graph.of_type("aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation")
    assert sorted(p.inputs["routeTableId"] for p in propagations) == ["rtb-0a", "rtb-0b"]


def test_static_routing_adds_one_route_per_onprem_cidr(mock_run):
    graph = _vpn(mock_run, routing=VpnRouting.STATIC)
    assert graph.one(CONNECTION).inputs["staticRoutesOnly"] is True
    routes = graph.of_type("aws:ec2/vpnConnectionRoute:VpnConnectionRoute")
    assert sorted(r.inputs["destinationCidrBlock"] for r in routes) == sorted(ONPREM_CIDRS)
    assert {r.name for r in routes} == {"site-route-10-20-0-0-16", "site-route-192-168-50-0-24"}
    assert len(graph.of_type("aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation")) == 2


@pytest.mark.parametrize("protect_state", [True, False])
def test_vpn_connection_and_log_group_protected_in_production(mock_run, protect_state: bool):
    graph = _vpn(mock_run, protect_state=protect_state)
    assert graph.one(CONNECTION).protect is protect_state
    log_group = graph.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.protect is protect_state and log_group.retain_on_delete is protect_state
    assert not any(n.protect for n in graph.nodes.values() if n.type not in (CONNECTION, log_group.type))


def test_children_parented_and_stateful_urns_pinned(mock_run):
    graph = _vpn(mock_run)
    component = graph.one("lastmile:network:SiteToSiteVpn")
    assert all(n.parent == component.urn for n in graph.nodes.values() if n.custom)
    base = "urn:pulumi:test::lastmile::lastmile:network:SiteToSiteVpn$"
    assert graph.one(CONNECTION).urn == base + "aws:ec2/vpnConnection:VpnConnection::site-connection"
    assert graph.one("aws:cloudwatch/logGroup:LogGroup").urn == base + "aws:cloudwatch/logGroup:LogGroup::site-tunnel-logs"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"tunnels": (TunnelOptions(),)}, "tunnels"),
        ({"tunnels": (TunnelOptions(), TunnelOptions(), TunnelOptions())}, "tunnels"),
        ({"tunnels": ()}, "tunnels"),
        ({"tunnels": (TunnelOptions(inside_cidr="169.254.10.0/30"), TunnelOptions(inside_cidr="169.254.10.0/30"))},
         "tunnels.1.inside_cidr"),
        ({"customer_gateway_ip_address": "10.1.2.3"}, "customer_gateway_ip_address"),
        ({"customer_gateway_ip_address": "100.64.0.1"}, "customer_gateway_ip_address"),  # carrier-grade NAT
        ({"customer_gateway_ip_address": "203.0.113.10"}, "customer_gateway_ip_address"),  # documentation
        ({"customer_gateway_ip_address": "not-an-ip"}, "customer_gateway_ip_address"),
        ({"customer_gateway_bgp_asn": 0}, "customer_gateway_bgp_asn"),
        ({"amazon_side_asn": 65010}, "amazon_side_asn"),  # equals the on-prem ASN under BGP
        ({"amazon_side_asn": 100}, "amazon_side_asn"),
        ({"onprem_cidrs": ("8.8.8.0/24",)}, "onprem_cidrs.0"),
        ({"onprem_cidrs": ("10.20.0.0/16", "10.20.5.0/24")}, "onprem_cidrs.1"),
        ({"onprem_cidrs": ()}, "onprem_cidrs"),
        ({"route_table_ids": ()}, "route_table_ids"),
        ({"routing": "bgp"}, "routing"),
        ({"log_kms_key_arn": "alias/vpn"}, "log_kms_key_arn"),
        ({"log_retention_days": 10}, "log_retention_days"),
    ],
)
def test_invalid_vpn_args_name_field_value_and_fix(overrides: dict, field: str):
    with pytest.raises(ArgsError) as caught:
        vpn_args(**overrides)
    assert field in {f.field for f in caught.value.problems}, caught.value
    assert all(f.fix for f in caught.value.problems)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"phase1_encryption_algorithms": ("AES128",)}, "phase1_encryption_algorithms"),  # a free string
        ({"phase2_encryption_algorithms": ("AES256",)}, "phase2_encryption_algorithms"),  # right text, not the enum
        ({"phase1_integrity_algorithms": ("SHA1",)}, "phase1_integrity_algorithms"),
        ({"phase1_dh_group_numbers": (2,)}, "phase1_dh_group_numbers"),
        ({"phase2_dh_group_numbers": (DhGroup.MODP_2048, 5)}, "phase2_dh_group_numbers"),
        ({"phase2_dh_group_numbers": ()}, "phase2_dh_group_numbers"),
        ({"phase1_dh_group_numbers": (DhGroup.ECP_256, DhGroup.ECP_256)}, "phase1_dh_group_numbers"),
        ({"dpd_timeout_seconds": 10}, "dpd_timeout_seconds"),
        ({"dpd_timeout_action": "none"}, "dpd_timeout_action"),
        ({"startup_action": "start"}, "startup_action"),
        ({"inside_cidr": "169.254.0.0/30"}, "inside_cidr"),  # reserved by AWS
        ({"inside_cidr": "10.0.0.0/30"}, "inside_cidr"),
        ({"inside_cidr": "169.254.10.0/29"}, "inside_cidr"),
    ],
)
def test_crypto_outside_the_allow_list_is_refused(overrides: dict, field: str):
    with pytest.raises(ArgsError) as caught:
        TunnelOptions(**overrides)
    assert field in {f.field for f in caught.value.problems}, caught.value


def test_the_allow_lists_hold_no_weak_value():
    assert {e.value for e in EncryptionAlgorithm} == {"AES256", "AES256-GCM-16"}
    assert {i.value for i in IntegrityAlgorithm} == {"SHA2-256", "SHA2-384", "SHA2-512"}
    assert sorted(int(g) for g in DhGroup) == list(range(14, 22))
    assert "none" not in {a.value for a in DpdTimeoutAction}
