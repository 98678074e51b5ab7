"""Kubernetes manifests from a synthesized graph.

The offline synthesis records each Kubernetes resource with the inputs the provider would send;
this turns them back into plain manifests (apiVersion, kind, metadata, body), so scanners,
schema validation and a real API server can judge exactly what the program declares.
Names left to auto-naming get the same stand-in the recording mocks give them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lastmile.synthesis import SECRET_MASK, Graph, Node, physical_name

_SKIP_TYPES = ("kubernetes:yaml", "kubernetes:helm", "kubernetes:kustomize")


def is_manifest(node: Node) -> bool:
    return node.type.startswith("kubernetes:") and node.custom and not node.type.startswith(_SKIP_TYPES)


def api_version(type_token: str) -> tuple[str, str]:
    """``kubernetes:apps/v1:Deployment`` -> (``apps/v1``, ``Deployment``); core group -> ``v1``."""
    _, group_version, kind = type_token.split(":")
    group, version = group_version.split("/")
    return (version if group == "core" else f"{group}/{version}"), kind


def to_manifest(node: Node) -> dict[str, Any]:
    version, kind = api_version(node.type)
    declared = (node.inputs.get("apiVersion", version), node.inputs.get("kind", kind))
    if declared != (version, kind):
        raise ValueError(f"{node.urn}: inputs declare {declared}, its type token says {(version, kind)}")
    body = {k: v for k, v in node.inputs.items() if k not in ("apiVersion", "kind", "metadata")}
    metadata = dict(node.inputs.get("metadata") or {})
    metadata.setdefault("name", physical_name(node.type, node.name))
    return {"apiVersion": version, "kind": kind, "metadata": metadata, **body}


def manifests(graph: Graph) -> list[dict[str, Any]]:
    """Every Kubernetes object of the graph, in a stable order (by kind, namespace, name)."""
    found = [to_manifest(n) for n in graph.nodes.values() if is_manifest(n)]
    return sorted(found, key=lambda m: (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]))


def has_masked_secret(manifest: dict[str, Any]) -> bool:
    """True when a value is only the offline placeholder of a secret (the engine would fill it in)."""

    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return value == SECRET_MASK

    return walk(manifest)


def files(graph: Graph) -> dict[str, str]:
    """One YAML text per object, by file name (``<kind>-<namespace>-<name>.yaml``)."""
    texts = {}
    for manifest in manifests(graph):
        meta = manifest["metadata"]
        stem = "-".join(p for p in (manifest["kind"].lower(), meta.get("namespace", ""), meta["name"]) if p)
        texts[f"{stem}.yaml"] = yaml.safe_dump(manifest, sort_keys=True)
    return texts


def write(graph: Graph, directory: Path) -> list[Path]:
    """Write ``files(graph)`` into ``directory`` (never through a symlink; lastmile.outputs); returns the paths."""
    from lastmile.outputs import write_files

    return write_files(directory, files(graph))
