"""The lastmile program: parse the stack's config once, run its topology's builder, export outputs."""

from __future__ import annotations

from typing import Any, Callable

import pulumi

from infra.settings.common import Topology
from infra.settings.loader import StackSettings, load_settings


def _builders() -> dict[Topology, Callable[[StackSettings], dict[str, Any]]]:
    from infra.topologies import aws, hybrid, onprem

    return {Topology.AWS: aws.build, Topology.ONPREM: onprem.build, Topology.HYBRID: hybrid.build}


def run() -> dict[str, Any]:
    """Build the stack. Config is validated before any resource is registered."""
    settings = load_settings()
    outputs = _builders()[settings.topology](settings)
    for key, value in sorted(outputs.items()):
        pulumi.export(key, value)
    return outputs
