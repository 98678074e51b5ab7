"""AlertTopic: the encrypted SNS topic every lastmile alarm and monitoring event is sent to.

Safe defaults:
- the topic is KMS-encrypted. Omitted ``kms_key_arn``: a dedicated rotating key (30-day window) is
  created whose policy lets CloudWatch alarms and EventBridge rules of this account encrypt: a key
  that does not name those service principals (like the stack's ``EncryptionKey``, which delegates to
  IAM only) makes every notification fail silently;
- the topic policy allows ``sns:Publish`` only to this account's CloudWatch alarms and EventBridge
  rules (``aws:SourceAccount`` + ``aws:SourceArn``) and denies any publish not made over TLS;
- subscriptions: email addresses and ``https://`` webhooks only (no plain http, no SMS);
- ``protect_state`` protects and retains the created key (messages in flight are lost with it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.aws.kms import DELETION_WINDOW_DAYS, ROTATION
from components.aws.monitoring_iam import alert_key_policy_statements, topic_policy_statements
from components.aws.naming import digest
from components.network.addressing import check_account_id
from components.problems import Problem, raise_problems

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


@dataclass(frozen=True, kw_only=True)
class AlertTopicArgs:
    account_id: str
    """The only account whose alarms and rules may publish."""
    region: str
    emails: tuple[str, ...] = ()
    """Email subscriptions (each recipient confirms once). Omitted: none."""
    https_endpoints: tuple[str, ...] = ()
    """https:// webhook subscriptions. Omitted: none."""
    kms_key_arn: pulumi.Input[str] | None = None
    """A key whose policy admits cloudwatch.amazonaws.com and events.amazonaws.com. Omitted: one is created."""
    protect_state: bool = False
    """Protect and retain the created key. Omitted: deletable."""

    def __post_init__(self) -> None:
        raise_problems("AlertTopicArgs", [*check_account_id("account_id", self.account_id),
                                          *check_targets(self.emails, self.https_endpoints)])


def check_targets(emails: Sequence[str], https_endpoints: Sequence[str], prefix: str = "") -> list[Problem]:
    """Email and https subscriptions: well-formed, https with a host and no credentials, none listed twice.

    The one check of alert targets, for the components' Args and the stack's observability settings;
    ``prefix`` is where the two lists sit in the caller's input (``observability.notifications.``).
    """
    problems = [Problem(f"{prefix}emails.{i}", email, "not an email address", "write it as name@domain.tld")
                for i, email in enumerate(emails) if not EMAIL.match(email)]
    for i, url in enumerate(https_endpoints):
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
            problems.append(Problem(f"{prefix}https_endpoints.{i}", url,
                                    "must be an https:// URL with a host and no credentials in it (alerts travel "
                                    "over TLS only; a secret belongs in the receiver, not in the URL)",
                                    "use https://host/path"))
    for field, values in (("emails", emails), ("https_endpoints", https_endpoints)):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            problems.append(Problem(f"{prefix}{field}", duplicates, "listed more than once", "list each target once"))
    return problems


class AlertTopic(pulumi.ComponentResource):
    """An encrypted SNS topic that only this account's alarms and rules can publish to, over TLS."""

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:aws:AlertTopic", name, None, opts)
        key_arn = args.kms_key_arn
        if key_arn is None:
            key_arn = aws.kms.Key(
                f"{name}-key",
                description="lastmile alert topic: CloudWatch alarms and EventBridge rules of this account",
                enable_key_rotation=ROTATION,
                deletion_window_in_days=DELETION_WINDOW_DAYS,
                policy=iam.policy_document(alert_key_policy_statements(account_id=args.account_id,
                                                                       region=args.region)),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect_state,
                                            retain_on_delete=args.protect_state),
            ).arn
        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=key_arn,
                              opts=pulumi.ResourceOptions(parent=self))
        aws.sns.TopicPolicy(
            f"{name}-policy", arn=topic.arn,
            policy=iam.policy_document(topic_policy_statements(account_id=args.account_id, region=args.region,
                                                               topic_arn=topic.arn)),
            opts=pulumi.ResourceOptions(parent=self))
        targets = [("email", e) for e in args.emails] + [("https", u) for u in args.https_endpoints]
        for protocol, endpoint in targets:
            # Named by a digest of the target: removing one leaves the others' URNs alone, and no
            # address appears in a URN.
            aws.sns.TopicSubscription(
                f"{name}-{protocol}-{digest(endpoint, 8)}", topic=topic.arn, protocol=protocol, endpoint=endpoint,
                opts=pulumi.ResourceOptions(parent=self))
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": self.topic_arn})
