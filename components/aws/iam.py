"""IAM policy documents and the grant mechanism shared by components.

Documents are built as data and serialised with ``Output.json_dumps`` (never assembled as text).
A grant is an inline policy (``aws.iam.RolePolicy``) on the grantee's role, created as a child of the
component that owns the resource being shared: permissions are methods on the thing granting them.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import pulumi
import pulumi_aws as aws

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
