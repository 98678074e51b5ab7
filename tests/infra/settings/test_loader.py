"""Stack config parsing: pure validation, no Pulumi engine or mocks needed."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from infra import manifest as manifest_module
from infra.settings.common import Environment, Slot, Topology
from infra.settings.loader import ConfigError, parse_settings
from infra.settings.sections import RolloutStrategy

PINNED = manifest_module.load_manifest()[("iris-classifier", "1.0.0")]
NEXT = manifest_module.load_manifest()[("iris-classifier", "1.1.0")]
IMAGE = PINNED.sagemaker_images["eu-west-1"]


def release(pinned=PINNED) -> dict:
    return {"model": pinned.model, "version": pinned.version, "sha256": pinned.sha256, "image": IMAGE}


def valid_prod() -> dict:
    return {
        "topology": "aws",
        "environment": "prod",
        "serving": {"active_slot": "blue", "slots": {"blue": release()}},
        "rollout": {"strategy": "canary", "step_percent": 10, "wait_seconds": 600, "bake_seconds": 900},
        "capacity": {"min_count": 2, "max_count": 6},
        "aws": {
            "account_id": "123456789012",
            "region": "eu-west-1",
            "vpc": {
                "subnets": [
                    {"id": "subnet-0a1b2c3d", "availability_zone": "eu-west-1a"},
                    {"id": "subnet-0a1b2c3e", "availability_zone": "eu-west-1b"},
                ],
                "security_group_ids": ["sg-0123abcd"],
            },
        },
    }


def problems_of(raw: dict) -> list:
    with pytest.raises(ConfigError) as caught:
        parse_settings("aws-prod", raw)
    return caught.value.problems


def only_problem(raw: dict):
    found = problems_of(raw)
    assert len(found) == 1, [p.render() for p in found]
    return found[0]


def test_valid_prod_parses_with_computed_defaults():
    settings = parse_settings("aws-prod", valid_prod())
    assert settings.topology is Topology.AWS
    assert settings.environment is Environment.PROD
    assert settings.serving.active.version == "1.0.0"
    assert settings.rollout.strategy is RolloutStrategy.CANARY
    assert settings.capacity.initial_count == 2  # defaults to min_count
    assert settings.alarms.error_5xx_count == 5
    assert settings.protect_state is True


def test_settings_are_frozen():
    settings = parse_settings("aws-prod", valid_prod())
    with pytest.raises(Exception):
        settings.environment = Environment.DEV  # type: ignore[misc]


def test_dev_defaults_allow_one_instance():
    raw = valid_prod()
    raw["environment"] = "dev"
    raw["rollout"] = {"strategy": "all_at_once"}
    del raw["capacity"]
    del raw["aws"]["vpc"]
    settings = parse_settings("aws-dev", raw)
    assert settings.capacity.min_count == 1 and settings.capacity.initial_count == 1
    assert settings.protect_state is False


@pytest.mark.parametrize(
    "mutate, field, words",
    [
        (lambda r: r["rollout"].update(step_percent=60), "rollout.step_percent", "at most 50"),
        (lambda r: r["rollout"].update(wait_seconds=4000), "rollout.wait_seconds", "less than or equal to 3600"),
        (lambda r: r["capacity"].update(min_count=1), "capacity.min_count", "at least 2"),
        (lambda r: r["serving"]["slots"]["blue"].update(sha256="0" * 64), "serving.slots.blue.sha256", "differs"),
        (lambda r: r.update(replicas=3), "replicas", "unknown key"),
        (lambda r: r["aws"].update(regoin="eu-west-1"), "aws.regoin", "unknown key"),
        (lambda r: r.pop("serving"), "serving", "required"),
        (lambda r: r["serving"].update(active_slot="green"), "serving.active_slot", "has no release"),
        (lambda r: r["rollout"].update(strategy="all_at_once", step_percent=None), "rollout.strategy", "canary or linear"),
        (lambda r: r["rollout"].update(strategy="blue_green"), "rollout.strategy", "'canary'"),
        (lambda r: r["aws"].pop("vpc"), "aws.vpc", "private subnets"),
        (lambda r: r["aws"]["vpc"]["subnets"].pop(), "aws.vpc.subnets", "availability zone"),
        (lambda r: r["serving"]["slots"]["blue"].update(version="9.9.9"), "serving.slots.blue.version", "no such release"),
        (lambda r: r["serving"]["slots"]["blue"].update(image="my/own:latest"), "serving.slots.blue.image", "manifest"),
    ],
)
def test_each_bad_value_names_field_value_and_fix(mutate, field, words):
    raw = valid_prod()
    mutate(raw)
    found = problems_of(raw)
    assert found[0].field == field, [p.render() for p in found]
    # Beside the problem itself, only SageMaker's own consequence of the same value may be listed
    # (a one-instance canary fleet cannot be split).
    assert {p.field for p in found[1:]} <= {"capacity.initial_count"}, [p.render() for p in found]
    problem = found[0]
    text = problem.render("lastmile:")  # as ConfigError shows it
    assert words in text
    assert text.startswith(f"lastmile:{field} = ")
    assert "fix: " in text


def test_all_problems_are_reported_at_once():
    raw = valid_prod()
    raw["rollout"]["step_percent"] = 60
    raw["capacity"]["min_count"] = 1
    raw["extra"] = True
    raw["aws"]["account_id"] = "12"
    fields = {p.field for p in problems_of(raw)}
    assert {"rollout.step_percent", "capacity.min_count", "extra", "aws.account_id"} <= fields


def test_an_invalid_field_does_not_hide_a_rule_violation_beside_it():
    raw = valid_prod()
    raw["rollout"].update(wait_seconds=4000, step_percent=60)  # a type/range error and a rule error
    raw["aws"]["vpc"]["subnets"][0]["id"] = "not-a-subnet"  # invalid, but no duplicate 'vpc missing' report
    fields = sorted(p.field for p in problems_of(raw))
    assert fields == ["aws.vpc.subnets.0.id", "rollout.step_percent", "rollout.wait_seconds"]


def test_error_message_says_nothing_was_deployed():
    raw = valid_prod()
    raw["rollout"]["step_percent"] = 60
    with pytest.raises(ConfigError, match="nothing was deployed") as caught:
        parse_settings("aws-prod", raw)
    assert "lastmile:rollout.step_percent = 60" in str(caught.value)


def test_artifact_file_tampering_is_refused(tmp_path: Path, monkeypatch):
    """The stack and manifest agree, but the file on disk does not: refuse to deploy it."""
    root = tmp_path / "model_artifacts"
    shutil.copytree(manifest_module.ARTIFACTS_DIR, root)
    artifact = root / PINNED.artifact_path.relative_to(manifest_module.ARTIFACTS_DIR)
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))
    tampered = manifest_module.load_manifest(root)
    monkeypatch.setattr("infra.settings.rules.load_manifest", lambda: tampered)
    problem = only_problem(valid_prod())
    assert problem.field == "serving.slots.blue.sha256"
    assert "refusing to deploy" in problem.message


def test_linear_rollout_must_fit_its_timeout():
    raw = valid_prod()
    raw["rollout"] = {"strategy": "linear", "step_percent": 10, "wait_seconds": 3600, "bake_seconds": 3600}
    problem = only_problem(raw)
    assert problem.field == "rollout.max_execution_seconds"
    assert "36000 s" in problem.message  # 9 waits of 3600 s + 3600 s bake
    assert "28800" in problem.fix and "raise" not in problem.fix  # no timeout fits: shorten instead
    raw["rollout"].update(wait_seconds=600, bake_seconds=600)  # 9 * 600 + 600 = 6000 > default 3600
    problem = only_problem(raw)
    assert "raise max_execution_seconds to >= 6000" in problem.fix


def test_shadow_slot_rules():
    raw = valid_prod()
    raw["serving"]["slots"]["green"] = release(NEXT)
    raw["serving"]["shadow_slot"] = "blue"
    assert only_problem(raw).field == "serving.shadow_slot"
    raw["serving"]["shadow_slot"] = "green"
    assert parse_settings("aws-prod", raw).serving.shadow_slot is Slot.GREEN


def test_input_is_not_mutated():
    raw = valid_prod()
    before = copy.deepcopy(raw)
    parse_settings("aws-prod", raw)
    assert raw == before


def test_instance_types_are_botocores_enum_for_production_variants():
    """The settings read the enum from botocore's data file directly; botocore's own model must agree."""
    import botocore.session

    from infra.settings.aws import sagemaker_instance_types

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert sagemaker_instance_types() == tuple(model.shape_for("ProductionVariantInstanceType").enum)
    assert "ml.m5.large" in sagemaker_instance_types()


def test_local_is_declared_and_a_team_stack_needs_its_kms_key() -> None:
    from infra.settings.loader import secrets_provider_problems

    assert secrets_provider_problems("onprem-local", "dev", "passphrase") == []
    assert secrets_provider_problems("aws-prod", "prod", "awskms://alias/lastmile-prod?region=eu-central-1") == []
    assert secrets_provider_problems("aws-prod", "prod", None) == []  # not judged: a test of the sections alone
    [lost] = secrets_provider_problems("aws-prod", "prod", "passphrase")
    assert (lost.field, lost.value) == ("secretsprovider", "passphrase") and "awskms://" in lost.fix
    [other] = secrets_provider_problems("onprem-dev", "dev", "gcpkms://projects/p/keys/k")
    assert other.field == "secretsprovider"
    [prod_local] = secrets_provider_problems("onprem-local", "prod", "passphrase")
    assert prod_local.field == "environment" and "only ever dev" in prod_local.message
