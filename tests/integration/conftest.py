"""Fixtures for the tests against a real local Kubernetes control plane (lastmile/cluster.py, tools/kube/).

``kube_bin`` builds or finds the binaries (tools/kube/bootstrap.sh). When that fails the tests skip
with the bootstrap's error, except under CI (``CI`` set to true), where they fail: a verification
rung that silently disappears in CI is worse than a red build.

``start_cluster`` starts etcd + kube-apiserver only (objects admitted, nothing runs them);
``local_cluster`` is one whole cluster (controllers, scheduler, kwok nodes) shared by the session.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rungs import unavailable

from lastmile import cluster as local

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_TOOLS = REPO_ROOT / "tools" / "kube"
BOOTSTRAP_TIMEOUT_SECONDS = 60 * 60  # a cold build takes ~15 min on 2 cores; a warm one < 1 s
START_TIMEOUT_SECONDS = 60
KUBECTL_TIMEOUT_SECONDS = 60
CLUSTER_START_TIMEOUT_SECONDS = 180


def _unavailable(reason: str) -> None:
    unavailable("the local Kubernetes API server", reason)


@pytest.fixture(scope="session")
def kube_bin() -> Path:
    """The directory with the cluster's binaries, built or taken from the cache by bootstrap.sh."""
    try:
        result = subprocess.run([str(KUBE_TOOLS / "bootstrap.sh")], capture_output=True, text=True,
                                timeout=BOOTSTRAP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        _unavailable(f"tools/kube/bootstrap.sh did not finish within {BOOTSTRAP_TIMEOUT_SECONDS} s")
    if result.returncode != 0:
        _unavailable(f"tools/kube/bootstrap.sh failed (exit {result.returncode}):\n{result.stderr.strip()[-3000:]}")
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def kubectl_path() -> str:
    found = shutil.which("kubectl")
    if not found:
        _unavailable("kubectl is not on PATH (the tests drive the API server with it)")
    return found


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one local API server (own discovery cache, bounded run time)."""

    binary: str
    kubeconfig: Path
    cache_dir: Path

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args],
            input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_SECONDS,
        )


@dataclass(frozen=True)
class Cluster:
    """A running local API server and a kubectl for it (as the cluster admin)."""

    url: str
    token: str
    ca_cert_path: Path
    kubectl: Kubectl
    start_seconds: float

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                as_user: str | None = None, as_group: str | None = None) -> tuple[int, Any]:
        """One REST call as the admin, or impersonating ``as_user`` (and ``as_group``): (status, JSON body).

        For what kubectl cannot express, e.g. a PATCH without the GET that ``kubectl patch`` sends first.
        """
        status, answer, _ = self.call(method, path, body, content_type=content_type, as_user=as_user,
                                      as_group=as_group)
        return status, answer

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             as_user: str | None = None, as_group: str | None = None) -> tuple[int, Any, list[str]]:
        """``request``, with the server's warnings too (its ``Warning`` response headers)."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json", "Content-Type": content_type}
        if as_user:
            headers["Impersonate-User"] = as_user
        if as_group:
            headers["Impersonate-Group"] = as_group
        request = urllib.request.Request(f"{self.url}{path}", method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        context = ssl.create_default_context(cafile=str(self.ca_cert_path))
        try:
            with urllib.request.urlopen(request, timeout=KUBECTL_TIMEOUT_SECONDS, context=context) as response:
                return response.status, json.loads(response.read() or b"null"), response.headers.get_all("Warning") or []
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), error.headers.get_all("Warning") or []


@pytest.fixture(scope="session")
def start_cluster(kube_bin: Path, kubectl_path: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], AbstractContextManager[Cluster]]:
    """``with start_cluster("name") as cluster:`` a fresh etcd + kube-apiserver, stopped on exit.

    A server that does not start raises ClusterStartError with both servers' log tails.
    """
    local_apiserver = local.local_apiserver

    @contextmanager
    def start(name: str) -> Iterator[Cluster]:
        base = tmp_path_factory.mktemp(f"kube-{name}")
        started = time.monotonic()
        with local_apiserver(kube_bin, base / "server", start_timeout_seconds=START_TIMEOUT_SECONDS) as api:
            kubectl = Kubectl(kubectl_path, api.kubeconfig_path, base / "kubectl-cache")
            yield Cluster(url=api.url, token=api.token, ca_cert_path=api.ca_cert_path, kubectl=kubectl,
                          start_seconds=time.monotonic() - started)

    return start


@dataclass(frozen=True)
class LocalCluster:
    """The session's whole local cluster (lastmile.cluster.Cluster) and a kubectl for it."""

    cluster: local.Cluster
    kubectl: Kubectl
    start_seconds: float


@pytest.fixture(scope="session")
def local_cluster(kube_bin: Path, kubectl_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok with two fake nodes) for
    the tests that only read or use their own namespaces; stopped, its directory removed, at session end."""
    base = tmp_path_factory.mktemp("local-cluster")
    started = time.monotonic()
    try:
        context = local.local_cluster(base / "cluster", kube_bin, timeout_seconds=CLUSTER_START_TIMEOUT_SECONDS)
        running = context.__enter__()
    except local.ClusterUnavailable as error:
        _unavailable(str(error))
    try:
        yield LocalCluster(running, Kubectl(kubectl_path, running.kubeconfig_path, base / "kubectl-cache"),
                           time.monotonic() - started)
    finally:
        context.__exit__(None, None, None)
