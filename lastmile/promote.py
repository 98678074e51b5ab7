"""Promotion: move a verified model release to the next environment of a topology.

    lastmile promote --topology aws --from staging --to prod            # into prod's idle slot
    lastmile promote --topology aws --from dev --to prod --force --reason "hotfix INC-42: ..."
    lastmile promote record-verification --stack aws-staging --endpoint-config-name cfg-1a2b --verifier lastmile.verify
    lastmile promote check-log [--against origin/main]                  # the records are append-only
    lastmile promote import-verifications build/evidence/*/verifications.jsonl   # CI evidence
    lastmile promote status --topology aws                              # what each stack serves, verified or not

What moves. Exactly the release of one slot: ``model, version, sha256, image`` (``RELEASE_FIELDS``).
No rollout field moves: strategy, step, waits, bake
and timeout are each environment's safety policy (prod must be canary/linear, dev may be
all-at-once; waits and bake are sized to the environment's traffic so that alarms can trip), so
they stay with the target stack. On the aws topology, when the two stacks live in different regions,
the SageMaker serving image is the same framework image in the target region: it is taken from
``model_artifacts/manifest.json`` for that region (the sha256 and version, which identify the
release, are copied verbatim).

Where it lands. In the target's IDLE slot (the slot that is not ``active_slot``): the promotion is
one reviewed change that stages the release (on-prem: the idle slot's pods start and the preview
Service allows smoke tests; SageMaker: nothing serves it yet), and moving traffic is a second,
separately reviewed one-line change of ``active_slot`` whose plan diff shows the rollout. The
previous release stays in the other slot for rollback. ``--into active`` writes the active slot
instead (a one-step rollout, e.g. for dev); ``--into blue|green`` names the slot.

Evidence. A release may leave an environment only when that environment verified it: the newest
line of ``promotions/verifications.jsonl`` for (source stack, model, version, sha256, image) has
``outcome: verified``. Lines are written by ``record_verification`` (called by the post-deploy
``lastmile verify`` after it checked that SageMaker runs the expected endpoint config, or by
an on-prem smoke/readiness check with the Kubernetes revision it saw; CI and people use the
``record-verification`` command). A later ``failed`` line for the same release revokes the
evidence. Evidence cannot be forced: fix the deployment and verify again.

Order. ``dev -> staging -> prod``, restricted to the stacks of the topology that exist: on-prem
``dev -> prod``, hybrid ``staging -> prod``. ``onprem-local`` only renders manifests (nothing is
deployed, nothing can be verified) and is not on the path. Skipping a stack
needs ``--force --reason "..."``; going backwards is refused.

Records. Every promotion appends one JSON line to ``promotions/log.jsonl``. Both files are
append-only: each line carries ``prev_sha256``, the sha256 of the line before it, so a rewritten
or deleted line breaks the chain that ``check-log`` (and CI) verifies.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from lastmile.common import REPO_ROOT, STACKS_DIR

RECORDS_DIR = REPO_ROOT / "promotions"
VERIFICATIONS = "verifications.jsonl"
PROMOTION_LOG = "log.jsonl"

NAMESPACE = "lastmile"
SERVING_KEY = f"{NAMESPACE}:serving"
RELEASE_FIELDS = ("model", "version", "sha256", "image")
# `local` stacks (onprem-local) only render manifests on a laptop: nothing is deployed there, so
# nothing can be verified there, and they are not on the promotion path.
ENV_ORDER = ("dev", "staging", "prod")
SLOTS = ("blue", "green")
OUTCOMES = ("verified", "failed")
MIN_REASON_CHARS = 10


class PromotionError(Exception):
    """A promotion was refused. The message says what, why, and how to fix it."""

    def __init__(self, what: str, why: str, fix: str) -> None:
        self.what, self.why, self.fix = what, why, fix
        super().__init__(f"{what}\n  why: {why}\n  fix: {fix}")


@dataclass(frozen=True)
class Release:
    model: str
    version: str
    sha256: str
    image: str

    @classmethod
    def from_mapping(cls, value: Any, where: str) -> "Release":
        if not isinstance(value, dict) or any(not isinstance(value.get(f), str) or not value.get(f) for f in RELEASE_FIELDS):
            raise PromotionError(f"{where} is not a complete release",
                                 f"a release needs {', '.join(RELEASE_FIELDS)} as strings; found {dict(value or {})!r}",
                                 f"fill in {where} (see README 'Stack config')")
        return cls(**{f: str(value[f]) for f in RELEASE_FIELDS})

    def label(self) -> str:
        return f"{self.model} {self.version} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class PromotionResult:
    source_stack: str
    target_stack: str
    target_slot: str
    release: Release
    changed: bool
    diff: str
    record: dict[str, Any] | None = field(default=None)


# ---------------------------------------------------------------------------------------------
# Append-only JSON-lines records


def _line_sha256(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_record(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Append ``record`` as one JSON line chained to the previous line; earlier bytes are never rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = b""
    if path.is_file():
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        previous = lines[-1] if lines else b""
    chained = {**record, "prev_sha256": _line_sha256(previous) if previous else None}
    line = json.dumps(chained, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
    return chained


def check_chain(path: Path) -> list[str]:
    """Problems with an append-only file: unreadable lines, or a prev_sha256 that does not match."""
    if not path.is_file():
        return []
    problems, previous = [], None
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{path.name}:{number}: not JSON ({error})")
            previous = line
            continue
        expected = _line_sha256(previous) if previous is not None else None
        if record.get("prev_sha256") != expected:
            problems.append(f"{path.name}:{number}: prev_sha256 {record.get('prev_sha256')} != {expected}: "
                            "a line before it was rewritten, reordered or deleted")
        previous = line
    return problems


# ---------------------------------------------------------------------------------------------
# Evidence


def _utc(now: datetime | None) -> str:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("pass an aware datetime (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_commit(repo: Path = REPO_ROOT) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record_verification(
    stack: str,
    release: Release | dict[str, str],
    *,
    verifier: str,
    git_commit: str,
    endpoint_config_name: str | None = None,
    k8s_revision: str | None = None,
    outcome: str = "verified",
    detail: str | None = None,
    verified_at: datetime | None = None,
    records_dir: Path = RECORDS_DIR,
) -> dict[str, Any]:
    """Append the result of a post-deploy check of ``stack`` to promotions/verifications.jsonl.

    Call it from ``lastmile.verify`` (SageMaker: ``endpoint_config_name`` the endpoint really runs) or from
    an on-prem smoke/readiness check (``k8s_revision``: the Deployment revision or pod-template hash
    that served the smoke requests). ``outcome="failed"`` revokes earlier evidence for the release.
    """
    rel = release if isinstance(release, Release) else Release.from_mapping(release, "release")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: allowed {', '.join(OUTCOMES)}")
    if bool(endpoint_config_name) == bool(k8s_revision):
        raise ValueError("pass exactly one of endpoint_config_name (SageMaker) or k8s_revision (Kubernetes)")
    record = {
        "stack": stack,
        **asdict(rel),
        "endpoint_config_name": endpoint_config_name,
        "k8s_revision": k8s_revision,
        "outcome": outcome,
        "detail": detail,
        "verified_at": _utc(verified_at),
        "verifier": verifier,
        "git_commit": git_commit,
    }
    return append_record(records_dir / VERIFICATIONS, record)


def find_evidence(stack: str, release: Release, records_dir: Path = RECORDS_DIR) -> dict[str, Any] | None:
    """The newest verification of ``release`` in ``stack`` if its outcome is ``verified``, else None."""
    newest = _newest_verification(stack, release, records_dir)
    return newest if newest is not None and newest.get("outcome") == "verified" else None


def _newest_verification(stack: str, release: Release, records_dir: Path) -> dict[str, Any] | None:
    """The latest record by verified_at (file order breaks ties: the file is append-only)."""
    matching = [(r.get("verified_at", ""), i, r) for i, r in enumerate(read_records(records_dir / VERIFICATIONS))
                if r.get("stack") == stack and all(r.get(f) == getattr(release, f) for f in RELEASE_FIELDS)]
    return max(matching, key=lambda item: item[:2])[2] if matching else None


# ---------------------------------------------------------------------------------------------
# Stack files (ruamel round trip: comments, order and quoting stay)


def _yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def stack_file(stacks_dir: Path, stack: str) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def promotion_path(topology: str, stacks_dir: Path = STACKS_DIR) -> list[str]:
    """The environments of ``topology`` that have a stack file, in promotion order."""
    present = {p.name[len(f"Pulumi.{topology}-"):-len(".yaml")] for p in stacks_dir.glob(f"Pulumi.{topology}-*.yaml")}
    return [env for env in ENV_ORDER if env in present]


def _load(path: Path) -> tuple[Any, str]:
    text = path.read_text()
    return _yaml().load(text), text


def _serving(document: Any, stack: str) -> Any:
    serving = ((document or {}).get("config") or {}).get(SERVING_KEY)
    if not isinstance(serving, dict) or not isinstance(serving.get("slots"), dict):
        raise PromotionError(f"stack {stack} has no {SERVING_KEY}.slots",
                             "a promotion reads and writes the slots of the serving section",
                             f"add {SERVING_KEY} with active_slot and slots to stacks/Pulumi.{stack}.yaml")
    if serving.get("active_slot") not in SLOTS:
        raise PromotionError(f"stack {stack}: {SERVING_KEY}.active_slot is {serving.get('active_slot')!r}",
                             f"allowed: {', '.join(SLOTS)}", "set active_slot to blue or green")
    return serving


def _other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


def _resolve_slot(serving: Any, choice: str) -> str:
    active = str(serving["active_slot"])
    return {"active": active, "idle": _other(active)}.get(choice, choice)


def _validate(stack: str, text: str) -> None:
    """The edited stack file must pass the same config validation as `pulumi up` (pure, no engine)."""
    from infra.settings.loader import SECRET_KEYS, ConfigError, parse_settings

    config = (yaml.safe_load(text) or {}).get("config") or {}
    raw, secrets = {}, {}
    for full_key, value in config.items():
        if not str(full_key).startswith(f"{NAMESPACE}:"):
            continue
        key = str(full_key)[len(NAMESPACE) + 1:]
        if key in SECRET_KEYS:
            secrets[key] = "[secret]"
        else:
            raw[key] = value
    try:
        parse_settings(stack, raw, secrets)
    except ConfigError as error:
        raise PromotionError(f"the promoted stack file stacks/Pulumi.{stack}.yaml would not deploy",
                             str(error), "fix the source release or the target stack, then promote again") from None


def _target_image(topology: str, release: Release, source_doc: Any, target_doc: Any) -> str:
    """SageMaker framework images are regional: re-resolve the image when the regions differ (aws topology)."""
    if topology != "aws":
        return release.image
    regions = [((d.get("config") or {}).get(f"{NAMESPACE}:aws") or {}).get("region") for d in (source_doc, target_doc)]
    if None in regions or regions[0] == regions[1]:
        return release.image
    from infra.manifest import load_manifest

    pinned = load_manifest().get((release.model, release.version))
    image = pinned.sagemaker_images.get(regions[1]) if pinned else None
    if image is None:
        raise PromotionError(f"no SageMaker image pinned for {release.label()} in {regions[1]}",
                             f"the target stack deploys to {regions[1]}, the source to {regions[0]}",
                             "add the region to model_artifacts/build.py and rebuild the manifest")
    return image


def _check_command(topology: str, stack: str) -> str:
    if topology == "onprem":
        return "the readiness check of the active slot (kubectl wait --for=condition=Available)"
    return f"`lastmile verify --stack {stack}`"


def _deployment_flag(topology: str) -> str:
    return "--k8s-revision <revision>" if topology == "onprem" else "--endpoint-config-name <name>"


def _write_atomic(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temp, path)


# ---------------------------------------------------------------------------------------------
# Promotion


def promote(
    topology: str,
    source_env: str,
    target_env: str,
    *,
    source_slot: str = "active",
    into: str = "idle",
    force: bool = False,
    reason: str | None = None,
    actor: str = "unknown",
    now: datetime | None = None,
    commit: str | None = None,
    dry_run: bool = False,
    stacks_dir: Path = STACKS_DIR,
    records_dir: Path = RECORDS_DIR,
) -> PromotionResult:
    """Copy the source slot's release into the target stack and log it; see the module docstring."""
    source, target = f"{topology}-{source_env}", f"{topology}-{target_env}"
    path = promotion_path(topology, stacks_dir)
    for env, stack in ((source_env, source), (target_env, target)):
        if env not in path:
            raise PromotionError(f"{stack} is not on the promotion path",
                                 f"the path of topology {topology} is "
                                 f"{' -> '.join(f'{topology}-{e}' for e in path) or '(no stacks)'} "
                                 f"(stacks/Pulumi.{topology}-<{'|'.join(ENV_ORDER)}>.yaml that exist)",
                                 "check --topology, --from and --to")
    step = path.index(target_env) - path.index(source_env)
    if step <= 0:
        raise PromotionError(f"cannot promote {source} -> {target}",
                             f"promotion moves forward along {' -> '.join(path)}",
                             "to roll back, switch the target's active_slot back to the slot holding the old release")
    skipped = path[path.index(source_env) + 1:path.index(target_env)]
    if skipped:
        if not force:
            raise PromotionError(f"promotion {source} -> {target} skips {', '.join(f'{topology}-{e}' for e in skipped)}",
                                 "every release passes each environment of the path in order, so each one verifies it",
                                 f"promote to {topology}-{skipped[0]} first; or, in an emergency, pass --force "
                                 "--reason \"...\" (the reason is recorded in promotions/log.jsonl)")
    if force and len((reason or "").strip()) < MIN_REASON_CHARS:
        raise PromotionError("--force needs --reason",
                             "a forced promotion is recorded with its written reason for review",
                             f"pass --reason \"<why, at least {MIN_REASON_CHARS} characters>\"")

    source_doc, _ = _load(stack_file(stacks_dir, source))
    target_doc, target_text = _load(stack_file(stacks_dir, target))
    source_serving, target_serving = _serving(source_doc, source), _serving(target_doc, target)

    from_slot = _resolve_slot(source_serving, source_slot)
    if from_slot not in source_serving["slots"]:
        raise PromotionError(f"{source} has no release in slot {from_slot}",
                             f"slots with a release: {', '.join(str(s) for s in source_serving['slots'])}",
                             "pass --slot active (default) or a slot that holds a release")
    release = Release.from_mapping(dict(source_serving["slots"][from_slot]), f"{source} {SERVING_KEY}.slots.{from_slot}")

    evidence = find_evidence(source, release, records_dir)
    if evidence is None:
        failed = _newest_verification(source, release, records_dir)
        why = (f"its newest verification there ({failed['verified_at']}, {failed['verifier']}) failed"
               + (f": {failed['detail']}" if failed.get("detail") else "")
               if failed else f"no verification of it in {source} is recorded in promotions/{VERIFICATIONS}")
        raise PromotionError(f"{release.label()} has no evidence of a good deployment in {source}", why,
                             f"deploy it to {source} and verify it: the deploy workflow does both and records the "
                             f"result; by hand, after {_check_command(topology, source)} passed, run `lastmile "
                             f"promote record-verification --stack {source} {_deployment_flag(topology)} "
                             "--verifier <who checked>`; then promote again")

    to_slot = _resolve_slot(target_serving, into)
    if to_slot not in SLOTS:
        raise PromotionError(f"--into {into}", "allowed: idle, active, blue, green", "pick one of those")
    promoted = Release(**{**asdict(release), "image": _target_image(topology, release, source_doc, target_doc)})
    slots = target_serving["slots"]
    current = slots.get(to_slot)
    if current is not None and all(str(current.get(f)) == getattr(promoted, f) for f in RELEASE_FIELDS):
        return PromotionResult(source, target, to_slot, promoted, changed=False, diff="")
    replaced = {f: str(current.get(f)) for f in RELEASE_FIELDS} if current is not None else None

    if current is None:
        entry = CommentedMap((f, getattr(promoted, f)) for f in RELEASE_FIELDS)
        position = sum(1 for s in slots if SLOTS.index(str(s)) < SLOTS.index(to_slot)) if all(str(s) in SLOTS for s in slots) else len(slots)
        slots.insert(position, to_slot, entry)
    else:
        for f in RELEASE_FIELDS:
            current[f] = getattr(promoted, f)
    buffer = io.StringIO()
    _yaml().dump(target_doc, buffer)
    new_text = buffer.getvalue()
    _validate(target, new_text)
    diff = "".join(difflib.unified_diff(target_text.splitlines(True), new_text.splitlines(True),
                                        f"a/stacks/Pulumi.{target}.yaml", f"b/stacks/Pulumi.{target}.yaml"))
    if dry_run:
        return PromotionResult(source, target, to_slot, promoted, changed=True, diff=diff)

    _write_atomic(stack_file(stacks_dir, target), new_text)
    active = str(target_serving["active_slot"])
    record = append_record(records_dir / PROMOTION_LOG, {
        "promoted_at": _utc(now),
        "topology": topology,
        "from": source,
        "to": target,
        "source_slot": from_slot,
        "target_slot": to_slot,
        "target_active_slot": active,
        "release": asdict(promoted),
        "replaced": replaced,
        "evidence": {k: evidence.get(k) for k in ("verified_at", "verifier", "endpoint_config_name", "k8s_revision",
                                                  "git_commit")},
        "skipped": [f"{topology}-{e}" for e in skipped],
        "forced": bool(force),
        "reason": reason.strip() if force and reason else None,
        "actor": actor,
        "git_commit": commit or git_commit(),
        "next_step": (f"serving: a reviewed change of active_slot {active} -> {to_slot}" if to_slot != active
                      else "serving: merging this change rolls the release out"),
    })
    return PromotionResult(source, target, to_slot, promoted, changed=True, diff=diff, record=record)


def status(topology: str, stacks_dir: Path = STACKS_DIR, records_dir: Path = RECORDS_DIR) -> list[str]:
    lines = []
    for env in promotion_path(topology, stacks_dir):
        stack = f"{topology}-{env}"
        document, _ = _load(stack_file(stacks_dir, stack))
        serving = _serving(document, stack)
        for slot in SLOTS:
            if slot not in serving["slots"]:
                continue
            release = Release.from_mapping(dict(serving["slots"][slot]), f"{stack} slot {slot}")
            evidence = find_evidence(stack, release, records_dir)
            mark = "active" if slot == serving["active_slot"] else "idle"
            proof = f"verified {evidence['verified_at']} by {evidence['verifier']}" if evidence else "not verified"
            lines.append(f"{stack:<18} {slot:<5} ({mark:<6}) {release.model} {release.version}  {proof}")
    return lines


# ---------------------------------------------------------------------------------------------
# CLI


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _cmd_promote(args: argparse.Namespace) -> int:
    missing = [flag for flag, value in (("--topology", args.topology), ("--from", args.source), ("--to", args.target))
               if value is None]
    if missing:
        args.parser.error(f"the following arguments are required: {', '.join(missing)} (or name a verb)")
    try:
        result = promote(args.topology, args.source, args.target, source_slot=args.slot, into=args.into,
                         force=args.force, reason=args.reason, actor=args.actor, now=_parse_time(args.now),
                         commit=args.git_commit, dry_run=args.dry_run, stacks_dir=Path(args.stacks_dir),
                         records_dir=Path(args.records_dir))
    except PromotionError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    if not result.changed:
        print(f"{result.target_stack} slot {result.target_slot} already holds {result.release.label()}: nothing to do")
        return 0
    print(result.diff, end="")
    verb = "would promote" if args.dry_run else "promoted"
    print(f"{verb} {result.release.label()}: {result.source_stack} -> {result.target_stack} slot {result.target_slot}")
    if result.record:
        print(f"recorded in promotions/{PROMOTION_LOG}; next: {result.record['next_step']}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    try:
        document, _ = _load(stack_file(Path(args.stacks_dir), args.stack))
        serving = _serving(document, args.stack)
        slot = _resolve_slot(serving, args.slot)
        release = Release.from_mapping(dict(serving["slots"].get(slot) or {}), f"{args.stack} slot {slot}")
    except (PromotionError, FileNotFoundError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    record = record_verification(args.stack, release, verifier=args.verifier, git_commit=args.git_commit or git_commit(),
                                 endpoint_config_name=args.endpoint_config_name, k8s_revision=args.k8s_revision,
                                 outcome=args.outcome, detail=args.detail, verified_at=_parse_time(args.verified_at),
                                 records_dir=Path(args.records_dir))
    print(f"recorded: {args.stack} {release.label()} {record['outcome']} at {record['verified_at']}")
    return 0


def check_prefix(path: Path, rev: str, repo: Path = REPO_ROOT) -> list[str]:
    """The file at git ``rev`` must be a byte prefix of the file now: only appends since ``rev``."""
    relative = path.resolve().relative_to(repo.resolve()).as_posix()
    shown = subprocess.run(["git", "show", f"{rev}:{relative}"], cwd=repo, capture_output=True)
    if shown.returncode != 0:
        return []  # the file did not exist at rev: everything in it is an append
    now = path.read_bytes() if path.is_file() else b""
    if not now.startswith(shown.stdout):
        return [f"{relative}: differs from {rev} before its end: earlier lines were rewritten or removed "
                "(the promotion records are append-only; restore them and append instead)"]
    return []


def import_records(sources: list[Path], target: Path) -> int:
    """Append the records of ``sources`` (e.g. CI evidence files) to ``target``, re-chained, oldest first."""
    records = [r for source in sources for r in read_records(source)]
    for record in sorted(records, key=lambda r: (r.get("verified_at", ""), r.get("stack", ""))):
        append_record(target, {k: v for k, v in record.items() if k != "prev_sha256"})
    return len(records)


def _cmd_import(args: argparse.Namespace) -> int:
    count = import_records(args.files, Path(args.records_dir) / VERIFICATIONS)
    print(f"appended {count} verification record(s) to promotions/{VERIFICATIONS}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    records = Path(args.records_dir)
    problems = check_chain(records / VERIFICATIONS) + check_chain(records / PROMOTION_LOG)
    if args.against:
        problems += check_prefix(records / VERIFICATIONS, args.against) + check_prefix(records / PROMOTION_LOG, args.against)
    for problem in problems:
        print(problem, file=sys.stderr)
    counts = {name: len(read_records(records / name)) for name in (VERIFICATIONS, PROMOTION_LOG)}
    print(f"{'broken' if problems else 'intact'}: " + ", ".join(f"{name} {n} line(s)" for name, n in counts.items()))
    return 1 if problems else 0


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        lines = status(args.topology, Path(args.stacks_dir), Path(args.records_dir))
    except PromotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines) if lines else f"no stacks for topology {args.topology}")
    return 0


def _dirs(parser: argparse.ArgumentParser, *, stacks: bool = True) -> None:
    if stacks:
        parser.add_argument("--stacks-dir", default=str(STACKS_DIR), help=argparse.SUPPRESS)
    parser.add_argument("--records-dir", default=str(RECORDS_DIR), help=argparse.SUPPRESS)


def register(commands: argparse._SubParsersAction) -> None:
    promote = commands.add_parser("promote", help="move a verified release to the next environment (and its verbs)",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    promote.add_argument("--topology", help="aws | onprem | hybrid")
    promote.add_argument("--from", dest="source", help="source environment, e.g. staging")
    promote.add_argument("--to", dest="target", help="target environment, e.g. prod")
    promote.add_argument("--slot", default="active", help="source slot: active (default), idle, blue or green")
    promote.add_argument("--into", default="idle", help="target slot: idle (default), active, blue or green")
    promote.add_argument("--force", action="store_true", help="allow skipping an environment (needs --reason)")
    promote.add_argument("--reason", help="why the skip is needed; recorded in promotions/log.jsonl")
    promote.add_argument("--actor", default=os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown",
                         help="who promotes (default $GITHUB_ACTOR or $USER)")
    promote.add_argument("--dry-run", action="store_true", help="print the change, write nothing")
    promote.add_argument("--now", help=argparse.SUPPRESS)
    promote.add_argument("--git-commit", help=argparse.SUPPRESS)
    _dirs(promote)
    promote.set_defaults(func=_cmd_promote, parser=promote)
    verbs = promote.add_subparsers(dest="promote_verb", metavar="VERB")

    record = verbs.add_parser("record-verification", help="record a post-deploy verification as promotion evidence",
                              description="Record a post-deploy verification as promotion evidence.")
    record.add_argument("--stack", required=True, help="the stack that was verified, e.g. aws-staging")
    record.add_argument("--slot", default="active", help="the slot whose release was verified (default active)")
    deployment = record.add_mutually_exclusive_group(required=True)
    deployment.add_argument("--endpoint-config-name", help="SageMaker: the endpoint config the endpoint really runs")
    deployment.add_argument("--k8s-revision", help="Kubernetes: the Deployment revision / pod-template hash smoke-tested")
    record.add_argument("--verifier", required=True, help="what checked it, e.g. lastmile.verify or onprem-smoke")
    record.add_argument("--outcome", choices=OUTCOMES, default="verified")
    record.add_argument("--detail", help="e.g. the failure reason SageMaker reported")
    record.add_argument("--git-commit", help="the commit that was deployed (default: HEAD)")
    record.add_argument("--verified-at", help="ISO time, UTC (default: now)")
    _dirs(record)
    record.set_defaults(func=_cmd_record)

    imported = verbs.add_parser("import-verifications", help="append verification records written by CI jobs",
                                description="Append verification records written elsewhere (CI jobs) to the evidence.")
    imported.add_argument("files", nargs="*", type=Path, metavar="FILE", help="verifications.jsonl files")
    _dirs(imported, stacks=False)
    imported.set_defaults(func=_cmd_import)

    check = verbs.add_parser("check-log", help="check that the promotion records are intact and append-only",
                             description="Check the sha256 chain of both promotion record files.")
    check.add_argument("--against", help="git revision whose records must be a prefix of today's (e.g. the PR base)")
    _dirs(check, stacks=False)
    check.set_defaults(func=_cmd_check)

    status_ = verbs.add_parser("status", help="what each stack of a topology serves, verified or not",
                               description="What each stack of a topology serves, and whether it was verified.")
    status_.add_argument("--topology", required=True, help="aws | onprem | hybrid")
    _dirs(status_)
    status_.set_defaults(func=_cmd_status)
