"""What a `lastmile destroy` does with the stack's namespace, which Pulumi itself never deletes.

The program creates the serving namespace with a provider that refuses to take over an existing one, labels
it ``lastmile.dev/owner: <stack>``, and keeps it on delete (components/k8s/namespace.py): deleting a namespace
deletes everything in it, and other teams may have put things there. After the engine has destroyed what the
stack created, ``release_namespace`` deletes the namespace only when it is labelled as this stack's and
nothing is left in it but what Kubernetes puts into every namespace; otherwise it is kept, and the message
names what kept it. Plain `pulumi destroy` keeps it in every case.

Talks to the cluster with ``kubectl`` and the stack's kubeconfig; reads and deletes nothing else.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

OWNER_LABEL = "lastmile.dev/owner"  # components.k8s.namespace.OWNER_LABEL, without importing the SDK
# What Kubernetes itself puts into every namespace (kind, name); events come and go with everything.
BUILT_IN = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}
IGNORED_KINDS = {"Event"}
KUBECTL_TIMEOUT_SECONDS = 60


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=KUBECTL_TIMEOUT_SECONDS, check=False)


def leftovers(kubeconfig: Path, namespace: str) -> list[str]:
    """``Kind/name`` of every object in ``namespace`` that Kubernetes did not put there itself."""
    kinds = _kubectl(kubeconfig, "api-resources", "--verbs=list,delete", "--namespaced", "-o", "name")
    if kinds.returncode != 0:
        raise RuntimeError(kinds.stderr.strip() or "kubectl api-resources failed")
    names = [k for k in kinds.stdout.split() if k.split(".")[0] not in ("events", "endpoints", "endpointslices")]
    listed = _kubectl(kubeconfig, "get", ",".join(names), "-n", namespace, "-o", "json", "--ignore-not-found")
    if listed.returncode != 0 or not listed.stdout.strip():
        if listed.returncode != 0:
            raise RuntimeError(listed.stderr.strip() or "kubectl get failed")
        return []
    found = []
    for item in json.loads(listed.stdout).get("items", []):
        kind, name = item.get("kind", "?"), item.get("metadata", {}).get("name", "?")
        if kind in IGNORED_KINDS or (kind, name) in BUILT_IN:
            continue
        found.append(f"{kind}/{name}")
    return sorted(found)


def release_namespace(kubeconfig: Path, namespace: str, stack: str) -> str:
    """Delete ``namespace`` when it is ``stack``'s own and empty; say what was done either way."""
    got = _kubectl(kubeconfig, "get", "namespace", namespace, "-o", "json", "--ignore-not-found")
    if got.returncode != 0:
        return f"namespace {namespace} was kept: the cluster could not be asked about it ({got.stderr.strip()})"
    if not got.stdout.strip():
        return f"namespace {namespace} is gone"
    owner = (json.loads(got.stdout).get("metadata", {}).get("labels") or {}).get(OWNER_LABEL)
    if owner != stack:
        label = f"{OWNER_LABEL}: {owner}" if owner is not None else f"no {OWNER_LABEL} label"
        return f"namespace {namespace} was kept: it is not labelled as {stack}'s ({label}), so this stack did not create it"
    try:
        left = leftovers(kubeconfig, namespace)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return f"namespace {namespace} was kept: what is left in it could not be listed ({error})"
    if left:
        shown = ", ".join(left[:8]) + (f" and {len(left) - 8} more" if len(left) > 8 else "")
        return (f"namespace {namespace} was kept: it holds objects this stack did not create ({shown}); delete "
                f"them, or the namespace, by hand when they are no longer needed")
    deleted = _kubectl(kubeconfig, "delete", "namespace", namespace, "--wait=true", "--timeout=120s")
    if deleted.returncode != 0:
        return f"namespace {namespace} was kept: deleting it failed ({deleted.stderr.strip()})"
    return f"namespace {namespace} was deleted (this stack created it, and nothing else was left in it)"
