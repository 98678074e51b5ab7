"""``PrivateServiceAccess``: AWS APIs reachable from the VPC and from on-prem without the internet.

- Interface endpoints for ``InterfaceService`` (SageMaker runtime always; by default also the SageMaker
  API, ECR API and registry, CloudWatch Logs and STS), each with private DNS on, in every given subnet,
  behind one dedicated security group that admits TCP 443 only from the on-prem CIDRs and the VPC CIDR
  and has no egress rule (endpoint network interfaces answer, they never initiate).
- The S3 gateway endpoint on the private route tables (model artifacts and ECR image layers).
- Endpoint policies built with ``Output.json_dumps``: only principals of this account
  (``aws:PrincipalAccount``), each endpoint limited to its own service's actions; the runtime endpoint
  only to ``sagemaker:InvokeEndpoint`` / ``InvokeEndpointAsync``, on the named endpoint when given.
- A Route 53 Resolver INBOUND endpoint with two addresses in two subnets (distinct AZs), behind a security
  group admitting DNS (TCP and UDP 53) only from the on-prem CIDRs: on-prem DNS forwards the private
  names (``runtime.sagemaker.<region>.amazonaws.com``, ...) to ``resolver_inbound_ips``.

Nothing here is reachable from 0.0.0.0/0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pulumi
import pulumi_aws as aws

from components.network.addressing import (
    check_account_id,
    check_onprem_cidrs,
    check_region,
    check_vpc_cidr,
    partition_for,
)
from components.problems import Problem, raise_problems

_SAGEMAKER_ENDPOINT_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:endpoint/[A-Za-z0-9-]{1,63}$")
HTTPS_PORT = 443
DNS_PORT = 53
RESOLVER_ADDRESS_COUNT = 2


class InterfaceService(StrEnum):
    """Services reached through interface endpoints: ``com.amazonaws.<region>.<value>``."""

    SAGEMAKER_RUNTIME = "sagemaker.runtime"
    SAGEMAKER_API = "sagemaker.api"
    ECR_API = "ecr.api"
    ECR_DKR = "ecr.dkr"
    LOGS = "logs"
    STS = "sts"


# The IAM action prefix each endpoint's policy is limited to.
_ACTION_PREFIX = {
    InterfaceService.SAGEMAKER_API: "sagemaker",
    InterfaceService.ECR_API: "ecr",
    InterfaceService.ECR_DKR: "ecr",
    InterfaceService.LOGS: "logs",
    InterfaceService.STS: "sts",
}
RUNTIME_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync")


@dataclass(frozen=True, kw_only=True)
class PrivateServiceAccessArgs:
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    """The VPC's CIDR: admitted to the interface endpoints on 443."""
    region: str
    """The region of the VPC (names the endpoint services)."""
    account_id: str
    """The only account whose principals the endpoint policies admit."""
    subnet_ids: tuple[pulumi.Input[str], ...]
    """Private subnets in distinct AZs (at least 2). The resolver uses the first two."""
    route_table_ids: tuple[pulumi.Input[str], ...]
    """Private route tables that get the S3 gateway endpoint route (at least one)."""
    onprem_cidrs: tuple[str, ...]
    """Private on-prem networks: admitted on 443 (endpoints) and 53 (resolver); nothing else is."""
    interface_services: tuple[InterfaceService, ...] = tuple(InterfaceService)
    """Omitted: all of InterfaceService. Must include SAGEMAKER_RUNTIME."""
    sagemaker_endpoint_arn: pulumi.Input[str] | None = None
    """The SageMaker endpoint the runtime endpoint may invoke. Omitted: any endpoint of the account in the region."""

    def __post_init__(self) -> None:
        for name in ("subnet_ids", "route_table_ids", "onprem_cidrs", "interface_services"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value) if isinstance(value, (list, tuple)) else (value,))
        findings: list[Problem] = [*check_vpc_cidr("vpc_cidr", self.vpc_cidr)]
        findings += check_onprem_cidrs("onprem_cidrs", self.onprem_cidrs, self.vpc_cidr)
        findings += check_region("region", self.region) + check_account_id("account_id", self.account_id)
        if len(self.subnet_ids) < RESOLVER_ADDRESS_COUNT:
            findings.append(Problem("subnet_ids", f"{len(self.subnet_ids)} subnet(s)",
                                    "endpoints and the resolver need subnets in at least 2 availability zones",
                                    "pass PrivateNetwork.subnet_ids"))
        if not self.route_table_ids:
            findings.append(Problem("route_table_ids", [], "the S3 gateway endpoint needs the private route tables",
                                    "pass PrivateNetwork.route_table_ids"))
        services = self.interface_services
        bad = [s for s in services if not isinstance(s, InterfaceService)]
        if bad:
            findings.append(Problem("interface_services", bad, "only InterfaceService members are allowed: "
                                    f"{', '.join(InterfaceService)}", "pass e.g. InterfaceService.SAGEMAKER_RUNTIME"))
        elif InterfaceService.SAGEMAKER_RUNTIME not in services or len(set(services)) != len(services):
            findings.append(Problem("interface_services", [s.value for s in services],
                                    "must include sagemaker.runtime (the private serving path) and list each "
                                    "service once", "add InterfaceService.SAGEMAKER_RUNTIME / drop duplicates"))
        arn = self.sagemaker_endpoint_arn
        if isinstance(arn, str) and not _SAGEMAKER_ENDPOINT_ARN.match(arn):
            findings.append(Problem("sagemaker_endpoint_arn", arn, "not a SageMaker endpoint ARN",
                                    "pass arn:aws:sagemaker:<region>:<account>:endpoint/<name> "
                                    "(e.g. an Endpoint's .arn)"))
        raise_problems("PrivateServiceAccessArgs", findings)


def _account_only_policy(account_id: str, actions: list[str], resources: list[Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PrincipalsOfThisAccountOnly",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": actions,
            "Resource": resources,
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account_id}},
        }],
    })


class PrivateServiceAccess(pulumi.ComponentResource):
    """Interface + S3 gateway endpoints with account-only policies, and an inbound resolver for on-prem DNS."""

    endpoint_ids: pulumi.Output[dict[str, str]]
    """VPC endpoint id per service (``sagemaker.runtime``, ..., ``s3``)."""
    resolver_inbound_ips: pulumi.Output[list[str]]
    """The resolver's two addresses: the targets of the on-prem DNS forwarders."""
    security_group_id: pulumi.Output[str]
    """The interface endpoints' security group."""
    s3_prefix_list_id: pulumi.Output[str]
    """The S3 gateway endpoint's prefix list: what a security group allows egress to, to reach S3."""

    def __init__(self, name: str, args: PrivateServiceAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:network:PrivateServiceAccess", name, None, opts)
        partition = partition_for(args.region)
        endpoints_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            vpc_id=args.vpc_id,
            description="Interface VPC endpoints: HTTPS from on-prem and the VPC only",
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=HTTPS_PORT, to_port=HTTPS_PORT,
                                                      cidr_blocks=[*args.onprem_cidrs, args.vpc_cidr],
                                                      description="HTTPS to AWS APIs from on-prem and the VPC")],
            egress=[],
            opts=pulumi.ResourceOptions(parent=self),
        )
        endpoint_ids: dict[str, pulumi.Output[str]] = {}
        for service in args.interface_services:
            if service == InterfaceService.SAGEMAKER_RUNTIME:
                resource = (args.sagemaker_endpoint_arn if args.sagemaker_endpoint_arn is not None
                            else f"arn:{partition}:sagemaker:{args.region}:{args.account_id}:endpoint/*")
                policy = _account_only_policy(args.account_id, list(RUNTIME_ACTIONS), [resource])
            else:
                policy = _account_only_policy(args.account_id, [f"{_ACTION_PREFIX[service]}:*"], ["*"])
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-{service.value.replace('.', '-')}",
                vpc_id=args.vpc_id,
                service_name=f"com.amazonaws.{args.region}.{service.value}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=list(args.subnet_ids),
                security_group_ids=[endpoints_sg.id],
                policy=policy,
                opts=pulumi.ResourceOptions(parent=self),
            )
            endpoint_ids[service.value] = endpoint.id
        s3 = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=args.vpc_id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=list(args.route_table_ids),
            policy=_account_only_policy(args.account_id, ["s3:*"], ["*"]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        endpoint_ids["s3"] = s3.id
        resolver = self._inbound_resolver(name, args)

        self.endpoint_ids = pulumi.Output.all(**endpoint_ids)
        self.resolver_inbound_ips = resolver.ip_addresses.apply(lambda addresses: [a.ip for a in addresses or []])
        self.security_group_id = endpoints_sg.id
        self.s3_prefix_list_id = s3.prefix_list_id
        self.register_outputs({"endpoint_ids": self.endpoint_ids, "resolver_inbound_ips": self.resolver_inbound_ips,
                               "security_group_id": self.security_group_id, "s3_prefix_list_id": self.s3_prefix_list_id})

    def _inbound_resolver(self, name: str, args: PrivateServiceAccessArgs) -> aws.route53.ResolverEndpoint:
        dns_from_onprem = [
            aws.ec2.SecurityGroupIngressArgs(protocol=protocol, from_port=DNS_PORT, to_port=DNS_PORT,
                                             cidr_blocks=list(args.onprem_cidrs),
                                             description=f"DNS over {protocol.upper()} from on-prem forwarders")
            for protocol in ("udp", "tcp")
        ]
        resolver_sg = aws.ec2.SecurityGroup(
            f"{name}-resolver-sg",
            vpc_id=args.vpc_id,
            description="Route 53 Resolver inbound endpoint: DNS from on-prem only",
            ingress=dns_from_onprem,
            egress=[],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.route53.ResolverEndpoint(
            f"{name}-resolver-inbound",
            direction="INBOUND",
            resolver_endpoint_type="IPV4",
            protocols=["Do53"],
            security_group_ids=[resolver_sg.id],
            ip_addresses=[aws.route53.ResolverEndpointIpAddressArgs(subnet_id=subnet_id)
                          for subnet_id in args.subnet_ids[:RESOLVER_ADDRESS_COUNT]],
            opts=pulumi.ResourceOptions(parent=self),
        )
