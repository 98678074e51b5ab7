"""The lastmile program: parse the stack's config once, run its topology's builder, export outputs."""

from __future__ import annotations

import importlib
from typing import Any

import pulumi

from infra.settings.loader import load_settings


def run() -> dict[str, Any]:
    """Build the stack. Config is validated before any resource is registered.

    The builder of the stack's topology is ``infra.topologies.<topology>.build``; only that module is
    imported, so a stack never loads (or depends on) another topology's components.
    """
    settings = load_settings()
    builder = importlib.import_module(f"infra.topologies.{settings.topology.value}")
    outputs = {**builder.build(settings), "environment": settings.environment.value}  # policy rules read it
    for key, value in sorted(outputs.items()):
        pulumi.export(key, value)
    return outputs
