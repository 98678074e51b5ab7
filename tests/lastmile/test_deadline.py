"""lastmile.deadline with real processes: a copy of /bin/sh plays the engine, so only the processes a test
starts can match it (never another test's child)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lastmile.deadline import Deadline, descendants


@pytest.fixture
def fake_engine(tmp_path: Path) -> Path:
    program = tmp_path / "fake-engine"
    shutil.copy2(shutil.which("sh") or "/bin/sh", program)
    return program


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def _until(probe, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_descendants_lists_children_and_grandchildren(fake_engine: Path) -> None:
    engine = subprocess.Popen([str(fake_engine), "-c", "sleep 30 & sleep 30 & wait"])
    try:
        assert _until(lambda: len(descendants(engine.pid)) == 2)
        assert engine.pid in descendants(os.getpid())
        assert set(descendants(os.getpid())) >= {engine.pid, *descendants(engine.pid)}
    finally:
        for pid in (*descendants(engine.pid), engine.pid):
            os.kill(pid, 9)
        engine.wait(timeout=10)


def test_an_engine_that_stops_on_the_interrupt_is_not_killed(fake_engine: Path) -> None:
    said: list[str] = []
    # as the CLI does on SIGINT: stop its plugin, then exit non-zero
    engine = subprocess.Popen([str(fake_engine), "-c", "trap 'kill $!; exit 130' INT; sleep 30 & wait"])
    # Only once the shell waits: a SIGINT that lands while it is still starting (a loaded machine) can meet
    # the shell between its check for signals and its wait, and be handled only when the sleep ends.
    assert _until(lambda: len(descendants(engine.pid)) == 1)
    started = time.monotonic()
    with Deadline(0.5, program=fake_engine, grace_seconds=5, say=said.append) as deadline:
        code = engine.wait(timeout=20)
    assert code == 130
    assert 0.4 < time.monotonic() - started < 5
    assert deadline.fired and not deadline.killed
    assert "deadline of 0.5 s has passed" in said[0] and "interrupting the engine" in said[0] and len(said) == 1


def test_an_engine_that_ignores_the_interrupt_is_killed_with_everything_below_it(fake_engine: Path) -> None:
    said: list[str] = []
    engine = subprocess.Popen([str(fake_engine), "-c", "trap '' INT; sleep 300 & wait"])
    assert _until(lambda: len(descendants(engine.pid)) == 1)
    plugin = descendants(engine.pid)[0]
    with Deadline(0.3, program=fake_engine, grace_seconds=0.5, say=said.append) as deadline:
        code = engine.wait(timeout=20)
    assert code == -9
    assert deadline.fired and deadline.killed
    assert _until(lambda: _gone(plugin)), "the engine's child outlived the kill"
    assert "interrupting" in said[0] and "killing it and its plugins" in said[1] and str(plugin) in said[1]


def test_an_operation_that_ends_in_time_is_left_alone(fake_engine: Path) -> None:
    engine = subprocess.Popen([str(fake_engine), "-c", "sleep 0.2"])
    with Deadline(0.8, program=fake_engine, grace_seconds=0.2, say=lambda line: None) as deadline:
        assert engine.wait(timeout=20) == 0
    time.sleep(1.2)  # past the deadline and the grace: the timers were cancelled on the way out
    assert not deadline.fired and not deadline.killed


def test_other_programs_are_never_signalled(fake_engine: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-program"
    shutil.copy2(fake_engine, other)
    bystander = subprocess.Popen([str(other), "-c", "sleep 30"])
    try:
        with Deadline(0.2, program=fake_engine, grace_seconds=0.2, say=lambda line: None) as deadline:
            time.sleep(0.8)
        assert not deadline.fired and bystander.poll() is None
    finally:
        for pid in (*descendants(bystander.pid), bystander.pid):
            os.kill(pid, 9)
        bystander.wait(timeout=10)
