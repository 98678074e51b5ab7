"""Fixtures of the serving tests: see serving_harness.py."""

from serving_harness import (  # noqa: F401  (fixtures)
    blue,
    green,
    green_server,
    make_pod,
    moto_backends,
    plain_store,
    processes,
    start_mlserver,
    tls,
    tls_store,
)
