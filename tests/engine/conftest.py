"""Fixtures for the tests that run the real Pulumi engine (tools/engine/bootstrap.sh).

Every test here works on a copy of the repository (its tracked and unignored files, as a fresh clone
has them plus the work in progress) and runs `lastmile` there as a subprocess, the way a user does, with
the engine's state and home in the copy. When the engine cannot be had the tests skip with the
bootstrap's reason, except under CI (``CI`` true), where they fail: a rung that silently disappears in
CI is worse than a red build.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rungs
from cluster_live import Live
from repo_copy import Checkout, copy_repo

from lastmile import cluster as cluster_module

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO_ROOT / "tools" / "engine" / "bootstrap.sh"


def unavailable(reason: str) -> None:
    rungs.unavailable("the Pulumi engine", reason)


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


@pytest.fixture(scope="module")
def live(make_checkout: Callable[[str], Checkout], engine_bin: Path,
         request: pytest.FixtureRequest) -> Iterator[Live]:
    """A repository copy with a local cluster of its own, for one module (the cluster modules run side by side)."""
    checkout = make_checkout(request.module.__name__.rsplit(".", 1)[-1])
    with cluster_module.local_cluster(checkout.root / ".lastmile" / "cluster") as cluster:
        yield Live(checkout, cluster, engine_bin)
