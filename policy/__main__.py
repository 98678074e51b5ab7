"""The lastmile CrossGuard pack: every rule of ``policy/rules/``, enforcement MANDATORY.

    pulumi preview --policy-pack policy          # or policyPacks: policy in pulumi/actions

Only the Pulumi engine starts this module: it passes its own address as the first argument (and the
stack in ``PULUMI_STACK``), and pulumi-policy then serves the rules over gRPC on a port it prints,
waiting for the engine's calls. Run by hand (no engine address, or from a terminal) it would wait
forever, so it says so and points to ``lastmile policy STACK``, which runs the same rules offline.

Each rule becomes one ``StackValidationPolicy`` (so a violation names its rule). The validation
converts ``StackValidationArgs.resources`` into the graph shape the rules read — the same shape as
the offline synthesis (``lastmile.synthesis.Graph.to_json()``) — and reports each finding on its
resource's URN. Values unknown during preview become ``[unknown]`` (rules treat them as not yet
known, never as a violation of their own). The engine hands policies plaintext secrets, so rules
that judge whether a value is secret (``needs_secret_markers``) run only in the offline plan diff;
``retain_on_delete`` is not visible to policies, so only ``protect`` is judged here.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HAND_RUN = ("python -m policy is the CrossGuard pack that the Pulumi engine starts "
            "(pulumi preview --policy-pack policy); to check a stack by hand run: lastmile policy STACK")


def _started_by_engine(argv: list[str], environ: Mapping[str, str]) -> bool:
    """The engine passes its address (host:port) as the first argument and sets PULUMI_STACK."""
    address = len(argv) > 1 and re.fullmatch(r"\S+:\d+", argv[1]) is not None
    return address or "PULUMI_STACK" in environ


if __name__ == "__main__":
    if not _started_by_engine(sys.argv, os.environ):
        print(HAND_RUN, file=sys.stderr)
        sys.exit(2)
    if sys.stdin.isatty():
        print(HAND_RUN, file=sys.stderr)

_ROOT = str(Path(__file__).resolve().parent.parent)  # the repository root: policy.rules
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
# Private pulumi-policy APIs, kept on purpose: props arrive wrapped in proxies that raise on unknown values,
# and the SDK has no public way to unwrap them or to test a value for unknown.
from pulumi_policy.proxy import _DictProxy, _is_unknown, _ListProxy  # noqa: E402

from policy.rules import RULES, UNKNOWN, Rule  # noqa: E402

PACK_NAME = "lastmile"


def plain(value: Any) -> Any:
    """A props value as plain dicts/lists, without tripping the unknown-value proxy."""
    if isinstance(value, _DictProxy):
        value = value["__target"]
    elif isinstance(value, _ListProxy):
        value = value["__target"]
    if isinstance(value, str):
        return UNKNOWN if _is_unknown(value) else value
    if isinstance(value, Mapping):
        return {str(k): plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> ``<stack>``."""
    return urn.split("::", 1)[0].split(":", 2)[-1]


def to_graph(args: StackValidationArgs) -> dict[str, Any]:
    resources = []
    for r in args.resources:
        deps = {d.urn for d in r.dependencies}
        for linked in (r.property_dependencies or {}).values():
            deps.update(d.urn for d in linked)
        resources.append({
            "urn": r.urn,
            "type": r.resource_type,
            "name": r.name,
            "parent": r.parent.urn if r.parent is not None else None,
            "options": {
                "protect": bool(r.opts.protect),
                "retain_on_delete": None,  # not visible to policies
                "delete_before_replace": r.opts.delete_before_replace,
                "ignore_changes": list(r.opts.ignore_changes or []),
                "additional_secret_outputs": list(r.opts.additional_secret_outputs or []),
                "aliases": list(r.opts.aliases or []),
                "depends_on": sorted(deps),
            },
            "inputs": plain(r.props),
        })
    stack = stack_of(resources[0]["urn"]) if resources else ""
    return {"stack": stack, "resources": sorted(resources, key=lambda x: x["urn"]), "outputs": {}}


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        graph = to_graph(args)
        for resource in graph["resources"]:
            for finding in rule(resource, graph):
                report_violation(f"{finding.message} [{rule.anchor}]", finding.urn)

    return StackValidationPolicy(
        name=rule.id,
        description=f"{rule.requirement} ({rule.anchor})",
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


POLICIES = [stack_policy(rule) for rule in RULES if not rule.needs_secret_markers]

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
