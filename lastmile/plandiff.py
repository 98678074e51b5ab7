"""Plan diff: what a change does to a stack, as Markdown for a pull-request comment. Offline.

    lastmile plan --stack aws-prod --base origin/main                 # base rev vs the work tree
    lastmile plan --stack aws-prod --base origin/main --head HEAD
    lastmile plan --base-graph base.json --head-graph head.json       # two saved graphs
    lastmile plan affected --base origin/main --head HEAD             # stacks a change touches (JSON)

A revision is synthesized with the program of THAT revision: ``git archive <rev>`` is unpacked
into a temporary directory (removed afterwards) and ``lastmile.synthesis.synthesize`` runs there in a
subprocess whose import path is that tree only. ``worktree`` synthesizes the checkout as it is.

The comment lists resources added / changed / replaced / removed with every changed property path
(old -> new; secrets stay ``[secret]`` because the graphs never hold them), says which changes
replace a resource and why (``REPLACE_RULES``, data), tells the rollout in words (SageMaker
blue/green from the endpoint's ``deploymentConfig``; on-prem the Service selector's slot switch),
and reports the findings of the policy rules (``policy/rules/``, the same functions the CrossGuard
pack runs). Same inputs, byte-identical output: everything is sorted, nothing depends on time.
Changes to secret values are invisible here (both sides are masked); ``pulumi preview`` shows them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastmile.common import REPO_ROOT
from lastmile.exitcodes import ExitCode
from policy.rules import METRIC_ALARM, RULES, SM_CONFIG, SM_ENDPOINT, SM_MODEL, environment_of, evaluate

WORKTREE = "worktree"
MAX_COMMENT_CHARS = 60000  # GitHub refuses comments over 65536 characters
MAX_VALUE_CHARS = 90
MAX_ADDED_PROPERTIES = 15
# A change under one of these paths can affect every stack; stack files affect their own stack.
ALL_STACKS_PATHS = ("components/", "infra/", "model_artifacts/", "policy/", "Pulumi.yaml", "requirements.txt")


class PlanDiffError(RuntimeError):
    """A revision could not be synthesized, or the inputs are unusable."""


@dataclass(frozen=True)
class ReplaceRule:
    """Changing ``path`` (or anything under it; ``*`` = any input) of ``type_`` replaces the resource."""

    type_: str  # exact type token, or a prefix ending in '*' ("kubernetes:*")
    path: str
    reason: str
    except_paths: tuple[str, ...] = ()  # with path "*": inputs that update in place

    def matches(self, type_: str, changed: str) -> bool:
        type_ok = type_ == self.type_ or (self.type_.endswith("*") and type_.startswith(self.type_[:-1]))
        if not type_ok or any(_under(changed, p) for p in self.except_paths):
            return False
        return self.path == "*" or _under(changed, self.path)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "[", prefix + "("))


TAGS = ("tags", "tagsAll")


REPLACE_RULES: tuple[ReplaceRule, ...] = (
    ReplaceRule(SM_CONFIG, "*", "every EndpointConfiguration attribute forces a new config (docs/design-notes.md §Provider facts)", TAGS),
    ReplaceRule(SM_MODEL, "*", "every SageMaker Model attribute but its tags forces a new model", TAGS),
    ReplaceRule(SM_ENDPOINT, "name", "an endpoint's name is its identity"),
    ReplaceRule("kubernetes:apps/v1:Deployment", "spec.selector", "a Deployment's selector is immutable"),
    ReplaceRule("kubernetes:apps/v1:StatefulSet", "spec.selector", "a StatefulSet's selector is immutable"),
    ReplaceRule("kubernetes:apps/v1:StatefulSet", "spec.volumeClaimTemplates", "volume claim templates are immutable"),
    ReplaceRule("kubernetes:apps/v1:StatefulSet", "spec.serviceName", "a StatefulSet's serviceName is immutable"),
    ReplaceRule("kubernetes:batch/v1:Job", "spec.template", "a Job's pod template is immutable"),
    ReplaceRule("kubernetes:*", "metadata.name", "a Kubernetes object's name is its identity"),
    ReplaceRule("kubernetes:*", "metadata.namespace", "a Kubernetes object cannot change namespace"),
    ReplaceRule("kubernetes:core/v1:Service", "spec.clusterIP", "a Service's cluster IP is immutable"),
    ReplaceRule("aws:s3/bucket:Bucket", "bucket", "a bucket's name is its identity"),
    ReplaceRule("aws:s3/bucket:Bucket", "bucketPrefix", "a bucket's name is its identity"),
    ReplaceRule("aws:kms/key:Key", "customerMasterKeySpec", "a key's spec is fixed at creation"),
    ReplaceRule("aws:kms/key:Key", "keyUsage", "a key's usage is fixed at creation"),
    ReplaceRule("aws:cloudwatch/logGroup:LogGroup", "name", "a log group's name is its identity"),
    ReplaceRule(METRIC_ALARM, "name", "an alarm's name is its identity"),
    ReplaceRule("aws:iam/role:Role", "name", "a role's name is its identity"),
    ReplaceRule("aws:iam/role:Role", "path", "a role's path is fixed at creation"),
    ReplaceRule("aws:iam/rolePolicy:RolePolicy", "name", "an inline policy's name is its identity"),
    ReplaceRule("aws:iam/rolePolicy:RolePolicy", "role", "an inline policy belongs to one role"),
    ReplaceRule("aws:appautoscaling/target:Target", "resourceId", "a scalable target is identified by its resource"),
    ReplaceRule("aws:appautoscaling/target:Target", "scalableDimension", "a scalable target's dimension is fixed"),
    ReplaceRule("aws:ec2/vpc:Vpc", "cidrBlock", "a VPC's primary CIDR is fixed"),
    ReplaceRule("aws:ec2/subnet:Subnet", "cidrBlock", "a subnet's CIDR is fixed"),
    ReplaceRule("aws:ec2/subnet:Subnet", "availabilityZone", "a subnet lives in one availability zone"),
    ReplaceRule("aws:ec2/subnet:Subnet", "vpcId", "a subnet belongs to one VPC"),
    ReplaceRule("aws:ec2/securityGroup:SecurityGroup", "name", "a security group's name is fixed"),
    ReplaceRule("aws:ec2/securityGroup:SecurityGroup", "description", "a security group's description is fixed"),
    ReplaceRule("aws:ec2/securityGroup:SecurityGroup", "vpcId", "a security group belongs to one VPC"),
    ReplaceRule("aws:ec2/customerGateway:CustomerGateway", "*", "customer gateway attributes are fixed at creation"),
    ReplaceRule("aws:ec2/vpnConnection:VpnConnection", "type", "the VPN type is fixed at creation"),
    ReplaceRule("aws:ec2/vpnConnection:VpnConnection", "staticRoutesOnly", "static vs BGP routing is fixed at creation"),
)


# ---------------------------------------------------------------------------------------------
# Graphs at revisions

_SYNTH = """
import json, sys
from pathlib import Path
import infra
if Path(infra.__file__).resolve().parents[1] != Path.cwd().resolve():
    sys.exit(f"synthesis imported infra from {infra.__file__}, not from the revision's tree")
try:
    from lastmile.synthesis import list_stacks, synthesize
except ModuleNotFoundError:  # a revision from before the tooling moved out of infra/
    from infra.synthesis import list_stacks, synthesize
stack = sys.argv[1]
print("null" if stack not in list_stacks() else synthesize(stack).dumps())
"""


def _git(*args: str, repo: Path = REPO_ROOT) -> str:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout
    except subprocess.CalledProcessError as error:
        if args[:2] == ("rev-parse", "--verify"):
            rev = args[-1].removesuffix("^{commit}")
            raise PlanDiffError(f"unknown git revision {rev!r}: it names no commit in this repository\n"
                                "  allowed: a branch, tag or commit (git log --oneline), or 'worktree' for --head\n"
                                "  fix: fetch it (git fetch origin) or correct the name") from None
        raise PlanDiffError(f"git {' '.join(args)} failed: {error.stderr.strip()}") from None
    except OSError as error:
        raise PlanDiffError(f"git is not available: {error}") from None


def _start_synthesis(tree: Path, stack: str) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, "-c", _SYNTH, stack], cwd=tree, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish_synthesis(process: subprocess.Popen[str], stack: str, label: str) -> dict[str, Any] | None:
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise PlanDiffError(f"synthesis of {stack} at {label} failed:\n{tail}")
    return json.loads(stdout)


def graphs_at(revs: tuple[str, ...], stack: str, repo: Path = REPO_ROOT) -> list[dict[str, Any] | None]:
    """The synthesized graphs of ``stack`` at each git revision (or ``worktree``), in order; None where the
    stack does not exist. Each revision is synthesized by its own program in a fresh interpreter, all of
    them at once (a plan's base and head take the time of one, given two cores)."""
    with tempfile.TemporaryDirectory(prefix="lastmile-plandiff-") as scratch:
        trees: list[tuple[Path, str]] = []
        for index, rev in enumerate(revs):
            if rev == WORKTREE:
                trees.append((repo, "the work tree"))
                continue
            commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}", repo=repo).strip()
            tree = Path(scratch) / str(index)
            tree.mkdir()
            archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=repo, capture_output=True,
                                     check=True)
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            trees.append((tree, f"{rev} ({commit[:12]})"))
        processes = [_start_synthesis(tree, stack) for tree, _ in trees]
        try:
            return [_finish_synthesis(process, stack, label) for process, (_, label) in zip(processes, trees)]
        finally:
            for process in processes:  # one failed: do not leave the other running
                if process.poll() is None:
                    process.kill()
                    process.communicate()


def affected_stacks(changed_paths: list[str], all_stacks: list[str]) -> list[str]:
    """Stacks a change touches: their own stack file, or every stack when shared code changed."""
    if any(path.startswith(ALL_STACKS_PATHS) for path in changed_paths):
        return sorted(all_stacks)
    touched = {m.group(1) for path in changed_paths if (m := re.fullmatch(r"stacks/Pulumi\.(.+)\.yaml", path))}
    return sorted(s for s in all_stacks if s in touched)


# ---------------------------------------------------------------------------------------------
# Property diff


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else json.dumps(key)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by property path (``productionVariants[0].modelName``); JSON documents in strings are opened."""
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")) and prefix:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            return flatten(parsed, prefix + "(json)")
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            name = _key(str(key))
            out.update(flatten(value[key], f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value} if prefix else {}


def property_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf that differs; a missing side is ``None`` (shown as ``(absent)``)."""
    before, after = flatten(old), flatten(new)
    missing = object()
    changes = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path, missing), after.get(path, missing)
        if a != b:
            changes.append((path, None if a is missing else a, None if b is missing else b))
    return changes


def _show(value: Any) -> str:
    if value == "":
        return '`""`'
    text = "(absent)" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


@dataclass(frozen=True)
class Change:
    kind: str  # add | update | replace | remove
    urn: str
    type: str
    name: str
    properties: tuple[tuple[str, Any, Any], ...] = ()
    reasons: tuple[str, ...] = ()
    delete_first: bool = False
    renamed_from: str | None = None


def _replace_reasons(resource: dict[str, Any], changes: list[tuple[str, Any, Any]]) -> list[str]:
    """``"`a`, `b`: why"`` per reason: the changed paths that force a replacement, grouped by rule."""
    paths_by_reason: dict[str, list[str]] = {}
    declared = (resource.get("options") or {}).get("replace_on_changes") or []
    for path, _, _ in changes:
        rule = next((r for r in REPLACE_RULES if r.matches(resource["type"], path)), None)
        if rule is not None:
            paths_by_reason.setdefault(rule.reason, []).append(path)
        elif "*" in declared or any(_under(path, d) for d in declared):
            paths_by_reason.setdefault("the program sets replace_on_changes", []).append(path)
    return sorted(f"{', '.join(f'`{p}`' for p in paths)} ({reason})" for reason, paths in paths_by_reason.items())


def diff_graphs(base: dict[str, Any] | None, head: dict[str, Any] | None) -> tuple[list[Change], int]:
    """Changes from ``base`` to ``head`` (either may be None: the stack does not exist there), and the unchanged count."""
    before = {r["urn"]: r for r in (base or {}).get("resources", [])}
    after = {r["urn"]: r for r in (head or {}).get("resources", [])}
    renamed: dict[str, str] = {}
    for urn, resource in after.items():
        for alias in (resource.get("options") or {}).get("aliases") or []:
            if alias in before and alias not in after:
                renamed[urn] = alias
    changes, unchanged = [], 0
    for urn in sorted(after):
        new = after[urn]
        old = before.get(urn) or before.get(renamed.get(urn, ""))
        if old is None:
            changes.append(Change("add", urn, new["type"], new["name"], tuple(property_changes({}, new.get("inputs") or {}))))
            continue
        props = property_changes(old.get("inputs") or {}, new.get("inputs") or {})
        option_changes = [(f"(option) {k}", (old.get("options") or {}).get(k), v)
                          for k, v in sorted((new.get("options") or {}).items())
                          if k in ("protect", "retain_on_delete", "delete_before_replace") and (old.get("options") or {}).get(k) != v]
        if not props and not option_changes and urn not in renamed:
            unchanged += 1
            continue
        reasons = _replace_reasons(new, props)
        kind = "replace" if reasons else "update"
        delete_first = bool((new.get("options") or {}).get("delete_before_replace"))
        changes.append(Change(kind, urn, new["type"], new["name"], tuple(props + option_changes), tuple(reasons),
                              delete_first, renamed.get(urn)))
    gone = set(before) - set(after) - set(renamed.values())
    for urn in sorted(gone):
        changes.append(Change("remove", urn, before[urn]["type"], before[urn]["name"]))
    return changes, unchanged


# ---------------------------------------------------------------------------------------------
# Rollout in words


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "an unset time"
    seconds = int(seconds)
    if seconds == 0:
        return "0 s"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _find(graph: dict[str, Any], type_: str, name: Any, consumer: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A resource of ``type_`` by its literal physical ``name``, else the one ``consumer`` depends on."""
    candidates = [r for r in graph.get("resources", []) if r["type"] == type_]
    for r in candidates:
        if (r.get("inputs") or {}).get("name") == name:
            return r
    deps = set(((consumer or {}).get("options") or {}).get("depends_on") or [])
    linked = [r for r in candidates if r["urn"] in deps]
    return linked[0] if len(linked) == 1 else None


def _release_of_model(model: dict[str, Any] | None) -> str | None:
    if model is None:
        return None
    props = model.get("inputs") or {}
    tags = props.get("tags") or {}
    version = next((str(v) for k, v in sorted(tags.items()) if k.lower().endswith("version")), None)
    data = str(((props.get("primaryContainer") or {}).get("modelDataUrl")) or "")
    match = re.search(r"/([a-z0-9][a-z0-9-]*)/(\d+\.\d+\.\d+)/", data)
    if version is None and match:
        version = match.group(2)
    model_name = next((str(v) for k, v in sorted(tags.items()) if k.lower().endswith("model")), match.group(1) if match else None)
    if version is None:
        return None
    return f"{model_name} {version}" if model_name else version


def _variants_release(graph: dict[str, Any], config: dict[str, Any] | None) -> str | None:
    if config is None:
        return None
    releases = []
    for variant in (config.get("inputs") or {}).get("productionVariants") or []:
        model = _find(graph, SM_MODEL, variant.get("modelName"), config)
        releases.append(_release_of_model(model) or str(variant.get("modelName")))
    return ", ".join(releases) if releases else None


def _release_change(before: str | None, after: str | None) -> str | None:
    if not before or not after or before == after:
        return None
    old, new = before.rsplit(" ", 1), after.rsplit(" ", 1)
    if len(old) == len(new) == 2 and old[0] == new[0]:
        return f"{old[0]} {old[1]} → {new[1]}"
    return f"{before} → {after}"


def _traffic_words(routing: dict[str, Any]) -> str:
    kind, wait = routing.get("type"), routing.get("waitIntervalInSeconds")
    if kind == "CANARY":
        size = routing.get("canarySize") or {}
        amount = f"{size.get('value')} %" if size.get("type") == "CAPACITY_PERCENT" else f"{size.get('value')} instance(s)"
        return f"canary {amount} for {_duration(wait)}, then the rest"
    if kind == "LINEAR":
        size = routing.get("linearStepSize") or {}
        if size.get("type") == "CAPACITY_PERCENT" and size.get("value"):
            steps = -(-100 // int(size["value"]))
            return f"linear: {size['value']} % more every {_duration(wait)} ({steps} steps)"
        return f"linear: {size.get('value')} instance(s) more every {_duration(wait)}"
    if kind == "ALL_AT_ONCE":
        return f"all traffic at once after the new fleet is healthy (wait {_duration(wait)})"
    return f"traffic routing {kind}"


def _endpoint_rollout(endpoint: dict[str, Any], old: dict[str, Any] | None, base: dict[str, Any] | None,
                      head: dict[str, Any]) -> str | None:
    props = endpoint.get("inputs") or {}
    old_props = (old or {}).get("inputs") or {}
    config_name = props.get("endpointConfigName")
    if old is None:
        return f"**{endpoint['name']}** (new endpoint): created with config `{config_name}`; no traffic to shift."
    if old_props.get("endpointConfigName") == config_name and old_props.get("deploymentConfig") == props.get("deploymentConfig"):
        return None
    if old_props.get("endpointConfigName") == config_name:
        return f"**{endpoint['name']}**: only the deployment settings change; traffic does not move now."
    new_config = _find(head, SM_CONFIG, config_name, endpoint)
    old_config = _find(base or {}, SM_CONFIG, old_props.get("endpointConfigName"), old)
    before, after = _variants_release(base or {}, old_config), _variants_release(head, new_config)
    what = _release_change(before, after) or f"config `{config_name}`"
    deployment = props.get("deploymentConfig") or {}
    blue_green = deployment.get("blueGreenUpdatePolicy") or {}
    rolling = deployment.get("rollingUpdatePolicy") or {}
    parts = []
    if blue_green:
        parts.append(_traffic_words(blue_green.get("trafficRoutingConfiguration") or {}))
        parts.append(f"bake {_duration(blue_green.get('terminationWaitInSeconds', 0))}")
    elif rolling:
        batch = rolling.get("maximumBatchSize") or {}
        parts.append(f"rolling: batches of {batch.get('value')} {str(batch.get('type', '')).lower().replace('_', ' ')} "
                     f"every {_duration(rolling.get('waitIntervalInSeconds'))}")
    else:
        parts.append("SageMaker's default: all at once, no bake")
    alarms = [a.get("alarmName") for a in (deployment.get("autoRollbackConfiguration") or {}).get("alarms") or []]
    parts.append(f"rollback on alarms {', '.join(f'`{a}`' for a in alarms)}" if alarms else
                 "**no auto-rollback alarms**: a failing release stays")
    if blue_green and new_config is not None:
        fleet = [f"{v.get('initialInstanceCount')} × {v.get('instanceType')}"
                 for v in (new_config.get("inputs") or {}).get("productionVariants") or [] if v.get("instanceType")]
        if fleet:
            parts.append(f"a second fleet of {' + '.join(fleet)} runs during the rollout (until the bake ends)")
    timeout = blue_green.get("maximumExecutionTimeoutInSeconds") or rolling.get("maximumExecutionTimeoutInSeconds")
    if timeout:
        parts.append(f"SageMaker stops and rolls back after {_duration(timeout)}")
    return f"**{endpoint['name']}**: {what} rolls out as {'; '.join(parts)}."


def _slot_version(head: dict[str, Any], selector: dict[str, Any]) -> str | None:
    for r in head.get("resources", []):
        if r["type"] not in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
            continue
        labels = ((((r.get("inputs") or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        if selector and selector.items() <= labels.items():
            version = next((str(v) for k, v in sorted(labels.items()) if k.endswith("version")), None)
            return version or r["name"]
    return None


def _service_switches(base: dict[str, Any] | None, head: dict[str, Any]) -> list[str]:
    before = {r["urn"]: r for r in (base or {}).get("resources", [])}
    lines = []
    for service in sorted((r for r in head.get("resources", []) if r["type"] == "kubernetes:core/v1:Service"),
                          key=lambda r: r["urn"]):
        old = before.get(service["urn"])
        if old is None:
            continue
        old_sel = ((old.get("inputs") or {}).get("spec") or {}).get("selector") or {}
        new_sel = ((service.get("inputs") or {}).get("spec") or {}).get("selector") or {}
        if old_sel == new_sel:
            continue
        moved = sorted(k for k in set(old_sel) | set(new_sel) if old_sel.get(k) != new_sel.get(k))
        slot_key = next((k for k in moved if {old_sel.get(k), new_sel.get(k)} <= {"blue", "green"}), None)
        if slot_key is None:
            lines.append(f"**{service['name']}**: selector changes ({', '.join(f'`{k}`' for k in moved)}).")
            continue
        old_slot, new_slot = old_sel[slot_key], new_sel[slot_key]
        old_version, new_version = _slot_version(head, old_sel), _slot_version(head, new_sel)
        stays = (f"{old_slot} stays up for rollback" if old_version is not None
                 else f"**{old_slot} is no longer deployed: no instant rollback**")
        lines.append(f"**{service['name']}**: traffic moves from {old_slot} ({_slot_version(base or {}, old_sel) or '?'}) "
                     f"to {new_slot} ({new_version or 'not deployed!'}); {stays}.")
    return lines


def rollout_lines(base: dict[str, Any] | None, head: dict[str, Any] | None) -> list[str]:
    if head is None:
        return []
    before = {r["urn"]: r for r in (base or {}).get("resources", [])}
    lines = []
    for endpoint in sorted((r for r in head.get("resources", []) if r["type"] == SM_ENDPOINT), key=lambda r: r["urn"]):
        line = _endpoint_rollout(endpoint, before.get(endpoint["urn"]), base, head)
        if line:
            lines.append(line)
    return lines + _service_switches(base, head)


def _retirement_lines(changes: list[Change]) -> list[str]:
    """When the old SageMaker config and model go: only after the endpoint moved (docs/design-notes.md §Failure modes #2)."""
    retired = [c for c in changes if c.type in (SM_CONFIG, SM_MODEL) and c.kind in ("replace", "remove")]
    early = [c.name for c in retired if c.kind == "replace" and c.delete_first]
    lines = []
    if early:
        lines.append(f"**warning**: {', '.join(f'`{n}`' for n in early)} is deleted *before* its replacement exists "
                     "(delete_before_replace): the endpoint can lose its running config mid-rollout (docs/design-notes.md §Failure modes #2).")
    late = [c.name for c in retired if c.name not in early]
    if late:
        lines.append(f"The old {', '.join(f'`{n}`' for n in late)} are deleted last, after the endpoint update has "
                     "finished (a failed update keeps them); `lastmile verify` afterwards catches a rollback "
                     "SageMaker performed while the update reported success.")
    return lines


# ---------------------------------------------------------------------------------------------
# Markdown

KIND_TITLES = (("replace", "Replaced"), ("update", "Changed"), ("add", "Added"), ("remove", "Removed"))
KIND_MARKS = {"add": "+", "update": "~", "replace": "±", "remove": "-"}


def _change_block(change: Change) -> list[str]:
    head = f"- {KIND_MARKS[change.kind]} **{change.name}** `{change.type}`"
    if change.renamed_from:
        head += f" (renamed from `{change.renamed_from.rsplit('::', 1)[-1]}` by alias)"
    lines = [head]
    if change.kind == "replace":
        order = "delete the old one, then create" if change.delete_first else "create the new one, then delete the old"
        lines.append(f"  - replaced ({order}): " + "; ".join(change.reasons))
    if change.kind == "remove":
        return lines
    props = list(change.properties)
    shown = props if change.kind != "add" else props[:MAX_ADDED_PROPERTIES]
    if shown:
        lines.append("")
        if change.kind == "add":
            lines += ["  | property | value |", "  |---|---|"]
            lines += [f"  | `{path}` | {_show(new)} |" for path, _, new in shown]
            if len(props) > len(shown):
                lines.append(f"  | … | {len(props) - len(shown)} more properties |")
        else:
            lines += ["  | property | before | after |", "  |---|---|---|"]
            lines += [f"  | `{path}` | {_show(old)} | {_show(new)} |" for path, old, new in shown]
        lines.append("")
    return lines


def render(base: dict[str, Any] | None, head: dict[str, Any] | None, *, stack: str, base_label: str,
           head_label: str) -> str:
    """The pull-request comment for ``stack`` going from ``base`` to ``head``."""
    changes, unchanged = diff_graphs(base, head)
    counts = {kind: sum(1 for c in changes if c.kind == kind) for kind, _ in KIND_TITLES}
    env = environment_of(head or base or {"stack": stack})
    out = [f"<!-- lastmile-plan-diff:{stack} -->",
           f"### Plan diff: `{stack}` ({env})",
           "",
           f"`{base_label}` → `{head_label}`, offline synthesis (no cloud credentials used).",
           ""]
    if base is None:
        out.append("The stack does not exist at the base: everything is created.")
    if head is None:
        out.append("The stack is deleted at the head: everything is removed.")
    out.append(f"**{counts['add']} to add, {counts['update']} to change, {counts['replace']} to replace, "
               f"{counts['remove']} to remove**, {unchanged} unchanged.")
    out.append("")

    rollout = rollout_lines(base, head) + _retirement_lines(changes)
    out.append("#### Rollout")
    out.append("")
    out += [f"- {line}" for line in rollout] if rollout else ["- No traffic moves in this change."]
    out.append("")

    head_findings = evaluate(head) if head else []
    base_findings = set(evaluate(base)) if base else set()
    out.append(f"#### Policy ({len(RULES)} rules, `policy/rules/`)")
    out.append("")
    if not head_findings:
        out.append("- No findings.")
    for finding in head_findings:
        mark = "**new** " if finding not in base_findings else ""
        out.append(f"- {mark}`{finding.rule}` on **{finding.resource_name}**: {finding.message}")
    fixed = sorted(base_findings - set(head_findings)) if head else []
    for finding in fixed:
        out.append(f"- fixed: `{finding.rule}` on **{finding.resource_name}**")
    out.append("")

    for kind, title in KIND_TITLES:
        group = [c for c in changes if c.kind == kind]
        if not group:
            continue
        out.append(f"#### {title} ({len(group)})")
        out.append("")
        for change in group:
            out += _change_block(change)
        if out[-1] != "":
            out.append("")
    text = "\n".join(out).rstrip("\n") + "\n"
    if len(text) > MAX_COMMENT_CHARS:
        cut = text[:MAX_COMMENT_CHARS].rsplit("\n", 1)[0]
        text = cut + f"\n\n… truncated at {MAX_COMMENT_CHARS} characters; run `lastmile plan` locally for the rest.\n"
    return text


# ---------------------------------------------------------------------------------------------
# CLI


def _label(rev: str) -> str:
    if rev == WORKTREE:
        return WORKTREE
    return f"{rev} ({_git('rev-parse', '--verify', '--short=12', f'{rev}^{{commit}}').strip()})"


def _load_graph(path: str) -> dict[str, Any] | None:
    text = Path(path).read_text()
    return json.loads(text) if text.strip() not in ("", "null") else None


def _affected(args: argparse.Namespace) -> int:
    from lastmile.synthesis import list_stacks

    try:
        for rev in (args.base, args.head):
            _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        changed = _git("diff", "--name-only", f"{args.base}...{args.head}").split()
    except PlanDiffError as error:
        print(f"lastmile plan affected: {error}", file=sys.stderr)
        return ExitCode.REFUSED
    print(json.dumps(affected_stacks(changed, list_stacks())))
    return ExitCode.OK


def _plan(args: argparse.Namespace) -> int:
    from lastmile.outputs import check_file

    if args.out:
        check_file(Path(args.out), option="--out", header="<!-- lastmile-plan-diff:")
    try:
        if args.base_graph and args.head_graph:
            base, head = _load_graph(args.base_graph), _load_graph(args.head_graph)
            stack = args.stack or (head or base or {}).get("stack") or "unknown"
            base_label, head_label = Path(args.base_graph).name, Path(args.head_graph).name
        elif args.stack and args.base:
            stack = args.stack
            base, head = graphs_at((args.base, args.head), stack)
            base_label, head_label = _label(args.base), _label(args.head)
        else:
            args.parser.error("pass --stack with --base [--head], or --base-graph with --head-graph")
        if base is None and head is None:
            raise PlanDiffError(f"stack {stack} exists at neither revision\n  fix: name a stack of stacks/")
    except (PlanDiffError, OSError, json.JSONDecodeError) as error:
        print(f"lastmile plan: {error}", file=sys.stderr)
        return ExitCode.REFUSED
    text = render(base, head, stack=stack, base_label=base_label, head_label=head_label)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    changes, _ = diff_graphs(base, head)
    return ExitCode.FINDINGS if changes else ExitCode.OK


def register(commands: argparse._SubParsersAction) -> None:
    plan = commands.add_parser("plan", help="what a change does to a stack, as Markdown (offline plan diff)",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    plan.add_argument("--stack", help="stack to synthesize at --base and --head, e.g. aws-prod")
    plan.add_argument("--base", help="git revision of the base, e.g. origin/main")
    plan.add_argument("--head", default=WORKTREE, help="git revision of the head, or 'worktree' (default)")
    plan.add_argument("--base-graph", help="saved graph JSON (lastmile synth) instead of --base")
    plan.add_argument("--head-graph", help="saved graph JSON instead of --head")
    plan.add_argument("--out", help="write the Markdown here instead of stdout")
    plan.set_defaults(func=_plan, parser=plan)
    verbs = plan.add_subparsers(dest="plan_verb", metavar="VERB")
    affected = verbs.add_parser("affected", help="the stacks a change between two revisions touches (JSON list)",
                                description="Print, as a JSON list, the stacks a change between two git revisions "
                                "can affect (a change to shared code affects every stack).")
    affected.add_argument("--base", required=True, help="git revision of the base, e.g. origin/main")
    affected.add_argument("--head", default="HEAD", help="git revision of the head (default HEAD)")
    affected.set_defaults(func=_affected)
