"""tools/bench_synth.py's "sdk" side registers exactly the stack's recorded resources (it checks that itself,
and a recording it cannot replay faithfully makes it fail). No time is asserted: speed is the benchmark's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import bench_synth  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    subprocess.run([sys.executable, "-m", "lastmile", "synth", "onprem-local", "--out", str(out)], cwd=REPO,
                   check=True, capture_output=True)
    return out / "onprem-local.json"


def _replay(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", bench_synth.REPLAY, str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_the_replay_registers_every_recorded_resource(recorded: Path) -> None:
    assert len(json.loads(recorded.read_text())["resources"]) > 20
    done = _replay(recorded)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", "the replay printed something (a leftover event loop closed at shutdown?)"


def test_a_recording_it_cannot_replay_faithfully_fails_it(recorded: Path, tmp_path: Path) -> None:
    graph = json.loads(recorded.read_text())
    custom = next(node for node in graph["resources"] if node["custom"])
    graph["resources"].append({**custom, "urn": custom["urn"] + "-again"})  # same type and name: one URN twice
    doubled = tmp_path / "doubled.json"
    doubled.write_text(json.dumps(graph))
    done = _replay(doubled)
    assert done.returncode != 0 and "AssertionError" in done.stderr
