"""The aws topology: one SageMaker endpoint serving the active slot's release.

What gets built for a stack (all through one explicit ``aws.Provider`` pinned to the stack's account
and region, every resource tagged with the stack and environment):

    encryption   EncryptionKey    encrypts artifacts, data capture, volumes and the endpoint's logs
    artifacts    ArtifactStore    every slot's release, content-addressed; data-capture/<endpoint>/
    execution    ExecutionRole    what SageMaker may do for this endpoint (+ read/capture/key grants)
    serving      ModelEndpoint    the active release on variant "primary"; shadow_slot's release on
                                  variant "shadow"; blue/green rollout with auto-rollback alarms

Stateful resources (key, bucket, log group) are protected and retained in prod. The endpoint's
physical name is a hash of project, stack, account and region: stable for the stack's life and
known before anything is created, so the log group, the role's log permissions and (hybrid) the
private runtime endpoint's policy can name it.

The SageMaker half is reusable: ``plan_sagemaker(settings)`` builds (and so validates) every Args value
that needs no resource output; ``build_sagemaker(settings, plan, provider, key, network)`` registers the
resources on a caller's provider and key, in the private subnets ``network`` names — subnets of the
stack file (``aws.vpc``, this topology) or subnets the caller creates (the hybrid topology's VPC).
``build(settings)`` plans, then registers provider, key and endpoint: a value a component would refuse
stops the program before any resource exists (after the SageMaker-only config rules, ``AWS_RULES``, ran).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.alarms import AlarmThresholds
from components.aws.artifact_store import ArtifactStore, ArtifactStoreArgs, ModelArtifact
from components.aws.endpoint import (
    LOG_GROUP_PREFIX,
    PRIMARY_VARIANT,
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
from components.aws.monitoring import Baseline, ModelMonitoring, ModelMonitoringArgs, MonitoringNetwork, Retraining
from components.aws.monitoring_specs import HealthThresholds
from components.aws.naming import DIGEST_LENGTH, SAGEMAKER_NAME_MAX_LENGTH, content_name, partition
from components.aws.rollout import RolloutPolicy, TrafficRouting
from components.slots import Slot
from infra.manifest import load_manifest
from infra.settings.common import Environment, Release, Topology
from infra.settings.loader import StackSettings
from infra.settings.sections import RolloutStrategy

# The sklearn serving container's script mode (model_artifacts/manifest.json "notes"): the handler
# ships inside model.tar.gz, so the isolated container needs no network to load it.
SCRIPT_MODE_ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
_ROUTING = {
    RolloutStrategy.ALL_AT_ONCE: TrafficRouting.ALL_AT_ONCE,
    RolloutStrategy.CANARY: TrafficRouting.CANARY,
    RolloutStrategy.LINEAR: TrafficRouting.LINEAR,
}


def sagemaker_endpoint_name(project: str, stack: str, account_id: str, region: str) -> str:
    """The endpoint's physical name: readable stack prefix + hash of the deployment's identity (pure)."""
    return content_name(f"lastmile-{stack}", {"project": project, "stack": stack, "account": account_id,
                                              "region": region})


def endpoint_config_name_pattern(endpoint: str) -> str:
    """The shape of the names the endpoint's configs get (``ModelEndpoint``: content_name(endpoint, content))."""
    head = endpoint[:SAGEMAKER_NAME_MAX_LENGTH - DIGEST_LENGTH - 1].strip("-")
    return rf"^{re.escape(head)}-[0-9a-f]{{{DIGEST_LENGTH}}}$"


def endpoint_name(settings: StackSettings) -> str:
    return sagemaker_endpoint_name(pulumi.get_project(), settings.stack, settings.aws.account_id, settings.aws.region)


def sagemaker_image(settings: StackSettings, release: Release) -> str:
    """The image SageMaker runs for ``release``.

    aws: ``serving.slots.<slot>.image`` itself (the ``sagemaker_images`` config rule holds it equal to the
    manifest's image for ``aws.region``). hybrid: that field is the on-prem model server (pinned by digest,
    as Kubernetes requires), so SageMaker runs the manifest's framework image for ``aws.region`` (the same
    rule reports a region the manifest pins no image for).
    """
    if settings.topology == Topology.AWS:
        return release.image
    return load_manifest()[(release.model, release.version)].sagemaker_images[settings.aws.region]


@dataclass(frozen=True, kw_only=True)
class SageMakerPlan:
    """Every Args value of the SageMaker half that needs no resource output, built (so validated) up front."""

    endpoint_name: str
    endpoint_arn: str
    """Known before the endpoint exists (SageMaker ARNs carry the lower-cased name), so policies can name it."""
    artifacts: dict[Slot, ModelArtifact]
    images: dict[Slot, str]
    """The SageMaker image of every slot (``sagemaker_image``)."""
    rollout: RolloutPolicy
    scaling: Scaling
    alarms: AlarmThresholds
    role: ExecutionRoleArgs
    """Without network: ``build_sagemaker`` adds the subnets and security groups the models run in."""

    @property
    def log_group_name(self) -> str:
        return LOG_GROUP_PREFIX + self.endpoint_name


def plan_sagemaker(settings: StackSettings) -> SageMakerPlan:
    cfg, serving = settings.aws, settings.serving
    name = endpoint_name(settings)
    manifest = load_manifest()
    images = {slot: sagemaker_image(settings, release) for slot, release in sorted(serving.slots.items())}
    served_slots = [serving.active_slot] + ([serving.shadow_slot] if serving.shadow_slot else [])
    return SageMakerPlan(
        endpoint_name=name,
        endpoint_arn=f"arn:{partition(cfg.region)}:sagemaker:{cfg.region}:{cfg.account_id}:endpoint/{name.lower()}",
        artifacts={
            slot: ModelArtifact(model=release.model, version=release.version, sha256=release.sha256,
                                path=manifest[(release.model, release.version)].artifact_path)
            for slot, release in sorted(serving.slots.items())
        },
        images=images,
        rollout=RolloutPolicy(
            routing=_ROUTING[settings.rollout.strategy], step_percent=settings.rollout.step_percent,
            wait_seconds=settings.rollout.wait_seconds, bake_seconds=settings.rollout.bake_seconds,
            max_execution_seconds=settings.rollout.max_execution_seconds),
        scaling=Scaling(
            initial_instance_count=settings.capacity.initial_count, min_instance_count=settings.capacity.min_count,
            max_instance_count=settings.capacity.max_count,
            target_invocations_per_instance=settings.capacity.target_invocations_per_instance),
        alarms=AlarmThresholds(
            error_5xx_count=settings.alarms.error_5xx_count, latency_p99_ms=settings.alarms.latency_p99_ms,
            evaluation_minutes=settings.alarms.evaluation_minutes),
        role=ExecutionRoleArgs(
            account_id=cfg.account_id, region=cfg.region,
            image_uris=tuple(sorted({images[slot] for slot in served_slots})),
            log_group_name=LOG_GROUP_PREFIX + name),
    )


def encryption_key_args(settings: StackSettings, plan: SageMakerPlan,
                        extra_log_group_names: tuple[str, ...] = ()) -> EncryptionKeyArgs:
    """The stack's one key: CloudWatch Logs may use it for the endpoint's log group and ``extra_log_group_names``
    (name prefixes ending in ``*`` for auto-named groups, e.g. the hybrid topology's flow and tunnel logs)."""
    cfg = settings.aws
    return EncryptionKeyArgs(
        account_id=cfg.account_id, region=cfg.region,
        description=f"lastmile {settings.stack}: models, capture, logs",
        log_group_names=(plan.log_group_name, *extra_log_group_names), protect_state=settings.protect_state)


def configured_network(settings: StackSettings) -> VpcPlacement | None:
    """The private subnets of ``aws.vpc`` (None in dev without one)."""
    vpc = settings.aws.vpc
    if vpc is None:
        return None
    return VpcPlacement(
        subnets=tuple(PrivateSubnet(subnet_id=s.id, availability_zone=s.availability_zone) for s in vpc.subnets),
        security_group_ids=tuple(vpc.security_group_ids))


def aws_provider(settings: StackSettings) -> aws.Provider:
    """The one AWS provider: pinned to the stack's account and region, tagging everything it creates."""
    cfg = settings.aws
    return aws.Provider(
        "aws", region=cfg.region, allowed_account_ids=[cfg.account_id],
        default_tags=aws.ProviderDefaultTagsArgs(tags={"lastmile:stack": settings.stack,
                                                       "lastmile:env": settings.environment.value}))


def build(settings: StackSettings) -> dict[str, Any]:
    plan = plan_sagemaker(settings)
    network = configured_network(settings)
    key_args = encryption_key_args(settings, plan)

    provider = aws_provider(settings)
    key = EncryptionKey("encryption", key_args, opts=pulumi.ResourceOptions(provider=provider))
    return build_sagemaker(settings, plan, provider, key, network)


def build_sagemaker(settings: StackSettings, plan: SageMakerPlan, provider: aws.Provider, key: EncryptionKey,
                    network: VpcPlacement | None) -> dict[str, Any]:
    """The SageMaker half on ``provider``, encrypted with ``key``, its models in ``network``'s private subnets.

    ``network`` None runs the models outside any VPC, which ``ModelEndpointArgs`` allows in dev only.
    Returns the stack outputs of the half (``lastmile.verify`` reads endpoint_name, endpoint_config_name,
    region, variant_name, model_names and rollback_alarm_names).
    """
    cfg, serving = settings.aws, settings.serving
    name = plan.endpoint_name
    opts = pulumi.ResourceOptions(provider=provider)
    role_args = plan.role if network is None else replace(
        plan.role, vpc_subnet_ids=network.subnet_ids, vpc_security_group_ids=network.security_group_ids)
    store = ArtifactStore("artifacts", ArtifactStoreArgs(
        kms_key_arn=key.arn, artifacts=tuple(plan.artifacts.values()), protect_state=settings.protect_state),
        opts=opts)
    role = ExecutionRole("execution", role_args, opts=opts)
    permissions = [role, store.grant_read(role, *sorted({a.model_prefix for a in plan.artifacts.values()})),
                   key.grant_decrypt(role)]
    capture = None
    if cfg.data_capture_percent > 0:
        capture = DataCapture(destination_s3_uri=store.capture_uri(f"{name}/"),
                              sampling_percent=cfg.data_capture_percent)
        permissions += [store.grant_capture_write(role, f"{name}/"), key.grant_encrypt(role)]

    def served(slot: Slot) -> ServedModel:
        release: Release = serving.slots[slot]
        return ServedModel(slot=slot, image_uri=plan.images[slot], environment=SCRIPT_MODE_ENVIRONMENT,
                           model_data_url=store.model_data_urls[(release.model, release.version)])

    endpoint = ModelEndpoint("serving", ModelEndpointArgs(
        endpoint_name=name, execution_role_arn=role.arn, kms_key_arn=key.arn,
        primary=served(serving.active_slot), shadow=served(serving.shadow_slot) if serving.shadow_slot else None,
        instance_type=cfg.instance_type, volume_size_gib=cfg.volume_size_gib, scaling=plan.scaling,
        rollout=plan.rollout, alarms=plan.alarms, log_retention_days=cfg.log_retention_days, vpc=network,
        allow_without_vpc=settings.environment == Environment.DEV, data_capture=capture,
        permissions=tuple(permissions), protect_state=settings.protect_state), opts=opts)

    active = serving.active
    outputs = {
        "endpoint_name": endpoint.endpoint_name,
        "endpoint_config_name": endpoint.endpoint_config_name,
        "variant_name": endpoint.variant_name,
        "model_names": endpoint.model_names,  # lastmile.verify checks the running config serves exactly these
        "region": cfg.region,
        "model_version": active.version,
        "model_sha256": active.sha256,
        "artifact_bucket": store.bucket_name,
        "kms_key_arn": key.arn,
        "rollback_alarm_names": endpoint.alarm_names,
    }
    if settings.observability.enabled:
        outputs |= build_monitoring(settings, plan, store, key, endpoint, network, opts)
    return outputs


def build_monitoring(settings: StackSettings, plan: SageMakerPlan, store: ArtifactStore, key: EncryptionKey,
                     endpoint: ModelEndpoint, network: VpcPlacement | None,
                     opts: pulumi.ResourceOptions) -> dict[str, Any]:
    """lastmile:observability on the SageMaker plane (ModelMonitoring); the rollback alarms stay ModelEndpoint's."""
    cfg = settings.aws
    watch = settings.observability.effective(settings.environment)
    monitoring = ModelMonitoring("monitoring", ModelMonitoringArgs(
        account_id=cfg.account_id, region=cfg.region, endpoint_name=plan.endpoint_name,
        variant_name=PRIMARY_VARIANT, instance_type=cfg.instance_type, artifact_store=store, kms_key_arn=key.arn,
        baseline=Baseline.of(settings.serving.active.model), rollback_alarm_names=endpoint.alarm_names,
        rollback_thresholds=plan.alarms,
        health=HealthThresholds(
            error_4xx_percent=watch.health.error_4xx_percent, memory_percent=watch.health.memory_percent,
            cpu_percent=watch.health.cpu_percent,
            invocations_per_instance_high=(plan.scaling.target_invocations_per_instance
                                           * watch.health.invocations_percent_of_target // 100)),
        drift_threshold=watch.drift.threshold, cadence=watch.drift.cadence,
        job_instance_type=watch.drift.instance_type, max_runtime_seconds=watch.drift.max_runtime_seconds,
        network=None if network is None else MonitoringNetwork(
            subnet_ids=network.subnet_ids, security_group_ids=network.security_group_ids),
        allow_without_vpc=settings.environment == Environment.DEV,
        emails=tuple(watch.notifications.emails), https_endpoints=tuple(watch.notifications.https_endpoints),
        retraining=Retraining(target=watch.retraining.target, pipeline_name=watch.retraining.pipeline_name,
                              pipeline_parameters=dict(watch.retraining.pipeline_parameters)),
        depends_on=(endpoint,), protect_state=settings.protect_state), opts=opts)
    return {"alert_topic_arn": monitoring.topic_arn, "monitoring_schedule_name": monitoring.schedule_name,
            "monitoring_alarm_names": monitoring.alarm_names, "dashboard_name": monitoring.dashboard_name}
