"""lastmile: the one command. `lastmile VERB --help` tells each verb's options.

    lastmile synth aws-prod                  # offline synthesis: build/synth/aws-prod.json + summary
    lastmile render onprem-prod              # offline Kubernetes manifests: rendered/onprem-prod-offline/
    lastmile policy aws-prod                 # the CrossGuard pack's rules over the synthesized graph
    lastmile contract --stack aws-prod       # botocore contract check of the AWS API requests
    lastmile plan --stack aws-prod --base origin/main    # Markdown plan diff for a pull request
    lastmile promote --topology aws --from staging --to prod
    lastmile verify --stack aws-prod         # after `pulumi up`: does SageMaker run what was deployed?
    lastmile up onprem-local                 # the real Pulumi engine: up, preview, destroy, refresh, outputs

exit codes: 0 ok; 1 findings or changes found; 2 input refused (nothing written or deployed);
3 could not check (engine, cluster, AWS or a tool missing); 4 the engine ran and the operation failed;
5 lastmile failed (an unexpected error: its cause on one line, the traceback in the log file it names);
130 stopped by Ctrl-C; 141 the reader of the output went away (`| head`); 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from lastmile.common import REPO_ROOT, Refused
from lastmile.exitcodes import ExitCode

# The verbs and the modules that own them, in the order `lastmile --help` lists them. Each module
# defines `register(commands)`, adding the sub-parsers of its verbs with `set_defaults(func=handler)`; a
# handler takes the parsed arguments and returns an exit code. Running a verb imports only its module
# (every command a user runs pays for the parser); `--help` and an unknown verb import them all. Keep
# heavy imports (pulumi, boto3, botocore) inside the handlers.
VERB_MODULES: dict[str, str] = {
    "synth": "lastmile.offline", "render": "lastmile.offline", "policy": "lastmile.offline",
    "contract": "lastmile.offline",
    "plan": "lastmile.plandiff",
    "promote": "lastmile.promote",
    "verify": "lastmile.verify",
    "drift": "lastmile.drift",
    "golden": "lastmile.golden",
    "up": "lastmile.engine", "preview": "lastmile.engine", "destroy": "lastmile.engine",
    "refresh": "lastmile.engine", "outputs": "lastmile.engine", "cancel": "lastmile.engine",
    "cluster": "lastmile.cluster",
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser tree: every verb's, or only ``verb``'s module's when it names a known verb."""
    parser = argparse.ArgumentParser(prog="lastmile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    modules = [VERB_MODULES[verb]] if verb in VERB_MODULES else list(dict.fromkeys(VERB_MODULES.values()))
    for name in modules:
        importlib.import_module(name).register(commands)
    return parser


_OWN_PACKAGES = ("lastmile", "infra", "components", "policy", "model_artifacts")


def _missing_dependency(error: ModuleNotFoundError) -> int:
    if (error.name or "").split(".")[0] in _OWN_PACKAGES:
        raise error  # a bug in the repository, not a missing install
    print(f"lastmile: cannot run: the Python package {error.name!r} is not installed for {sys.executable}.\n"
          "  lastmile runs in the project's virtualenv, which `make setup` (or `make test`) creates in .venv/.\n"
          "  fix: run `make setup`, then `. .venv/bin/activate` (or call `.venv/bin/lastmile` directly)",
          file=sys.stderr)
    return ExitCode.UNAVAILABLE


class Terminated(BaseException):
    """SIGTERM, raised where the program is, like KeyboardInterrupt for SIGINT (not an ``Exception``, so a
    verb's ``except Exception`` does not swallow it)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def crash_log_dirs() -> list[Path]:
    """Where the traceback of an unexpected error is written, the first that can be: ``$LASTMILE_LOG_DIR``
    when set, the repository's ``.lastmile/logs`` (git ignores it), the temp directory's ``lastmile-logs``."""
    chosen = [Path(os.environ["LASTMILE_LOG_DIR"])] if os.environ.get("LASTMILE_LOG_DIR") else []
    return [*chosen, REPO_ROOT / ".lastmile" / "logs", Path(tempfile.gettempdir()) / "lastmile-logs"]


def _write_crash_log(error: BaseException, argv: list[str]) -> Path | None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = (f"lastmile {' '.join(argv)}\npython {sys.version.split()[0]} ({sys.executable})\n\n"
            + "".join(traceback.format_exception(error)))
    for directory in crash_log_dirs():
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = directory / f"crash-{stamp}-{os.getpid()}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def _where(error: BaseException) -> str:
    """The innermost frame of the error that is this repository's code, as ``path:line``."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        try:
            return f"{Path(frame.filename).resolve().relative_to(REPO_ROOT)}:{frame.lineno}"
        except ValueError:
            continue
    return "outside the repository"


def crashed(error: BaseException, argv: list[str]) -> int:
    """Exit 5 for an error no verb handled: one line of cause, the traceback in a log file, not on the terminal."""
    cause = (str(error).strip().splitlines() or [""])[0][:300]
    log = _write_crash_log(error, argv)
    where = f"the full traceback is in {log}" if log else "no log could be written (" + ", ".join(
        str(d) for d in crash_log_dirs()) + " are not writable)"
    _say(f"lastmile {argv[0] if argv else ''}: failed unexpectedly (exit {int(ExitCode.CRASHED)}): "
         f"{type(error).__name__}{': ' + cause if cause else ''} (at {_where(error)})\n  {where}\n"
         "  fix: if the cause names a file lastmile keeps (a state file, a state directory), repair or move it "
         "aside and run the command again; otherwise report the command and the log")
    return ExitCode.CRASHED


def _say(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr is gone too: the exit code still tells


def _quiet_output() -> None:
    """The reader went away: send what is still buffered, and anything printed later, nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run one verb. Whatever happens, the exit code is one of lastmile.exitcodes and no traceback reaches
    the terminal: an unexpected error is exit 5 with its cause and a log file, Ctrl-C 130, SIGTERM 143,
    a closed output pipe 141."""
    argv = sys.argv[1:] if argv is None else argv
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return code
    except KeyboardInterrupt:
        _say(f"lastmile {argv[0] if argv else ''}: stopped by Ctrl-C (exit {int(ExitCode.INTERRUPTED)})")
        return ExitCode.INTERRUPTED
    except Terminated:
        _say(f"lastmile {argv[0] if argv else ''}: stopped by SIGTERM (exit {int(ExitCode.TERMINATED)})")
        return ExitCode.TERMINATED
    except BrokenPipeError:
        _quiet_output()
        return ExitCode.BROKEN_PIPE
    except Exception as error:  # noqa: BLE001 -- the one place an unexpected error becomes exit 5
        return crashed(error, argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str]) -> int:
    try:
        parser = build_parser(argv[0] if argv else None)
    except ModuleNotFoundError as error:
        return _missing_dependency(error)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except Refused as refused:
        print(f"lastmile {args.command}: {refused}", file=sys.stderr)
        return ExitCode.REFUSED
    except ModuleNotFoundError as error:
        return _missing_dependency(error)


if __name__ == "__main__":
    sys.exit(main())
