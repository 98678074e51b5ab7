"""Promotion: moves exactly the release, refuses unverified releases and skips, records append-only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from moto.server import ThreadedMotoServer

from lastmile import cli, evidence, records
from lastmile import promote as p
from infra.manifest import load_manifest
from lastmile.stack_edit import StackText

NOW = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)
COMMIT = "0" * 40
MANIFEST = load_manifest()
V1, V2 = MANIFEST[("iris-classifier", "1.0.0")], MANIFEST[("iris-classifier", "1.1.0")]


def _release(m, region: str = "eu-west-1") -> str:
    return (f"model: iris-classifier\n        version: {m.version}\n        sha256: {m.sha256}\n"
            f"        image: {m.sagemaker_images[region]}")


def _aws_stack(env: str, blue, green=None, active: str = "blue", region: str = "eu-west-1") -> str:
    green_block = f"      green:  # the other slot\n        {_release(green, region)}\n" if green else ""
    rollout = ("  lastmile:rollout:\n    strategy: canary  # prod: canary + bake\n    step_percent: 10\n"
               "    wait_seconds: 600\n    bake_seconds: 900\n" if env == "prod" else
               "  lastmile:rollout:\n    strategy: all_at_once\n")
    vpc = ("    vpc:\n      subnets:\n        - {id: subnet-0a1b2c3d, availability_zone: " + region + "a}\n"
           "        - {id: subnet-1a2b3c4d, availability_zone: " + region + "b}\n"
           "      security_group_ids: [sg-0123abcd]\n") if env != "dev" else ""
    return (
        f"# aws-{env}: the {env} SageMaker endpoint\n"
        f"secretsprovider: awskms://alias/lastmile-{env}?region={region}\n"
        "config:\n"
        "  lastmile:topology: aws\n"
        f"  lastmile:environment: {env}\n"
        "  lastmile:serving:\n"
        f"    active_slot: {active}  # the switch is its own reviewed change\n"
        "    slots:\n"
        f"      blue:\n        {_release(blue, region)}\n"
        f"{green_block}"
        f"{rollout}"
        f"  lastmile:capacity:\n    min_count: {2 if env != 'dev' else 1}\n"
        "  lastmile:aws:\n"
        "    account_id: '123456789012'\n"
        f"    region: {region}\n"
        f"{vpc}"
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    """Three aws stacks and a records directory that trusts a CI key generated for this test (never committed)."""
    stacks, records_dir = tmp_path / "stacks", tmp_path / "promotions"
    stacks.mkdir()
    (stacks / "Pulumi.aws-dev.yaml").write_text(_aws_stack("dev", V2))
    (stacks / "Pulumi.aws-staging.yaml").write_text(_aws_stack("staging", V2))
    (stacks / "Pulumi.aws-prod.yaml").write_text(_aws_stack("prod", V1))  # one release: green is free
    key = tmp_path / "secrets" / "ci.pem"
    p.trust_key("ci-test", ["dev", "staging", "prod"], generate_ed25519=key, records_dir=records_dir)
    return {"stacks": stacks, "records": records_dir, "key": key}


def _signer(env, stack: str = "aws-staging"):
    """The CI key, as the deploy workflow loads it (the private key file its secret was written to)."""
    keys = records.trusted_keys(env["records"])
    return evidence.signer_from_env({evidence.KEY_FILE_ENV: str(env["key"])}, keys, records.environment_of(stack))


def _log(env, name: str = p.PROMOTION_LOG) -> list[dict]:
    return [entry.record for entry in records.read_checked(env["records"], name)]


# What a passed golden check adds to the evidence (lastmile.golden.GoldenResult.to_evidence(); the real check
# against an endpoint runs in tests/journeys and tests/serving).
GOLDEN_PASSED = {"check": "golden-set", "model": "iris-classifier", "rows": 7, "passed": True}


def _verify(env, stack: str, release, outcome: str = "verified", at: datetime = NOW, detail: str | None = None,
            signed: bool = True, golden: dict | None = GOLDEN_PASSED, records_dir: Path | None = None,
            config: str = "cfg-1"):
    """Evidence as the deploy workflow records it (signed by the CI key, golden set passed); pass signed=False for
    typed-by-hand, golden=None for evidence without a golden check."""
    rel = p.Release("iris-classifier", release.version, release.sha256, release.sagemaker_images["eu-west-1"])
    return p.record_verification(stack, rel, verifier="lastmile.verify", git_commit=COMMIT, endpoint_config_name=config,
                                 outcome=outcome, detail=detail, verified_at=at, now=at,
                                 records_dir=records_dir or env["records"], golden=golden,
                                 signer=_signer(env, stack) if signed else None)


def _promote(env, source="staging", target="prod", **kwargs):
    return p.promote("aws", source, target, now=NOW, commit=COMMIT, actor="test", stacks_dir=env["stacks"],
                     records_dir=env["records"], **kwargs)


def _config(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["config"]


def test_staging_to_prod_changes_exactly_the_idle_release_and_records_it(env):
    _verify(env, "aws-staging", V2)
    prod = env["stacks"] / "Pulumi.aws-prod.yaml"
    before_text, before = prod.read_text(), _config(prod)

    result = _promote(env)

    after_text, after = prod.read_text(), _config(prod)
    assert result.changed and result.target_slot == "green"
    # Only the idle slot's release was added; active_slot, rollout, capacity and aws are untouched.
    assert after["lastmile:serving"]["slots"]["green"] == {
        "model": "iris-classifier", "version": "1.1.0", "sha256": V2.sha256, "image": V2.sagemaker_images["eu-west-1"]}
    expected = json.loads(json.dumps(before))
    expected["lastmile:serving"]["slots"]["green"] = after["lastmile:serving"]["slots"]["green"]
    assert after == expected
    # Comments, order and layout stay: the text differs only by the added slot's lines.
    import difflib
    changed = [line for line in difflib.ndiff(before_text.splitlines(), after_text.splitlines()) if line[:1] in "+-"]
    assert len(changed) == 5 and all(line.startswith("+ ") for line in changed), changed
    assert "# the switch is its own reviewed change" in after_text

    [record] = _log(env)
    assert record["from"] == "aws-staging" and record["to"] == "aws-prod" and record["target_slot"] == "green"
    assert record["release"]["version"] == "1.1.0" and record["replaced"] is None
    assert record["evidence"]["verifier"] == "lastmile.verify" and record["evidence"]["endpoint_config_name"] == "cfg-1"
    assert record["forced"] is False and record["promoted_at"] == "2025-11-21T12:00:00Z"
    assert record["next_step"] == "serving: a reviewed change of active_slot blue -> green"


def test_unverified_release_is_refused_and_nothing_changes(env):
    prod = env["stacks"] / "Pulumi.aws-prod.yaml"
    before = prod.read_text()
    with pytest.raises(p.PromotionError) as refused:
        _promote(env)
    message = str(refused.value)
    assert "iris-classifier 1.1.0" in message and "no evidence of a good deployment in aws-staging" in message
    assert "`lastmile verify --stack aws-staging` passed" in message and "record-verification --stack aws-staging" in message
    assert prod.read_text() == before and not (env["records"] / p.PROMOTION_LOG).exists()


def test_evidence_from_another_stack_or_release_does_not_count(env):
    _verify(env, "aws-dev", V2)           # right release, wrong stack
    _verify(env, "aws-staging", V1)       # right stack, wrong release
    with pytest.raises(p.PromotionError, match="no evidence"):
        _promote(env)


def test_a_later_failed_verification_revokes_the_evidence(env):
    _verify(env, "aws-staging", V2, at=NOW)
    _verify(env, "aws-staging", V2, outcome="failed", at=datetime(2025, 11, 21, 13, tzinfo=UTC),
            detail="SageMaker rolled back: alarm 5xx")
    with pytest.raises(p.PromotionError, match="failed: SageMaker rolled back"):
        _promote(env)


def test_skipping_an_environment_is_refused_unless_forced_with_a_reason(env):
    _verify(env, "aws-dev", V2)
    with pytest.raises(p.PromotionError) as refused:
        _promote(env, "dev", "prod")
    assert "skips aws-staging" in str(refused.value) and "--force --reason" in str(refused.value)
    with pytest.raises(p.PromotionError, match="--force needs --reason"):
        _promote(env, "dev", "prod", force=True, reason="  ")

    result = _promote(env, "dev", "prod", force=True, reason="hotfix INC-42: staging is down for maintenance")
    assert result.changed
    [record] = _log(env)
    assert record["forced"] is True and record["skipped"] == ["aws-staging"]
    assert record["reason"] == "hotfix INC-42: staging is down for maintenance"


def test_backwards_and_unknown_stacks_are_refused(env):
    with pytest.raises(p.PromotionError, match="moves forward along dev -> staging -> prod"):
        _promote(env, "prod", "staging")
    with pytest.raises(p.PromotionError, match="aws-qa is not on the promotion path"):
        _promote(env, "staging", "qa")


def test_into_active_and_already_staged(env):
    _verify(env, "aws-staging", V2)
    assert _promote(env, into="active").target_slot == "blue"
    again = _promote(env, into="active")
    assert not again.changed  # nothing to do, nothing logged twice
    assert len(_log(env)) == 1


def test_missing_idle_slot_is_created_in_slot_order(env):
    _verify(env, "aws-dev", V2)
    staging = env["stacks"] / "Pulumi.aws-staging.yaml"
    staging.write_text(_aws_stack("staging", V1, active="blue"))
    _promote(env, "dev", "staging")
    slots = _config(staging)["lastmile:serving"]["slots"]
    assert list(slots) == ["blue", "green"] and slots["green"]["version"] == "1.1.0"


def test_region_change_takes_the_manifest_image_of_the_target_region(env):
    _verify(env, "aws-staging", V2)
    (env["stacks"] / "Pulumi.aws-prod.yaml").write_text(_aws_stack("prod", V1, region="eu-central-1"))
    result = _promote(env)
    assert result.release.image == V2.sagemaker_images["eu-central-1"]
    assert result.release.sha256 == V2.sha256


def test_a_release_the_target_cannot_deploy_is_refused_before_writing(env):
    # The staging file carries a digest the manifest does not pin: config validation rejects the result.
    staging = env["stacks"] / "Pulumi.aws-staging.yaml"
    staging.write_text(staging.read_text().replace(V2.sha256, "f" * 64))
    bad = p.Release("iris-classifier", "1.1.0", "f" * 64, V2.sagemaker_images["eu-west-1"])
    p.record_verification("aws-staging", bad, verifier="lastmile.verify", git_commit=COMMIT, endpoint_config_name="c",
                          verified_at=NOW, now=NOW, records_dir=env["records"], golden=GOLDEN_PASSED,
                          signer=_signer(env))
    before = (env["stacks"] / "Pulumi.aws-prod.yaml").read_text()
    with pytest.raises(p.PromotionError, match="would not deploy"):
        _promote(env)
    assert (env["stacks"] / "Pulumi.aws-prod.yaml").read_text() == before


def test_dry_run_writes_nothing(env):
    _verify(env, "aws-staging", V2)
    result = _promote(env, dry_run=True)
    assert "+        version: 1.1.0" in result.diff
    assert "1.1.0" not in (env["stacks"] / "Pulumi.aws-prod.yaml").read_text()
    assert not (env["records"] / p.PROMOTION_LOG).exists()


def test_records_are_append_only_and_chained(env):
    log = env["records"] / p.PROMOTION_LOG
    (env["stacks"] / "Pulumi.aws-staging.yaml").write_text(_aws_stack("staging", V1))
    _verify(env, "aws-dev", V2)
    _verify(env, "aws-staging", V2)
    _promote(env, "dev", "staging")  # staging's idle slot, green
    first = log.read_bytes()
    _promote(env, "staging", "prod", source_slot="green")
    second = log.read_bytes()
    assert second.startswith(first) and len(second.splitlines()) == 2  # earlier lines are never rewritten
    assert records.check_chain(log) == [] and records.check_chain(env["records"] / p.VERIFICATIONS) == []
    assert [r["signed_by"] for r in _log(env)] == [None, None]  # promotions made by hand: unsigned, and say so

    # A rewritten earlier line breaks the chain, and check-log says where.
    lines = second.splitlines(True)
    edited = lines[0].replace(b'"prev_sha256":null', b'"prev_sha256":null ')
    log.write_bytes(edited + lines[1])
    assert records.check_chain(log) == [f"{p.PROMOTION_LOG}:2: prev_sha256 "
                                        f"{json.loads(lines[1])['prev_sha256']} != {records.line_sha256(edited)}: "
                                        "a line before it was rewritten, reordered or deleted"]
    assert cli.main(["promote", "check-log", "--records-dir", str(env["records"])]) == 1


def test_record_verification_rejects_ambiguous_deployments(env):
    rel = p.Release("iris-classifier", "1.1.0", V2.sha256, "img")
    with pytest.raises(ValueError, match="exactly one"):
        p.record_verification("aws-dev", rel, verifier="v", git_commit=COMMIT, records_dir=env["records"])
    with pytest.raises(ValueError, match="outcome"):
        p.record_verification("aws-dev", rel, verifier="v", git_commit=COMMIT, k8s_revision="3", outcome="ok",
                              records_dir=env["records"])


def test_cli_record_then_promote(env, capsys, monkeypatch):
    from infra.topologies.aws import sagemaker_endpoint_name

    for name in ("GITHUB_ACTIONS", "GITHUB_RUN_ID", *evidence.SIGNER_ENVS):
        monkeypatch.delenv(name, raising=False)
    common = ["--stacks-dir", str(env["stacks"]), "--records-dir", str(env["records"])]
    promote = ["promote", "--topology", "aws", "--from", "staging", "--to", "prod", "--now", "2025-11-21T12:05:00Z",
               "--git-commit", COMMIT, *common]
    assert cli.main(promote) == 2
    assert "refused, nothing was written: iris-classifier 1.1.0" in capsys.readouterr().err
    config = sagemaker_endpoint_name("lastmile", "aws-staging", "123456789012", "eu-west-1") + "-0123456789ab"
    record = ["promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name", config,
              "--verifier", "lastmile.verify", "--git-commit", COMMIT, "--verified-at", "2025-11-21T12:00:00Z", *common]
    assert cli.main(record) == 0  # typed by hand: manual evidence
    assert "unsigned: manual" in capsys.readouterr().out
    assert cli.main(promote) == 2
    assert "only manual evidence in aws-staging" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # a shell that says it is CI proves nothing
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    assert cli.main(record) == 0
    assert "unsigned: manual" in capsys.readouterr().out
    assert cli.main(promote) == 2
    assert "signed by a trusted CI key" in capsys.readouterr().err
    monkeypatch.setenv(evidence.KEY_FILE_ENV, str(env["key"]))
    assert cli.main(record) == 0  # the deploy workflow signs it, but without asking the endpoint its golden set
    assert "signed by trusted key" in capsys.readouterr().out
    assert cli.main(promote) == 2
    assert "no passed golden set in its evidence from aws-staging" in capsys.readouterr().err
    from lastmile import golden

    asked = []

    def answered_as_pinned(golden_set, **where):  # the endpoint (faked here; real in tests/journeys) answers right
        asked.append(where)
        return golden.GoldenResult(golden_set.model, golden_set.version, "sagemaker endpoint iris", 7,
                                   golden_set.version, failure=None)

    monkeypatch.setattr(golden, "run_check", answered_as_pinned)
    assert cli.main([*record, "--golden-sagemaker-endpoint", "iris"]) == 0
    assert asked == [{"url": None, "sagemaker_endpoint": "iris", "region": "eu-west-1", "ca_file": None}]
    assert cli.main(promote) == 0
    out = capsys.readouterr().out
    assert "promoted iris-classifier 1.1.0" in out and "next: serving: a reviewed change of active_slot blue -> green" in out
    assert cli.main(["promote", "status", "--topology", "aws", *common]) == 0
    assert ("aws-staging        blue  (active) iris-classifier 1.1.0  verified 2025-11-21T12:00:00Z by lastmile.verify "
            "(signed: ci-test)") in capsys.readouterr().out
    assert [r["signed_by"] for r in _log(env)] == ["ci-test"]  # the promotion is signed by the same key


def test_promotion_path_follows_the_stacks_present(tmp_path):
    for name in ("onprem-prod", "onprem-local", "onprem-dev", "hybrid-staging", "hybrid-prod"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    assert p.promotion_path("onprem", tmp_path) == ["dev", "prod"]  # local only renders: not on the path
    assert p.promotion_path("hybrid", tmp_path) == ["staging", "prod"]


def test_ci_evidence_is_imported_checked_in_recorded_order_and_rechained(env, tmp_path):
    ci = tmp_path / "ci"
    (env["stacks"] / "Pulumi.aws-prod.yaml").write_text(_aws_stack("prod", V2))
    _verify(env, "aws-prod", V2, at=datetime(2025, 11, 21, 14, tzinfo=UTC), records_dir=ci / "prod",
            config=_config_name("aws-prod"))
    _verify(env, "aws-dev", V2, at=NOW, records_dir=ci / "dev", config=_config_name("aws-dev"))
    _verify(env, "aws-staging", V1)  # evidence already in the repository
    files = [ci / "prod" / p.VERIFICATIONS, ci / "dev" / p.VERIFICATIONS]
    assert p.import_records(files, env["records"], env["stacks"]) == (2, 0)
    imported = _log(env, p.VERIFICATIONS)
    assert [r["stack"] for r in imported] == ["aws-staging", "aws-dev", "aws-prod"]
    assert all(r["signed_by"] == "ci-test" for r in imported)  # the envelopes are appended unchanged
    assert p.import_records(files, env["records"], env["stacks"]) == (0, 2)  # twice: nothing appended
    assert p.find_evidence("aws-dev", p.Release("iris-classifier", "1.1.0", V2.sha256,
                                                V2.sagemaker_images["eu-west-1"]), env["records"]) is not None


def _config_name(stack: str) -> str:
    """An endpoint config name of the shape lastmile gives ``stack``'s deployments."""
    from infra.topologies.aws import sagemaker_endpoint_name

    return sagemaker_endpoint_name("lastmile", stack, "123456789012", "eu-west-1") + "-0123456789ab"


def test_check_prefix_against_a_git_revision_fails_closed(tmp_path, monkeypatch):
    import subprocess

    repo = tmp_path / "repo"
    (repo / "promotions").mkdir(parents=True)
    log = repo / "promotions" / p.PROMOTION_LOG
    records.append(log, {"n": 1})
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    records.append(log, {"n": 2})
    assert records.check_prefix(log, "HEAD", repo) == []  # appended only
    assert records.check_prefix(repo / "promotions" / "new.jsonl", "HEAD", repo) == []  # not at HEAD: all appended
    log.write_text(log.read_text().replace('"n":1', '"n":7'))
    assert "earlier lines were rewritten or removed" in records.check_prefix(log, "HEAD", repo)[0]
    with pytest.raises(evidence.CannotCheck, match="'no-such-ref' is unknown"):
        records.check_prefix(log, "no-such-ref", repo)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    with pytest.raises(evidence.CannotCheck, match="git cannot run") as failed:
        records.check_prefix(log, "HEAD", repo)
    assert failed.value.exit_code == 3


def test_a_release_the_target_already_serves_is_not_promoted_again(env):
    # staging and prod both serve 1.0.0: promoting would have copied it into prod's idle slot (a stack that
    # cannot deploy). The target decides: it serves it already, nothing to promote, nothing written.
    (env["stacks"] / "Pulumi.aws-staging.yaml").write_text(_aws_stack("staging", V1))
    _verify(env, "aws-staging", V1)
    prod = env["stacks"] / "Pulumi.aws-prod.yaml"
    before = prod.read_text()
    result = _promote(env)
    assert not result.changed and result.target_slot == "blue" and result.target_active_slot == "blue"
    assert prod.read_text() == before and not (env["records"] / p.PROMOTION_LOG).exists()


def test_the_rollback_release_is_kept_unless_overwriting_it_is_confirmed(env):
    # prod switched to 1.1.0 (green active); blue keeps 1.0.0 for rollback. Promoting a newer release into the idle
    # slot would lose it: refused, naming the release; nothing is written.
    prod = env["stacks"] / "Pulumi.aws-prod.yaml"
    prod.write_text(_aws_stack("prod", V1, V2, active="green"))
    before = prod.read_text()
    staging = env["stacks"] / "Pulumi.aws-staging.yaml"
    staging.write_text(staging.read_text().replace("version: 1.1.0", "version: 1.2.0").replace(V2.sha256, "e" * 64))
    newer = p.Release("iris-classifier", "1.2.0", "e" * 64, V2.sagemaker_images["eu-west-1"])
    p.record_verification("aws-staging", newer, verifier="lastmile.verify", git_commit=COMMIT, endpoint_config_name="c",
                          verified_at=NOW, now=NOW, records_dir=env["records"], golden=GOLDEN_PASSED,
                          signer=_signer(env))
    with pytest.raises(p.PromotionError) as refused:
        _promote(env)
    message = str(refused.value)
    assert "would overwrite its rollback release iris-classifier 1.0.0" in message
    assert "--overwrite-rollback-release" in message
    assert prod.read_text() == before and not (env["records"] / p.PROMOTION_LOG).exists()
    # Confirmed, the promotion goes on to the next check (here: 1.2.0 is not in the manifest, so it cannot deploy).
    with pytest.raises(p.PromotionError, match="would not deploy"):
        _promote(env, overwrite_rollback=True)
    assert prod.read_text() == before


def test_a_newer_staged_candidate_in_the_idle_slot_is_replaced_and_named(env):
    assert not p._is_rollback(p.Release("iris-classifier", "1.1.0", V2.sha256, "x"),
                              p.Release("iris-classifier", "1.0.0", V1.sha256, "x"))
    assert p._is_rollback(p.Release("iris-classifier", "1.0.0", V1.sha256, "x"),
                          p.Release("iris-classifier", "1.1.0", V2.sha256, "x"))
    assert p._is_rollback(p.Release("other-model", "9.0.0", V1.sha256, "x"),
                          p.Release("iris-classifier", "1.1.0", V2.sha256, "x"))


def test_a_hand_edited_evidence_line_is_refused_naming_the_line(env):
    _verify(env, "aws-staging", V1)
    _verify(env, "aws-staging", V2, outcome="failed")
    path = env["records"] / p.VERIFICATIONS
    lines = path.read_text().splitlines(True)
    # An edited line breaks the hash the next line holds (the last line is guarded by check-log --against, and
    # promote compares the committed file: see the journey tests).
    path.write_text(lines[0].replace('"prev_sha256":null', '"prev_sha256":null ') + lines[1])
    with pytest.raises(p.PromotionError, match=f"{p.VERIFICATIONS}:2: prev_sha256"):
        _promote(env)
    with pytest.raises(p.PromotionError, match="not intact"):
        p.status("aws", env["stacks"], env["records"])


# ---------------------------------------------------------------------------------------------
# Signed with an AWS KMS key (moto's KMS on 127.0.0.1), order from the chain, the stack-file round trip


@pytest.fixture
def kms(monkeypatch) -> Iterator[str]:
    """moto's KMS on 127.0.0.1 (stopped after the test); yields the alias of an ECC_NIST_P256 signing key."""
    import boto3

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {"AWS_ENDPOINT_URL_KMS": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
            monkeypatch.setenv(name, value)
        client = boto3.client("kms")
        key = client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        alias = f"alias/lastmile-evidence-{key[:8]}"  # moto's state outlives one server: a name of its own
        client.create_alias(AliasName=alias, TargetKeyId=key)
        yield alias
    finally:
        server.stop()


def test_kms_signed_evidence_is_verified_and_accepted_for_prod(kms, tmp_path):
    stacks, records_dir = tmp_path / "stacks", tmp_path / "promotions"
    stacks.mkdir()
    (stacks / "Pulumi.aws-staging.yaml").write_text(_aws_stack("staging", V2))
    (stacks / "Pulumi.aws-prod.yaml").write_text(_aws_stack("prod", V1))
    path = p.trust_key("ci-kms", ["staging", "prod"], kms_key=kms, records_dir=records_dir)
    assert '"scheme": "ecdsa-sha2-nistp256"' in path.read_text()  # the public half, read with kms:GetPublicKey
    signer = evidence.signer_from_env({evidence.KMS_KEY_ENV: kms}, records.trusted_keys(records_dir), "staging")
    release = p.Release("iris-classifier", V2.version, V2.sha256, V2.sagemaker_images["eu-west-1"])
    p.record_verification("aws-staging", release, verifier="lastmile.verify", git_commit="0" * 40,
                          endpoint_config_name="cfg-1", verified_at=NOW, now=NOW, signer=signer,
                          golden={"check": "golden-set", "passed": True}, records_dir=records_dir)
    [entry] = records.read_checked(records_dir, p.VERIFICATIONS)
    assert entry.record["signed_by"] == "ci-kms"  # KMS signed it; securesystemslib verified it with the public key
    env = {"stacks": stacks, "records": records_dir}
    assert _promote(env).changed
    # The key may not sign for dev: refused before anything is signed.
    with pytest.raises(evidence.PromotionError, match="may not sign for environment 'dev'"):
        evidence.signer_from_env({evidence.KMS_KEY_ENV: kms}, records.trusted_keys(records_dir), "dev")


def test_kms_unreachable_could_not_check(kms, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(evidence.CannotCheck, match="cannot be read from AWS KMS") as failed:
        evidence.signer_from_env({evidence.KMS_KEY_ENV: kms}, {}, "prod")
    assert failed.value.exit_code == 3


def test_a_key_that_is_not_trusted_cannot_sign(env, tmp_path):
    other = tmp_path / "other.pem"
    p.trust_key("elsewhere", ["dev"], generate_ed25519=other, records_dir=tmp_path / "other-records")
    with pytest.raises(evidence.PromotionError, match="is not trusted"):
        evidence.signer_from_env({evidence.KEY_FILE_ENV: str(other)}, records.trusted_keys(env["records"]), "prod")
    with pytest.raises(evidence.PromotionError, match="are both set"):
        evidence.signer_from_env({evidence.KEY_FILE_ENV: str(other), evidence.KEY_ENV: "x"}, {}, "prod")


def test_order_is_the_chain_not_the_dates(env):
    _verify(env, "aws-staging", V2, at=datetime(2025, 11, 21, 18, tzinfo=UTC))  # dated later ...
    _verify(env, "aws-staging", V2, outcome="failed", at=datetime(2025, 11, 21, 18, tzinfo=UTC),
            detail="alarm 5xx")                                                   # ... revoked by the next line
    with pytest.raises(p.PromotionError, match="failed: alarm 5xx"):
        _promote(env)


# ---------------------------------------------------------------------------------------------
# Stack file round trip (issue 29): what promote writes keeps what it does not change


def _staged(env, transform) -> tuple[str, str]:
    """Write prod's file through ``transform``, promote staging's release into it, return (before, after)."""
    _verify(env, "aws-staging", V2)
    prod = env["stacks"] / "Pulumi.aws-prod.yaml"
    prod.write_bytes(transform(_aws_stack("prod", V1)).encode())
    before = prod.read_bytes().decode()
    _promote(env)
    return before, prod.read_bytes().decode()


@pytest.mark.parametrize("name, transform, kept", [
    ("crlf", lambda text: text.replace("\n", "\r\n"), lambda after: "\r\n" in after and "\n" not in after.replace("\r\n", "")),
    ("bom", lambda text: "\ufeff" + text, lambda after: after.startswith("\ufeff") and after.count("\ufeff") == 1),
    ("markers", lambda text: "---\n" + text + "...\n", lambda after: after.startswith("---\n") and after.endswith("...\n")),
    ("anchors", lambda text: text.replace("    account_id: '123456789012'", "    account_id: &account '123456789012'"),
     lambda after: "account_id: &account '123456789012'" in after),
])
def test_promotion_keeps_line_endings_bom_markers_and_anchors(env, name, transform, kept):
    before, after = _staged(env, transform)
    assert kept(after), after
    import difflib

    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert len(changed) == 5 and all(line.startswith("+ ") for line in changed), changed  # only the new slot


@pytest.mark.parametrize("text, why", [
    ("config:\n  a: 1\r\n", "line endings are mixed"),
    ("config: {a: 1}\n---\nconfig: {}\n", "not one YAML document"),
    ("config:\n    a:   1\n", "would differ at line"),
])
def test_a_file_that_cannot_round_trip_is_refused_saying_why(tmp_path, text, why):
    path = tmp_path / "Pulumi.aws-prod.yaml"
    path.write_bytes(text.encode())
    with pytest.raises(p.PromotionError, match=why) as refused:
        StackText.read(path)
    assert refused.value.exit_code == 2


def test_an_anchored_slot_shared_elsewhere_is_refused(env):
    _verify(env, "aws-staging", V2)
    prod = env["stacks"] / "Pulumi.aws-prod.yaml"
    text = _aws_stack("prod", V1).replace("      blue:\n", "      blue: &served\n")
    prod.write_text(text + "  lastmile:tags:\n    previous: *served\n")
    before = prod.read_text()
    with pytest.raises(p.PromotionError, match="would change other values too"):
        _promote(env, into="active")
    assert prod.read_text() == before


def test_help_says_onprem_local_is_deployed_to_a_local_cluster(capsys):
    with pytest.raises(SystemExit):
        cli.main(["promote", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "only renders manifests" not in shown and "nothing is deployed" not in shown
    assert "is deployed to the local cluster on one machine (``lastmile up onprem-local``)" in shown
