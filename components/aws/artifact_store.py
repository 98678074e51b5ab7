"""ArtifactStore: the private bucket that holds model releases and endpoint data capture.

Safe defaults (Security Hub S3.1/5/8/12/14/17):
- auto-named bucket; SSE-KMS with the given key and an S3 bucket key; versioning on;
- all four public-access blocks; object ownership ``BucketOwnerEnforced`` (ACLs off);
- a bucket policy that denies every request not made over TLS;
- lifecycle: noncurrent versions expire, incomplete multipart uploads are aborted, data capture
  expires;
- one object per release at ``models/<model>/<version>/<sha256>/model.tar.gz``: content-addressed,
  so a changed artifact is a new key (and a new model URL downstream), never an overwrite, and S3
  verifies the upload with a SHA-256 checksum;
- ``data-capture/`` is the only prefix anyone but this program writes to (``grant_capture_write``).

``protect_state`` protects the bucket and its guard resources (encryption, versioning, public-access
block, ownership, policy, lifecycle) and retains them on delete, so a retained bucket keeps its guards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.problems import MISSING, Problem, check_range, raise_problems

MODELS_PREFIX = "models/"
CAPTURE_PREFIX = "data-capture/"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")


@dataclass(frozen=True, kw_only=True)
class ModelArtifact:
    """One release's artifact file, pinned by its sha256."""

    model: str
    version: str
    sha256: str
    path: Path

    def __post_init__(self) -> None:
        problems = [Problem(name, value, "not usable in an S3 key (lowercase letters, digits, . and -; at most 63)",
                            "rename it, e.g. iris-classifier or 1.2.0")
                    for name, value in (("model", self.model), ("version", self.version)) if not _SEGMENT.match(value)]
        if not _SHA256.match(self.sha256):
            problems.append(Problem("sha256", self.sha256, f"sha256 of {self.model} {self.version} is not 64 "
                                    "lowercase hex digits", "pass the artifact's sha256sum in lowercase hex"))
        if not self.path.is_file():
            problems.append(Problem("path", str(self.path), f"artifact of {self.model} {self.version} does not exist",
                                    "build the artifact or fix the path"))
        raise_problems("ModelArtifact", problems)

    @property
    def key(self) -> str:
        return f"{MODELS_PREFIX}{self.model}/{self.version}/{self.sha256}/model.tar.gz"

    @property
    def model_prefix(self) -> str:
        """Every release of this model: what a role serving it (and rolling back) must read."""
        return f"{MODELS_PREFIX}{self.model}/"


@dataclass(frozen=True, kw_only=True)
class ArtifactStoreArgs:
    kms_key_arn: pulumi.Input[str]
    """The key every object is encrypted with (SSE-KMS, bucket key on)."""
    artifacts: tuple[ModelArtifact, ...]
    """The releases to upload (at least one)."""
    noncurrent_version_expiration_days: int = 90
    """Days a replaced or deleted object version is kept. Omitted: 90."""
    capture_expiration_days: int = 365
    """Days captured requests and responses are kept under data-capture/. Omitted: 365."""
    abort_incomplete_upload_days: int = 7
    """Days after which an unfinished multipart upload is aborted. Omitted: 7."""
    protect_state: bool = False
    """Protect the bucket and its guards and retain them on delete. Omitted: deletable."""

    def __post_init__(self) -> None:
        problems = self._artifact_problems()
        for name in ("noncurrent_version_expiration_days", "capture_expiration_days", "abort_incomplete_upload_days"):
            problems += check_range(name, getattr(self, name), 1, unit=" day(s)")
        raise_problems("ArtifactStoreArgs", problems)

    def _artifact_problems(self) -> list[Problem]:
        if not self.artifacts:
            return [Problem("artifacts", self.artifacts, "an artifact store needs at least one release to serve",
                            "pass at least one ModelArtifact")]
        keys = [(a.model, a.version) for a in self.artifacts]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            return [Problem("artifacts", duplicates, "lists a release twice", "remove the duplicate")]
        return []


class ArtifactStore(pulumi.ComponentResource):
    """A private, encrypted, versioned bucket with one content-addressed object per release."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    capture_s3_uri: pulumi.Output[str]
    model_data_urls: dict[tuple[str, str], pulumi.Output[str]]

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:aws:ArtifactStore", name, None, opts)
        self._protect_state = args.protect_state
        bucket = aws.s3.Bucket(f"{name}-bucket", opts=self._stateful())
        guards = self._guard(name, bucket, args)
        self.model_data_urls = {}
        for artifact in args.artifacts:
            obj = aws.s3.BucketObjectv2(
                f"{name}-{artifact.model}-{artifact.version}",
                bucket=bucket.id,
                key=artifact.key,
                source=pulumi.FileAsset(str(artifact.path)),
                checksum_algorithm="SHA256",
                content_type="application/gzip",
                server_side_encryption="aws:kms",
                kms_key_id=args.kms_key_arn,
                bucket_key_enabled=True,
                metadata={"sha256": artifact.sha256, "model": artifact.model, "version": artifact.version},
                opts=pulumi.ResourceOptions(parent=self, depends_on=guards),
            )
            self.model_data_urls[(artifact.model, artifact.version)] = pulumi.Output.concat(
                "s3://", obj.bucket, "/", obj.key)
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.capture_s3_uri = pulumi.Output.concat("s3://", bucket.bucket, "/", CAPTURE_PREFIX)
        self.register_outputs({
            "bucket_name": self.bucket_name,
            "bucket_arn": self.bucket_arn,
            "capture_s3_uri": self.capture_s3_uri,
            "model_data_urls": {f"{m}/{v}": url for (m, v), url in self.model_data_urls.items()},
        })

    def _stateful(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        """Options of the bucket and its guards: protected and retained when ``protect_state``."""
        return pulumi.ResourceOptions(parent=self, protect=self._protect_state, retain_on_delete=self._protect_state,
                                      depends_on=depends_on)

    def _guard(self, name: str, bucket: aws.s3.Bucket, args: ArtifactStoreArgs) -> list[pulumi.Resource]:
        """Encryption, versioning, public-access block, ownership, TLS-only policy, lifecycle."""
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=self._stateful())
        return [
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption", bucket=bucket.id,
                rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                    "kms_master_key_id": args.kms_key_arn},
                        "bucket_key_enabled": True}],
                opts=self._stateful()),
            aws.s3.BucketVersioning(
                f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"},
                opts=self._stateful()),
            public_access,
            aws.s3.BucketOwnershipControls(
                f"{name}-ownership", bucket=bucket.id,
                rule={"object_ownership": "BucketOwnerEnforced"}, opts=self._stateful()),
            # After the public-access block: S3 checks a new policy against it.
            aws.s3.BucketPolicy(
                f"{name}-policy", bucket=bucket.id, policy=iam.policy_document([tls_only_statement(bucket.arn)]),
                opts=self._stateful(depends_on=[public_access])),
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle", bucket=bucket.id, rules=_lifecycle_rules(args), opts=self._stateful()),
        ]

    def grant_read(self, grantee: iam.Grantee, *prefixes: str) -> aws.iam.RolePolicy:
        """Let ``grantee`` read objects under the given prefixes (and list only those prefixes).

        Each prefix lies under ``models/`` and ends with ``/``, e.g. ``models/iris-classifier/``
        (``ModelArtifact.model_prefix``). Decrypting needs the key too (``EncryptionKey.grant_decrypt``).
        """
        problems = [p for i, prefix in enumerate(prefixes)
                    for p in iam.check_key_prefix(f"prefixes.{i}", prefix, MODELS_PREFIX)]
        if not prefixes:
            problems.append(Problem("prefixes", MISSING, "grant_read needs at least one prefix",
                                    "pass e.g. ModelArtifact.model_prefix"))
        raise_problems("ArtifactStore.grant_read", problems)
        ordered = sorted(set(prefixes))
        return iam.grant(self, "read", grantee, [
            {"Sid": "ReadPrefixes", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [pulumi.Output.concat(self.bucket_arn, "/", prefix, "*") for prefix in ordered]},
            {"Sid": "ListPrefixes", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": self.bucket_arn,
             "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in ordered]}}},
        ])

    def grant_capture_write(self, grantee: iam.Grantee, prefix: str) -> aws.iam.RolePolicy:
        """Let ``grantee`` write (only write) objects under ``data-capture/<prefix>``.

        ``prefix`` is relative to ``data-capture/`` and ends with ``/``, e.g. the endpoint name.
        Encrypting needs the key too (``EncryptionKey.grant_encrypt``).
        """
        raise_problems("ArtifactStore.grant_capture_write", iam.check_key_prefix("prefix", prefix))
        return iam.grant(self, "capture", grantee, [
            {"Sid": "WriteCapturePrefix", "Effect": "Allow", "Action": ["s3:PutObject"],
             "Resource": pulumi.Output.concat(self.bucket_arn, "/", CAPTURE_PREFIX, prefix, "*")},
        ])

    def capture_uri(self, prefix: str) -> pulumi.Output[str]:
        """``s3://<bucket>/data-capture/<prefix>``: where an endpoint granted ``prefix`` captures to."""
        raise_problems("ArtifactStore.capture_uri", iam.check_key_prefix("prefix", prefix))
        return pulumi.Output.concat(self.capture_s3_uri, prefix)


def tls_only_statement(bucket_arn: pulumi.Input[str]) -> dict:
    """Deny every request that is not made over TLS. A Deny for ``*`` grants nothing."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _lifecycle_rules(args: ArtifactStoreArgs) -> list[dict]:
    return [
        {"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {"prefix": ""},
         "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_expiration_days},
         "abort_incomplete_multipart_upload": {"days_after_initiation": args.abort_incomplete_upload_days}},
        {"id": "expire-data-capture", "status": "Enabled", "filter": {"prefix": CAPTURE_PREFIX},
         "expiration": {"days": args.capture_expiration_days}},
    ]
