"""Topology-neutral sections: rollout, capacity, alarms. Defaults live here and nowhere else."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, StrictInt

from components.aws.limits import BAKE_SECONDS_MAX, MAX_EXECUTION_SECONDS_RANGE, WAIT_SECONDS_MAX
from infra.settings.common import Environment, Strict


class RolloutStrategy(StrEnum):
    ALL_AT_ONCE = "all_at_once"
    CANARY = "canary"
    LINEAR = "linear"


class Rollout(Strict):
    """How a release change reaches traffic (SageMaker blue/green; on-prem slot switch readiness)."""

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.ALL_AT_ONCE,
        description="all_at_once: shift all traffic after the new fleet is healthy; canary: step_percent first, "
        "then the rest; linear: step_percent per step. Prod requires canary or linear.",
    )
    step_percent: StrictInt | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Canary size or linear step as a percent of the fleet's capacity. SageMaker allows at most 50. "
        "Required for canary and linear; omitted for all_at_once.",
    )
    wait_seconds: StrictInt = Field(default=300, ge=0, le=WAIT_SECONDS_MAX,
                              description=f"Wait between traffic shifts (0-{WAIT_SECONDS_MAX} s).")
    bake_seconds: StrictInt = Field(
        default=600, ge=0, le=BAKE_SECONDS_MAX,
        description=f"Keep the old fleet after the last shift, watching alarms (0-{BAKE_SECONDS_MAX} s).",
    )
    max_execution_seconds: StrictInt = Field(
        default=3600, ge=MAX_EXECUTION_SECONDS_RANGE[0], le=MAX_EXECUTION_SECONDS_RANGE[1],
        description="Upper bound of one deployment ({}-{} s); also sizes timeouts.".format(*MAX_EXECUTION_SECONDS_RANGE),
    )


class Capacity(Strict):
    """Instances (SageMaker) or replicas (Kubernetes). Omitted fields get the environment's defaults."""

    min_count: StrictInt = Field(ge=1, le=100, description="Autoscaling floor. Prod needs >= 2 (SageMaker.4).")
    max_count: StrictInt = Field(ge=1, le=100, description="Autoscaling ceiling.")
    initial_count: StrictInt = Field(
        ge=1, le=100, description="Instances a new fleet starts with during a rollout. Omitted: min_count."
    )
    target_invocations_per_instance: StrictInt = Field(
        default=600, ge=1, le=100000, description="SageMaker target tracking: invocations per instance per minute."
    )
    target_cpu_percent: StrictInt = Field(default=70, ge=10, le=95, description="Kubernetes HPA CPU utilisation target.")


CAPACITY_DEFAULTS: dict[Environment, dict[str, int]] = {
    Environment.DEV: {"min_count": 1, "max_count": 2},
    Environment.STAGING: {"min_count": 2, "max_count": 4},
    Environment.PROD: {"min_count": 2, "max_count": 6},
}


class Alarms(Strict):
    """Health alarms. The same definitions drive SageMaker auto-rollback and are exported for dashboards."""

    error_5xx_count: StrictInt = Field(
        default=5, ge=1, le=100000, description="Invocation5XXErrors (sum per minute) that trips the alarm."
    )
    latency_p99_ms: StrictInt = Field(
        default=1000, ge=1, le=60000, description="ModelLatency p99 in milliseconds that trips the alarm."
    )
    evaluation_minutes: StrictInt = Field(default=3, ge=1, le=60, description="Consecutive breaching minutes before alarm.")
