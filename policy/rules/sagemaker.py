"""SageMaker serving: model isolation and VPC, encrypted configs, capacity and progressive rollout."""

from __future__ import annotations

import re
from typing import Iterable

from policy.rules.core import (
    as_list,
    dependencies,
    environment_of,
    get,
    GraphDict,
    inputs,
    known,
    METRIC_ALARM,
    PROD,
    Resource,
    resources,
    Rule,
    SCALING_TARGET,
    SM_CONFIG,
    SM_ENDPOINT,
    SM_MODEL,
    STAGING_PROD,
    SUBNET,
)


def sagemaker_network_isolation(r: Resource, g: GraphDict) -> Iterable[str]:
    if inputs(r).get("enableNetworkIsolation") is not True:
        yield "network isolation is off: the container can reach the network; set enable_network_isolation=True"


def sagemaker_model_vpc(r: Resource, g: GraphDict) -> Iterable[str]:
    vpc = inputs(r).get("vpcConfig") or {}
    subnets, groups = as_list(vpc.get("subnets")), as_list(vpc.get("securityGroupIds"))
    if not vpc:
        yield f"{environment_of(g)} models run in private subnets; set vpc_config (>= 2 subnets in distinct AZs)"
        return
    if len(subnets) < 2:
        yield f"vpc_config has {len(subnets)} subnet(s); use >= 2 private subnets in distinct availability zones"
    if not groups:
        yield "vpc_config has no security group"
    declared = dependencies(r, g, SUBNET)
    zones = {inputs(s).get("availabilityZone") for s in declared if known(inputs(s).get("availabilityZone"))}
    if len(declared) >= 2 and len(zones) < 2:
        yield f"the model's subnets share one availability zone ({', '.join(sorted(zones))}); spread them over two"


def sagemaker_config_kms(r: Resource, g: GraphDict) -> Iterable[str]:
    if not inputs(r).get("kmsKeyArn"):
        yield "kms_key_arn is not set: instance storage is encrypted with an AWS-managed key; pass the stack's key"


def sagemaker_prod_instances(r: Resource, g: GraphDict) -> Iterable[str]:
    for variant in as_list(inputs(r).get("productionVariants")):
        name = variant.get("variantName", "?")
        if variant.get("serverlessConfig"):
            yield f"variant {name} is serverless; prod variants run >= 2 instances"
        elif (variant.get("initialInstanceCount") or 0) < 2:
            yield f"variant {name} starts {variant.get('initialInstanceCount')} instance(s); prod needs >= 2"


def sagemaker_progressive_rollout(r: Resource, g: GraphDict) -> Iterable[str]:
    config = inputs(r).get("deploymentConfig") or {}
    routing = get(config, "blueGreenUpdatePolicy.trafficRoutingConfiguration.type")
    if routing not in ("CANARY", "LINEAR"):
        yield (f"traffic routing is {routing or 'not set'}; prod shifts traffic by CANARY or LINEAR blue/green "
               "(set rollout.strategy canary or linear)")
    if not as_list(get(config, "autoRollbackConfiguration.alarms")):
        yield "no auto-rollback alarms; SageMaker would keep a failing release; pass the 5XX and latency alarms"


def _auto_named(logical: str, physical: str) -> bool:
    """Pulumi auto-naming (and the offline synthesis's stand-in): ``<logical name>-<7 hex>``."""
    return re.fullmatch(re.escape(logical) + r"-[0-9a-f]{7}", physical) is not None


def sagemaker_rollback_alarms_declared(r: Resource, g: GraphDict) -> Iterable[str]:
    """Every auto-rollback alarm is a MetricAlarm of this stack: by its name, or (name not yet known) by dependency."""
    wanted = [a.get("alarmName") for a in as_list(get(inputs(r), "deploymentConfig.autoRollbackConfiguration.alarms"))
              if isinstance(a, dict)]
    alarms = resources(g, METRIC_ALARM)

    def declared(name: str) -> bool:
        return any(inputs(a).get("name") == name or _auto_named(a["name"], name) for a in alarms)

    missing = [str(name) for name in wanted if known(name) and not declared(name)]
    pending = sum(1 for name in wanted if not known(name))
    if missing:
        yield (f"auto-rollback alarm(s) {', '.join(missing)} are not declared in this stack; "
               "pass alarm.name of a MetricAlarm defined with the endpoint")
    if pending > len(dependencies(r, g, METRIC_ALARM)):
        yield f"{pending} auto-rollback alarm name(s) are unknown and not produced by a MetricAlarm of this stack"


def autoscaling_min_capacity(r: Resource, g: GraphDict) -> Iterable[str]:
    if inputs(r).get("serviceNamespace") == "sagemaker" and (inputs(r).get("minCapacity") or 0) < 2:
        yield f"autoscaling floor is {inputs(r).get('minCapacity')}; prod keeps >= 2 instances"


# ---------------------------------------------------------------------------------------------


RULES: tuple[Rule, ...] = (
    Rule("sagemaker-model-network-isolation", "Security Hub SageMaker.5; checkov CKV_AWS_370",
         "models with network isolation", (SM_MODEL,), sagemaker_network_isolation),
    Rule("sagemaker-model-vpc", "Security Hub SageMaker.5; checkov CKV_AWS_370",
         "VPC config in >= 2 private subnets in distinct AZs (staging, prod)", (SM_MODEL,), sagemaker_model_vpc,
         STAGING_PROD),
    Rule("sagemaker-endpoint-config-kms", "checkov CKV_AWS_98", "endpoint config kms_key_arn set", (SM_CONFIG,),
         sagemaker_config_kms),
    Rule("sagemaker-prod-instance-count", "Security Hub SageMaker.4", "every production variant >= 2 instances in prod",
         (SM_CONFIG,), sagemaker_prod_instances, PROD),
    Rule("sagemaker-progressive-rollout", "docs/security-checklist.md §Availability", "blue/green CANARY or LINEAR with auto-rollback",
         (SM_ENDPOINT,), sagemaker_progressive_rollout, PROD),
    Rule("sagemaker-rollback-alarms-declared", "docs/security-checklist.md §Availability",
         "auto-rollback alarms declared in the same stack", (SM_ENDPOINT,), sagemaker_rollback_alarms_declared),
    Rule("autoscaling-min-capacity", "docs/security-checklist.md §Availability; Security Hub SageMaker.4", "autoscaling min >= 2",
         (SCALING_TARGET,), autoscaling_min_capacity, PROD),
)
