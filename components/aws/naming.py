"""Physical names and ARNs: derived from content, never hard-coded.

SageMaker endpoint configurations and models are immutable and their names are unique per account
and region. Naming them from a hash of their full content means a change produces a new name, so
Pulumi creates the new resource before deleting the old one (no "already existing" collision), and
an unchanged program produces exactly the same names (no spurious replacement).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

SAGEMAKER_NAME_MAX_LENGTH = 63
DIGEST_LENGTH = 12
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def digest(content: Any, length: int = DIGEST_LENGTH) -> str:
    """A short, stable sha256 of JSON-serialisable ``content`` (key order does not matter)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def content_name(prefix: str, content: Any, max_length: int = SAGEMAKER_NAME_MAX_LENGTH) -> str:
    """``<prefix>-<digest of content>``, the prefix shortened so the whole fits ``max_length``."""
    suffix = digest(content)
    room = max_length - len(suffix) - 1
    if room < 1:
        raise ValueError(f"max_length {max_length} leaves no room for a prefix before the {len(suffix)}-char digest")
    head = re.sub(r"[^a-zA-Z0-9-]+", "-", prefix)[:room].strip("-") or "x"
    return f"{head}-{suffix}"


def is_sagemaker_name(value: str) -> bool:
    """SageMaker's pattern for endpoint, endpoint configuration and model names."""
    return bool(_SAGEMAKER_NAME.match(value))


def partition(region: str) -> str:
    """The ARN partition of a region (aws, aws-cn, aws-us-gov)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def account_root_arn(account_id: str, region: str) -> str:
    """The principal that stands for the whole account (delegates to its IAM policies)."""
    return f"arn:{partition(region)}:iam::{account_id}:root"


def log_group_arn(account_id: str, region: str, log_group_name: str) -> str:
    """The ARN of a CloudWatch Logs log group (without the ``:*`` suffix)."""
    return f"arn:{partition(region)}:logs:{region}:{account_id}:log-group:{log_group_name}"
