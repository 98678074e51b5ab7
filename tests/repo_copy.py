"""A copy of the repository in which `lastmile` runs as a user runs it (journey and engine tests).

``copy_repo`` copies the tracked and unignored files (what a clone has, plus the work in progress);
``Checkout.lastmile(...)`` runs ``python -m lastmile ...`` there as a subprocess, so the copy's packages
shadow the installed ones and every file the command writes lands in the copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT_SECONDS = 600


def copy_repo(dest: Path) -> Path:
    """Copy the repository's tracked and unignored files (what a clone plus the work in progress has)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if not source.is_file():
            continue  # deleted in the work tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def git_init(root: Path) -> None:
    """Make the copy a git repository with one commit (HEAD), as a clone is: plan and check-log need git."""
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin"}
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run(["git", *argv], cwd=root, env=env, check=True, capture_output=True)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256: compare before/after to prove nothing was written. Not
    .git, nor the interpreter's bytecode cache (``__pycache__``: Python's, written on a first import)."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not {".git", "__pycache__"} & set(path.relative_to(root).parts)}


@dataclass
class Checkout:
    """A copy of the repository in which `lastmile` runs as a user runs it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def lastmile_argv(self, *args: str) -> list[str]:
        """``python -m lastmile ARGS``: run with the copy as working directory, its packages shadow the install."""
        return [sys.executable, "-m", "lastmile", *args]

    def lastmile(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run it; past COMMAND_TIMEOUT_SECONDS its whole process group is killed (the engine and its
        provider plugins with it, not only the Python process) and TimeoutExpired raised."""
        argv = self.lastmile_argv(*args)
        with subprocess.Popen(argv, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**self.env, **(extra_env or {})}, start_new_session=True) as process:
            try:
                stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
                raise subprocess.TimeoutExpired(argv, COMMAND_TIMEOUT_SECONDS, stdout, stderr) from None
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    def stack_file(self, stack: str) -> Path:
        return self.root / "stacks" / f"Pulumi.{stack}.yaml"
