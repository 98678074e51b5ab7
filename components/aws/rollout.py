"""Rollout policy -> SageMaker ``deployment_config`` (pure: no Pulumi, unit-testable).

One typed value describes how a release change reaches traffic. It is checked against SageMaker's
rules (botocore's sagemaker model and the deployment-guardrails guide) before anything is sent:

- traffic routing ALL_AT_ONCE, CANARY (one step of ``step_percent``, then the rest) or LINEAR
  (``step_percent`` per step); sizes are CAPACITY_PERCENT of the new fleet;
- canary 1-50 %, linear 10-50 % of the new fleet, so canary and linear need a fleet of >= 2 instances
  (a step of a one-instance fleet is the whole fleet);
- wait between steps and the bake time (``termination_wait_in_seconds``, the old fleet kept while
  alarms are watched) 0-3600 s; the whole deployment 600-28800 s and longer than all its waits;
- 1-10 auto-rollback alarms: every deployment rolls back when one of them fires.

``timeout_seconds`` sizes Pulumi's create/update timeouts of the endpoint from the same value, so a
long canary is never cut off by the tool (docs/design-notes.md §Failure modes #6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Sequence

from components.aws.limits import (
    BAKE_SECONDS_MAX,
    CANARY_PERCENT_RANGE,
    LINEAR_PERCENT_RANGE,
    MAX_EXECUTION_SECONDS_RANGE,
    MIN_FLEET_FOR_STEPS,
    ROLLBACK_ALARMS_RANGE,
    WAIT_SECONDS_MAX,
)
from components.problems import MISSING, Problem, check_range, raise_problems

# Beyond the deployment itself: polling, a rollback's traffic shift back, slow instance launches.
TIMEOUT_MARGIN_SECONDS = 1800


class TrafficRouting(StrEnum):
    ALL_AT_ONCE = "ALL_AT_ONCE"
    CANARY = "CANARY"
    LINEAR = "LINEAR"


@dataclass(frozen=True, kw_only=True)
class RolloutPolicy:
    routing: TrafficRouting
    """How traffic moves from the old fleet to the new one."""
    wait_seconds: int
    """Wait between traffic steps, watching the alarms (0-3600)."""
    bake_seconds: int
    """Keep the old fleet after the last step, watching the alarms (0-3600)."""
    max_execution_seconds: int
    """Upper bound of one deployment (600-28800); also sizes the tool's timeouts."""
    step_percent: int | None = None
    """Canary size or linear step, percent of the new fleet. Required for CANARY and LINEAR; omitted
    (None) for ALL_AT_ONCE."""

    def __post_init__(self) -> None:
        raise_problems("RolloutPolicy", policy_problems(self))

    @property
    def shifts(self) -> int:
        """Traffic steps that are followed by a wait before the next one."""
        if self.routing is TrafficRouting.LINEAR:
            return math.ceil(100 / self.step_percent) - 1
        return 1 if self.routing is TrafficRouting.CANARY else 0

    @property
    def minimum_execution_seconds(self) -> int:
        return self.shifts * self.wait_seconds + self.bake_seconds

    @property
    def timeout_seconds(self) -> int:
        """How long the tool waits for a create or update of the endpoint."""
        return endpoint_timeout_seconds(self.max_execution_seconds)


def endpoint_timeout_seconds(max_execution_seconds: int) -> int:
    """How long the tool waits for a create or update of an endpoint whose deployment may take
    ``max_execution_seconds`` (RolloutPolicy.timeout_seconds; the engine's deadline is sized from it too)."""
    return max_execution_seconds + TIMEOUT_MARGIN_SECONDS


def policy_problems(policy: RolloutPolicy) -> list[Problem]:
    """Everything SageMaker would refuse in ``policy`` on its own (without the fleet size)."""
    problems = [
        *check_range("wait_seconds", policy.wait_seconds, 0, WAIT_SECONDS_MAX, unit=" seconds"),
        *check_range("bake_seconds", policy.bake_seconds, 0, BAKE_SECONDS_MAX, unit=" seconds"),
        *check_range("max_execution_seconds", policy.max_execution_seconds, *MAX_EXECUTION_SECONDS_RANGE,
                     unit=" seconds"),
        *_step_problems(policy.routing, policy.step_percent),
    ]
    if not problems and policy.minimum_execution_seconds >= policy.max_execution_seconds:
        problems.append(Problem("max_execution_seconds", policy.max_execution_seconds,
                                f"must exceed the rollout's waits ({policy.shifts} x {policy.wait_seconds} s + "
                                f"{policy.bake_seconds} s bake = {policy.minimum_execution_seconds} s)",
                                "raise max_execution_seconds or shorten wait_seconds / bake_seconds"))
    return problems


def _step_problems(routing: TrafficRouting, step_percent: int | None) -> list[Problem]:
    if routing is TrafficRouting.ALL_AT_ONCE:
        return [] if step_percent is None else [Problem("step_percent", step_percent, "ALL_AT_ONCE takes no "
                                                        "step_percent", "omit step_percent (None)")]
    low, high = CANARY_PERCENT_RANGE if routing is TrafficRouting.CANARY else LINEAR_PERCENT_RANGE
    if step_percent is None or not low <= step_percent <= high:
        return [Problem("step_percent", MISSING if step_percent is None else step_percent,
                        f"{routing.value} needs step_percent {low}-{high}", f"pass a step_percent of {low}-{high}")]
    return []


def fleet_problems(policy: RolloutPolicy, instance_count: int, field: str = "instance_count") -> list[Problem]:
    """What SageMaker would refuse for a new fleet of ``instance_count`` instances (named ``field``)."""
    if instance_count < 1:
        return check_range(field, instance_count, 1)
    if policy.step_percent is not None and instance_count < MIN_FLEET_FOR_STEPS:
        return [Problem(field, instance_count, f"{policy.routing.value} shifts traffic in steps of at most half the "
                        f"new fleet; a fleet of {instance_count} instance cannot be split",
                        f"start it with at least {MIN_FLEET_FOR_STEPS}, or roll out ALL_AT_ONCE")]
    return []


def deployment_config(policy: RolloutPolicy, *, instance_count: int, alarm_names: Sequence[Any]) -> dict[str, Any]:
    """The Endpoint's ``deployment_config`` (a pulumi-aws ``EndpointDeploymentConfigArgsDict``).

    ``alarm_names`` may hold Outputs (``MetricAlarm.name``).
    """
    problems = fleet_problems(policy, instance_count)
    low, high = ROLLBACK_ALARMS_RANGE
    if not low <= len(alarm_names) <= high:
        problems.append(Problem("alarm_names", f"{len(alarm_names)} alarm(s)", f"auto-rollback needs {low}-{high} "
                                "alarms", f"pass {low} to {high} alarm names"))
    raise_problems("deployment_config", problems)
    routing: dict[str, Any] = {"type": policy.routing.value, "wait_interval_in_seconds": policy.wait_seconds}
    if policy.routing is TrafficRouting.CANARY:
        routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": policy.step_percent}
    elif policy.routing is TrafficRouting.LINEAR:
        routing["linear_step_size"] = {"type": "CAPACITY_PERCENT", "value": policy.step_percent}
    return {
        "blue_green_update_policy": {
            "traffic_routing_configuration": routing,
            "termination_wait_in_seconds": policy.bake_seconds,
            "maximum_execution_timeout_in_seconds": policy.max_execution_seconds,
        },
        "auto_rollback_configuration": {"alarms": [{"alarm_name": name} for name in alarm_names]},
    }
