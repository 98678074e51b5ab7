"""Promotion: move a verified model release to the next environment of a topology.

    lastmile promote --topology aws --from staging --to prod            # into prod's idle slot
    lastmile promote --topology aws --from dev --to prod --force --reason "hotfix INC-42: ..."
    lastmile promote record-verification --stack aws-staging --endpoint-config-name cfg-1a2b --verifier lastmile.verify
    lastmile promote check-log [--against origin/main]                  # the records are append-only
    lastmile promote import-verifications build/evidence/*/verifications.jsonl   # CI evidence
    lastmile promote status --topology aws                              # what each stack serves, verified or not
    lastmile promote trust-key --name ci-ed25519 --environments dev,staging,prod --generate-ed25519 ci.pem  # once

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
``record-verification`` command). "Newest" is the last line in the file's order, never the dates a line
carries: a later ``failed`` line revokes the evidence (signed or not), and a date in the future is refused.
Evidence cannot be forced: fix the deployment and verify again.

Signatures. Each line is an in-toto Statement in a DSSE envelope (``lastmile.evidence``). The deploy
workflow signs it with a key people do not hold (``LASTMILE_EVIDENCE_KEY``: an Ed25519 CI secret, or
``LASTMILE_EVIDENCE_KMS_KEY``: an AWS KMS key only the deploy role may use); the public keys it may use, and
for which environments, are committed in ``promotions/trusted-keys/``. Every read verifies every signature.
Prod accepts only evidence signed by a trusted key; unsigned (``manual``) evidence is enough for dev and
staging.

Order. ``dev -> staging -> prod``, restricted to the stacks of the topology that exist: on-prem
``dev -> prod``, hybrid ``staging -> prod``. ``onprem-local`` is deployed to the local cluster on one
machine (``lastmile up onprem-local``): a place to try a release, not an environment of the path, so what
is verified there is no evidence for dev, staging or prod. Skipping a stack
needs ``--force --reason "..."``; going backwards is refused.

Records. Every promotion appends one signed (or, by hand, unsigned) statement to ``promotions/log.jsonl``.
Both files are append-only: each line carries ``prev_sha256``, the sha256 of the line before it, so a
rewritten or deleted line breaks the chain that ``check-log`` (and CI, against the pull request's base)
verifies. The chain gives order; trust comes from the signatures. A check that cannot run (git missing, a
revision unknown, KMS unreachable) exits 3 and never passes.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from lastmile import evidence, records
from lastmile.common import REPO_ROOT, STACKS_DIR
from lastmile.evidence import CannotCheck, PromotionError
from lastmile.exitcodes import ExitCode
from lastmile.records import PROMOTION_LOG, RELEASE_FIELDS, VERIFICATIONS
from lastmile.stack_edit import StackText, round_trip_yaml

RECORDS_DIR = REPO_ROOT / "promotions"

NAMESPACE = "lastmile"
SERVING_KEY = f"{NAMESPACE}:serving"
# `local` stacks (onprem-local) are deployed to a local cluster on one machine: a place to try a release,
# not an environment of the promotion path (nothing verified there is evidence for dev, staging or prod).
ENV_ORDER = ("dev", "staging", "prod")
SLOTS = ("blue", "green")
OUTCOMES = ("verified", "failed")
MIN_REASON_CHARS = 10


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
    target_active_slot: str = ""
    replaced: str | None = None  # words for the release the promotion overwrote (a staged candidate)


# ---------------------------------------------------------------------------------------------
# Evidence (signed statements in the append-only records: lastmile.evidence, lastmile.records)


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
    slot: str = "blue",
    endpoint_config_name: str | None = None,
    k8s_revision: str | None = None,
    outcome: str = "verified",
    detail: str | None = None,
    verified_at: datetime | None = None,
    now: datetime | None = None,
    ci_run: str | None = None,
    golden: dict[str, Any] | None = None,
    signer: Any | None = None,
    records_dir: Path = RECORDS_DIR,
) -> dict[str, Any]:
    """Append the result of a post-deploy check of ``stack`` to promotions/verifications.jsonl, as an in-toto
    Statement in a DSSE envelope, signed by ``signer`` (a key of promotions/trusted-keys/, which the deploy
    workflow holds) or unsigned (``signer=None``: manual evidence, never accepted for prod).

    Call it from ``lastmile.verify`` (SageMaker: ``endpoint_config_name`` the endpoint really runs) or from
    an on-prem smoke/readiness check (``k8s_revision``: the Deployment revision or pod-template hash
    that served the smoke requests). ``outcome="failed"`` revokes earlier evidence for the release, signed or
    not. ``verified_at`` (default: now) may not be in the future; the order of records is the file's, not
    their dates. ``golden``: the golden-set result (``lastmile.golden.GoldenResult.to_evidence()``).
    """
    rel = release if isinstance(release, Release) else Release.from_mapping(release, "release")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: allowed {', '.join(OUTCOMES)}")
    if bool(endpoint_config_name) == bool(k8s_revision):
        raise ValueError("pass exactly one of endpoint_config_name (SageMaker) or k8s_revision (Kubernetes)")
    recorded = now or datetime.now(UTC)
    checked = verified_at or recorded
    if checked > recorded + records.CLOCK_SKEW:
        raise PromotionError(f"--verified-at {records.utc(checked)} is in the future",
                             f"a verification is recorded after it ran; now is {records.utc(recorded)}",
                             "leave --verified-at out (now) or pass the time the check ran")
    predicate = {
        "stack": stack,
        "slot": slot,
        **asdict(rel),
        "endpoint_config_name": endpoint_config_name,
        "k8s_revision": k8s_revision,
        "outcome": outcome,
        "detail": detail,
        "verified_at": records.utc(checked),
        "recorded_at": records.utc(recorded),
        "verifier": verifier,
        "git_commit": git_commit,
        "ci_run": ci_run if signer is not None else None,
        "golden": golden,
    }
    body = evidence.statement("verification", predicate, predicate)
    records.append(records_dir / VERIFICATIONS, evidence.seal(body, signer))
    return {**predicate, "provenance": "ci" if signer is not None else "manual"}


def find_evidence(stack: str, release: Release, records_dir: Path = RECORDS_DIR) -> dict[str, Any] | None:
    """The newest verification of ``release`` in ``stack`` if its outcome is ``verified``, else None."""
    newest = _newest_verification(stack, release, records.require_intact(records_dir)[VERIFICATIONS])
    return newest if newest is not None and newest.get("outcome") == "verified" else None


def _newest_verification(stack: str, release: Release, entries: list[records.Entry]) -> dict[str, Any] | None:
    """The last record of (stack, release) in chain order: a later ``failed`` revokes, whatever the dates say."""
    matching = [e.record for e in entries
                if e.record["stack"] == stack and all(e.record[f] == getattr(release, f) for f in RELEASE_FIELDS)]
    return matching[-1] if matching else None


# ---------------------------------------------------------------------------------------------
# Stack files (ruamel round trip: comments, order and quoting stay)


def stack_file(stacks_dir: Path, stack: str) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def promotion_path(topology: str, stacks_dir: Path = STACKS_DIR) -> list[str]:
    """The environments of ``topology`` that have a stack file, in promotion order."""
    present = {p.name[len(f"Pulumi.{topology}-"):-len(".yaml")] for p in stacks_dir.glob(f"Pulumi.{topology}-*.yaml")}
    return [env for env in ENV_ORDER if env in present]


def _load(path: Path) -> tuple[Any, str]:
    text = path.read_text()
    return round_trip_yaml().load(text), text


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


def _validate(stack: str, text: str, stacks_dir: Path = STACKS_DIR) -> None:
    """The edited stack file must pass the same checks as `pulumi up` (the one stack-file reader; pure, no engine)."""
    from infra.settings.loader import ConfigError
    from lastmile.stackfile import StackFileError, stack_settings

    try:
        stack_settings(stack, stacks_dir, text=text)
    except (ConfigError, StackFileError) as error:
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


def _slot_serving(slots: Any, release: Release) -> str | None:
    """The target slot that already holds ``release`` (model, version, sha256), if any."""
    for slot, value in slots.items():
        if isinstance(value, dict) and all(str(value.get(f)) == getattr(release, f) for f in ("model", "version",
                                                                                              "sha256")):
            return str(slot)
    return None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in re.split(r"[.-]", version))


def _is_rollback(idle: Release, active: Release) -> bool:
    """The idle slot holds the rollback release when it is not newer than what the active slot serves.

    A newer idle release is a staged candidate that never served (promotion replaces it); an older one (or
    another model) is what the stack served before, kept so that rollback is one active_slot change.
    """
    return idle.model != active.model or _version_key(idle.version) <= _version_key(active.version)


def _only_the_slot_changed(stack: str, before: str, after: str, slot: str) -> None:
    """The edit changed the target slot and nothing else (an anchor or alias shared with another value would
    carry the change there): PromotionError otherwise."""
    old, new = round_trip_yaml().load(before), round_trip_yaml().load(after)
    old_serving, new_serving = old["config"][SERVING_KEY], new["config"][SERVING_KEY]
    old_serving["slots"][slot] = new_serving["slots"][slot]
    if _plain(old) != _plain(new):
        raise PromotionError(f"promoting into stacks/Pulumi.{stack}.yaml slot {slot} would change other values too",
                             "the slot shares YAML anchors or aliases with other parts of the file",
                             f"write slot {slot}'s release out in full (no &anchor, *alias or <<: merge), then "
                             "promote again")


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _check_command(topology: str, stack: str) -> str:
    if topology == "onprem":
        return "the readiness check of the active slot (kubectl wait --for=condition=Available)"
    return f"`lastmile verify --stack {stack}`"


def _deployment_flag(topology: str) -> str:
    return "--k8s-revision <revision>" if topology == "onprem" else "--endpoint-config-name <name>"


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
    overwrite_rollback: bool = False,
    signer: Any | None = None,
    stacks_dir: Path = STACKS_DIR,
    records_dir: Path = RECORDS_DIR,
) -> PromotionResult:
    """Copy the source slot's release into the target stack and log it (a statement sealed by ``signer``, or
    unsigned when None); see the module docstring."""
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

    verifications = records.require_intact(records_dir)[VERIFICATIONS]
    source_doc, _ = _load(stack_file(stacks_dir, source))
    target_file = StackText.read(stack_file(stacks_dir, target))
    target_doc, target_text = target_file.document, target_file.text
    source_serving, target_serving = _serving(source_doc, source), _serving(target_doc, target)

    from_slot = _resolve_slot(source_serving, source_slot)
    if from_slot not in source_serving["slots"]:
        raise PromotionError(f"{source} has no release in slot {from_slot}",
                             f"slots with a release: {', '.join(str(s) for s in source_serving['slots'])}",
                             "pass --slot active (default) or a slot that holds a release")
    release = Release.from_mapping(dict(source_serving["slots"][from_slot]), f"{source} {SERVING_KEY}.slots.{from_slot}")

    served = _slot_serving(target_serving["slots"], release)
    if served is not None:  # the target holds it already: nothing moves, so no evidence is needed
        return PromotionResult(source, target, served, release, changed=False, diff="",
                               target_active_slot=str(target_serving["active_slot"]))
    newest = _newest_verification(source, release, verifications)
    proof = newest if newest is not None and newest["outcome"] == "verified" else None
    if proof is None:
        failed = newest
        why = (f"its newest verification there ({failed['verified_at']}, {failed['verifier']}) failed"
               + (f": {failed['detail']}" if failed.get("detail") else "")
               if failed else f"no verification of it in {source} is recorded in promotions/{VERIFICATIONS}")
        raise PromotionError(f"{release.label()} has no evidence of a good deployment in {source}", why,
                             f"deploy it to {source} and verify it: the deploy workflow does both and records the "
                             f"result; by hand, after {_check_command(topology, source)} passed, run `lastmile "
                             f"promote record-verification --stack {source} {_deployment_flag(topology)} "
                             "--verifier <who checked>`; then promote again")

    if target_env == "prod" and proof["signed_by"] is None:
        raise PromotionError(f"{release.label()} has only manual evidence in {source}; prod needs evidence signed "
                             "by a trusted CI key",
                             f"the verification relied on (promotions/{VERIFICATIONS}, {proof['verified_at']}, "
                             f"{proof['verifier']}) is unsigned: a person recorded it, or a run without "
                             f"{' or '.join(evidence.SIGNER_ENVS)}; environment variables such as GITHUB_ACTIONS "
                             "prove nothing. A release reaches prod only on a statement signed by a key of "
                             "promotions/trusted-keys/ allowed for "
                             f"{records.environment_of(source)}, which the deploy workflow holds and people do not",
                             f"deploy {source} through the deploy workflow, which verifies and signs the result, "
                             "then `lastmile promote import-verifications` its evidence; manual evidence cannot be "
                             "forced into prod")
    golden = proof.get("golden") or {}
    if target_env == "prod" and not golden.get("passed"):
        raise PromotionError(f"{release.label()} has no passed golden set in its evidence from {source}",
                             "a release reaches prod only after its golden inference (the rows pinned in "
                             "model_artifacts/manifest.json) answered as pinned on the endpoint it was deployed to",
                             f"record the verification of {source} with --golden-sagemaker-endpoint <endpoint> (SageMaker) "
                             "or --golden-url <the slot's V2 URL> (on-prem): the deploy workflow does")
    to_slot = _resolve_slot(target_serving, into)
    if to_slot not in SLOTS:
        raise PromotionError(f"--into {into}", "allowed: idle, active, blue, green", "pick one of those")
    promoted = Release(**{**asdict(release), "image": _target_image(topology, release, source_doc, target_doc)})
    slots = target_serving["slots"]
    active = str(target_serving["active_slot"])
    current = slots.get(to_slot)
    replaced = {f: str(current.get(f)) for f in RELEASE_FIELDS} if current is not None else None
    replaced_words = None
    if current is not None and to_slot != active:
        held = Release.from_mapping(dict(current), f"{target} {SERVING_KEY}.slots.{to_slot}")
        serving_now = Release.from_mapping(dict(slots[active]), f"{target} {SERVING_KEY}.slots.{active}")
        if _is_rollback(held, serving_now) and not overwrite_rollback:
            raise PromotionError(
                f"promoting into {target} slot {to_slot} would overwrite its rollback release {held.label()}",
                f"{to_slot} is idle and holds the release {target} served before {serving_now.label()} (slot "
                f"{active}); once it is overwritten, rolling back means promoting it again",
                f"first make sure {serving_now.version} is good in {target} (it has served long enough), then pass "
                "--overwrite-rollback-release to confirm; or promote --into a slot that holds no release")
        replaced_words = (f"the rollback release {held.label()} (--overwrite-rollback-release)"
                          if _is_rollback(held, serving_now) else f"the staged candidate {held.label()}, never served")

    if current is None:
        entry = CommentedMap((f, getattr(promoted, f)) for f in RELEASE_FIELDS)
        position = sum(1 for s in slots if SLOTS.index(str(s)) < SLOTS.index(to_slot)) if all(str(s) in SLOTS for s in slots) else len(slots)
        slots.insert(position, to_slot, entry)
    else:
        for f in RELEASE_FIELDS:
            current[f] = getattr(promoted, f)
    new_text = target_file.render(target_doc)
    _only_the_slot_changed(target, target_text, new_text, to_slot)
    _validate(target, new_text, stacks_dir)
    diff = "".join(difflib.unified_diff(target_text.splitlines(True), new_text.splitlines(True),
                                        f"a/stacks/Pulumi.{target}.yaml", f"b/stacks/Pulumi.{target}.yaml"))
    if dry_run:
        return PromotionResult(source, target, to_slot, promoted, changed=True, diff=diff, target_active_slot=active,
                               replaced=replaced_words)

    record = {
        "promoted_at": records.utc(now or datetime.now(UTC)),
        "topology": topology,
        "from": source,
        "to": target,
        "source_slot": from_slot,
        "target_slot": to_slot,
        "target_active_slot": active,
        "release": asdict(promoted),
        "replaced": replaced,
        "overwrote_rollback_release": bool(replaced_words and overwrite_rollback and "rollback" in replaced_words),
        "evidence": {k: proof.get(k) for k in ("verified_at", "verifier", "endpoint_config_name", "k8s_revision",
                                               "git_commit", "signed_by", "statement_sha256")},
        "skipped": [f"{topology}-{e}" for e in skipped],
        "forced": bool(force),
        "reason": reason.strip() if force and reason else None,
        "actor": actor,
        "git_commit": commit or git_commit(),
        "next_step": (f"serving: a reviewed change of active_slot {active} -> {to_slot}" if to_slot != active
                      else "serving: merging this change rolls the release out"),
    }
    envelope = evidence.seal(evidence.statement("promotion", record["release"], record), signer)
    target_file.write(new_text)
    records.append(records_dir / PROMOTION_LOG, envelope)
    return PromotionResult(source, target, to_slot, promoted, changed=True, diff=diff, record=record,
                           target_active_slot=active, replaced=replaced_words)


def status(topology: str, stacks_dir: Path = STACKS_DIR, records_dir: Path = RECORDS_DIR) -> list[str]:
    verifications = records.require_intact(records_dir)[VERIFICATIONS]
    lines = []
    for env in promotion_path(topology, stacks_dir):
        stack = f"{topology}-{env}"
        document, _ = _load(stack_file(stacks_dir, stack))
        serving = _serving(document, stack)
        for slot in SLOTS:
            if slot not in serving["slots"]:
                continue
            release = Release.from_mapping(dict(serving["slots"][slot]), f"{stack} slot {slot}")
            newest = _newest_verification(stack, release, verifications)
            mark = "active" if slot == serving["active_slot"] else "idle"
            proof = "not verified" if newest is None else (
                f"{newest['outcome']} {newest['verified_at']} by {newest['verifier']} "
                + (f"(signed: {newest['signed_by']})" if newest["signed_by"] else "(unsigned: manual)"))
            lines.append(f"{stack:<18} {slot:<5} ({mark:<6}) {release.model} {release.version}  {proof}")
    return lines


# ---------------------------------------------------------------------------------------------
# CLI


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PromotionError(f"time {value!r} is not an ISO time", "allowed: e.g. 2026-05-01T12:00:00Z (UTC)",
                             "pass an ISO 8601 time, or leave it out for now") from None


def _cmd_promote(args: argparse.Namespace) -> int:
    missing = [flag for flag, value in (("--topology", args.topology), ("--from", args.source), ("--to", args.target))
               if value is None]
    if missing:
        args.parser.error(f"the following arguments are required: {', '.join(missing)} (or name a verb)")
    try:
        signer = _signer(args, f"{args.topology}-{args.target}")
        result = promote(args.topology, args.source, args.target, source_slot=args.slot, into=args.into,
                         force=args.force, reason=args.reason, actor=args.actor, now=_parse_time(args.now),
                         commit=args.git_commit, dry_run=args.dry_run, overwrite_rollback=args.overwrite_rollback,
                         signer=signer, stacks_dir=Path(args.stacks_dir), records_dir=Path(args.records_dir))
    except PromotionError as error:
        return _refused("lastmile promote", error, "nothing was written")
    if not result.changed:
        print(f"{result.release.label()} is already in {result.target_stack} slot {result.target_slot} "
              f"({'active' if result.target_slot == result.target_active_slot else 'idle'}): nothing to promote"
              + ("" if result.target_slot == result.target_active_slot else
                 f"; to serve it, change {SERVING_KEY}.active_slot to {result.target_slot} (a reviewed change)"))
        return ExitCode.OK
    print(result.diff, end="")
    verb = "would promote" if args.dry_run else "promoted"
    print(f"{verb} {result.release.label()}: {result.source_stack} -> {result.target_stack} slot {result.target_slot}")
    if result.replaced:
        print(f"it replaces {result.replaced}")
    if result.record:
        print(f"recorded in promotions/{PROMOTION_LOG} ({_sealed_words(signer)}); next: {result.record['next_step']}")
    return ExitCode.OK


def _refused(verb: str, error: PromotionError, consequence: str) -> int:
    """Print a refusal (exit 2) or a check that could not run (exit 3); the error knows its code."""
    words = "could not check" if isinstance(error, CannotCheck) else "refused"
    print(f"{verb}: {words}, {consequence}: {error}", file=sys.stderr)
    return int(error.exit_code)


def _signer(args: argparse.Namespace, stack: str) -> Any | None:
    """The signing key the environment names (LASTMILE_EVIDENCE_KEY, _KEY_FILE or _KMS_KEY), or None."""
    keys = records.trusted_keys(Path(args.records_dir))
    return evidence.signer_from_env(os.environ, keys, records.environment_of(stack))


def _sealed_words(signer: Any | None) -> str:
    if signer is None:
        return "unsigned: manual, not accepted as evidence for prod"
    return f"signed by trusted key {signer.public_key.keyid[:16]}"


def verified_release(stack: str, slot_choice: str, *, endpoint_config_name: str | None, k8s_revision: str | None,
                     stacks_dir: Path = STACKS_DIR) -> tuple[str, Release]:
    """The (slot, release) a verification of ``stack`` is about, after checking it could be true.

    The stack file must be one ``pulumi up`` accepts (so the release is in model_artifacts/manifest.json with
    its sha256); the slot must serve traffic (active, or the SageMaker shadow); the deployment named must
    have the shape lastmile gives that stack's deployments: SageMaker endpoint configs are named
    ``<endpoint name>-<12 hex>`` (infra/topologies/aws.py), Kubernetes revisions ``<namespace>/<slot>/<n>``
    (the deploy workflow's readiness step). Raises PromotionError naming the field, value and fix.
    """
    settings = _deployable_settings(stack, stacks_dir)
    serving = settings.serving
    slot = _resolve_slot({"active_slot": serving.active_slot.value}, slot_choice)
    served = {serving.active_slot.value} | ({serving.shadow_slot.value} if serving.shadow_slot else set())
    if slot not in served:
        raise PromotionError(f"--slot {slot_choice}: {stack} slot {slot} serves no traffic",
                             f"only a slot that serves can be verified; {stack} serves {', '.join(sorted(served))}",
                             "pass --slot active (default)" + (" or the shadow slot" if serving.shadow_slot else ""))
    release = Release(**serving.slots[serving.active_slot if slot == serving.active_slot.value else
                                      serving.shadow_slot].model_dump(include=set(RELEASE_FIELDS)))
    check_deployment(settings, stack, slot, endpoint_config_name=endpoint_config_name, k8s_revision=k8s_revision)
    return slot, release


def _deployable_settings(stack: str, stacks_dir: Path) -> Any:
    """The stack's settings as ``pulumi up`` parses them; PromotionError when there is no such stack or it would
    not deploy."""
    from infra.settings.loader import ConfigError
    from lastmile.stackfile import StackFileError, stack_settings

    try:
        return stack_settings(stack, stacks_dir)
    except FileNotFoundError as error:
        raise PromotionError(f"--stack {stack}", str(error).splitlines()[0], "name a stack of stacks/") from None
    except (ConfigError, StackFileError) as error:
        raise PromotionError(f"--stack {stack}: its stack file would not deploy, so nothing of it can have been "
                             "verified", str(error), "fix the stack file first") from None


def check_deployment(settings: Any, stack: str, slot: str, *, endpoint_config_name: str | None,
                     k8s_revision: str | None) -> None:
    """The deployment named has the shape lastmile gives ``stack``'s deployments; PromotionError otherwise."""
    if settings.aws is not None:
        from infra.topologies.aws import endpoint_config_name_pattern, sagemaker_endpoint_name

        endpoint = sagemaker_endpoint_name("lastmile", stack, settings.aws.account_id, settings.aws.region)
        pattern = endpoint_config_name_pattern(endpoint)
        if k8s_revision or not endpoint_config_name or not re.fullmatch(pattern, endpoint_config_name):
            given = f"--endpoint-config-name {endpoint_config_name!r}" if endpoint_config_name else \
                f"--k8s-revision {k8s_revision!r}"
            raise PromotionError(f"{given} is not a deployment of {stack}",
                                 f"{stack} runs on SageMaker endpoint {endpoint}; its endpoint configs are named "
                                 f"{endpoint}-<12 hex digits>",
                                 f"pass the name `lastmile verify --stack {stack}` checked: `pulumi stack output "
                                 f"endpoint_config_name --stack {stack}`")
    else:
        namespace = settings.onprem.namespace
        if endpoint_config_name or not k8s_revision or not re.fullmatch(rf"{re.escape(namespace)}/{slot}/[1-9]\d*",
                                                                        k8s_revision):
            given = f"--k8s-revision {k8s_revision!r}" if k8s_revision else \
                f"--endpoint-config-name {endpoint_config_name!r}"
            raise PromotionError(f"{given} is not a deployment of {stack} slot {slot}",
                                 f"{stack} runs on Kubernetes in namespace {namespace}; its revisions are recorded "
                                 f"as {namespace}/{slot}/<Deployment revision>",
                                 f"pass --k8s-revision {namespace}/{slot}/<the deployment.kubernetes.io/revision "
                                 "annotation of the slot's Deployment>")


def _cmd_record(args: argparse.Namespace) -> int:
    verb, consequence = "lastmile promote record-verification", "nothing was recorded"
    try:
        records.require_intact(Path(args.records_dir))
        slot, release = verified_release(args.stack, args.slot, endpoint_config_name=args.endpoint_config_name,
                                         k8s_revision=args.k8s_revision, stacks_dir=Path(args.stacks_dir))
        verified_at = _parse_time(args.verified_at)
        signer = _signer(args, args.stack)
        golden = _golden_check(args, release)
        outcome, detail = args.outcome, args.detail
        if golden is not None and not golden.passed:
            outcome, detail = "failed", golden.message()  # a failing golden set revokes the release's evidence
        record = record_verification(args.stack, release, slot=slot, verifier=args.verifier,
                                     git_commit=args.git_commit or git_commit(),
                                     endpoint_config_name=args.endpoint_config_name, k8s_revision=args.k8s_revision,
                                     outcome=outcome, detail=detail, verified_at=verified_at, ci_run=_ci_run(),
                                     golden=golden.to_evidence() if golden is not None else None, signer=signer,
                                     records_dir=Path(args.records_dir))
    except PromotionError as error:
        return _refused(verb, error, consequence)
    except _GoldenUnavailable as error:
        print(f"{verb}: could not ask the endpoint, {consequence}: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    if golden is not None:
        print(golden.message(), file=sys.stdout if golden.passed else sys.stderr)
    print(f"recorded: {args.stack} slot {slot} {release.label()} {record['outcome']} at {record['verified_at']} "
          f"({_sealed_words(signer)})")
    if golden is not None and not golden.passed:
        print(f"{verb}: the golden set failed: {release.label()} is not promoted from {args.stack} and must not "
              "receive traffic", file=sys.stderr)
        return ExitCode.FINDINGS
    return ExitCode.OK


def _ci_run() -> str | None:
    """The workflow run's URL, kept in a signed statement as a pointer to its logs (it proves nothing by itself)."""
    if not os.environ.get("GITHUB_RUN_ID"):
        return None
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{os.environ.get('GITHUB_REPOSITORY', '?')}/actions/runs/{os.environ['GITHUB_RUN_ID']}"


class _GoldenUnavailable(Exception):
    """The endpoint the golden set was to be asked could not be reached."""


def _golden_check(args: argparse.Namespace, release: Release) -> Any:
    """Run the release's golden set against the endpoint the arguments name (None: no endpoint named)."""
    if not (args.golden_url or args.golden_sagemaker_endpoint):
        return None
    from lastmile import golden

    try:
        golden_set = golden.load_golden_set(release.model, release.version)
        region = args.golden_region or _stack_region(args.stack, Path(args.stacks_dir))
        return golden.run_check(golden_set, url=args.golden_url, sagemaker_endpoint=args.golden_sagemaker_endpoint,
                                region=region, ca_file=args.golden_ca_file)
    except golden.GoldenError as error:
        raise PromotionError("the golden check cannot run", str(error),
                             "pass one of --golden-url and --golden-sagemaker-endpoint (with --golden-region "
                             "when the stack names no lastmile:aws.region)") from None
    except golden.EndpointUnavailable as error:
        raise _GoldenUnavailable(str(error)) from None


def _stack_region(stack: str, stacks_dir: Path) -> str | None:
    document = round_trip_yaml().load((stacks_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    return ((document.get("config") or {}).get(f"{NAMESPACE}:aws") or {}).get("region")


def import_records(sources: list[Path], records_dir: Path, stacks_dir: Path = STACKS_DIR) -> tuple[int, int]:
    """Append the verification statements of ``sources`` (CI evidence files) to the records, each checked first.

    Every line of every file must pass what a read checks (its file's chain, envelope, signatures, schema, no
    future date) and be about a stack of ``stacks_dir`` with a deployment of that stack's shape and a release
    model_artifacts/manifest.json pins; a ``verified`` statement must be signed by a trusted key (CI evidence is
    signed; a ``failed`` one revokes signed or not). Otherwise PromotionError naming every bad line, and nothing
    is appended. Envelopes are appended unchanged, oldest ``recorded_at`` first, re-chained; statements already
    in the records are skipped. Returns (appended, already present)."""
    current = records.require_intact(records_dir)[VERIFICATIONS]
    keys = records.trusted_keys(records_dir)
    problems, incoming = [], []
    for source in sources:
        entries, found = records.read(source, keys)
        problems += [f"{source.parent}/{problem}" for problem in found]
        lines = {n: json.loads(line) for n, line in enumerate(source.read_bytes().splitlines(), 1) if line.strip()}
        for entry in entries:
            problems += [f"{source}:{entry.line}: {problem}" for problem in _import_problems(entry, stacks_dir)]
            incoming.append((entry.record["recorded_at"], entry, lines[entry.line]["dsse"]))
    if problems:
        raise PromotionError("the evidence to import was refused: " + "; ".join(problems),
                             "imported statements become promotion evidence, so each is checked as if it had been "
                             "recorded here",
                             "import the verifications.jsonl files the deploy workflow uploaded, unedited; record "
                             "manual evidence with `lastmile promote record-verification` instead")
    present = {entry.opened.payload_sha256 for entry in current}
    added = 0
    for _, entry, envelope in sorted(incoming, key=lambda item: item[0]):
        if entry.opened.payload_sha256 not in present:
            records.append(records_dir / VERIFICATIONS, envelope)
            present.add(entry.opened.payload_sha256)
            added += 1
    return added, len(incoming) - added


def _import_problems(entry: records.Entry, stacks_dir: Path) -> list[str]:
    from infra.manifest import load_manifest

    record = entry.record
    if record["outcome"] == "verified" and record["signed_by"] is None:
        return ["an unsigned `verified` statement: imported evidence must be signed by a key of "
                "promotions/trusted-keys/ (the deploy workflow's)"]
    try:
        settings = _deployable_settings(record["stack"], stacks_dir)
        check_deployment(settings, record["stack"], record["slot"], endpoint_config_name=record["endpoint_config_name"],
                         k8s_revision=record["k8s_revision"])
    except PromotionError as error:
        return [f"{error.what}: {error.why}"]
    pinned = load_manifest().get((record["model"], record["version"]))
    if pinned is None or pinned.sha256 != record["sha256"]:
        return [f"release {record['model']} {record['version']} sha256 {record['sha256'][:12]} is not pinned by "
                "model_artifacts/manifest.json"]
    if settings.aws is not None and record["image"] not in pinned.sagemaker_images.values():
        return [f"image {record['image']!r} is not a SageMaker image the manifest pins for {record['model']}"]
    return []


def _cmd_import(args: argparse.Namespace) -> int:
    missing = [f"{path}: no such file" for path in args.files if not Path(path).is_file()]
    try:
        if missing:
            raise PromotionError("the evidence to import was refused: " + "; ".join(missing), "nothing to read",
                                 "name the verifications.jsonl files the deploy workflow uploaded")
        added, present = import_records([Path(f) for f in args.files], Path(args.records_dir), Path(args.stacks_dir))
    except PromotionError as error:
        return _refused("lastmile promote import-verifications", error, "nothing was appended")
    print(f"appended {added} verification record(s) to promotions/{VERIFICATIONS}"
          + (f"; {present} already there" if present else ""))
    return ExitCode.OK


def _cmd_check(args: argparse.Namespace) -> int:
    directory = Path(args.records_dir)
    try:
        keys = records.trusted_keys(directory)
        read_files = {name: records.read(directory / name, keys) for name in (VERIFICATIONS, PROMOTION_LOG)}
        problems = [problem for _, found in read_files.values() for problem in found]
        if args.against:
            problems += [p for name in read_files for p in records.check_prefix(directory / name, args.against)]
    except PromotionError as error:
        return _refused("lastmile promote check-log", error, "the records were not checked")
    for problem in problems:
        print(problem, file=sys.stderr)
    signed = sum(1 for entries, _ in read_files.values() for e in entries if e.opened.signed_by)
    print(f"{'broken' if problems else 'intact'}: "
          + ", ".join(f"{name} {len(entries)} good line(s)" for name, (entries, _) in read_files.items())
          + f"; {signed} signed by a trusted key, the others unsigned (manual)")
    return ExitCode.FINDINGS if problems else ExitCode.OK


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        lines = status(args.topology, Path(args.stacks_dir), Path(args.records_dir))
    except PromotionError as error:
        return _refused("lastmile promote status", error, "nothing to show")
    if not lines:
        print(f"lastmile promote status: no stacks for topology {args.topology!r}\n  allowed: aws, onprem, hybrid\n"
              "  fix: pass --topology aws, onprem or hybrid", file=sys.stderr)
        return ExitCode.REFUSED
    print("\n".join(lines))
    return ExitCode.OK


def trust_key(name: str, environments: list[str], *, generate_ed25519: Path | None = None,
              kms_key: str | None = None, records_dir: Path = RECORDS_DIR) -> Path:
    """Write promotions/trusted-keys/NAME.json for a new Ed25519 key (its private half to ``generate_ed25519``,
    mode 0600, for the CI secret) or for an AWS KMS key (its public half read with kms:GetPublicKey)."""
    from infra.settings.common import Environment

    allowed = [e.value for e in Environment]
    wrong = [e for e in environments if e not in allowed]
    if wrong or not environments or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise PromotionError(f"--name {name!r} --environments {','.join(environments)!r}",
                             f"a name of lowercase letters, digits and '-'; environments among {', '.join(allowed)}",
                             "e.g. --name ci-ed25519 --environments dev,staging,prod")
    target = records_dir / records.TRUSTED_KEYS / f"{name}.json"
    if target.exists() or (generate_ed25519 is not None and generate_ed25519.exists()):
        raise PromotionError(f"{target if target.exists() else generate_ed25519} exists", "a key is never overwritten",
                             "pick another --name or path; to retire a key, delete its file in a reviewed change")
    if kms_key is not None:
        public, where = evidence.kms_public_key(kms_key), f"AWS KMS key {kms_key} ({evidence.KMS_KEY_ENV})"
    else:
        public, private = evidence.generate_ed25519()
        assert generate_ed25519 is not None
        generate_ed25519.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(generate_ed25519, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(private)
        where = f"Ed25519 private key in the CI secret {evidence.KEY_ENV}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(evidence.trusted_key_document(public, environments, where))
    return target


def _cmd_trust_key(args: argparse.Namespace) -> int:
    try:
        path = trust_key(args.name, [e for e in args.environments.split(",") if e],
                         generate_ed25519=args.generate_ed25519, kms_key=args.kms_key,
                         records_dir=Path(args.records_dir))
    except PromotionError as error:
        return _refused("lastmile promote trust-key", error, "nothing was written")
    print(f"wrote {path}: commit it in a pull request (CODEOWNERS reviews promotions/trusted-keys/)")
    if args.generate_ed25519:
        print(f"the private key is in {args.generate_ed25519} (mode 0600): store it as the CI secret "
              f"{evidence.KEY_ENV} of the deploy environments, then delete the file; never commit it")
    return ExitCode.OK


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
    promote.add_argument("--overwrite-rollback-release", dest="overwrite_rollback", action="store_true",
                         help="allow replacing the release the target's idle slot keeps for rollback (it is lost)")
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
    golden = record.add_mutually_exclusive_group()
    golden.add_argument("--golden-url", help="ask the slot's V2 endpoint (on-prem: its preview Service) the release's "
                                             "golden set first; a failing row records the release as failed")
    golden.add_argument("--golden-sagemaker-endpoint", help="ask this SageMaker endpoint the release's golden set "
                                                            "first; a failing row records the release as failed")
    record.add_argument("--golden-region", help="AWS region of that endpoint (default: the stack's lastmile:aws.region)")
    record.add_argument("--golden-ca-file", help="PEM CA bundle for an https --golden-url")
    _dirs(record)
    record.set_defaults(func=_cmd_record)

    imported = verbs.add_parser("import-verifications", help="append verification records written by CI jobs",
                                description="Append verification records written elsewhere (CI jobs) to the evidence, "
                                            "each checked (signature, stack, deployment, release, schema) first.")
    imported.add_argument("files", nargs="*", type=Path, metavar="FILE", help="verifications.jsonl files")
    _dirs(imported)
    imported.set_defaults(func=_cmd_import)

    check = verbs.add_parser("check-log", help="check that the promotion records are intact and append-only",
                             description="Check the sha256 chain of both promotion record files.")
    check.add_argument("--against", help="git revision whose records must be a prefix of today's (e.g. the PR base)")
    _dirs(check, stacks=False)
    check.set_defaults(func=_cmd_check)

    trust = verbs.add_parser("trust-key", help="add a public key that may sign evidence (once per team)",
                             description="Write promotions/trusted-keys/NAME.json: the public half of a signing key "
                                         "the deploy workflow holds. Commit it in a reviewed pull request.")
    trust.add_argument("--name", required=True, help="file name of the key, e.g. ci-ed25519")
    trust.add_argument("--environments", required=True, help="what it may sign, e.g. dev,staging,prod")
    source = trust.add_mutually_exclusive_group(required=True)
    source.add_argument("--generate-ed25519", type=Path, metavar="PRIVATE_KEY_FILE",
                        help="generate an Ed25519 key; its private half goes to this new file, for the CI secret")
    source.add_argument("--kms-key", help="an AWS KMS asymmetric signing key (id, ARN or alias/NAME)")
    _dirs(trust, stacks=False)
    trust.set_defaults(func=_cmd_trust_key)

    status_ = verbs.add_parser("status", help="what each stack of a topology serves, verified or not",
                               description="What each stack of a topology serves, and whether it was verified.")
    status_.add_argument("--topology", required=True, help="aws | onprem | hybrid")
    _dirs(status_)
    status_.set_defaults(func=_cmd_status)
