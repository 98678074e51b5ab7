"""The offline verbs: run a stack's program under mocks (no engine, no cloud, no cluster), then
write or check what it registered.

    lastmile synth aws-prod | --all          # resource graph JSON to build/synth/<stack>.json + summary
    lastmile render onprem-prod              # Kubernetes manifests to rendered/<stack>-offline/
    lastmile policy aws-prod | --all         # the CrossGuard pack's rules (policy/) over the graph
    lastmile contract --stack aws-prod       # the AWS API requests checked against botocore's models

The graph-building modules import pulumi and botocore: they are imported inside the handlers, so
`lastmile --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lastmile.common import REPO_ROOT, STACKS_DIR
from lastmile.exitcodes import ExitCode

if TYPE_CHECKING:
    from lastmile.synthesis import Graph

DEFAULT_OUT = REPO_ROOT / "build" / "synth"


def _synthesize(stack: str, stacks_dir: Path) -> Graph | None:
    """The stack's graph, or None after printing why its config is refused."""
    from infra.settings.loader import ConfigError
    from lastmile.synthesis import synthesize

    try:
        return synthesize(stack, stacks_dir=stacks_dir)
    except (ConfigError, FileNotFoundError, ValueError) as error:  # a component's Args refuse with ValueError
        print(f"error: {error}", file=sys.stderr)
        return None


def _stacks(args: argparse.Namespace) -> list[str]:
    from lastmile.synthesis import list_stacks

    stacks = list_stacks(Path(args.stacks_dir)) if args.all else args.stacks
    if not stacks:
        print("name a stack or pass --all; stacks: " + ", ".join(list_stacks(Path(args.stacks_dir))), file=sys.stderr)
    return stacks


def _synth(args: argparse.Namespace) -> int:
    stacks = _stacks(args)
    if not stacks:
        return ExitCode.REFUSED
    from lastmile.outputs import check_targets, claim_dir

    out = claim_dir(Path(args.out), option="--out", default=Path(args.out).resolve() == DEFAULT_OUT.resolve())
    check_targets(out.path, [f"{stack}.json" for stack in stacks])  # before the first is written
    refused, written = 0, []
    for stack in stacks:
        graph = _synthesize(stack, Path(args.stacks_dir))
        if graph is None:
            refused += 1
            continue
        (path,) = out.write_all({f"{stack}.json": graph.dumps()})
        written.append(path)
        print(graph.summary(), end="")
        print(f"graph written to {path}\n")
    if written:
        out.commit(written, prune=False)
    return ExitCode.REFUSED if refused else ExitCode.OK


def _render(args: argparse.Namespace) -> int:
    from lastmile import manifests
    from lastmile.outputs import claim_dir

    default = REPO_ROOT / "rendered" / f"{args.stack}-offline"
    out = claim_dir(Path(args.out or default), option="--out", default=args.out is None)
    graph = _synthesize(args.stack, Path(args.stacks_dir))
    if graph is None:
        return ExitCode.REFUSED
    if not manifests.manifests(graph):
        print(f"error: stack {args.stack} declares no Kubernetes resources; nothing was written\n"
              "  fix: render an onprem- or hybrid- stack", file=sys.stderr)
        return ExitCode.REFUSED
    paths = out.write_all(manifests.files(graph))
    stale = out.commit(paths, prune=True)
    print(graph.summary(), end="")
    print(f"{len(paths)} manifests written to {out.path} (offline: secret values appear as {manifests.SECRET_MASK!r})"
          + (f"; removed {len(stale)} it wrote before and no longer renders" if stale else ""))
    return ExitCode.OK


def _policy(args: argparse.Namespace) -> int:
    from policy.rules import evaluate

    stacks = _stacks(args)
    if not stacks:
        return ExitCode.REFUSED
    refused, found = 0, 0
    for stack in stacks:
        graph = _synthesize(stack, Path(args.stacks_dir))
        if graph is None:
            refused += 1
            continue
        findings = evaluate(graph.to_json())
        found += len(findings)
        for finding in findings:
            print(f"{stack}: {finding.render()}")
        print(f"{stack}: {len(findings)} finding(s) over {len(graph.nodes)} resources")
    if refused:
        return ExitCode.REFUSED
    return ExitCode.FINDINGS if found else ExitCode.OK


def _contract(args: argparse.Namespace) -> int:
    from lastmile.contract import check_graph

    graph = _synthesize(args.stack, Path(args.stacks_dir))
    if graph is None:
        return ExitCode.REFUSED
    report = check_graph(graph)
    if args.json:
        document = report.to_json()
        if args.requests:
            document["request_params"] = [r.to_json() for r in report.requests]
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        if args.requests:
            for request in report.requests:
                print(json.dumps(request.to_json(), sort_keys=True))
        print(report.text(), end="")
    return ExitCode.OK if report.ok else ExitCode.FINDINGS


def _stacks_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stacks-dir", default=str(STACKS_DIR), help=argparse.SUPPRESS)


def register(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser("synth", help="run a stack's program under mocks and write its resource graph",
                                description="Run each stack's program under recording mocks (offline) and write "
                                "its resource graph as JSON. Exit 2 when a stack's config is refused.")
    synth.add_argument("stacks", nargs="*", metavar="STACK", help="stack names, e.g. aws-prod")
    synth.add_argument("--all", action="store_true", help="every stack in stacks/")
    synth.add_argument("--out", default=str(DEFAULT_OUT),
                       help=f"output directory (default {DEFAULT_OUT.relative_to(REPO_ROOT)})")
    _stacks_dir_option(synth)
    synth.set_defaults(func=_synth)

    render = commands.add_parser("render", help="render a stack's Kubernetes manifests offline (no engine, no cluster)",
                                 description="Render a stack's Kubernetes manifests offline; secret values are masked.")
    render.add_argument("stack", metavar="STACK")
    render.add_argument("--out", help="output directory (default rendered/<stack>-offline)")
    _stacks_dir_option(render)
    render.set_defaults(func=_render)

    policy = commands.add_parser("policy", help="check a stack against the policy rules offline (the CrossGuard pack's)",
                                 description="Synthesize each stack offline and run every rule of policy/ over its "
                                 "graph: the same rules the CrossGuard pack enforces at deploy time (plus the "
                                 "secret-marker rules only an offline graph can judge). Exit 1 on findings, "
                                 "0 when clean, 2 when a stack or its config is refused.")
    policy.add_argument("stacks", nargs="*", metavar="STACK", help="stack names, e.g. aws-prod")
    policy.add_argument("--all", action="store_true", help="every stack in stacks/")
    _stacks_dir_option(policy)
    policy.set_defaults(func=_policy)

    contract = commands.add_parser("contract", help="check the AWS API requests a stack would send against botocore",
                                   description="Translate every covered resource of a stack into the AWS API "
                                   "requests the provider sends and validate them against botocore's service "
                                   "models (enums, ranges, patterns). Exit 1 on violations, 2 on a refused stack.")
    contract.add_argument("--stack", required=True, help="stack name: stacks/Pulumi.<stack>.yaml")
    contract.add_argument("--json", action="store_true", help="machine-readable report")
    contract.add_argument("--requests", action="store_true", help="also print the translated API requests")
    _stacks_dir_option(contract)
    contract.set_defaults(func=_contract)
