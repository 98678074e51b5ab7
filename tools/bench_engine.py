"""Benchmark: the real engine on onprem-local, on a local cluster, against the program's own share and
against the no-framework way of applying the same manifests.

Each sample is a command as a user runs it (a fresh process), in a throwaway copy of the repository with
its own local cluster (so the work tree's state and cluster are untouched). Per round:
  bootstrap (warm)   tools/engine/bootstrap.sh with the cache in place
  synth              `lastmile synth onprem-local` (mocks, no engine): what the program itself costs
  up (cold)          `lastmile up onprem-local` into an empty namespace (32 resources, awaits readiness)
  preview (no-op)    `lastmile preview onprem-local`
  up (no-op)         `lastmile up onprem-local` again
  flip               `lastmile up` after active_slot moved (two Service selectors)
  flip back          the rollback: `lastmile up` with active_slot as before
  destroy            `lastmile destroy onprem-local`
  kubectl apply      `kubectl apply --server-side` of the same resources as the engine renders them
                     (onprem-gitops: onprem-local's twin in render mode) to the same API server: the
                     namespace first, then the rest; no waiting for readiness; then the namespace deleted
Interleaved rounds; medians and each step's ratio to synth and to kubectl apply. Not a test: nothing
asserts a time. Writes build/bench/engine.json.

    .venv/bin/python tools/bench_engine.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STACK = "onprem-local"
NAMESPACE = "lastmile-local"
TWIN, TWIN_NAMESPACE = "onprem-gitops", "lastmile-gitops"


def _copy(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed


def _set_active(stack_file: Path, slot: str) -> None:
    stack_file.write_text(re.sub(r"(?m)^(    active_slot: )\w+$", rf"\g<1>{slot}", stack_file.read_text()))


def _namespace_gone(kubectl: list[str], namespace: str = NAMESPACE) -> None:
    deadline = time.monotonic() + 120
    while subprocess.run([*kubectl, "get", "namespace", namespace], capture_output=True, check=False).returncode == 0:
        if time.monotonic() > deadline:
            sys.exit(f"bench: namespace {namespace} still there after 120 s")
        time.sleep(0.5)


def _kubectl_apply(kubectl: list[str], manifests: Path) -> float:
    """The no-framework way: server-side apply of the rendered files, the namespace first."""
    namespaces = sorted(str(p) for p in manifests.rglob("*namespace-*.yaml"))
    start = time.perf_counter()
    for argv in ([*kubectl, "apply", "--server-side", *sum((["-f", n] for n in namespaces), [])],
                 [*kubectl, "apply", "--server-side", "-R", "-f", str(manifests)]):
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from lastmile import cluster

    lastmile = [sys.executable, "-m", "lastmile"]
    steps = ("bootstrap_warm", "synth", "up_cold", "preview_noop", "up_noop", "flip", "flip_back", "destroy",
             "kubectl_apply")
    samples: dict[str, list[float]] = {k: [] for k in steps}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        _copy(work)
        stack_file = work / "stacks" / f"Pulumi.{STACK}.yaml"
        active = re.search(r"(?m)^    active_slot: (\w+)$", stack_file.read_text()).group(1)
        other = "blue" if active == "green" else "green"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LASTMILE_"))}
        env["LASTMILE_PULUMI_HOME"] = str(Path(tmp) / "home")
        env["LASTMILE_PULUMI_STATE_DIR"] = str(Path(tmp) / "state-twin")
        _timed([*lastmile, "up", TWIN], work, env)  # the engine's own rendering of the same resources
        rendered = work / "rendered" / TWIN
        print("bench: starting a local cluster", file=sys.stderr, flush=True)
        with cluster.local_cluster(work / ".lastmile" / "cluster") as live:
            kubectl = ["kubectl", "--kubeconfig", str(live.kubeconfig_path)]
            for round_ in range(args.runs):
                print(f"bench: round {round_ + 1}/{args.runs}", file=sys.stderr, flush=True)
                env["LASTMILE_PULUMI_STATE_DIR"] = str(Path(tmp) / f"state-{round_}")
                samples["bootstrap_warm"].append(_timed([str(REPO / "tools/engine/bootstrap.sh")], work, env))
                samples["synth"].append(_timed([*lastmile, "synth", STACK, "--out", str(Path(tmp) / "synth")], work, env))
                samples["up_cold"].append(_timed([*lastmile, "up", STACK], work, env))
                samples["preview_noop"].append(_timed([*lastmile, "preview", STACK], work, env))
                samples["up_noop"].append(_timed([*lastmile, "up", STACK], work, env))
                _set_active(stack_file, other)
                samples["flip"].append(_timed([*lastmile, "up", STACK], work, env))
                _set_active(stack_file, active)
                samples["flip_back"].append(_timed([*lastmile, "up", STACK], work, env))
                samples["destroy"].append(_timed([*lastmile, "destroy", STACK], work, env))
                _namespace_gone(kubectl)
                samples["kubectl_apply"].append(_kubectl_apply(kubectl, rendered))
                subprocess.run([*kubectl, "delete", "namespace", TWIN_NAMESPACE, "--wait=false"], capture_output=True,
                               check=False)
                _namespace_gone(kubectl, TWIN_NAMESPACE)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "command": f"tools/bench_engine.py --runs {args.runs}",
        "runs": args.runs,
        "medians_seconds": {k: round(v, 3) for k, v in medians.items()},
        "ratios_to_synth": {k: round(medians[k] / medians["synth"], 2) for k in steps if k != "synth"},
        "ratios_to_kubectl_apply": {k: round(medians[k] / medians["kubectl_apply"], 2)
                                    for k in ("up_cold", "up_noop", "flip", "flip_back")},
        "samples_seconds": {k: [round(x, 3) for x in v] for k, v in samples.items()},
    }
    out = REPO / "build" / "bench" / "engine.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result["medians_seconds"].items():
        extra = ""
        if key in result["ratios_to_kubectl_apply"]:
            extra = f"   {result['ratios_to_synth'][key]:.2f}x synth, {result['ratios_to_kubectl_apply'][key]:.2f}x kubectl apply"
        print(f"{key:16s} median {value:7.3f} s{extra}")
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
