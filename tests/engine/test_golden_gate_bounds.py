"""`lastmile up --golden-url` is bounded as a whole: a golden server that drips a byte every 2 s cannot keep the
up alive past `--timeout` (the gate's request gets at most what the up's deadline allows), and a malformed URL is
refused before the engine starts. Render-mode stack, real engine, no cluster."""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytestmark = [pytest.mark.engine]
STACK = "onprem-gitops"


def test_a_dripping_golden_server_cannot_outlive_the_timeout(make_checkout) -> None:
    checkout = make_checkout("golden-bounds")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        listener.settimeout(60)
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(2):
                try:
                    connection.sendall(b"{")
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        result = checkout.lastmile("up", STACK, "--golden-url", f"http://127.0.0.1:{listener.getsockname()[1]}",
                                   "--timeout", "10")
    finally:
        stop.set()
        listener.close()
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert "could not ask" in result.stderr and "nothing was deployed" in result.stderr
    assert elapsed < 40, f"{elapsed:.0f} s: the golden request outlived --timeout 10"
    assert "Traceback" not in result.stdout + result.stderr


def test_a_malformed_golden_url_is_refused_before_the_engine(make_checkout) -> None:
    checkout = make_checkout("golden-url")
    for url in ("http://[::1", "http://127.0.0.1:abc"):
        result = checkout.lastmile("up", STACK, "--golden-url", url)
        assert result.returncode == 2 and "--golden-url" in result.stderr, result.stderr[-2000:]
        assert not (checkout.root / ".pulumi-state").exists(), "the engine started"
