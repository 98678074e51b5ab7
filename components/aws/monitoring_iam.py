"""Least-privilege policy statements of the SageMaker watch (pure; ``ModelMonitoring`` attaches them).

The monitoring role (assumed by SageMaker for the data-quality job, only for this account):
- ``s3``: read the endpoint's captured requests and the baseline's prefix; list only those prefixes;
  write (only write) the reports prefix;
- ``kms``: decrypt and create data keys with the stack key only; create grants on it only for AWS
  resources (SageMaker encrypts the job's volume with a grant);
- ``metrics``: ``cloudwatch:PutMetricData`` (no resource-level permissions exist) only in the
  data-quality namespace (``cloudwatch:namespace`` condition);
- ``logs``: streams and events in ``/aws/sagemaker/ProcessingJobs`` only, where SageMaker writes
  every processing job's logs;
- ``vpc`` (VPC mode): network interfaces only in the given subnets with the given security groups.

The retraining role (assumed by EventBridge, only for this account) may start one pipeline.
"""

from __future__ import annotations

from typing import Any, Sequence

import pulumi

from components.aws.iam import check_key_prefix
from components.aws.monitoring_specs import DRIFT_NAMESPACE, MONITORING_LOG_GROUP
from components.aws.naming import log_group_arn, partition
from components.problems import raise_problems

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
EVENTS_PRINCIPAL = "events.amazonaws.com"
CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
_ENI_MANAGE_ACTIONS = ("ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                       "ec2:DeleteNetworkInterfacePermission")
_VPC_DESCRIBE_ACTIONS = ("ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                         "ec2:DescribeNetworkInterfaces", "ec2:DescribeDhcpOptions")


def trust(service: str, account_id: str) -> dict[str, Any]:
    """``service`` may assume the role, only on behalf of ``account_id`` (no confused deputy)."""
    return {"Sid": "ServiceAssumesForThisAccount", "Effect": "Allow", "Principal": {"Service": service},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}}


def monitoring_role_statements(*, account_id: str, region: str, bucket_arn: pulumi.Input[str],
                               read_prefixes: Sequence[str], write_prefix: str, kms_key_arn: pulumi.Input[str],
                               subnet_ids: Sequence[pulumi.Input[str]] = (),
                               security_group_ids: Sequence[pulumi.Input[str]] = ()) -> dict[str, list[dict[str, Any]]]:
    """The monitoring role's inline policies by name suffix (prefixes end with ``/``, no wildcards)."""
    named = [*((f"read_prefixes.{i}", p) for i, p in enumerate(read_prefixes)), ("write_prefix", write_prefix)]
    raise_problems("monitoring_role_statements",
                   [p for field, prefix in named for p in check_key_prefix(field, prefix)])
    log_group = log_group_arn(account_id, region, MONITORING_LOG_GROUP)
    readable = sorted(set(read_prefixes))
    policies: dict[str, list[dict[str, Any]]] = {
        "s3": [
            {"Sid": "ReadCaptureAndBaseline", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [pulumi.Output.concat(bucket_arn, "/", p, "*") for p in readable]},
            {"Sid": "ListCaptureAndBaseline", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn,
             "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in readable]}}},
            {"Sid": "WriteReports", "Effect": "Allow", "Action": ["s3:PutObject"],
             "Resource": pulumi.Output.concat(bucket_arn, "/", write_prefix, "*")},
        ],
        "kms": [
            {"Sid": "UseStackKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
             "Resource": kms_key_arn},
            {"Sid": "GrantVolumeEncryption", "Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": kms_key_arn,
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        ],
        # PutMetricData has no resource-level permissions; the namespace condition is the scope.
        "metrics": [
            {"Sid": "PublishDataQualityMetrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"],
             "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": DRIFT_NAMESPACE}}},
        ],
        "logs": [
            {"Sid": "WriteProcessingJobLogs", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
             "Resource": [log_group, f"{log_group}:log-stream:*"]},
        ],
    }
    if subnet_ids:
        policies["vpc"] = _vpc_statements(account_id, region, subnet_ids, security_group_ids)
    return policies


def _vpc_statements(account_id: str, region: str, subnet_ids: Sequence[pulumi.Input[str]],
                    security_group_ids: Sequence[pulumi.Input[str]]) -> list[dict[str, Any]]:
    ec2 = f"arn:{partition(region)}:ec2:{region}:{account_id}"
    # Output.concat: the ids may be Outputs of subnets and groups created in the same program (hybrid).
    subnets = [pulumi.Output.concat(f"{ec2}:subnet/", s) for s in subnet_ids]
    groups = [pulumi.Output.concat(f"{ec2}:security-group/", g) for g in security_group_ids]
    return [
        {"Sid": "CreateInterfacesInMonitoringSubnets", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface"],
         "Resource": [f"{ec2}:network-interface/*", *subnets, *groups]},
        {"Sid": "ManageInterfacesInMonitoringSubnets", "Effect": "Allow", "Action": list(_ENI_MANAGE_ACTIONS),
         "Resource": f"{ec2}:network-interface/*", "Condition": {"ArnEquals": {"ec2:Subnet": subnets}}},
        {"Sid": "DescribeNetworking", "Effect": "Allow", "Action": list(_VPC_DESCRIBE_ACTIONS), "Resource": "*",
         "Condition": {"StringEquals": {"ec2:Region": region}}},
    ]


def pipeline_arn(account_id: str, region: str, pipeline_name: str) -> str:
    """SageMaker pipeline ARNs carry the name in lower case."""
    return f"arn:{partition(region)}:sagemaker:{region}:{account_id}:pipeline/{pipeline_name.lower()}"


def start_pipeline_statements(account_id: str, region: str, pipeline_name: str) -> list[dict[str, Any]]:
    return [{"Sid": "StartRetrainingPipeline", "Effect": "Allow", "Action": ["sagemaker:StartPipelineExecution"],
             "Resource": pipeline_arn(account_id, region, pipeline_name)}]


def topic_policy_statements(*, account_id: str, region: str, topic_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """Who may publish to the alert topic: this account's CloudWatch alarms and EventBridge rules, over TLS."""
    arn = f"arn:{partition(region)}"
    return [
        {"Sid": "CloudWatchAlarmsOfThisAccountPublish", "Effect": "Allow",
         "Principal": {"Service": CLOUDWATCH_PRINCIPAL}, "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                       "ArnLike": {"aws:SourceArn": f"{arn}:cloudwatch:{region}:{account_id}:alarm:*"}}},
        {"Sid": "EventBridgeRulesOfThisAccountPublish", "Effect": "Allow",
         "Principal": {"Service": EVENTS_PRINCIPAL}, "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                       "ArnLike": {"aws:SourceArn": f"{arn}:events:{region}:{account_id}:rule/*"}}},
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
         "Resource": topic_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]


def alert_key_policy_statements(*, account_id: str, region: str) -> list[dict[str, Any]]:
    """Key policy of the alert topic's key: the account administers it through IAM; CloudWatch alarms and
    EventBridge rules of this account may encrypt what they publish (service principals have no IAM
    policies, so a key that does not name them silently drops every notification)."""
    return [
        {"Sid": "AccountAdministersKeyThroughIam", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition(region)}:iam::{account_id}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "AlarmsAndRulesOfThisAccountEncrypt", "Effect": "Allow",
         "Principal": {"Service": [CLOUDWATCH_PRINCIPAL, EVENTS_PRINCIPAL]},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}},
    ]
