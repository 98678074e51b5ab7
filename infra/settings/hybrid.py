"""The ``lastmile:hybrid`` section: the cloud network, the site-to-site VPN and the traffic policy.

Owned by the hybrid topology. The model checks structure, types, ranges and allow-lists (the crypto
enums come from ``components/network/tunnel_crypto.py``, so config and component share one list);
``HYBRID_RULES`` judge what needs more than one field or a good fix (address plans, the customer
gateway's public address, both tunnels). Address logic is ``components/network/addressing.py``, the
same functions the component Args run.

```yaml
lastmile:hybrid:
  vpc_cidr: 10.40.0.0/16
  availability_zones: [eu-west-1a, eu-west-1b]
  onprem_cidrs: [10.20.0.0/16, 192.168.50.0/24]
  customer_gateway:
    ip_address: 203.0.113.10     # the on-prem device's PUBLIC address (this documentation one is refused)
    bgp_asn: 65010
  amazon_side_asn: 64512         # omitted: 64512
  routing: bgp                   # bgp | static; omitted: bgp
  tunnels:                       # exactly two; omitted: two tunnels with the hardened profile
    - inside_cidr: 169.254.10.0/30
    - inside_cidr: 169.254.10.4/30
      dpd_timeout_seconds: 60
      phase1_encryption_algorithms: [AES256-GCM-16]
  traffic_policy:
    primary: onprem              # onprem | sagemaker
    failover: true               # omitted: true
```
The pre-shared keys are not here: ``pulumi config set --secret lastmile:vpn_tunnel1_psk`` (and ``..2..``);
when absent AWS generates them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt

from components.network.addressing import (
    check_amazon_side_asn,
    check_availability_zones,
    check_customer_asn,
    check_customer_gateway_ip,
    check_distinct_inside_cidrs,
    check_onprem_cidrs,
    check_tunnel_inside_cidr,
    check_vpc_cidr,
    check_zones_in_region,
)
from components.network.tunnel_crypto import (
    DEFAULT_DH_GROUPS,
    DEFAULT_DPD_TIMEOUT_ACTION,
    DEFAULT_DPD_TIMEOUT_SECONDS,
    DEFAULT_ENCRYPTION,
    DEFAULT_INTEGRITY,
    DEFAULT_STARTUP_ACTION,
    MAX_DPD_TIMEOUT_SECONDS,
    MIN_DPD_TIMEOUT_SECONDS,
    TUNNEL_COUNT,
    DhGroup,
    DpdTimeoutAction,
    EncryptionAlgorithm,
    IntegrityAlgorithm,
    StartupAction,
    VpnRouting,
)
from infra.settings.common import Problem, Strict, Topology

AvailabilityZone = Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")]
DEFAULT_AMAZON_SIDE_ASN = 64512


class ServingPlane(StrEnum):
    ONPREM = "onprem"
    SAGEMAKER = "sagemaker"


class CustomerGatewaySettings(Strict):
    ip_address: str = Field(description="Public IPv4 address of the on-prem VPN device (private/reserved refused).")
    bgp_asn: StrictInt = Field(ge=1, le=4_294_967_294, description="BGP ASN of the on-prem device (needed for static too).")


class TunnelSettings(Strict):
    """One tunnel. Every omitted field gets the hardened profile; lists may only narrow the allow-list."""

    phase1_encryption_algorithms: list[EncryptionAlgorithm] = Field(
        default_factory=lambda: list(DEFAULT_ENCRYPTION), min_length=1, description="AES256, AES256-GCM-16.")
    phase2_encryption_algorithms: list[EncryptionAlgorithm] = Field(
        default_factory=lambda: list(DEFAULT_ENCRYPTION), min_length=1, description="AES256, AES256-GCM-16.")
    phase1_integrity_algorithms: list[IntegrityAlgorithm] = Field(
        default_factory=lambda: list(DEFAULT_INTEGRITY), min_length=1, description="SHA2-256, SHA2-384, SHA2-512.")
    phase2_integrity_algorithms: list[IntegrityAlgorithm] = Field(
        default_factory=lambda: list(DEFAULT_INTEGRITY), min_length=1, description="SHA2-256, SHA2-384, SHA2-512.")
    phase1_dh_group_numbers: list[DhGroup] = Field(
        default_factory=lambda: list(DEFAULT_DH_GROUPS), min_length=1, description="14-21.")
    phase2_dh_group_numbers: list[DhGroup] = Field(
        default_factory=lambda: list(DEFAULT_DH_GROUPS), min_length=1, description="14-21 (PFS is always on).")
    dpd_timeout_seconds: StrictInt = Field(default=DEFAULT_DPD_TIMEOUT_SECONDS, ge=MIN_DPD_TIMEOUT_SECONDS,
                                     le=MAX_DPD_TIMEOUT_SECONDS, description="Dead-peer detection timeout.")
    dpd_timeout_action: DpdTimeoutAction = Field(default=DEFAULT_DPD_TIMEOUT_ACTION, description="restart | clear.")
    startup_action: StartupAction = Field(default=DEFAULT_STARTUP_ACTION, description="start (AWS initiates) | add.")
    inside_cidr: str | None = Field(default=None, description="A /30 in 169.254.0.0/16. Omitted: AWS picks one.")


class TrafficPolicy(Strict):
    """Which serving plane takes traffic; exported as stack outputs for clients and the on-prem gateway."""

    primary: ServingPlane
    failover: StrictBool = Field(default=True, description="Fail over to the other plane when the primary is unhealthy.")


class HybridSettings(Strict):
    vpc_cidr: str = Field(description="Private RFC 1918 CIDR of the cloud VPC, /16-/28; must not overlap on-prem.")
    availability_zones: list[AvailabilityZone] = Field(description=">= 2 distinct zones of aws.region.")
    onprem_cidrs: list[str] = Field(
        description="Private RFC 1918 on-prem networks; disjoint from each other and from the VPC.")
    customer_gateway: CustomerGatewaySettings
    amazon_side_asn: StrictInt = Field(default=DEFAULT_AMAZON_SIDE_ASN, ge=1, le=4_294_967_294,
                                 description="Private ASN of the AWS side: 64512-65534 or 4200000000-4294967294.")
    routing: VpnRouting = Field(default=VpnRouting.BGP, description="bgp | static (one VPN route per on-prem CIDR).")
    tunnels: list[TunnelSettings] = Field(default_factory=lambda: [TunnelSettings() for _ in range(TUNNEL_COUNT)],
                                          description="Exactly two. Omitted: both with the hardened profile.")
    traffic_policy: TrafficPolicy


def _problems(found: list[Problem]) -> list[Problem]:
    """The components' checks name their own fields; in stack config they live under ``hybrid.``."""
    return [Problem(f"hybrid.{p.field}", p.value, p.message, p.fix) for p in found]


def hybrid_addressing(s) -> list[Problem]:
    """The VPC CIDR is private; each on-prem CIDR is private and overlaps neither the VPC nor another."""
    h: HybridSettings = s["hybrid"]
    return _problems(check_vpc_cidr("vpc_cidr", h.vpc_cidr)
                     + check_onprem_cidrs("onprem_cidrs", h.onprem_cidrs, h.vpc_cidr))


def hybrid_zones(s) -> list[Problem]:
    return _problems(check_availability_zones("availability_zones", s["hybrid"].availability_zones, None))


def hybrid_zones_in_region(s) -> list[Problem]:
    return _problems(check_zones_in_region("availability_zones", s["hybrid"].availability_zones, s["aws"].region))


def hybrid_gateways(s) -> list[Problem]:
    """A public customer gateway address; two different, valid ASNs when routing by BGP."""
    h: HybridSettings = s["hybrid"]
    findings = check_customer_gateway_ip("customer_gateway.ip_address", h.customer_gateway.ip_address)
    findings += check_customer_asn("customer_gateway.bgp_asn", h.customer_gateway.bgp_asn)
    findings += check_amazon_side_asn("amazon_side_asn", h.amazon_side_asn)
    if h.routing == VpnRouting.BGP and h.customer_gateway.bgp_asn == h.amazon_side_asn:
        findings.append(Problem("amazon_side_asn", h.amazon_side_asn,
                                "equals customer_gateway.bgp_asn: BGP needs two ASNs",
                                "use another private ASN for one side"))
    return _problems(findings)


def hybrid_tunnels(s) -> list[Problem]:
    """Both tunnels configured (a lone tunnel would leave the other on AWS's weak defaults); sane lists."""
    tunnels = s["hybrid"].tunnels
    if len(tunnels) != TUNNEL_COUNT:
        return [Problem("hybrid.tunnels", [t.model_dump(mode="json", exclude_defaults=True) for t in tunnels],
                        "an AWS VPN connection always has two tunnels and both must be configured, or the unconfigured "
                        "one would run AWS's defaults (IKEv1, SHA1, DH 2) and stay unwatched",
                        "list two tunnels (`tunnels: [{}, {}]` gives both the hardened profile), or omit `tunnels`")]
    findings: list[Problem] = []
    for index, tunnel in enumerate(tunnels):
        findings += check_tunnel_inside_cidr(f"tunnels.{index}.inside_cidr", tunnel.inside_cidr)
        for name in ("phase1_encryption_algorithms", "phase2_encryption_algorithms", "phase1_integrity_algorithms",
                     "phase2_integrity_algorithms", "phase1_dh_group_numbers", "phase2_dh_group_numbers"):
            values = getattr(tunnel, name)
            if len(set(values)) != len(values):
                findings.append(Problem(f"tunnels.{index}.{name}", [getattr(v, "value", v) for v in values],
                                        "lists a value twice", "remove the duplicate"))
    findings += check_distinct_inside_cidrs("tunnels", [t.inside_cidr for t in tunnels])
    return _problems(findings)


def hybrid_section_needs_hybrid_topology(s) -> list[Problem]:
    if s["topology"] == Topology.HYBRID:
        return []
    return [Problem("hybrid", "(set)",
                    f"only the hybrid topology reads lastmile:hybrid; this stack is {s['topology'].value}",
                    "remove lastmile:hybrid or set topology: hybrid")]


VPN_SECRET_KEYS = ("vpn_tunnel1_psk", "vpn_tunnel2_psk")


def vpn_keys_need_hybrid_topology(s) -> list[Problem]:
    """A VPN pre-shared key in a stack without a VPN would sit there unused (and unrotated)."""
    if s["topology"] == Topology.HYBRID:
        return []
    return [Problem(key, "[secret]", f"only the hybrid topology's VPN reads it; this stack is {s['topology'].value}",
                    f"remove it (pulumi config rm lastmile:{key}) or set topology: hybrid")
            for key in VPN_SECRET_KEYS if key in s["secret_keys"]]


# (rule, sections it reads): see infra/settings/rules.py. ``secret_keys`` holds the names of the
# secret keys that are set (never their values).
HYBRID_RULES: list = [
    (hybrid_section_needs_hybrid_topology, ("topology", "hybrid")),
    (vpn_keys_need_hybrid_topology, ("topology", "secret_keys")),
    (hybrid_addressing, ("hybrid",)),
    (hybrid_zones, ("hybrid",)),
    (hybrid_zones_in_region, ("aws", "hybrid")),
    (hybrid_gateways, ("hybrid",)),
    (hybrid_tunnels, ("hybrid",)),
]
