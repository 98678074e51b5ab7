"""Journeys: every README command run as a user runs it, as a subprocess in a copy of the repository.

The copy is a git repository with one commit (as a clone is), so `plan --base HEAD` and `check-log --against`
work; no test here reaches a cloud, a cluster or the engine (refused input never gets that far).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from repo_copy import Checkout, copy_repo, git_init

# Variables of the machine the journey must not inherit: a CI run marks evidence as the workflow's.
_SCRUBBED = ("PULUMI_", "LASTMILE_", "AWS_", "GITHUB_", "CI")


def make_checkout(root: Path) -> Checkout:
    copy_repo(root)
    git_init(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env["PULUMI_CONFIG_PASSPHRASE"] = ""  # never prompt
    return Checkout(root=root, env=env)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    """One copy per test module; tests that change files restore them."""
    return make_checkout(tmp_path_factory.mktemp("repo"))


@pytest.fixture
def fresh_checkout(tmp_path: Path) -> Checkout:
    return make_checkout(tmp_path / "repo")
