"""Pure definitions of the SageMaker watch (no resources): analyzer images, alarms, events, dashboard.

Everything here is data built from typed thresholds, so it is unit-testable and ``ModelMonitoring``
(``monitoring.py``) only registers what these functions return.

Alarms ``ModelMonitoring`` creates, all on one-minute periods and ``evaluation_minutes`` consecutive
breaching minutes (``lastmile:alarms``, the same window as the rollback alarms), missing data healthy:

=====================  ===========================================  ==========================================
kind                   watches                                      breaches at
=====================  ===========================================  ==========================================
``4xx-rate``           100 x Invocation4XXErrors / Invocations      >= ``error_4xx_percent`` (clients sending
                       (AWS/SageMaker, metric math, 0 w/o traffic)  what the model refuses: a contract break)
``memory``             MemoryUtilization (/aws/sagemaker/Endpoints)  >= ``memory_percent`` (OOM kills follow)
``cpu``                CPUUtilization (summed over vCPUs)           >= ``cpu_percent`` x vCPUs of the type
``invocations-high``   InvocationsPerInstance (Sum per minute)      >= target tracking's target x
                                                                    ``invocations_percent_of_target`` / 100
                                                                    (scaling is at max or too slow)
``drift-<feature>``    feature_baseline_drift_<feature>             > ``drift_threshold`` (Maximum over one
                       (aws/sagemaker/Endpoints/data-metrics,       monitoring period: hourly or daily)
                       Endpoint + MonitoringSchedule)
=====================  ===========================================  ==========================================

The 5XX and p99-latency alarms are NOT here: ``ModelEndpoint`` declares them (``alarms.py``) and
rolls back on them; ``ModelMonitoring`` routes their state changes to the alert topic through an
EventBridge rule (``rollback_alarm_event_pattern``) instead of declaring them a second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Sequence

from components.aws.alarms import NAMESPACE as SAGEMAKER_NAMESPACE
from components.aws.alarms import PERIOD_SECONDS, AlarmThresholds

from components.problems import ArgsError, Problem, check_range, raise_problems

INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
DRIFT_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
DRIFT_METRIC_PREFIX = "feature_baseline_drift_"
MONITORING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
# sagemaker.core.image_uris.retrieve("model-monitor", region=...) (sagemaker-core's bundled
# image_uri_config/model-monitor.json), resolved offline and pinned here: the analyzer is AWS-owned.
ANALYZER_ACCOUNTS: dict[str, str] = {
    "eu-west-1": "468650794304",
    "eu-central-1": "048819808253",
    "us-east-1": "156813124566",
    "us-west-2": "159807026194",
}
ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
_SIZE = re.compile(r"^ml\.[a-z0-9-]+\.(?:(?P<n>\d+)?xlarge|(?P<small>large|medium))$")


class Cadence(StrEnum):
    """How often the data-quality job runs (SageMaker cron expressions, UTC)."""

    HOURLY = "hourly"
    DAILY = "daily"

    @property
    def schedule_expression(self) -> str:
        return "cron(0 * ? * * *)" if self is Cadence.HOURLY else "cron(0 0 ? * * *)"

    @property
    def seconds(self) -> int:
        return 3600 if self is Cadence.HOURLY else 86400


class RetrainingTarget(StrEnum):
    """Where a monitoring run that found violations goes."""

    TOPIC = "topic"
    PIPELINE = "pipeline"


def check_analyzer_region(field: str, region: str) -> list[Problem]:
    if region in ANALYZER_ACCOUNTS:
        return []
    return [Problem(field, region, f"no Model Monitor analyzer image pinned for it; pinned: "
                    f"{sorted(ANALYZER_ACCOUNTS)}",
                    "add it to ANALYZER_ACCOUNTS from sagemaker.core.image_uris.retrieve('model-monitor', region=...)")]


def analyzer_image_uri(region: str) -> str:
    """The regional Model Monitor analyzer image (pinned table; no lookup at run time)."""
    raise_problems("analyzer_image_uri", check_analyzer_region("region", region))
    return f"{ANALYZER_ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/{ANALYZER_REPOSITORY}"


def check_instance_size(field: str, instance_type: str) -> list[Problem]:
    if _SIZE.match(instance_type):
        return []
    return [Problem(field, instance_type, "cannot tell its vCPUs (ml.<family>.<large|xlarge|Nxlarge|medium>)",
                    "use a sized SageMaker instance type, e.g. ml.m5.large")]


def vcpus(instance_type: str) -> int:
    """vCPUs of a SageMaker instance type from its size (large: 2, xlarge: 4, Nxlarge: 4N; medium: 2)."""
    match = _SIZE.match(instance_type)
    if match is None:
        raise ArgsError("vcpus", check_instance_size("instance_type", instance_type))
    if match["small"]:
        return 2
    return 4 * int(match["n"] or 1)


@dataclass(frozen=True, kw_only=True)
class HealthThresholds:
    """Serving health beyond the two rollback alarms (which stay ``AlarmThresholds``)."""

    error_4xx_percent: int
    """4XX share of invocations, percent, that breaches (1-100)."""
    memory_percent: int
    """MemoryUtilization, percent, that breaches (10-100)."""
    cpu_percent: int
    """CPUUtilization per vCPU, percent, that breaches (10-100)."""
    invocations_per_instance_high: int
    """InvocationsPerInstance per minute that breaches (>= 1)."""

    def __post_init__(self) -> None:
        raise_problems("HealthThresholds", [
            *check_range("error_4xx_percent", self.error_4xx_percent, 1, 100, unit=" percent"),
            *check_range("memory_percent", self.memory_percent, 10, 100, unit=" percent"),
            *check_range("cpu_percent", self.cpu_percent, 10, 100, unit=" percent"),
            *check_range("invocations_per_instance_high", self.invocations_per_instance_high, 1),
        ])


def _window(window: AlarmThresholds) -> dict[str, Any]:
    return {"period": PERIOD_SECONDS, "evaluation_periods": window.evaluation_minutes,
            "datapoints_to_alarm": window.evaluation_minutes, "treat_missing_data": "notBreaching"}


def health_alarm_args(health: HealthThresholds, window: AlarmThresholds, *, instance_type: str,
                      endpoint_name: Any, variant_name: Any) -> dict[str, dict[str, Any]]:
    """``aws.cloudwatch.MetricAlarm`` keyword arguments by alarm kind (see the module docstring)."""
    variant = {"EndpointName": endpoint_name, "VariantName": variant_name}
    window_args = _window(window)

    def metric(query_id: str, name: str) -> dict[str, Any]:
        return {"id": query_id, "return_data": False, "metric": {
            "namespace": SAGEMAKER_NAMESPACE, "metric_name": name, "dimensions": variant,
            "period": PERIOD_SECONDS, "stat": "Sum"}}

    cpu_threshold = health.cpu_percent * vcpus(instance_type)
    return {
        "4xx-rate": {
            "alarm_description": f">= {health.error_4xx_percent} % of invocations answered 4XX per minute "
                                 "(clients break the inference contract)",
            "metric_queries": [
                metric("errors", "Invocation4XXErrors"), metric("invocations", "Invocations"),
                {"id": "rate", "expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                 "label": "4XX percent of invocations", "return_data": True},
            ],
            "threshold": float(health.error_4xx_percent), "comparison_operator": "GreaterThanOrEqualToThreshold",
            **{k: v for k, v in window_args.items() if k != "period"},
        },
        "memory": {
            "alarm_description": f"MemoryUtilization >= {health.memory_percent} % (the container nears OOM)",
            "namespace": INSTANCE_NAMESPACE, "metric_name": "MemoryUtilization", "dimensions": variant,
            "statistic": "Average", "threshold": float(health.memory_percent),
            "comparison_operator": "GreaterThanOrEqualToThreshold", **window_args,
        },
        "cpu": {
            "alarm_description": f"CPUUtilization >= {health.cpu_percent} % per vCPU "
                                 f"({cpu_threshold} % over the {vcpus(instance_type)} vCPUs of {instance_type})",
            "namespace": INSTANCE_NAMESPACE, "metric_name": "CPUUtilization", "dimensions": variant,
            "statistic": "Average", "threshold": float(cpu_threshold),
            "comparison_operator": "GreaterThanOrEqualToThreshold", **window_args,
        },
        "invocations-high": {
            "alarm_description": f">= {health.invocations_per_instance_high} invocations per instance per minute "
                                 "(autoscaling is at its ceiling or behind)",
            "namespace": SAGEMAKER_NAMESPACE, "metric_name": "InvocationsPerInstance", "dimensions": variant,
            "statistic": "Sum", "threshold": float(health.invocations_per_instance_high),
            "comparison_operator": "GreaterThanOrEqualToThreshold", **window_args,
        },
    }


def drift_metric(feature: str) -> str:
    return DRIFT_METRIC_PREFIX + feature


def drift_alarm_args(feature: str, threshold: float, cadence: Cadence, *, endpoint_name: Any,
                     schedule_name: Any) -> dict[str, Any]:
    """The drift alarm of one feature: the monitoring job's distance metric above the threshold."""
    return {
        "alarm_description": f"{feature} drifted from the training baseline: distance > {threshold} "
                             f"({cadence.value} data-quality monitoring)",
        "namespace": DRIFT_NAMESPACE, "metric_name": drift_metric(feature),
        "dimensions": {"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name},
        "statistic": "Maximum", "period": cadence.seconds, "evaluation_periods": 1, "datapoints_to_alarm": 1,
        "threshold": float(threshold), "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",
    }


def violations_event_pattern(schedule_arn: Any) -> dict[str, Any]:
    """A monitoring run of this schedule that completed with constraint violations.

    Monitoring executions are processing jobs; SageMaker sends "SageMaker Processing Job State Change"
    (source aws.sagemaker) with the job's description as ``detail``: a run that found violations ends
    ``Completed`` with an ``ExitMessage`` starting ``CompletedWithViolations`` (the execution status
    the monitoring API reports) and names its ``MonitoringScheduleArn``.
    """
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Processing Job State Change"],
        "detail": {
            "MonitoringScheduleArn": [schedule_arn],
            "ProcessingJobStatus": ["Completed"],
            "ExitMessage": [{"prefix": "CompletedWithViolations"}],
        },
    }


def rollback_alarm_event_pattern(alarm_names: Any) -> dict[str, Any]:
    """State changes (into and out of ALARM) of the endpoint's auto-rollback alarms."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": alarm_names, "state": {"value": ["ALARM", "OK"]}},
    }


def dashboard_body(*, region: str, endpoint_name: Any, variant_name: Any, schedule_name: Any,
                   features: Sequence[str], drift_threshold: float, cadence: Cadence,
                   alarm_arns: Any) -> dict[str, Any]:
    """The CloudWatch dashboard of one endpoint: traffic, errors, latency, utilization, drift, alarms."""
    variant = ["EndpointName", endpoint_name, "VariantName", variant_name]

    def widget(title: str, metrics: list, *, y: int, x: int, period: int = PERIOD_SECONDS,
               annotations: dict | None = None) -> dict[str, Any]:
        properties = {"title": title, "region": region, "view": "timeSeries", "stacked": False,
                      "period": period, "metrics": metrics}
        if annotations:
            properties["annotations"] = annotations
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": properties}

    drift = [[DRIFT_NAMESPACE, drift_metric(f), "Endpoint", endpoint_name, "MonitoringSchedule", schedule_name,
              {"stat": "Maximum", "label": f}] for f in features]
    return {"widgets": [
        widget("Invocations", [[SAGEMAKER_NAMESPACE, "Invocations", *variant, {"stat": "Sum"}],
                               [SAGEMAKER_NAMESPACE, "InvocationsPerInstance", *variant, {"stat": "Sum"}]], y=0, x=0),
        widget("Errors (4XX, 5XX)", [[SAGEMAKER_NAMESPACE, "Invocation4XXErrors", *variant, {"stat": "Sum"}],
                                     [SAGEMAKER_NAMESPACE, "Invocation5XXErrors", *variant, {"stat": "Sum"}]], y=0, x=12),
        widget("ModelLatency p50 / p99 (microseconds)",
               [[SAGEMAKER_NAMESPACE, "ModelLatency", *variant, {"stat": "p50"}],
                [SAGEMAKER_NAMESPACE, "ModelLatency", *variant, {"stat": "p99"}]], y=6, x=0),
        widget("CPU / memory utilization (%)", [[INSTANCE_NAMESPACE, "CPUUtilization", *variant],
                                                [INSTANCE_NAMESPACE, "MemoryUtilization", *variant]], y=6, x=12),
        widget(f"Feature drift vs baseline (threshold {drift_threshold})", drift, y=12, x=0, period=cadence.seconds,
               annotations={"horizontal": [{"label": "drift threshold", "value": drift_threshold}]}),
        {"type": "alarm", "x": 12, "y": 12, "width": 12, "height": 6,
         "properties": {"title": "Alarms (rollback, health, drift)", "alarms": alarm_arns}},
    ]}
