"""The ``lastmile:aws`` section: account, region, private networking, data capture, logs.

``AWS_RULES`` holds the cross-field rules that only SageMaker imposes (see infra/settings/rules.py for
the shape of a rule); the limits come from components/aws, so config validation and the components
check the same numbers.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, StrictInt

from components.aws.limits import LINEAR_PERCENT_RANGE, LOG_RETENTION_DAYS, MIN_FLEET_FOR_STEPS
from infra.settings.common import Problem, Strict, Topology
from infra.settings.sections import RolloutStrategy

__all__ = ["AWS_RULES", "AwsSettings", "LOG_RETENTION_DAYS", "Subnet", "Vpc"]


class Subnet(Strict):
    id: str = Field(pattern=r"^subnet-[0-9a-f]{8,17}$")
    availability_zone: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$", description="e.g. eu-west-1a")


class Vpc(Strict):
    """Existing private subnets the model containers run in (SageMaker.5, CKV_AWS_370)."""

    subnets: list[Subnet] = Field(min_length=1, description=">= 2 private subnets in distinct AZs in staging/prod.")
    security_group_ids: list[str] = Field(min_length=1, max_length=5)


class AwsSettings(Strict):
    account_id: str = Field(pattern=r"^\d{12}$", description="The only account this stack may deploy to.")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    instance_type: str = Field(default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    volume_size_gib: StrictInt | None = Field(
        default=None, ge=1, le=512, description="Storage per instance. Omitted: SageMaker's default for the type."
    )
    vpc: Vpc | None = Field(default=None, description="Required in staging and prod. Omitted (dev): no VPC config.")
    data_capture_percent: StrictInt = Field(default=20, ge=0, le=100, description="0 turns data capture off.")
    log_retention_days: StrictInt = Field(default=365, description=f"One of CloudWatch's values: {LOG_RETENTION_DAYS}.")


def sagemaker_traffic_steps(s: dict) -> list[Problem]:
    """SageMaker's limits on canary/linear steps that the topology-neutral rules do not know."""
    aws = s.get("aws")
    if s["topology"] == Topology.ONPREM or not isinstance(aws, AwsSettings):
        return []
    rollout, capacity = s["rollout"], s["capacity"]
    if rollout.strategy == RolloutStrategy.ALL_AT_ONCE:
        return []
    problems = []
    low, high = LINEAR_PERCENT_RANGE
    if rollout.strategy == RolloutStrategy.LINEAR and rollout.step_percent is not None and rollout.step_percent < low:
        problems.append(Problem("rollout.step_percent", rollout.step_percent,
                                f"SageMaker's linear steps are {low}-{high} % of the new fleet",
                                f"set rollout.step_percent to {low}-{high}, or use canary"))
    if capacity.initial_count < MIN_FLEET_FOR_STEPS:
        problems.append(Problem("capacity.initial_count", capacity.initial_count,
                                f"a {rollout.strategy.value} rollout shifts at most half of the new fleet per step; "
                                "a one-instance fleet cannot be split",
                                f"set capacity.initial_count (and min_count) to {MIN_FLEET_FOR_STEPS} or more, "
                                "or use all_at_once (not allowed in prod)"))
    return problems


@lru_cache(maxsize=1)
def sagemaker_instance_types() -> tuple[str, ...]:
    """The instance types a SageMaker production variant accepts: the enum of botocore's SageMaker service
    model (offline). Read from botocore's data files (``data/sagemaker/<api version>/service-2.json[.gz]``,
    the newest version, as botocore's loader picks it) without starting a botocore session, whose imports
    cost more than all the other settings together; only the one shape is decoded."""
    data = Path(importlib.util.find_spec("botocore").origin).parent / "data" / "sagemaker"
    newest = max(p for p in data.iterdir() if p.is_dir())  # API versions are ISO dates
    gz = newest / "service-2.json.gz"
    text = gzip.decompress(gz.read_bytes()).decode() if gz.exists() else (newest / "service-2.json").read_text()
    key = re.search(r'"ProductionVariantInstanceType"\s*:\s*\{', text)
    shape = json.JSONDecoder().raw_decode(text, key.end() - 1)[0] if key else None
    if not isinstance(shape, dict) or "enum" not in shape:  # laid out otherwise: decode it all
        shape = json.loads(text)["shapes"]["ProductionVariantInstanceType"]
    return tuple(shape["enum"])


def sagemaker_instance_type(s: dict) -> list[Problem]:
    aws = s.get("aws")
    if s["topology"] == Topology.ONPREM or not isinstance(aws, AwsSettings):
        return []
    known = sagemaker_instance_types()
    if aws.instance_type in known:
        return []
    close = difflib.get_close_matches(aws.instance_type, known, n=3, cutoff=0.8)
    return [Problem("aws.instance_type", aws.instance_type,
                    f"SageMaker has no real-time instance type {aws.instance_type!r}"
                    + (f"; close: {', '.join(close)}" if close else "") + f" ({len(known)} types, e.g. ml.m5.large)",
                    "set aws.instance_type to a SageMaker real-time instance type (ml.<family>.<size>)")]


# (rule, sections it reads); appended to the loader's RULES.
AWS_RULES = [
    (sagemaker_instance_type, ("topology",)),
    (sagemaker_traffic_steps, ("topology", "rollout", "capacity")),
]
