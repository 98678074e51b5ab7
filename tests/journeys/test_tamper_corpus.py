"""Tampered evidence over the signed logs: every case is refused by promote and status (exit 2, naming the problem),
reported by check-log (exit 1), nothing is written, 0 accepted, 0 tracebacks.

The committed base, recorded by `lastmile` itself with a CI key generated for this module (never committed): a
signed `verified` of aws-staging's 1.1.0, then a signed `failed` of it dated *earlier* — the failed one is the
newest in chain order, so the release is revoked whatever the dates say."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, Signature

from lastmile import evidence
from lastmile.records import line_sha256
from lastmile.stack_edit import round_trip_yaml
from repo_copy import tree_digest

WORKFLOW = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "7", "GITHUB_REPOSITORY": "acme/lastmile"}


def _lines(text: str) -> list[str]:
    return text.splitlines(True)


def _rechain(lines: list[dict]) -> str:
    """Lines as a forger writes them: every prev_sha256 recomputed, so the file's own chain is intact."""
    out, previous = [], None
    for line in lines:
        text = json.dumps({**line, "prev_sha256": line_sha256(previous.encode()) if previous else None},
                          sort_keys=True, separators=(",", ":"))
        out.append(text + "\n")
        previous = text
    return "".join(out)


def _statement(line: str) -> dict:
    return json.loads(base64.b64decode(json.loads(line)["dsse"]["payload"]))


def _envelope(body: dict, signer=None, claim_keyid: str | None = None) -> dict:
    envelope = Envelope(json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), evidence.PAYLOAD_TYPE, {})
    if signer is not None:
        signature = signer.sign(envelope.pae())
        keyid = claim_keyid or signature.keyid
        envelope.signatures[keyid] = Signature(keyid, signature.signature)
    return envelope.to_dict()


def _append_forged(edit: Callable[[dict], None], signer=None, claim_trusted: bool = False) -> Callable[[str], str]:
    """Append the first (verified) statement, edited, as a new well-chained line signed by ``signer``."""
    def tamper(text: str) -> str:
        lines = [json.loads(line) for line in _lines(text)]
        body = _statement(_lines(text)[0])
        edit(body)
        claim = lines[0]["dsse"]["signatures"][0]["keyid"] if claim_trusted else None
        return _rechain([*lines, {"dsse": _envelope(body, signer, claim)}])
    return tamper


def _set_predicate(key: str, value) -> Callable[[dict], None]:
    def edit(body: dict) -> None:
        body["predicate"][key] = value
    return edit


def _edit_signed_payload(text: str) -> str:
    """The revoking `failed` line's statement edited to `verified`, its signature kept, the chain recomputed."""
    lines = [json.loads(line) for line in _lines(text)]
    body = _statement(_lines(text)[-1])
    body["predicate"]["outcome"] = "verified"
    lines[-1]["dsse"]["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    return _rechain(lines)


MALLORY = CryptoSigner.generate_ed25519()  # a key nobody trusted

TAMPERS: dict[str, Callable[[str], str]] = {
    "forged-signer-claims-trusted-keyid": _append_forged(_set_predicate("verifier", "mallory"), MALLORY,
                                                         claim_trusted=True),
    "unknown-key": _append_forged(_set_predicate("verifier", "mallory"), MALLORY),
    "unsigned-line-claims-ci": _append_forged(_set_predicate("ci_run", "https://github.com/acme/lastmile/actions/runs/1")),
    "edited-signed-payload": _edit_signed_payload,
    "future-date": _append_forged(_set_predicate("recorded_at", "2999-01-01T00:00:00Z"), MALLORY, claim_trusted=True),
    "reordered-rechained": lambda text: _rechain([json.loads(line) for line in reversed(_lines(text))]),
    "reordered": lambda text: "".join(reversed(_lines(text))),
    "truncated-revocation": lambda text: "".join(_lines(text)[:-1]),
    "replayed-verified-after-revocation": lambda text: _rechain([json.loads(line) for line in _lines(text)]
                                                                 + [json.loads(_lines(text)[0])]),
    "legacy-unsigned-format": lambda text: text + json.dumps({"stack": "aws-staging", "outcome": "verified"}) + "\n",
    "not-json": lambda text: text.replace("}", "", 1),
    "emptied": lambda text: "",
}


@pytest.fixture(scope="module")
def evidenced(checkout, tmp_path_factory):
    """A CI key trusted in a reviewed commit, two signed verifications of aws-staging (the second revokes, dated
    earlier), committed as a PR base would be."""
    key = tmp_path_factory.mktemp("secrets") / "ci.pem"
    trusted = checkout.lastmile("promote", "trust-key", "--name", "ci", "--environments", "dev,staging,prod",
                                "--generate-ed25519", str(key))
    assert trusted.returncode == 0, trusted.stderr
    synth = checkout.lastmile("synth", "aws-staging")
    assert synth.returncode == 0, synth.stderr
    config = json.loads((checkout.root / "build/synth/aws-staging.json").read_text())["outputs"]["endpoint_config_name"]
    signing = {**WORKFLOW, evidence.KEY_FILE_ENV: str(key)}
    for outcome, dated in (("verified", []), ("failed", ["--verified-at", "2020-01-01T00:00:00Z"])):
        done = checkout.lastmile("promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name",
                                 config, "--verifier", "lastmile.verify", "--outcome", outcome, *dated,
                                 extra_env=signing)
        assert done.returncode == 0 and "signed by trusted key" in done.stdout, done.stdout + done.stderr
    env = {**checkout.env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "add", "-A", "promotions"], cwd=checkout.root, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "evidence"], cwd=checkout.root, env=env, check=True)
    checkout.config = config
    checkout.key = key
    return checkout


def _promote_staging(checkout, env=None):
    """aws-staging serves 1.0.0 on blue (the verified release); promote it to prod."""
    return checkout.lastmile("promote", "--topology", "aws", "--from", "staging", "--to", "prod", extra_env=env)


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_evidence_is_refused(evidenced, name):
    path = evidenced.root / "promotions" / "verifications.jsonl"
    original = path.read_text()
    path.write_text(TAMPERS[name](original))
    try:
        before = tree_digest(evidenced.root)
        results = {
            "promote": _promote_staging(evidenced),
            "status": evidenced.lastmile("promote", "status", "--topology", "aws"),
            "check-log": evidenced.lastmile("promote", "check-log", "--against", "HEAD"),
        }
        after = tree_digest(evidenced.root)
    finally:
        path.write_text(original)
    for verb, done in results.items():
        output = done.stdout + done.stderr
        assert "Traceback" not in output, output
        assert done.returncode == (1 if verb == "check-log" else 2), f"{verb} -> {done.returncode}:\n{output}"
        assert "verifications.jsonl" in output, output
    assert "not intact" in results["promote"].stderr and "fix:" in results["promote"].stderr
    assert after == before


def test_untampered_evidence_is_intact_and_the_later_failed_revokes(evidenced):
    done = evidenced.lastmile("promote", "check-log", "--against", "HEAD")
    assert done.returncode == 0 and "intact" in done.stdout and "2 signed by a trusted key" in done.stdout
    # The failed line is older by its date, newer in the chain: it is what counts (prod already serves 1.0.0, so
    # the promotion itself is not needed; status shows the verdict).
    status = evidenced.lastmile("promote", "status", "--topology", "aws")
    assert "aws-staging        blue  (active) iris-classifier 1.0.0  failed 2020-01-01" in status.stdout


def test_spoofed_github_env_records_unsigned_evidence_that_prod_refuses(evidenced):
    path = evidenced.root / "promotions" / "verifications.jsonl"
    prod = evidenced.stack_file("aws-prod")
    original, original_prod = path.read_text(), prod.read_text()
    yaml = round_trip_yaml()
    document = yaml.load(original_prod)
    slots = document["config"]["lastmile:serving"]["slots"]
    slots["blue"] = slots.pop("green")  # prod serves 1.1.0 only: staging's 1.0.0 would need evidence
    with prod.open("w") as handle:
        yaml.dump(document, handle)
    try:
        done = evidenced.lastmile("promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name",
                                  evidenced.config, "--verifier", "lastmile.verify", extra_env=WORKFLOW)
        assert done.returncode == 0 and "unsigned: manual" in done.stdout, done.stdout + done.stderr
        refused = _promote_staging(evidenced, WORKFLOW)
    finally:
        path.write_text(original)
        prod.write_text(original_prod)
    assert refused.returncode == 2 and "prod needs evidence signed by a trusted CI key" in refused.stderr
    assert "GITHUB_ACTIONS" in refused.stderr and "Traceback" not in refused.stderr


def test_a_future_verified_at_is_refused_when_recorded(evidenced):
    before = tree_digest(evidenced.root)
    done = evidenced.lastmile("promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name",
                              evidenced.config, "--verifier", "lastmile.verify", "--verified-at", "2999-01-01T00:00:00Z",
                              extra_env={evidence.KEY_FILE_ENV: str(evidenced.key)})
    assert done.returncode == 2 and "is in the future" in done.stderr and "Traceback" not in done.stderr
    assert tree_digest(evidenced.root) == before


@pytest.mark.parametrize("case", ["self-chained-unsigned", "self-chained-copy", "unknown-stack", "wrong-endpoint"])
def test_self_chained_and_unchecked_imports_are_refused(evidenced, tmp_path, case):
    committed = _lines((evidenced.root / "promotions" / "verifications.jsonl").read_text())
    body = _statement(committed[0])
    body["predicate"]["ci_run"] = None  # made by hand: it names no run
    if case == "unknown-stack":
        body["predicate"]["stack"] = "aws-qa"
    if case == "wrong-endpoint":
        body["predicate"]["endpoint_config_name"] = "my-own-endpoint"
    lines = [json.loads(committed[0])] if case == "self-chained-copy" else [{"dsse": _envelope(body)}]
    if case in ("unknown-stack", "wrong-endpoint"):  # signed by a trusted key, but about the wrong deployment
        signer = evidence.signer_from_env({evidence.KEY_FILE_ENV: str(evidenced.key)},
                                          evidence.load_trusted_keys(evidenced.root / "promotions/trusted-keys"),
                                          "staging")
        lines = [{"dsse": _envelope(body, signer)}]
    source = tmp_path / "verifications.jsonl"
    source.write_text(_rechain(lines))
    before = tree_digest(evidenced.root)
    done = evidenced.lastmile("promote", "import-verifications", str(source))
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    if case == "self-chained-copy":  # a statement already in the records is not appended again
        assert done.returncode == 0 and "appended 0" in done.stdout and "1 already there" in done.stdout, output
    else:
        assert done.returncode == 2 and f"{source}:1:" in done.stderr, output
        assert {"self-chained-unsigned": "unsigned `verified`", "unknown-stack": "not 'qa'",
                "wrong-endpoint": "'my-own-endpoint' is not a deployment of aws-staging"}[case] in done.stderr
    assert tree_digest(evidenced.root) == before
