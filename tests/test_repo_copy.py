"""The journeys' and engine tests' runner: a command past its time takes its whole process group with it."""

from __future__ import annotations

import subprocess
import time

import pytest
import repo_copy


def test_a_timed_out_command_leaves_no_process_behind(tmp_path, monkeypatch):
    marker = f"sleep 301.{time.monotonic_ns() % 1000}"  # a command line only this test starts
    monkeypatch.setattr(repo_copy, "COMMAND_TIMEOUT_SECONDS", 1)
    checkout = repo_copy.Checkout(root=tmp_path)
    monkeypatch.setattr(checkout, "lastmile_argv", lambda *args: ["bash", "-c", f"{marker} & {marker}; echo never"])
    with pytest.raises(subprocess.TimeoutExpired):
        checkout.lastmile("up")
    deadline = time.monotonic() + 5
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, f"{marker!r} outlived the timeout (a child of the command)"
        time.sleep(0.1)


def test_a_command_gives_its_exit_code_and_output(tmp_path, monkeypatch):
    checkout = repo_copy.Checkout(root=tmp_path)
    monkeypatch.setattr(checkout, "lastmile_argv", lambda *args: ["bash", "-c", "echo out; echo err >&2; exit 3"])
    done = checkout.lastmile("x")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
