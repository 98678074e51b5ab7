"""Each command of the README's `lastmile` section, run as written, in a copy of the repository."""

from __future__ import annotations

import json
import sys

import pytest

from repo_copy import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _ok(done, *expected: str) -> str:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output}"
    return output


def test_the_readme_lists_the_commands_these_tests_run():
    block = README.split("## The `lastmile` command", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    verbs = {line.split()[1] for line in block.splitlines() if line.startswith("lastmile ")}
    # run here: the offline verbs; `cluster`, `up` and `drift` run as written in tests/engine (a live cluster,
    # the engine), `golden` against a real MLServer in tests/serving
    assert verbs == {"synth", "render", "policy", "contract", "plan", "verify", "promote", "cluster", "up", "golden",
                     "drift"}
    assert ". .venv/bin/activate" in README and ".venv/bin/lastmile" in README


def test_help(checkout):
    done = checkout.lastmile("--help")
    assert done.returncode == 0
    _ok(done, "synth", "render", "policy", "contract", "plan", "promote", "verify", "exit codes")


def test_synth(checkout):
    done = checkout.lastmile("synth", "aws-prod")
    assert done.returncode == 0, done.stderr
    _ok(done, "stack aws-prod:", "graph written to")
    graph = json.loads((checkout.root / "build" / "synth" / "aws-prod.json").read_text())
    assert graph["stack"] == "aws-prod" and graph["resources"]


def test_render_writes_only_its_own_directory(checkout):
    done = checkout.lastmile("render", "onprem-prod")
    assert done.returncode == 0, done.stderr
    out = checkout.root / "rendered" / "onprem-prod-offline"
    _ok(done, "manifests written to")
    written = sorted(p.name for p in out.glob("*.yaml"))
    assert written and (out / ".lastmile-output").is_file()
    (out / "notes.yaml").write_text("mine: true\n")  # a file lastmile did not write survives a re-render
    assert checkout.lastmile("render", "onprem-prod").returncode == 0
    assert (out / "notes.yaml").read_text() == "mine: true\n"
    assert sorted(p.name for p in out.glob("*.yaml")) == sorted([*written, "notes.yaml"])


def test_policy(checkout):
    done = checkout.lastmile("policy", "aws-prod")
    assert done.returncode == 0, done.stdout + done.stderr
    _ok(done, "aws-prod: 0 finding(s)")


def test_contract(checkout):
    done = checkout.lastmile("contract", "--stack", "aws-prod")
    assert done.returncode == 0, done.stdout + done.stderr
    _ok(done)


@pytest.mark.parametrize("stack", ["aws-dev", "aws-staging", "aws-prod", "hybrid-staging", "hybrid-prod", "onprem-dev",
                                   "onprem-local", "onprem-prod"])
def test_plan_of_a_commit_against_itself_has_no_changes(checkout, stack):
    done = checkout.lastmile("plan", "--stack", stack, "--base", "HEAD", "--head", "HEAD")
    assert done.returncode == 0, done.stdout + done.stderr
    _ok(done, "**0 to add, 0 to change, 0 to replace, 0 to remove**")


def test_plan_of_the_work_tree_against_head_and_affected(checkout):
    done = checkout.lastmile("plan", "--stack", "aws-prod", "--base", "HEAD")
    assert done.returncode == 0, done.stdout + done.stderr
    _ok(done, "`HEAD (", "→ `worktree`", "**0 to add, 0 to change")
    done = checkout.lastmile("plan", "affected", "--base", "HEAD")
    assert done.returncode == 0 and json.loads(done.stdout) == []


def test_verify_without_a_deployed_stack_could_not_check(checkout, tmp_path):
    done = checkout.lastmile("verify", "--outputs-file", str(tmp_path / "missing.json"))
    assert done.returncode == 3, done.stdout + done.stderr
    _ok(done, "could not check")


def test_promote_status_and_records(checkout):
    done = checkout.lastmile("promote", "status", "--topology", "aws")
    assert done.returncode == 0, done.stderr
    _ok(done, "aws-prod", "blue  (active) iris-classifier 1.0.0")
    done = checkout.lastmile("promote", "check-log")
    assert done.returncode == 0 and "intact" in done.stdout
    done = checkout.lastmile("promote", "check-log", "--against", "HEAD")
    assert done.returncode == 0 and "intact" in done.stdout
    done = checkout.lastmile("promote", "import-verifications")
    assert done.returncode == 0 and "appended 0" in done.stdout


def test_promote_a_release_both_stacks_serve_is_nothing_to_do(checkout):
    # staging and prod both serve 1.0.0: this once wrote 1.0.0 into prod's idle slot and broke the stack.
    before = checkout.stack_file("aws-prod").read_text()
    done = checkout.lastmile("promote", "--topology", "aws", "--from", "staging", "--to", "prod")
    assert done.returncode == 0, done.stderr
    _ok(done, "already in aws-prod slot blue (active): nothing to promote")
    assert checkout.stack_file("aws-prod").read_text() == before
    assert checkout.lastmile("synth", "aws-prod").returncode == 0


def test_outside_the_virtualenv_it_says_how_to_run(checkout):
    # `python -S`: no site-packages, as a system python without the project's dependencies.
    import subprocess

    done = subprocess.run([sys.executable, "-S", "-m", "lastmile", "--help"], cwd=checkout.root, capture_output=True,
                          text=True, env=checkout.env, check=False)
    assert done.returncode == 3
    _ok(done, "is not installed", "make setup", ".venv/bin/lastmile")
