"""The lastmile:observability section: defaults per environment, and every bad value reported clearly."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from components.aws.monitoring_specs import Cadence, RetrainingTarget
from infra.settings import loader
from infra.settings.common import Environment, Problem, Topology
from infra.settings.observability import (
    ENVIRONMENT_DEFAULTS,
    OBSERVABILITY_RULES,
    ObservabilitySettings,
)


def settings(**raw) -> ObservabilitySettings:
    return TypeAdapter(ObservabilitySettings).validate_python(raw)


def problems(raw: dict, *, environment=Environment.PROD, topology=Topology.AWS, aws=None) -> list[Problem]:
    """What the loader reports for ``raw``: the model's errors as Problems, else the rules' problems.

    Goes through ``parse_settings`` once the loader lists the section; until then through the same
    helpers the loader uses (``_problems_from`` and OBSERVABILITY_RULES).
    """
    try:
        parsed = TypeAdapter(ObservabilitySettings).validate_python(raw)
    except ValidationError as error:
        return loader._problems_from("observability", ObservabilitySettings, error)
    sections = {"observability": parsed, "environment": environment, "topology": topology,
                "aws": aws if aws is not None else type("Aws", (), {"data_capture_percent": 10})()}
    return [p for rule, needs in OBSERVABILITY_RULES if all(sections.get(n) is not None for n in needs)
            for p in rule(sections)]


PROD_ON = {"enabled": True, "notifications": {"emails": ["ml-oncall@example.com"]}}


def test_absent_section_is_off_and_every_environment_has_defaults():
    assert ObservabilitySettings().enabled is False
    assert set(ENVIRONMENT_DEFAULTS) == set(Environment)
    for environment in Environment:
        effective = settings(**PROD_ON).effective(environment)
        assert None not in effective.drift.model_dump().values()
        assert None not in effective.health.model_dump().values()
    prod = settings(**PROD_ON).effective(Environment.PROD)
    assert prod.drift.cadence is Cadence.HOURLY and prod.drift.threshold == 0.1
    assert settings(**PROD_ON).effective(Environment.DEV).drift.cadence is Cadence.DAILY


def test_given_values_override_the_environment_defaults():
    effective = settings(**PROD_ON, drift={"threshold": 0.3}, health={"memory_percent": 70}).effective(Environment.PROD)
    assert effective.drift.threshold == 0.3 and effective.drift.cadence is Cadence.HOURLY
    assert effective.health.memory_percent == 70 and effective.health.cpu_percent == 80


def test_a_valid_prod_section_has_no_problems():
    raw = {**PROD_ON, "notifications": {"emails": ["ml-oncall@example.com"],
                                        "https_endpoints": ["https://hooks.example.com/lastmile"]},
           "retraining": {"target": "pipeline", "pipeline_name": "iris-retrain", "pipeline_parameters": {"Why": "drift"}},
           "kubernetes": {"prometheus_operator": True, "monitoring_namespace": "monitoring"}}
    assert problems(raw) == []
    assert settings(**raw).retraining.target is RetrainingTarget.PIPELINE


@pytest.mark.parametrize("section, field, value", [
    ("drift", "threshold", 0), ("drift", "threshold", 1.5), ("drift", "max_runtime_seconds", 10),
    ("health", "error_4xx_percent", 0), ("health", "memory_percent", 101), ("health", "cpu_percent", 5),
    ("health", "invocations_percent_of_target", 50),
])
def test_out_of_range_thresholds_are_rejected_with_field_value_and_fix(section, field, value):
    found = problems({**PROD_ON, section: {field: value}})
    assert len(found) == 1, [p.render() for p in found]
    problem = found[0]
    assert problem.field == f"observability.{section}.{field}"
    assert problem.value == value
    assert problem.fix == "bring the value within the allowed range"
    assert f"observability.{section}.{field} = {value!r}" in problem.render()


def test_an_unknown_key_names_the_allowed_ones():
    (problem,) = problems({**PROD_ON, "drift": {"treshold": 0.1}})
    assert problem.field == "observability.drift.treshold" and "threshold" in problem.message


@pytest.mark.parametrize("emails, https, field", [
    (["not-an-address"], [], "observability.notifications.emails.0"),
    ([], ["http://hooks.example.com/x"], "observability.notifications.https_endpoints.0"),
    ([], ["https://user:secret@hooks.example.com/x"], "observability.notifications.https_endpoints.0"),
    (["a@example.com", "a@example.com"], [], "observability.notifications.emails"),
])
def test_bad_notification_targets_are_named(emails, https, field):
    found = problems({"enabled": True, "notifications": {"emails": emails, "https_endpoints": https}})
    assert [p.field for p in found] == [field]
    assert found[0].fix


def test_prod_needs_a_receiver_but_dev_does_not():
    (problem,) = problems({"enabled": True})
    assert problem.field == "observability.notifications" and "at least one" in problem.message
    assert problems({"enabled": True}, environment=Environment.DEV) == []
    assert problems({"enabled": False}) == []  # switched off: nothing to receive


def test_pipeline_target_needs_its_name_and_a_name_needs_the_target():
    (problem,) = problems({**PROD_ON, "retraining": {"target": "pipeline"}})
    assert problem.field == "observability.retraining.pipeline_name" and problem.value is None
    (problem,) = problems({**PROD_ON, "retraining": {"pipeline_name": "iris-retrain"}})
    assert "never start" in problem.message


def test_the_job_must_fit_its_cadence():
    (problem,) = problems({**PROD_ON, "drift": {"cadence": "hourly", "max_runtime_seconds": 7200}})
    assert problem.field == "observability.drift.max_runtime_seconds" and problem.value == 7200
    assert "3600" in problem.fix


def test_sagemaker_monitoring_needs_data_capture():
    no_capture = type("Aws", (), {"data_capture_percent": 0})()
    (problem,) = problems(PROD_ON, aws=no_capture)
    assert problem.field == "aws.data_capture_percent"
    assert problems(PROD_ON, aws=no_capture, topology=Topology.ONPREM) == []


def test_loader_refuses_a_bad_observability_value():
    """The loader reads the section: a bad value fails the whole stack config."""
    assert "observability" in loader.SECTIONS
    from test_loader import valid_prod  # noqa: PLC0415 (same directory, pytest rootdir imports)

    raw = valid_prod() | {"observability": {"enabled": True, "drift": {"threshold": 2}}}
    with pytest.raises(loader.ConfigError) as caught:
        loader.parse_settings("aws-prod", raw)
    fields = [p.field for p in caught.value.problems]
    assert "observability.drift.threshold" in fields and "observability.notifications" in fields
