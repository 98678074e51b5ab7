"""Content-hashed physical names and ARN helpers."""

from __future__ import annotations

import pytest

from components.aws.naming import (
    SAGEMAKER_NAME_MAX_LENGTH,
    account_root_arn,
    content_name,
    digest,
    is_sagemaker_name,
    log_group_arn,
    partition,
)


def test_digest_is_stable_and_ignores_key_order():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_content_name_changes_with_content_only():
    first = content_name("ep", {"model": "m-1.0.0"})
    assert first == content_name("ep", {"model": "m-1.0.0"})
    assert first != content_name("ep", {"model": "m-1.1.0"})
    assert first.startswith("ep-")


def test_content_name_fits_sagemaker_limits_whatever_the_prefix():
    name = content_name("x" * 100 + "_weird name", {"k": "v"})
    assert len(name) <= SAGEMAKER_NAME_MAX_LENGTH
    assert is_sagemaker_name(name)
    assert is_sagemaker_name(content_name("lastmile-aws-prod-0123456789ab-green", {}))


def test_content_name_refuses_a_length_with_no_room():
    with pytest.raises(ValueError, match="no room"):
        content_name("p", {}, max_length=12)


@pytest.mark.parametrize("name, ok", [("lastmile-aws-dev-1", True), ("-leading", False), ("under_score", False),
                                      ("a" * 63, True), ("a" * 64, False)])
def test_sagemaker_name_pattern(name, ok):
    assert is_sagemaker_name(name) is ok


def test_partitions_and_arns():
    assert partition("eu-west-1") == "aws"
    assert partition("cn-north-1") == "aws-cn"
    assert partition("us-gov-west-1") == "aws-us-gov"
    assert account_root_arn("123456789012", "cn-north-1") == "arn:aws-cn:iam::123456789012:root"
    assert log_group_arn("123456789012", "eu-west-1", "/aws/sagemaker/Endpoints/x") == (
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/x")
