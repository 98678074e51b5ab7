"""EncryptionKey: a customer-managed KMS key for everything a serving stack stores.

Safe defaults (Security Hub KMS.3/4/5, checkov CKV_AWS_7/33):
- automatic yearly rotation, a 30-day deletion window;
- an explicit key policy with no ``*`` principal: the account root (which delegates use of the key
  to IAM policies in the account, so ``grant_*`` methods work and the key can never become
  unmanageable) plus CloudWatch Logs' regional service principal, allowed only with an encryption
  context naming one of the given log groups;
- ``protect_state`` protects the key and retains it on delete: data encrypted with a deleted key is
  lost.

S3 (SSE-KMS) and SageMaker (storage volumes, data capture) use the key on behalf of a caller, so they
need no service statement: the caller's IAM permissions (``grant_decrypt`` / ``grant_encrypt``)
decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.aws.naming import account_root_arn, log_group_arn
from components.network.addressing import check_account_id
from components.problems import Problem, raise_problems

ROTATION = True
DELETION_WINDOW_DAYS = 30
# CloudWatch Logs needs these on the key itself (a service principal has no IAM policies).
_LOGS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                 "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext")
_LOG_GROUP_PATTERN = re.compile(r"^[\w#/.-]+\*?$")


@dataclass(frozen=True, kw_only=True)
class EncryptionKeyArgs:
    account_id: str
    """The account that owns the key; its root is the key's administrator."""
    region: str
    """The key's region (names the CloudWatch Logs service principal)."""
    description: str
    """What the key protects (shown in the KMS console)."""
    log_group_names: tuple[str, ...] = ()
    """CloudWatch Logs log groups that may encrypt with the key; a trailing ``*`` matches a prefix.
    Omitted: CloudWatch Logs cannot use the key."""
    protect_state: bool = False
    """Protect the key and retain it when the stack deletes it. Omitted: the key is deletable
    (after the 30-day window)."""

    def __post_init__(self) -> None:
        problems = check_account_id("account_id", self.account_id)
        if not self.description.strip():
            problems.append(Problem("description", self.description, "description is empty",
                                    "say what the key protects"))
        problems += [Problem(f"log_group_names.{i}", name, "not a log group name (or a name prefix ending in *)",
                             "use e.g. /aws/sagemaker/Endpoints/<name> or a prefix like /aws/vpc/*")
                     for i, name in enumerate(self.log_group_names)
                     if not _LOG_GROUP_PATTERN.match(name) or name == "*"]
        raise_problems("EncryptionKeyArgs", problems)


class EncryptionKey(pulumi.ComponentResource):
    """A rotating KMS key with an explicit, least-privilege key policy."""

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:aws:EncryptionKey", name, None, opts)
        self._args = args
        key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=ROTATION,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=iam.policy_document(key_policy_statements(args)),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_state, retain_on_delete=args.protect_state),
        )
        self.arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"arn": self.arn, "key_id": self.key_id})

    def grant_decrypt(self, grantee: iam.Grantee) -> aws.iam.RolePolicy:
        """Let ``grantee`` decrypt with this key (``kms:Decrypt`` on this key only)."""
        return iam.grant(self, "decrypt", grantee, [
            {"Sid": "DecryptWithKey", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": self.arn},
        ])

    def grant_encrypt(self, grantee: iam.Grantee) -> aws.iam.RolePolicy:
        """Let ``grantee`` create data keys with this key (``kms:GenerateDataKey`` on this key only),
        which SSE-KMS writes need."""
        return iam.grant(self, "encrypt", grantee, [
            {"Sid": "GenerateDataKeyWithKey", "Effect": "Allow", "Action": ["kms:GenerateDataKey"],
             "Resource": self.arn},
        ])


def key_policy_statements(args: EncryptionKeyArgs) -> list[dict]:
    """The key policy. ``Resource: "*"`` in a key policy means "this key"."""
    statements: list[dict] = [{
        # The AWS default root statement: without it the key could lock everyone out. It grants
        # nothing by itself; IAM policies in the account decide who may use the key.
        "Sid": "AccountAdministersKeyThroughIam",
        "Effect": "Allow",
        "Principal": {"AWS": account_root_arn(args.account_id, args.region)},
        "Action": "kms:*",
        "Resource": "*",
    }]
    if args.log_group_names:
        statements.append({
            "Sid": "CloudWatchLogsEncryptsNamedLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
            "Action": list(_LOGS_ACTIONS),
            "Resource": "*",
            "Condition": {"StringLike": {"kms:EncryptionContext:aws:logs:arn": [
                log_group_arn(args.account_id, args.region, name) for name in args.log_group_names
            ]}},
        })
    return statements
