"""Rollout policy -> deployment_config: pure, no Pulumi (docs/design-notes.md §Failure modes #6, #7)."""

from __future__ import annotations

import pytest

from args_errors import reported_fields
from components.aws.rollout import (
    TIMEOUT_MARGIN_SECONDS,
    RolloutPolicy,
    TrafficRouting,
    deployment_config,
    fleet_problems,
)
from components.problems import ArgsError

ALARMS = ["five-xx", "latency"]


def policy(**overrides) -> RolloutPolicy:
    values = {"routing": TrafficRouting.CANARY, "step_percent": 10, "wait_seconds": 600, "bake_seconds": 900,
              "max_execution_seconds": 5400, **overrides}
    return RolloutPolicy(**values)


def test_canary_shape():
    config = deployment_config(policy(), instance_count=3, alarm_names=ALARMS)
    assert config == {
        "blue_green_update_policy": {
            "traffic_routing_configuration": {"type": "CANARY", "wait_interval_in_seconds": 600,
                                              "canary_size": {"type": "CAPACITY_PERCENT", "value": 10}},
            "termination_wait_in_seconds": 900,
            "maximum_execution_timeout_in_seconds": 5400,
        },
        "auto_rollback_configuration": {"alarms": [{"alarm_name": "five-xx"}, {"alarm_name": "latency"}]},
    }


def test_linear_shape():
    config = deployment_config(policy(routing=TrafficRouting.LINEAR, step_percent=25), instance_count=4,
                               alarm_names=ALARMS)
    routing = config["blue_green_update_policy"]["traffic_routing_configuration"]
    assert routing == {"type": "LINEAR", "wait_interval_in_seconds": 600,
                       "linear_step_size": {"type": "CAPACITY_PERCENT", "value": 25}}


def test_all_at_once_shape_still_rolls_back():
    config = deployment_config(policy(routing=TrafficRouting.ALL_AT_ONCE, step_percent=None, wait_seconds=0),
                               instance_count=1, alarm_names=ALARMS)
    assert config["blue_green_update_policy"]["traffic_routing_configuration"] == {
        "type": "ALL_AT_ONCE", "wait_interval_in_seconds": 0}
    assert len(config["auto_rollback_configuration"]["alarms"]) == 2


@pytest.mark.parametrize("overrides, message", [
    ({"step_percent": 60}, "CANARY needs step_percent 1-50"),
    ({"step_percent": None}, "CANARY needs step_percent"),
    ({"routing": TrafficRouting.LINEAR, "step_percent": 5}, "LINEAR needs step_percent 10-50"),
    ({"routing": TrafficRouting.ALL_AT_ONCE, "step_percent": 10}, "ALL_AT_ONCE takes no step_percent"),
    ({"wait_seconds": 4000}, "wait_seconds = 4000: must be 0-3600 seconds"),
    ({"bake_seconds": -1}, "bake_seconds = -1: must be 0-3600 seconds"),
    ({"max_execution_seconds": 300}, "max_execution_seconds = 300: must be 600-28800 seconds"),
    ({"max_execution_seconds": 30000}, "max_execution_seconds = 30000: must be 600-28800"),
    ({"wait_seconds": 3600, "bake_seconds": 3600, "max_execution_seconds": 7000}, "must exceed the rollout's waits"),
])
def test_sagemaker_rules_are_enforced(overrides, message):
    with pytest.raises(ValueError, match=message):
        policy(**overrides)


def test_linear_waits_count_every_step():
    linear = policy(routing=TrafficRouting.LINEAR, step_percent=20, wait_seconds=600, bake_seconds=600,
                    max_execution_seconds=3601)
    assert linear.shifts == 4  # 20 % steps: 5 steps, 4 waits between them
    assert linear.minimum_execution_seconds == 4 * 600 + 600
    with pytest.raises(ValueError, match="must exceed"):
        policy(routing=TrafficRouting.LINEAR, step_percent=10, wait_seconds=600, bake_seconds=0,
               max_execution_seconds=5400)  # 9 waits of 600 s = 5400 s


def test_steps_need_a_fleet_of_two():
    assert fleet_problems(policy(), 2) == []
    [problem] = fleet_problems(policy(), 1)
    assert (problem.field, problem.value) == ("instance_count", 1) and "at least 2" in problem.fix
    assert fleet_problems(policy(routing=TrafficRouting.ALL_AT_ONCE, step_percent=None), 1) == []
    with pytest.raises(ValueError, match="cannot be split"):
        deployment_config(policy(), instance_count=1, alarm_names=ALARMS)


@pytest.mark.parametrize("alarms", [[], [f"a{i}" for i in range(11)]])
def test_rollback_needs_one_to_ten_alarms(alarms):
    with pytest.raises(ValueError, match="1-10 alarms"):
        deployment_config(policy(), instance_count=2, alarm_names=alarms)


def test_timeout_covers_the_whole_deployment():
    assert policy().timeout_seconds == 5400 + TIMEOUT_MARGIN_SECONDS


def test_every_policy_problem_is_reported_at_once_without_follow_ons():
    with pytest.raises(ArgsError) as caught:
        policy(wait_seconds=4000, bake_seconds=-1, max_execution_seconds=300, step_percent=60)
    assert reported_fields(caught.value) == ["wait_seconds", "bake_seconds", "max_execution_seconds", "step_percent"]
