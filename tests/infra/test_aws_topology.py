"""The aws topology on every committed aws-* stack: the security checklist (docs/security-checklist.md) on the synthesized graph.

Each stack file is synthesized under the recording mocks (no cloud, no engine) and judged three
ways: the policy rules (``policy/rules/``: docs/security-checklist.md as pure checks), explicit assertions of
each applicable §3 item below, and two offline scanners — botocore's API contract
(``lastmile.contract``: enums, ranges, patterns no provider checks) and parliament on every IAM/KMS/S3
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
from components.aws.monitoring import Baseline
from components.aws.monitoring_specs import DRIFT_NAMESPACE, MONITORING_LOG_GROUP
from lastmile.contract import check_graph
from infra.settings.aws import AWS_RULES, AwsSettings, sagemaker_traffic_steps
from infra.settings.common import Topology
from infra.settings.loader import ConfigError
from infra.settings.sections import Capacity, Rollout
from lastmile.synthesis import (
    STACKS_DIR,
    Graph,
    Node,
    RecordingMocks,
    RecordingMonitor,
    list_stacks,
    physical_name,
    synthesize,
)
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
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
MONITORING = "lastmile:aws:ModelMonitoring"
POLICY_DOCUMENTS = {KEY: "policy", ROLE: "assumeRolePolicy", ROLE_POLICY: "policy",
                    "aws:s3/bucketPolicy:BucketPolicy": "policy", TOPIC_POLICY: "policy"}
# Logical names: the stack key (EncryptionKey) and, with lastmile:observability, the alert topic's own key.
STACK_KEY, ALERT_KEY = "encryption-key", "monitoring-alerts-key"
EXECUTION_ROLE, MONITORING_ROLE = "execution-role", "monitoring-role"
OUTPUTS = {"environment", "endpoint_name", "endpoint_config_name", "variant_name", "model_names", "region", "model_version",
           "model_sha256", "artifact_bucket", "kms_key_arn", "rollback_alarm_names"}
MONITORING_OUTPUTS = {"alert_topic_arn", "monitoring_schedule_name", "monitoring_alarm_names", "dashboard_name"}
# AWS authorizes these only on Resource "*" (no resource-level permissions).
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
                         "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces", "ec2:DescribeDhcpOptions"}
# cloudwatch:PutMetricData has no resource-level permissions either; "*" is allowed for it only when the
# cloudwatch:namespace condition confines it to the data-quality namespace (the monitoring role).
METRICS_ON_STAR = ({"cloudwatch:PutMetricData"}, {"StringEquals": {"cloudwatch:namespace": DRIFT_NAMESPACE}})
# The monitoring role's inline policies (components/aws/monitoring_iam.py) and every action they grant;
# "-vpc" only when the stack places SageMaker in a VPC.
MONITORING_POLICIES = {"monitoring-s3": {"s3:GetObject", "s3:ListBucket", "s3:PutObject"},
                       "monitoring-kms": {"kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"},
                       "monitoring-metrics": {"cloudwatch:PutMetricData"},
                       "monitoring-logs": {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}}
MONITORING_VPC_POLICY = {"monitoring-vpc": {
    "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeDhcpOptions"}}
SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]


def statements(node: Node) -> list[dict[str, Any]]:
    return json.loads(node.inputs[POLICY_DOCUMENTS[node.type]])["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def principals(statement: dict[str, Any]) -> list[str]:
    """Every principal a statement names ("*" stays "*"), service lists flattened."""
    principal = statement["Principal"]
    return [principal] if principal == "*" else [p for value in principal.values() for p in as_list(value)]


def active_model(stack: str) -> str:
    serving = stack_config(stack)["lastmile:serving"]
    return serving["slots"][serving["active_slot"]]["model"]


def observed(stack: str) -> bool:
    """lastmile:observability is switched on in the stack file (the program then adds ModelMonitoring)."""
    return bool(stack_config(stack).get("lastmile:observability", {}).get("enabled", False))


def key_names(stack: str) -> set[str]:
    return {STACK_KEY, ALERT_KEY} if observed(stack) else {STACK_KEY}


def descendants(graph: Graph, component: Node) -> list[Node]:
    found, queue = [], [component]
    while queue:
        children = graph.children(queue.pop())
        found += children
        queue += children
    return found


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


@pytest.fixture
def graph(stack, stack_graph) -> Graph:
    return stack_graph(stack)


def test_every_aws_stack_is_committed_and_tested():
    assert sorted(s for s in list_stacks() if s.startswith("aws-")) == sorted(STACKS)


# ---------------------------------------------------------------------------------------------
# the security checklist (docs/security-checklist.md), as rules and as explicit assertions


def test_policy_rules_find_nothing(graph):
    assert [f.render() for f in evaluate(graph.to_json())] == []


def test_encryption(graph, stack):
    account = stack_config(stack)["lastmile:aws"]["account_id"]
    root = f"arn:aws:iam::{account}:root"
    assert {k.name for k in graph.of_type(KEY)} == key_names(stack)
    for key in graph.of_type(KEY):
        assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30, key.name
        for statement in statements(key):
            assert statement["Effect"] == "Allow" and "*" not in principals(statement), (key.name, statement)
            if "AWS" in statement["Principal"]:
                assert statement["Principal"] == {"AWS": root}, (key.name, statement)
    key_arn = graph.outputs["kms_key_arn"]
    for statement in statements(graph.named(STACK_KEY)):
        if "Service" in statement["Principal"]:
            assert "kms:EncryptionContext:aws:logs:arn" in statement["Condition"]["StringLike"]
    if observed(stack):
        # The alert topic's key: only this account's CloudWatch alarms and EventBridge rules may use it
        # (besides the account's IAM), and only to encrypt what they publish.
        alert_key = graph.named(ALERT_KEY)
        [services] = [s for s in statements(alert_key) if "Service" in s["Principal"]]
        assert sorted(principals(services)) == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
        assert sorted(as_list(services["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert services["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
        topic = graph.one(TOPIC)
        assert topic.inputs["kmsMasterKeyId"].endswith(":key/" + physical_name(KEY, ALERT_KEY))
        assert alert_key.urn in topic.depends_on
        job = graph.one(JOB).inputs
        assert job["dataQualityJobOutputConfig"]["kmsKeyId"] == key_arn
        assert job["jobResources"]["clusterConfig"]["volumeKmsKeyId"] == key_arn
        assert job["networkConfig"]["enableInterContainerTrafficEncryption"] is True
    else:
        assert not graph.of_type(TOPIC) and not graph.of_type(JOB)
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
    serving = graph.one("lastmile:aws:ModelEndpoint")
    rollback = [a for a in graph.of_type(ALARM) if a.parent == serving.urn]
    assert sorted(physical_name(ALARM, a.name) for a in rollback) == sorted(alarms)  # declared in this stack
    assert {a.urn for a in rollback} <= set(endpoint.depends_on)
    # Every other alarm is the watch's (ModelMonitoring): it notifies the alert topic and never rolls
    # a deployment back.
    watch = [a for a in graph.of_type(ALARM) if a.parent != serving.urn]
    assert not {a.urn for a in watch} & set(endpoint.depends_on)
    if observed(stack):
        [monitoring] = graph.of_type(MONITORING)
        assert {a.parent for a in watch} == {monitoring.urn}
        # 4XX, memory, CPU and invocations, plus one drift alarm per baseline feature
        assert len(watch) == 4 + len(Baseline.of(active_model(stack)).features)
        assert sorted(physical_name(ALARM, a.name) for a in watch) == sorted(graph.outputs["monitoring_alarm_names"])
        for alarm in watch:
            assert alarm.inputs["alarmActions"] == alarm.inputs["okActions"] == [graph.outputs["alert_topic_arn"]]
    else:
        assert watch == []
    if stack == "aws-prod":
        assert routing["type"] in ("CANARY", "LINEAR")
        assert all(v["initialInstanceCount"] >= 2 for v in config.inputs["productionVariants"])
        assert target.inputs["minCapacity"] >= 2


def test_state_safety(graph, stack):
    prod = stack == "aws-prod"
    stateful = [*(graph.named(k) for k in sorted(key_names(stack))), graph.one(BUCKET), graph.one(LOG_GROUP)]
    for node in stateful:
        assert (node.protect, node.retain_on_delete) == (prod, prod), node.name
    # The bucket's guards are protected with it, so a retained bucket keeps them; nothing else is.
    guards = {"artifacts-encryption", "artifacts-versioning", "artifacts-public-access", "artifacts-ownership",
              "artifacts-policy", "artifacts-lifecycle"}
    expected = {*key_names(stack), "artifacts-bucket", "serving-logs", *guards} if prod else set()
    assert {n.name for n in graph.nodes.values() if n.protect} == expected
    assert {n.name for n in graph.nodes.values() if n.retain_on_delete} == expected


def test_iam_least_privilege(graph, stack):
    account = stack_config(stack)["lastmile:aws"]["account_id"]
    roles = {role.name: role for role in graph.of_type(ROLE)}
    assert set(roles) == ({EXECUTION_ROLE, MONITORING_ROLE} if observed(stack) else {EXECUTION_ROLE})
    for role in roles.values():  # both are assumed by SageMaker, for this account only
        [trust] = statements(role)
        assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
        assert "managedPolicyArns" not in role.inputs, role.name
    assert not graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    for policy in graph.of_type(ROLE_POLICY):
        for statement in statements(policy):
            actions = set(as_list(statement["Action"]))
            assert statement["Effect"] == "Allow"
            assert not any("*" in action for action in actions), (policy.name, statement)
            if "*" in as_list(statement["Resource"]):
                assert actions <= STAR_RESOURCE_ACTIONS or (actions, statement.get("Condition")) == METRICS_ON_STAR, \
                    (policy.name, statement)
            if any(action.startswith("kms:") for action in actions):
                assert statement["Resource"] == graph.outputs["kms_key_arn"], (policy.name, statement)
    if observed(stack):
        _assert_monitoring_role_is_least_privilege(graph, stack)


def _assert_monitoring_role_is_least_privilege(graph: Graph, stack: str) -> None:
    """The monitoring job's role: its own capture, baseline and reports prefixes, the stack key, its
    metric namespace and log group, its VPC's interfaces; nothing of the endpoint's execution role."""
    region, account = stack_config(stack)["lastmile:aws"]["region"], stack_config(stack)["lastmile:aws"]["account_id"]
    endpoint, bucket = graph.outputs["endpoint_name"], f"arn:aws:s3:::{graph.outputs['artifact_bucket']}"
    role_name = physical_name(ROLE, MONITORING_ROLE)
    expected = MONITORING_POLICIES | (MONITORING_VPC_POLICY if stack_config(stack)["lastmile:aws"].get("vpc") else {})
    policies = [p for p in graph.of_type(ROLE_POLICY) if p.inputs["role"] == role_name]
    assert {p.name: {a for s in statements(p) for a in as_list(s["Action"])} for p in policies} == expected
    granted = [s for p in policies for s in statements(p)]

    def resources(action: str) -> list[str]:
        return sorted(r for s in granted if action in as_list(s["Action"]) for r in as_list(s["Resource"]))

    [baseline] = {o.inputs["key"].rsplit("/", 1)[0] + "/" for o in graph.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
                  if o.parent == graph.one(MONITORING).urn}
    assert resources("s3:GetObject") == sorted([f"{bucket}/data-capture/{endpoint}/*", f"{bucket}/{baseline}*"])
    assert resources("s3:PutObject") == [f"{bucket}/monitoring-reports/{endpoint}/*"]
    [listing] = [s for s in granted if "s3:ListBucket" in as_list(s["Action"])]
    assert listing["Resource"] == bucket
    assert sorted(listing["Condition"]["StringLike"]["s3:prefix"]) == sorted([f"data-capture/{endpoint}/*",
                                                                              f"{baseline}*"])
    [grant] = [s for s in granted if "kms:CreateGrant" in as_list(s["Action"])]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    log_group = f"arn:aws:logs:{region}:{account}:log-group:{MONITORING_LOG_GROUP}"
    assert resources("logs:PutLogEvents") == [log_group, f"{log_group}:log-stream:*"]
    # The job runs as this role, not as the endpoint's execution role.
    assert graph.one(JOB).inputs["roleArn"] == f"arn:aws:iam::{account}:role/{role_name}"


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
    assert set(outputs) == (OUTPUTS | MONITORING_OUTPUTS if observed(stack) else OUTPUTS)
    assert outputs["endpoint_name"] == graph.one(ENDPOINT).inputs["name"]
    assert outputs["endpoint_config_name"] == graph.one(CONFIG).inputs["name"] == graph.one(ENDPOINT).inputs["endpointConfigName"]
    assert outputs["variant_name"] == "primary"
    assert outputs["model_names"] == [v["modelName"] for key in ("productionVariants", "shadowProductionVariants")
                                      for v in graph.one(CONFIG).inputs.get(key, [])]
    assert outputs["region"] == stack_config(stack)["lastmile:aws"]["region"]
    assert (outputs["model_version"], outputs["model_sha256"]) == (active["version"], active["sha256"])
    assert graph.one(LOG_GROUP).inputs["name"] == LOG_GROUP_PREFIX + outputs["endpoint_name"]
    if not observed(stack):
        assert not graph.of_type(MONITORING)
        return
    schedule, job = graph.one(SCHEDULE).inputs, graph.one(JOB).inputs
    assert outputs["monitoring_schedule_name"] == schedule["name"]
    assert schedule["monitoringScheduleConfig"]["monitoringJobDefinitionName"] == job["name"]
    assert job["dataQualityJobInput"]["endpointInput"]["endpointName"] == outputs["endpoint_name"]
    assert outputs["dashboard_name"] == graph.one(DASHBOARD).inputs["dashboardName"]
    # The exported topic is the one the topic policy guards and every alarm and event rule notifies.
    topic_arn = outputs["alert_topic_arn"]
    assert graph.one(TOPIC_POLICY).inputs["arn"] == topic_arn
    # Both event rules (rollback alarms' state changes; runs with violations, retraining target "topic").
    assert [t.inputs["arn"] for t in graph.of_type(EVENT_TARGET)] == [topic_arn, topic_arn]
    assert [physical_name(ALARM, a.name) for a in graph.of_type(ALARM) if a.name.startswith("monitoring-")] == \
        outputs["monitoring_alarm_names"]


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
    # The watch (ModelMonitoring) is prod's only: the observed-stack branches of the tests above run there.
    assert [observed(s) for s in STACKS] == [False, False, True]
    assert [len(g.of_type(MONITORING)) for g in (dev, staging, prod)] == [0, 0, 1]


def test_stateful_urns_are_pinned(stack_graph):
    """Logical names are an API: renaming one of these replaces a key, a bucket or a log group."""
    prefix = "urn:pulumi:aws-prod::lastmile::"
    graph = stack_graph("aws-prod")
    pinned = {
        STACK_KEY: "lastmile:aws:EncryptionKey$aws:kms/key:Key::encryption-key",
        "artifacts-bucket": "lastmile:aws:ArtifactStore$aws:s3/bucket:Bucket::artifacts-bucket",
        "serving-logs": "lastmile:aws:ModelEndpoint$aws:cloudwatch/logGroup:LogGroup::serving-logs",
        # The alert topic's key: replacing it makes the encrypted topic unusable until repointed.
        ALERT_KEY: "lastmile:aws:ModelMonitoring$lastmile:aws:AlertTopic$aws:kms/key:Key::monitoring-alerts-key",
    }
    assert {n.name for n in graph.nodes.values() if n.retain_on_delete and n.type in (KEY, BUCKET, LOG_GROUP)} \
        == set(pinned)  # every retained key, bucket and log group is pinned here
    for name, urn in pinned.items():
        assert graph.named(name).urn == prefix + urn  # the engine's URN (RecordingMonitor.make_urn)
    for name in (STACK_KEY, "artifacts-bucket", "serving-logs"):  # one component deep: the mock URN is the engine's
        assert graph.named(name).urn == prefix + pinned[name]


# ---------------------------------------------------------------------------------------------
# Re-runs and releases (docs/design-notes.md §Failure modes #1, #2, #4, #5)


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
    for stateful in (STACK_KEY, ALERT_KEY, "artifacts-bucket", "serving-logs", "serving-scaling-target"):
        assert after.named(stateful).urn == before.named(stateful).urn
        assert after.named(stateful).inputs == before.named(stateful).inputs
    # Same model, same baseline: the watch (schedule, job, alarms, topic, dashboard) does not move on a release.
    watch_before = {n.urn: n.inputs for n in descendants(before, before.one(MONITORING))}
    watch_after = {n.urn: n.inputs for n in descendants(after, after.one(MONITORING))}
    assert len(watch_before) > 20 and watch_after == watch_before
    assert {k: after.outputs[k] for k in MONITORING_OUTPUTS} == {k: before.outputs[k] for k in MONITORING_OUTPUTS}


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
