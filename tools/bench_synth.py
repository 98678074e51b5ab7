"""Benchmark: offline synthesis of a stack against the floor of importing the SDK modules it uses.

The floor imports exactly the SDK modules (pulumi, and the pulumi_aws / pulumi_kubernetes service
modules) that the stack's synthesis loads, found by running it once. Each sample is a fresh
interpreter (as a user runs it), so both sides pay the same start-up cost.
Prints the medians and their ratio; writes build/bench/synth.json. Not a test: nothing asserts a time.

    .venv/bin/python tools/bench_synth.py [--stack aws-prod] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
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
used = sorted(m for m in list(sys.modules) if (m in SDKS or (m.split('.')[0] in SDKS[1:] and m.count('.') == 1
              and not m.split('.')[1].startswith('_'))) and loaded(m))
print(' '.join(used))
"""


def _floor_imports(stack: str) -> str:
    """A script loading the SDK modules the stack's synthesis loads (an attribute look-up loads a lazy one)."""
    probe = f"SDKS = {SDKS!r}\n{PROBE}"
    used = subprocess.run([sys.executable, "-c", probe, stack], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1].split()
    return f"import importlib\nfor m in {used!r}:\n    hasattr(importlib.import_module(m), \"__all__\")"


def _sample(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="aws-prod")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    floor = _floor_imports(args.stack)
    with tempfile.TemporaryDirectory() as out:
        commands = {
            "floor": [sys.executable, "-c", floor],
            "synth": [sys.executable, "-m", "lastmile", "synth", args.stack, "--out", out],
        }
        _sample(commands["synth"])  # warm the file cache and bytecode once, for both sides
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleave, so drift in machine load hits both sides alike
            for name, argv in commands.items():
                samples[name].append(_sample(argv))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "stack": args.stack,
        "runs": args.runs,
        "median_seconds": {k: round(v, 3) for k, v in medians.items()},
        "ratio_synth_to_floor": round(medians["synth"] / medians["floor"], 2),
        "floor": floor,
    }
    (REPO / "build" / "bench").mkdir(parents=True, exist_ok=True)
    (REPO / "build" / "bench" / "synth.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.stack}: synth median {medians['synth']:.2f} s, import floor median {medians['floor']:.2f} s, "
          f"ratio {result['ratio_synth_to_floor']} ({args.runs} runs each, fresh interpreters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
