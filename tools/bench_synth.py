"""Benchmark: offline synthesis of a stack against the floor of importing the SDK modules it uses.

The floor imports exactly the SDK modules (of pulumi, pulumi_aws and pulumi_kubernetes, at any depth:
the Kubernetes SDK loads its API-version modules and their types lazily, on first use) that the stack's
synthesis loads, found by running it once. Each sample is a fresh interpreter (as a user runs it), so
both sides pay the same start-up cost; the rounds interleave every command, so drift in the machine's
speed hits both sides alike. Prints the medians of wall time and their ratio, and the ratio of the
medians of CPU time (user + system; steadier on a shared machine); writes build/bench/synth.json.

A third side, "sdk", measures what the Pulumi SDK alone costs for the same stack: the floor's imports,
then the stack's recorded resources (same types, names, parents and inputs) registered as plain
``pulumi.CustomResource``/``ComponentResource`` objects under the SDK's own MockMonitor with mocks that
echo inputs, driven to completion by synthesis's own driver. Nothing else of lastmile runs there (no
settings, components, typed SDK classes or recording), so sdk ÷ floor is a lower bound of synth ÷ floor
that lastmile cannot go below without replacing the SDK's runtime.
`make bench` runs it with Python's bytecode cache on (see the Makefile). Not a test: nothing asserts a time.

    .venv/bin/python tools/bench_synth.py [--stack aws-prod ...] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SDKS = ("pulumi", "pulumi_aws", "pulumi_kubernetes")
PROBE = """
import sys
from lastmile.synthesis import synthesize
synthesize(sys.argv[1])
loaded = lambda m: type(sys.modules[m]).__name__ != "_LazyModule"  # the SDKs register lazy modules
used = sorted(m for m in list(sys.modules) if m.split('.')[0] in SDKS and loaded(m))
print(' '.join(used))
"""


REPLAY = """
import json, sys
import pulumi
from pulumi.runtime import mocks
from pulumi.runtime.sync_await import _sync_await

from lastmile.synthesis import _run_to_completion

graph = json.load(open(sys.argv[1]))


class Echo(mocks.Mocks):
    def new_resource(self, args):
        return args.name + "-id", args.inputs

    def call(self, args):
        return {}, None


mocks.set_mocks(Echo(), project="lastmile", stack=graph["stack"], preview=False)
made = {}
by_urn = {node["urn"]: node for node in graph["resources"]}


def make(node):
    if node["urn"] in made:
        return made[node["urn"]]
    parent = make(by_urn[node["parent"]]) if node["parent"] in by_urn else None
    options = node["options"]
    opts = pulumi.ResourceOptions(parent=parent, protect=options["protect"],
                                  depends_on=[make(by_urn[u]) for u in options["depends_on"] if u in by_urn])
    if node["custom"]:
        made[node["urn"]] = pulumi.CustomResource(node["type"], node["name"], dict(node["inputs"]), opts)
    else:
        made[node["urn"]] = pulumi.ComponentResource(node["type"], node["name"], None, opts)
    return made[node["urn"]]


def build():
    for node in graph["resources"]:
        make(node)


_sync_await(_run_to_completion(build))  # synthesis's own driver: the run ends as a synthesis's does
registered = pulumi.runtime.settings.SETTINGS.monitor.resources
assert len(registered) == len(graph["resources"]), (len(registered), len(graph["resources"]))
__import__("gc").collect()  # as synthesis does: the run's leftovers, not interpreter shutdown, close its loops
"""


def _floor_imports(stack: str) -> str:
    """A script loading the SDK modules the stack's synthesis loads (an attribute look-up loads a lazy one)."""
    probe = f"SDKS = {SDKS!r}\n{PROBE}"
    used = subprocess.run([sys.executable, "-c", probe, stack], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1].split()
    return f"import importlib\nfor m in {used!r}:\n    hasattr(importlib.import_module(m), \"__all__\")"


def _sample(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the process and its threads)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", action="append", help="a stack (repeatable; default: every stack in stacks/)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    stacks = args.stack or sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))
    with tempfile.TemporaryDirectory() as out:
        commands: dict[tuple[str, str], list[str]] = {}
        for stack in stacks:
            print(f"bench: finding the SDK modules {stack} loads", file=sys.stderr, flush=True)
            commands[(stack, "floor")] = [sys.executable, "-c", _floor_imports(stack)]
            commands[(stack, "synth")] = [sys.executable, "-m", "lastmile", "synth", stack, "--out", out]
            _sample(commands[(stack, "synth")])  # warm the file cache and bytecode once, for every side
            recorded = str(Path(out) / f"{stack}.json")
            commands[(stack, "sdk")] = [sys.executable, "-c", commands[(stack, "floor")][2] + "\n" + REPLAY, recorded]
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in commands}
        for round_ in range(args.runs):  # interleave, so drift in machine load hits every side alike
            print(f"bench: round {round_ + 1}/{args.runs}", file=sys.stderr, flush=True)
            for key, argv in commands.items():
                samples[key].append(_sample(argv))
        sizes = {stack: len(json.loads((Path(out) / f"{stack}.json").read_text())["resources"]) for stack in stacks}
    medians = {key: statistics.median(wall for wall, _ in values) for key, values in samples.items()}
    cpu = {key: statistics.median(used for _, used in values) for key, values in samples.items()}
    per_stack = {stack: {"resources": sizes[stack], "synth_s": round(medians[(stack, "synth")], 3),
                         "floor_s": round(medians[(stack, "floor")], 3),
                         "ratio": round(medians[(stack, "synth")] / medians[(stack, "floor")], 2),
                         "synth_cpu_s": round(cpu[(stack, "synth")], 3), "floor_cpu_s": round(cpu[(stack, "floor")], 3),
                         "cpu_ratio": round(cpu[(stack, "synth")] / cpu[(stack, "floor")], 2),
                         "sdk_s": round(medians[(stack, "sdk")], 3),
                         "sdk_ratio": round(medians[(stack, "sdk")] / medians[(stack, "floor")], 2)} for stack in stacks}
    result: dict = {"command": "tools/bench_synth.py --runs %d" % args.runs, "runs": args.runs, "stacks": per_stack}
    if {"aws-dev", "hybrid-prod"} <= set(stacks):
        small, large = per_stack["aws-dev"], per_stack["hybrid-prod"]
        result["slope_ms_per_resource"] = round(1000 * ((large["synth_s"] - large["floor_s"]) - (small["synth_s"] - small["floor_s"]))
                                                / (large["resources"] - small["resources"]), 1)
    (REPO / "build" / "bench").mkdir(parents=True, exist_ok=True)
    (REPO / "build" / "bench" / "synth.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'stack':16s} {'resources':>9s} {'synth':>8s} {'floor':>8s} {'ratio':>6s} {'cpu ratio':>10s} "
          f"{'sdk':>8s} {'sdk ratio':>10s}   (medians of {args.runs}, fresh interpreters; seconds wall)")
    for stack, row in per_stack.items():
        print(f"{stack:16s} {row['resources']:9d} {row['synth_s']:8.2f} {row['floor_s']:8.2f} {row['ratio']:6.2f} "
              f"{row['cpu_ratio']:10.2f} {row['sdk_s']:8.2f} {row['sdk_ratio']:10.2f}")
    if "slope_ms_per_resource" in result:
        print(f"framework cost per resource (hybrid-prod vs aws-dev, above the floor): {result['slope_ms_per_resource']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
