"""ExecutionRole: the role SageMaker assumes to run one endpoint's models.

Least privilege by construction (IAM.1, IAM.21; never AmazonSageMakerFullAccess):
- trusted only by ``sagemaker.amazonaws.com``, and only on behalf of this account (``aws:SourceAccount``,
  against confused-deputy use from another account);
- ECR pull only from the serving images' repositories; ``ecr:GetAuthorizationToken`` is the one ECR
  action with no resource-level permissions, so it is the one ECR statement on ``"*"`` (the token
  alone reads nothing: pulls still need the repository-scoped statement);
- CloudWatch Logs: create streams and put events only in the endpoint's own log group (the group
  itself is created by ``ModelEndpoint``, so no ``logs:CreateLogGroup``);
- VPC mode (when subnets are given): create network interfaces only in the given subnets with the
  given security groups, and manage/delete only interfaces in those subnets (``ec2:Subnet``
  condition). The ``ec2:Describe*`` calls SageMaker makes have no resource-level permissions, so
  they are on ``"*"``, restricted to the region (``ec2:Region``);
- no ``cloudwatch:PutMetricData``: invocation metrics are published by SageMaker itself.

S3 and KMS access are granted by the resources that own them (``ArtifactStore.grant_read`` /
``grant_capture_write``, ``EncryptionKey.grant_decrypt`` / ``grant_encrypt``); pass those grants and
this component to ``ModelEndpointArgs.permissions`` so models wait for a fully permitted role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.aws.naming import log_group_arn, partition
from components.network.addressing import check_account_id
from components.problems import ArgsError, Problem, raise_problems

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$"
)
_VPC_DESCRIBE_ACTIONS = ("ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                         "ec2:DescribeNetworkInterfaces", "ec2:DescribeDhcpOptions")
_ENI_MANAGE_ACTIONS = ("ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                       "ec2:DeleteNetworkInterfacePermission")


def check_ecr_image(field: str, image_uri: str) -> list[Problem]:
    if _ECR_IMAGE.match(image_uri):
        return []
    return [Problem(field, image_uri, "not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)",
                    "push the image to ECR and pass its URI")]


def ecr_repository_arn(image_uri: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag][@digest]`` -> the repository's ARN."""
    match = _ECR_IMAGE.match(image_uri)
    if match is None:
        raise ArgsError("ecr_repository_arn", check_ecr_image("image_uri", image_uri))
    region = match["region"]
    return f"arn:{partition(region)}:ecr:{region}:{match['account']}:repository/{match['repository']}"


@dataclass(frozen=True, kw_only=True)
class ExecutionRoleArgs:
    account_id: str
    """The account the role lives in; the only account SageMaker may assume it for."""
    region: str
    """The endpoint's region (scopes log and network-interface permissions)."""
    image_uris: tuple[str, ...]
    """ECR images the models run; the role may pull only from their repositories."""
    log_group_name: str
    """The endpoint's log group, ``/aws/sagemaker/Endpoints/<endpoint-name>``."""
    vpc_subnet_ids: tuple[pulumi.Input[str], ...] = ()
    """Subnets the models run in (ids or Outputs). Omitted: no network-interface permissions (no VPC config)."""
    vpc_security_group_ids: tuple[pulumi.Input[str], ...] = ()
    """Security groups of the models' network interfaces; required with ``vpc_subnet_ids``."""

    def __post_init__(self) -> None:
        problems = [*check_account_id("account_id", self.account_id), *self._image_problems()]
        if not self.log_group_name.startswith("/aws/sagemaker/Endpoints/"):
            problems.append(Problem("log_group_name", self.log_group_name, "not under /aws/sagemaker/Endpoints/, "
                                    "where SageMaker writes endpoint logs",
                                    "use /aws/sagemaker/Endpoints/<endpoint-name>"))
        if bool(self.vpc_subnet_ids) != bool(self.vpc_security_group_ids):
            problems.append(Problem("vpc_security_group_ids" if self.vpc_subnet_ids else "vpc_subnet_ids", (),
                                    "vpc_subnet_ids and vpc_security_group_ids go together",
                                    "give both or neither"))
        raise_problems("ExecutionRoleArgs", problems)

    def _image_problems(self) -> list[Problem]:
        if not self.image_uris:
            return [Problem("image_uris", self.image_uris, "image_uris is empty", "name the images the models run")]
        return [p for i, uri in enumerate(self.image_uris) for p in check_ecr_image(f"image_uris.{i}", uri)]


class ExecutionRole(pulumi.ComponentResource):
    """A SageMaker execution role scoped to one endpoint's images, log group and subnets."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: ExecutionRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:aws:ExecutionRole", name, None, opts)
        role = aws.iam.Role(
            f"{name}-role",
            description="SageMaker execution role of one lastmile endpoint (see components/aws/execution_role.py)",
            assume_role_policy=iam.policy_document([trust_statement(args.account_id)]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for role_suffix, statements in role_statements(args).items():
            aws.iam.RolePolicy(f"{name}-{role_suffix}", role=role.name, policy=iam.policy_document(statements),
                               opts=pulumi.ResourceOptions(parent=self))
        self.arn = role.arn
        self.name = role.name
        self.register_outputs({"arn": self.arn, "name": self.name})


def trust_statement(account_id: str) -> dict:
    return {
        "Sid": "SageMakerAssumesForThisAccount",
        "Effect": "Allow",
        "Principal": {"Service": SAGEMAKER_PRINCIPAL},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }


def role_statements(args: ExecutionRoleArgs) -> dict[str, list[dict]]:
    """The role's inline policies by name suffix: ecr, logs and (in VPC mode) vpc."""
    log_group = log_group_arn(args.account_id, args.region, args.log_group_name)
    policies = {
        "ecr": [
            {"Sid": "PullServingImages", "Effect": "Allow",
             "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
             "Resource": sorted({ecr_repository_arn(uri) for uri in args.image_uris})},
            # No resource-level permissions exist for this action; the token alone grants no pull.
            {"Sid": "GetRegistryToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        ],
        "logs": [
            {"Sid": "WriteEndpointLogs", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
             "Resource": [log_group, f"{log_group}:log-stream:*"]},
        ],
    }
    if args.vpc_subnet_ids:
        policies["vpc"] = _vpc_statements(args)
    return policies


def _vpc_statements(args: ExecutionRoleArgs) -> list[dict]:
    ec2 = f"arn:{partition(args.region)}:ec2:{args.region}:{args.account_id}"
    # Output.concat: the ids may be Outputs of subnets and groups created in the same program.
    subnets = [pulumi.Output.concat(f"{ec2}:subnet/", subnet) for subnet in args.vpc_subnet_ids]
    groups = [pulumi.Output.concat(f"{ec2}:security-group/", group) for group in args.vpc_security_group_ids]
    return [
        {"Sid": "CreateInterfacesInServingSubnets", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface"],
         "Resource": [f"{ec2}:network-interface/*", *subnets, *groups]},
        {"Sid": "ManageInterfacesInServingSubnets", "Effect": "Allow", "Action": list(_ENI_MANAGE_ACTIONS),
         "Resource": f"{ec2}:network-interface/*", "Condition": {"ArnEquals": {"ec2:Subnet": subnets}}},
        # Describe calls support no resource-level permissions; they are limited to the region.
        {"Sid": "DescribeNetworking", "Effect": "Allow", "Action": list(_VPC_DESCRIBE_ACTIONS), "Resource": "*",
         "Condition": {"StringEquals": {"ec2:Region": args.region}}},
    ]
