"""ArtifactStore: private, encrypted, versioned, TLS-only; content-addressed releases; scoped grants."""

from __future__ import annotations

import pulumi_aws as aws
import pytest

from args_errors import reported_fields
from aws_constants import KEY_ARN, RELEASES
from components.aws.artifact_store import ArtifactStore, ArtifactStoreArgs, ModelArtifact
from components.problems import ArgsError
from lastmile.common import REPO_ROOT

COMPONENT = "lastmile:aws:ArtifactStore"
BUCKET = "aws:s3/bucket:Bucket"
GUARDS = {
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "store-encryption",
    "aws:s3/bucketVersioning:BucketVersioning": "store-versioning",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "store-public-access",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "store-ownership",
    "aws:s3/bucketPolicy:BucketPolicy": "store-policy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "store-lifecycle",
}
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"


def artifact(version: str) -> ModelArtifact:
    release = RELEASES[version]
    return ModelArtifact(model="iris-classifier", version=version, sha256=release.sha256, path=release.artifact_path)


def store_args(**overrides) -> ArtifactStoreArgs:
    return ArtifactStoreArgs(**{"kms_key_arn": KEY_ARN, "artifacts": (artifact("1.0.0"), artifact("1.1.0")), **overrides})


def program(**overrides):
    def run():
        store = ArtifactStore("store", store_args(**overrides))
        return {"bucket": store.bucket_name, "capture": store.capture_s3_uri,
                "urls": {f"{m}/{v}": url for (m, v), url in store.model_data_urls.items()}}
    return run


def test_children_are_parented_and_names_pinned(mock_run):
    graph = mock_run(program())
    component = graph.one(COMPONENT)
    children = {(n.type, n.name) for n in graph.nodes.values() if n.urn != component.urn}
    assert all(n.parent == component.urn for n in graph.nodes.values() if n.urn != component.urn)
    assert children == {(BUCKET, "store-bucket"), *GUARDS.items(),
                        (OBJECT, "store-iris-classifier-1.0.0"), (OBJECT, "store-iris-classifier-1.1.0")}


def test_bucket_is_auto_named(mock_run):
    bucket = mock_run(program()).one(BUCKET)
    assert "bucket" not in bucket.inputs and "bucketPrefix" not in bucket.inputs
    assert "acl" not in bucket.inputs and "policy" not in bucket.inputs


def test_encryption_versioning_public_access_ownership(mock_run):
    graph = mock_run(program())
    bucket_name = graph.outputs["bucket"]
    guards = {t: graph.one(t) for t in GUARDS}
    assert all(g.inputs["bucket"] == bucket_name for g in guards.values())
    [rule] = guards["aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"].inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}
    assert rule["bucketKeyEnabled"] is True
    assert guards["aws:s3/bucketVersioning:BucketVersioning"].inputs["versioningConfiguration"] == {"status": "Enabled"}
    block = guards["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"].inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert guards["aws:s3/bucketOwnershipControls:BucketOwnershipControls"].inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"}


def test_bucket_policy_only_denies_insecure_transport(mock_run, document):
    graph = mock_run(program())
    policy = graph.one("aws:s3/bucketPolicy:BucketPolicy")
    [statement] = document(policy)["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    bucket_arn = statement["Resource"][0]
    assert statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    # S3 evaluates a new bucket policy against the public-access block: the block comes first.
    assert graph.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").urn in policy.depends_on


def test_lifecycle_expires_old_versions_and_capture(mock_run):
    rules = {r["id"]: r for r in mock_run(program(noncurrent_version_expiration_days=30)).one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert rules["expire-noncurrent-versions"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert rules["expire-data-capture"]["filter"] == {"prefix": "data-capture/"}
    assert rules["expire-data-capture"]["expiration"] == {"days": 365}
    assert all(r["status"] == "Enabled" for r in rules.values())


def test_release_objects_are_content_addressed_and_encrypted(mock_run):
    graph = mock_run(program())
    guards = {graph.one(t).urn for t in GUARDS}
    for version in ("1.0.0", "1.1.0"):
        release = RELEASES[version]
        obj = graph.named(f"store-iris-classifier-{version}")
        assert obj.inputs["key"] == f"models/iris-classifier/{version}/{release.sha256}/model.tar.gz"
        assert obj.inputs["source"]["path"] == release.artifact_path.relative_to(REPO_ROOT).as_posix()  # repository-relative
        assert obj.inputs["checksumAlgorithm"] == "SHA256"
        assert (obj.inputs["serverSideEncryption"], obj.inputs["kmsKeyId"]) == ("aws:kms", KEY_ARN)
        assert obj.inputs["bucketKeyEnabled"] is True
        assert obj.inputs["metadata"]["sha256"] == release.sha256
        assert guards <= set(obj.depends_on)  # uploaded only once the bucket is guarded
        assert graph.outputs["urls"][f"iris-classifier/{version}"] == f"s3://{graph.outputs['bucket']}/{obj.inputs['key']}"
    assert graph.outputs["capture"] == f"s3://{graph.outputs['bucket']}/data-capture/"


@pytest.mark.parametrize("protect", [True, False])
def test_protect_state_covers_the_bucket_and_its_guards_not_releases(mock_run, protect):
    graph = mock_run(program(protect_state=protect))
    for node in [graph.one(BUCKET), *(graph.one(t) for t in GUARDS)]:
        assert (node.protect, node.retain_on_delete) == (protect, protect), node.name
    assert not any(n.protect for n in graph.of_type(OBJECT))


def grants(*calls):
    def run():
        role = aws.iam.Role("reader", assume_role_policy="{}")
        store = ArtifactStore("store", store_args())
        for call in calls:
            call(store, role)
        return {"bucket": store.bucket_name, "role": role.name}
    return run


def test_grant_read_is_scoped_to_prefixes(mock_run, document):
    graph = mock_run(grants(lambda s, r: s.grant_read(r, "models/iris-classifier/")))
    policy = graph.named("store-read-reader")
    assert policy.parent == graph.one(COMPONENT).urn and policy.inputs["role"] == graph.outputs["role"]
    read, listing = document(policy)["Statement"]
    bucket_arn = listing["Resource"]
    assert read["Action"] == ["s3:GetObject"]
    assert read["Resource"] == [f"{bucket_arn}/models/iris-classifier/*"]
    assert listing["Action"] == ["s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/iris-classifier/*"]}}


def test_grant_capture_write_is_put_only_under_data_capture(mock_run, document):
    graph = mock_run(grants(lambda s, r: s.grant_capture_write(r, "ep-1/")))
    [statement] = document(graph.named("store-capture-reader"))["Statement"]
    assert statement["Action"] == ["s3:PutObject"]
    assert statement["Resource"].endswith("/data-capture/ep-1/*")


@pytest.mark.parametrize("call", [
    lambda s, r: s.grant_read(r, "data-capture/"),
    lambda s, r: s.grant_read(r, "models/"),
    lambda s, r: s.grant_read(r, "models/x"),
    lambda s, r: s.grant_read(r, "models/*/"),
    lambda s, r: s.grant_read(r),
    lambda s, r: s.grant_capture_write(r, ""),
    lambda s, r: s.grant_capture_write(r, "../models/"),
])
def test_grants_refuse_wide_or_foreign_prefixes(mock_run, call):
    with pytest.raises(ValueError):
        mock_run(grants(call))


def test_one_grant_per_verb_and_grantee(mock_run):
    """A second identical grant is a duplicate URN: refused like the engine would (docs/design-notes.md §Offline verification)."""
    from lastmile.synthesis import DuplicateUrnError

    with pytest.raises(DuplicateUrnError):
        mock_run(grants(lambda s, r: s.grant_read(r, "models/a/"), lambda s, r: s.grant_read(r, "models/b/")))


def test_args_are_validated(tmp_path):
    with pytest.raises(ValueError, match="at least one release"):
        store_args(artifacts=())
    with pytest.raises(ValueError, match="twice"):
        store_args(artifacts=(artifact("1.0.0"), artifact("1.0.0")))
    with pytest.raises(ValueError, match="does not exist"):
        ModelArtifact(model="m", version="1.0.0", sha256="0" * 64, path=tmp_path / "missing.tar.gz")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ModelArtifact(model="m", version="1.0.0", sha256="ABC", path=RELEASES["1.0.0"].artifact_path)
    with pytest.raises(ValueError, match="S3 key"):
        ModelArtifact(model="M/x", version="1.0.0", sha256="0" * 64, path=RELEASES["1.0.0"].artifact_path)
    with pytest.raises(ValueError, match="at least 1 day"):
        store_args(capture_expiration_days=0)


def test_every_invalid_store_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        store_args(artifacts=(), noncurrent_version_expiration_days=0, abort_incomplete_upload_days=-1)
    assert reported_fields(caught.value) == ["artifacts", "noncurrent_version_expiration_days",
                                             "abort_incomplete_upload_days"]


def test_every_invalid_artifact_field_is_reported_at_once(tmp_path):
    with pytest.raises(ArgsError) as caught:
        ModelArtifact(model="M/x", version="V 1", sha256="ABC", path=tmp_path / "missing.tar.gz")
    assert reported_fields(caught.value) == ["model", "version", "sha256", "path"]
