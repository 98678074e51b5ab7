"""lastmile command line: offline synthesis and rendering.

    python -m lastmile.cli synth aws-prod            # graph JSON to build/synth/aws-prod.json + summary
    python -m lastmile.cli synth --all               # every stack in stacks/
    python -m lastmile.cli render onprem-local       # Kubernetes manifests to rendered/onprem-local-offline/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lastmile import cluster, manifests
from infra.settings.loader import ConfigError
from lastmile.synthesis import REPO_ROOT, list_stacks, synthesize

DEFAULT_OUT = REPO_ROOT / "build" / "synth"


def _synth(args: argparse.Namespace) -> int:
    stacks = list_stacks() if args.all else args.stacks
    if not stacks:
        print("name a stack or pass --all; stacks: " + ", ".join(list_stacks()), file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for stack in stacks:
        try:
            graph = synthesize(stack)
        except (ConfigError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        path = out_dir / f"{stack}.json"
        path.write_text(graph.dumps())
        print(graph.summary(), end="")
        print(f"graph written to {path}\n")
    return 1 if failed else 0


def _render(args: argparse.Namespace) -> int:
    try:
        graph = synthesize(args.stack)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    out_dir = Path(args.out or REPO_ROOT / "rendered" / f"{args.stack}-offline")
    for stale in out_dir.glob("*.yaml"):
        stale.unlink()
    paths = manifests.write(graph, out_dir)
    if not paths:
        print(f"error: stack {args.stack} declares no Kubernetes resources", file=sys.stderr)
        return 1
    print(graph.summary(), end="")
    print(f"{len(paths)} manifests written to {out_dir} (offline: secret values appear as {manifests.SECRET_MASK!r})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lastmile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="run a stack's program under mocks and write its resource graph")
    synth.add_argument("stacks", nargs="*", help="stack names, e.g. aws-prod")
    synth.add_argument("--all", action="store_true", help="every stack in stacks/")
    synth.add_argument("--out", default=str(DEFAULT_OUT), help=f"output directory (default {DEFAULT_OUT.relative_to(REPO_ROOT)})")
    synth.set_defaults(func=_synth)
    render = commands.add_parser("render", help="render a stack's Kubernetes manifests offline (no engine, no cluster)")
    render.add_argument("stack")
    render.add_argument("--out", help="output directory (default rendered/<stack>-offline)")
    render.set_defaults(func=_render)
    cluster.register(commands)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
