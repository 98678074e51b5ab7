"""What the tests of the higher rungs share: how a missing rung is reported, and a local moto server.

A rung that cannot be had here (the engine, the local cluster) skips its tests with the reason, except
under CI (``CI`` true), where they fail: a verification rung that silently disappears in CI is worse
than a red build.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(rung: str, reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI is set and {rung} is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port (every AWS API it emulates); yields its base URL."""
    from moto.server import ThreadedMotoServer

    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(level)
