"""A stack's lock through the real engine: a second operation while one holds the lock exits 3 naming the holder
and never breaks it; `lastmile cancel` releases a lock whose process is gone, and refuses one whose process runs.

The render-mode stack (onprem-gitops) needs no cluster. The holder is written as the engine writes it (the file
backend's lock file: pid, user, host, time), for a process this test starts: alive (a `sleep`), or ended.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine]
STACK = "onprem-gitops"


@pytest.fixture(scope="module")
def checkout(make_checkout):
    checkout = make_checkout("locks")
    first = checkout.lastmile("up", STACK)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return checkout


def lock(checkout, pid: int) -> Path:
    directory = checkout.root / ".pulumi-state" / ".pulumi" / "locks" / "organization" / "lastmile" / STACK
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4()}.json"
    path.write_text(json.dumps({"pid": pid, "username": "root", "hostname": socket.gethostname(),
                                "timestamp": datetime.now(UTC).isoformat()}))
    return path


def test_an_operation_on_a_locked_stack_exits_3_naming_the_holder_and_cancel_refuses_a_live_one(checkout) -> None:
    with subprocess.Popen(["sleep", "300"]) as holder:
        try:
            held = lock(checkout, holder.pid)
            second = checkout.lastmile("up", STACK)
            assert second.returncode == 3, second.stdout[-3000:] + second.stderr[-3000:]
            assert "another operation holds the stack's lock" in second.stderr and f"pid {holder.pid}" in second.stderr
            assert "Traceback" not in second.stdout + second.stderr and held.exists()
            cancel = checkout.lastmile("cancel", STACK)
            assert cancel.returncode == 2 and f"held by pid {holder.pid}, which is still running" in cancel.stderr
            assert held.exists(), "a running operation's lock was released"
        finally:
            holder.kill()
    held.unlink()


def test_cancel_releases_the_lock_of_a_process_that_is_gone_and_the_next_up_works(checkout) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    held = lock(checkout, gone.pid)
    cancel = checkout.lastmile("cancel", STACK)
    assert cancel.returncode == 0, cancel.stderr[-3000:]
    assert "released the lock left by a process that no longer runs" in cancel.stderr and not held.exists()
    again = checkout.lastmile("up", STACK)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    nothing = checkout.lastmile("cancel", STACK)
    assert nothing.returncode == 0 and "not locked" in nothing.stderr
