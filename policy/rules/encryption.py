"""Encryption at rest and in transit: KMS keys, S3 buckets, CloudWatch log groups."""

from __future__ import annotations

from typing import Any, Iterable

from policy.rules.core import (
    as_list,
    BUCKET_OWNERSHIP,
    BUCKET_PAB,
    BUCKET_POLICY,
    BUCKET_SSE,
    BUCKET_VERSIONING,
    BUCKETS,
    depends_on,
    environment_of,
    get,
    GraphDict,
    inputs,
    KMS_KEY,
    known,
    LOG_GROUP,
    policy_document,
    principals,
    Resource,
    resources,
    Rule,
    SECRET_MASK,
    statements,
    UNKNOWN,
)


def kms_rotation(r: Resource, g: GraphDict) -> Iterable[str]:
    spec = inputs(r).get("customerMasterKeySpec") or inputs(r).get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and inputs(r).get("enableKeyRotation") is not True:
        yield "automatic key rotation is off; set enable_key_rotation=True"


def kms_deletion_window(r: Resource, g: GraphDict) -> Iterable[str]:
    days = inputs(r).get("deletionWindowInDays")
    if days is not None and days < 30:
        yield f"deletion window is {days} days; keep the 30-day window (omit deletion_window_in_days or set 30)"


def kms_key_policy(r: Resource, g: GraphDict) -> Iterable[str]:
    raw = inputs(r).get("policy")
    document = policy_document(raw)
    if document is None:
        if raw in (UNKNOWN, SECRET_MASK):
            return
        yield "no explicit key policy: AWS's default grants the whole account; pass a key policy naming its principals"
        return
    for i, statement in enumerate(statements(document)):
        if statement.get("Effect") == "Allow" and any(v == "*" for _, v in principals(statement)):
            yield f"key policy statement {statement.get('Sid', i)!s} allows the '*' principal; name the principals"


def _bucket_related(bucket: Resource, graph: GraphDict, types: tuple[str, ...]) -> list[Resource]:
    """Bucket-configuring resources: those depending on the bucket or naming it literally."""
    name = inputs(bucket).get("bucket")
    return [r for r in resources(graph, types)
            if bucket["urn"] in depends_on(r) or (known(name) and inputs(r).get("bucket") == name)]


def _sse_rules(bucket: Resource, graph: GraphDict) -> list[dict[str, Any]]:
    rules = []
    inline = inputs(bucket).get("serverSideEncryptionConfiguration")
    for config in [inline, *as_list(inputs(bucket).get("serverSideEncryptionConfigurations"))]:
        if isinstance(config, dict):
            rules += as_list(config.get("rule")) + as_list(config.get("rules"))
    for config in _bucket_related(bucket, graph, BUCKET_SSE):
        rules += as_list(inputs(config).get("rules"))
    return [rule for rule in rules if isinstance(rule, dict)]


def s3_sse_kms(r: Resource, g: GraphDict) -> Iterable[str]:
    rules = _sse_rules(r, g)
    if not rules:
        yield "no server-side encryption configuration; encrypt with SSE-KMS (a customer-managed key) and a bucket key"
        return
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") not in ("aws:kms", "aws:kms:dsse"):
            yield f"default encryption is {default.get('sseAlgorithm')!r}, not SSE-KMS; set sse_algorithm='aws:kms'"
        elif not default.get("kmsMasterKeyId"):
            yield "SSE-KMS without kms_master_key_id uses the AWS-managed key; pass the stack's customer-managed key"
        if rule.get("bucketKeyEnabled") is not True:
            yield "bucket key is off; set bucket_key_enabled=True (fewer KMS calls, same protection)"


def s3_public_access_block(r: Resource, g: GraphDict) -> Iterable[str]:
    blocks = _bucket_related(r, g, BUCKET_PAB)
    if not blocks:
        yield "no public-access block; add one with all four settings true"
        return
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for block in blocks:
        off = [f for f in flags if inputs(block).get(f) is not True]
        if off:
            yield f"public-access block {block['name']} leaves {', '.join(off)} off; set all four to true"


def s3_ownership_enforced(r: Resource, g: GraphDict) -> Iterable[str]:
    controls = _bucket_related(r, g, BUCKET_OWNERSHIP)
    owners = [get(inputs(c), "rule.objectOwnership") for c in controls]
    if "BucketOwnerEnforced" not in owners:
        yield "ACLs are not disabled; add ownership controls with object_ownership='BucketOwnerEnforced'"


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    for body in (statement.get("Condition") or {}).values():
        if isinstance(body, dict):
            for key, value in body.items():
                if key.lower() == "aws:securetransport" and [str(v).lower() for v in as_list(value)] == ["false"]:
                    return True
    return False


def s3_tls_only(r: Resource, g: GraphDict) -> Iterable[str]:
    documents = [policy_document(inputs(p).get("policy")) for p in _bucket_related(r, g, BUCKET_POLICY)]
    documents.append(policy_document(inputs(r).get("policy")))
    if not any(_denies_insecure_transport(s) for d in documents for s in statements(d)):
        yield "no bucket policy denies requests without TLS; add a Deny on aws:SecureTransport = false"


def s3_versioning(r: Resource, g: GraphDict) -> Iterable[str]:
    statuses = [get(inputs(v), "versioningConfiguration.status") for v in _bucket_related(r, g, BUCKET_VERSIONING)]
    inline = [get(inputs(r), "versioning.enabled")] + [v.get("enabled") for v in as_list(inputs(r).get("versionings"))
                                                         if isinstance(v, dict)]
    if "Enabled" not in statuses and True not in inline:
        yield "versioning is off; add bucket versioning with status 'Enabled'"


def log_group_kms(r: Resource, g: GraphDict) -> Iterable[str]:
    if not inputs(r).get("kmsKeyId"):
        yield "log group is not KMS-encrypted; pass kms_key_id (the stack's key, whose policy admits CloudWatch Logs)"


def log_group_retention(r: Resource, g: GraphDict) -> Iterable[str]:
    days = inputs(r).get("retentionInDays")
    if not days:
        yield "no retention: logs are kept (and paid for) forever; set retention_in_days"
    elif environment_of(g) == "prod" and days < 365:
        yield f"prod keeps logs at least 365 days (CKV_AWS_338); retention is {days}"


# ---------------------------------------------------------------------------------------------


RULES: tuple[Rule, ...] = (
    Rule("kms-key-rotation", "Security Hub KMS.4; checkov CKV_AWS_7", "KMS keys rotate", (KMS_KEY,), kms_rotation),
    Rule("kms-key-deletion-window", "Security Hub KMS.3", "30-day deletion window", (KMS_KEY,), kms_deletion_window),
    Rule("kms-key-policy-no-wildcard-principal", "Security Hub KMS.5; checkov CKV_AWS_33",
         "explicit key policy without a * principal", (KMS_KEY,), kms_key_policy),
    Rule("s3-sse-kms-bucket-key", "Security Hub S3.17", "buckets SSE-KMS with bucket key", BUCKETS, s3_sse_kms),
    Rule("s3-public-access-block", "Security Hub S3.1/S3.8", "all four public-access blocks", BUCKETS,
         s3_public_access_block),
    Rule("s3-ownership-enforced", "Security Hub S3.12", "ACLs off (BucketOwnerEnforced)", BUCKETS, s3_ownership_enforced),
    Rule("s3-tls-only", "Security Hub S3.5", "TLS-only bucket policy", BUCKETS, s3_tls_only),
    Rule("s3-versioning", "Security Hub S3.14", "versioning", BUCKETS, s3_versioning),
    Rule("log-group-kms", "checkov CKV_AWS_158", "log groups KMS-encrypted", (LOG_GROUP,), log_group_kms),
    Rule("log-group-retention", "checkov CKV_AWS_338", "log groups with retention (prod >= 365 days)", (LOG_GROUP,),
         log_group_retention),
)
