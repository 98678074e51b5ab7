"""Fixtures for the tests that run the real Pulumi engine (tools/engine/bootstrap.sh).

Every test here works on a copy of the repository (its tracked and unignored files, as a fresh clone
has them plus the work in progress) and runs `lastmile` there as a subprocess, the way a user does, with
the engine's state and home in the copy. When the engine cannot be had the tests skip with the
bootstrap's reason, except under CI (``CI`` true), where they fail: a rung that silently disappears in
CI is worse than a red build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO_ROOT / "tools" / "engine" / "bootstrap.sh"
COMMAND_TIMEOUT_SECONDS = 600


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI is set and the Pulumi engine is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


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


@dataclass
class Checkout:
    """A copy of the repository in which `lastmile` runs as a user runs it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def lastmile_argv(self, *args: str) -> list[str]:
        """``python -m lastmile ARGS``: run with the copy as working directory, its packages shadow the install."""
        return [sys.executable, "-m", "lastmile", *args]

    def lastmile(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.lastmile_argv(*args), cwd=self.root, capture_output=True, text=True,
                              env={**self.env, **(extra_env or {})}, timeout=COMMAND_TIMEOUT_SECONDS, check=False)

    def stack_file(self, stack: str) -> Path:
        return self.root / "stacks" / f"Pulumi.{stack}.yaml"


@pytest.fixture(scope="session")
def engine_bin() -> Path:
    """The engine's bin directory (built once, cached by version under the home directory)."""
    if not BOOTSTRAP.is_file():
        unavailable(f"{BOOTSTRAP} is missing")
    try:
        result = subprocess.run([str(BOOTSTRAP)], capture_output=True, text=True, timeout=90 * 60, check=False)
    except subprocess.TimeoutExpired:
        unavailable("tools/engine/bootstrap.sh did not finish within 90 min")
    if result.returncode != 0:
        unavailable(f"tools/engine/bootstrap.sh failed (exit {result.returncode}):\n{result.stderr.strip()[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def make_checkout(engine_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Checkout]:
    """A factory of repository copies sharing one PULUMI_HOME (the plugin is installed once)."""
    home = tmp_path_factory.mktemp("pulumi-home")

    def make(name: str) -> Checkout:
        root = copy_repo(tmp_path_factory.mktemp(name))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LASTMILE_", "AWS_"))}
        env["LASTMILE_PULUMI_HOME"] = str(home)
        return Checkout(root=root, env=env)

    return make
