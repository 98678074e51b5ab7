"""Every wait of the golden check is bounded: malformed URLs are refused before any network call, a
server that drips bytes is cut off at the request's total timeout, one that streams forever at the size
cap, and an answer nested deeper than the JSON parser goes is a broken contract, not a RecursionError.

The servers here are small stdlib ones on 127.0.0.1 (no model server needed): the golden check must hold
whatever the other end does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from lastmile import golden
from lastmile.common import REPO_ROOT
from lastmile.exitcodes import ExitCode

MODEL = "iris-classifier"


@pytest.fixture(scope="module")
def pinned() -> golden.GoldenSet:
    return golden.load_golden_set(MODEL, "1.1.0")


def read_request(connection: socket.socket) -> None:
    """The whole request (head and Content-Length body): closing with unread bytes would reset the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that reads the request head and lets ``answer`` write whatever it wants."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(30)
                try:
                    read_request(connection)
                    answer(connection)
                except OSError:
                    pass  # the client hung up: what a bounded client does

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def drip(connection: socket.socket) -> None:
    """Headers, then one byte of body every 0.5 s: each socket read succeeds, the answer never completes."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(200):
        connection.sendall(b" ")
        time.sleep(0.5)


def drip_headers(connection: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
        connection.sendall(bytes([byte]))
        time.sleep(0.5)


def endless(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    block = b"[" * 65536
    while True:
        connection.sendall(block)


def fixed(body: bytes, status: int = 200) -> Callable[[socket.socket], None]:
    def answer(connection: socket.socket) -> None:
        connection.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                           f"\r\nConnection: close\r\n\r\n".encode() + body)
    return answer


# -- the URL, before any network call -----------------------------------------------------------------------

MALFORMED = {
    "http://[::1": "not a URL (Invalid IPv6 URL)",
    "http://127.0.0.1:abc": "not a URL (Port could not be cast",
    "http://127.0.0.1:99999": "not a URL (Port out of range",
    "http://127.0.0.1:0": "port missing or 0",
    "http://127.0.0.1:": "port missing or 0",
    "ftp://127.0.0.1/": "scheme ftp://",
    "file:///etc/passwd": "scheme file://",
    "127.0.0.1:8080": "scheme missing",
    "localhost": "scheme missing",
    "http://": "no host",
    "http://a b": "holds a space",
    "http://host\n": "holds a space or a control character",
    "http://user:pw@127.0.0.1:8080": "carries a user or password",
    "http://127.0.0.1:8080/?x=1": "has a query or a fragment",
    "http://127.0.0.1:8080/#f": "has a query or a fragment",
    "http://-bad-/": "host '-bad-' is not a host name",
    "http://a..b/": "host 'a..b' is not a host name",
    "http://[zz::1]/": "not a URL",
    "": "empty",
}


@pytest.mark.parametrize("url", MALFORMED, ids=repr)
def test_a_malformed_url_is_refused_naming_option_value_allowed_and_fix(url, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network call was made for a malformed URL")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(golden.GoldenError) as refused:
        golden.validate_url(url, option="--golden-url")
    message = str(refused.value)
    assert message.startswith(f"--golden-url {url!r}: ") and MALFORMED[url] in message, message
    assert "allowed: http(s)://host[:port][/prefix]" in message and "fix: " in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://model.example.com/prefix/", "http://[::1]:8080",
                                 "HTTP://LOCALHOST:1", "http://preview.lastmile.svc.cluster.local."])
def test_well_formed_urls_pass(url):
    assert golden.validate_url(url) == url


def run_lastmile(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "lastmile", *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:abc", "ftp://x"])
def test_the_verb_refuses_a_malformed_url_with_exit_2_and_no_traceback(url):
    done = run_lastmile("golden", "--stack", "onprem-local", "--url", url)
    assert done.returncode == ExitCode.REFUSED, done.stderr
    assert f"--url {url!r}: " in done.stderr and "fix: " in done.stderr and "Traceback" not in done.stderr


# -- the wait, in time and in size ---------------------------------------------------------------------------

@pytest.mark.parametrize("server", [drip, drip_headers], ids=["body", "headers"])
def test_a_dripping_server_is_cut_off_at_the_total_timeout(pinned, server):
    with raw_server(server) as url:
        started = time.monotonic()
        with pytest.raises(golden.EndpointUnavailable, match=r"no complete answer within 2 s"):
            golden.check_v2(pinned, url, timeout_seconds=2)
        elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 4, f"the request ran {elapsed:.1f} s with a 2 s timeout"


def test_the_verb_ends_a_dripping_server_with_exit_3_within_its_timeout():
    with raw_server(drip) as url:
        started = time.monotonic()
        done = run_lastmile("golden", "--stack", "onprem-local", "--url", url, "--timeout", "3")
        elapsed = time.monotonic() - started
    assert done.returncode == ExitCode.UNAVAILABLE, done.stderr
    assert "no complete answer within 3 s" in done.stderr and "Traceback" not in done.stderr
    assert elapsed < 15, f"lastmile golden --timeout 3 ran {elapsed:.1f} s"


def test_an_endless_answer_stops_at_the_size_cap(pinned):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with raw_server(endless) as url:
        result = golden.check_v2(pinned, url, timeout_seconds=20)
    assert not result.passed and f"larger than {golden.MAX_ANSWER_BYTES} bytes" in result.problem
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"reading the endless answer grew the process by {grown_kib} KiB"


def test_a_declared_length_past_the_cap_is_not_read(pinned):
    def huge(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n{")
        time.sleep(5)

    with raw_server(huge) as url:
        started = time.monotonic()
        result = golden.check_v2(pinned, url, timeout_seconds=20)
    assert "Content-Length 999999999999" in result.problem and time.monotonic() - started < 4


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"outputs": ' + b"[" * 50_000])
def test_deeply_nested_json_is_a_broken_contract_not_a_recursion_error(pinned, body):
    with raw_server(fixed(body)) as url:
        result = golden.check_v2(pinned, url, timeout_seconds=10)
    assert not result.passed and "the answer does not follow the contract" in result.problem, result.problem
    with pytest.raises(ValueError):
        golden.parse_sagemaker_response(body)


@pytest.mark.parametrize("body", [b"null", b'"x"', b"[]", b'{"outputs": {"a": 1}}', b'{"outputs": [[1]]}',
                                  b"\xff\xfe", b'{"outputs": [{"name": "label", "data": 1}]}'])
def test_answers_of_the_wrong_shape_are_broken_contracts(pinned, body):
    with raw_server(fixed(body)) as url:
        result = golden.check_v2(pinned, url, timeout_seconds=10)
    assert not result.passed and result.problem.startswith("the answer does not follow the contract")


def test_an_unavailable_status_is_unavailable_and_others_are_findings(pinned):
    with raw_server(fixed(b"down", 503)) as url, pytest.raises(golden.EndpointUnavailable, match="HTTP 503: down"):
        golden.check_v2(pinned, url, timeout_seconds=10)
    with raw_server(fixed(b"bad rows", 400)) as url:
        assert "HTTP 400 for the golden rows: bad rows" in golden.check_v2(pinned, url, timeout_seconds=10).problem


def test_a_missing_ca_file_is_refused(pinned, tmp_path):
    with pytest.raises(golden.GoldenError, match="--ca-file .*not a readable PEM CA bundle"):
        golden.check_v2(pinned, "https://127.0.0.1:1", ca_file=str(tmp_path / "missing.pem"))
