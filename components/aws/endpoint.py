"""ModelEndpoint: a SageMaker real-time endpoint that changes releases safely.

What it builds (children of the component):
- ``<name>-logs``: the endpoint's log group ``/aws/sagemaker/Endpoints/<endpoint-name>``, created before
  the endpoint (so SageMaker never creates an unencrypted one), KMS-encrypted, with retention;
- ``<name>-model-<slot>``: one ``aws.sagemaker.Model`` per served release (blue/green slot), network-isolated, in the
  VPC's private subnets (required unless ``allow_without_vpc``);
- ``<name>-config``: the endpoint configuration, named from a hash of its full content (models,
  variants, capture, key). Any change is a new name, so Pulumi creates the new configuration first,
  updates the endpoint, and deletes the old one only after the update finished (docs/design-notes.md §Failure modes #1, #2).
  Model names are content-hashed too, so a model change cascades to a new configuration and an
  endpoint update (#4). The production variant is always named ``primary`` (blue/green requires the
  same variant name across configurations); an optional shadow variant ``shadow`` mirrors traffic
  to a second release (#9);
- ``<name>-alarm-5xx`` / ``<name>-alarm-latency-p99``: the auto-rollback alarms (``alarms.py``);
- ``<name>-endpoint``: the endpoint, updated blue/green with the traffic shifting of one
  ``RolloutPolicy`` and rolled back automatically when an alarm fires (#7); its create/update
  timeouts are sized from the policy's maximum execution time (#6). The ``endpoint_config_name``
  output is the configuration this program asked for: a verifier compares it with the endpoint's
  live configuration to detect a SageMaker rollback that the engine reports as success (#3);
- ``<name>-scaling-target`` / ``<name>-scaling-policy``: Application Auto Scaling of the primary
  variant between min and max instances, target-tracking invocations per instance.

Capacity is never reset by a re-run (#5). ``initial_instance_count`` in the configuration is only the
size a NEW fleet starts with (``Scaling.initial_instance_count``); the endpoint resource carries no
instance count; nothing reads live counts; names and inputs are pure functions of the Args, so a
``pulumi up`` without changes sends no update and the autoscaled count stays. A release change
(new configuration) starts the new fleet at ``initial_instance_count`` during the blue/green
deployment; target tracking takes over from there (set ``initial_instance_count`` near the usual
steady-state size for heavy traffic). Changing ``instance_type`` while the scalable target is
registered is refused by SageMaker: deregister scaling first (remove the target, deploy, then
change the type), a two-step change the engine cannot order by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Mapping

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.aws.alarms import AlarmThresholds, metric_alarm_args, variant_alarm_specs
from components.aws.limits import check_log_retention, check_vpc_config
from components.aws.naming import content_name, is_sagemaker_name
from components.aws.rollout import RolloutPolicy, deployment_config, fleet_problems
from components.problems import MISSING, Problem, check_range, raise_problems
from components.slots import Slot

PRIMARY_VARIANT = "primary"
SHADOW_VARIANT = "shadow"
LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")


class CaptureMode(StrEnum):
    INPUT = "Input"
    OUTPUT = "Output"


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """A release the endpoint serves."""

    slot: Slot
    """The blue/green slot holding the release; names the model child ``<name>-model-<slot>``."""
    image_uri: str
    """The serving container image (ECR)."""
    model_data_url: pulumi.Input[str]
    """``s3://`` URL of the model.tar.gz."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Container environment. Omitted: none."""


@dataclass(frozen=True, kw_only=True)
class PrivateSubnet:
    subnet_id: pulumi.Input[str]
    """The subnet's id; an Output when the subnet is created in the same program (hybrid topology)."""
    availability_zone: str


@dataclass(frozen=True, kw_only=True)
class VpcPlacement:
    """Private subnets (in >= 2 availability zones) and security groups of the model containers."""

    subnets: tuple[PrivateSubnet, ...]
    security_group_ids: tuple[pulumi.Input[str], ...]

    def __post_init__(self) -> None:
        zones = [subnet.availability_zone for subnet in self.subnets]
        raise_problems("VpcPlacement", [*_distinct_zone_problems(zones),
                                        *check_vpc_config("subnets", self.subnets, self.security_group_ids)])

    @property
    def subnet_ids(self) -> tuple[pulumi.Input[str], ...]:
        return tuple(subnet.subnet_id for subnet in self.subnets)


@dataclass(frozen=True, kw_only=True)
class Scaling:
    initial_instance_count: int
    """Instances a new fleet starts with (first deployment and every release change)."""
    min_instance_count: int
    """Autoscaling floor."""
    max_instance_count: int
    """Autoscaling ceiling."""
    target_invocations_per_instance: int
    """Target tracking: invocations per instance per minute."""
    scale_in_cooldown_seconds: int = 300
    """Wait after a scale-in before the next. Omitted: 300."""
    scale_out_cooldown_seconds: int = 60
    """Wait after a scale-out before the next. Omitted: 60."""

    def __post_init__(self) -> None:
        raise_problems("Scaling", [*self._count_problems(),
                                   *check_range("target_invocations_per_instance",
                                                self.target_invocations_per_instance, 1)])

    def _count_problems(self) -> list[Problem]:
        """1 <= min <= initial <= max; the initial count is judged only once min and max are consistent."""
        low, high = self.min_instance_count, self.max_instance_count
        if low < 1:
            return check_range("min_instance_count", low, 1)
        if high < low:
            return [Problem("max_instance_count", high, f"below min_instance_count ({low})",
                            "raise max_instance_count or lower min_instance_count")]
        return check_range("initial_instance_count", self.initial_instance_count, low, high,
                           why=" (between min_instance_count and max_instance_count)")


@dataclass(frozen=True, kw_only=True)
class DataCapture:
    destination_s3_uri: pulumi.Input[str]
    """Where captured requests and responses go (``s3://<bucket>/data-capture/<endpoint>/``)."""
    sampling_percent: int
    """Share of requests captured (1-100)."""
    json_content_types: tuple[str, ...] = ("application/json",)
    """Captured as JSON text. Omitted: application/json."""
    csv_content_types: tuple[str, ...] = ("text/csv",)
    """Captured as CSV text. Omitted: text/csv."""

    def __post_init__(self) -> None:
        raise_problems("DataCapture", check_range("sampling_percent", self.sampling_percent, 1, 100,
                                                  fix="use 1-100 (omit data_capture to turn it off)"))


@dataclass(frozen=True, kw_only=True)
class ModelEndpointArgs:
    endpoint_name: str
    """Physical endpoint name, stable for the endpoint's life (derive it with ``naming.content_name``)."""
    execution_role_arn: pulumi.Input[str]
    """The role SageMaker assumes (``ExecutionRole``)."""
    kms_key_arn: pulumi.Input[str]
    """Encrypts storage volumes, data capture and the log group."""
    primary: ServedModel
    """The release that takes traffic."""
    instance_type: str
    """e.g. ml.m5.large."""
    scaling: Scaling
    rollout: RolloutPolicy
    alarms: AlarmThresholds
    log_retention_days: int
    """Retention of the endpoint's log group (a CloudWatch value)."""
    shadow: ServedModel | None = None
    """A release that receives a copy of every request as a shadow variant. Omitted: no shadow."""
    vpc: VpcPlacement | None = None
    """Private subnets for the models. Omitted: refused unless ``allow_without_vpc``."""
    allow_without_vpc: bool = False
    """Run the models outside any VPC of yours (dev only). Omitted: a VPC is required."""
    data_capture: DataCapture | None = None
    """Capture requests and responses. Omitted: no capture."""
    volume_size_gib: int | None = None
    """Storage volume per instance. Omitted: SageMaker's default for the instance type."""
    permissions: tuple[pulumi.Resource, ...] = ()
    """What grants the execution role its permissions (the ExecutionRole and its grants). Models wait
    for them. Omitted: models wait only for the role ARN."""
    protect_state: bool = False
    """Protect the log group and retain it on delete. Omitted: deletable."""

    def __post_init__(self) -> None:
        raise_problems("ModelEndpointArgs", [
            *self._name_problems(),
            *self._placement_problems(),
            *check_log_retention("log_retention_days", self.log_retention_days),
            *([] if self.volume_size_gib is None else check_range("volume_size_gib", self.volume_size_gib, 1, 512)),
            *fleet_problems(self.rollout, self.scaling.initial_instance_count, "scaling.initial_instance_count"),
        ])

    def _name_problems(self) -> list[Problem]:
        problems = []
        if not is_sagemaker_name(self.endpoint_name):
            problems.append(Problem("endpoint_name", self.endpoint_name, "not a SageMaker name (letters, digits and "
                                    "-, at most 63)", "derive it with naming.content_name"))
        if not _INSTANCE_TYPE.match(self.instance_type):
            problems.append(Problem("instance_type", self.instance_type, "not a SageMaker instance type "
                                    "(ml.<family>.<size>)", "use e.g. ml.m5.large"))
        return problems

    def _placement_problems(self) -> list[Problem]:
        problems = []
        if self.vpc is None and not self.allow_without_vpc:
            problems.append(Problem("vpc", MISSING, "vpc is required: models run in private subnets (SageMaker.5)",
                                    "pass a VpcPlacement (allow_without_vpc=True is for dev only)"))
        if self.shadow is not None and self.shadow.slot == self.primary.slot:
            problems.append(Problem("shadow.slot", self.shadow.slot.value, f"shadow and primary are both slot "
                                    f"{self.primary.slot.value}", "shadow the other slot"))
        return problems

    @property
    def served(self) -> tuple[ServedModel, ...]:
        return (self.primary,) if self.shadow is None else (self.primary, self.shadow)


class ModelEndpoint(pulumi.ComponentResource):
    """A SageMaker endpoint with content-hashed configs, guarded blue/green rollouts and autoscaling."""

    endpoint_name: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    variant_name: pulumi.Output[str]
    model_names: pulumi.Output[list[str]]
    alarm_names: pulumi.Output[list[str]]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:aws:ModelEndpoint", name, None, opts)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=LOG_GROUP_PREFIX + args.endpoint_name,
            kms_key_id=args.kms_key_arn,
            retention_in_days=args.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_state, retain_on_delete=args.protect_state),
        )
        models = [self._model(name, served, args) for served in args.served]
        config = self._config(name, args, models)
        alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-alarm-{spec.kind}",
                **metric_alarm_args(spec, args.alarms, endpoint_name=args.endpoint_name, variant_name=PRIMARY_VARIANT),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for spec in variant_alarm_specs(args.alarms)
        ]
        timeout = f"{-(-args.rollout.timeout_seconds // 60)}m"
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=config.name,
            deployment_config=deployment_config(
                args.rollout, instance_count=args.scaling.initial_instance_count, alarm_names=[a.name for a in alarms]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group],
                                        custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)),
        )
        self._autoscaling(name, args.scaling, endpoint)

        self._endpoint_arn = endpoint.arn
        self.endpoint_name = endpoint.name
        self.endpoint_config_name = config.name
        self.variant_name = pulumi.Output.from_input(PRIMARY_VARIANT)
        self.model_names = pulumi.Output.all(*[model.name for model in models])
        self.alarm_names = pulumi.Output.all(*[alarm.name for alarm in alarms])
        self.log_group_name = log_group.name
        self.register_outputs({
            "endpoint_name": self.endpoint_name,
            "endpoint_config_name": self.endpoint_config_name,
            "variant_name": self.variant_name,
            "model_names": self.model_names,
            "alarm_names": self.alarm_names,
            "log_group_name": self.log_group_name,
        })

    def grant_invoke(self, grantee: iam.Grantee) -> aws.iam.RolePolicy:
        """Let ``grantee`` invoke this endpoint (``sagemaker:InvokeEndpoint`` on its ARN only)."""
        return iam.grant(self, "invoke", grantee, [
            {"Sid": "InvokeEndpoint", "Effect": "Allow", "Action": ["sagemaker:InvokeEndpoint"],
             "Resource": self._endpoint_arn},
        ])

    def _model(self, name: str, served: ServedModel, args: ModelEndpointArgs) -> aws.sagemaker.Model:
        container = {"image": served.image_uri, "model_data_url": served.model_data_url,
                     "environment": dict(sorted(served.environment.items()))}
        vpc = None if args.vpc is None else {"security_group_ids": _sorted_ids(args.vpc.security_group_ids),
                                             "subnets": _sorted_ids(args.vpc.subnet_ids)}
        content = {"container": container, "vpc": vpc, "role": args.execution_role_arn, "network_isolation": True}
        return aws.sagemaker.Model(
            f"{name}-model-{served.slot.value}",
            name=pulumi.Output.from_input(content).apply(
                lambda resolved: content_name(f"{args.endpoint_name}-{served.slot.value}", resolved)),
            execution_role_arn=args.execution_role_arn,
            enable_network_isolation=True,
            primary_container=container,
            vpc_config=vpc,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.permissions)),
        )

    def _config(self, name: str, args: ModelEndpointArgs,
                models: list[aws.sagemaker.Model]) -> aws.sagemaker.EndpointConfiguration:
        variants = [
            {"variant_name": variant, "model_name": model.name, "instance_type": args.instance_type,
             "initial_instance_count": args.scaling.initial_instance_count, "initial_variant_weight": 1.0,
             **({"volume_size_in_gb": args.volume_size_gib} if args.volume_size_gib else {})}
            for variant, model in zip((PRIMARY_VARIANT, SHADOW_VARIANT), models)
        ]
        content = {
            "production_variants": variants[:1],
            "shadow_production_variants": variants[1:] or None,
            "data_capture_config": _capture_config(args.data_capture, args.kms_key_arn),
            "kms_key_arn": args.kms_key_arn,
        }
        return aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=pulumi.Output.from_input(content).apply(lambda resolved: content_name(args.endpoint_name, resolved)),
            **content,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _autoscaling(self, name: str, scaling: Scaling, endpoint: aws.sagemaker.Endpoint) -> None:
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            resource_id=pulumi.Output.concat("endpoint/", endpoint.name, "/variant/", PRIMARY_VARIANT),
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=scaling.min_instance_count,
            max_capacity=scaling.max_instance_count,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration={
                "target_value": float(scaling.target_invocations_per_instance),
                "scale_in_cooldown": scaling.scale_in_cooldown_seconds,
                "scale_out_cooldown": scaling.scale_out_cooldown_seconds,
                "predefined_metric_specification": {"predefined_metric_type": SCALING_METRIC},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )


def _distinct_zone_problems(zones: list[str]) -> list[Problem]:
    if len(set(zones)) >= 2:
        return []
    return [Problem("subnets", sorted(set(zones)), f"subnets span {len(set(zones))} availability zone(s); "
                    "SageMaker.5 needs >= 2 distinct zones", "add a private subnet in another availability zone")]


def _sorted_ids(ids: tuple[pulumi.Input[str], ...]) -> pulumi.Output[list[str]]:
    """Ids in a stable order (they enter the model's content hash), whether given as strings or Outputs."""
    return pulumi.Output.all(*ids).apply(sorted)


def _capture_config(capture: DataCapture | None, kms_key_arn: pulumi.Input[str]) -> dict | None:
    if capture is None:
        return None
    return {
        "enable_capture": True,
        "initial_sampling_percentage": capture.sampling_percent,
        "destination_s3_uri": capture.destination_s3_uri,
        "kms_key_id": kms_key_arn,
        "capture_options": [{"capture_mode": mode.value} for mode in CaptureMode],
        "capture_content_type_header": {"json_content_types": list(capture.json_content_types),
                                        "csv_content_types": list(capture.csv_content_types)},
    }
