"""ExecutionRole: trusted only by SageMaker for this account; ECR, logs and VPC scoped by ARN."""

from __future__ import annotations

import pytest

from args_errors import reported_fields
from aws_constants import ACCOUNT, IMAGE, REGION
from components.aws.execution_role import ExecutionRole, ExecutionRoleArgs, ecr_repository_arn
from components.problems import ArgsError

COMPONENT = "lastmile:aws:ExecutionRole"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "/aws/sagemaker/Endpoints/ep-1"
SUBNETS = ("subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012")
GROUPS = ("sg-0a1b2c3d4e5f60010",)
EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
# The only actions AWS authorizes solely on Resource "*" that this role needs.
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
                     "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces", "ec2:DescribeDhcpOptions"}


def role_args(**overrides) -> ExecutionRoleArgs:
    return ExecutionRoleArgs(**{"account_id": ACCOUNT, "region": REGION, "image_uris": (IMAGE,),
                                "log_group_name": LOG_GROUP, **overrides})


def synth(mock_run, **overrides):
    def program():
        role = ExecutionRole("exec", role_args(**overrides))
        return {"arn": role.arn, "name": role.name}

    return mock_run(program)


def statements(graph, document) -> dict[str, dict]:
    return {s["Sid"]: s for p in graph.of_type(POLICY) for s in document(p)["Statement"]}


def test_trusted_only_by_sagemaker_for_this_account(mock_run, document):
    [trust] = document(synth(mock_run).one(ROLE), "assumeRolePolicy")["Statement"]
    assert trust == {"Sid": "SageMakerAssumesForThisAccount", "Effect": "Allow",
                     "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}


def test_no_managed_policies_only_inline_ones_on_this_role(mock_run):
    graph = synth(mock_run)
    role, component = graph.one(ROLE), graph.one(COMPONENT)
    assert "managedPolicyArns" not in role.inputs and "inlinePolicies" not in role.inputs
    assert not graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert {p.name for p in graph.of_type(POLICY)} == {"exec-ecr", "exec-logs"}
    assert all(n.parent == component.urn for n in graph.nodes.values() if n.urn != component.urn)
    assert all(p.inputs["role"] == graph.outputs["name"] for p in graph.of_type(POLICY))


def test_ecr_pull_only_from_the_images_repositories(mock_run, document):
    found = statements(synth(mock_run), document)
    assert found["PullServingImages"]["Resource"] == [
        "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn"]
    assert found["GetRegistryToken"] == {"Sid": "GetRegistryToken", "Effect": "Allow",
                                         "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}


def test_logs_only_in_the_endpoint_log_group(mock_run, document):
    logs = statements(synth(mock_run), document)["WriteEndpointLogs"]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}"
    assert logs["Resource"] == [group, f"{group}:log-stream:*"]
    assert "logs:CreateLogGroup" not in logs["Action"]


def test_vpc_mode_scopes_network_interfaces_to_the_subnets(mock_run, document):
    graph = synth(mock_run, vpc_subnet_ids=SUBNETS, vpc_security_group_ids=GROUPS)
    found = statements(graph, document)
    subnet_arns = [f"{EC2}:subnet/{s}" for s in SUBNETS]
    create = found["CreateInterfacesInServingSubnets"]
    assert create["Resource"] == [f"{EC2}:network-interface/*", *subnet_arns, f"{EC2}:security-group/{GROUPS[0]}"]
    manage = found["ManageInterfacesInServingSubnets"]
    assert manage["Condition"] == {"ArnEquals": {"ec2:Subnet": subnet_arns}}
    assert found["DescribeNetworking"]["Condition"] == {"StringEquals": {"ec2:Region": REGION}}


def test_no_vpc_permissions_without_subnets(mock_run, document):
    assert not any(s.startswith("ec2:") for st in statements(synth(mock_run), document).values() for s in st["Action"])


def test_no_wildcard_actions_and_star_only_where_aws_has_no_resource_level_permissions(mock_run, document):
    graph = synth(mock_run, vpc_subnet_ids=SUBNETS, vpc_security_group_ids=GROUPS)
    for statement in statements(graph, document).values():
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in statement["Action"]), statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources:
            assert set(statement["Action"]) <= NO_RESOURCE_LEVEL, statement


@pytest.mark.parametrize("uri, arn", [
    (IMAGE, "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/model@sha256:" + "a" * 64,
     "arn:aws-cn:ecr:cn-north-1:123456789012:repository/team/model"),
])
def test_repository_arn_from_image_uri(uri, arn):
    assert ecr_repository_arn(uri) == arn


@pytest.mark.parametrize("overrides, message", [
    ({"image_uris": ()}, "image_uris is empty"),
    ({"image_uris": ("docker.io/library/python:3",)}, "not an ECR image URI"),
    ({"log_group_name": "/aws/lambda/x"}, "not under /aws/sagemaker/Endpoints/"),
    ({"vpc_subnet_ids": SUBNETS}, "go together"),
    ({"account_id": "1234"}, "account_id = '1234': an AWS account id is 12 digits"),
])
def test_args_are_validated(overrides, message):
    with pytest.raises(ValueError, match=message):
        role_args(**overrides)


def test_every_invalid_role_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        role_args(account_id="1234", image_uris=("docker.io/library/python:3", IMAGE, "quay.io/x/y:1"),
                  log_group_name="/aws/lambda/x", vpc_subnet_ids=SUBNETS)
    assert reported_fields(caught.value) == ["account_id", "image_uris.0", "image_uris.2", "log_group_name",
                                             "vpc_security_group_ids"]
