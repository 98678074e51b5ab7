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
3 could not check (engine, cluster, AWS or a tool missing); 4 the engine ran and the operation failed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lastmile.common import Refused
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
    "golden": "lastmile.golden",
    "up": "lastmile.engine", "preview": "lastmile.engine", "destroy": "lastmile.engine",
    "refresh": "lastmile.engine", "outputs": "lastmile.engine",
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
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
