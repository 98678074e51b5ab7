"""AWS enumerations and limits that no provider checks before the API call (docs/design-notes.md §Offline verification).

pulumi-aws passes these values through; a wrong one fails only at deploy time. Components and the
stack-config rules both validate against these constants, so there is one list of each.
"""

from __future__ import annotations

from typing import Any, Sequence

from components.problems import Problem

# CloudWatch Logs PutRetentionPolicy accepts exactly these.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# SageMaker VpcConfig.
VPC_SUBNETS_RANGE = (1, 16)
VPC_SECURITY_GROUPS_RANGE = (1, 5)
# SageMaker blue/green deployment (UpdateEndpoint DeploymentConfig).
WAIT_SECONDS_MAX = 3600  # wait between traffic steps
BAKE_SECONDS_MAX = 3600  # TerminationWaitInSeconds: the old fleet kept after the last step
MAX_EXECUTION_SECONDS_RANGE = (600, 28800)
CANARY_PERCENT_RANGE = (1, 50)  # CAPACITY_PERCENT of the new fleet
LINEAR_PERCENT_RANGE = (10, 50)
ROLLBACK_ALARMS_RANGE = (1, 10)
# A step of a one-instance fleet is the whole fleet: more than the 50 % SageMaker allows.
MIN_FLEET_FOR_STEPS = 2


def check_log_retention(field: str, days: Any) -> list[Problem]:
    """One of CloudWatch's retention values (a bool is not a number of days). Components and stack config."""
    if days in LOG_RETENTION_DAYS and not isinstance(days, bool):
        return []
    return [Problem(field, days, f"CloudWatch accepts only {LOG_RETENTION_DAYS}",
                    "pick the nearest allowed value (CKV_AWS_338 wants >= 365)")]


def check_vpc_config(subnets_field: str, subnets: Sequence[Any], security_group_ids: Sequence[Any]) -> list[Problem]:
    """SageMaker VpcConfig's counts of subnets and security groups."""
    problems = []
    for field, items, (low, high) in ((subnets_field, subnets, VPC_SUBNETS_RANGE),
                                      ("security_group_ids", security_group_ids, VPC_SECURITY_GROUPS_RANGE)):
        if not low <= len(items) <= high:
            problems.append(Problem(field, f"{len(items)} item(s)", f"SageMaker allows {low}-{high}",
                                    f"pass {low} to {high}"))
    return problems
