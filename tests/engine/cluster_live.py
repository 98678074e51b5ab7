"""onprem-local on a local Kubernetes cluster through the real engine: what the tests of both cluster modules
share (the stack, the images, and ``Live``: kubectl on the cluster and edits of the checkout's stack file).

Two modules, each with its own cluster, so that under pytest-xdist they run side by side: most of their
time is waiting on the engine and the cluster, not computing.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lastmile import cluster as cluster_module

PLAIN = Path(__file__).resolve().parent / "plain_pulumi.py"
STACK = "onprem-local"
NAMESPACE = "lastmile-local"
SLOT_LABEL = "lastmile.dev/slot"
NEVER_READY_DIGEST = cluster_module.NEVER_READY_DIGEST
NEVER_READY_IMAGE = "docker.io/seldonio/mlserver@" + NEVER_READY_DIGEST
# Never ready too, but a pod template no earlier test used. Going back to a template whose ReplicaSet exists
# (scaled to 0) is a path where pulumi-kubernetes 4.25.0's await can report the rollout complete before the
# ReplicaSet is scaled up (docs/design-notes.md): the deadline test needs an up that really waits.
FRESH_NEVER_READY_IMAGE = "docker.io/lastmile/deadline-probe@" + cluster_module.NEVER_READY_DIGEST


class Live:
    def __init__(self, checkout: Any, cluster: Any, engine_bin: Path) -> None:
        self.checkout = checkout
        self.cluster = cluster
        self.engine_bin = engine_bin

    def plain(self, verb: str = "up") -> subprocess.CompletedProcess[str]:
        """`pulumi up`/`preview` of the checkout's program alone, as a workstation or the official action runs
        it: no lastmile check around it (tests/engine/plain_pulumi.py)."""
        env = {**self.checkout.env, "PULUMI_HOME": self.checkout.env["LASTMILE_PULUMI_HOME"],
               "PULUMI_BIN_DIR": str(self.engine_bin)}
        return subprocess.run([sys.executable, str(PLAIN), verb, STACK], cwd=self.checkout.root, env=env,
                              capture_output=True, text=True, timeout=600, check=False)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`lastmile ARGS` started in the background, in a session of its own: a signal sent to its pid reaches
        lastmile alone (as `timeout -s INT` or a process manager sends it), not the engine below it."""
        return subprocess.Popen(self.checkout.lastmile_argv(*args), cwd=self.checkout.root, env=self.checkout.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def locks(self) -> list[Path]:
        return sorted((self.checkout.root / ".pulumi-state" / ".pulumi" / "locks").glob("**/*.json"))

    def orphaned_plugins(self) -> list[int]:
        """Provider plugins of this checkout's engine home left running without their engine (parent: init)."""
        home = Path(self.checkout.env["LASTMILE_PULUMI_HOME"]).resolve()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                exe = Path(os.readlink(entry / "exe"))
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if home in exe.parents and int(stat[stat.rindex(")") + 2:].split()[1]) == 1:
                found.append(int(entry.name))
        return found

    def edit_slot(self, slot: str, image: str) -> None:
        """Give ``slot`` another image in the checkout's stack file."""
        path = self.checkout.stack_file(STACK)
        path.write_text(with_image(path.read_text(), slot, image))

    def kubectl(self, *args: str) -> Any:
        result = subprocess.run(["kubectl", "--kubeconfig", str(self.cluster.kubeconfig_path), *args],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if "-o" in args and "json" in args else result.stdout

    def pods(self) -> list[dict[str, Any]]:
        return self.kubectl("-n", NAMESPACE, "get", "pods", "-o", "json")["items"]

    def stable_service(self) -> dict[str, Any]:
        """The router's stable Service: the one that sends traffic to the active slot."""
        services = self.kubectl("-n", NAMESPACE, "get", "svc", "-o", "json")["items"]
        return next(s for s in services if s["metadata"]["name"].startswith("iris-classifier-router-stable"))

    def stable_endpoint_ips(self) -> set[str]:
        """Ready addresses of the stable Service's EndpointSlices."""
        stable = self.stable_service()["metadata"]["name"]
        slices = self.kubectl("-n", NAMESPACE, "get", "endpointslices", "-l", f"kubernetes.io/service-name={stable}",
                              "-o", "json")["items"]
        return {address for s in slices for e in (s.get("endpoints") or [])
                if (e.get("conditions") or {}).get("ready") for address in e["addresses"]}

    def slot_ips(self, slot: str, *, ready: bool = True) -> set[str]:
        return {p["status"]["podIP"] for p in self.pods()
                if p["metadata"]["labels"].get(SLOT_LABEL) == slot and p["status"].get("podIP")
                and pod_ready(p) == ready}

    def edit_stack(self, pattern: str, replacement: str) -> None:
        path = self.checkout.stack_file(STACK)
        text = path.read_text()
        changed = re.sub(pattern, replacement, text, flags=re.M)
        assert changed != text, pattern
        path.write_text(changed)


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def until(probe: Any, timeout_seconds: float = 60) -> Any:
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def ok(result: Any) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-3000:]}"


def with_image(text: str, slot: str, image: str) -> str:
    """The stack file ``text`` with ``slot``'s image replaced."""
    start = text.index(f"      {slot}:")
    return text[:start] + re.sub(r"(        image: )\S+", rf"\g<1>{image}", text[start:], count=1)


def stable_selector(live: Live) -> str:
    """The slot the stable Service selects."""
    return live.stable_service()["spec"]["selector"][SLOT_LABEL]


def deployment(live: Live, slot: str) -> dict[str, Any]:
    deployments = live.kubectl("-n", NAMESPACE, "get", "deploy", "-o", "json")["items"]
    return next(d for d in deployments if d["metadata"]["name"].startswith(f"iris-classifier-{slot}-deployment"))


def active_and_idle(text: str) -> tuple[str, str]:
    """(active slot, idle slot) of the stack file ``text``."""
    active = re.search(r"^    active_slot: (blue|green)$", text, re.M)
    assert active, "no active_slot in the stack file"
    return active[1], "green" if active[1] == "blue" else "blue"


@contextlib.contextmanager
def golden_server(live: Live, slot: str, then: Any = None) -> Iterator[str]:
    """A V2 endpoint on 127.0.0.1 that answers the golden set of ``slot``'s release (as the checkout's stack
    file names it now) with the expected labels and probabilities: the stand-in for the slot's preview Service
    (the local cluster runs no containers). ``then`` runs once, before the first answer is sent."""
    from lastmile.golden import load_golden_set

    release = re.search(rf"^      {slot}:\n(?:        .*\n)*?        version: (\S+)$",
                        live.checkout.stack_file(STACK).read_text(), re.M)
    assert release, f"no release for slot {slot}"
    golden = load_golden_set("iris-classifier", release[1])
    answer = json.dumps({"model_name": golden.model, "model_version": golden.version, "outputs": [
        {"name": "label", "datatype": "BYTES", "shape": [len(golden.rows)], "data": [r.label for r in golden.rows]},
        {"name": "probabilities", "datatype": "FP64", "shape": [len(golden.rows), len(golden.rows[0].probabilities)],
         "data": [p for r in golden.rows for p in r.probabilities]}]}).encode()
    pending = [then] if then is not None else []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            while pending:
                pending.pop()()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
