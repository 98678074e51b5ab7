"""Valid Args of the network components and the hybrid composition, shared by the network tests."""

from __future__ import annotations

from typing import Any

from components.network.private_access import PrivateServiceAccess, PrivateServiceAccessArgs
from components.network.vpc import PrivateNetwork, PrivateNetworkArgs
from components.network.vpn import SiteToSiteVpn, SiteToSiteVpnArgs, TunnelOptions, VpnRouting
from lastmile.synthesis import MOCK_ACCOUNT_ID, MOCK_REGION

KMS_KEY_ARN = f"arn:aws:kms:{MOCK_REGION}:{MOCK_ACCOUNT_ID}:key/0a1b2c3d-0000-4000-8000-000000000001"
VPC_CIDR = "10.40.0.0/16"
ONPREM_CIDRS = ("10.20.0.0/16", "192.168.50.0/24")
ZONES = (f"{MOCK_REGION}a", f"{MOCK_REGION}b")
CGW_IP = "93.184.216.34"


def network_args(**overrides: Any) -> PrivateNetworkArgs:
    values = dict(cidr=VPC_CIDR, availability_zones=ZONES, region=MOCK_REGION, account_id=MOCK_ACCOUNT_ID,
                  flow_log_kms_key_arn=KMS_KEY_ARN, protect_state=True)
    return PrivateNetworkArgs(**{**values, **overrides})


def vpn_args(**overrides: Any) -> SiteToSiteVpnArgs:
    values = dict(vpc_id="vpc-0123456789abcdef0", route_table_ids=("rtb-0a", "rtb-0b"), customer_gateway_ip_address=CGW_IP,
                  customer_gateway_bgp_asn=65010, amazon_side_asn=64512, routing=VpnRouting.BGP, onprem_cidrs=ONPREM_CIDRS,
                  tunnels=(TunnelOptions(inside_cidr="169.254.10.0/30"), TunnelOptions(inside_cidr="169.254.10.4/30")),
                  log_kms_key_arn=KMS_KEY_ARN, protect_state=True)
    return SiteToSiteVpnArgs(**{**values, **overrides})


def access_args(**overrides: Any) -> PrivateServiceAccessArgs:
    values = dict(vpc_id="vpc-0123456789abcdef0", vpc_cidr=VPC_CIDR, region=MOCK_REGION, account_id=MOCK_ACCOUNT_ID,
                  subnet_ids=("subnet-0a", "subnet-0b"), route_table_ids=("rtb-0a", "rtb-0b"), onprem_cidrs=ONPREM_CIDRS)
    return PrivateServiceAccessArgs(**{**values, **overrides})


def hybrid_network(protect_state: bool = True, routing: VpnRouting = VpnRouting.BGP,
                   tunnels: tuple[TunnelOptions, ...] | None = None) -> dict[str, Any]:
    """The three components composed as the hybrid builder will: the network feeds the other two."""
    network = PrivateNetwork("hybrid", network_args(protect_state=protect_state))
    vpn = SiteToSiteVpn("hybrid", vpn_args(vpc_id=network.vpc_id, route_table_ids=network.route_table_ids,
                                           routing=routing, protect_state=protect_state,
                                           **({"tunnels": tunnels} if tunnels else {})))
    access = PrivateServiceAccess("hybrid", access_args(vpc_id=network.vpc_id, subnet_ids=network.subnet_ids,
                                                        route_table_ids=network.route_table_ids))
    return {
        "vpc_id": network.vpc_id, "subnet_ids": network.subnet_ids, "route_table_ids": network.route_table_ids,
        "cidr": network.cidr, "vpn_connection_id": vpn.vpn_connection_id, "tunnel_addresses": vpn.tunnel_addresses,
        "alarm_names": vpn.alarm_names, "endpoint_ids": access.endpoint_ids,
        "resolver_inbound_ips": access.resolver_inbound_ips, "endpoints_security_group_id": access.security_group_id,
    }
