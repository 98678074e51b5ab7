"""policy/__main__.py wires every rule into a mandatory CrossGuard pack (imported with PolicyPack faked:
a real PolicyPack starts the policy server, docs/design-notes.md §Offline verification) and its validations see what the rules see."""

from __future__ import annotations

import copy
import runpy
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
from pulumi_policy import EnforcementLevel, StackValidationArgs, StackValidationPolicy
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

import policy_samples as sample_graphs
from policy.rules import RULES

PACK = Path(__file__).resolve().parents[2] / "policy" / "__main__.py"


class FakePack:
    created: list["FakePack"] = []

    def __init__(self, name: str, policies: list, enforcement_level: EnforcementLevel | None = None, **_: Any) -> None:
        self.name, self.policies, self.enforcement_level = name, policies, enforcement_level
        FakePack.created.append(self)


@pytest.fixture
def pack(monkeypatch) -> FakePack:
    FakePack.created = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", FakePack)
    runpy.run_path(str(PACK), run_name="lastmile_policy_pack")
    [created] = FakePack.created
    return created


def engine_resources(graph: dict[str, Any]) -> list[PolicyResource]:
    """The graph as the policy engine hands it over: proxied props, resource objects for dependencies."""
    made: dict[str, PolicyResource] = {}
    for r in graph["resources"]:
        opts = PolicyResourceOptions(protect=r["options"].get("protect", False), ignore_changes=[],
                                     delete_before_replace=False, aliases=[],
                                     custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])
        made[r["urn"]] = PolicyResource(r["type"], unknown_checking_proxy(copy.deepcopy(r["inputs"])), r["urn"], r["name"],
                                        opts, None, None, [], {})
    for r in graph["resources"]:
        made[r["urn"]].dependencies.extend(made[d] for d in r["options"].get("depends_on", []) if d in made)
        if r.get("parent") in made:
            made[r["urn"]].parent = made[r["parent"]]
    return list(made.values())


def violations(pack: FakePack, graph: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    found: list[tuple[str, str, str | None]] = []
    args = StackValidationArgs(engine_resources(graph))
    for policy in pack.policies:
        policy.validate(args, lambda message, urn=None, name=policy.name: found.append((name, message, urn)))
    return found


def test_pack_is_mandatory_and_has_every_engine_checkable_rule(pack):
    assert pack.name == "lastmile" and pack.enforcement_level == EnforcementLevel.MANDATORY
    assert all(isinstance(p, StackValidationPolicy) for p in pack.policies)
    assert [p.name for p in pack.policies] == [r.id for r in RULES if not r.needs_secret_markers]
    assert {p.enforcement_level for p in pack.policies} == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize("build", [sample_graphs.aws_prod, sample_graphs.hybrid_prod, sample_graphs.onprem_prod])
def test_compliant_stacks_pass_the_pack(pack, build):
    assert violations(pack, build()) == []


def test_a_violation_is_reported_on_its_resource(pack):
    graph = sample_graphs.aws_prod()
    key = next(r for r in graph["resources"] if r["name"] == "prod-key")
    key["inputs"]["enableKeyRotation"] = False
    assert violations(pack, graph) == [("kms-key-rotation", "automatic key rotation is off; set enable_key_rotation=True "
                                        "[Security Hub KMS.4; checkov CKV_AWS_7]", key["urn"])]


def test_values_unknown_during_preview_do_not_trip_the_pack(pack):
    graph = sample_graphs.aws_prod()
    config = next(r for r in graph["resources"] if r["name"] == "prod-config")
    config["inputs"]["kmsKeyArn"] = UNKNOWN_STRING_VALUE
    endpoint = next(r for r in graph["resources"] if r["name"] == "prod-endpoint")
    for alarm in endpoint["inputs"]["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]:
        alarm["alarmName"] = UNKNOWN_STRING_VALUE  # first preview: auto-names are not known yet
    assert violations(pack, graph) == []
