"""A deadline for one engine operation: an ``up`` that has not returned by then is interrupted, not waited on.

The Automation API runs the Pulumi CLI as a child of this process, and the CLI runs the provider plugins
as its children. When the deadline passes, the CLI gets SIGINT -- what Ctrl-C sends: the engine asks the
providers to cancel what is in flight, records what finished in the stack's state, releases the stack's
lock and exits non-zero. If the CLI is still running ``grace_seconds`` later, the CLI and every process
below it get SIGKILL (collected first, so no plugin is orphaned and left holding the CLI's pipes).

Linux only, like the local cluster: processes are found through ``/proc``.

    with Deadline(seconds, program=bin_dir / "pulumi") as deadline:
        stack.up(...)
    deadline.fired, deadline.killed
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

GRACE_SECONDS = 60.0
"""How long the CLI has to stop after SIGINT before it and its plugins are killed."""


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process this user can see."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first, then theirs), at the time of the call."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, queue = [], list(children.get(pid, ()))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current, ()))
    return found


def _program_of(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


class Deadline:
    """Interrupt the children of this process that run ``program`` after ``seconds``; kill them (and
    everything below them) ``grace_seconds`` after that if they are still there."""

    def __init__(self, seconds: float, *, program: Path, grace_seconds: float = GRACE_SECONDS,
                 say: Callable[[str], None] | None = None) -> None:
        self.seconds = seconds
        self.program = program.resolve()
        self.grace_seconds = grace_seconds
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.fired = False
        self.killed = False
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()

    def _engine_processes(self) -> list[int]:
        return [pid for pid in descendants(os.getpid()) if _program_of(pid) == self.program]

    def _start(self, seconds: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _interrupt(self) -> None:
        self.interrupt(f"lastmile: the deadline of {self.seconds:g} s has passed; interrupting the engine as Ctrl-C "
                       f"does (it cancels what is in flight and records what finished)")

    def interrupt(self, message: str, *, forward: bool = True) -> None:
        """Interrupt the engine now (the deadline, or a signal that reached lastmile): SIGINT to the CLI
        unless ``forward`` is False (a Ctrl-C at the terminal reached it already), then the kill after the
        grace period if it has not stopped."""
        with self._lock:
            if self.fired:
                return
            engines = self._engine_processes()
            if not engines:
                return
            self.fired = True
            self.say(message)
            if forward:
                for pid in engines:
                    _signal(pid, signal.SIGINT)
            self._start(self.grace_seconds, self._kill)

    def _kill(self) -> None:
        self.kill_now(f"lastmile: the engine did not stop within {self.grace_seconds:g} s of the interrupt; "
                      "killing it and its plugins")

    def kill_now(self, message: str) -> None:
        """Kill the engine and every process below it now."""
        with self._lock:
            engines = self._engine_processes()
            if not engines:
                return
            tree = [pid for engine in engines for pid in (engine, *descendants(engine))]
            self.killed = True
            self.say(f"{message} (pids {' '.join(map(str, tree))})")
            for pid in tree:
                _signal(pid, signal.SIGKILL)

    def __enter__(self) -> Deadline:
        self._start(self.seconds, self._interrupt)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        with self._lock:
            for timer in self._timers:
                timer.cancel()
