"""AWS enumerations and limits that no provider checks before the API call (REFERENCE §4).

pulumi-aws passes these values through; a wrong one fails only at deploy time. Components and the
stack-config rules both validate against these constants, so there is one list of each.
"""

from __future__ import annotations

# CloudWatch Logs PutRetentionPolicy accepts exactly these.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# SageMaker VpcConfig.
VPC_SUBNETS_RANGE = (1, 16)
VPC_SECURITY_GROUPS_RANGE = (1, 5)
