"""KMS-encrypted CloudWatch log groups with retention, shared by the VPC flow logs and the VPN tunnel logs."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.limits import check_log_retention  # one list of CloudWatch's retention values, one check
from components.problems import Problem

_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


def check_log_args(prefix: str, kms_key_arn: Any, retention_days: Any) -> list[Problem]:
    """Findings for a log group's key (a plain string must be a KMS key ARN) and retention."""
    findings = []
    if kms_key_arn is None or kms_key_arn == "":
        findings.append(Problem(f"{prefix}kms_key_arn", kms_key_arn, "log groups are KMS-encrypted (CKV_AWS_158)",
                                "pass the ARN of a customer-managed KMS key whose policy admits "
                                "logs.<region>.amazonaws.com"))
    elif isinstance(kms_key_arn, str) and not _KMS_KEY_ARN.match(kms_key_arn):
        findings.append(Problem(f"{prefix}kms_key_arn", kms_key_arn,
                                "not a KMS key ARN (CloudWatch Logs refuses aliases)",
                                "pass arn:aws:kms:<region>:<account>:key/<key-id>, e.g. a Key's .arn output"))
    return findings + check_log_retention(f"{prefix}retention_days", retention_days)


def encrypted_log_group(
    name: str, *, parent: pulumi.Resource, kms_key_arn: pulumi.Input[str], retention_days: int, protect_state: bool
) -> aws.cloudwatch.LogGroup:
    """A log group encrypted with ``kms_key_arn``; protected and retained on delete when ``protect_state``.

    Retained because deleting a log group deletes the logs in it.
    """
    return aws.cloudwatch.LogGroup(
        name,
        kms_key_id=kms_key_arn,
        retention_in_days=retention_days,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect_state, retain_on_delete=protect_state),
    )
