"""Pulumi.yaml read the way the engine reads it, so the offline path cannot drift from the engine again.

The engine treats a declared config key without a default as required, and validates declared types.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from infra.settings.loader import SECRET_KEYS, SECTIONS
from lastmile.synthesis import STACKS_DIR

PROJECT = yaml.safe_load((Path(__file__).resolve().parents[1] / "Pulumi.yaml").read_text())


def test_declared_keys_are_exactly_the_loaders_required_sections() -> None:
    declared = PROJECT.get("config") or {}
    required = {key for key, (_, is_required) in SECTIONS.items() if is_required}
    assert set(declared) == required
    assert not any("default" in spec for spec in declared.values()), "defaults live in the loader alone"
    assert not set(declared) & set(SECRET_KEYS)


def test_every_stack_sets_every_key_the_engine_requires() -> None:
    declared = PROJECT.get("config") or {}
    for path in sorted(STACKS_DIR.glob("Pulumi.*.yaml")):
        config = yaml.safe_load(path.read_text()).get("config") or {}
        missing = [key for key in declared if f"{PROJECT['name']}:{key}" not in config]
        assert not missing, f"{path.name}: the engine would refuse it, missing {missing}"
        for key, spec in declared.items():
            if spec.get("type") == "string":
                assert isinstance(config[f"{PROJECT['name']}:{key}"], str), (path.name, key)


def test_program_and_stacks_are_where_the_engine_looks() -> None:
    root = Path(__file__).resolve().parents[1]
    assert (root / PROJECT["main"] / "__main__.py").is_file()
    assert (root / PROJECT["stackConfigDir"]).resolve() == STACKS_DIR.resolve()
