"""IAM policy documents and the grant mechanism shared by components.

Documents are built as data and serialised with ``Output.json_dumps`` (never assembled as text).
A grant is an inline policy (``aws.iam.RolePolicy``) on the grantee's role, created as a child of the
component that owns the resource being shared: permissions are methods on the thing granting them.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import pulumi
import pulumi_aws as aws

from components.problems import Problem

POLICY_VERSION = "2012-10-17"

Statement = Mapping[str, Any]


class Grantee(Protocol):
    """A role that can receive a grant: an ``aws.iam.Role`` or an ``ExecutionRole``."""

    @property
    def pulumi_resource_name(self) -> str: ...

    @property
    def name(self) -> pulumi.Output[str]: ...


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """An IAM policy document; statements may hold Outputs (ARNs, names)."""
    if not statements:
        raise ValueError("a policy document needs at least one statement")
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": list(statements)})


def grant(owner: pulumi.Resource, verb: str, grantee: Grantee, statements: Sequence[Statement]) -> aws.iam.RolePolicy:
    """Attach ``statements`` to ``grantee``'s role as an inline policy owned by ``owner``.

    The policy's logical name is ``<owner>-<verb>-<grantee>``: one grant per verb and grantee (a
    second identical call is a duplicate URN, which synthesis refuses).
    """
    return aws.iam.RolePolicy(
        f"{owner.pulumi_resource_name}-{verb}-{grantee.pulumi_resource_name}",
        role=grantee.name,
        policy=policy_document(statements),
        opts=pulumi.ResourceOptions(parent=owner),
    )


def check_key_prefix(field: str, prefix: str, under: str = "") -> list[Problem]:
    """An S3 key prefix that a grant ends with ``*``: ``under`` plus one or more plain path segments
    (no wildcard, no '.', '..' or empty segment), ending with '/'. The one rule for every grant's prefix:
    anything looser could widen the grant to keys outside it."""
    segments = prefix[len(under):].split("/") if prefix.startswith(under) else []
    if len(segments) >= 2 and segments[-1] == "" and all(
            s not in ("", ".", "..") and "*" not in s and "?" not in s for s in segments[:-1]):
        return []
    where = f" under {under!r}" if under else ""
    return [Problem(field, prefix, f"must be a key prefix{where} of plain path segments ending with '/' "
                    "(no wildcards, no '.', '..' or empty segment)", f"pass e.g. {under}<name>/")]
