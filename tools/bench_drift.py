"""Benchmark: `lastmile drift onprem-local` against `kubectl diff --server-side` of the same resources.

In a throwaway copy of the repository with its own local cluster: `lastmile up onprem-local` deploys the stack
(namespace lastmile-local), and the engine's rendering of its twin (onprem-gitops, render mode: the same
resources as YAML) is applied with `kubectl apply --server-side` into lastmile-gitops. Per round, interleaved:
  drift         `lastmile drift onprem-local` (a fresh process: refresh preview through the engine + live rules)
  kubectl diff  `kubectl diff --server-side -R -f rendered/onprem-gitops` (each rendered object against its live
                copy; exit 0 or 1 both count as a run)
Both compare every resource of the stack with what runs, with no drift present. Medians and the ratio. Not a
test: nothing asserts a time. Writes build/bench/drift.json.

    .venv/bin/python tools/bench_drift.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import REPO, STACK, TWIN, _copy, _kubectl_apply, _timed  # noqa: E402


def _timed_diff(argv: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"bench: {' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from lastmile import cluster

    lastmile = [sys.executable, "-m", "lastmile"]
    samples: dict[str, list[float]] = {"drift": [], "kubectl_diff": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        _copy(work)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LASTMILE_"))}
        env["LASTMILE_PULUMI_HOME"] = str(Path(tmp) / "home")
        env["LASTMILE_PULUMI_STATE_DIR"] = str(Path(tmp) / "state-twin")
        _timed([*lastmile, "up", TWIN], work, env)
        rendered = work / "rendered" / TWIN
        env["LASTMILE_PULUMI_STATE_DIR"] = str(Path(tmp) / "state")
        print("bench: starting a local cluster", file=sys.stderr, flush=True)
        with cluster.local_cluster(work / ".lastmile" / "cluster") as live:
            kubectl = ["kubectl", "--kubeconfig", str(live.kubeconfig_path)]
            _timed([*lastmile, "up", STACK], work, env)
            _kubectl_apply(kubectl, rendered)
            for round_ in range(args.runs):
                print(f"bench: round {round_ + 1}/{args.runs}", file=sys.stderr, flush=True)
                samples["drift"].append(_timed([*lastmile, "drift", STACK], work, env))
                samples["kubectl_diff"].append(_timed_diff([*kubectl, "diff", "--server-side", "-R", "-f",
                                                            str(rendered)]))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "command": f"tools/bench_drift.py --runs {args.runs}",
        "runs": args.runs,
        "medians_seconds": {k: round(v, 3) for k, v in medians.items()},
        "ratio_drift_to_kubectl_diff": round(medians["drift"] / medians["kubectl_diff"], 2),
        "samples_seconds": {k: [round(x, 3) for x in v] for k, v in samples.items()},
    }
    out = REPO / "build" / "bench" / "drift.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result["medians_seconds"].items():
        print(f"{key:14s} median {value:7.3f} s")
    print(f"lastmile drift / kubectl diff --server-side: {result['ratio_drift_to_kubectl_diff']:.2f}x")
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
