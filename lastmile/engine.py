"""`lastmile up | preview | destroy | refresh | outputs STACK`: the real Pulumi engine, driven through
Pulumi's Automation API with the project's own program (infra.program.run), Pulumi.yaml and stacks/.

The Python program runs inline (in this process, through Pulumi's in-process language server), so the
Pulumi CLI and the Kubernetes plugin are the only binaries needed. ``tools/engine/bootstrap.sh`` provides
them: a workstation CLI of the pinned version when installed, otherwise built from the Go module proxy
and cached by version under the home directory. Nothing here is needed for plain ``pulumi up``: on a
workstation the same program and stack files work with the official CLI.

Backends and secrets:
  local stacks (no secretsprovider in the stack file: onprem-local, onprem-gitops)
                              state in ``.pulumi-state/`` of the repository (file backend), secrets with
                              the passphrase provider; the passphrase ``lastmile-local-only`` is public
                              (it protects nothing) unless PULUMI_CONFIG_PASSPHRASE(_FILE) is set.
  shared stacks (dev/staging/prod)
                              the team's backend from PULUMI_BACKEND_URL (an S3 bucket:
                              ``s3://<bucket>?region=<region>``), secrets with the ``awskms://`` provider
                              the stack file declares (``secretsprovider:``). Nothing is assumed: without
                              PULUMI_BACKEND_URL the command stops before the engine starts.

Deadline: ``up``, ``preview``, ``destroy`` and ``refresh`` are interrupted (as Ctrl-C does) when they run
longer than twice the stack's longest single wait plus 5 minutes (``deadline_seconds``; ``--timeout``
overrides it), and killed a minute after that if the engine does not stop: an operation that hangs ends
as a failure that says so, never as a command that does not return.

Switching slots on Kubernetes: the program's own switch check (infra/switch_check.py) refuses an unsafe
switch before any change, on every path; lastmile maps its refusal to exit 2 or 1 (``lastmile.switch``). On a
cluster, ``up`` reads what runs first (``--refresh``), so a hand edit of what the stack sets is undone.
Ctrl-C and SIGTERM during an engine operation are handled like the deadline (``Signals``): the engine is asked
to stop once, the state is refreshed, exit 130 or 143. A stack locked by another operation is exit 3;
``lastmile cancel STACK`` releases a lock only when its process is gone.

Exit codes (lastmile.exitcodes): 0 ok (preview: no changes), 1 preview found changes, or the slot about
to get traffic is not ready live or (up --golden-url) failed its golden set, 2 refused input (unknown stack,
bad stack config, a switch the program refuses whatever the cluster says, a namespace the stack did not
create: nothing is deployed), 3 the engine, the cluster or the stack's lock is not available, 4 the engine
ran and the operation failed (or was stopped at its deadline), 130/143 stopped by a signal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastmile.common import REPO_ROOT, STACKS_DIR, Refused
from lastmile.deadline import Deadline
from lastmile.exitcodes import ExitCode
from lastmile.switch import active_slot_change, guards_switches, refusal_code

BOOTSTRAP = REPO_ROOT / "tools" / "engine" / "bootstrap.sh"
LOCAL_PASSPHRASE = "lastmile-local-only"  # public on purpose: local stacks only, see the module doc
BOOTSTRAP_TIMEOUT_SECONDS = 60 * 60  # a cold build is ~20 min on 2 cores; a warm check well under 1 s
DEADLINE_MARGIN_SECONDS = 300
TIMEOUT_RANGE = (10, 7 * 24 * 3600)  # --timeout, seconds
# What a verb that could not start left untouched, in its own words.
NOTHING_DONE = {"up": "nothing was deployed", "preview": "nothing was previewed", "destroy": "nothing was deleted",
                "refresh": "the state was not changed", "outputs": "nothing was read", "cancel": "no lock was released"}
GOLDEN_TIMEOUT_SECONDS = 60  # the golden gate's whole request, at most (and never past --timeout)


class EngineUnavailable(RuntimeError):
    """The Pulumi CLI or the Kubernetes plugin cannot be had on this machine (message says why)."""


@dataclass(frozen=True)
class EnginePaths:
    """Where the engine keeps its things for this repository."""

    root: Path = REPO_ROOT

    @property
    def pulumi_home(self) -> Path:
        return Path(os.environ.get("LASTMILE_PULUMI_HOME") or self.root / ".pulumi-home")

    @property
    def state_dir(self) -> Path:
        return Path(os.environ.get("LASTMILE_PULUMI_STATE_DIR") or self.root / ".pulumi-state")


def is_local(stack: str) -> bool:
    """A local stack (declared in infra.settings.common.LOCAL_STACKS) keeps its state in the repository and its
    secrets with the passphrase provider; every other stack is a team stack (its KMS key, its backend)."""
    from infra.settings.common import LOCAL_STACKS

    return stack in LOCAL_STACKS


def engine_environment(stack: str, paths: EnginePaths = EnginePaths(), stacks_dir: Path = STACKS_DIR) -> dict[str, str]:
    """The environment the CLI runs with: offline defaults, project-local home, the stack's backend."""
    env = {
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",  # the plugin installed in PULUMI_HOME, not one on PATH
        "PULUMI_HOME": str(paths.pulumi_home),
    }
    if is_local(stack):
        paths.state_dir.mkdir(parents=True, exist_ok=True)
        env["PULUMI_BACKEND_URL"] = paths.state_dir.resolve().as_uri()
        if not os.environ.get("PULUMI_CONFIG_PASSPHRASE") and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            env["PULUMI_CONFIG_PASSPHRASE"] = LOCAL_PASSPHRASE
    elif not os.environ.get("PULUMI_BACKEND_URL"):
        raise Refused(
            f"stack {stack!r} is a shared stack: its state lives in the team's backend, and PULUMI_BACKEND_URL is not set.\n"
            "  fix: export PULUMI_BACKEND_URL='s3://<state-bucket>?region=<region>' (and AWS credentials that may use\n"
            "       the bucket and the stack's KMS key), or use a local stack such as onprem-local")
    return env


def engine_bin(env: dict[str, str]) -> Path:
    """The engine's bin directory, built or taken from the cache, with the Kubernetes plugin installed
    into PULUMI_HOME. Raises EngineUnavailable with the bootstrap's reason."""
    if not BOOTSTRAP.is_file():
        raise EngineUnavailable(f"{BOOTSTRAP} is missing")
    try:
        result = subprocess.run([str(BOOTSTRAP), "plugins"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                stderr=None, text=True, timeout=BOOTSTRAP_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise EngineUnavailable(f"tools/engine/bootstrap.sh did not finish within {BOOTSTRAP_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        raise EngineUnavailable(f"the Pulumi engine could not be provided: tools/engine/bootstrap.sh failed "
                                f"(exit {result.returncode}); its messages are above")
    return Path(result.stdout.strip().splitlines()[-1])


def validate_stack(stack: str, stacks_dir: Path = STACKS_DIR) -> Any:
    """Refuse an unknown stack or a stack file whose config the program would refuse, before the engine."""
    from infra.settings.loader import ConfigError
    from lastmile.stackfile import StackFileError, list_stacks, stack_settings

    stacks = list_stacks(stacks_dir)
    if stack not in stacks:
        raise Refused(f"unknown stack {stack!r}: there is no stacks/Pulumi.{stack}.yaml\n"
                      f"  allowed: {', '.join(stacks)}\n  fix: name one of these stacks")
    try:
        return stack_settings(stack, stacks_dir, assume_team_secrets=False)
    except (ConfigError, StackFileError) as error:
        raise Refused(str(error)) from None


AWS_PLUGIN_VERSION = "7.51.1"  # pulumi-aws==7.51.1 in requirements.txt


def check_cluster(settings: Any, root: Path = REPO_ROOT) -> None:
    """A stack on the local cluster needs it running; any other kubeconfig file must at least exist."""
    kubeconfig_file = settings.onprem.kubeconfig_file if settings.onprem is not None else None
    if kubeconfig_file is None:
        return
    from lastmile import cluster

    path = (root / kubeconfig_file).resolve()
    workdir = cluster.DEFAULT_WORKDIR.resolve()
    if path.parent == workdir:
        states = cluster.status(workdir) or []
        if not states or not all(state.healthy for state in states):
            raise EngineUnavailable(
                f"stack {settings.stack!r} deploys to the local cluster ({kubeconfig_file}), which is not running. "
                "Start it with `lastmile cluster up` (or `make up`, which does both); `lastmile cluster status` "
                "shows each process.")
    elif not path.is_file():
        raise EngineUnavailable(f"stack {settings.stack!r} reads its kubeconfig from {kubeconfig_file}, which does "
                                "not exist")


def check_plugins(settings: Any, pulumi_home: Path) -> None:
    """The engine loads the AWS provider for aws and hybrid stacks; say so plainly when it is missing."""
    if settings.topology.value == "onprem":
        return
    if any((pulumi_home / "plugins").glob(f"resource-aws-v{AWS_PLUGIN_VERSION}")):
        return
    raise EngineUnavailable(
        f"stack {settings.stack!r} ({settings.topology.value}) needs the AWS provider plugin v{AWS_PLUGIN_VERSION}, which "
        f"is not installed in {pulumi_home}. The Go module proxy this project's machines reach does not serve "
        "github.com/pulumi/pulumi-aws/provider/v7, so it cannot be built here; on a machine with internet run "
        f"`PULUMI_HOME={pulumi_home} pulumi plugin install resource aws {AWS_PLUGIN_VERSION}`. Offline, "
        f"`lastmile plan --stack {settings.stack} --base origin/main` shows the change as a graph diff.")


class Engine:
    """One stack of this repository on the real engine."""

    def __init__(self, stack: str, paths: EnginePaths = EnginePaths()) -> None:
        self.stack_name = stack
        self.paths = paths
        self.env = engine_environment(stack, paths)
        self.bin_dir = engine_bin(self.env)
        self._stack: Any = None

    def workspace(self) -> Any:
        from pulumi import automation as auto

        from infra.program import run

        return auto.LocalWorkspace(
            work_dir=str(self.paths.root),
            program=run,
            env_vars=self.env,
            pulumi_command=auto.PulumiCommand(root=str(self.bin_dir.parent), skip_version_check=True),
        )

    @property
    def stack(self) -> Any:
        if self._stack is None:
            from pulumi import automation as auto

            self._stack = auto.Stack.create_or_select(self.stack_name, self.workspace())
        return self._stack

    def existing(self) -> bool:
        """Select the stack only if its state exists (never creating it): False when it was never deployed
        with this backend."""
        from pulumi import automation as auto

        try:
            self._stack = auto.Stack.select(self.stack_name, self.workspace())
        except auto.errors.StackNotFoundError:
            return False
        return True

    def up(self, *, on_output: Any = None, refresh: bool = False) -> Any:
        """``refresh``: read what runs first, in the same operation (``pulumi up --refresh``), so a field the
        stack sets and someone changed by hand is put back by this update."""
        return self.stack.up(on_output=on_output, color="never", refresh=refresh)

    def preview(self, *, diff: bool = True, on_output: Any = None) -> Any:
        return self.stack.preview(diff=diff, on_output=on_output, color="never")

    def destroy(self, *, on_output: Any = None) -> Any:
        return self.stack.destroy(on_output=on_output, color="never")

    def refresh(self, *, on_output: Any = None) -> Any:
        return self.stack.refresh(on_output=on_output, color="never")

    def outputs(self) -> dict[str, Any]:
        return self.stack.outputs()

    def deadline(self, seconds: int) -> Deadline:
        """A deadline on this engine's CLI for one operation (lastmile.deadline)."""
        return Deadline(seconds, program=self.bin_dir / "pulumi")


def deploy_base(stack: str, base: str, workdir: Path, env: dict[str, str]) -> bool:
    """``lastmile up STACK`` of git revision ``base`` in ``workdir`` (a throwaway export), into the state
    directory ``env`` names. False when the stack does not exist at ``base`` (everything is new then)."""
    rev = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=False)
    if rev.returncode != 0:
        raise Refused(f"unknown git revision {base!r}\n  fix: name a commit, branch or tag of this repository "
                      "(e.g. origin/main)")
    archive = subprocess.run(["git", "archive", "--format=tar", rev.stdout.strip()], cwd=REPO_ROOT,
                             capture_output=True, check=True).stdout
    workdir.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    if not (workdir / "stacks" / f"Pulumi.{stack}.yaml").is_file():
        return False
    result = subprocess.run([sys.executable, "-m", "lastmile", "up", stack], cwd=workdir, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EngineUnavailable(f"deploying {stack} as of {base} into a throwaway state failed (exit "
                                f"{result.returncode}):\n{_last_lines(result.stdout + result.stderr)}")
    return True


def deadline_seconds(settings: Any) -> int:
    """How long one engine operation on this stack may run before it is interrupted: two of the stack's
    longest single waits in a row (a slot's Deployment, then the Services that follow it; or the SageMaker
    endpoint's update, sized by the rollout policy) plus a margin for everything that does not wait."""
    from components.aws.rollout import endpoint_timeout_seconds

    waits = [endpoint_timeout_seconds(settings.rollout.max_execution_seconds)] if settings.aws is not None else []
    if settings.ready_timeout_seconds is not None:
        waits.append(settings.ready_timeout_seconds)
    return 2 * max(waits, default=0) + DEADLINE_MARGIN_SECONDS


def _timeout(text: str) -> int:
    low, high = TIMEOUT_RANGE
    if not text.isdigit() or not low <= int(text) <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds from {low} to {high}")
    return int(text)


def changes_of(summary: dict[str, int]) -> int:
    """How many resources a preview would touch (every operation except 'same' and the switch check's
    'read' of the stack's last outputs and of a live Deployment, which change nothing)."""
    return sum(count for op, count in summary.items() if op not in ("same", "read"))


def _print(line: str) -> None:
    print(line, end="" if line.endswith("\n") else "\n", flush=True)


def _run(args: argparse.Namespace) -> int:
    base = getattr(args, "base", None)
    with tempfile.TemporaryDirectory(prefix="lastmile-base-") as scratch:
        if base:
            os.environ["LASTMILE_PULUMI_STATE_DIR"] = str(Path(scratch) / "state")
        with Signals() as signals:
            return _run_in(args, Path(scratch), signals)


class Signals:
    """Ctrl-C (SIGINT) and SIGTERM during an engine verb. While no engine operation runs, a signal stops
    lastmile at once (``KeyboardInterrupt``, or the CLI's ``Terminated``; nothing was deployed). While one
    runs, the engine is asked to stop as the deadline asks it (one SIGINT: it cancels what is in flight,
    records what finished and releases the stack's lock), and the verb then refreshes the state and exits
    130 or 143; a second signal kills the engine and its plugins at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.watch: Deadline | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        name = signal.Signals(signum).name
        if self.watch is None:
            previous = self._previous.get(signum)
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt
        if first:
            # A Ctrl-C typed at the terminal has reached the engine already (same foreground process group).
            self.watch.interrupt(f"lastmile: {name} received; asking the engine to stop as Ctrl-C does (it cancels "
                                 "what is in flight and records what finished; a second signal kills it)",
                                 forward=not (signum == signal.SIGINT and _terminal_reached_engine()))
        else:
            self.watch.kill_now(f"lastmile: a second {name}; killing the engine and its plugins")

    @property
    def code(self) -> int:
        return ExitCode.TERMINATED if self.signum == signal.SIGTERM else ExitCode.INTERRUPTED


def _terminal_reached_engine() -> bool:
    """Whether a Ctrl-C came from this process's terminal, which sends it to the engine too."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


def _run_in(args: argparse.Namespace, scratch: Path, signals: Signals) -> int:
    from pulumi.automation.errors import CommandError

    watch = None
    try:
        if getattr(args, "golden_url", None):
            from lastmile.golden import GoldenError, validate_url

            try:
                validate_url(args.golden_url, option="--golden-url")
            except GoldenError as error:
                raise Refused(str(error)) from None
        settings = validate_stack(args.stack)
        check_plugins(settings, EnginePaths().pulumi_home)
        check_cluster(settings)
        if getattr(args, "base", None):
            if settings.onprem is None or settings.onprem.render_directory is None:
                raise Refused(f"--base needs a render-mode stack (onprem.render_directory): {args.stack} talks to "
                              f"a cluster or AWS; use `lastmile plan --stack {args.stack} --base {args.base}` for "
                              "its offline graph diff")
            if not is_local(args.stack):
                raise Refused(f"--base previews the base revision into a throwaway local state, and {args.stack}'s "
                              "secrets are encrypted with the team's key, which that state cannot use; nothing was "
                              f"run.\n  fix: `lastmile plan --stack {args.stack} --base {args.base}` (offline graph "
                              "diff), or `lastmile preview` without --base against the team backend")
            deploy_base(args.stack, args.base, scratch / "base",
                        {**_sandboxed(os.environ), "LASTMILE_PULUMI_HOME": str(EnginePaths().pulumi_home)})
        engine = Engine(args.stack)
    except Refused as error:
        print(f"lastmile {args.verb}: {error}", file=sys.stderr)
        return ExitCode.REFUSED
    except EngineUnavailable as error:
        print(f"lastmile {args.verb}: cannot run here, {NOTHING_DONE[args.verb]}: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    deadline = getattr(args, "timeout", None) or deadline_seconds(settings)
    try:
        if args.verb == "outputs":
            outputs = engine.outputs()
            if not outputs:
                print(f"lastmile outputs {args.stack}: the stack has no outputs: it was never deployed here, or was "
                      "destroyed", file=sys.stderr)
            shown = {k: (v.value if args.show_secrets or not v.secret else "[secret]") for k, v in outputs.items()}
            print(json.dumps(shown, indent=2, sort_keys=True, default=str))
            return ExitCode.OK
        if args.verb == "preview":
            if args.base:
                print(f"lastmile preview: the engine's diff of {args.stack} against {args.base} (deployed into a "
                      "throwaway local state first)", file=sys.stderr, flush=True)
            with engine.deadline(deadline) as watch:
                signals.watch = watch
                result = engine.preview(diff=not args.no_diff, on_output=_print)
            changes = changes_of(result.change_summary)
            print(f"lastmile preview {args.stack}: "
                  + (f"{changes} resource change(s)" if changes else "no changes"), file=sys.stderr)
            return ExitCode.FINDINGS if changes else ExitCode.OK
        if args.verb == "up" and args.golden_url:
            change = active_slot_change(engine, settings)
            refused = golden_gate(settings, change, args.golden_url, args.golden_ca_file,
                                  timeout_seconds=min(deadline, GOLDEN_TIMEOUT_SECONDS))
            if refused is not None:
                return refused
        with engine.deadline(deadline) as watch:
            signals.watch = watch
            if args.verb == "up":  # on a cluster, what runs is read first: a hand edit is undone by this up
                result = engine.up(on_output=_print, refresh=guards_switches(settings))
            else:
                result = getattr(engine, args.verb)(on_output=_print)
    except CommandError as error:
        signals.watch = None
        if signals.signum is not None:
            return stopped(engine, args, deadline, watch, f"stopped by {signal.Signals(signals.signum).name}",
                           signals.code) if watch is not None else signals.code
        if watch is not None and watch.fired:
            return stopped(engine, args, deadline, watch, f"stopped at its deadline of {deadline} s (--timeout "
                           "SECONDS changes it)", ExitCode.FAILED)
        return engine_failure(args, str(error))
    finally:
        signals.watch = None
    summary = getattr(result, "summary", None)
    if summary is not None and summary.result != "succeeded":
        print(f"lastmile {args.verb} {args.stack}: {summary.result}", file=sys.stderr)
        return ExitCode.FAILED
    if args.verb == "destroy" and guards_switches(settings):
        print(f"lastmile destroy {args.stack}: {release_namespace(engine, settings)}", file=sys.stderr)
    return ExitCode.OK


def release_namespace(engine: Engine, settings: Any) -> str:
    """After a destroy: the stack's namespace goes if it is the stack's own and empty (lastmile.ownership)."""
    from lastmile.ownership import release_namespace as release

    with kubeconfig(engine, settings) as path:
        return release(path, settings.onprem.namespace, settings.stack)


@contextlib.contextmanager
def kubeconfig(engine: Engine, settings: Any) -> Iterator[Path]:
    """The stack's kubeconfig as a file: the project file it names, or its ``lastmile:kubeconfig`` secret written
    to a private temporary file for as long as the block runs."""
    if settings.onprem.kubeconfig_file is not None:
        yield REPO_ROOT / settings.onprem.kubeconfig_file
        return
    with tempfile.TemporaryDirectory(prefix="lastmile-kubeconfig-") as scratch:
        path = Path(scratch) / "kubeconfig"
        path.touch(mode=0o600)
        path.write_text(engine.stack.get_config("lastmile:kubeconfig").value)
        yield path


def _sandboxed(environ: Any) -> dict[str, str]:
    """The environment of a throwaway run: no team backend, no cloud or cluster credentials."""
    dropped = ("PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "KUBECONFIG")
    return {k: v for k, v in environ.items() if k not in dropped and not k.startswith("AWS_")}


def engine_failure(args: argparse.Namespace, text: str) -> int:
    """Say why the engine failed, in lastmile's words where lastmile knows the cause."""
    refused = refusal_code(text)
    if refused is not None:
        why = re.search(r"(switch check: [^\n]*)", text)
        fix = re.search(r"^\s*(fix: [^\n]*)", text, re.M)
        lines = [found[1] for found in (why, fix) if found]
        print(f"lastmile {args.verb} {args.stack}: the program's switch check stopped the update before any change "
              f"(exit {refused}):\n  " + "\n  ".join(lines), file=sys.stderr)
        return refused
    taken = re.search(r'namespaces "([^"]+)" already exists', text)
    if taken:
        print(f"lastmile {args.verb} {args.stack}: refused, nothing was deployed into it: namespace {taken[1]} exists "
              "already and this stack did not create it; lastmile never takes over (or later deletes) a namespace "
              f"it did not create (exit {ExitCode.REFUSED}).\n  fix: set onprem.namespace to a namespace of the "
              "stack's own; if this namespace is an earlier deployment's of this same stack, delete it once nothing "
              "in it is needed, or restore the stack's state", file=sys.stderr)
        return ExitCode.REFUSED
    if "is currently locked" in text:
        print(f"lastmile {args.verb} {args.stack}: another operation holds the stack's lock, nothing was done (exit "
              f"{ExitCode.UNAVAILABLE}):\n{_last_lines(lock_holders(text) or text, 4)}\n  fix: wait for that "
              f"operation to end; if its process is gone (a crash, a killed terminal), `lastmile cancel {args.stack}` "
              "releases the lock (it refuses while that process runs)", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    if "connection refused" in text.lower() and "127.0.0.1" in text:
        print(f"lastmile {args.verb} {args.stack}: the cluster stopped answering during the operation (exit "
              f"{ExitCode.FAILED}); `lastmile cluster status` shows which process is down.\n{_last_lines(text, 6)}\n"
              f"  fix: `lastmile cluster up`, then `lastmile refresh {args.stack}` and `lastmile up {args.stack}`",
              file=sys.stderr)
        return ExitCode.FAILED
    print(f"lastmile {args.verb} {args.stack}: the engine reported a failure (exit code "
          f"{ExitCode.FAILED}); the engine's messages are above.\n{_last_lines(text)}", file=sys.stderr)
    return ExitCode.FAILED


def lock_holders(text: str) -> str:
    """The lock lines of the engine's message (who holds the lock, with pid and host)."""
    return "\n".join(line for line in text.splitlines() if "/locks/" in line or "created by" in line)


def stopped(engine: Engine, args: argparse.Namespace, deadline: int, watch: Deadline, why: str, code: int) -> int:
    """Report an operation that was stopped (deadline or signal). After an ``up`` or ``destroy``, the state is
    refreshed from what exists: a cancelled update can leave a change applied that the state does not record,
    and the next ``up`` (e.g. a rollback) would otherwise see nothing to do."""
    from pulumi.automation.errors import CommandError

    lines = [f"lastmile {args.verb} {args.stack}: {why}; " + (
        "the engine did not stop after the interrupt and was killed" if watch.killed else
        "the engine cancelled what was in flight (its messages are above)")]
    if watch.killed:
        engine.stack.cancel()  # the killed engine's lock (ours: the operation could not have started under another)
        lines.append("  its lock on the stack was released")
    fix = f"  fix: find why the operation waited that long, then `lastmile preview {args.stack}` shows what is left"
    if args.verb in ("up", "destroy"):
        try:
            with engine.deadline(deadline) as again:
                engine.refresh()
            lines.append("  the stack's state was refreshed from what exists, so a preview or up compares the stack "
                         "file with what is really deployed")
        except CommandError as error:
            stopped_again = " (stopped at the same deadline)" if again.fired else ""
            lines.append(f"  refreshing the stack's state failed{stopped_again}:\n{_last_lines(str(error), 4)}")
            fix = f"  fix: `lastmile refresh {args.stack}` before anything else, then `lastmile preview {args.stack}`"
    print("\n".join([*lines, fix]), file=sys.stderr)
    return code


def golden_gate(settings: Any, change: tuple[str | None, str] | None, url: str, ca_file: str | None, *,
                timeout_seconds: float = 60) -> int | None:
    """Before an up that switches the active slot (or deploys the first one; ``change`` from
    ``active_slot_change``), ask ``url`` -- the slot that is about to receive traffic, e.g. the preview
    Service -- the golden set of its release. None: go ahead; otherwise the exit code, with the failing row
    printed and nothing deployed."""
    from lastmile import golden

    from components.slots import Slot

    if change is None:
        print("lastmile up: traffic stays where it is; no golden check needed", file=sys.stderr)
        return None
    after = change[1]
    release = settings.serving.slots[Slot(after)]
    try:
        result = golden.run_check(golden.load_golden_set(release.model, release.version), url=url, ca_file=ca_file,
                                  timeout_seconds=timeout_seconds, url_option="--golden-url")
    except golden.GoldenError as error:
        print(f"lastmile up: refused, nothing was deployed: {error}", file=sys.stderr)
        return ExitCode.REFUSED
    except golden.EndpointUnavailable as error:
        print(f"lastmile up: could not ask {url} the golden set, nothing was deployed: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    if not result.passed:
        print(result.message(), file=sys.stderr)
        what = (f"the release in place in slot {after}" if change[0] == after else
                f"the switch to slot {after}" if after == settings.serving.active_slot.value else
                f"the weight given to slot {after}")
        print(f"lastmile up: nothing was deployed: {what} would send traffic to {release.model} {release.version}, "
              f"whose golden set fails; traffic stays on {change[0] or 'nothing (first up)'}", file=sys.stderr)
        return ExitCode.FINDINGS
    print(result.message(), file=sys.stderr)
    return None


def stack_locks(stack: str, paths: EnginePaths = EnginePaths()) -> list[Path]:
    """The lock files the file backend keeps for ``stack`` (local stacks)."""
    return sorted((paths.state_dir / ".pulumi" / "locks").glob(f"*/*/{stack}/*.json"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cancel(args: argparse.Namespace) -> int:
    """``lastmile cancel STACK``: release a lock left by an engine process that no longer runs."""
    validate_stack(args.stack)
    if not is_local(args.stack):
        raise Refused(f"{args.stack} keeps its state (and its lock) in the team's backend, which lastmile cannot "
                      "see into without it.\n  fix: the engine's 'currently locked' message names the holder (host, "
                      f"pid); once that process is surely gone, `pulumi cancel --stack {args.stack}` with the team's "
                      "PULUMI_BACKEND_URL releases it")
    locks = stack_locks(args.stack)
    if not locks:
        print(f"lastmile cancel {args.stack}: the stack is not locked; nothing to do", file=sys.stderr)
        return ExitCode.OK
    for lock in locks:
        try:
            holder = json.loads(lock.read_text())
            pid, host = int(holder["pid"]), str(holder.get("hostname") or "")
        except (OSError, ValueError, KeyError, TypeError):
            raise Refused(f"the lock file {lock} is not one the engine writes (no pid in it); nothing was released."
                          "\n  fix: look at it; delete it by hand only if no engine runs on this stack") from None
        if host != socket.gethostname():
            raise Refused(f"the lock is held by pid {pid} on another machine ({host}); nothing was released.\n  "
                          f"fix: end that operation there, or remove {lock} once it surely runs no more")
        if _alive(pid):
            print(f"lastmile cancel {args.stack}: refused, nothing was released: the lock is held by pid {pid}, which "
                  f"is still running (an operation under way).\n  fix: wait for it to end, or stop it with Ctrl-C / "
                  f"`kill -INT {pid}` (it then releases the lock itself)", file=sys.stderr)
            return ExitCode.REFUSED
    engine = Engine(args.stack)
    engine.stack.cancel()
    for plugin in _orphaned_plugins():
        os.kill(plugin, signal.SIGKILL)
    print(f"lastmile cancel {args.stack}: released the lock left by a process that no longer runs; run `lastmile "
          f"refresh {args.stack}` next, so the state matches what the interrupted operation left", file=sys.stderr)
    return ExitCode.OK


def _orphaned_plugins(paths: EnginePaths = EnginePaths()) -> list[int]:
    """Provider plugins of this repository's engine home whose engine is gone (re-parented to init)."""
    from lastmile.deadline import _parents, _program_of

    plugins = (paths.pulumi_home / "plugins").resolve()
    return [pid for pid, parent in _parents().items()
            if parent == 1 and (exe := _program_of(pid)) is not None and plugins in exe.parents]


def _last_lines(text: str, count: int = 12) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join("  " + line for line in lines[-count:])


def register(commands: argparse._SubParsersAction) -> None:
    """The engine's verbs."""
    helps = {
        "up": "deploy a stack with the real Pulumi engine (pulumi up)",
        "preview": "show what `up` would change, with the engine's diff; exit 1 when there are changes",
        "destroy": "delete everything the stack deployed",
        "refresh": "reconcile the stack's state with what really exists",
        "outputs": "print the stack's outputs as JSON (secrets masked unless --show-secrets)",
    }
    for verb, text in helps.items():
        parser = commands.add_parser(verb, help=text, description=text + ". " + __doc__.split("\n\n")[0])
        parser.add_argument("stack", help="stack name, e.g. onprem-local (stacks/Pulumi.<stack>.yaml)")
        if verb == "preview":
            parser.add_argument("--no-diff", action="store_true", help="summary only, without the property diff")
            parser.add_argument("--base", metavar="REV",
                                help="render-mode stacks: the engine's diff against git revision REV (deployed into "
                                     "a throwaway local state first), as a pull request shows it")
        if verb != "outputs":
            parser.add_argument("--timeout", type=_timeout, metavar="SECONDS",
                                help="interrupt the engine (as Ctrl-C does) when the operation runs longer than this "
                                     "(%d-%d s). Omitted: twice the stack's longest single wait (its Deployments' "
                                     "ready timeout, its SageMaker endpoint's update timeout) plus %d s"
                                     % (*TIMEOUT_RANGE, DEADLINE_MARGIN_SECONDS))
        if verb == "outputs":
            parser.add_argument("--show-secrets", action="store_true", help="print secret outputs in plaintext")
        if verb == "up":
            parser.add_argument("--golden-url", metavar="URL",
                                help="when this up switches the active slot: first ask URL (the slot about to get "
                                     "traffic, e.g. its preview Service) the release's golden set; a failing row "
                                     "stops the up before anything is deployed (exit 1)")
            parser.add_argument("--golden-ca-file", help="PEM CA bundle for an https --golden-url")
        parser.set_defaults(func=_run, verb=verb)
    text = "release a stack's lock left by an engine process that no longer runs (never a running one's)"
    parser = commands.add_parser("cancel", help=text, description=text + ".")
    parser.add_argument("stack", help="stack name, e.g. onprem-local")
    parser.set_defaults(func=_cancel, verb="cancel")
