"""The VPN tunnel allow-lists: the only IKE/IPsec values lastmile lets a tunnel negotiate.

Pure (no Pulumi): ``vpn.SiteToSiteVpn`` builds tunnels from these enums and the hybrid stack
settings parse config into them, so one list decides what "hardened" means.

AWS still accepts (and by default offers) IKEv1, AES128, SHA1 and DH groups 2, 5 and 22-24
(docs/security-checklist.md §VPN). None of those is a member here, so none can be configured:
- IKE: IKEv2 only.
- Encryption (phase 1 and 2): AES256 (CBC) and AES256-GCM-16.
- Integrity (phase 1 and 2): SHA2-256, SHA2-384, SHA2-512.
- Diffie-Hellman (phase 1 and phase 2 PFS): 14-18 (MODP 2048-8192) and 19-21 (ECP 256/384/521).
  22-24 (RFC 5114 MODP with small subgroups) are left out although AWS accepts them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class IkeVersion(StrEnum):
    IKEV2 = "ikev2"


class EncryptionAlgorithm(StrEnum):
    AES256 = "AES256"
    AES256_GCM_16 = "AES256-GCM-16"


class IntegrityAlgorithm(StrEnum):
    SHA2_256 = "SHA2-256"
    SHA2_384 = "SHA2-384"
    SHA2_512 = "SHA2-512"


class DhGroup(IntEnum):
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21


class DpdTimeoutAction(StrEnum):
    """What AWS does when dead-peer detection times out. AWS's ``none`` (do nothing) is not offered."""

    RESTART = "restart"  # restart IKE: the tunnel comes back without waiting for the customer gateway
    CLEAR = "clear"  # end the IKE session: the customer gateway must re-initiate


class StartupAction(StrEnum):
    START = "start"  # AWS initiates IKE: tunnels come up without waiting for on-prem traffic
    ADD = "add"  # the customer gateway must initiate


class VpnRouting(StrEnum):
    BGP = "bgp"  # dynamic routing: on-prem prefixes are learned over BGP
    STATIC = "static"  # static_routes_only, one VpnConnectionRoute per on-prem CIDR


# The hardened profile: every tunnel gets it unless a stack narrows it further.
DEFAULT_ENCRYPTION: tuple[EncryptionAlgorithm, ...] = (EncryptionAlgorithm.AES256_GCM_16, EncryptionAlgorithm.AES256)
DEFAULT_INTEGRITY: tuple[IntegrityAlgorithm, ...] = tuple(IntegrityAlgorithm)
DEFAULT_DH_GROUPS: tuple[DhGroup, ...] = tuple(DhGroup)
DEFAULT_DPD_TIMEOUT_SECONDS = 30
MIN_DPD_TIMEOUT_SECONDS = 30  # AWS minimum
MAX_DPD_TIMEOUT_SECONDS = 3600  # lastmile bound: a peer silent for an hour is dead
DEFAULT_DPD_TIMEOUT_ACTION = DpdTimeoutAction.RESTART
DEFAULT_STARTUP_ACTION = StartupAction.START
TUNNEL_COUNT = 2  # an AWS VPN connection always has two tunnels; both are configured and watched
