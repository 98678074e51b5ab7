"""Contract check of the network resources: pulumi-aws inputs -> EC2 / Route 53 Resolver / CloudWatch Logs requests.

:mod:`lastmile.contract` translates SageMaker, autoscaling and alarm inputs with a shape-guided,
case-insensitive translator. The network resources need explicit mappings instead (tunnel options
flattened into ``tunnel1*``/``tunnel2*`` inputs, ids renamed, calls the provider makes on its own), so
they are listed here per type and registered in :data:`NETWORK_MAPPINGS`, which
:func:`lastmile.contract.check_node` consults next to its own mappings:

==============================================================  ==================================================
Pulumi resource type                                            API requests
==============================================================  ==================================================
``aws:ec2/vpnConnection:VpnConnection``                         ec2 CreateVpnConnection (``Options.TunnelOptions``)
``aws:ec2/customerGateway:CustomerGateway``                     ec2 CreateCustomerGateway
``aws:ec2/vpnGateway:VpnGateway``                               ec2 CreateVpnGateway, AttachVpnGateway
``aws:ec2/vpnConnectionRoute:VpnConnectionRoute``               ec2 CreateVpnConnectionRoute
``aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation``  ec2 EnableVgwRoutePropagation
``aws:ec2/flowLog:FlowLog``                                     ec2 CreateFlowLogs
``aws:ec2/vpcEndpoint:VpcEndpoint``                             ec2 CreateVpcEndpoint
``aws:route53/resolverEndpoint:ResolverEndpoint``               route53resolver CreateResolverEndpoint
``aws:cloudwatch/logGroup:LogGroup``                            logs CreateLogGroup, PutRetentionPolicy
==============================================================  ==================================================

An input with no mapping is a ``mapping`` violation, never silently dropped. Masked secrets,
unknowns and resource references are reported as skipped checks, as in :mod:`lastmile.contract`.

EC2 models the tunnel crypto members as plain strings and integers: their allowed values exist only
in the member documentation ("Valid values: AES128 | AES256 | ..."). :func:`documented_value_violations`
parses those lists from the same botocore model and reports every value outside them as an ``enum``
violation, so the enum check is not vacuous where the model has no ``enum``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from botocore.model import Shape

from lastmile.contract_shapes import Rule, Violation, operation_model
from lastmile.synthesis import SECRET_MASK, Node, physical_name

__all__ = ["NETWORK_MAPPINGS", "NetworkTranslation", "documented_value_violations", "documented_values",
           "network_translations", "opaque_reason"]

OPAQUE_STRINGS = {SECRET_MASK: "a secret (masked by the synthesis)", "[unknown]": "unknown until apply"}  # pragma: allowlist secret


def opaque_reason(value: Any) -> str | None:
    """Why ``value`` cannot be checked offline (a masked secret, unknown until apply, a resource
    reference), or None when it can. Both request builders (here and lastmile.contract) ask this."""
    if isinstance(value, str) and value in OPAQUE_STRINGS:
        return OPAQUE_STRINGS[value]
    if isinstance(value, dict) and set(value) == {"$ref"}:
        return "a resource reference"
    return None

_PROVIDER_ONLY = frozenset({"region", "tagsAll"})
_UNIQUE_SUFFIX = "20260101000000000000000001"  # the provider's prefix suffix is 26 characters

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
# Tunnel members that are lists of {Value: ...} in the API and plain lists in pulumi-aws.
VALUE_LISTS = frozenset({"Phase1EncryptionAlgorithms", "Phase2EncryptionAlgorithms", "Phase1IntegrityAlgorithms",
                         "Phase2IntegrityAlgorithms", "Phase1DHGroupNumbers", "Phase2DHGroupNumbers", "IKEVersions"})
CLOUDWATCH_LOG_MEMBERS = {"logEnabled": "LogEnabled", "logGroupArn": "LogGroupArn", "logOutputFormat": "LogOutputFormat",
                          "bgpLogEnabled": "BgpLogEnabled", "bgpLogGroupArn": "BgpLogGroupArn",
                          "bgpLogOutputFormat": "BgpLogOutputFormat"}
CONNECTION_TOP = {"customerGatewayId": "CustomerGatewayId", "vpnGatewayId": "VpnGatewayId", "type": "Type",
                  "transitGatewayId": "TransitGatewayId"}
CONNECTION_OPTIONS = {"staticRoutesOnly": "StaticRoutesOnly", "enableAcceleration": "EnableAcceleration",
                      "tunnelInsideIpVersion": "TunnelInsideIpVersion", "localIpv4NetworkCidr": "LocalIpv4NetworkCidr",
                      "remoteIpv4NetworkCidr": "RemoteIpv4NetworkCidr", "outsideIpAddressType": "OutsideIpAddressType",
                      "tunnelBandwidth": "TunnelBandwidth"}
RESOLVER_IP_MEMBERS = {"subnetId": "SubnetId", "ip": "Ip", "ipv6": "Ipv6"}

# Where pulumi-aws ``tags`` go: EC2 creates take TagSpecifications for their resource type.
_EC2_TAG_TYPES = {
    "aws:ec2/vpnConnection:VpnConnection": "vpn-connection",
    "aws:ec2/customerGateway:CustomerGateway": "customer-gateway",
    "aws:ec2/vpnGateway:VpnGateway": "vpn-gateway",
    "aws:ec2/flowLog:FlowLog": "vpc-flow-log",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpc-endpoint",
}


def _as_int(value: Any) -> Any:
    """pulumi-aws types ASNs as strings; the API takes integers (a non-number is left for the type check)."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


class NetworkTranslation:
    """One request under construction: params, the Pulumi input behind each API path, what was not checkable."""

    def __init__(self, node: Node, service: str, operation: str, fixed: dict[str, Any] | None = None) -> None:
        self.node = node
        self.service = service
        self.operation = operation
        self.params: dict[str, Any] = dict(fixed or {})
        self.violations: list[Violation] = []
        self.opaque: dict[str, str] = {}
        self.input_paths: dict[str, str] = {}

    def track(self, value: Any, src: str, dst: str) -> Any:
        """Record ``src`` as the input behind ``dst`` (and list items below it); note opaque values."""
        self.input_paths[dst] = src
        if (reason := opaque_reason(value)) is not None:
            self.opaque[dst] = reason
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.track(item, f"{src}[{index}]", f"{dst}[{index}]")
        return value

    def input_path(self, path: str) -> str:
        """The Pulumi input behind an API path: the closest recorded ancestor's."""
        probe = path
        while probe and probe != "$":
            if probe in self.input_paths:
                return self.input_paths[probe]
            shorter = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", probe)
            if shorter == probe:
                break
            probe = shorter
        return ""

    def unmapped(self, src: str, why: str) -> None:
        self.violations.append(Violation(
            self.service, self.operation, f"$.{src}", Rule.MAPPING,
            f"{why}; extend lastmile/contract_network.py's mapping if the provider sends it",
            resource=self.node.urn, input_path=src,
        ))

    def put(self, member: str, value: Any, src: str) -> None:
        self.params[member] = self.track(value, src, f"$.{member}")

    def tags(self, value: Any) -> None:
        """pulumi-aws ``tags`` as this operation takes them."""
        if not isinstance(value, dict):
            self.put("Tags", value, "tags")
            return
        if self.service == "logs":
            self.params["tags"] = value
            for key, item in value.items():
                self.track(item, f"tags.{key}", f'$.tags["{key}"]')
            return
        pairs = [{"Key": k, "Value": v} for k, v in sorted(value.items())]
        if self.service == "ec2":
            self.params["TagSpecifications"] = [{"ResourceType": _EC2_TAG_TYPES[self.node.type], "Tags": pairs}]
            prefix = "$.TagSpecifications[0].Tags"
        else:
            self.params["Tags"] = pairs
            prefix = "$.Tags"
        for index, (key, item) in enumerate(sorted(value.items())):
            self.track(item, f"tags.{key}", f"{prefix}[{index}].Value")

    def inputs(self, mapping: dict[str, Any]) -> None:
        """Inputs renamed by ``mapping`` (``(member, convert)`` converts, ``None`` is consumed by the provider);
        any other input is a mapping violation."""
        for key, value in sorted(self.node.inputs.items()):
            if key in _PROVIDER_ONLY or value is None:
                continue
            if key == "tags" and "tags" not in mapping:
                self.tags(value)
                continue
            if key not in mapping:
                self.unmapped(key, f"{self.node.type} input {key!r} has no {self.operation} mapping")
                continue
            target = mapping[key]
            if target is None:
                continue
            member, convert = target if isinstance(target, tuple) else (target, None)
            self.put(member, convert(value) if convert else value, key)


# ---------------------------------------------------------------------------------------------
# One builder per resource type.


def _vpn_connection(node: Node) -> list[NetworkTranslation]:
    t = NetworkTranslation(node, "ec2", "CreateVpnConnection")
    options: dict[str, Any] = {}
    tunnels: list[dict[str, Any]] = [{}, {}]
    for key, value in sorted(node.inputs.items()):
        if key in _PROVIDER_ONLY or value is None:
            continue
        if key == "tags":
            t.tags(value)
        elif key in CONNECTION_TOP:
            t.put(CONNECTION_TOP[key], value, key)
        elif key in CONNECTION_OPTIONS:
            options[CONNECTION_OPTIONS[key]] = t.track(value, key, f"$.Options.{CONNECTION_OPTIONS[key]}")
        elif (match := re.fullmatch(r"tunnel([12])(\w+)", key)) and match.group(2) in TUNNEL_MEMBERS:
            index = int(match.group(1)) - 1
            member = TUNNEL_MEMBERS[match.group(2)]
            dst = f"$.Options.TunnelOptions[{index}].{member}"
            tunnels[index][member] = _tunnel_value(t, member, value, key, dst)
        else:
            t.unmapped(key, f"VpnConnection input {key!r} has no CreateVpnConnection mapping")
    options["TunnelOptions"] = tunnels
    t.params["Options"] = options
    return [t]


def _tunnel_value(t: NetworkTranslation, member: str, value: Any, src: str, dst: str) -> Any:
    t.input_paths[dst] = src
    if member in VALUE_LISTS and isinstance(value, list):
        return [{"Value": t.track(item, f"{src}[{i}]", f"{dst}[{i}].Value")} for i, item in enumerate(value)]
    if member == "LogOptions" and isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in sorted(value.items()):
            if key != "cloudwatchLogOptions" or not isinstance(inner, dict):
                t.unmapped(f"{src}.{key}", f"tunnel log option {key!r} has no VpnTunnelLogOptionsSpecification mapping")
                continue
            cloudwatch: dict[str, Any] = {}
            for name, item in sorted(inner.items()):
                if name not in CLOUDWATCH_LOG_MEMBERS:
                    t.unmapped(f"{src}.{key}.{name}", f"cloudwatch log option {name!r} has no "
                                                      "CloudWatchLogOptionsSpecification mapping")
                    continue
                cloudwatch[CLOUDWATCH_LOG_MEMBERS[name]] = t.track(
                    item, f"{src}.{key}.{name}", f"{dst}.CloudWatchLogOptions.{CLOUDWATCH_LOG_MEMBERS[name]}")
            out["CloudWatchLogOptions"] = cloudwatch
        return out
    return t.track(value, src, dst)


def _customer_gateway(node: Node) -> list[NetworkTranslation]:
    t = NetworkTranslation(node, "ec2", "CreateCustomerGateway")
    t.inputs({"type": "Type", "ipAddress": "IpAddress", "bgpAsn": ("BgpAsn", _as_int),
              "bgpAsnExtended": ("BgpAsnExtended", _as_int), "certificateArn": "CertificateArn",
              "deviceName": "DeviceName"})
    return [t]


def _vpn_gateway(node: Node) -> list[NetworkTranslation]:
    # The provider creates the gateway (type ipsec.1), then attaches it to vpcId.
    create = NetworkTranslation(node, "ec2", "CreateVpnGateway", {"Type": "ipsec.1"})
    create.inputs({"amazonSideAsn": ("AmazonSideAsn", _as_int), "availabilityZone": "AvailabilityZone", "vpcId": None})
    translations = [create]
    if node.inputs.get("vpcId") is not None:
        attach = NetworkTranslation(node, "ec2", "AttachVpnGateway",
                                    {"VpnGatewayId": physical_name(node.type, node.name)})
        attach.put("VpcId", node.inputs["vpcId"], "vpcId")
        translations.append(attach)
    return translations


def _vpn_connection_route(node: Node) -> list[NetworkTranslation]:
    t = NetworkTranslation(node, "ec2", "CreateVpnConnectionRoute")
    t.inputs({"destinationCidrBlock": "DestinationCidrBlock", "vpnConnectionId": "VpnConnectionId"})
    return [t]


def _route_propagation(node: Node) -> list[NetworkTranslation]:
    t = NetworkTranslation(node, "ec2", "EnableVgwRoutePropagation")
    t.inputs({"vpnGatewayId": "GatewayId", "routeTableId": "RouteTableId"})
    return [t]


def _flow_log(node: Node) -> list[NetworkTranslation]:
    t = NetworkTranslation(node, "ec2", "CreateFlowLogs", {"ResourceType": "VPC"})
    t.inputs({"vpcId": ("ResourceIds", lambda v: [v]), "trafficType": "TrafficType",
              "logDestinationType": "LogDestinationType", "logDestination": "LogDestination",
              "iamRoleArn": "DeliverLogsPermissionArn", "maxAggregationInterval": "MaxAggregationInterval",
              "logFormat": "LogFormat"})
    return [t]


def _vpc_endpoint(node: Node) -> list[NetworkTranslation]:
    t = NetworkTranslation(node, "ec2", "CreateVpcEndpoint")
    t.inputs({"vpcId": "VpcId", "serviceName": "ServiceName", "vpcEndpointType": "VpcEndpointType",
              "privateDnsEnabled": "PrivateDnsEnabled", "subnetIds": "SubnetIds", "securityGroupIds": "SecurityGroupIds",
              "routeTableIds": "RouteTableIds", "policy": "PolicyDocument", "ipAddressType": "IpAddressType"})
    return [t]


def _resolver_ip_addresses(t: NetworkTranslation) -> Callable[[Any], Any]:
    def convert(addresses: Any) -> Any:
        if not isinstance(addresses, list):
            return addresses
        out = []
        for index, address in enumerate(addresses):
            if not isinstance(address, dict):
                out.append(address)
                continue
            request = {}
            for key, value in sorted(address.items()):
                if key not in RESOLVER_IP_MEMBERS:
                    t.unmapped(f"ipAddresses[{index}].{key}", f"resolver address input {key!r} has no IpAddressRequest mapping")
                elif value is not None:
                    request[RESOLVER_IP_MEMBERS[key]] = value
            out.append(request)
        return out
    return convert


def _resolver_endpoint(node: Node) -> list[NetworkTranslation]:
    t = NetworkTranslation(node, "route53resolver", "CreateResolverEndpoint",
                           {"CreatorRequestId": physical_name(node.type, node.name)})
    t.inputs({"direction": "Direction", "resolverEndpointType": "ResolverEndpointType", "protocols": "Protocols",
              "securityGroupIds": "SecurityGroupIds", "name": "Name",
              "ipAddresses": ("IpAddresses", _resolver_ip_addresses(t))})
    for index, address in enumerate(t.params.get("IpAddresses") or []):
        if isinstance(address, dict):
            for member, value in address.items():
                src = next(k for k, m in RESOLVER_IP_MEMBERS.items() if m == member)
                t.track(value, f"ipAddresses[{index}].{src}", f"$.IpAddresses[{index}].{member}")
    return [t]


def _log_group(node: Node) -> list[NetworkTranslation]:
    name = node.inputs.get("name")
    if name is None:
        prefix = node.inputs.get("namePrefix")
        name = f"{prefix}{_UNIQUE_SUFFIX}" if isinstance(prefix, str) else physical_name(node.type, node.name)
        source = "name (auto-named)"
    else:
        source = "name"
    create = NetworkTranslation(node, "logs", "CreateLogGroup")
    create.put("logGroupName", name, source)
    create.inputs({"name": None, "namePrefix": None, "kmsKeyId": "kmsKeyId", "logGroupClass": "logGroupClass",
                   "retentionInDays": None})
    translations = [create]
    if node.inputs.get("retentionInDays") is not None:
        retention = NetworkTranslation(node, "logs", "PutRetentionPolicy")
        retention.put("logGroupName", name, source)
        retention.put("retentionInDays", node.inputs["retentionInDays"], "retentionInDays")
        translations.append(retention)
    return translations


NETWORK_MAPPINGS: dict[str, Callable[[Node], list[NetworkTranslation]]] = {
    "aws:ec2/vpnConnection:VpnConnection": _vpn_connection,
    "aws:ec2/customerGateway:CustomerGateway": _customer_gateway,
    "aws:ec2/vpnGateway:VpnGateway": _vpn_gateway,
    "aws:ec2/vpnConnectionRoute:VpnConnectionRoute": _vpn_connection_route,
    "aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation": _route_propagation,
    "aws:ec2/flowLog:FlowLog": _flow_log,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:route53/resolverEndpoint:ResolverEndpoint": _resolver_endpoint,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
}


def network_translations(node: Node) -> list[NetworkTranslation]:
    """The requests the provider sends to create ``node`` ([] for types outside NETWORK_MAPPINGS)."""
    build = NETWORK_MAPPINGS.get(node.type)
    return build(node) if build else []


# ---------------------------------------------------------------------------------------------
# Documented values: EC2 states the allowed values of many string/int members only in their docs.

_VALID_VALUES = re.compile(r"Valid [Vv]alues:?\s*(.*?)</p>", re.S)


def documented_values(member_shape: Shape) -> list[str] | None:
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


def documented_value_violations(service: str, operation: str, params: dict[str, Any]) -> list[Violation]:
    """``enum`` violations for values outside the lists the members' documentation enumerates."""
    found: list[Violation] = []

    def check(value: Any, allowed: list[str], where: str, path: str) -> None:
        if opaque_reason(value) is not None:
            return
        if str(value) not in allowed:
            found.append(Violation(service, operation, path, Rule.ENUM,
                                   f"{value!r} is not a documented value of {where}: {', '.join(allowed)}"))

    def walk(value: Any, shape: Shape, path: str) -> None:
        if shape.type_name == "structure" and isinstance(value, dict):
            for key, item in value.items():
                if key not in shape.members or item is None:
                    continue
                member = shape.members[key]
                allowed = documented_values(member)
                where = f"{shape.name}.{key}"
                if allowed and member.type_name != "boolean":
                    if member.type_name == "list" and isinstance(item, list):
                        for index, single in enumerate(item):
                            if isinstance(single, dict) and "Value" in single:
                                check(single["Value"], allowed, where, f"{path}.{key}[{index}].Value")
                            elif not isinstance(single, dict):
                                check(single, allowed, where, f"{path}.{key}[{index}]")
                    elif not isinstance(item, (dict, list)):
                        check(item, allowed, where, f"{path}.{key}")
                walk(item, member, f"{path}.{key}")
        elif shape.type_name == "list" and isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, shape.member, f"{path}[{index}]")

    walk(params, operation_model(service, operation).input_shape, "$")
    return found
