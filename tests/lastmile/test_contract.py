"""lastmile.contract: registered resources -> botocore requests -> the API's constraints.

Programs register real pulumi_aws resources under the recording mocks (``mock_run``); each walker
rule (enum, max, min, length, pattern) and each ParamValidator rule (required, type, unknown) is
shown to fail on a realistic mistake. A schema walk over pulumi_aws's input types proves that
every input of the covered resources reaches an API member with a compatible type.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import typing
from collections.abc import Callable
from typing import Any

import botocore.session
import pulumi
import pulumi._types as pulumi_types
import pulumi_aws as aws
import pytest

from lastmile import cli
from lastmile.contract import COVERED_TYPES, Report, check_graph, check_node, validate_request
from lastmile.contract_network import NETWORK_MAPPINGS
from lastmile.contract_patterns import UntranslatablePattern, compile_java, matches, translate
from lastmile.contract_shapes import Rule, validate_params
from lastmile.synthesis import Graph, Node, list_stacks, synthesize

sm = aws.sagemaker
scaling = aws.appautoscaling
ROLE = "arn:aws:iam::111111111111:role/lastmile-sagemaker"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/0b6a1f1c-8f5e-4c7b-9a53-2c1d5a6e7f80"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/serving@sha256:" + "a" * 64


def _program(
    *,
    model_name: str | None = None,
    canary_type: str = "CAPACITY_PERCENT",
    wait_seconds: int = 300,
    instance_count: Any = 2,
    sampling_percent: int = 20,
    capture_modes: tuple[str, ...] = ("Input", "Output"),
    routing: dict[str, Any] | None = None,
) -> Callable[[], dict[str, Any]]:
    """A serving stack as the components build it: model, config, alarms, endpoint, autoscaling."""

    def program() -> dict[str, Any]:
        model = aws.sagemaker.Model(
            "serve-model",
            name=model_name,
            execution_role_arn=ROLE,
            enable_network_isolation=True,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=IMAGE, model_data_url="s3://lastmile-artifacts/iris/1.0.0/model.tar.gz",
                environment={"SAGEMAKER_PROGRAM": "inference.py"},
            ),
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(subnets=["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
                                                        security_group_ids=["sg-0123456789abcdef0"]),
            tags={"lastmile:slot": "blue"},
        )
        config = aws.sagemaker.EndpointConfiguration(
            "serve-config",
            kms_key_arn=KEY,
            production_variants=[aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name="primary", model_name=model.name, initial_instance_count=instance_count,
                instance_type="ml.m5.large", initial_variant_weight=1.0, volume_size_in_gb=30,
                container_startup_health_check_timeout_in_seconds=600,
            )],
            data_capture_config=aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=True, initial_sampling_percentage=sampling_percent,
                destination_s3_uri="s3://lastmile-capture/serve", kms_key_id=KEY,
                capture_options=[aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode=m)
                                 for m in capture_modes],
                capture_content_type_header=sm.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                    json_content_types=["application/json"]),
            ),
        )
        errors = aws.cloudwatch.MetricAlarm(
            "serve-5xx", namespace="AWS/SageMaker", metric_name="Invocation5XXErrors", statistic="Sum",
            period=60, evaluation_periods=2, threshold=1.0, comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching", dimensions={"EndpointName": "serve", "VariantName": "primary"},
        )
        latency = aws.cloudwatch.MetricAlarm(
            "serve-latency", evaluation_periods=3, threshold=500000.0, comparison_operator="GreaterThanThreshold",
            metric_queries=[aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="p99", return_data=True,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/SageMaker", metric_name="ModelLatency", period=60, stat="p99",
                    dimensions={"EndpointName": "serve", "VariantName": "primary"}),
            )],
            evaluate_low_sample_count_percentiles="ignore",
        )
        canary = sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
            type=canary_type, value=10)
        traffic = routing or sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
            type="CANARY", wait_interval_in_seconds=wait_seconds, canary_size=canary)
        endpoint = aws.sagemaker.Endpoint(
            "serve-endpoint",
            endpoint_config_name=config.name,
            deployment_config=aws.sagemaker.EndpointDeploymentConfigArgs(
                blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                    traffic_routing_configuration=traffic,
                    termination_wait_in_seconds=600, maximum_execution_timeout_in_seconds=3600,
                ),
                auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                    alarms=[aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=a.name)
                            for a in (errors, latency)]),
            ),
            tags={"lastmile:stack": "test"},
        )
        target = aws.appautoscaling.Target(
            "serve-scaling", service_namespace="sagemaker",
            resource_id=pulumi.Output.concat("endpoint/", endpoint.name, "/variant/primary"),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount", min_capacity=2, max_capacity=6,
        )
        aws.appautoscaling.Policy(
            "serve-invocations", policy_type="TargetTrackingScaling", service_namespace=target.service_namespace,
            resource_id=target.resource_id, scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=scaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=70.0, scale_in_cooldown=300, scale_out_cooldown=60,
                predefined_metric_specification={"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"}),
        )
        aws.appautoscaling.Policy(
            "serve-steps", policy_type="StepScaling", service_namespace=target.service_namespace,
            resource_id=target.resource_id, scalable_dimension=target.scalable_dimension,
            step_scaling_policy_configuration=aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
                adjustment_type="ChangeInCapacity", cooldown=120, metric_aggregation_type="Average",
                step_adjustments=[
                    aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                        metric_interval_lower_bound="0", metric_interval_upper_bound="10.5", scaling_adjustment=1),
                    aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                        metric_interval_lower_bound="10.5", scaling_adjustment=2),
                ]),
        )
        return {"endpoint_name": endpoint.name, "endpoint_config_name": config.name}

    return program


def _params(report: Report, operation: str) -> dict[str, Any]:
    found = [r.params for r in report.requests if r.operation == operation]
    assert len(found) == 1, f"{operation}: {len(found)} requests"
    return found[0]


def _rules(report: Report) -> set[tuple[str, Rule]]:
    return {(v.operation, v.rule) for v in report.violations}


# ---------------------------------------------------------------------------------------------
# Valid programs


def test_valid_serving_stack_has_no_violations(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program()))

    assert report.violations == (), report.text()
    assert report.skipped == (), report.text()
    assert sorted(r.operation for r in report.requests) == sorted([
        "CreateModel", "CreateEndpointConfig", "PutMetricAlarm", "PutMetricAlarm", "CreateEndpoint",
        "UpdateEndpoint", "RegisterScalableTarget", "PutScalingPolicy", "PutScalingPolicy",
    ])


def test_field_names_and_shapes_are_translated(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program()))

    model = _params(report, "CreateModel")
    assert model["ModelName"].startswith("serve-model-")  # the auto-name stands in
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://lastmile-artifacts/iris/1.0.0/model.tar.gz"
    assert model["EnableNetworkIsolation"] is True
    assert model["VpcConfig"]["Subnets"] == ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
    assert model["Tags"] == [{"Key": "lastmile:slot", "Value": "blue"}]

    config = _params(report, "CreateEndpointConfig")
    assert config["KmsKeyId"] == KEY and "KmsKeyArn" not in config
    variant = config["ProductionVariants"][0]
    assert variant["VolumeSizeInGB"] == 30 and variant["InitialInstanceCount"] == 2
    assert variant["ModelName"] == model["ModelName"]
    assert config["DataCaptureConfig"]["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert config["DataCaptureConfig"]["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json"]}

    endpoint = _params(report, "CreateEndpoint")
    update = _params(report, "UpdateEndpoint")
    assert "Tags" in endpoint and "Tags" not in update
    routing = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "CANARY", "WaitIntervalInSeconds": 300,
                       "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    alarms = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    alarm_names = sorted(r.params["AlarmName"] for r in report.requests if r.operation == "PutMetricAlarm")
    assert sorted(a["AlarmName"] for a in alarms) == alarm_names

    puts = {r.params["AlarmName"].rsplit("-", 1)[0]: r.params
            for r in report.requests if r.operation == "PutMetricAlarm"}
    assert puts["serve-latency"]["EvaluateLowSampleCountPercentile"] == "ignore"
    dimensions = [{"Name": "EndpointName", "Value": "serve"}, {"Name": "VariantName", "Value": "primary"}]
    assert puts["serve-5xx"]["Dimensions"] == dimensions
    assert puts["serve-latency"]["Metrics"] == [{"Id": "p99", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Dimensions": dimensions},
        "Period": 60, "Stat": "p99"}}]

    policies = {r.params["PolicyType"]: r.params for r in report.requests if r.operation == "PutScalingPolicy"}
    steps = policies["StepScaling"]["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert steps == [{"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 10.5, "ScalingAdjustment": 1},
                     {"MetricIntervalLowerBound": 10.5, "ScalingAdjustment": 2}]
    assert policies["TargetTrackingScaling"]["PolicyName"].startswith("serve-invocations-")
    target = _params(report, "RegisterScalableTarget")
    assert target["ResourceId"] == f"endpoint/{endpoint['EndpointName']}/variant/primary"


def test_secret_inputs_are_not_pattern_checked_but_reported(mock_run: Callable[..., Graph]) -> None:
    def program() -> None:
        aws.sagemaker.Model("secret-env", execution_role_arn=ROLE, primary_container={
            "image": IMAGE, "environment": {"API_TOKEN": pulumi.Output.secret("not a valid env value\x00")}})

    report = check_graph(mock_run(program))
    assert report.violations == ()
    assert [s.path for s in report.skipped] == ['$.PrimaryContainer.Environment["API_TOKEN"]']
    assert "secret" in report.skipped[0].reason


def test_arns_are_pattern_checked(mock_run: Callable[..., Graph]) -> None:
    """The mocks' role ARN has AWS's shape and passes; a hand-written malformed one is caught."""

    def program() -> None:
        role = aws.iam.Role("exec-role", assume_role_policy="{}")
        aws.sagemaker.Model("mocked", execution_role_arn=role.arn, primary_container={"image": IMAGE})
        aws.sagemaker.Model("typo", execution_role_arn="arn:aws:iam:eu-west-1:role/x",
                            primary_container={"image": IMAGE})

    report = check_graph(mock_run(program))
    assert [(v.resource.rsplit("::", 1)[-1], v.path, v.rule) for v in report.violations] == [
        ("typo", "$.ExecutionRoleArn", Rule.PATTERN)]
    assert "$.ExecutionRoleArn" not in [s.path for s in report.skipped]


# ---------------------------------------------------------------------------------------------
# Each check can fail


def test_enum_canary_size_type(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program(canary_type="PERCENT")))

    assert _rules(report) == {("CreateEndpoint", Rule.ENUM), ("UpdateEndpoint", Rule.ENUM)}
    violation = report.violations[0]
    assert violation.path == "$.DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.CanarySize.Type"
    assert violation.input_path == "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.canarySize.type"
    assert "'PERCENT' is not one of: INSTANCE_COUNT, CAPACITY_PERCENT" in violation.message


def test_maximum_wait_interval(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program(wait_seconds=4000)))

    assert _rules(report) == {("CreateEndpoint", Rule.MAX), ("UpdateEndpoint", Rule.MAX)}
    assert report.violations[0].path.endswith("TrafficRoutingConfiguration.WaitIntervalInSeconds")
    assert "4000 is above the maximum 3600" in report.violations[0].message


def test_minimum_and_maximum_numbers(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program(instance_count=0, sampling_percent=101)))

    found = {(v.path, v.rule) for v in report.violations}
    assert found == {("$.ProductionVariants[0].InitialInstanceCount", Rule.MIN),
                     ("$.DataCaptureConfig.InitialSamplingPercentage", Rule.MAX)}


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("iris_model", Rule.PATTERN),   # underscore
        ("iris model", Rule.PATTERN),   # space
        ("iris-model-", Rule.PATTERN),  # trailing hyphen
        ("m" * 64, Rule.MAX_LENGTH),    # 63 at most
    ],
)
def test_model_name_pattern_and_length(mock_run: Callable[..., Graph], name: str, rule: Rule) -> None:
    report = check_graph(mock_run(_program(model_name=name)))

    # The name travels into CreateModel and into the config's variant.
    assert {(v.operation, v.path, v.rule) for v in report.violations} == {
        ("CreateModel", "$.ModelName", rule), ("CreateEndpointConfig", "$.ProductionVariants[0].ModelName", rule)}
    assert next(v for v in report.violations if v.operation == "CreateModel").input_path == "name"


def test_auto_name_from_a_long_logical_name_is_too_long(mock_run: Callable[..., Graph]) -> None:
    def program() -> None:
        aws.sagemaker.Model("lastmile-production-eu-west-1-classifier-blue-slot-model-v2",
                            execution_role_arn=ROLE, primary_container={"image": IMAGE})

    report = check_graph(mock_run(program))
    assert [(v.path, v.rule, v.input_path) for v in report.violations] == [
        ("$.ModelName", Rule.MAX_LENGTH, "name (auto-named)")]
    assert "67 characters, at most 63 allowed" in report.violations[0].message


def test_minimum_list_length(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program(capture_modes=())))

    assert [(v.path, v.rule) for v in report.violations] == [("$.DataCaptureConfig.CaptureOptions", Rule.MIN_LENGTH)]


def test_missing_required_member(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program(routing={"type": "CANARY"})))  # no wait interval

    assert _rules(report) == {("CreateEndpoint", Rule.REQUIRED), ("UpdateEndpoint", Rule.REQUIRED)}
    violation = report.violations[0]
    assert violation.path == "$.DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration." \
                             "WaitIntervalInSeconds"
    assert violation.input_path == "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration." \
                                   "waitIntervalInSeconds"


def test_wrong_type(mock_run: Callable[..., Graph]) -> None:
    report = check_graph(mock_run(_program(instance_count="two")))

    assert [(v.path, v.rule) for v in report.violations] == [
        ("$.ProductionVariants[0].InitialInstanceCount", Rule.TYPE)]
    assert "'two' is a str" in report.violations[0].message


def test_input_without_an_api_member_is_a_mapping_violation(mock_run: Callable[..., Graph]) -> None:
    routing = {"type": "ALL_AT_ONCE", "wait_interval_in_seconds": 0, "bake_seconds": 300}
    report = check_graph(mock_run(_program(routing=routing)))

    assert _rules(report) == {("CreateEndpoint", Rule.MAPPING), ("UpdateEndpoint", Rule.MAPPING)}
    assert report.violations[0].input_path.endswith("trafficRoutingConfiguration.bake_seconds")


# ---------------------------------------------------------------------------------------------
# Every pulumi-aws input of the covered resources reaches an API member of a compatible type.


def _annotation_kind(annotation: Any) -> tuple[str, str | None]:
    """('list'|'map'|'one', nested Args class name or scalar type name) from a pulumi-aws property type."""
    found: dict[str, Any] = {"kind": "one", "leaf": None}

    def visit(tp: Any) -> None:
        if found["leaf"] is not None:
            return
        origin = typing.get_origin(tp)
        if isinstance(tp, typing.ForwardRef):
            if tp.__forward_arg__.endswith("Args"):
                found["leaf"] = tp.__forward_arg__
        elif isinstance(tp, str):
            if tp.endswith("Args"):
                found["leaf"] = tp
        elif origin in (collections.abc.Sequence, list):
            found["kind"] = "list"
            visit(typing.get_args(tp)[0])
        elif origin in (collections.abc.Mapping, dict):
            found["kind"] = "map"
            visit(typing.get_args(tp)[1])
        elif origin is typing.Union:
            for arg in typing.get_args(tp):
                if typing.get_origin(arg) is not collections.abc.Awaitable:
                    visit(arg)
        elif tp in (str, int, float, bool):
            found["leaf"] = tp.__name__

    visit(annotation)
    return found["kind"], found["leaf"]


_SAMPLES = {"str": "1", "int": 1, "float": 1.0, "bool": True}


def _full_inputs(args_class: type, module: Any, depth: int = 0) -> dict[str, Any]:
    """Every input of an Args class filled with a sample of its declared type (camelCase keys)."""
    inputs: dict[str, Any] = {}
    for py_name, wire_name in pulumi_types.input_type_py_to_pulumi_names(args_class).items():
        kind, leaf = _annotation_kind(inspect.signature(getattr(args_class, py_name).fget).return_annotation)
        if leaf and leaf.endswith("Args"):
            value: Any = _full_inputs(getattr(module, leaf), module, depth + 1)
        else:
            value = _SAMPLES[leaf]
        inputs[wire_name] = [value] if kind == "list" else {"k": value} if kind == "map" else value
    return inputs


_ARGS = {
    "aws:sagemaker/model:Model": aws.sagemaker.ModelArgs,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": aws.sagemaker.EndpointConfigurationArgs,
    "aws:sagemaker/endpoint:Endpoint": aws.sagemaker.EndpointArgs,
    "aws:appautoscaling/target:Target": aws.appautoscaling.TargetArgs,
    "aws:appautoscaling/policy:Policy": aws.appautoscaling.PolicyArgs,
    "aws:cloudwatch/metricAlarm:MetricAlarm": aws.cloudwatch.MetricAlarmArgs,
}


def test_every_covered_type_has_its_args_class() -> None:
    """The shape-guided mappings; the network ones are explicit per type (tests/components/network)."""
    assert sorted(_ARGS) == sorted(set(COVERED_TYPES) - set(NETWORK_MAPPINGS))


@pytest.mark.parametrize("type_", sorted(_ARGS))
def test_every_pulumi_input_maps_to_an_api_member_of_its_type(type_: str) -> None:
    args_class = _ARGS[type_]
    module = importlib.import_module(args_class.__module__.rsplit(".", 1)[0] + "._inputs")
    inputs = _full_inputs(args_class, module)
    node = Node(urn=f"urn:pulumi:t::lastmile::{type_}::full", type=type_, name="full", parent=None, custom=True,
                provider=None, protect=False, retain_on_delete=False, delete_before_replace=False,
                replace_on_changes=(), ignore_changes=(), additional_secret_outputs=(), depends_on=(),
                aliases=(), custom_timeouts={}, inputs=inputs)

    report = check_node(node)

    # Values are samples, so enums and patterns fail; names and types must not.
    broken = [str(v) for v in report.violations if v.rule in (Rule.MAPPING, Rule.UNKNOWN, Rule.TYPE)]
    assert broken == []
    assert len(inputs) >= 5  # the walk found the schema


# ---------------------------------------------------------------------------------------------
# validate_request, reusable beyond SageMaker


def test_validate_request_for_a_vpn_connection() -> None:
    good = {"CustomerGatewayId": "cgw-0123456789abcdef0", "VpnGatewayId": "vgw-0123456789abcdef0", "Type": "ipsec.1",
            "Options": {"StaticRoutesOnly": True, "TunnelOptions": [
                {"IKEVersions": [{"Value": "ikev2"}], "Phase1DHGroupNumbers": [{"Value": 14}],
                 "Phase1EncryptionAlgorithms": [{"Value": "AES256"}]}]}}
    assert validate_request("ec2", "CreateVpnConnection", good) == []

    bad = {"VpnGatewayId": "vgw-1", "Type": "ipsec.1", "Options": {"StaticRoutesOnly": "yes"}}
    assert {(v.path, v.rule) for v in validate_request("ec2", "CreateVpnConnection", bad)} == {
        ("$.CustomerGatewayId", Rule.REQUIRED), ("$.Options.StaticRoutesOnly", Rule.TYPE)}


def test_validate_request_reports_unknown_members_and_unknown_operations() -> None:
    params = {"EndpointName": "ep", "EndpointConfigName": "cfg", "RetainAllVariantProperties": True}
    violations = validate_request("sagemaker", "CreateEndpoint", params)
    assert [(v.path, v.rule) for v in violations] == [("$.RetainAllVariantProperties", Rule.UNKNOWN)]
    with pytest.raises(ValueError, match="no operation sagemaker:CreateEndpointz"):
        validate_request("sagemaker", "CreateEndpointz", {})


def test_untranslatable_pattern_is_skipped_and_reported() -> None:
    result = validate_params("autoscaling-plans", "DescribeScalingPlans", {"ScalingPlanNames": ["plan|one"]})
    assert result.violations == ()
    assert [s.path for s in result.skipped] == ["$.ScalingPlanNames[0]"]
    assert "character class intersection" in result.skipped[0].reason


# ---------------------------------------------------------------------------------------------
# Java patterns


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "iris-v2", True),
        (r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "iris_v2", False),  # whole-value match, as AWS applies it
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "équipe ml: α/β", True),
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "a;b", False),
        # a UTF-16 surrogate-pair range: all supplementary code points
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*", "emoji 😀 ok", True),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*", "bell\x07", False),
        (r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}", "key", True),  # quantified anchor
        (r"\p{Print}+", "printable", True),
        (r"\p{Print}+", "tab\t", False),
        (r"arn:[\p{Alnum}\-]+:lambda:[\p{Alnum}\-]+:[0-9]{12}:function:.*",
         "arn:aws:lambda:eu-west-1:111111111111:function:f", True),
        (r"(?!(?i)AWS_)[a-zA-Z_][a-zA-Z0-9_]*", "aws_region", False),  # mid-pattern inline flag
        (r"(?!(?i)AWS_)[a-zA-Z_][a-zA-Z0-9_]*", "MY_VAR", True),
        (r"[\w-_]*", "a-b_c", True),  # '-' next to a set is literal in Java
        (r"[\P{C}\s]+", "ok\x01", False),  # \P inside a class
        (r"\d+", "١٢٣", False),  # Java's \d is ASCII
    ],
)
def test_java_patterns(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


@pytest.mark.parametrize("pattern", [r"[\p{Print}&&[^|:/]]+", r"[0-9\p{IsAlphabetic}]*", r"a{11}{0,3}", r"\G\d"])
def test_untranslatable_java_patterns_raise(pattern: str) -> None:
    with pytest.raises(UntranslatablePattern):
        compile_java(pattern)


@pytest.mark.parametrize("service", ["sagemaker", "application-autoscaling", "cloudwatch", "ec2"])
def test_every_pattern_of_the_services_we_call_translates(service: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    patterns = {model.shape_for(n).metadata.get("pattern") for n in model.shape_names} - {None}
    failures = []
    for pattern in patterns:
        try:
            compile_java(pattern)
        except UntranslatablePattern as exc:
            failures.append(f"{pattern!r}: {exc}")
    assert failures == []
    assert translate("[a-z]") == "[a-z]"


# ---------------------------------------------------------------------------------------------
# The committed AWS and hybrid stacks


_STACKS = [s for s in list_stacks() if s.startswith(("aws-", "hybrid-"))]


@pytest.mark.parametrize("stack", _STACKS)
def test_committed_stack_meets_the_api_contract(stack: str) -> None:
    report = check_graph(synthesize(stack))

    assert report.violations == (), report.text()
    assert report.requests, f"stack {stack} registers none of {', '.join(COVERED_TYPES)}"
    assert {r.operation for r in report.requests} >= {"CreateModel", "CreateEndpointConfig", "CreateEndpoint"}
    if stack.startswith("hybrid-"):  # the network resources are checked too
        assert {r.operation for r in report.requests} >= {
            "CreateVpnConnection", "CreateCustomerGateway", "CreateVpnGateway", "CreateResolverEndpoint",
            "CreateLogGroup", "CreateFlowLogs", "CreateVpcEndpoint"}


def test_cli_refuses_an_unknown_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["contract", "--stack", "aws-nonexistent"]) == 2
    assert "unknown stack 'aws-nonexistent'" in capsys.readouterr().err
