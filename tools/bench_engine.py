"""Benchmark: the real engine on onprem-local against the program's own share (offline synthesis).

Measured, each as a user runs it (a fresh process, in a throwaway copy of the repository so the work
tree's state is untouched):
  bootstrap (warm)  tools/engine/bootstrap.sh with the cache in place
  up (cold)         `lastmile up onprem-local` on an empty state (every resource created)
  preview (no-op)   `lastmile preview onprem-local` right after
  up (no-op)        `lastmile up onprem-local` again
  synth             `lastmile synth onprem-local` (mocks, no engine): what the program itself costs
Interleaved rounds; medians, and each engine step's ratio to synth. The cold bootstrap is reported
from the BUILDINFO of the cache (how long the build took is printed by tools/setup.sh; pass
--cold-seconds to record a measured one). Not a test: nothing asserts a time. Writes build/bench/engine.json.

    .venv/bin/python tools/bench_engine.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STACK = "onprem-local"


def _copy(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)


def _timed(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in ok:
        sys.exit(f"bench: {' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-seconds", type=float, help="a measured cold bootstrap, to record beside the rest")
    args = parser.parse_args()
    lastmile = [sys.executable, "-m", "lastmile"]
    samples: dict[str, list[float]] = {k: [] for k in ("bootstrap_warm", "up_cold", "preview_noop", "up_noop", "synth")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        _copy(work)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LASTMILE_"))}
        env["LASTMILE_PULUMI_HOME"] = str(Path(tmp) / "home")
        for round_ in range(args.runs):
            print(f"bench: round {round_ + 1}/{args.runs}", file=sys.stderr, flush=True)
            env["LASTMILE_PULUMI_STATE_DIR"] = str(Path(tmp) / f"state-{round_}")
            shutil.rmtree(work / "rendered", ignore_errors=True)
            samples["bootstrap_warm"].append(_timed([str(REPO / "tools/engine/bootstrap.sh")], work, env))
            samples["synth"].append(_timed([*lastmile, "synth", STACK, "--out", str(Path(tmp) / "synth")], work, env))
            samples["up_cold"].append(_timed([*lastmile, "up", STACK], work, env))
            samples["preview_noop"].append(_timed([*lastmile, "preview", STACK], work, env))
            samples["up_noop"].append(_timed([*lastmile, "up", STACK], work, env))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "command": "tools/bench_engine.py --runs %d" % args.runs,
        "runs": args.runs,
        "medians_seconds": {k: round(v, 3) for k, v in medians.items()},
        "ratios_to_synth": {k: round(medians[k] / medians["synth"], 2) for k in ("up_cold", "preview_noop", "up_noop")},
        "bootstrap_cold_seconds": args.cold_seconds,
        "samples_seconds": {k: [round(x, 3) for x in v] for k, v in samples.items()},
    }
    out = REPO / "build" / "bench" / "engine.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result["medians_seconds"].items():
        ratio = result["ratios_to_synth"].get(key)
        print(f"{key:16s} median {value:7.3f} s" + (f"   {ratio:.2f}x synth" if ratio else ""))
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
