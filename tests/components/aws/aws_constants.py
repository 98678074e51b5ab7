"""Plain input values shared by the AWS component tests (the components take Inputs)."""

from __future__ import annotations

from infra.manifest import load_manifest

ACCOUNT = "123456789012"
REGION = "eu-west-1"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/serving-execution"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
RELEASES = {version: release for (model, version), release in load_manifest().items() if model == "iris-classifier"}

