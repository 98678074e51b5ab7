"""IAM: the SageMaker execution role's trust, no wildcards, no broad managed policies."""

from __future__ import annotations

from typing import Any, Iterable

from policy.rules.core import (
    as_list,
    condition_keys,
    depends_on,
    GraphDict,
    IAM_ATTACHMENTS,
    IAM_IDENTITY_POLICIES,
    IAM_ROLE,
    inputs,
    policy_document,
    principals,
    Resource,
    Rule,
    statements,
)


SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
FORBIDDEN_MANAGED_POLICIES = ("AmazonSageMakerFullAccess", "AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
# Actions that AWS authorizes only on Resource "*" (no resource-level permissions).
WILDCARD_RESOURCE_ACTIONS = frozenset({
    "ecr:getauthorizationtoken", "cloudwatch:putmetricdata", "sts:getcalleridentity",
    "ec2:createnetworkinterface", "ec2:createnetworkinterfacepermission", "ec2:deletenetworkinterface",
    "ec2:deletenetworkinterfacepermission", "ec2:describenetworkinterfaces", "ec2:describevpcs",
    "ec2:describedhcpoptions", "ec2:describesubnets", "ec2:describesecuritygroups",
    "logs:describeloggroups", "s3:listallmybuckets",
})
SCOPED_ACTIONS = ("kms:decrypt", "iam:passrole")


def iam_trust(r: Resource, g: GraphDict) -> Iterable[str]:
    document = policy_document(inputs(r).get("assumeRolePolicy"))
    if document is None:
        return
    used_by_sagemaker = any(d["type"].startswith("aws:sagemaker/") for d in g.get("resources", [])
                            if r["urn"] in depends_on(d))
    trusted = [(s, principals(s)) for s in statements(document) if s.get("Effect", "Allow") == "Allow"]
    for statement, found in trusted:
        if any(v == "*" for _, v in found):
            yield "the trust policy admits any principal ('*'); name the one service that assumes the role"
    mentions = any(v == SAGEMAKER_SERVICE for _, found in trusted for _, v in found)
    if not (used_by_sagemaker or mentions):
        return
    for statement, found in trusted:
        others = sorted(f"{k}:{v}" for k, v in found if v != SAGEMAKER_SERVICE)
        if others:
            yield f"a SageMaker execution role is trusted only by {SAGEMAKER_SERVICE}; also trusted: {', '.join(others)}"
        elif "aws:sourceaccount" not in condition_keys(statement):
            yield "the trust of sagemaker.amazonaws.com has no aws:SourceAccount condition (confused deputy)"


def _identity_documents(r: Resource) -> list[tuple[str, dict[str, Any] | None]]:
    if r["type"] == IAM_ROLE:
        return [(f"inline policy {p.get('name', i)}", policy_document(p.get("policy")))
                for i, p in enumerate(as_list(inputs(r).get("inlinePolicies"))) if isinstance(p, dict)]
    return [("policy", policy_document(inputs(r).get("policy")))]


def _allow_statements(r: Resource) -> Iterable[tuple[str, dict[str, Any]]]:
    for where, document in _identity_documents(r):
        for i, statement in enumerate(statements(document)):
            if statement.get("Effect") == "Allow":
                yield f"{where} statement {statement.get('Sid', i)}", statement


def iam_no_wildcard_action(r: Resource, g: GraphDict) -> Iterable[str]:
    for where, statement in _allow_statements(r):
        if "NotAction" in statement:
            yield f"{where} allows NotAction (everything but a list); allow named actions"
        wild = sorted(str(a) for a in as_list(statement.get("Action")) if a == "*" or str(a).endswith(":*"))
        if wild:
            yield f"{where} allows wildcard action(s) {', '.join(wild)}; allow named actions"


def iam_no_wildcard_resource(r: Resource, g: GraphDict) -> Iterable[str]:
    for where, statement in _allow_statements(r):
        actions = [str(a).lower() for a in as_list(statement.get("Action"))]
        targets = [str(t) for t in as_list(statement.get("Resource"))]
        if "NotResource" in statement:
            yield f"{where} uses NotResource; name the resources"
        scoped = sorted(a for a in actions if a in SCOPED_ACTIONS)
        if scoped and any("*" in t for t in targets):
            yield f"{where}: {', '.join(scoped)} must name ARNs, not a wildcard"
        elif "*" in targets and not all(a in WILDCARD_RESOURCE_ACTIONS for a in actions):
            named = sorted(a for a in actions if a not in WILDCARD_RESOURCE_ACTIONS)
            yield f"{where} grants {', '.join(named)} on Resource '*'; name the resources"


def iam_no_full_access(r: Resource, g: GraphDict) -> Iterable[str]:
    arns = as_list(inputs(r).get("managedPolicyArns")) + as_list(inputs(r).get("policyArn"))
    for arn in sorted(str(a) for a in arns):
        if arn.rsplit("/", 1)[-1] in FORBIDDEN_MANAGED_POLICIES:
            yield f"attaches {arn.rsplit('/', 1)[-1]}; grant only what the role uses"


# ---------------------------------------------------------------------------------------------


RULES: tuple[Rule, ...] = (
    Rule("iam-sagemaker-trust", "Security Hub IAM.21; docs/security-checklist.md §IAM",
         "execution role trusted only by sagemaker.amazonaws.com with aws:SourceAccount", (IAM_ROLE,), iam_trust),
    Rule("iam-no-wildcard-action", "Security Hub IAM.1/IAM.21", "no * action", (IAM_ROLE, *IAM_IDENTITY_POLICIES),
         iam_no_wildcard_action),
    Rule("iam-no-wildcard-resource", "Security Hub IAM.21; docs/security-checklist.md §IAM",
         "no * resource where one can be named; kms:Decrypt and iam:PassRole scoped to ARNs",
         (IAM_ROLE, *IAM_IDENTITY_POLICIES), iam_no_wildcard_resource),
    Rule("iam-no-full-access-policy", "Security Hub IAM.1; docs/security-checklist.md §IAM", "never AmazonSageMakerFullAccess",
         (IAM_ROLE, *IAM_ATTACHMENTS), iam_no_full_access),
)
