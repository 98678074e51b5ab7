"""Shared fixtures: every Pulumi test runs under the recording mocks of lastmile.synthesis."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from lastmile.synthesis import Graph, run_with_mocks, synthesize


@pytest.fixture(autouse=True)
def _main_thread_event_loop() -> None:
    """``asyncio.run`` (used by tests of async code) leaves the main thread without an event loop, and
    the Pulumi mocks' ``_sync_await`` needs one: restore it, so no test depends on what ran before it."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture
def mock_run() -> Callable[..., Graph]:
    """Run a small program (a function returning its outputs) under fresh recording mocks.

    ``mock_run(lambda: {"arn": MyComponent("x", args).arn})`` -> Graph with every registration,
    its options and inputs (secrets masked), and the resolved outputs. preview=False: every
    apply runs, so asserting on the Graph never silently skips a check.
    """

    def run(program: Callable[[], dict[str, Any] | None], *, stack: str = "test", config: dict[str, str] | None = None,
            secret_keys: list[str] | None = None) -> Graph:
        return run_with_mocks(program, stack=stack, config=config or {}, secret_keys=secret_keys or [])

    return run


_GRAPHS: dict[str, Graph] = {}


@pytest.fixture
def stack_graph() -> Callable[[str], Graph]:
    """Synthesize a committed stack file (cached per stack for the session; graphs are not mutated)."""

    def get(stack: str) -> Graph:
        if stack not in _GRAPHS:
            _GRAPHS[stack] = synthesize(stack)
        return _GRAPHS[stack]

    return get


# The rungs that start servers, clusters and the engine run longest: collected first, and the Makefile's
# `pytest -n 3 --dist loadfile --no-loadscope-reorder` hands whole modules out in that order (xdist's
# default reorders them by test count, which can start a long module of few tests late and leave it
# running alone at the end). Each worker starts on a long module and the many quick ones fill in behind; three
# workers on two cores, because the long modules mostly wait on the engine and the cluster.
_LONG_FIRST = ("engine", "integration", "journeys", "serving")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        parts = item.path.relative_to(item.config.rootpath / "tests").parts
        return _LONG_FIRST.index(parts[0]) if len(parts) > 1 and parts[0] in _LONG_FIRST else len(_LONG_FIRST)

    items.sort(key=rank)  # stable: the order inside a module (and between equal ranks) is kept
