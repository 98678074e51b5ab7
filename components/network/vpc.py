"""``PrivateNetwork``: the private VPC the SageMaker half of a hybrid stack runs in.

Safe by construction:
- private subnets only, one per availability zone (>= 2 distinct zones), no public IPs on launch;
- no internet gateway and no NAT: the VPC reaches AWS services through VPC endpoints
  (``private_access.PrivateServiceAccess``) and on-prem through the VPN (``vpn.SiteToSiteVpn``);
- the default security group is taken over and left with no rules (Security Hub EC2.2);
- VPC flow logs of ALL traffic to a CloudWatch log group encrypted with the given KMS key, with
  retention, written by a role that only vpc-flow-logs.amazonaws.com of this account can assume and
  that may only write to that log group;
- one private route table per subnet, so VPN routes can be propagated into each.

No lookups: availability zones, region and account come in through the Args (the program stays
deterministic and runs under mocks that refuse invokes).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.network._logs import check_log_args, encrypted_log_group
from components.network.addressing import (
    SUBNET_MAX_PREFIX_LENGTH,
    check_account_id,
    check_availability_zones,
    check_region,
    check_vpc_cidr,
    parse_network,
    partition_for,
)
from components.problems import Problem, raise_problems

FLOW_LOG_AGGREGATION_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class PrivateNetworkArgs:
    cidr: str
    """The VPC's IPv4 CIDR: a private RFC 1918 range, /16 to /28."""
    availability_zones: tuple[str, ...]
    """Zones of ``region`` to place one private subnet in each; at least 2 distinct."""
    region: str
    """The region the provider deploys to (names the flow-log source ARN in the trust policy)."""
    account_id: str
    """The account the provider deploys to (``aws:SourceAccount`` of the flow-log role's trust policy)."""
    flow_log_kms_key_arn: pulumi.Input[str]
    """KMS key ARN encrypting the flow-log group. Its key policy must admit logs.<region>.amazonaws.com."""
    flow_log_retention_days: int = 365
    """Flow-log retention; one of CloudWatch's values. Omitted: 365 days (CKV_AWS_338)."""
    protect_state: bool
    """Protect (and retain on delete) the flow-log group. True in production stacks."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "availability_zones", tuple(self.availability_zones))
        region_findings = check_region("region", self.region)
        findings: list[Problem] = [*check_vpc_cidr("cidr", self.cidr), *region_findings]
        findings += check_availability_zones("availability_zones", self.availability_zones,
                                             None if region_findings else self.region)
        findings += check_account_id("account_id", self.account_id)
        findings += check_log_args("flow_log_", self.flow_log_kms_key_arn, self.flow_log_retention_days)
        if not isinstance(self.protect_state, bool):
            findings.append(Problem("protect_state", self.protect_state, "must be a bool", "pass True in production"))
        network = parse_network(self.cidr)
        if network is not None and not findings and self.subnet_prefix_length() > SUBNET_MAX_PREFIX_LENGTH:
            findings.append(Problem("cidr", self.cidr, f"too small for {len(self.availability_zones)} subnets of at "
                                    f"least /{SUBNET_MAX_PREFIX_LENGTH}", "use a larger VPC CIDR or fewer zones"))
        raise_problems("PrivateNetworkArgs", findings)

    def subnet_prefix_length(self) -> int:
        """Subnets split the VPC in equal blocks: quarters for up to 4 zones, eighths up to 8, ...

        The blocks beyond the zone count stay free for later subnets.
        """
        bits = max(2, math.ceil(math.log2(len(self.availability_zones))))
        return ipaddress.IPv4Network(self.cidr).prefixlen + bits

    def subnet_cidrs(self) -> tuple[str, ...]:
        blocks = ipaddress.IPv4Network(self.cidr).subnets(new_prefix=self.subnet_prefix_length())
        return tuple(str(block) for block, _ in zip(blocks, self.availability_zones))


class PrivateNetwork(pulumi.ComponentResource):
    """A private VPC: subnets in >= 2 AZs, no internet path, default SG closed, flow logs on."""

    vpc_id: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    """One per availability zone, in the order of ``availability_zones``."""
    route_table_ids: list[pulumi.Output[str]]
    """The private route table of each subnet, same order."""
    cidr: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:network:PrivateNetwork", name, None, opts)
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_support=True, enable_dns_hostnames=True,
                          opts=pulumi.ResourceOptions(parent=self))
        # Taking over the default security group with empty rule lists removes AWS's allow-all rules.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[],
                                     opts=pulumi.ResourceOptions(parent=self))

        subnet_ids, route_table_ids = [], []
        for zone, cidr in zip(args.availability_zones, args.subnet_cidrs()):
            subnet = aws.ec2.Subnet(f"{name}-subnet-{zone}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=zone,
                                    map_public_ip_on_launch=False, opts=pulumi.ResourceOptions(parent=self))
            table = aws.ec2.RouteTable(f"{name}-routes-{zone}", vpc_id=vpc.id, opts=pulumi.ResourceOptions(parent=self))
            aws.ec2.RouteTableAssociation(f"{name}-routes-{zone}", subnet_id=subnet.id, route_table_id=table.id,
                                          opts=pulumi.ResourceOptions(parent=self))
            subnet_ids.append(subnet.id)
            route_table_ids.append(table.id)

        self._flow_logs(name, args, vpc)

        self.vpc_id = vpc.id
        self.subnet_ids = subnet_ids
        self.route_table_ids = route_table_ids
        self.cidr = vpc.cidr_block
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_ids": self.subnet_ids,
                               "route_table_ids": self.route_table_ids, "cidr": self.cidr})

    def _flow_logs(self, name: str, args: PrivateNetworkArgs, vpc: aws.ec2.Vpc) -> None:
        log_group = encrypted_log_group(f"{name}-flow-logs", parent=self, kms_key_arn=args.flow_log_kms_key_arn,
                                        retention_days=args.flow_log_retention_days, protect_state=args.protect_state)
        partition = partition_for(args.region)
        flow_log_arns = f"arn:{partition}:ec2:{args.region}:{args.account_id}:vpc-flow-log/*"
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            description="Lets VPC flow logs of this account write to one log group.",
            assume_role_policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": args.account_id},
                        "ArnLike": {"aws:SourceArn": flow_log_arns},
                    },
                }],
            }),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs-write",
            role=role.id,
            policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "WriteFlowLogsToOneGroup",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":log-stream:*")],
                }],
            }),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=FLOW_LOG_AGGREGATION_SECONDS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
