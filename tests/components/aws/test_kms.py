"""EncryptionKey: rotation, deletion window, explicit key policy, grants, protection."""

from __future__ import annotations

import pulumi_aws as aws
import pytest

from components.aws.kms import EncryptionKey, EncryptionKeyArgs
from args_errors import reported_fields
from aws_constants import ACCOUNT, REGION
from components.problems import ArgsError

KEY = "aws:kms/key:Key"
LOG_GROUP = "/aws/sagemaker/Endpoints/ep-1"


def args(**overrides) -> EncryptionKeyArgs:
    return EncryptionKeyArgs(**{"account_id": ACCOUNT, "region": REGION, "description": "test key",
                                "log_group_names": (LOG_GROUP,), **overrides})


def test_key_rotates_with_a_30_day_window(mock_run):
    graph = mock_run(lambda: {"arn": EncryptionKey("enc", args()).arn})
    key = graph.one(KEY)
    assert key.name == "enc-key"
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.parent == graph.one("lastmile:aws:EncryptionKey").urn
    assert graph.outputs["arn"].startswith("arn:aws:kms:")


def test_key_policy_names_its_principals(mock_run, document):
    policy = document(mock_run(lambda: {"arn": EncryptionKey("enc", args()).arn}).one(KEY))
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"AccountAdministersKeyThroughIam", "CloudWatchLogsEncryptsNamedLogGroups"}
    root = statements["AccountAdministersKeyThroughIam"]
    assert root["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    logs = statements["CloudWatchLogsEncryptsNamedLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert logs["Condition"] == {"StringLike": {"kms:EncryptionContext:aws:logs:arn": [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}"]}}
    assert not any(a.startswith("kms:*") or a == "*" for a in logs["Action"])
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] != "*" and "*" not in statement["Principal"].values()
        assert statement["Action"] != "*"


def test_no_log_groups_means_no_service_principal(mock_run, document):
    policy = document(mock_run(lambda: {"arn": EncryptionKey("enc", args(log_group_names=())).arn}).one(KEY))
    assert [s["Sid"] for s in policy["Statement"]] == ["AccountAdministersKeyThroughIam"]


@pytest.mark.parametrize("protect", [True, False])
def test_protect_state_protects_and_retains(mock_run, protect):
    key = mock_run(lambda: {"arn": EncryptionKey("enc", args(protect_state=protect)).arn}).one(KEY)
    assert key.protect is protect and key.retain_on_delete is protect


def test_grants_are_least_privilege_on_this_key(mock_run, document):
    def program():
        role = aws.iam.Role("reader", assume_role_policy="{}")
        key = EncryptionKey("enc", args())
        key.grant_decrypt(role)
        key.grant_encrypt(role)
        return {"arn": key.arn, "role": role.name}

    graph = mock_run(program)
    component = graph.one("lastmile:aws:EncryptionKey")
    decrypt, encrypt = graph.named("enc-decrypt-reader"), graph.named("enc-encrypt-reader")
    for policy, action in ((decrypt, "kms:Decrypt"), (encrypt, "kms:GenerateDataKey")):
        assert policy.type == "aws:iam/rolePolicy:RolePolicy" and policy.parent == component.urn
        assert policy.inputs["role"] == graph.outputs["role"]
        [statement] = document(policy)["Statement"]
        assert statement["Action"] == [action]
        assert statement["Resource"] == graph.outputs["arn"]


@pytest.mark.parametrize("overrides, message", [
    ({"account_id": "12345"}, "account_id = '12345': an AWS account id is 12 digits"),
    ({"description": " "}, "description is empty"),
    ({"log_group_names": ("*",)}, "not a log group name"),
    ({"log_group_names": ("/a b",)}, "not a log group name"),
])
def test_args_are_validated(overrides, message):
    with pytest.raises(ValueError, match=message):
        args(**overrides)


def test_every_invalid_key_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        args(account_id="12345", description=" ", log_group_names=("*", "/aws/vpc/*", "/a b"))
    assert reported_fields(caught.value) == ["account_id", "description", "log_group_names.0", "log_group_names.2"]
