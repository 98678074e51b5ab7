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
known before anything is created, so the log group and the role's log permissions can name it.

Every component Args value that needs no Output is built (and so validated) before the provider is
registered, after the SageMaker-only config rules (``AWS_RULES``) ran: a value a component would
refuse stops the program before any resource exists.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

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
from components.aws.naming import content_name
from components.aws.rollout import RolloutPolicy, TrafficRouting
from components.slots import Slot
from infra.manifest import load_manifest
from infra.settings.common import Environment, Release
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


def endpoint_name(settings: StackSettings) -> str:
    """The endpoint's physical name: readable stack prefix + hash of the deployment's identity."""
    aws_settings = settings.aws
    return content_name(f"lastmile-{settings.stack}", {
        "project": pulumi.get_project(), "stack": settings.stack,
        "account": aws_settings.account_id, "region": aws_settings.region,
    })


def build(settings: StackSettings) -> dict[str, Any]:
    cfg, serving = settings.aws, settings.serving
    name = endpoint_name(settings)
    served_slots = [serving.active_slot] + ([serving.shadow_slot] if serving.shadow_slot else [])
    manifest = load_manifest()
    artifacts = {
        slot: ModelArtifact(model=release.model, version=release.version, sha256=release.sha256,
                            path=manifest[(release.model, release.version)].artifact_path)
        for slot, release in sorted(serving.slots.items())
    }
    rollout = RolloutPolicy(
        routing=_ROUTING[settings.rollout.strategy], step_percent=settings.rollout.step_percent,
        wait_seconds=settings.rollout.wait_seconds, bake_seconds=settings.rollout.bake_seconds,
        max_execution_seconds=settings.rollout.max_execution_seconds)
    scaling = Scaling(
        initial_instance_count=settings.capacity.initial_count, min_instance_count=settings.capacity.min_count,
        max_instance_count=settings.capacity.max_count,
        target_invocations_per_instance=settings.capacity.target_invocations_per_instance)
    thresholds = AlarmThresholds(
        error_5xx_count=settings.alarms.error_5xx_count, latency_p99_ms=settings.alarms.latency_p99_ms,
        evaluation_minutes=settings.alarms.evaluation_minutes)
    vpc = None if cfg.vpc is None else VpcPlacement(
        subnets=tuple(PrivateSubnet(subnet_id=s.id, availability_zone=s.availability_zone) for s in cfg.vpc.subnets),
        security_group_ids=tuple(cfg.vpc.security_group_ids))
    role_args = ExecutionRoleArgs(
        account_id=cfg.account_id, region=cfg.region,
        image_uris=tuple(sorted({serving.slots[slot].image for slot in served_slots})),
        log_group_name=LOG_GROUP_PREFIX + name,
        vpc_subnet_ids=vpc.subnet_ids if vpc else (), vpc_security_group_ids=vpc.security_group_ids if vpc else ())
    key_args = EncryptionKeyArgs(
        account_id=cfg.account_id, region=cfg.region, description=f"lastmile {settings.stack}: models, capture, logs",
        log_group_names=(LOG_GROUP_PREFIX + name,), protect_state=settings.protect_state)

    provider = aws.Provider(
        "aws", region=cfg.region, allowed_account_ids=[cfg.account_id],
        default_tags=aws.ProviderDefaultTagsArgs(tags={"lastmile:stack": settings.stack,
                                                       "lastmile:env": settings.environment.value}))
    opts = pulumi.ResourceOptions(provider=provider)
    key = EncryptionKey("encryption", key_args, opts=opts)
    store = ArtifactStore("artifacts", ArtifactStoreArgs(
        kms_key_arn=key.arn, artifacts=tuple(artifacts.values()), protect_state=settings.protect_state), opts=opts)
    role = ExecutionRole("execution", role_args, opts=opts)
    permissions = [role, store.grant_read(role, *sorted({a.model_prefix for a in artifacts.values()})),
                   key.grant_decrypt(role)]
    capture = None
    if cfg.data_capture_percent > 0:
        capture = DataCapture(destination_s3_uri=store.capture_uri(f"{name}/"),
                              sampling_percent=cfg.data_capture_percent)
        permissions += [store.grant_capture_write(role, f"{name}/"), key.grant_encrypt(role)]

    def served(slot: Slot) -> ServedModel:
        release: Release = serving.slots[slot]
        return ServedModel(slot=slot, image_uri=release.image, environment=SCRIPT_MODE_ENVIRONMENT,
                           model_data_url=store.model_data_urls[(release.model, release.version)])

    endpoint = ModelEndpoint("serving", ModelEndpointArgs(
        endpoint_name=name, execution_role_arn=role.arn, kms_key_arn=key.arn,
        primary=served(serving.active_slot), shadow=served(serving.shadow_slot) if serving.shadow_slot else None,
        instance_type=cfg.instance_type, volume_size_gib=cfg.volume_size_gib, scaling=scaling, rollout=rollout,
        alarms=thresholds, log_retention_days=cfg.log_retention_days, vpc=vpc,
        allow_without_vpc=settings.environment == Environment.DEV, data_capture=capture,
        permissions=tuple(permissions), protect_state=settings.protect_state), opts=opts)

    active = serving.active
    return {
        "endpoint_name": endpoint.endpoint_name,
        "endpoint_config_name": endpoint.endpoint_config_name,
        "variant_name": endpoint.variant_name,
        "model_names": endpoint.model_names,  # infra.verify checks the running config serves exactly these
        "region": cfg.region,
        "model_version": active.version,
        "model_sha256": active.sha256,
        "artifact_bucket": store.bucket_name,
        "kms_key_arn": key.arn,
        "rollback_alarm_names": endpoint.alarm_names,
    }
