"""The ``lastmile:aws`` section: account, region, private networking, data capture, logs."""

from __future__ import annotations

from pydantic import Field

from infra.settings.common import Strict


class Subnet(Strict):
    id: str = Field(pattern=r"^subnet-[0-9a-f]{8,17}$")
    availability_zone: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$", description="e.g. eu-west-1a")


class Vpc(Strict):
    """Existing private subnets the model containers run in (SageMaker.5, CKV_AWS_370)."""

    subnets: list[Subnet] = Field(min_length=1, description=">= 2 private subnets in distinct AZs in staging/prod.")
    security_group_ids: list[str] = Field(min_length=1, max_length=5)


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


class AwsSettings(Strict):
    account_id: str = Field(pattern=r"^\d{12}$", description="The only account this stack may deploy to.")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    instance_type: str = Field(default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    volume_size_gib: int | None = Field(
        default=None, ge=1, le=512, description="Storage per instance. Omitted: SageMaker's default for the type."
    )
    vpc: Vpc | None = Field(default=None, description="Required in staging and prod. Omitted (dev): no VPC config.")
    data_capture_percent: int = Field(default=20, ge=0, le=100, description="0 turns data capture off.")
    log_retention_days: int = Field(default=365, description=f"One of CloudWatch's values: {LOG_RETENTION_DAYS}.")
