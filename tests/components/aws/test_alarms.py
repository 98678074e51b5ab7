"""Health alarm definitions: thresholds, units, dimensions."""

from __future__ import annotations

import pytest

from args_errors import reported_fields
from components.aws.alarms import AlarmKind, AlarmThresholds, metric_alarm_args, variant_alarm_specs
from components.problems import ArgsError

THRESHOLDS = AlarmThresholds(error_5xx_count=3, latency_p99_ms=300, evaluation_minutes=2)


def args_of(kind: AlarmKind) -> dict:
    spec = next(s for s in variant_alarm_specs(THRESHOLDS) if s.kind is kind)
    return metric_alarm_args(spec, THRESHOLDS, endpoint_name="ep", variant_name="primary")


def test_5xx_alarm_sums_errors_per_minute():
    args = args_of(AlarmKind.ERRORS_5XX)
    assert args["namespace"] == "AWS/SageMaker"
    assert args["metric_name"] == "Invocation5XXErrors"
    assert args["statistic"] == "Sum" and "extended_statistic" not in args
    assert args["threshold"] == 3
    assert args["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert args["dimensions"] == {"EndpointName": "ep", "VariantName": "primary"}
    assert (args["period"], args["evaluation_periods"], args["datapoints_to_alarm"]) == (60, 2, 2)
    assert args["treat_missing_data"] == "notBreaching"


def test_latency_alarm_is_p99_in_microseconds():
    args = args_of(AlarmKind.LATENCY_P99)
    assert args["metric_name"] == "ModelLatency"
    assert args["extended_statistic"] == "p99" and "statistic" not in args
    assert args["unit"] == "Microseconds"
    assert args["threshold"] == 300_000  # 300 ms
    assert args["evaluate_low_sample_count_percentiles"] == "evaluate"


@pytest.mark.parametrize("field, value", [("error_5xx_count", 0), ("latency_p99_ms", 0), ("evaluation_minutes", 61)])
def test_thresholds_are_validated(field, value):
    values = {"error_5xx_count": 1, "latency_p99_ms": 1, "evaluation_minutes": 1, field: value}
    with pytest.raises(ValueError, match=field):
        AlarmThresholds(**values)


def test_every_invalid_threshold_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        AlarmThresholds(error_5xx_count=0, latency_p99_ms=0, evaluation_minutes=61)
    assert reported_fields(caught.value) == ["error_5xx_count", "latency_p99_ms", "evaluation_minutes"]
