"""PrivateNetwork under recording mocks: private subnets in 2 AZs, no internet path, default SG closed, flow logs."""

from __future__ import annotations

import ipaddress
import json

import parliament
import pytest

from components.problems import ArgsError
from components.network.vpc import PrivateNetwork
from lastmile.synthesis import MOCK_ACCOUNT_ID, MOCK_REGION, Graph
from network_helpers import KMS_KEY_ARN, VPC_CIDR, ZONES, network_args

INTERNET_TYPES = ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
                  "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", "aws:ec2/route:Route")


def _network(mock_run, **overrides) -> Graph:
    def program():
        network = PrivateNetwork("net", network_args(**overrides))
        return {"vpc_id": network.vpc_id, "subnet_ids": network.subnet_ids, "route_table_ids": network.route_table_ids,
                "cidr": network.cidr}

    return mock_run(program)


def test_vpc_has_dns_and_private_subnets_in_distinct_zones(mock_run):
    graph = _network(mock_run)
    vpc = graph.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == VPC_CIDR
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True
    subnets = graph.of_type("aws:ec2/subnet:Subnet")
    assert sorted(s.inputs["availabilityZone"] for s in subnets) == sorted(ZONES)
    blocks = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(b.subnet_of(ipaddress.ip_network(VPC_CIDR)) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)


def test_no_internet_path(mock_run):
    graph = _network(mock_run)
    assert not [n.name for t in INTERNET_TYPES for n in graph.of_type(t)]
    for table in graph.of_type("aws:ec2/routeTable:RouteTable"):
        assert not table.inputs.get("routes"), "private route tables carry no inline routes (no 0.0.0.0/0)"
    associations = graph.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    assert len(associations) == len(ZONES) == len(graph.of_type("aws:ec2/routeTable:RouteTable"))


def test_default_security_group_is_closed(mock_run):
    default_sg = _network(mock_run).one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs["ingress"] == [] and default_sg.inputs["egress"] == []


def test_flow_logs_capture_all_traffic_into_a_kms_log_group(mock_run):
    graph = _network(mock_run)
    log_group = graph.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["kmsKeyId"] == KMS_KEY_ARN
    assert log_group.inputs["retentionInDays"] == 365
    flow_log = graph.one("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["vpcId"] == graph.outputs["vpc_id"]
    assert log_group.urn in flow_log.depends_on
    assert graph.one("aws:iam/rolePolicy:RolePolicy").urn in flow_log.depends_on  # role can write before delivery


def test_flow_log_role_is_least_privilege(mock_run):
    graph = _network(mock_run)
    trust = json.loads(graph.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": MOCK_ACCOUNT_ID}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":{MOCK_ACCOUNT_ID}:vpc-flow-log/*")
    policy_text = graph.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    policy = json.loads(policy_text)
    (write,) = policy["Statement"]
    assert set(write["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    assert "*" not in write["Resource"] and len(write["Resource"]) == 2
    group_arn = write["Resource"][0]
    assert write["Resource"][1] == f"{group_arn}:log-stream:*"
    assert "flow-logs" in group_arn  # the flow-log group's ARN, not a wildcard
    assert group_arn.startswith(f"arn:aws:logs:{MOCK_REGION}:{MOCK_ACCOUNT_ID}:log-group:")
    assert [f.issue for f in parliament.analyze_policy_string(policy_text).findings] == []


@pytest.mark.parametrize("protect_state", [True, False])
def test_flow_log_group_protected_and_retained_in_production(mock_run, protect_state: bool):
    log_group = _network(mock_run, protect_state=protect_state).one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.protect is protect_state and log_group.retain_on_delete is protect_state


def test_children_are_parented_and_outputs_typed(mock_run):
    graph = _network(mock_run)
    component = graph.one("lastmile:network:PrivateNetwork")
    assert all(n.parent == component.urn for n in graph.nodes.values() if n.custom)
    assert all(n.provider is None for n in graph.nodes.values())  # children inherit, nothing merged in
    assert graph.outputs["cidr"] == VPC_CIDR
    assert len(graph.outputs["subnet_ids"]) == len(graph.outputs["route_table_ids"]) == 2


def test_logical_names_of_stateful_resources_are_pinned(mock_run):
    """Renaming these replaces them (and loses the logs): a rename needs aliases."""
    graph = _network(mock_run)
    urns = {n.urn for n in graph.nodes.values()}
    assert ("urn:pulumi:test::lastmile::lastmile:network:PrivateNetwork$aws:cloudwatch/logGroup:LogGroup::net-flow-logs"
            in urns)
    assert "urn:pulumi:test::lastmile::lastmile:network:PrivateNetwork$aws:ec2/vpc:Vpc::net-vpc" in urns


def test_three_zones_get_three_subnets_from_quarters(mock_run):
    graph = _network(mock_run, availability_zones=("eu-west-1a", "eu-west-1b", "eu-west-1c"))
    assert sorted(s.inputs["cidrBlock"] for s in graph.of_type("aws:ec2/subnet:Subnet")) == [
        "10.40.0.0/18", "10.40.128.0/18", "10.40.64.0/18"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"cidr": "52.0.0.0/16"}, "cidr"),
        ({"cidr": "10.40.0.1/16"}, "cidr"),
        ({"cidr": "10.0.0.0/8"}, "cidr"),
        ({"availability_zones": ("eu-west-1a",)}, "availability_zones"),
        ({"availability_zones": ("eu-west-1a", "eu-west-1a")}, "availability_zones"),
        ({"availability_zones": ("eu-west-1a", "us-east-1b")}, "availability_zones"),
        ({"account_id": "1234"}, "account_id"),
        ({"region": "Ireland"}, "region"),
        ({"flow_log_kms_key_arn": "alias/aws/logs"}, "flow_log_kms_key_arn"),
        ({"flow_log_kms_key_arn": ""}, "flow_log_kms_key_arn"),
        ({"flow_log_retention_days": 42}, "flow_log_retention_days"),
        ({"cidr": "10.40.0.0/27"}, "cidr"),  # too small for two /28+ subnets of a quarter each
    ],
)
def test_invalid_args_name_field_value_and_fix(overrides: dict, field: str):
    with pytest.raises(ArgsError) as caught:
        network_args(**overrides)
    assert field in {f.field for f in caught.value.problems}
    assert all(f.fix for f in caught.value.problems)
    assert "fix:" in str(caught.value)


def test_args_report_every_problem_at_once():
    with pytest.raises(ArgsError) as caught:
        network_args(cidr="52.0.0.0/16", availability_zones=("eu-west-1a",), account_id="x")
    assert {"cidr", "availability_zones", "account_id"} <= {f.field for f in caught.value.problems}
