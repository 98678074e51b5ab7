"""ModelMonitoring composed with the serving components: encrypted, isolated, least-privileged, one
health definition, and every rollback alarm the endpoint references declared once in the graph."""

from __future__ import annotations

import dataclasses
import json

import pytest

from args_errors import reported_fields
from aws_constants import ACCOUNT, IMAGE, REGION, RELEASES
from components.aws.alarms import AlarmThresholds
from components.aws.artifact_store import ArtifactStore, ArtifactStoreArgs, ModelArtifact
from components.aws.endpoint import (
    LOG_GROUP_PREFIX,
    DataCapture,
    ModelEndpoint,
    ModelEndpointArgs,
    PrivateSubnet,
    Scaling,
    ServedModel,
    VpcPlacement,
)
from components.aws.execution_role import ExecutionRole, ExecutionRoleArgs
from components.aws.kms import EncryptionKey, EncryptionKeyArgs
from components.aws.monitoring import (
    Baseline,
    ModelMonitoring,
    ModelMonitoringArgs,
    MonitoringNetwork,
    Retraining,
)
from components.aws.monitoring_specs import (
    ANALYZER_ACCOUNTS,
    DRIFT_NAMESPACE,
    Cadence,
    HealthThresholds,
    RetrainingTarget,
    analyzer_image_uri,
)
from components.aws.rollout import RolloutPolicy, TrafficRouting
from components.problems import ArgsError
from components.slots import Slot
from lastmile.contract import check_graph
from lastmile.synthesis import Graph, physical_name
from policy.rules import evaluate

NAME = "lastmile-monitoring-prod-0123456789ab"
STACK = "monitoring-prod"  # judged as prod by policy.rules
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
TOPIC = "aws:sns/topic:Topic"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
SUBNETS = (PrivateSubnet(subnet_id="subnet-0a1b2c3d4e5f60011", availability_zone="eu-west-1a"),
           PrivateSubnet(subnet_id="subnet-0a1b2c3d4e5f60012", availability_zone="eu-west-1b"))
SECURITY_GROUPS = ("sg-0a1b2c3d4e5f60010",)
ROLLBACK = AlarmThresholds(error_5xx_count=3, latency_p99_ms=300, evaluation_minutes=2)
HEALTH = HealthThresholds(error_4xx_percent=5, memory_percent=85, cpu_percent=80, invocations_per_instance_high=900)
FEATURES = Baseline.of("iris-classifier").features


def monitoring_args(store, key, endpoint, **overrides) -> ModelMonitoringArgs:
    values = dict(
        account_id=ACCOUNT, region=REGION, endpoint_name=NAME, variant_name="primary", instance_type="ml.m5.xlarge",
        artifact_store=store, kms_key_arn=key.arn, baseline=Baseline.of("iris-classifier"),
        rollback_alarm_names=endpoint.alarm_names, rollback_thresholds=ROLLBACK, health=HEALTH, drift_threshold=0.1,
        network=MonitoringNetwork(subnet_ids=tuple(s.subnet_id for s in SUBNETS), security_group_ids=SECURITY_GROUPS),
        emails=("ml-oncall@example.com",), https_endpoints=("https://hooks.example.com/lastmile",),
        depends_on=(endpoint,), protect_state=True)
    return ModelMonitoringArgs(**(values | overrides))


def stack(mock_run, **overrides) -> Graph:
    """The aws topology's serving components plus ModelMonitoring, as infra/topologies/aws.py composes them."""

    def program():
        release = RELEASES["1.0.0"]
        key = EncryptionKey("encryption", EncryptionKeyArgs(
            account_id=ACCOUNT, region=REGION, description="test", log_group_names=(LOG_GROUP_PREFIX + NAME,),
            protect_state=True))
        store = ArtifactStore("artifacts", ArtifactStoreArgs(kms_key_arn=key.arn, protect_state=True, artifacts=(
            ModelArtifact(model="iris-classifier", version="1.0.0", sha256=release.sha256, path=release.artifact_path),)))
        role = ExecutionRole("execution", ExecutionRoleArgs(
            account_id=ACCOUNT, region=REGION, image_uris=(IMAGE,), log_group_name=LOG_GROUP_PREFIX + NAME,
            vpc_subnet_ids=tuple(s.subnet_id for s in SUBNETS), vpc_security_group_ids=SECURITY_GROUPS))
        endpoint = ModelEndpoint("serving", ModelEndpointArgs(
            endpoint_name=NAME, execution_role_arn=role.arn, kms_key_arn=key.arn, instance_type="ml.m5.xlarge",
            primary=ServedModel(slot=Slot.BLUE, image_uri=IMAGE,
                                model_data_url=store.model_data_urls[("iris-classifier", "1.0.0")]),
            scaling=Scaling(initial_instance_count=3, min_instance_count=2, max_instance_count=8,
                            target_invocations_per_instance=600),
            rollout=RolloutPolicy(routing=TrafficRouting.CANARY, step_percent=10, wait_seconds=600, bake_seconds=900,
                                  max_execution_seconds=5400),
            alarms=ROLLBACK, log_retention_days=731, vpc=VpcPlacement(subnets=SUBNETS, security_group_ids=SECURITY_GROUPS),
            data_capture=DataCapture(destination_s3_uri=store.capture_uri(f"{NAME}/"), sampling_percent=10),
            permissions=(role,), protect_state=True))
        monitoring = ModelMonitoring("monitoring", monitoring_args(store, key, endpoint, **overrides))
        return {"topic_arn": monitoring.topic_arn, "alarm_names": monitoring.alarm_names,
                "rollback_alarm_names": endpoint.alarm_names, "schedule_name": monitoring.schedule_name,
                "job_definition_name": monitoring.job_definition_name}

    return mock_run(program, stack=STACK)


@pytest.fixture
def graph(mock_run) -> Graph:
    return stack(mock_run)


def monitoring_nodes(graph: Graph, type_: str):
    return [n for n in graph.of_type(type_) if n.name.startswith("monitoring")]


def doc(node, field="policy") -> dict:
    return json.loads(node.inputs[field])


# -- composition and policy ------------------------------------------------------------------


def test_children_are_parented_and_logical_names_pinned(graph):
    component = graph.one("lastmile:aws:ModelMonitoring")
    alerts = graph.one("lastmile:aws:AlertTopic")
    children = graph.children(component)
    assert alerts.parent == component.urn
    assert {n.name for n in children} == {
        "monitoring-alerts", "monitoring-constraints", "monitoring-preprocessor", "monitoring-statistics",
        "monitoring-role", "monitoring-s3", "monitoring-kms", "monitoring-metrics", "monitoring-logs", "monitoring-vpc",
        "monitoring-job", "monitoring-schedule", "monitoring-alarm-4xx-rate", "monitoring-alarm-memory",
        "monitoring-alarm-cpu", "monitoring-alarm-invocations-high", "monitoring-rollback-alarms",
        "monitoring-rollback-alarms-target", "monitoring-violations", "monitoring-violations-target",
        "monitoring-dashboard", *(f"monitoring-alarm-drift-{f.replace('_', '-')}" for f in FEATURES),
    }
    assert {n.name for n in graph.children(alerts)} >= {"monitoring-alerts-key", "monitoring-alerts-topic",
                                                        "monitoring-alerts-policy"}


def test_policy_rules_find_nothing(graph):
    findings = evaluate(graph.to_json())
    assert findings == [], "\n".join(f.render() for f in findings)


def test_pipeline_variant_and_dev_variant_pass_the_policy_rules_too(mock_run):
    for overrides in ({"retraining": Retraining(target=RetrainingTarget.PIPELINE, pipeline_name="iris-retrain")},
                      {"network": None, "allow_without_vpc": True, "cadence": Cadence.DAILY}):
        findings = evaluate(stack(mock_run, **overrides).to_json())
        assert findings == [], "\n".join(f.render() for f in findings)


def test_alarm_requests_pass_the_botocore_contract(graph):
    report = check_graph(graph)
    assert report.ok, report.text()
    checked = [r for r in report.requests if r.operation == "PutMetricAlarm" and "ModelMonitoring" in r.resource]
    assert len(checked) == 4 + len(FEATURES)


def test_every_rollback_alarm_the_endpoint_references_is_declared_once(graph):
    endpoint = graph.one("aws:sagemaker/endpoint:Endpoint")
    referenced = [a["alarmName"] for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]]
    alarm_names = [n.inputs.get("name") or physical_name(n.type, n.name) for n in graph.of_type(ALARM)]
    assert len(referenced) == 2
    assert all(alarm_names.count(name) == 1 for name in referenced)
    # Monitoring adds no 5XX / latency alarm of its own: the rollback alarms are the one definition.
    metrics = {n.inputs.get("metricName") for n in monitoring_nodes(graph, ALARM)}
    assert not metrics & {"Invocation5XXErrors", "ModelLatency"}
    rule = graph.named("monitoring-rollback-alarms")
    assert doc(rule, "eventPattern")["detail"]["alarmName"] == referenced
    assert graph.outputs["rollback_alarm_names"] == referenced


# -- the data-quality job --------------------------------------------------------------------


def test_job_is_isolated_encrypted_and_bounded(graph):
    job = graph.one(JOB).inputs
    key = graph.named("encryption-key").inputs["arn"] if "arn" in graph.named("encryption-key").inputs else None
    assert job["networkConfig"]["enableNetworkIsolation"] is True
    assert job["networkConfig"]["enableInterContainerTrafficEncryption"] is True
    assert job["networkConfig"]["vpcConfig"] == {"securityGroupIds": list(SECURITY_GROUPS),
                                                 "subnets": sorted(s.subnet_id for s in SUBNETS)}
    volume_key = job["jobResources"]["clusterConfig"]["volumeKmsKeyId"]
    assert volume_key and volume_key == job["dataQualityJobOutputConfig"]["kmsKeyId"]
    assert key is None or volume_key == key
    assert job["stoppingCondition"]["maxRuntimeInSeconds"] <= 3600
    assert job["roleArn"].endswith("monitoring-role-" + job["roleArn"].rsplit("-", 1)[-1])
    assert job["dataQualityJobInput"]["endpointInput"]["endpointName"] == NAME
    assert job["dataQualityJobOutputConfig"]["monitoringOutputs"]["s3Output"]["s3Uri"].endswith(
        f"/monitoring-reports/{NAME}/")
    assert job["name"].startswith(NAME[:40]) and len(job["name"]) <= 63


def test_job_waits_for_its_permissions_and_the_schedule_for_the_endpoint(graph):
    job, schedule = graph.one(JOB), graph.one(SCHEDULE)
    grants = {n.urn for n in graph.of_type(ROLE_POLICY) if n.name.startswith("monitoring-")}
    uploads = {n.urn for n in monitoring_nodes(graph, OBJECT)}
    assert grants | uploads <= set(job.depends_on)
    assert graph.one("aws:sagemaker/endpoint:Endpoint").urn in schedule.depends_on  # the component expands to its children
    config = schedule.inputs["monitoringScheduleConfig"]
    assert config == {"monitoringType": "DataQuality", "monitoringJobDefinitionName": job.inputs["name"],
                      "scheduleConfig": {"scheduleExpression": "cron(0 * ? * * *)"}}


def test_analyzer_image_table_matches_sagemaker_core():
    from sagemaker.core import image_uris

    for region in ANALYZER_ACCOUNTS:
        assert analyzer_image_uri(region) == image_uris.retrieve("model-monitor", region=region)
    with pytest.raises(ValueError, match="no Model Monitor analyzer image pinned"):
        analyzer_image_uri("ap-south-2")


def test_baseline_is_uploaded_encrypted_with_the_stack_threshold(graph):
    uploads = {n.name: n.inputs for n in monitoring_nodes(graph, OBJECT)}
    assert set(uploads) == {"monitoring-statistics", "monitoring-constraints", "monitoring-preprocessor"}
    prefixes = {inputs["key"].rsplit("/", 1)[0] for inputs in uploads.values()}
    assert len(prefixes) == 1 and prefixes.pop().startswith("monitoring/iris-classifier/")
    for inputs in uploads.values():
        assert inputs["serverSideEncryption"] == "aws:kms" and inputs["kmsKeyId"] and inputs["bucketKeyEnabled"]
        assert inputs["checksumAlgorithm"] == "SHA256"
    constraints = json.loads(uploads["monitoring-constraints"]["content"])
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1
    job = graph.one(JOB).inputs
    assert job["dataQualityBaselineConfig"]["constraintsResource"]["s3Uri"].endswith(uploads["monitoring-constraints"]["key"])
    assert job["dataQualityAppSpecification"]["recordPreprocessorSourceUri"].endswith("/preprocessor.py")


def test_a_new_threshold_is_a_new_baseline_prefix_and_job_definition(mock_run):
    first, second = stack(mock_run), stack(mock_run, drift_threshold=0.2)
    assert graph_key(first) != graph_key(second)
    assert first.one(JOB).inputs["name"] != second.one(JOB).inputs["name"]
    assert first.one(SCHEDULE).inputs["name"] == second.one(SCHEDULE).inputs["name"]


def graph_key(graph: Graph) -> str:
    return graph.named("monitoring-constraints").inputs["key"]


# -- IAM ---------------------------------------------------------------------------------------


def test_monitoring_role_is_trusted_by_sagemaker_for_this_account_only(graph):
    trust = doc(graph.named("monitoring-role"), "assumeRolePolicy")["Statement"]
    assert trust == [{"Sid": "ServiceAssumesForThisAccount", "Effect": "Allow",
                      "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole",
                      "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]


def test_monitoring_role_reads_capture_and_baseline_writes_reports_only(graph):
    s3 = {s["Sid"]: s for s in doc(graph.named("monitoring-s3"))["Statement"]}
    bucket = graph.named("artifacts-bucket").inputs["arn"] if "arn" in graph.named("artifacts-bucket").inputs else None
    reads = s3["ReadCaptureAndBaseline"]["Resource"]
    assert [r.split("/", 1)[1] for r in reads] == sorted([f"data-capture/{NAME}/*", reads[1].split("/", 1)[1]])
    assert any(r.split("/", 1)[1].startswith("monitoring/iris-classifier/") for r in reads)
    assert s3["WriteReports"]["Action"] == ["s3:PutObject"]
    assert s3["WriteReports"]["Resource"].endswith(f"/monitoring-reports/{NAME}/*")
    assert bucket is None or all(r.startswith(bucket) for r in reads)
    kms = doc(graph.named("monitoring-kms"))["Statement"]
    assert {s["Resource"] for s in kms} == {graph.one(JOB).inputs["dataQualityJobOutputConfig"]["kmsKeyId"]}
    metrics = doc(graph.named("monitoring-metrics"))["Statement"][0]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": DRIFT_NAMESPACE}}
    logs = doc(graph.named("monitoring-logs"))["Statement"][0]
    assert all(":log-group:/aws/sagemaker/ProcessingJobs" in r for r in logs["Resource"])


@pytest.mark.parametrize("read, write, field", [
    (("data-capture/ep/", "monitoring/*/"), "monitoring-reports/ep/", "read_prefixes.1"),
    (("data-capture/ep/",), "monitoring-reports//", "write_prefix"),
    (("data-capture/ep/", "../models/"), "monitoring-reports/ep/", "read_prefixes.1"),
    (("data-capture/ep",), "monitoring-reports/ep/", "read_prefixes.0"),
])
def test_monitoring_role_refuses_prefixes_that_could_widen_its_grants(read, write, field):
    """The same key-prefix rule as the artifact store's grants (components/aws/iam.py)."""
    from components.aws.monitoring_iam import monitoring_role_statements

    with pytest.raises(ArgsError) as raised:
        monitoring_role_statements(account_id=ACCOUNT, region=REGION, bucket_arn="arn:aws:s3:::b",
                                   read_prefixes=read, write_prefix=write, kms_key_arn="arn:aws:kms:k")
    assert [p.field for p in raised.value.problems] == [field]


def test_iam_documents_have_no_wildcard_actions_and_pass_parliament(mock_run):
    import parliament

    graph = stack(mock_run, retraining=Retraining(target=RetrainingTarget.PIPELINE, pipeline_name="iris-retrain",
                                                  pipeline_parameters={"Reason": "drift"}))
    policies = [n for n in graph.of_type(ROLE_POLICY) if n.name.startswith("monitoring-")]
    assert len(policies) == 6
    for node in policies:
        for statement in doc(node)["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(a == "*" or a.endswith(":*") for a in actions), node.name
            if statement["Resource"] == "*":
                assert statement.get("Condition"), f"{node.name}: '*' resource without a condition"
        findings = [f for f in parliament.analyze_policy_string(node.inputs["policy"]).findings
                    if f.severity in ("HIGH", "MEDIUM", "CRITICAL")]
        assert findings == [], (node.name, [(f.issue, f.detail) for f in findings])


def test_pipeline_target_starts_one_pipeline_with_its_own_role(mock_run):
    graph = stack(mock_run, retraining=Retraining(target=RetrainingTarget.PIPELINE, pipeline_name="Iris-Retrain",
                                                  pipeline_parameters={"Reason": "drift"}))
    target = graph.named("monitoring-violations-target").inputs
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/iris-retrain"
    assert target["arn"] == arn
    assert target["sagemakerPipelineTarget"] == {"pipelineParameterLists": [{"name": "Reason", "value": "drift"}]}
    assert target["roleArn"] == graph.named("monitoring-retraining-role").inputs.get("arn", target["roleArn"])
    trust = doc(graph.named("monitoring-retraining-role"), "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    (statement,) = doc(graph.named("monitoring-retraining"))["Statement"]
    assert statement["Action"] == ["sagemaker:StartPipelineExecution"] and statement["Resource"] == arn


# -- alerting ----------------------------------------------------------------------------------


def test_topic_is_encrypted_and_only_this_accounts_alarms_and_rules_publish_over_tls(graph):
    topic = graph.one(TOPIC)
    key = graph.named("monitoring-alerts-key")
    assert topic.inputs["kmsMasterKeyId"]
    assert key.inputs["enableKeyRotation"] is True and key.protect and key.retain_on_delete
    statements = {s["Sid"]: s for s in doc(graph.named("monitoring-alerts-policy"))["Statement"]}
    for sid, service in (("CloudWatchAlarmsOfThisAccountPublish", "cloudwatch.amazonaws.com"),
                         ("EventBridgeRulesOfThisAccountPublish", "events.amazonaws.com")):
        assert statements[sid]["Principal"] == {"Service": service}
        assert statements[sid]["Action"] == "sns:Publish"
        assert statements[sid]["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
        assert statements[sid]["Condition"]["ArnLike"]["aws:SourceArn"].startswith("arn:aws:")
    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    key_policy = doc(key)["Statement"]
    services = [s for s in key_policy if "Service" in s["Principal"]]
    assert services[0]["Principal"]["Service"] == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    assert services[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    subscriptions = {(n.inputs["protocol"], n.inputs["endpoint"]) for n in graph.of_type("aws:sns/topicSubscription:TopicSubscription")}
    assert subscriptions == {("email", "ml-oncall@example.com"), ("https", "https://hooks.example.com/lastmile")}


def test_every_monitoring_alarm_notifies_the_topic(graph):
    topic_arn = graph.outputs["topic_arn"]
    alarms = monitoring_nodes(graph, ALARM)
    assert len(alarms) == 4 + len(FEATURES)
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic_arn] and alarm.inputs["okActions"] == [topic_arn]
        assert alarm.inputs["treatMissingData"] == "notBreaching"
    for target in (graph.named("monitoring-rollback-alarms-target"), graph.named("monitoring-violations-target")):
        assert target.inputs["arn"] == topic_arn


def test_health_alarms_take_the_rollback_window_and_their_own_thresholds(graph):
    alarms = {n.name: n.inputs for n in monitoring_nodes(graph, ALARM)}
    for name in ("monitoring-alarm-memory", "monitoring-alarm-cpu", "monitoring-alarm-invocations-high"):
        assert (alarms[name]["period"], alarms[name]["evaluationPeriods"]) == (60, ROLLBACK.evaluation_minutes)
        assert alarms[name]["dimensions"] == {"EndpointName": NAME, "VariantName": "primary"}
    assert alarms["monitoring-alarm-memory"]["threshold"] == 85
    assert alarms["monitoring-alarm-cpu"]["threshold"] == 80 * 4  # ml.m5.xlarge: 4 vCPUs
    assert alarms["monitoring-alarm-invocations-high"]["threshold"] == 900
    rate = alarms["monitoring-alarm-4xx-rate"]
    assert rate["threshold"] == 5 and rate["evaluationPeriods"] == ROLLBACK.evaluation_minutes
    assert [q["id"] for q in rate["metricQueries"]] == ["errors", "invocations", "rate"]
    assert "IF(invocations > 0" in rate["metricQueries"][2]["expression"]


def test_one_drift_alarm_per_baseline_feature(graph):
    schedule = graph.one(SCHEDULE).inputs["name"]
    drift = [n.inputs for n in monitoring_nodes(graph, ALARM) if n.inputs.get("namespace") == DRIFT_NAMESPACE]
    assert sorted(a["metricName"] for a in drift) == sorted(f"feature_baseline_drift_{f}" for f in FEATURES)
    for alarm in drift:
        assert alarm["dimensions"] == {"Endpoint": NAME, "MonitoringSchedule": schedule}
        assert (alarm["threshold"], alarm["comparisonOperator"], alarm["period"]) == (0.1, "GreaterThanThreshold", 3600)


def test_violations_rule_matches_this_schedules_runs_with_violations(graph):
    pattern = doc(graph.named("monitoring-violations"), "eventPattern")
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Processing Job State Change"]
    assert pattern["detail"]["ExitMessage"] == [{"prefix": "CompletedWithViolations"}]
    assert pattern["detail"]["MonitoringScheduleArn"] == [graph.one(SCHEDULE).inputs.get(
        "arn", pattern["detail"]["MonitoringScheduleArn"][0])]


def test_dashboard_shows_traffic_errors_latency_and_drift(graph):
    body = doc(graph.one("aws:cloudwatch/dashboard:Dashboard"), "dashboardBody")
    metrics = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    names = {(m[0], m[1]) for m in metrics}
    assert {("AWS/SageMaker", "Invocations"), ("AWS/SageMaker", "Invocation4XXErrors"),
            ("AWS/SageMaker", "Invocation5XXErrors")} <= names
    assert {m[-1]["stat"] for m in metrics if m[1] == "ModelLatency"} == {"p50", "p99"}
    assert {m[1] for m in metrics if m[0] == DRIFT_NAMESPACE} == {f"feature_baseline_drift_{f}" for f in FEATURES}
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == 2 + 4 + len(FEATURES)


# -- validation --------------------------------------------------------------------------------


def valid_args(**overrides) -> ModelMonitoringArgs:
    store = type("Store", (), {"bucket_name": "b", "bucket_arn": "arn:aws:s3:::b"})()
    endpoint = type("Endpoint", (), {"alarm_names": ["a", "b"]})()
    key = type("Key", (), {"arn": "arn:aws:kms:eu-west-1:123456789012:key/k"})()
    return monitoring_args(store, key, endpoint, depends_on=(), **overrides)


@pytest.mark.parametrize("overrides, message", [
    ({"network": None}, "network is required"),
    ({"drift_threshold": 0}, "drift_threshold"),
    ({"drift_threshold": 1.5}, "drift_threshold"),
    ({"max_runtime_seconds": 7200}, "max_runtime_seconds = 7200: must be 60-3600 seconds for a hourly schedule"),
    ({"region": "ap-south-2"}, "no Model Monitor analyzer image"),
    ({"instance_type": "ml.weird"}, "vCPUs"),
    ({"emails": ("nope",)}, "not an email"),
    ({"https_endpoints": ("http://x.example.com",)}, "https"),
    ({"account_id": "12"}, "account id"),
])
def test_invalid_args_are_refused_with_the_reason(overrides, message):
    with pytest.raises(ValueError, match=message):
        valid_args(**overrides)


@pytest.mark.parametrize("kwargs, message", [
    ({"target": RetrainingTarget.PIPELINE}, "pipeline_name is required"),
    ({"pipeline_name": "x"}, "pipeline_name is required"),
    ({"pipeline_parameters": {"a": "b"}}, "never be used"),
    ({"target": RetrainingTarget.PIPELINE, "pipeline_name": "-bad"}, "not a SageMaker pipeline name"),
])
def test_retraining_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Retraining(**kwargs)


@pytest.mark.parametrize("field, value", [("error_4xx_percent", 0), ("memory_percent", 101), ("cpu_percent", 5),
                                          ("invocations_per_instance_high", 0)])
def test_health_thresholds_are_validated(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(HEALTH, **{field: value})


def test_outputs_resolve(graph):
    assert graph.outputs["schedule_name"].startswith(NAME[:30])
    assert graph.outputs["job_definition_name"] == graph.one(JOB).inputs["name"]
    assert len(graph.outputs["alarm_names"]) == 4 + len(FEATURES)


def test_every_invalid_monitoring_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        valid_args(account_id="12", region="ap-south-2", instance_type="ml.weird", drift_threshold=0,
                   job_volume_gib=0, network=None, emails=("nope",))
    assert reported_fields(caught.value) == ["account_id", "region", "instance_type", "drift_threshold",
                                             "job_volume_gib", "network", "emails.0"]


def test_every_retraining_problem_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        Retraining(pipeline_name="-bad", pipeline_parameters={"a": "b"})
    assert reported_fields(caught.value) == ["pipeline_name", "pipeline_name", "pipeline_parameters"]
