"""Tampered evidence: every edit of a committed promotion record is refused by promote and status (exit 2, naming
the problem), reported by check-log (exit 1), and nothing is written."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from repo_copy import tree_digest

WORKFLOW = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "7", "GITHUB_REPOSITORY": "acme/lastmile"}


def _lines(text: str) -> list[str]:
    return text.splitlines(True)


def _set(index: int, key: str, value) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = _lines(text)
        record = json.loads(lines[index])
        record[key] = value
        lines[index] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        return "".join(lines)
    return edit


TAMPERS: dict[str, Callable[[str], str]] = {
    "edit-first-line-verifier": _set(0, "verifier", "mallory"),
    "edit-last-line-outcome": _set(-1, "outcome", "verified"),  # a revoked release made good again
    "edit-last-line-sha256": _set(-1, "sha256", "f" * 64),
    "delete-first-line": lambda text: "".join(_lines(text)[1:]),
    "delete-last-line": lambda text: "".join(_lines(text)[:-1]),
    "reorder": lambda text: "".join(reversed(_lines(text))),
    "append-unchained-line": lambda text: text + json.dumps({**json.loads(_lines(text)[-1]), "prev_sha256": None,
                                                              "verified_at": "2099-01-01T00:00:00Z"}) + "\n",
    "not-json": lambda text: text.replace("}", "", 1),
    "emptied": lambda text: "",
}


@pytest.fixture(scope="module")
def evidenced(checkout):
    """Two workflow-recorded verifications of aws-staging (the second revokes), committed as a PR base would be."""
    synth = checkout.lastmile("synth", "aws-staging")
    assert synth.returncode == 0, synth.stderr
    config = json.loads((checkout.root / "build/synth/aws-staging.json").read_text())["outputs"]["endpoint_config_name"]
    for outcome in ("verified", "failed"):
        done = checkout.lastmile("promote", "record-verification", "--stack", "aws-staging", "--endpoint-config-name",
                                 config, "--verifier", "lastmile.verify", "--outcome", outcome, extra_env=WORKFLOW)
        assert done.returncode == 0, done.stderr
    env = {**checkout.env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "commit", "-qam", "evidence"], cwd=checkout.root, env=env, check=True)
    return checkout


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_evidence_is_refused(evidenced, name):
    path = evidenced.root / "promotions" / "verifications.jsonl"
    original = path.read_text()
    path.write_text(TAMPERS[name](original))
    try:
        before = tree_digest(evidenced.root)
        results = {
            "promote": evidenced.lastmile("promote", "--topology", "aws", "--from", "staging", "--to", "prod"),
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


def test_untampered_evidence_is_intact(evidenced):
    done = evidenced.lastmile("promote", "check-log", "--against", "HEAD")
    assert done.returncode == 0 and "intact" in done.stdout
