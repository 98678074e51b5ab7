"""The append-only promotion records: ``promotions/verifications.jsonl`` and ``promotions/log.jsonl``.

Owns the line format — ``{"dsse": <envelope>, "prev_sha256": <sha256 of the line before>}`` — appending, and
reading with every check a reader must make: the chain (order, nothing rewritten), the committed prefix in git
(nothing removed since a revision), every envelope and its signatures (``lastmile.evidence``), the schema of
what each statement says, dates (none in the future) and replays (a signed statement copied to a later line).
Order is the chain's: the last matching line is the newest, whatever dates it carries. Never decides what
evidence a promotion needs (``lastmile.promote``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from infra.settings.common import SHA256_PATTERN, Strict
from lastmile.common import REPO_ROOT
from lastmile.evidence import CannotCheck, Opened, PromotionError, TrustedKey, load_trusted_keys, open_envelope

VERIFICATIONS = "verifications.jsonl"
PROMOTION_LOG = "log.jsonl"
TRUSTED_KEYS = "trusted-keys"
KINDS = {VERIFICATIONS: "verification", PROMOTION_LOG: "promotion"}
CLOCK_SKEW = timedelta(minutes=5)
UTC_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
RELEASE_FIELDS = ("model", "version", "sha256", "image")


class VerificationPredicate(Strict):
    """What a verification statement says (``record_verification`` writes it; every read checks it)."""

    stack: str = Field(pattern=r"^[a-z]+-[a-z]+$")
    slot: Literal["blue", "green"]
    model: str
    version: str
    sha256: str = Field(pattern=SHA256_PATTERN)
    image: str
    endpoint_config_name: str | None
    k8s_revision: str | None
    outcome: Literal["verified", "failed"]
    detail: str | None
    verified_at: str = Field(pattern=UTC_TIME)
    recorded_at: str = Field(pattern=UTC_TIME)
    verifier: str
    git_commit: str
    ci_run: str | None
    golden: dict[str, Any] | None


class PromotionPredicate(Strict):
    """What a promotion statement says (``promote`` writes it)."""

    promoted_at: str = Field(pattern=UTC_TIME)
    topology: str
    to: str
    source_slot: str
    target_slot: str
    target_active_slot: str
    release: dict[str, str]
    replaced: dict[str, str] | None
    overwrote_rollback_release: bool
    evidence: dict[str, Any]
    skipped: list[str]
    forced: bool
    reason: str | None
    actor: str
    git_commit: str
    next_step: str
    from_: str = Field(alias="from")


PREDICATES = {"verification": VerificationPredicate, "promotion": PromotionPredicate}


def utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("pass an aware datetime (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def line_sha256(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def append(path: Path, envelope: dict[str, Any]) -> None:
    """Append ``envelope`` as one line chained to the previous line; earlier bytes are never rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for line in path.read_bytes().splitlines() if line.strip()] if path.is_file() else []
    chained = {"dsse": envelope, "prev_sha256": line_sha256(lines[-1]) if lines else None}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(chained, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")


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
        expected = line_sha256(previous) if previous is not None else None
        if not isinstance(record, dict) or record.get("prev_sha256") != expected:
            found = record.get("prev_sha256") if isinstance(record, dict) else None
            problems.append(f"{path.name}:{number}: prev_sha256 {found} != {expected}: "
                            "a line before it was rewritten, reordered or deleted")
        previous = line
    return problems


@dataclass(frozen=True)
class Entry:
    """One checked line: where it is, what it says, who signed it."""

    line: int
    opened: Opened

    @property
    def record(self) -> dict[str, Any]:
        """The statement's predicate, with who sealed it: ``signed_by`` (a trusted key's name) or None (manual)."""
        signer = self.opened.signed_by
        return {**self.opened.predicate, "signed_by": signer.name if signer else None,
                "provenance": "ci" if signer else "manual", "statement_sha256": self.opened.payload_sha256}


def read(path: Path, keys: dict[str, TrustedKey], now: datetime | None = None) -> tuple[list[Entry], list[str]]:
    """Every line of ``path`` checked (chain, envelope, signatures, schema, dates, replays), in chain order."""
    problems = check_chain(path)
    entries: list[Entry] = []
    if not path.is_file():
        return entries, problems
    kind = KINDS[path.name] if path.name in KINDS else "verification"
    latest = (now or datetime.now(UTC)) + CLOCK_SKEW
    seen: dict[str, int] = {}
    newest_recorded: dict[tuple[str, ...], str] = {}
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            wrapped = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue  # check_chain reported it
        if wrapped is None:
            continue
        where = f"{path.name}:{number}"
        if not isinstance(wrapped, dict) or "dsse" not in wrapped:
            problems.append(f"{where}: a legacy unsigned line (no dsse envelope): not evidence; see promotions/README.md")
            continue
        opened, found = open_envelope(wrapped["dsse"], keys)
        found += _content_problems(opened, kind, latest) if opened else []
        # A signed statement copied to a later line would outlive what came after it (a revocation): refused.
        # Unsigned statements claim nothing a person could not type again, so an honest repeat is allowed.
        signed = opened is not None and opened.signed_by is not None
        if signed and opened.payload_sha256 in seen:
            found.append(f"replays the signed statement of line {seen[opened.payload_sha256]}")
        if signed and not found and kind == "verification":
            subject = tuple(str(opened.predicate[f]) for f in ("stack", *RELEASE_FIELDS))
            recorded = opened.predicate["recorded_at"]
            if recorded < newest_recorded.get(subject, ""):
                found.append(f"recorded_at {recorded} is before an earlier line's ({newest_recorded[subject]}) for "
                             "the same stack and release: lines were reordered or an old statement was re-appended")
            newest_recorded[subject] = max(recorded, newest_recorded.get(subject, ""))
        problems += [f"{where}: {problem}" for problem in found]
        if opened and not found:
            seen.setdefault(opened.payload_sha256, number)
            entries.append(Entry(number, opened))
    return entries, problems


def _content_problems(opened: Opened, kind: str, latest: datetime) -> list[str]:
    if opened.kind != kind:
        return [f"a {opened.kind} statement in the {kind} file"]
    try:
        PREDICATES[kind].model_validate(opened.predicate)
    except ValidationError as error:
        return [f"predicate.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    release = opened.predicate if kind == "verification" else opened.predicate["release"]
    problems = [f"subject {opened.subject[f]!r} != predicate {f} {release.get(f)!r}" for f in ("model", "version", "sha256")
                if opened.subject[f] != release.get(f)]
    for name in ("verified_at", "recorded_at", "promoted_at"):
        value = opened.predicate.get(name)
        if value and datetime.fromisoformat(value.replace("Z", "+00:00")) > latest:
            problems.append(f"{name} {value} is in the future (now {utc(latest - CLOCK_SKEW)}): refused")
    signer = opened.signed_by
    if signer is None and opened.predicate.get("ci_run"):
        problems.append("an unsigned statement names a CI run (ci_run): only a statement signed by a trusted key may")
    environment = environment_of(opened.predicate["stack"] if kind == "verification" else opened.predicate["to"])
    if signer is not None and environment not in signer.environments:
        problems.append(f"signed by key {signer.name}, which may sign for {', '.join(sorted(signer.environments))}, "
                        f"not {environment!r}")
    return problems


def environment_of(stack: str) -> str:
    """The environment a stack name ends with (``aws-prod`` -> ``prod``)."""
    return stack.rsplit("-", 1)[-1]


def trusted_keys(records_dir: Path) -> dict[str, TrustedKey]:
    return load_trusted_keys(records_dir / TRUSTED_KEYS)


def check_prefix(path: Path, rev: str, repo: Path = REPO_ROOT) -> list[str]:
    """The file at git ``rev`` must be a byte prefix of the file now: only appends since ``rev``.

    Fails closed: git missing or ``rev`` unknown raise CannotCheck (exit 3); only a file that did not exist at
    ``rev`` counts as appended in full."""
    relative = path.resolve().relative_to(repo.resolve()).as_posix()
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if commit.returncode != 0:
        raise CannotCheck(f"git revision {rev!r} is unknown here, so the records cannot be compared with it",
                          "the committed records must be a prefix of today's (append-only)",
                          "fetch it (git fetch origin) or name a branch, tag or commit of this repository")
    listed = _git(repo, "ls-tree", "--name-only", commit.stdout.strip().decode(), "--", relative)
    if listed.returncode != 0:
        raise CannotCheck(f"git ls-tree {rev} failed", listed.stderr.decode().strip(), "check the repository")
    if not listed.stdout.strip():
        return []  # the file did not exist at rev: everything in it is an append
    shown = _git(repo, "show", f"{commit.stdout.strip().decode()}:{relative}")
    if shown.returncode != 0:
        raise CannotCheck(f"git show {rev}:{relative} failed", shown.stderr.decode().strip(), "check the repository")
    now = path.read_bytes() if path.is_file() else b""
    if not now.startswith(shown.stdout):
        return [f"{relative}: differs from {rev} before its end: earlier lines were rewritten or removed "
                "(the promotion records are append-only; restore them and append instead)"]
    return []


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)
    except OSError as error:
        raise CannotCheck("git cannot run, so the records cannot be compared with the committed ones",
                          f"{type(error).__name__}: {error}", "install git, or run in a clone of the repository") from None


def read_checked(records_dir: Path, name: str, now: datetime | None = None) -> list[Entry]:
    """The entries of one record file after ``require_intact`` of both; raises PromotionError/CannotCheck."""
    return require_intact(records_dir, now)[name]


def require_intact(records_dir: Path, now: datetime | None = None) -> dict[str, list[Entry]]:
    """Both files, checked; refuse (naming every bad line) when any check fails, CannotCheck when one cannot run."""
    keys = trusted_keys(records_dir)
    read_files = {name: read(records_dir / name, keys, now) for name in (VERIFICATIONS, PROMOTION_LOG)}
    problems = [problem for _, found in read_files.values() for problem in found]
    if records_dir.resolve().is_relative_to(REPO_ROOT.resolve()) and (REPO_ROOT / ".git").exists():
        # The chain cannot guard its own last line: the committed file must still be a prefix of today's.
        problems += [problem for name in read_files for problem in check_prefix(records_dir / name, "HEAD")]
    if problems:
        raise PromotionError("the promotion records are not intact: " + "; ".join(problems),
                             "evidence is trusted only when each line is chained to the one before it, its statement "
                             "is well-formed, dated no later than now, and every signature on it verifies against "
                             "promotions/trusted-keys/",
                             "restore the files from git (git checkout -- promotions/) and record again with "
                             "`lastmile promote record-verification`; `lastmile promote check-log` lists the problems")
    return {name: entries for name, (entries, _) in read_files.items()}
