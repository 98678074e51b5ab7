"""Pure address, ASN and argument checks shared by the network components and the hybrid settings.

No Pulumi here: the component Args (``__post_init__``) and the stack-config rules
(``infra/settings/hybrid.py``) call the same functions, so an address is judged the same way
whether it comes from a stack file or from code.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

from components.problems import Problem

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
VPC_PREFIX_LENGTHS = range(16, 29)  # AWS: a VPC CIDR is between /16 and /28
SUBNET_MAX_PREFIX_LENGTH = 28

TUNNEL_INSIDE_RANGE = ipaddress.IPv4Network("169.254.0.0/16")
# CreateVpnConnection (botocore ec2 model, TunnelInsideCidr): these /30s are reserved by AWS.
TUNNEL_INSIDE_RESERVED = tuple(
    ipaddress.IPv4Network(n)
    for n in ("169.254.0.0/30", "169.254.1.0/30", "169.254.2.0/30", "169.254.3.0/30", "169.254.4.0/30",
              "169.254.5.0/30", "169.254.169.252/30")
)

# EC2 CreateCustomerGateway: BgpAsn 1-2147483647, BgpAsnExtended 2147483648-4294967294.
CUSTOMER_ASN_MAX = 4_294_967_294
CUSTOMER_ASN_2BYTE_FIELD_MAX = 2_147_483_647
# EC2 CreateVpnGateway AmazonSideAsn: a private 16-bit or 32-bit ASN.
AMAZON_SIDE_ASN_RANGES = ((64512, 65534), (4_200_000_000, 4_294_967_294))


def parse_network(text: Any) -> ipaddress.IPv4Network | None:
    """The IPv4 network ``text`` names exactly (no host bits set), else None."""
    try:
        return ipaddress.IPv4Network(str(text), strict=True)
    except ValueError:
        return None


def is_rfc1918(network: ipaddress.IPv4Network) -> bool:
    return any(network.subnet_of(block) for block in RFC1918)


def is_public_ipv4(text: Any) -> bool:
    """A globally routable unicast IPv4 address (not private, shared, reserved, documentation, multicast)."""
    try:
        address = ipaddress.IPv4Address(str(text))
    except ValueError:
        return False
    return address.is_global and not address.is_multicast


def overlapping_pairs(networks: Iterable[ipaddress.IPv4Network]) -> list[tuple[int, int]]:
    items = list(networks)
    return [(i, j) for i in range(len(items)) for j in range(i + 1, len(items)) if items[i].overlaps(items[j])]


def check_vpc_cidr(field: str, text: Any) -> list[Problem]:
    network = parse_network(text)
    if network is None:
        return [Problem(field, text, "not an IPv4 network in CIDR form without host bits",
                        "write it as e.g. 10.40.0.0/16")]
    problems = []
    if not is_rfc1918(network):
        problems.append(Problem(field, text, "the VPC must use a private RFC 1918 range (10/8, 172.16/12, 192.168/16)",
                                "pick a free private range such as 10.40.0.0/16"))
    if network.prefixlen not in VPC_PREFIX_LENGTHS:
        problems.append(Problem(field, text, "AWS allows VPC prefix lengths /16 to /28",
                                "use a prefix length in /16-/28"))
    return problems


def check_onprem_cidrs(field: str, cidrs: Iterable[Any], vpc_cidr: Any) -> list[Problem]:
    """Each on-prem CIDR is private RFC 1918 and overlaps neither the VPC nor another on-prem CIDR."""
    cidrs = list(cidrs)
    problems: list[Problem] = []
    if not cidrs:
        return [Problem(field, cidrs, "at least one on-prem CIDR is needed (routes, security groups, DNS)",
                        "list the on-prem networks that reach the VPC, e.g. [10.20.0.0/16]")]
    vpc = parse_network(vpc_cidr)
    parsed: list[tuple[int, ipaddress.IPv4Network]] = []
    for index, text in enumerate(cidrs):
        network = parse_network(text)
        item = f"{field}.{index}"
        if network is None:
            problems.append(Problem(item, text, "not an IPv4 network in CIDR form without host bits",
                                    "write it as e.g. 10.20.0.0/16"))
            continue
        if not is_rfc1918(network):
            problems.append(Problem(item, text, "on-prem networks reach the VPC only over the VPN and must be private "
                                    "RFC 1918 ranges (10/8, 172.16/12, 192.168/16); a public range would route "
                                    "internet-bound traffic into the tunnel", "list the private on-prem range instead"))
            continue  # one problem per entry: overlaps are judged among private ranges
        parsed.append((index, network))
        if vpc is not None and network.overlaps(vpc):
            problems.append(Problem(item, text,
                                    f"overlaps the VPC CIDR {vpc}: routes to one side would shadow the other",
                                    "renumber: pick a VPC CIDR or on-prem range that does not overlap"))
    for i, j in overlapping_pairs(n for _, n in parsed):
        (first, a), (second, b) = parsed[i], parsed[j]
        problems.append(Problem(f"{field}.{second}", str(b), f"overlaps {field}.{first} ({a})",
                                "merge the two into one CIDR or remove the duplicate"))
    return problems


def check_customer_gateway_ip(field: str, text: Any) -> list[Problem]:
    if is_public_ipv4(text):
        return []
    return [Problem(field, text, "the customer gateway needs the on-prem device's public, internet-routable IPv4 "
                    "address; private, shared (100.64/10), loopback, link-local, documentation, multicast and "
                    "reserved addresses are refused",
                    "use the public address of the on-prem VPN device's outside interface")]


def check_customer_asn(field: str, asn: Any) -> list[Problem]:
    if isinstance(asn, int) and not isinstance(asn, bool) and 1 <= asn <= CUSTOMER_ASN_MAX:
        return []
    return [Problem(field, asn, f"a BGP ASN is an integer 1-{CUSTOMER_ASN_MAX}",
                    "use the on-prem router's ASN, e.g. 65010")]


def check_amazon_side_asn(field: str, asn: Any) -> list[Problem]:
    if isinstance(asn, int) and not isinstance(asn, bool) and any(lo <= asn <= hi for lo, hi in AMAZON_SIDE_ASN_RANGES):
        return []
    allowed = " or ".join(f"{lo}-{hi}" for lo, hi in AMAZON_SIDE_ASN_RANGES)
    return [Problem(field, asn, f"the Amazon-side ASN must be a private ASN in {allowed}", "use e.g. 64512")]


def check_tunnel_inside_cidr(field: str, text: Any) -> list[Problem]:
    """An optional tunnel inside CIDR: a /30 in 169.254.0.0/16 that AWS does not reserve."""
    if text is None:
        return []
    network = parse_network(text)
    if network is None or network.prefixlen != 30 or not network.subnet_of(TUNNEL_INSIDE_RANGE):
        return [Problem(field, text, "a tunnel inside CIDR is a /30 in 169.254.0.0/16",
                        "use e.g. 169.254.10.0/30, or omit it and AWS picks one")]
    if network in TUNNEL_INSIDE_RESERVED:
        return [Problem(field, text, f"reserved by AWS: {', '.join(map(str, TUNNEL_INSIDE_RESERVED))}",
                        "pick another /30 in 169.254.0.0/16")]
    return []


def check_distinct_inside_cidrs(field: str, cidrs: list[Any]) -> list[Problem]:
    """The tunnels of one connection need different inside CIDRs (field: ``<field>.<index>.inside_cidr``)."""
    seen: dict[Any, int] = {}
    problems = []
    for index, text in enumerate(cidrs):
        network = parse_network(text) if text is not None else None
        if network is None:
            continue
        if network in seen:
            problems.append(Problem(f"{field}.{index}.inside_cidr", text,
                                    f"the same inside CIDR as {field}.{seen[network]}", "give each tunnel its own /30"))
        seen.setdefault(network, index)
    return problems


def check_availability_zones(field: str, zones: Iterable[Any], region: str | None) -> list[Problem]:
    """At least 2 distinct zones; when ``region`` is given, every zone belongs to it."""
    zones = list(zones)
    problems: list[Problem] = []
    if len(set(zones)) < 2 or len(set(zones)) != len(zones):
        problems.append(Problem(field, zones, "needs at least 2 distinct availability zones (SageMaker.5, CKV_AWS_370)",
                                "list two or more different zones of the region, e.g. [eu-west-1a, eu-west-1b]"))
    if region is not None:
        problems += check_zones_in_region(field, zones, region)
    return problems


def check_zones_in_region(field: str, zones: Iterable[Any], region: str) -> list[Problem]:
    foreign = [z for z in zones if not (isinstance(z, str) and z.startswith(region) and len(z) == len(region) + 1)]
    if not foreign:
        return []
    return [Problem(field, foreign, f"not zones of the stack's region {region}",
                    f"use zones named {region}a, {region}b, ...")]


def check_region(field: str, region: Any) -> list[Problem]:
    if isinstance(region, str) and _REGION.match(region):
        return []
    return [Problem(field, region, "not an AWS region name", "use e.g. eu-west-1")]


def check_account_id(field: str, account_id: Any) -> list[Problem]:
    if isinstance(account_id, str) and account_id.isdigit() and len(account_id) == 12:
        return []
    return [Problem(field, account_id, "an AWS account id is 12 digits", "pass it as a string, e.g. '123456789012'")]


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def cidr_slug(cidr: str) -> str:
    """A CIDR as a logical-name fragment: ``10.20.0.0/16`` -> ``10-20-0-0-16``."""
    return str(cidr).replace(".", "-").replace("/", "-")
