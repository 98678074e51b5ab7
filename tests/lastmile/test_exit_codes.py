"""Exit codes of the unexpected, driven through real `lastmile` processes: an error no verb handled is
exit 5 (its cause on one line, the traceback in a log file, none on the terminal), Ctrl-C 130, SIGTERM 143,
a reader that went away 141 with nothing printed. Never 0 or 1, which a workflow reads as success or
"changes"."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lastmile import cli
from lastmile.common import REPO_ROOT
from lastmile.exitcodes import ExitCode


def environment(log_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LASTMILE_LOG_DIR": str(log_dir), **extra}


def lastmile(*argv: str, log_dir: Path, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lastmile", *argv], cwd=REPO_ROOT, env=environment(log_dir, **extra),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)


def assert_crash_reported(done: subprocess.CompletedProcess[str], log_dir: Path, cause: str) -> None:
    """Exit 5; one line naming the cause and where, the log's path, a fix; the traceback only in the log."""
    assert done.returncode == ExitCode.CRASHED, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    first, log_line, fix = done.stderr.strip().splitlines()[-3:]
    assert "failed unexpectedly (exit 5): " in first and cause in first and "(at " in first, first
    (log,) = log_dir.glob("crash-*.log")
    assert log_line.strip() == f"the full traceback is in {log}"
    assert fix.strip().startswith("fix: ")
    assert "Traceback (most recent call last)" in log.read_text() and cause in log.read_text()


# -- unexpected errors: exit 5 ------------------------------------------------------------------------------

@pytest.mark.parametrize("content", ["[]", '"running"', "{not json", ""], ids=["list", "string", "syntax", "empty"])
def test_a_corrupt_cluster_state_file_is_never_0_or_1_nor_a_traceback(tmp_path, content):
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    (workdir / "state.json").write_text(content)
    done = lastmile("cluster", "status", "--workdir", str(workdir), log_dir=tmp_path / "logs")
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode == ExitCode.CRASHED:  # not a case cluster.py names itself: the generic mapping
        assert_crash_reported(done, tmp_path / "logs", "Error")
    else:  # cluster.py says the file is unreadable and what to do
        assert done.returncode == ExitCode.UNAVAILABLE and "state.json" in done.stderr, done.stderr


def test_a_state_directory_that_cannot_be_made_is_exit_5(tmp_path):
    """Root passes every chmod, so the state directory is made impossible instead: its parent is a file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory's parent should be")
    done = lastmile("outputs", "onprem-gitops", log_dir=tmp_path / "logs",
                    LASTMILE_PULUMI_STATE_DIR=str(blocker / "state"))
    assert_crash_reported(done, tmp_path / "logs", "NotADirectoryError")
    assert str(blocker / "state") in done.stderr


def test_an_unexpected_error_in_any_verb_is_exit_5_with_its_log(tmp_path, monkeypatch, capsys):
    def broken(args: argparse.Namespace) -> int:
        raise KeyError("slots")

    parser = argparse.ArgumentParser(prog="lastmile")
    parser.add_subparsers(dest="command").add_parser("broken").set_defaults(func=broken)
    monkeypatch.setattr(cli, "build_parser", lambda verb=None: parser)
    monkeypatch.setenv("LASTMILE_LOG_DIR", str(tmp_path))
    assert cli.main(["broken"]) == ExitCode.CRASHED
    err = capsys.readouterr().err
    assert err.startswith("lastmile broken: failed unexpectedly (exit 5): KeyError: 'slots' (at tests/lastmile/")
    (log,) = tmp_path.glob("crash-*.log")
    assert "lastmile broken\n" in log.read_text() and 'raise KeyError("slots")' in log.read_text()


def test_a_refusal_and_a_usage_error_keep_their_codes(tmp_path):
    assert lastmile("policy", "aws-nowhere", log_dir=tmp_path).returncode == ExitCode.REFUSED
    assert lastmile("no-such-verb", log_dir=tmp_path).returncode == ExitCode.REFUSED
    assert not list(tmp_path.glob("crash-*.log"))


# -- signals: 130 and 143 -----------------------------------------------------------------------------------

@pytest.fixture
def silent_server():
    """A server that takes the request and never answers: a verb waiting on it is 'running'."""
    listener = socket.create_server(("127.0.0.1", 0))
    asked = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            asked.set()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", asked
    listener.close()
    for connection in held:
        connection.close()


@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, ExitCode.INTERRUPTED, "stopped by Ctrl-C"),
                                                (signal.SIGTERM, ExitCode.TERMINATED, "stopped by SIGTERM")],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_a_running_verb_is_its_code_and_one_line(tmp_path, silent_server, signum, code, said):
    url, asked = silent_server
    process = subprocess.Popen([sys.executable, "-m", "lastmile", "golden", "--stack", "onprem-local", "--url", url,
                                "--timeout", "120"], cwd=REPO_ROOT, env=environment(tmp_path), text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert asked.wait(60), "lastmile golden never asked the server"
        process.send_signal(signum)
        started = time.monotonic()
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == code, err
    assert time.monotonic() - started < 10
    assert err.strip() == f"lastmile golden: {said} (exit {int(code)})" and out == ""


# -- a reader that went away: 141, quiet ---------------------------------------------------------------------

@pytest.mark.parametrize("argv", [("policy", "aws-prod")], ids=" ".join)
def test_a_closed_output_pipe_is_a_quiet_exit(tmp_path, argv):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before lastmile writes, as `| head` is after its lines
    try:
        done = subprocess.run([sys.executable, "-m", "lastmile", *argv], cwd=REPO_ROOT, env=environment(tmp_path),
                              stdout=write, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, timeout=180)
    finally:
        os.close(write)
    assert done.returncode == ExitCode.BROKEN_PIPE and done.stderr == "", done.stderr


def test_head_of_a_verb_s_output_is_quiet(tmp_path):
    """`lastmile policy --all | head -2` in a shell: unbuffered, so line 3 (the next stack's, seconds after
    head has gone) meets the closed pipe."""
    script = f"{sys.executable} -m lastmile policy --all | head -2; echo \"exit ${{PIPESTATUS[0]}}\" >&2"
    done = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, env=environment(tmp_path, PYTHONUNBUFFERED="1"),
                          capture_output=True, text=True, timeout=300)
    assert len(done.stdout.splitlines()) == 2, done.stdout
    assert done.stderr == f"exit {int(ExitCode.BROKEN_PIPE)}\n", done.stderr
