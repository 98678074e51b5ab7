"""Network: the site-to-site VPN's tunnels, open ingress, VPC flow logs and private endpoints."""

from __future__ import annotations

from typing import Iterable

from policy.rules.core import (
    as_list,
    dependents,
    FLOW_LOG,
    get,
    GraphDict,
    inputs,
    K8S_NETWORK_POLICY,
    METRIC_ALARM,
    Resource,
    Rule,
    SECURITY_GROUPS,
    SG_INGRESS_RULE,
    SG_RULE,
    VPC,
    VPC_ENDPOINT,
    VPN_CONNECTION,
)


TUNNELS = ("tunnel1", "tunnel2")
VPN_ENCRYPTION = {"AES256", "AES256-GCM-16"}
VPN_INTEGRITY = {"SHA2-256", "SHA2-384", "SHA2-512"}
VPN_MIN_DH_GROUP = 14


def vpn_tunnel_crypto(r: Resource, g: GraphDict) -> Iterable[str]:
    props = inputs(r)
    for tunnel in TUNNELS:
        ike = as_list(props.get(f"{tunnel}IkeVersions"))
        if ike != ["ikev2"]:
            yield f"{tunnel} IKE versions are {ike or 'the default (ikev1 and ikev2)'}; allow only ikev2"
        for phase in ("Phase1", "Phase2"):
            encryption = set(as_list(props.get(f"{tunnel}{phase}EncryptionAlgorithms")))
            integrity = set(as_list(props.get(f"{tunnel}{phase}IntegrityAlgorithms")))
            groups = [int(n) for n in as_list(props.get(f"{tunnel}{phase}DhGroupNumbers"))]
            if not encryption or not encryption <= VPN_ENCRYPTION:
                yield (f"{tunnel} {phase.lower()} encryption is {sorted(encryption) or 'the default (includes AES128)'}; "
                       f"allow only {sorted(VPN_ENCRYPTION)}")
            if not integrity or not integrity <= VPN_INTEGRITY:
                yield (f"{tunnel} {phase.lower()} integrity is {sorted(integrity) or 'the default (includes SHA1)'}; "
                       f"allow only {sorted(VPN_INTEGRITY)}")
            if not groups or min(groups) < VPN_MIN_DH_GROUP:
                yield (f"{tunnel} {phase.lower()} DH groups are {sorted(groups) or 'the default (includes 2)'}; "
                       f"allow only groups >= {VPN_MIN_DH_GROUP}")


def vpn_tunnel_logging(r: Resource, g: GraphDict) -> Iterable[str]:
    for tunnel in TUNNELS:
        options = get(inputs(r), f"{tunnel}LogOptions.cloudwatchLogOptions") or {}
        if options.get("logEnabled") is not True or not options.get("logGroupArn"):
            yield f"{tunnel} logging is off; send tunnel logs to a KMS-encrypted log group"


def vpn_tunnel_alarms(r: Resource, g: GraphDict) -> Iterable[str]:
    alarms = [a for a in dependents(r, g, METRIC_ALARM)
              if inputs(a).get("metricName") == "TunnelState" and inputs(a).get("namespace") == "AWS/VPN"]
    if len(alarms) < len(TUNNELS):
        yield f"{len(alarms)} TunnelState alarm(s) watch this connection; add one per tunnel (AWS/VPN TunnelState)"


# ---------------------------------------------------------------------------------------------
# Network

OPEN_CIDRS = ("0.0.0.0/0", "::/0")


def no_open_ingress(r: Resource, g: GraphDict) -> Iterable[str]:
    props, type_ = inputs(r), r["type"]
    cidrs: list[str] = []
    if type_ in SECURITY_GROUPS:
        for rule in as_list(props.get("ingress")):
            cidrs += as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks"))
    elif type_ == SG_RULE and props.get("type") == "ingress":
        cidrs += as_list(props.get("cidrBlocks")) + as_list(props.get("ipv6CidrBlocks"))
    elif type_ == SG_INGRESS_RULE:
        cidrs += [props.get("cidrIpv4"), props.get("cidrIpv6")]
    elif type_ == K8S_NETWORK_POLICY:
        for rule in as_list(get(props, "spec.ingress")):
            cidrs += [get(peer, "ipBlock.cidr") for peer in as_list(rule.get("from")) if isinstance(peer, dict)]
    for cidr in sorted({c for c in cidrs if c in OPEN_CIDRS}):
        yield f"ingress from {cidr}: admit only the CIDRs or security groups that need it"


def vpc_flow_logs(r: Resource, g: GraphDict) -> Iterable[str]:
    if not dependents(r, g, FLOW_LOG):
        yield "no flow log on this VPC; add one to a KMS-encrypted log group"


def vpc_sagemaker_runtime_endpoint(r: Resource, g: GraphDict) -> Iterable[str]:
    if not any(x["type"].startswith("aws:sagemaker/") for x in g.get("resources", [])):
        return
    endpoints = [e for e in dependents(r, g, VPC_ENDPOINT) if str(inputs(e).get("serviceName", "")).endswith(".sagemaker.runtime")]
    if not endpoints:
        yield "no private sagemaker.runtime interface endpoint in this VPC; invocations would leave it"
    for endpoint in endpoints:
        if inputs(endpoint).get("vpcEndpointType") != "Interface" or inputs(endpoint).get("privateDnsEnabled") is not True:
            yield f"{endpoint['name']}: the sagemaker.runtime endpoint must be an Interface endpoint with private DNS"


# ---------------------------------------------------------------------------------------------


RULES: tuple[Rule, ...] = (
    Rule("vpn-tunnel-crypto", "docs/security-checklist.md §VPN", "both tunnels IKEv2 only, AES256 / SHA2 / DH >= 14",
         (VPN_CONNECTION,), vpn_tunnel_crypto),
    Rule("vpn-tunnel-logging", "docs/security-checklist.md §VPN", "tunnel logging on", (VPN_CONNECTION,), vpn_tunnel_logging),
    Rule("vpn-tunnel-state-alarms", "Security Hub EC2.20", "a TunnelState alarm per tunnel", (VPN_CONNECTION,),
         vpn_tunnel_alarms),
    Rule("no-open-ingress", "docs/security-checklist.md §Network", "no 0.0.0.0/0 ingress",
         (*SECURITY_GROUPS, SG_RULE, SG_INGRESS_RULE, K8S_NETWORK_POLICY), no_open_ingress),
    Rule("vpc-flow-logs", "Security Hub EC2.6", "VPC flow logs", (VPC,), vpc_flow_logs),
    Rule("vpc-sagemaker-runtime-endpoint", "docs/security-checklist.md §Network", "private sagemaker.runtime endpoint", (VPC,),
         vpc_sagemaker_runtime_endpoint),
)
