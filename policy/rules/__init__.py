"""lastmile policy rules: the security checklist (docs/security-checklist.md) as small pure checks over a resource graph.

Each rule is a plain function of one resource and the whole graph, in the shape of the offline
synthesis (``lastmile.synthesis.Graph.to_json()``)::

    resource = {"urn", "type", "name", "parent", "options": {"protect", "retain_on_delete", ...,
                "depends_on": [urn, ...]}, "inputs": {camelCase Pulumi properties}}
    graph    = {"stack": "aws-prod", "resources": [resource, ...], "outputs": {...},
                "environment": "prod"  # optional; else outputs["environment"], else the stack name}

One module per domain (``encryption``, ``sagemaker``, ``iam``, ``network``, ``kubernetes``,
``state``), each a set of small check functions and its ``RULES`` as data (id, checklist anchor,
requirement, resource types, environments); ``core`` holds the shared vocabulary. ``RULES`` here is
all of them. They run unchanged in four places: the tests (directly, each rule with a passing and a
failing graph), ``lastmile policy STACK`` (offline), the plan diff (``lastmile.plandiff``) and the
CrossGuard pack (``policy/__main__.py``), which converts ``StackValidationArgs.resources`` to the
same shape. The package imports nothing but the standard library, so the pack's virtualenv needs
only ``pulumi-policy``.

How resources are linked: a resource that takes another's output as input (a public-access block
taking ``bucket.id``, an endpoint taking ``alarm.name``) depends on it; the engine and the recording
mocks both report that dependency, so ``depends_on`` links children to what they configure even
while names are unknown (first preview) or auto-generated.

An unknown environment (no ``environment`` key, output, or ``<topology>-<env>`` stack name) is
judged as prod: the strictest reading is the safe default.
"""

from __future__ import annotations

from typing import Iterable

from policy.rules import encryption, iam, kubernetes, network, sagemaker, state
from policy.rules.core import (  # re-exported: what the plan diff, the pack and the tests name
    K8S_WORKLOADS,
    METRIC_ALARM,
    SM_CONFIG,
    SM_ENDPOINT,
    SM_MODEL,
    UNKNOWN,
    Finding,
    GraphDict,
    Rule,
    environment_of,
)

__all__ = ["K8S_WORKLOADS", "METRIC_ALARM", "RULES", "RULES_BY_ID", "SM_CONFIG", "SM_ENDPOINT", "SM_MODEL", "UNKNOWN",
           "Finding", "Rule", "environment_of", "evaluate"]

RULES: tuple[Rule, ...] = (
    *encryption.RULES, *sagemaker.RULES, *iam.RULES, *network.RULES, *kubernetes.RULES, *state.RULES,
)
RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
assert len(RULES_BY_ID) == len(RULES), "two rules share an id"


def evaluate(graph: GraphDict, rules: Iterable[Rule] = RULES, *, secret_markers: bool = True) -> list[Finding]:
    """Every finding of ``rules`` over every resource of ``graph``, sorted (deterministic)."""
    findings: list[Finding] = []
    for rule in rules:
        if rule.needs_secret_markers and not secret_markers:
            continue
        for resource in graph.get("resources", []):
            findings.extend(rule(resource, graph))
    return sorted(set(findings))
