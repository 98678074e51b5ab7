"""No secret in the repository (REFERENCE §3 Secrets): detect-secrets over every tracked file.

`.secrets.baseline` lists the audited findings, all of them non-secrets: sha256 pins of artifacts and
images (hex entropy), the Pulumi wire-protocol signatures in infra/synthesis.py, and field *names* that
contain the word secret. A new finding anywhere fails this test; after auditing one, refresh with
`git ls-files -z | xargs -0 .venv/bin/detect-secrets scan --no-verify > .secrets.baseline`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOOK = Path(sys.executable).parent / "detect-secrets-hook"
SHA256 = re.compile(r"[0-9a-f]{64}")


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    return [p for p in listed.decode().split("\0") if p and p != ".secrets.baseline"]


def test_no_new_secret_in_any_tracked_file():
    result = subprocess.run([str(HOOK), "--baseline", ".secrets.baseline", *tracked_files()], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_hook_catches_a_planted_secret(tmp_path):
    planted = tmp_path / "leak.py"
    planted.write_text('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYZ"\n')  # pragma: allowlist secret
    result = subprocess.run([str(HOOK), str(planted)], capture_output=True, text=True)
    assert result.returncode != 0 and "leak.py" in result.stdout


def test_baseline_findings_are_only_the_audited_kinds():
    results = json.loads((REPO / ".secrets.baseline").read_text())["results"]
    for path, findings in results.items():
        for finding in findings:
            if finding["type"] == "Hex High Entropy String":
                continue  # sha256 pins (artifacts, images) and protocol signatures: hex digests by design
            assert finding["type"] in {"Secret Keyword", "Base64 High Entropy String"}, (path, finding)
            assert path.startswith(("tests/", "infra/", "policy/", "README.md")), (path, finding)
