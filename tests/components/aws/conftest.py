"""Fixtures of the AWS component tests (constants live in aws_constants.py)."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from lastmile.synthesis import Node


@pytest.fixture
def document() -> Callable[[Node, str], dict[str, Any]]:
    """The parsed JSON policy document in ``node.inputs[field]``."""

    def parse(node: Node, field: str = "policy") -> dict[str, Any]:
        return json.loads(node.inputs[field])

    return parse
