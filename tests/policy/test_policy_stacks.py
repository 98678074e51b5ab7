"""Every committed stack's synthesized graph passes every policy rule (the gate CI and the pack enforce)."""

from __future__ import annotations

import pytest

from lastmile.synthesis import list_stacks, synthesize
from policy.rules import RULES, evaluate

STACKS = list_stacks()


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stack_meets_every_rule(stack):
    graph = synthesize(stack).to_json()
    findings = evaluate(graph)
    assert findings == [], f"{stack}: {len(findings)} finding(s)\n" + "\n".join(f.render() for f in findings)
    exercised = {rule.id for rule in RULES for resource in graph["resources"] if rule.applies(resource, graph)}
    assert exercised, f"{stack}: no rule applies to any resource; are the type tokens right?"


def test_there_are_stacks_to_check():
    assert STACKS, "no stacks/Pulumi.*.yaml: nothing for the policy to judge"
