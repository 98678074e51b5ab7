"""The aws topology on every committed aws-* stack: REFERENCE §3 on the synthesized graph.

Each stack file is synthesized under the recording mocks (no cloud, no engine) and judged three
ways: the policy rules (``policy/rules.py``, REFERENCE §3 as pure checks), explicit assertions of
each applicable §3 item below, and two offline scanners — botocore's API contract
(``infra.contract``: enums, ranges, patterns no provider checks) and parliament on every IAM/KMS/S3
policy document. Bad config must fail with a ConfigError naming the field and register nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from parliament import analyze_policy_string, enhance_finding

from components.aws.endpoint import LOG_GROUP_PREFIX
from infra.contract import check_graph
from infra.settings.aws import AWS_RULES, AwsSettings, sagemaker_traffic_steps
from infra.settings.common import Topology
from infra.settings.loader import ConfigError
from infra.settings.sections import Capacity, Rollout
from infra.synthesis import STACKS_DIR, Graph, Node, RecordingMocks, RecordingMonitor, list_stacks, synthesize
from policy.rules import evaluate

STACKS = ("aws-dev", "aws-staging", "aws-prod")
KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TARGET = "aws:appautoscaling/target:Target"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY_DOCUMENTS = {KEY: "policy", ROLE: "assumeRolePolicy", ROLE_POLICY: "policy",
                    "aws:s3/bucketPolicy:BucketPolicy": "policy"}
OUTPUTS = {"endpoint_name", "endpoint_config_name", "variant_name", "model_names", "region", "model_version",
           "model_sha256", "artifact_bucket", "kms_key_arn", "rollback_alarm_names"}
# AWS authorizes these only on Resource "*" (no resource-level permissions).
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
                         "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces", "ec2:DescribeDhcpOptions"}
SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]


def statements(node: Node) -> list[dict[str, Any]]:
    return json.loads(node.inputs[POLICY_DOCUMENTS[node.type]])["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


@pytest.fixture
def graph(stack, stack_graph) -> Graph:
    return stack_graph(stack)


def test_every_aws_stack_is_committed_and_tested():
    assert sorted(s for s in list_stacks() if s.startswith("aws-")) == sorted(STACKS)


# ---------------------------------------------------------------------------------------------
# REFERENCE §3, as rules and as explicit assertions


def test_policy_rules_find_nothing(graph):
    assert [f.render() for f in evaluate(graph.to_json())] == []


def test_encryption(graph, stack):
    key = graph.one(KEY)
    key_arn = graph.outputs["kms_key_arn"]
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    for statement in statements(key):
        principal = statement["Principal"]
        assert principal != "*" and "*" not in principal.values()
        if "Service" in principal:
            assert "kms:EncryptionContext:aws:logs:arn" in statement["Condition"]["StringLike"]
    assert graph.one(CONFIG).inputs["kmsKeyArn"] == key_arn
    [rule] = graph.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert rule == {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn},
                    "bucketKeyEnabled": True}
    for obj in graph.of_type("aws:s3/bucketObjectv2:BucketObjectv2"):
        assert (obj.inputs["serverSideEncryption"], obj.inputs["kmsKeyId"]) == ("aws:kms", key_arn)
    logs = graph.one(LOG_GROUP)
    assert logs.inputs["kmsKeyId"] == key_arn
    assert logs.inputs["retentionInDays"] == stack_config(stack)["lastmile:aws"]["log_retention_days"]
    capture = graph.one(CONFIG).inputs.get("dataCaptureConfig")
    if capture:
        assert capture["kmsKeyId"] == key_arn


def test_bucket_is_private_tls_only_and_versioned(graph):
    block = graph.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[f] is True for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert graph.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"}
    assert graph.one("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    [deny] = statements(graph.one("aws:s3/bucketPolicy:BucketPolicy"))
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert "bucket" not in graph.one(BUCKET).inputs  # auto-named


def test_network(graph, stack):
    vpc = stack_config(stack)["lastmile:aws"].get("vpc")
    for model in graph.of_type(MODEL):
        assert model.inputs["enableNetworkIsolation"] is True
        if stack == "aws-dev":
            assert vpc is None and "vpcConfig" not in model.inputs
            continue
        subnets = model.inputs["vpcConfig"]["subnets"]
        zones = {s["availability_zone"] for s in vpc["subnets"] if s["id"] in subnets}
        assert len(subnets) >= 2 and len(zones) == len(subnets)
        if stack == "aws-prod":
            assert len(zones) == 3


def test_availability(graph, stack):
    config, endpoint, target = graph.one(CONFIG), graph.one(ENDPOINT), graph.one(TARGET)
    routing = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    alarms = [a["alarmName"] for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]]
    assert alarms == graph.outputs["rollback_alarm_names"] and len(alarms) == 2
    assert {a.urn for a in graph.of_type(ALARM)} <= set(endpoint.depends_on)  # declared in this stack
    if stack == "aws-prod":
        assert routing["type"] in ("CANARY", "LINEAR")
        assert all(v["initialInstanceCount"] >= 2 for v in config.inputs["productionVariants"])
        assert target.inputs["minCapacity"] >= 2


def test_state_safety(graph, stack):
    prod = stack == "aws-prod"
    for node in (graph.one(KEY), graph.one(BUCKET), graph.one(LOG_GROUP)):
        assert (node.protect, node.retain_on_delete) == (prod, prod), node.name
    # The bucket's guards are protected with it, so a retained bucket keeps them; nothing else is.
    guards = {"artifacts-encryption", "artifacts-versioning", "artifacts-public-access", "artifacts-ownership",
              "artifacts-policy", "artifacts-lifecycle"}
    expected = {"encryption-key", "artifacts-bucket", "serving-logs", *guards} if prod else set()
    assert {n.name for n in graph.nodes.values() if n.protect} == expected


def test_iam_least_privilege(graph, stack):
    account = stack_config(stack)["lastmile:aws"]["account_id"]
    [trust] = statements(graph.one(ROLE))
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
    assert "managedPolicyArns" not in graph.one(ROLE).inputs
    assert not graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    for policy in graph.of_type(ROLE_POLICY):
        for statement in statements(policy):
            assert statement["Effect"] == "Allow"
            assert not any("*" in action for action in as_list(statement["Action"])), (policy.name, statement)
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= STAR_RESOURCE_ACTIONS, (policy.name, statement)
            if "kms:Decrypt" in statement["Action"]:
                assert statement["Resource"] == graph.outputs["kms_key_arn"]


def test_parliament_finds_nothing_above_low(graph):
    analysed = 0
    for node in graph.nodes.values():
        field = POLICY_DOCUMENTS.get(node.type)
        if field is None:
            continue
        analysed += 1
        for finding in map(enhance_finding, analyze_policy_string(node.inputs[field]).findings):
            if SEVERITIES.index(finding.severity) <= SEVERITIES.index("LOW"):
                continue  # e.g. RESOURCE_STAR in the key policy, where "*" means "this key"
            if field == "assumeRolePolicy" and finding.issue == "MALFORMED" and "neither Resource" in str(finding.detail):
                continue  # a trust policy never has a Resource; parliament reads every document as an identity policy
            pytest.fail(f"parliament {finding.severity} {finding.issue} on {node.name}: {finding.detail}")
    assert analysed >= 6  # key policy, trust policy, bucket policy and the role's inline policies


def test_sagemaker_requests_satisfy_the_api_contract(graph):
    report = check_graph(graph)
    assert report.ok, report.text()


# ---------------------------------------------------------------------------------------------
# Provider, outputs, stack differences


def test_every_aws_resource_uses_the_stacks_explicit_provider(graph, stack):
    aws = stack_config(stack)["lastmile:aws"]
    provider = graph.one("pulumi:providers:aws")
    assert provider.inputs["region"] == aws["region"]
    assert json.loads(provider.inputs["allowedAccountIds"]) == [aws["account_id"]]
    assert json.loads(provider.inputs["defaultTags"]) == {
        "tags": {"lastmile:stack": stack, "lastmile:env": stack.split("-")[1]}}
    custom = [n for n in graph.nodes.values() if n.custom and n.type.startswith("aws:")]
    assert custom and all(n.provider == provider.name for n in custom)


def test_outputs(graph, stack):
    serving = stack_config(stack)["lastmile:serving"]
    active = serving["slots"][serving["active_slot"]]
    outputs = graph.outputs
    assert set(outputs) == OUTPUTS
    assert outputs["endpoint_name"] == graph.one(ENDPOINT).inputs["name"]
    assert outputs["endpoint_config_name"] == graph.one(CONFIG).inputs["name"] == graph.one(ENDPOINT).inputs["endpointConfigName"]
    assert outputs["variant_name"] == "primary"
    assert outputs["model_names"] == [v["modelName"] for key in ("productionVariants", "shadowProductionVariants")
                                      for v in graph.one(CONFIG).inputs.get(key, [])]
    assert outputs["region"] == stack_config(stack)["lastmile:aws"]["region"]
    assert (outputs["model_version"], outputs["model_sha256"]) == (active["version"], active["sha256"])
    assert graph.one(LOG_GROUP).inputs["name"] == LOG_GROUP_PREFIX + outputs["endpoint_name"]


def test_stacks_differ_as_designed(stack_graph):
    dev, staging, prod = (stack_graph(s) for s in STACKS)

    def routing(g):
        return g.one(ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]

    def variant(g):
        return g.one(CONFIG).inputs["productionVariants"][0]

    assert routing(dev)["type"] == "ALL_AT_ONCE" and variant(dev)["initialInstanceCount"] == 1
    assert dev.one(CONFIG).inputs["dataCaptureConfig"]["initialSamplingPercentage"] == 100
    assert routing(staging)["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 25}
    assert variant(staging)["initialInstanceCount"] == 2
    [shadow] = staging.one(CONFIG).inputs["shadowProductionVariants"]
    green = staging.named("serving-model-green")
    assert shadow["modelName"] == green.inputs["name"] and "/1.1.0/" in green.inputs["primaryContainer"]["modelDataUrl"]
    assert routing(prod)["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 10}
    assert prod.one(TARGET).inputs["minCapacity"] == 2 and prod.one(TARGET).inputs["maxCapacity"] == 8
    assert "shadowProductionVariants" not in prod.one(CONFIG).inputs


def test_stateful_urns_are_pinned(stack_graph):
    """Logical names are an API: renaming one of these replaces a key, a bucket or a log group."""
    prefix = "urn:pulumi:aws-prod::lastmile::"
    graph = stack_graph("aws-prod")
    assert graph.one(KEY).urn == prefix + "lastmile:aws:EncryptionKey$aws:kms/key:Key::encryption-key"
    assert graph.one(BUCKET).urn == prefix + "lastmile:aws:ArtifactStore$aws:s3/bucket:Bucket::artifacts-bucket"
    assert graph.one(LOG_GROUP).urn == prefix + "lastmile:aws:ModelEndpoint$aws:cloudwatch/logGroup:LogGroup::serving-logs"


# ---------------------------------------------------------------------------------------------
# Re-runs and releases (REFERENCE §1 #1, #2, #4, #5)


def test_a_rerun_is_identical(stack, stack_graph):
    """Nothing depends on live state or on run order: a no-change `pulumi up` sends nothing."""
    assert synthesize(stack).dumps() == stack_graph(stack).dumps()


def test_promotion_repoints_the_endpoint_to_a_new_config(stack_graph):
    before = stack_graph("aws-prod")
    serving = copy.deepcopy(stack_config("aws-prod")["lastmile:serving"])
    serving["active_slot"] = "green"
    after = synthesize("aws-prod", overrides={"lastmile:serving": serving})
    assert after.one(CONFIG).inputs["name"] != before.one(CONFIG).inputs["name"]
    assert after.one(ENDPOINT).inputs["endpointConfigName"] == after.one(CONFIG).inputs["name"]
    assert after.one(ENDPOINT).inputs["name"] == before.one(ENDPOINT).inputs["name"]
    assert after.one(CONFIG).inputs["productionVariants"][0]["variantName"] == "primary"
    assert after.outputs["model_version"] == "1.1.0"
    for stateful in (KEY, BUCKET, LOG_GROUP, TARGET):
        assert after.one(stateful).urn == before.one(stateful).urn
        assert after.one(stateful).inputs == before.one(stateful).inputs


# ---------------------------------------------------------------------------------------------
# Bad config: a ConfigError naming the field, and not one resource registered (issue #2)


def _with(key: str, **changes: Any) -> dict[str, Any]:
    section = copy.deepcopy(stack_config("aws-prod")[key])
    section.update(changes)
    return {key: section}


def _tampered_digest() -> dict[str, Any]:
    serving = copy.deepcopy(stack_config("aws-prod")["lastmile:serving"])
    serving["slots"]["blue"]["sha256"] = "f" * 64
    return {"lastmile:serving": serving}


BAD_CONFIGS = {
    "canary of 60 %": (_with("lastmile:rollout", step_percent=60), "rollout.step_percent"),
    "a 4000 s wait": (_with("lastmile:rollout", wait_seconds=4000), "rollout.wait_seconds"),
    "prod with one instance": (_with("lastmile:capacity", min_count=1, initial_count=1), "capacity.min_count"),
    "artifact digest mismatch": (_tampered_digest(), "serving.slots.blue.sha256"),
    "an unknown key": (_with("lastmile:aws", instance_typ="ml.m5.large"), "aws.instance_typ"),
    "an unknown section": ({"lastmile:capcity": {"min_count": 2}}, "capcity"),
    "no model release": ({"lastmile:serving": {"active_slot": "blue", "slots": {}}}, "serving.slots"),
}


@pytest.mark.parametrize("overrides, field", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_fails_naming_the_field_and_registers_nothing(overrides, field):
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        synthesize("aws-prod", overrides=overrides, monitor=monitor)
    assert field in [p.field for p in caught.value.problems]
    assert f"lastmile:{field}" in str(caught.value)
    assert monitor.nodes == {}


# ---------------------------------------------------------------------------------------------
# AWS_RULES: SageMaker-only limits on top of the common rules


def _sections(strategy: str, step: int | None, initial: int) -> dict[str, Any]:
    return {"topology": Topology.AWS, "rollout": Rollout(strategy=strategy, step_percent=step),
            "capacity": Capacity(min_count=1, max_count=4, initial_count=initial),
            "aws": AwsSettings(account_id="123456789012", region="eu-west-1")}


@pytest.mark.parametrize("strategy, step, initial, fields", [
    ("linear", 5, 2, ["rollout.step_percent"]),
    ("canary", 10, 1, ["capacity.initial_count"]),
    ("linear", 10, 2, []),
    ("all_at_once", None, 1, []),
])
def test_sagemaker_traffic_steps(strategy, step, initial, fields):
    assert [p.field for p in sagemaker_traffic_steps(_sections(strategy, step, initial))] == fields


@pytest.mark.parametrize("rollout, field", [
    ({"strategy": "canary", "step_percent": 25}, "capacity.initial_count"),  # dev starts one instance
    ({"strategy": "linear", "step_percent": 5, "wait_seconds": 60, "bake_seconds": 0}, "rollout.step_percent"),
])
def test_sagemaker_rules_stop_the_program_before_any_resource(rollout, field):
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        synthesize("aws-dev", overrides={"lastmile:rollout": rollout}, monitor=monitor)
    assert field in [p.field for p in caught.value.problems]
    assert monitor.nodes == {}


def test_aws_rules_run_in_the_loader():
    from infra.settings.loader import RULES

    assert all(rule in RULES for rule in AWS_RULES)
