"""The one stack-file reader and the output-ownership rule, as pure functions (the journeys run them as commands)."""

from __future__ import annotations

import pytest

from lastmile.common import Refused
from lastmile.outputs import MARKER, check_file, claim_dir
from lastmile.stackfile import StackFileError, parse_stack_text


def test_every_problem_of_a_stack_file_is_reported_at_once():
    text = ("config:\n  lastmile:topology: aws\n  lastmile:environment: dev\n  lastmile:environment: dev\n"
            "  lastmil:serving: {}\n  lastmile:tls_private_key: hunter2-value\n")
    with pytest.raises(StackFileError) as refused:
        parse_stack_text("aws-prod", text)
    fields = [p.field for p in refused.value.problems]
    assert fields == ["stacks/Pulumi.aws-prod.yaml line 4", "config.lastmil:serving", "lastmile:environment",
                      "lastmile:tls_private_key"]
    assert "hunter2-value" not in str(refused.value)  # a leaked secret is not echoed


def test_a_problem_about_a_key_shows_no_value():
    """A misspelt namespace is about the key itself: the message names it, with no made-up ``= None``."""
    with pytest.raises(StackFileError) as refused:
        parse_stack_text("aws-dev", "config:\n  lastmle:topology: aws\n")
    assert "  1. config.lastmle:topology\n" in str(refused.value), str(refused.value)


def test_a_good_stack_file_reads():
    assert parse_stack_text("aws-dev", "config:\n  lastmile:environment: dev\n")["config"] == {
        "lastmile:environment": "dev"}
    assert parse_stack_text("onprem-local", "config:\n  lastmile:environment: dev\n")  # laptop stacks are dev


def test_output_directories_lastmile_did_not_create_are_refused(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "theirs.yaml").write_text("x")
    with pytest.raises(Refused, match="not empty and lastmile did not create it"):
        claim_dir(foreign, option="--out")
    out = claim_dir(tmp_path / "new", option="--out")
    assert not out.path.exists()  # nothing is created before there is something to write
    (out.create() / "a.yaml").write_text("a")
    (out.path / "b.yaml").write_text("b")
    out.commit([out.path / "a.yaml", out.path / "b.yaml"], prune=True)
    (out.path / "mine.yaml").write_text("kept")
    again = claim_dir(out.path, option="--out")
    (out.path / "a.yaml").write_text("a2")
    assert again.commit([out.path / "a.yaml"], prune=True) == ["b.yaml"]
    assert sorted(p.name for p in out.path.iterdir()) == sorted([MARKER, "a.yaml", "mine.yaml"])


def test_output_files_lastmile_did_not_write_are_refused(tmp_path):
    (tmp_path / "notes.md").write_text("mine")
    with pytest.raises(Refused, match="lastmile did not write it"):
        check_file(tmp_path / "notes.md", option="--out", header="<!-- lastmile-plan-diff:")
    (tmp_path / "plan.md").write_text("<!-- lastmile-plan-diff:aws-dev -->\n")
    check_file(tmp_path / "plan.md", option="--out", header="<!-- lastmile-plan-diff:")
