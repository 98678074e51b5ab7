"""PrivateServiceAccess under recording mocks: private DNS, account-only policies, narrow security groups."""

from __future__ import annotations

import json

import pytest

from components.problems import ArgsError
from components.network.private_access import InterfaceService, PrivateServiceAccess
from lastmile.synthesis import MOCK_ACCOUNT_ID, MOCK_REGION, Graph
from lastmile.synthesis import MOCK_RESOLVER_IPS as RESOLVER_IPS
from network_helpers import ONPREM_CIDRS, VPC_CIDR, access_args

ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SG = "aws:ec2/securityGroup:SecurityGroup"
ENDPOINT_ARN = f"arn:aws:sagemaker:{MOCK_REGION}:{MOCK_ACCOUNT_ID}:endpoint/iris-classifier"


def _access(run, **overrides) -> Graph:
    def program():
        access = PrivateServiceAccess("pa", access_args(**overrides))
        return {"endpoint_ids": access.endpoint_ids, "resolver_inbound_ips": access.resolver_inbound_ips,
                "security_group_id": access.security_group_id}

    return run(program)


def _endpoints(graph: Graph) -> dict[str, dict]:
    prefix = f"com.amazonaws.{MOCK_REGION}."
    return {n.inputs["serviceName"].removeprefix(prefix): n.inputs for n in graph.of_type(ENDPOINT)}


def test_interface_endpoints_with_private_dns_in_every_subnet(mock_run):
    graph = _access(mock_run)
    endpoints = _endpoints(graph)
    assert set(endpoints) == {"sagemaker.runtime", "sagemaker.api", "ecr.api", "ecr.dkr", "logs", "sts", "s3"}
    sg_id = graph.outputs["security_group_id"]
    for service in InterfaceService:
        inputs = endpoints[service.value]
        assert inputs["vpcEndpointType"] == "Interface"
        assert inputs["privateDnsEnabled"] is True
        assert inputs["subnetIds"] == ["subnet-0a", "subnet-0b"]
        assert inputs["securityGroupIds"] == [sg_id]
    assert set(graph.outputs["endpoint_ids"]) == set(endpoints)


def test_s3_gateway_endpoint_on_the_private_route_tables(mock_run):
    s3 = _endpoints(_access(mock_run))["s3"]
    assert s3["vpcEndpointType"] == "Gateway" and s3["routeTableIds"] == ["rtb-0a", "rtb-0b"]


def test_every_endpoint_policy_admits_only_this_account(mock_run):
    for service, inputs in _endpoints(_access(mock_run)).items():
        policy = json.loads(inputs["policy"])
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": MOCK_ACCOUNT_ID}}, service
            actions = statement["Action"]
            assert "*" not in actions, f"{service}: a bare * action"
            prefix = {"sagemaker.runtime": "sagemaker", "sagemaker.api": "sagemaker", "ecr.api": "ecr",
                      "ecr.dkr": "ecr", "logs": "logs", "sts": "sts", "s3": "s3"}[service]
            assert all(a.startswith(prefix + ":") for a in actions), (service, actions)


def test_runtime_endpoint_only_invokes(mock_run):
    policy = json.loads(_endpoints(_access(mock_run))["sagemaker.runtime"]["policy"])
    (statement,) = policy["Statement"]
    assert sorted(statement["Action"]) == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"]
    assert statement["Resource"] == [f"arn:aws:sagemaker:{MOCK_REGION}:{MOCK_ACCOUNT_ID}:endpoint/*"]


def test_runtime_endpoint_limited_to_the_named_endpoint(mock_run):
    policy = json.loads(_endpoints(_access(mock_run, sagemaker_endpoint_arn=ENDPOINT_ARN))["sagemaker.runtime"]["policy"])
    assert policy["Statement"][0]["Resource"] == [ENDPOINT_ARN]


def test_endpoint_security_group_admits_only_https_from_onprem_and_the_vpc(mock_run):
    sg = _access(mock_run).named("pa-endpoints-sg").inputs
    (rule,) = sg["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443)
    assert sorted(rule["cidrBlocks"]) == sorted([*ONPREM_CIDRS, VPC_CIDR])
    assert sg["egress"] == []


def test_resolver_admits_only_dns_from_onprem(mock_run):
    sg = _access(mock_run).named("pa-resolver-sg").inputs
    assert sorted((r["protocol"], r["fromPort"], r["toPort"]) for r in sg["ingress"]) == [("tcp", 53, 53), ("udp", 53, 53)]
    assert all(sorted(r["cidrBlocks"]) == sorted(ONPREM_CIDRS) for r in sg["ingress"])
    assert sg["egress"] == []


def test_inbound_resolver_has_two_addresses_in_two_subnets(mock_run):
    graph = _access(mock_run)
    node = graph.one("aws:route53/resolverEndpoint:ResolverEndpoint")
    resolver = node.inputs
    assert resolver["direction"] == "INBOUND"
    assert [a["subnetId"] for a in resolver["ipAddresses"]] == ["subnet-0a", "subnet-0b"]
    (sg_id,) = resolver["securityGroupIds"]  # the resolver's own group, not the endpoints' 443 group
    assert sg_id.startswith("pa-resolver-sg-") and graph.named("pa-resolver-sg").urn in node.depends_on
    assert graph.outputs["resolver_inbound_ips"] == list(RESOLVER_IPS)


def test_children_are_parented(mock_run):
    graph = _access(mock_run)
    component = graph.one("lastmile:network:PrivateServiceAccess")
    assert all(n.parent == component.urn for n in graph.nodes.values() if n.custom)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"interface_services": (InterfaceService.ECR_API,)}, "interface_services"),
        ({"interface_services": ("sagemaker.runtime",)}, "interface_services"),
        ({"subnet_ids": ("subnet-0a",)}, "subnet_ids"),
        ({"route_table_ids": ()}, "route_table_ids"),
        ({"onprem_cidrs": ("10.40.128.0/17",)}, "onprem_cidrs.0"),  # inside the VPC
        ({"onprem_cidrs": ("0.0.0.0/0",)}, "onprem_cidrs.0"),
        ({"vpc_cidr": "8.0.0.0/16"}, "vpc_cidr"),
        ({"sagemaker_endpoint_arn": "iris-classifier"}, "sagemaker_endpoint_arn"),
        ({"account_id": "abc"}, "account_id"),
    ],
)
def test_invalid_args_name_field_value_and_fix(overrides: dict, field: str):
    with pytest.raises(ArgsError) as caught:
        access_args(**overrides)
    assert field in {f.field for f in caught.value.problems}, caught.value
