"""`lastmile drift STACK` and `lastmile drift --all`: has anyone changed what a stack deployed since its last
update? Reads only: the stack's state is never written, nothing in the cluster or the cloud is changed.

How: one ``pulumi refresh --preview-only`` (the Automation API's ``Stack.preview_refresh``) reads every
resource the state records from the cluster or the cloud. Its events carry, per resource, what the state
says (inputs and outputs of the last update) and what runs now. Two kinds of rules then judge them, both
pure functions over those events (``judge``):

- the engine's own diff: a resource deleted outside Pulumi, a field the stack sets that changed (its
  ``detailed_diff``). pulumi-kubernetes compares only fields the stack set, so a field it never set goes
  unreported there;
- lastmile's live rules, for Kubernetes stacks: the stable Service selects the slot the stack's
  ``active_slot`` says; each slot's Deployment runs the image digest of the slot's release
  (``slot_releases``) and has at least the stack's replica floor available (``capacity.min_count``;
  components.k8s.readiness.below_floor, the switch check's rule); no field the stack sets is owned by a field manager other than Pulumi's
  (``metadata.managedFields``; Pulumi's managers are named ``pulumi-kubernetes-*``); no label or
  annotation was added by hand (by a manager that is neither Pulumi's nor a Kubernetes controller).

Remediation is a reviewed decision, so it is never this command's: ``lastmile up STACK`` puts back every
field the stack sets (it refreshes first); drift worth keeping is a change to the stack file, reviewed
like any other. There is no ``--accept``. Fields the stack does not set (a replica count the autoscaler
owns, a label added by hand) are not touched by an up either: each finding says what fixes it.

Exit codes (lastmile/exitcodes.py): 0 no drift; 1 drift found; 2 refused: unknown stack, a render-mode
stack (nothing live to compare), or a stack never deployed with this backend (``--all`` lists those as
not deployed and goes on); 3 could not check: the cluster, the engine or the backend cannot be reached.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.k8s.readiness import below_floor
from lastmile.common import Refused
from lastmile.exitcodes import ExitCode

PULUMI_MANAGER_PREFIX = "pulumi-kubernetes"
# Field managers of Kubernetes itself: what they write (status, revisions, defaults) is not a hand edit.
KUBERNETES_MANAGERS = ("kube-controller-manager", "kube-apiserver", "kube-scheduler")
SLOT_LABEL = "lastmile.dev/slot"  # components.k8s.model_server's slot label, without importing the SDK
DRIFT_TIMEOUT_SECONDS = 300
# Engine bookkeeping, never drift: the switch check's reference to the stack's own outputs changes with every up.
IGNORED_TYPES = ("pulumi:pulumi:StackReference", "pulumi:pulumi:Stack")
ROOT_TYPE = "pulumi:pulumi:Stack"
_PATH_TOKEN = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|\.?([^.\[\]]+)')
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOT_SET = "(not set)"


class Rule(enum.StrEnum):
    """Which check found a drift."""

    ENGINE = "engine refresh"
    STABLE_SLOT = "stable Service slot"
    IMAGE = "slot image digest"
    FLOOR = "slot replica floor"
    FIELD_MANAGER = "field manager"
    BY_HAND = "added by hand"


@dataclass(frozen=True)
class Drift:
    """One field of one resource that is not what the stack says."""

    resource: str
    field: str
    stack: str
    live: str
    found_by: tuple[Rule, ...]
    fix: str

    def words(self) -> str:
        return (f"{self.resource}: {self.field} is {self.live}, the stack says {self.stack} "
                f"(found by: {', '.join(self.found_by)})\n    fix: {self.fix}")

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "field": self.field, "stack": self.stack, "live": self.live,
                "found_by": [str(r) for r in self.found_by], "fix": self.fix}


@dataclass(frozen=True)
class Observed:
    """One resource of the state as the refresh read it: ``stack_inputs`` what the last update set,
    ``before`` its outputs then, ``live`` what runs now (None: it is gone)."""

    urn: str
    type: str
    op: str
    stack_inputs: Mapping[str, Any]
    before: Mapping[str, Any]
    live: Mapping[str, Any] | None
    detailed_diff: Mapping[str, Any]

    @property
    def kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:") and not self.type.startswith("kubernetes:pulumi")

    @property
    def secret(self) -> bool:
        return self.type == "kubernetes:core/v1:Secret"

    def describe(self) -> str:
        """``Kind namespace/name`` for a Kubernetes object, ``type name (id)`` otherwise."""
        obj = self.live or self.before
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else None
        if self.kubernetes and metadata:
            where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
            return f"{obj.get('kind') or self.type.rsplit(':', 1)[-1]} {where}{metadata.get('name')}"
        return f"{self.type} {self.urn.rsplit('::', 1)[-1]}"


# ------------------------------------------------------------------------------------------
# Reading the engine's events (plain data: the SDK's event objects turned into dicts, see ``plain``).


def plain(value: Any) -> Any:
    """An Automation API event (dataclasses, enums) as plain JSON data, as the tests record it."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if v is not None and not k.startswith("_")}
    return value


def observed_from_events(events: list[Mapping[str, Any]]) -> tuple[list[Observed], Mapping[str, Any] | None]:
    """The resources a refresh read, and the stack's outputs as its state records them (None: the state has
    no resources, the stack was never deployed or was destroyed)."""
    found: list[Observed] = []
    outputs = None
    for event in events:
        metadata = (event.get("res_outputs_event") or {}).get("metadata")
        if not metadata:
            continue
        old, new = metadata.get("old") or {}, metadata.get("new") or {}
        if metadata.get("type") == ROOT_TYPE:
            outputs = old.get("outputs") or new.get("outputs") or {}
        if metadata.get("type") in IGNORED_TYPES or str(metadata.get("type", "")).startswith("pulumi:providers:"):
            continue
        if old and not old.get("custom", True):
            continue  # a component: holds no live object
        found.append(Observed(
            urn=metadata.get("urn", "?"), type=metadata.get("type", "?"), op=str(metadata.get("op", "same")),
            stack_inputs=old.get("inputs") or {}, before=old.get("outputs") or {},
            live=None if metadata.get("op") == "delete" or not new else (new.get("outputs") or {}),
            detailed_diff=metadata.get("detailed_diff") or {}))
    return found, outputs


def path_tokens(path: str) -> list[str | int]:
    """``spec.selector["lastmile.dev/slot"]`` -> ``["spec", "selector", "lastmile.dev/slot"]`` (indices as int)."""
    tokens: list[str | int] = []
    for quoted, index, plain_key in _PATH_TOKEN.findall(path):
        tokens.append(int(index) if index else (quoted.replace('\\"', '"') if quoted else plain_key))
    return tokens


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    escaped = key.replace('"', '\\"')
    return f'{path}["{escaped}"]'


def value_at(obj: Any, tokens: list[str | int]) -> Any:
    for token in tokens:
        if isinstance(token, int) and isinstance(obj, list) and token < len(obj):
            obj = obj[token]
        elif isinstance(token, str) and isinstance(obj, Mapping) and token in obj:
            obj = obj[token]
        else:
            return None
    return obj


def shown(value: Any, secret: bool = False) -> str:
    if value is None:
        return NOT_SET
    if secret or value == "[secret]":
        return "(a secret value)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


# ------------------------------------------------------------------------------------------
# The rules: pure functions over what the refresh read.


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, join(path, str(key))))
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            found.update(_leaves(item, join(path, index)))
        return found
    return {path: value}


def engine_drift(resource: Observed, stack: str) -> list[Drift]:
    """What the engine's refresh itself reports: the resource is gone, or fields it set changed."""
    up = f"`lastmile up {stack}` puts the stack's value back (it reads what runs first)"
    if resource.op == "delete":
        return [Drift(resource.describe(), "(the whole resource)", "exists", "deleted outside Pulumi", (Rule.ENGINE,),
                      f"`lastmile up {stack}` creates it again")]
    if resource.op != "update":
        return []
    live = resource.live or {}
    paths = list(resource.detailed_diff)
    if paths:
        return [Drift(resource.describe(), path, shown(value_at(resource.before, path_tokens(path)), resource.secret),
                      shown(value_at(live, path_tokens(path)), resource.secret), (Rule.ENGINE,), up)
                for path in paths]
    # No detailed diff (a provider that reports only that something changed): the inputs that differ.
    before, after = _leaves(resource.stack_inputs), _leaves(live.get("__inputs") or live)
    return [Drift(resource.describe(), path, shown(value, resource.secret), shown(after.get(path), resource.secret),
                  (Rule.ENGINE,), up)
            for path, value in sorted(before.items()) if path in after and after[path] != value]


def _owned_stack_fields(fields: Mapping[str, Any], stack: Any, path: str = "") -> list[tuple[str, list[str | int]]]:
    """(path, tokens) of the values the stack sets that a managedFields ``fieldsV1`` tree owns."""
    found: list[tuple[str, list[str | int]]] = []
    for key, sub in fields.items():
        child: Any
        token: str | int
        if key.startswith("f:") and isinstance(stack, Mapping) and key[2:] in stack:
            token = key[2:]
            child = stack[token]
        elif key.startswith(("k:", "v:")) and isinstance(stack, list):
            wanted = json.loads(key[2:])
            matches = [i for i, item in enumerate(stack) if (item == wanted if key[0] == "v" else
                       isinstance(item, Mapping) and all(item.get(k) == v for k, v in wanted.items()))]
            if not matches:
                continue
            token, child = matches[0], stack[matches[0]]
        elif key.startswith("i:") and isinstance(stack, list) and int(key[2:]) < len(stack):
            token = int(key[2:])
            child = stack[token]
        else:
            continue
        where = join(path, token)
        deeper = {k: v for k, v in (sub or {}).items() if k != "."}
        below = _owned_stack_fields(deeper, child, where) if deeper else []
        if below:
            found += [(p, [token, *t]) for p, t in below]
        elif not deeper or "." in (sub or {}):
            found.append((where, [token]))
    return found


def _narrowed(owned: list[tuple[str, list[str | int]]], resource: Observed) -> list[tuple[str, list[str | int]]]:
    """An owned map (a Service's selector is one atomic field) as the keys in it that differ from the stack's."""
    found = []
    for path, tokens in owned:
        stack, live = value_at(resource.stack_inputs, tokens), value_at(resource.live, tokens)
        differ = [k for k in stack if isinstance(live, Mapping) and live.get(k) != stack[k]] if isinstance(
            stack, Mapping) else []
        found += [(join(path, str(k)), [*tokens, k]) for k in differ] or [(path, tokens)]
    return found


def _managers(live: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [entry for entry in (live.get("metadata") or {}).get("managedFields") or []
            if isinstance(entry, Mapping) and entry.get("subresource") != "status"]


def _foreign(manager: str) -> bool:
    return not manager.startswith(PULUMI_MANAGER_PREFIX)


def field_manager_drift(resource: Observed, stack: str) -> list[Drift]:
    """Fields the stack sets that another field manager (kubectl, a controller, a person's tool) owns."""
    if resource.live is None:
        return []
    found = []
    for entry in _managers(resource.live):
        manager = str(entry.get("manager", "?"))
        if not _foreign(manager):
            continue
        for path, tokens in _narrowed(_owned_stack_fields(entry.get("fieldsV1") or {}, resource.stack_inputs),
                                      resource):
            found.append(Drift(
                resource.describe(), path, shown(value_at(resource.stack_inputs, tokens), resource.secret),
                f"{shown(value_at(resource.live, tokens), resource.secret)} (owned by field manager {manager})",
                (Rule.FIELD_MANAGER,),
                f"`lastmile up {stack}` applies the stack's value and takes the field back from {manager}"))
    return found


def hand_metadata_drift(resource: Observed) -> list[Drift]:
    """Labels and annotations on a resource lastmile owns that the stack does not set, added by a manager that
    is neither Pulumi's nor Kubernetes' own."""
    if resource.live is None or not resource.kubernetes:
        return []
    added_by: dict[tuple[str, str], str] = {}
    for entry in _managers(resource.live):
        manager = str(entry.get("manager", "?"))
        if not _foreign(manager) or manager in KUBERNETES_MANAGERS:
            continue
        metadata = ((entry.get("fieldsV1") or {}).get("f:metadata") or {})
        for kind in ("labels", "annotations"):
            for key in metadata.get(f"f:{kind}") or {}:
                if key.startswith("f:"):
                    added_by.setdefault((kind, key[2:]), manager)
    found = []
    live_meta, stack_meta = resource.live.get("metadata") or {}, resource.stack_inputs.get("metadata") or {}
    for (kind, key), manager in sorted(added_by.items()):
        value = (live_meta.get(kind) or {}).get(key)
        if value is None or key in (stack_meta.get(kind) or {}):
            continue
        obj = resource.live.get("kind", "").lower() or "resource"
        name, namespace = live_meta.get("name"), live_meta.get("namespace")
        verb = "label" if kind == "labels" else "annotate"
        where = f"-n {namespace} " if namespace else ""
        found.append(Drift(
            resource.describe(), join(f"metadata.{kind}", key), NOT_SET, f"{shown(value)} (set by {manager})",
            (Rule.BY_HAND,),
            f"an up leaves what the stack does not set: remove it (`kubectl {where}{verb} {obj} {name} {key}-`), "
            "or have the program set it, reviewed like any stack change"))
    return found


def _by_name(observed: list[Observed], kind: str) -> dict[str, Observed]:
    """Live objects of one Kubernetes kind by ``namespace/name``."""
    found = {}
    for resource in observed:
        obj = resource.live or resource.before
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        if resource.type == kind and metadata:
            found[f"{metadata.get('namespace')}/{metadata.get('name')}"] = resource
    return found


def kubernetes_drift(observed: list[Observed], outputs: Mapping[str, Any], min_count: int, stack: str) -> list[Drift]:
    """lastmile's own rules for a stack that serves slots on a cluster (its outputs name the objects)."""
    found: list[Drift] = []
    up = f"`lastmile up {stack}` puts the stack's value back (it reads what runs first)"
    services = _by_name(observed, "kubernetes:core/v1:Service")
    stable = services.get(f"{outputs.get('namespace')}/{outputs.get('stable_service')}")
    active = outputs.get("active_slot")
    if stable is not None and stable.live is not None:
        selected = (stable.live.get("spec") or {}).get("selector") or {}
        if selected.get(SLOT_LABEL) != active:
            found.append(Drift(stable.describe(), join("spec.selector", SLOT_LABEL), shown(active),
                               shown(selected.get(SLOT_LABEL)), (Rule.STABLE_SLOT,),
                               f"traffic goes to the slot the stack does not declare; {up}"))
    deployments = _by_name(observed, "kubernetes:apps/v1:Deployment")
    releases = outputs.get("slot_releases") or {}
    for slot, name in sorted((outputs.get("slot_deployments") or {}).items()):
        resource = deployments.get(name)
        if resource is None or resource.live is None:
            continue  # gone: the engine's diff names it
        pods = (((resource.live.get("spec") or {}).get("template") or {}).get("spec")) or {}
        image = (releases.get(slot) or {}).get("image")
        wrong = [(kind, i, c.get("image")) for kind in ("containers", "initContainers")
                 for i, c in enumerate(pods.get(kind) or []) if image and c.get("image") != image]
        for kind, index, running in wrong:
            found.append(Drift(resource.describe(), f"spec.template.spec.{kind}[{index}].image", image, shown(running),
                               (Rule.IMAGE,), f"slot {slot} runs another image than its release; {up}"))
        short = below_floor(resource.live, min_count)
        if short:
            metadata = resource.live.get("metadata") or {}
            available = (resource.live.get("status") or {}).get("availableReplicas") or 0
            found.append(Drift(
                resource.describe(), "status.availableReplicas", f"at least {min_count} (capacity.min_count)",
                f"{available} (spec.replicas {(resource.live.get('spec') or {}).get('replicas')})", (Rule.FLOOR,),
                f"slot {slot}{' (active: the stable Service has no endpoint)' if slot == active else ''} is below "
                "its floor. An up does not set spec.replicas (the autoscaler owns it, and stops at 0): `kubectl -n "
                f"{metadata.get('namespace')} scale deployment {metadata.get('name')} --replicas={min_count}`, "
                "then the autoscaler takes over"))
    return found


def judge(observed: list[Observed], outputs: Mapping[str, Any], *, stack: str, min_count: int | None) -> list[Drift]:
    """Every drift of one stack: the engine's diff, then (``min_count`` given: a Kubernetes stack) lastmile's
    live rules; one row per resource and field, naming every rule that found it."""
    found: list[Drift] = []
    for resource in observed:
        found += engine_drift(resource, stack)
        if resource.kubernetes:
            found += field_manager_drift(resource, stack)
            found += hand_metadata_drift(resource)
    if min_count is not None:
        found += kubernetes_drift(observed, outputs, min_count, stack)
    merged: dict[tuple[str, str], Drift] = {}
    for drift in found:
        key = (drift.resource, drift.field)
        if key in merged:
            first = merged[key]
            merged[key] = dataclasses.replace(first, found_by=first.found_by + tuple(
                r for r in drift.found_by if r not in first.found_by))
        else:
            merged[key] = drift
    return list(merged.values())


# ------------------------------------------------------------------------------------------
# One stack through the engine.


@dataclass(frozen=True)
class Report:
    """The outcome for one stack."""

    stack: str
    code: ExitCode
    message: str
    drift: tuple[Drift, ...] = ()

    @property
    def status(self) -> str:
        return {ExitCode.OK: "clean", ExitCode.FINDINGS: "drifted", ExitCode.REFUSED: "not deployed",
                ExitCode.UNAVAILABLE: "could not check"}.get(self.code, "failed")

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "status": self.status, "exit_code": int(self.code), "message": self.message,
                "drift": [d.to_json() for d in self.drift], "markdown": self.table() if self.drift else ""}

    def words(self) -> str:
        lines = [f"lastmile drift {self.stack}: {self.message}"]
        lines += ["  " + d.words() for d in self.drift]
        return "\n".join(lines)

    def table(self) -> str:
        """Markdown: the issue body the drift workflow posts."""
        rows = ["| resource | field | the stack says | live | found by |", "| --- | --- | --- | --- | --- |"]
        rows += [f"| {_cell(d.resource)} | `{_cell(d.field)}` | {_cell(d.stack)} | {_cell(d.live)} | "
                 f"{', '.join(d.found_by)} |" for d in self.drift]
        return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def check_stack(stack: str) -> Report:
    """Refresh-preview one stack and judge it. Never writes its state."""
    from pulumi.automation.errors import CommandError

    from lastmile.engine import Engine, EnginePaths, EngineUnavailable, check_cluster, check_plugins, validate_stack

    try:
        settings = validate_stack(stack)
    except Refused as error:
        return Report(stack, ExitCode.REFUSED, str(error))
    if settings.onprem is not None and settings.onprem.render_directory is not None:
        return Report(stack, ExitCode.REFUSED, "refused: a render-mode stack writes YAML and deploys nothing, so "
                      f"nothing live can drift from it.\n  fix: `lastmile preview {stack}` compares its files with "
                      "the stack file; drift is checked on the cluster the rendered files are applied to")
    try:
        check_plugins(settings, EnginePaths().pulumi_home)
        check_cluster(settings)
        engine = Engine(stack)
        if not engine.existing():
            return Report(stack, ExitCode.REFUSED, "never deployed with this backend (it has no state), so there "
                          f"is nothing to compare.\n  fix: `lastmile up {stack}` deploys it; for a team stack, "
                          "check PULUMI_BACKEND_URL names the team's backend")
    except EngineUnavailable as error:
        return Report(stack, ExitCode.UNAVAILABLE, f"could not check, nothing was read: {error}")
    except Refused as error:
        return Report(stack, ExitCode.REFUSED, str(error))
    events: list[Any] = []
    try:
        with engine.deadline(DRIFT_TIMEOUT_SECONDS) as watch:
            engine.stack.preview_refresh(on_event=events.append, color="never", show_secrets=False)
    except CommandError as error:
        return _failure(stack, str(error), watch.fired)
    observed, outputs = observed_from_events([plain(e) for e in events])
    if outputs is None:
        return Report(stack, ExitCode.REFUSED, "has a state but no resources (destroyed, or never deployed), so "
                      f"there is nothing to compare.\n  fix: `lastmile up {stack}` deploys it")
    on_cluster = settings.onprem is not None and bool(outputs.get("slot_deployments"))
    drift = judge(observed, outputs, stack=stack, min_count=settings.capacity.min_count if on_cluster else None)
    if not drift:
        return Report(stack, ExitCode.OK, f"no drift: the {len(observed)} resources of its state are as it says")
    return Report(stack, ExitCode.FINDINGS, f"drift in {len(drift)} field(s); nothing was changed. Remediation is "
                  f"a reviewed decision: `lastmile up {stack}` restores what the stack sets; drift to keep is a "
                  "stack-file change", tuple(drift))


def _failure(stack: str, text: str, timed_out: bool) -> Report:
    lines = [line.strip() for line in text.splitlines() if line.strip()][-4:]
    if timed_out:
        return Report(stack, ExitCode.UNAVAILABLE, f"could not check: the refresh did not finish within "
                      f"{DRIFT_TIMEOUT_SECONDS} s.\n  fix: check the cluster or cloud answers, then run it again")
    if "is currently locked" in text:
        return Report(stack, ExitCode.UNAVAILABLE, "could not check: another operation holds the stack's lock.\n  "
                      "fix: run it again when that operation has ended")
    if re.search(r"connection refused|no such host|i/o timeout|unable to load|unreachable|credentials", text, re.I):
        return Report(stack, ExitCode.UNAVAILABLE, "could not check: the engine could not reach what the stack "
                      "runs on:\n    " + "\n    ".join(lines) + "\n  fix: check the cluster (`kubectl "
                      "--kubeconfig FILE get namespaces`) or the cloud credentials answer, then run it again")
    return Report(stack, ExitCode.FAILED, "the engine's refresh failed:\n    " + "\n    ".join(lines))


# ------------------------------------------------------------------------------------------
# The verb.


def team_stacks(environment: str | None) -> list[str]:
    """The stacks ``--all`` checks: every stack file's, but the local ones (a developer's machine, checked by
    name), of ``environment`` when given."""
    from lastmile.engine import is_local
    from lastmile.stackfile import list_stacks

    return [s for s in list_stacks() if not is_local(s) and (environment is None or s.rsplit("-", 1)[-1] == environment)]


def overall(reports: list[Report], *, every: bool) -> ExitCode:
    """The command's exit code: the worst outcome; under ``--all`` a stack never deployed is not an error."""
    order = (ExitCode.CRASHED, ExitCode.FAILED, ExitCode.UNAVAILABLE, ExitCode.REFUSED, ExitCode.FINDINGS)
    codes = {r.code for r in reports if not (every and r.code == ExitCode.REFUSED)}
    return next((code for code in order if code in codes), ExitCode.OK)


def _run(args: argparse.Namespace) -> int:
    if args.all == bool(args.stack):
        raise Refused("name one stack or --all (not both, not neither)\n  fix: `lastmile drift onprem-local` or "
                      "`lastmile drift --all --environment prod`")
    if args.environment and not args.all:
        raise Refused("--environment ENV chooses the stacks of --all\n  fix: `lastmile drift --all --environment "
                      "prod`, or name the stack alone")
    names = team_stacks(args.environment) if args.all else [args.stack]
    reports = []
    for name in names:
        report = check_stack(name)
        reports.append(report)
        if not args.json:
            print(report.words(), file=sys.stdout if report.code in (ExitCode.OK, ExitCode.FINDINGS) else sys.stderr,
                  flush=True)
    code = overall(reports, every=args.all)
    if args.json:
        print(json.dumps({"exit_code": int(code), "stacks": [r.to_json() for r in reports]}, indent=2))
    return code


HELP = "has the live system changed since the stack's last update? (reads only; exit 1 on drift)"
EPILOG = """\
Remediation is a reviewed decision, never this command's: there is no --accept. `lastmile up STACK` puts back
every field the stack sets (it refreshes first); drift you want to keep becomes a change to the stack file,
reviewed like any other. A replica count the autoscaler owns and labels added by hand are fields the stack
does not set: an up leaves them, and each finding says what fixes it.

exit codes: 0 no drift; 1 drift found; 2 refused (unknown stack, render-mode stack, a stack never deployed;
--all lists those as not deployed and goes on); 3 could not check (cluster, engine or backend not reachable).
"""


def register(commands: argparse._SubParsersAction) -> None:
    text = ("Compare what a stack deployed with what runs now: the engine's refresh (preview only: the state is "
            "never written) and lastmile's live rules for Kubernetes stacks (stable Service slot, slot image and "
            "replica floor, field managers other than Pulumi's, labels and annotations added by hand).")
    parser = commands.add_parser("drift", help=HELP, description=text, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", nargs="?", help="stack name, e.g. onprem-local (stacks/Pulumi.<stack>.yaml)")
    parser.add_argument("--all", action="store_true", help="every team stack of stacks/ (not the local stacks; those "
                        "never deployed with this backend are listed as not deployed and do not fail the command)")
    parser.add_argument("--environment", choices=("dev", "staging", "prod"),
                        help="with --all: only this environment's stacks")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout: per stack its status, "
                        "exit code and every drifted field with the stack's and the live value")
    parser.set_defaults(func=_run, verb="drift")

