"""The one command: every verb listed and documented, `--help` on every level, `lastmile policy` offline."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lastmile import cli
from lastmile.common import REPO_ROOT, STACKS_DIR
from lastmile.exitcodes import ExitCode

VERBS = {"synth", "render", "policy", "contract", "plan", "promote", "verify", "golden", "cluster", "up", "preview", "destroy", "refresh", "outputs", "cancel", "drift"}
SUBVERBS = {"plan": {"affected"},
            "promote": {"record-verification", "import-verifications", "check-log", "status", "trust-key"}}


def run(*argv: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    """`python -m lastmile ARGV` as a user runs it, from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          stdin=stdin, timeout=300)


def verbs_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_help_lists_every_verb():
    done = run("lastmile", "--help")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert VERBS <= listed, f"missing from lastmile --help: {VERBS - listed}"
    assert set(verbs_of(cli.build_parser())) == VERBS


def test_each_verb_is_built_from_the_module_the_table_names():
    for verb, module in cli.VERB_MODULES.items():
        alone = verbs_of(cli.build_parser(verb))
        assert verb in alone, f"{module} does not register {verb!r}"
        assert {v for v, m in cli.VERB_MODULES.items() if m == module} == set(alone), module


def test_a_verb_imports_only_its_own_module():
    code = ("import sys; from lastmile import cli; cli.build_parser('synth'); "
            "print(sorted({m for m in cli.VERB_MODULES.values() if m in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['lastmile.offline']", done.stdout


def test_help_does_not_import_pulumi():
    code = ("import sys; from lastmile import cli; cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pulumi'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"building the parser imported {done.stdout.strip()}"


def every_parser() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for verb, parser in verbs_of(cli.build_parser()).items():
        paths.append((verb,))
        paths += [(verb, sub) for sub in verbs_of(parser)]
    return paths


def test_subverbs_are_the_documented_ones():
    parsers = verbs_of(cli.build_parser())
    assert {verb: set(verbs_of(parsers[verb])) for verb in SUBVERBS} == SUBVERBS


@pytest.mark.parametrize("path", every_parser(), ids=" ".join)
def test_every_verb_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*path, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lastmile {' '.join(path)}"), out[:200]


def test_promote_without_a_verb_names_the_missing_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["promote", "--topology", "aws"])
    assert exit_.value.code == ExitCode.REFUSED
    assert "--from, --to" in capsys.readouterr().err


def test_python_dash_m_lastmile_is_the_command():
    done = run("lastmile", "plan", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: lastmile plan"), done.stderr


# ---------------------------------------------------------------------------------------------
# lastmile policy


def test_policy_passes_a_clean_committed_stack():
    done = run("lastmile", "policy", "aws-prod")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "aws-prod: 0 finding(s)" in done.stdout


def test_policy_fails_a_stack_with_a_planted_violation(tmp_path: Path):
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    path = stacks / "Pulumi.aws-prod.yaml"
    text = path.read_text()
    assert "log_retention_days: 731" in text
    path.write_text(text.replace("log_retention_days: 731", "log_retention_days: 90"))  # a value settings accept
    done = run("lastmile", "policy", "aws-prod", "--stacks-dir", str(stacks))
    assert done.returncode == ExitCode.FINDINGS, done.stdout + done.stderr
    assert "[log-group-retention]" in done.stdout


def test_policy_refuses_an_unknown_stack():
    done = run("lastmile", "policy", "aws-nowhere")
    assert done.returncode == ExitCode.REFUSED
    assert "unknown stack 'aws-nowhere'" in done.stderr and "fix:" in done.stderr and "Traceback" not in done.stderr


def test_python_dash_m_policy_by_hand_says_what_it_is():
    done = run("policy")
    assert done.returncode == ExitCode.REFUSED
    assert "lastmile policy STACK" in done.stderr and len(done.stderr.strip().splitlines()) == 1
