"""Health alarms of a SageMaker production variant (pure definitions; ``ModelEndpoint`` creates them).

The same alarms drive SageMaker's auto-rollback during a blue/green deployment and page on a
regression in steady state:

- ``Invocation5XXErrors``: Sum per minute >= ``error_5xx_count``;
- ``ModelLatency``: p99 per minute >= ``latency_p99_ms``. CloudWatch publishes ModelLatency in
  MICROseconds, so the threshold is ``latency_p99_ms * 1000`` and the alarm names the unit.

Both watch ``AWS/SageMaker`` with the ``EndpointName`` and ``VariantName`` dimensions, alarm after
``evaluation_minutes`` consecutive breaching minutes, and treat missing data (no traffic) as healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from components.problems import check_range, raise_problems

NAMESPACE = "AWS/SageMaker"
PERIOD_SECONDS = 60
MICROSECONDS_PER_MILLISECOND = 1000


class AlarmKind(StrEnum):
    ERRORS_5XX = "5xx"
    LATENCY_P99 = "latency-p99"


@dataclass(frozen=True, kw_only=True)
class AlarmThresholds:
    error_5xx_count: int
    """5XX responses per minute that breach."""
    latency_p99_ms: int
    """p99 model latency in milliseconds that breaches."""
    evaluation_minutes: int
    """Consecutive breaching minutes before the alarm fires (1-60)."""

    def __post_init__(self) -> None:
        raise_problems("AlarmThresholds", [
            *check_range("error_5xx_count", self.error_5xx_count, 1),
            *check_range("latency_p99_ms", self.latency_p99_ms, 1),
            *check_range("evaluation_minutes", self.evaluation_minutes, 1, 60),
        ])


@dataclass(frozen=True, kw_only=True)
class AlarmSpec:
    kind: AlarmKind
    metric_name: str
    threshold: float
    unit: str | None
    statistic: str | None
    extended_statistic: str | None
    description: str


def variant_alarm_specs(thresholds: AlarmThresholds) -> list[AlarmSpec]:
    return [
        AlarmSpec(kind=AlarmKind.ERRORS_5XX, metric_name="Invocation5XXErrors", threshold=thresholds.error_5xx_count,
                  unit=None, statistic="Sum", extended_statistic=None,
                  description=f">= {thresholds.error_5xx_count} 5XX responses per minute; rolls a deployment back"),
        AlarmSpec(kind=AlarmKind.LATENCY_P99, metric_name="ModelLatency",
                  threshold=thresholds.latency_p99_ms * MICROSECONDS_PER_MILLISECOND, unit="Microseconds",
                  statistic=None, extended_statistic="p99",
                  description=f"p99 model latency >= {thresholds.latency_p99_ms} ms; rolls a deployment back"),
    ]


def metric_alarm_args(spec: AlarmSpec, thresholds: AlarmThresholds, *,
                      endpoint_name: Any, variant_name: str) -> dict[str, Any]:
    """Keyword arguments of ``aws.cloudwatch.MetricAlarm`` for ``spec`` on one variant."""
    args: dict[str, Any] = {
        "alarm_description": spec.description,
        "namespace": NAMESPACE,
        "metric_name": spec.metric_name,
        "dimensions": {"EndpointName": endpoint_name, "VariantName": variant_name},
        "period": PERIOD_SECONDS,
        "evaluation_periods": thresholds.evaluation_minutes,
        "datapoints_to_alarm": thresholds.evaluation_minutes,
        "threshold": spec.threshold,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "treat_missing_data": "notBreaching",
    }
    if spec.statistic:
        args["statistic"] = spec.statistic
    if spec.extended_statistic:
        args["extended_statistic"] = spec.extended_statistic
        args["evaluate_low_sample_count_percentiles"] = "evaluate"
    if spec.unit:
        args["unit"] = spec.unit
    return args
