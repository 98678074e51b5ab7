"""A stack is local by declaration (infra.settings.common.LOCAL_STACKS), not because its file lacks a
``secretsprovider:`` line: a staging stack whose file lost that line is refused before anything runs, by
`lastmile` (exit 2) and by the program itself under the engine (plain `pulumi preview`), because otherwise its
secrets would be encrypted with a passphrase anyone can read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine]
PLAIN = Path(__file__).resolve().parent / "plain_pulumi.py"


def test_a_team_stack_without_its_kms_line_is_refused_by_lastmile_and_by_the_program(make_checkout, engine_bin):
    checkout = make_checkout("secrets-provider")
    local = checkout.stack_file("onprem-local").read_text()
    assert not re.search(r"^secretsprovider:", local, re.M)
    staging = re.sub(r"^(  lastmile:environment: )dev$", r"\g<1>staging", local, flags=re.M)
    checkout.stack_file("onprem-staging").write_text(staging)  # a team stack whose file lost the line

    refused = checkout.lastmile("preview", "onprem-staging")
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "lastmile:secretsprovider = 'passphrase'" in refused.stderr and "awskms://" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr

    env = {**checkout.env, "PULUMI_HOME": checkout.env["LASTMILE_PULUMI_HOME"], "PULUMI_BIN_DIR": str(engine_bin)}
    plain = subprocess.run([sys.executable, str(PLAIN), "preview", "onprem-staging"], cwd=checkout.root, env=env,
                           capture_output=True, text=True, timeout=600, check=False)
    assert plain.returncode == 4, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert "lastmile:secretsprovider = 'passphrase'" in plain.stdout + plain.stderr
    assert "kubernetes:" not in plain.stdout, "the program registered resources before refusing"
