"""No secret in the repository (docs/security-checklist.md §Secrets): detect-secrets over every tracked file.

`.secrets.baseline` lists the audited findings, all of them non-secrets: sha256 pins of artifacts and
images (hex entropy), the Pulumi wire-protocol signatures in lastmile/synthesis.py, field *names* that
contain the word secret, and test inputs the settings must refuse. A new finding anywhere fails this test; after auditing one, refresh with
`git ls-files -z | xargs -0 .venv/bin/detect-secrets scan --no-verify > .secrets.baseline`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCAN = Path(sys.executable).parent / "detect-secrets"


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    return [p for p in listed.decode().split("\0") if p and p != ".secrets.baseline"]


def findings(files: list[str], cwd: Path) -> set[tuple[str, str, str]]:
    """(file, kind, hashed secret) of every finding; line numbers left out, so edits that only move a
    known finding do not need a new baseline."""
    scanned = subprocess.run([str(SCAN), "scan", "--no-verify", *files], cwd=cwd, check=True,
                             capture_output=True, text=True).stdout
    return {(path, f["type"], f["hashed_secret"]) for path, found in json.loads(scanned)["results"].items() for f in found}


def audited() -> set[tuple[str, str, str]]:
    results = json.loads((REPO / ".secrets.baseline").read_text())["results"]
    return {(path, f["type"], f["hashed_secret"]) for path, found in results.items() for f in found}


def test_no_new_secret_in_any_tracked_file():
    new = findings(tracked_files(), REPO) - audited()
    assert not new, f"unaudited findings (file, kind, hash): {sorted(new)}"


def test_the_scan_catches_a_planted_secret(tmp_path):
    planted = tmp_path / "leak.py"
    planted.write_text('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYZ"\n')  # pragma: allowlist secret
    assert {(path, kind) for path, kind, _ in findings(["leak.py"], tmp_path)} >= {("leak.py", "Secret Keyword")}


def test_baseline_findings_are_only_the_audited_kinds():
    results = json.loads((REPO / ".secrets.baseline").read_text())["results"]
    for path, findings in results.items():
        for finding in findings:
            if finding["type"] == "Hex High Entropy String":
                continue  # sha256 pins (artifacts, images) and protocol signatures: hex digests by design
            if finding["type"] == "Basic Auth Credentials":
                # a webhook URL with credentials in a test: the settings must refuse it
                assert path.startswith("tests/"), (path, finding)
                continue
            assert finding["type"] in {"Secret Keyword", "Base64 High Entropy String"}, (path, finding)
            if path.startswith("stacks/"):
                # the `secretsprovider: awskms://alias/...` line of a team stack: a KMS key alias, no secret
                assert finding["type"] == "Secret Keyword", (path, finding)
                continue
            assert path.startswith(("tests/", "infra/", "lastmile/", "policy/", "README.md")), (path, finding)
