"""ModelEndpoint: content-hashed configs, guarded blue/green rollouts, autoscaling that keeps capacity."""

from __future__ import annotations

import dataclasses
import math

import pulumi_aws as aws
import pytest

from args_errors import reported_fields
from aws_constants import IMAGE, KEY_ARN, RELEASES, ROLE_ARN
from components.aws.alarms import AlarmThresholds
from components.aws.endpoint import (
    DataCapture,
    ModelEndpoint,
    ModelEndpointArgs,
    PrivateSubnet,
    Scaling,
    ServedModel,
    VpcPlacement,
)
from components.aws.naming import is_sagemaker_name
from components.aws.rollout import TIMEOUT_MARGIN_SECONDS, RolloutPolicy, TrafficRouting
from components.problems import ArgsError
from components.slots import Slot
from lastmile.contract import check_graph

COMPONENT = "lastmile:aws:ModelEndpoint"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
NAME = "lastmile-test-0123456789ab"
ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
VPC = VpcPlacement(subnets=(PrivateSubnet(subnet_id="subnet-0a1b2c3d4e5f60011", availability_zone="eu-west-1a"),
                            PrivateSubnet(subnet_id="subnet-0a1b2c3d4e5f60012", availability_zone="eu-west-1b")),
                   security_group_ids=("sg-0a1b2c3d4e5f60010",))
CANARY = RolloutPolicy(routing=TrafficRouting.CANARY, step_percent=10, wait_seconds=600, bake_seconds=900,
                       max_execution_seconds=5400)


def served(slot: Slot = Slot.BLUE, version: str = "1.0.0") -> ServedModel:
    url = f"s3://bucket/models/iris-classifier/{version}/{RELEASES[version].sha256}/model.tar.gz"
    return ServedModel(slot=slot, image_uri=IMAGE, model_data_url=url, environment=ENVIRONMENT)


def endpoint_args(**overrides) -> ModelEndpointArgs:
    values = {
        "endpoint_name": NAME, "execution_role_arn": ROLE_ARN, "kms_key_arn": KEY_ARN, "primary": served(),
        "instance_type": "ml.m5.large", "vpc": VPC, "rollout": CANARY, "log_retention_days": 365,
        "scaling": Scaling(initial_instance_count=3, min_instance_count=2, max_instance_count=8,
                           target_invocations_per_instance=600),
        "alarms": AlarmThresholds(error_5xx_count=3, latency_p99_ms=300, evaluation_minutes=2),
        "data_capture": DataCapture(destination_s3_uri=f"s3://bucket/data-capture/{NAME}/", sampling_percent=20),
        **overrides,
    }
    return ModelEndpointArgs(**values)


def synth(mock_run, **overrides):
    def program():
        endpoint = ModelEndpoint("serving", endpoint_args(**overrides))
        return {"endpoint_name": endpoint.endpoint_name, "endpoint_config_name": endpoint.endpoint_config_name,
                "variant_name": endpoint.variant_name, "model_names": endpoint.model_names,
                "alarm_names": endpoint.alarm_names, "log_group_name": endpoint.log_group_name}

    return mock_run(program)


def test_children_are_parented_and_names_pinned(mock_run):
    graph = synth(mock_run, shadow=served(Slot.GREEN, "1.1.0"))
    component = graph.one(COMPONENT)
    others = [n for n in graph.nodes.values() if n.urn != component.urn]
    assert all(n.parent == component.urn for n in others)
    assert {(n.type, n.name) for n in others} == {
        (LOG_GROUP, "serving-logs"), (MODEL, "serving-model-blue"), (MODEL, "serving-model-green"),
        (CONFIG, "serving-config"), (ALARM, "serving-alarm-5xx"), (ALARM, "serving-alarm-latency-p99"),
        (ENDPOINT, "serving-endpoint"), (TARGET, "serving-scaling-target"), (SCALING_POLICY, "serving-scaling-policy"),
    }
    assert set(graph.outputs) == {"endpoint_name", "endpoint_config_name", "variant_name", "model_names",
                                  "alarm_names", "log_group_name"}


def test_models_are_isolated_in_private_subnets(mock_run):
    model = synth(mock_run).one(MODEL)
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["vpcConfig"] == {"securityGroupIds": ["sg-0a1b2c3d4e5f60010"],
                                         "subnets": ["subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012"]}
    assert model.inputs["executionRoleArn"] == ROLE_ARN
    assert model.inputs["primaryContainer"] == {"image": IMAGE, "modelDataUrl": served().model_data_url,
                                                "environment": ENVIRONMENT}
    assert model.inputs["name"].startswith(f"{NAME}-blue-") and is_sagemaker_name(model.inputs["name"])


def test_vpc_is_required_unless_explicitly_waived(mock_run):
    with pytest.raises(ValueError, match="vpc is required"):
        endpoint_args(vpc=None)
    model = synth(mock_run, vpc=None, allow_without_vpc=True).one(MODEL)
    assert "vpcConfig" not in model.inputs and model.inputs["enableNetworkIsolation"] is True


def test_config_is_encrypted_captures_and_keeps_the_variant_name(mock_run):
    graph = synth(mock_run)
    config = graph.one(CONFIG)
    assert config.inputs["kmsKeyArn"] == KEY_ARN
    [variant] = config.inputs["productionVariants"]
    assert variant == {"variantName": "primary", "modelName": graph.one(MODEL).inputs["name"],
                       "instanceType": "ml.m5.large", "initialInstanceCount": 3, "initialVariantWeight": 1}
    assert "shadowProductionVariants" not in config.inputs
    assert config.inputs["dataCaptureConfig"] == {
        "enableCapture": True, "initialSamplingPercentage": 20, "destinationS3Uri": f"s3://bucket/data-capture/{NAME}/",
        "kmsKeyId": KEY_ARN, "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
        "captureContentTypeHeader": {"jsonContentTypes": ["application/json"], "csvContentTypes": ["text/csv"]},
    }
    assert graph.outputs["variant_name"] == "primary"
    assert graph.outputs["endpoint_config_name"] == config.inputs["name"]


def test_capture_can_be_left_out(mock_run):
    assert "dataCaptureConfig" not in synth(mock_run, data_capture=None).one(CONFIG).inputs


def test_shadow_variant_mirrors_a_second_release(mock_run):
    graph = synth(mock_run, shadow=served(Slot.GREEN, "1.1.0"))
    config = graph.one(CONFIG)
    [shadow] = config.inputs["shadowProductionVariants"]
    assert shadow["variantName"] == "shadow"
    assert shadow["modelName"] == graph.named("serving-model-green").inputs["name"]
    assert [v["variantName"] for v in config.inputs["productionVariants"]] == ["primary"]
    assert graph.outputs["model_names"] == [graph.named(f"serving-model-{s}").inputs["name"] for s in ("blue", "green")]


def test_a_release_change_is_a_new_config_the_endpoint_moves_to(mock_run):
    """docs/design-notes.md §Failure modes #1, #2, #4: new content -> new names -> create-before-delete -> endpoint repointed."""
    before, after = synth(mock_run), synth(mock_run, primary=served(version="1.1.0"))
    for graph in (before, after):
        assert graph.one(ENDPOINT).inputs["endpointConfigName"] == graph.one(CONFIG).inputs["name"]
        assert graph.one(CONFIG).inputs["productionVariants"][0]["modelName"] == graph.one(MODEL).inputs["name"]
        for node in (graph.one(CONFIG), graph.one(MODEL)):
            assert not node.delete_before_replace and not node.replace_on_changes
    assert before.one(MODEL).inputs["name"] != after.one(MODEL).inputs["name"]
    assert before.one(CONFIG).inputs["name"] != after.one(CONFIG).inputs["name"]
    assert before.one(ENDPOINT).inputs["name"] == after.one(ENDPOINT).inputs["name"] == NAME
    assert before.one(CONFIG).urn == after.one(CONFIG).urn  # same logical resource, replaced (not a second one)
    assert (before.one(CONFIG).inputs["productionVariants"][0]["variantName"]
            == after.one(CONFIG).inputs["productionVariants"][0]["variantName"] == "primary")


@pytest.mark.parametrize("overrides", [
    {"instance_type": "ml.m5.xlarge"},
    {"kms_key_arn": KEY_ARN.replace("1234abcd", "9999abcd")},
    {"data_capture": DataCapture(destination_s3_uri=f"s3://bucket/data-capture/{NAME}/", sampling_percent=50)},
    {"data_capture": None},
    {"volume_size_gib": 30},
    {"shadow": served(Slot.GREEN, "1.1.0")},
    {"scaling": Scaling(initial_instance_count=4, min_instance_count=2, max_instance_count=8,
                        target_invocations_per_instance=600)},
])
def test_every_config_change_changes_the_config_name(mock_run, overrides):
    assert synth(mock_run).one(CONFIG).inputs["name"] != synth(mock_run, **overrides).one(CONFIG).inputs["name"]


def test_a_rerun_sends_identical_inputs_and_no_instance_count_to_the_endpoint(mock_run):
    """docs/design-notes.md §Failure modes #5: nothing a no-change `pulumi up` sends can reset the autoscaled count."""
    first, second = synth(mock_run), synth(mock_run)
    assert first.dumps() == second.dumps()
    endpoint = first.one(ENDPOINT)
    assert set(endpoint.inputs) == {"name", "endpointConfigName", "deploymentConfig"}
    assert set(first.one(TARGET).inputs) == {"serviceNamespace", "resourceId", "scalableDimension",
                                             "minCapacity", "maxCapacity"}
    # Autoscaling range changes never touch the config: the running fleet is not replaced.
    wider = synth(mock_run, scaling=Scaling(initial_instance_count=3, min_instance_count=2, max_instance_count=12,
                                            target_invocations_per_instance=900))
    assert wider.one(CONFIG).inputs == first.one(CONFIG).inputs
    assert wider.one(TARGET).inputs["maxCapacity"] == 12


@pytest.mark.parametrize("rollout, routing", [
    (CANARY, {"type": "CANARY", "waitIntervalInSeconds": 600, "canarySize": {"type": "CAPACITY_PERCENT", "value": 10}}),
    (dataclasses.replace(CANARY, routing=TrafficRouting.LINEAR, step_percent=25),
     {"type": "LINEAR", "waitIntervalInSeconds": 600, "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 25}}),
    (dataclasses.replace(CANARY, routing=TrafficRouting.ALL_AT_ONCE, step_percent=None),
     {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 600}),
])
def test_deployment_config_per_strategy(mock_run, rollout, routing):
    policy = synth(mock_run, rollout=rollout).one(ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert policy == {"trafficRoutingConfiguration": routing, "terminationWaitInSeconds": 900,
                      "maximumExecutionTimeoutInSeconds": 5400}


def test_rollback_alarms_are_the_endpoints_own(mock_run):
    graph = synth(mock_run)
    endpoint = graph.one(ENDPOINT)
    alarms = graph.of_type(ALARM)
    wanted = [a["alarmName"] for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]]
    assert wanted == graph.outputs["alarm_names"] and len(wanted) == 2
    assert {a.urn for a in alarms} <= set(endpoint.depends_on)  # the alarms exist before the endpoint uses them
    for alarm in alarms:
        assert alarm.inputs["dimensions"] == {"EndpointName": endpoint.inputs["name"], "VariantName": "primary"}
    latency = graph.named("serving-alarm-latency-p99").inputs
    assert (latency["metricName"], latency["unit"], latency["threshold"]) == ("ModelLatency", "Microseconds", 300_000)
    assert graph.named("serving-alarm-5xx").inputs["threshold"] == 3


def test_timeouts_cover_the_longest_rollout(mock_run):
    minutes = math.ceil((CANARY.max_execution_seconds + TIMEOUT_MARGIN_SECONDS) / 60)
    assert synth(mock_run).one(ENDPOINT).custom_timeouts == {"create": f"{minutes}m", "update": f"{minutes}m"}


def test_autoscaling_tracks_invocations_on_the_primary_variant(mock_run):
    graph = synth(mock_run)
    target, policy = graph.one(TARGET), graph.one(SCALING_POLICY)
    assert target.inputs == {"serviceNamespace": "sagemaker", "resourceId": f"endpoint/{NAME}/variant/primary",
                             "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
                             "minCapacity": 2, "maxCapacity": 8}
    assert graph.one(ENDPOINT).urn in target.depends_on
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    assert policy.inputs["resourceId"] == target.inputs["resourceId"]
    assert policy.inputs["targetTrackingScalingPolicyConfiguration"] == {
        "targetValue": 600, "scaleInCooldown": 300, "scaleOutCooldown": 60,
        "predefinedMetricSpecification": {"predefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}


@pytest.mark.parametrize("protect", [True, False])
def test_log_group_is_encrypted_named_for_sagemaker_and_protected_in_prod(mock_run, protect):
    graph = synth(mock_run, protect_state=protect)
    logs = graph.one(LOG_GROUP)
    assert logs.inputs == {"name": f"/aws/sagemaker/Endpoints/{NAME}", "kmsKeyId": KEY_ARN, "retentionInDays": 365}
    assert (logs.protect, logs.retain_on_delete) == (protect, protect)
    assert logs.urn in graph.one(ENDPOINT).depends_on  # exists before SageMaker could create an unencrypted one
    assert graph.outputs["log_group_name"] == logs.inputs["name"]


def test_models_wait_for_the_roles_permissions(mock_run):
    def program():
        grant = aws.iam.RolePolicy("grant", role="serving-execution", policy="{}")
        ModelEndpoint("serving", endpoint_args(permissions=(grant,)))
        return {"grant": grant.urn}

    graph = mock_run(program)
    assert graph.outputs["grant"] in graph.one(MODEL).depends_on


def test_grant_invoke_is_scoped_to_this_endpoint(mock_run, document):
    def program():
        caller = aws.iam.Role("caller", assume_role_policy="{}")
        ModelEndpoint("serving", endpoint_args()).grant_invoke(caller)
        return {"caller": caller.name}

    graph = mock_run(program)
    policy = graph.named("serving-invoke-caller")
    assert policy.parent == graph.one(COMPONENT).urn and policy.inputs["role"] == graph.outputs["caller"]
    [statement] = document(policy)["Statement"]
    assert statement["Action"] == ["sagemaker:InvokeEndpoint"]
    assert statement["Resource"].startswith("arn:aws:sagemaker:") and NAME in statement["Resource"]


def test_requests_satisfy_the_sagemaker_api_contract(mock_run):
    """No provider checks enums, ranges or patterns before deploy (docs/design-notes.md §Offline verification): botocore's model does."""
    report = check_graph(synth(mock_run, shadow=served(Slot.GREEN, "1.1.0")))
    assert report.ok, report.text()
    assert {r.operation for r in report.requests} >= {"CreateModel", "CreateEndpointConfig", "UpdateEndpoint",
                                                      "RegisterScalableTarget", "PutScalingPolicy", "PutMetricAlarm"}
    bad = check_graph(synth(mock_run, instance_type="ml.m5.huge"))  # well-formed, but no such instance type
    assert not bad.ok and "InstanceType" in bad.text()


@pytest.mark.parametrize("overrides, message", [
    ({"endpoint_name": "bad_name"}, "not a SageMaker name"),
    ({"instance_type": "m5.large"}, "not a SageMaker instance type"),
    ({"shadow": served(Slot.BLUE, "1.1.0")}, "both slot blue"),
    ({"log_retention_days": 10}, "log_retention_days = 10: CloudWatch accepts only"),
    ({"volume_size_gib": 600}, "volume_size_gib = 600: must be 1-512"),
    ({"scaling": Scaling(initial_instance_count=1, min_instance_count=1, max_instance_count=2,
                         target_invocations_per_instance=600)},
     "scaling.initial_instance_count = 1: .*cannot be split"),
])
def test_args_are_validated(overrides, message):
    with pytest.raises(ValueError, match=message):
        endpoint_args(**overrides)


def test_parts_are_validated():
    with pytest.raises(ValueError, match="availability zone"):
        VpcPlacement(subnets=VPC.subnets[:1] * 2, security_group_ids=("sg-1",))
    with pytest.raises(ValueError, match="security_group_ids = '0 item\\(s\\)': SageMaker allows 1-5"):
        VpcPlacement(subnets=VPC.subnets, security_group_ids=())
    with pytest.raises(ValueError, match="initial_instance_count = 1: must be 2-3"):
        Scaling(initial_instance_count=1, min_instance_count=2, max_instance_count=3, target_invocations_per_instance=1)
    with pytest.raises(ValueError, match="omit data_capture"):
        DataCapture(destination_s3_uri="s3://b/data-capture/x/", sampling_percent=0)


def test_every_invalid_endpoint_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        endpoint_args(endpoint_name="bad_name", instance_type="m5.large", vpc=None, log_retention_days=10,
                      volume_size_gib=600)
    assert reported_fields(caught.value) == ["endpoint_name", "instance_type", "vpc", "log_retention_days",
                                             "volume_size_gib"]
