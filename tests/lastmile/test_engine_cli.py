"""The engine verbs' checks that run before any engine: unknown stack, bad config, team backend, plugins.

(The engine itself is exercised in tests/engine.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lastmile import engine
from lastmile.exitcodes import ExitCode
from lastmile.synthesis import STACKS_DIR


def test_unknown_stack_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(engine.Refused, match=r"(?s)unknown stack 'aws-nope'.*allowed: .*onprem-local"):
        engine.validate_stack("aws-nope")


def test_team_stack_without_its_secrets_is_refused_naming_each_secret() -> None:
    with pytest.raises(engine.Refused) as refused:
        engine.validate_stack("onprem-prod")
    text = str(refused.value)
    for key in ("kubeconfig", "model_store_credentials"):  # TLS ends at the cluster's Gateway: no certificate
        assert f"lastmile:{key} = (missing)" in text
        assert f"pulumi config set --secret lastmile:{key}" in text
    assert "tls_certificate" not in text


def test_local_stack_validates(tmp_path: Path) -> None:
    assert engine.validate_stack("onprem-local").stack == "onprem-local"


def test_shared_stack_needs_the_team_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    with pytest.raises(engine.Refused, match="PULUMI_BACKEND_URL is not set"):
        engine.engine_environment("onprem-prod", engine.EnginePaths(root=tmp_path))
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://state?region=eu-central-1")
    env = engine.engine_environment("onprem-prod", engine.EnginePaths(root=tmp_path))
    assert "PULUMI_BACKEND_URL" not in env and "PULUMI_CONFIG_PASSPHRASE" not in env  # the team's, from the environment


def test_local_stack_uses_the_file_backend_in_the_repo_and_the_public_passphrase(monkeypatch, tmp_path: Path) -> None:
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "LASTMILE_PULUMI_STATE_DIR", "LASTMILE_PULUMI_HOME"):
        monkeypatch.delenv(name, raising=False)
    env = engine.engine_environment("onprem-local", engine.EnginePaths(root=tmp_path))
    assert env["PULUMI_BACKEND_URL"] == (tmp_path / ".pulumi-state").as_uri()
    assert env["PULUMI_CONFIG_PASSPHRASE"] == engine.LOCAL_PASSPHRASE
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "mine")
    assert "PULUMI_CONFIG_PASSPHRASE" not in engine.engine_environment("onprem-local", engine.EnginePaths(root=tmp_path))


def test_aws_stacks_say_the_aws_plugin_cannot_be_had_here(tmp_path: Path) -> None:
    settings = engine.validate_stack("aws-dev")
    with pytest.raises(engine.EngineUnavailable, match="pulumi-aws/provider/v7"):
        engine.check_plugins(settings, tmp_path)
    (tmp_path / "plugins" / f"resource-aws-v{engine.AWS_PLUGIN_VERSION}").mkdir(parents=True)
    engine.check_plugins(settings, tmp_path)  # installed (a workstation): no complaint
    engine.check_plugins(engine.validate_stack("onprem-local"), tmp_path / "empty")  # onprem needs no AWS plugin


def test_preview_counts_every_operation_but_same() -> None:
    assert engine.changes_of({"same": 30}) == 0
    assert engine.changes_of({"same": 28, "update": 2, "create": 1}) == 3


def test_every_team_stack_declares_the_kms_secrets_provider_and_no_placeholder() -> None:
    for path in sorted(STACKS_DIR.glob("Pulumi.*.yaml")):
        document = yaml.safe_load(path.read_text())
        secure = [v["secure"] for v in (document.get("config") or {}).values() if isinstance(v, dict) and "secure" in v]
        assert all(value.startswith("v1:") and "PLACEHOLDER" not in value and len(value) > 40 for value in secure), path
        environment = document["config"]["lastmile:environment"]
        suffix = path.name[len("Pulumi."):-len(".yaml")].rsplit("-", 1)[1]
        if suffix in ("dev", "staging", "prod"):  # a team's environment: the team's backend and KMS key
            assert str(document.get("secretsprovider", "")).startswith(f"awskms://alias/lastmile-{environment}"), path.name
            assert not engine.is_local(path.name[len("Pulumi."):-len(".yaml")])
        else:  # a developer's stack (local, gitops): the passphrase provider
            assert document.get("encryptionsalt") and "secretsprovider" not in document, path.name
            assert engine.is_local(path.name[len("Pulumi."):-len(".yaml")])


def test_exit_codes_are_distinct() -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode)


def test_the_deadline_is_two_of_the_stacks_longest_waits_plus_a_margin() -> None:
    from components.aws.rollout import TIMEOUT_MARGIN_SECONDS
    from lastmile.stackfile import stack_settings

    local = engine.validate_stack("onprem-local")
    assert local.ready_timeout_seconds == 60  # its Deployments' ready timeout
    assert engine.deadline_seconds(local) == 2 * 60 + engine.DEADLINE_MARGIN_SECONDS
    aws = stack_settings("aws-prod", STACKS_DIR, assume_team_secrets=True)
    assert aws.ready_timeout_seconds is None  # no Kubernetes half: the SageMaker endpoint's update is the wait
    assert engine.deadline_seconds(aws) == 2 * (5400 + TIMEOUT_MARGIN_SECONDS) + engine.DEADLINE_MARGIN_SECONDS
    onprem = stack_settings("onprem-prod", STACKS_DIR, assume_team_secrets=True)
    assert onprem.onprem.ready_timeout_seconds is None and onprem.ready_timeout_seconds == 1800  # the rollout bound
    assert engine.deadline_seconds(onprem) == 2 * 1800 + engine.DEADLINE_MARGIN_SECONDS


@pytest.mark.parametrize("value", ["5", "abc", "-30", "604801"])
def test_a_timeout_outside_its_range_is_refused_before_anything_runs(value: str, capsys) -> None:
    from lastmile import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["up", "onprem-local", "--timeout", value])
    assert exit_.value.code == ExitCode.REFUSED
    assert f"--timeout: {value!r} is not a whole number of seconds from 10 to 604800" in capsys.readouterr().err


@pytest.mark.parametrize(("verb", "words"), [("up", "nothing was deployed"), ("destroy", "nothing was deleted"),
                                             ("outputs", "nothing was read")])
def test_without_the_local_cluster_each_verb_says_what_it_left_untouched(verb: str, words: str, capsys,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from lastmile import cli, cluster

    monkeypatch.setattr(cluster, "status", lambda workdir: [])  # no process of the local cluster runs
    assert cli.main([verb, "onprem-local"]) == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert f"lastmile {verb}: cannot run here, {words}:" in err and "lastmile cluster up" in err


def test_destroy_reads_the_owner_label_the_namespace_component_writes() -> None:
    from components.k8s.namespace import OWNER_LABEL
    from lastmile import ownership

    assert ownership.OWNER_LABEL == OWNER_LABEL  # spelled twice so that lastmile's verbs need not import the SDK
