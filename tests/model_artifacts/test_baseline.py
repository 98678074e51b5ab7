"""The data-quality baseline: reproducible bytes, SageMaker Model Monitor's schema, the preprocessor."""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "model_artifacts"
SCRIPT = ROOT / "build_baseline.py"
BASELINE = ROOT / "baseline" / "iris-classifier"
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = load(SCRIPT, "_test_build_baseline")
STATISTICS = json.loads((BASELINE / "statistics.json").read_text())
CONSTRAINTS = json.loads((BASELINE / "constraints.json").read_text())


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_build_is_deterministic_and_matches_the_committed_files():
    first, second = BUILDER.build(str(ROOT)), BUILDER.build(str(ROOT))
    assert first == second
    assert sorted(first) == [f"baseline/iris-classifier/{f}" for f in ("constraints.json", "preprocessor.py",
                                                                      "statistics.json")]
    for rel, content in first.items():
        assert (ROOT / rel).read_bytes() == content, f"{rel} drifted: run model_artifacts/build_baseline.py"


def test_check_mode_passes_on_the_repo_and_fails_on_drift(tmp_path):
    ok = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    copy = tmp_path / "model_artifacts"
    shutil.copytree(ROOT / "baseline", copy / "baseline")
    shutil.copy(ROOT / "build.py", copy / "build.py")
    shutil.copytree(ROOT / "serving", copy / "serving")
    stats = copy / "baseline" / "iris-classifier" / "statistics.json"
    stats.write_text(stats.read_text().replace('"item_count": 120', '"item_count": 121'))
    drift = subprocess.run([sys.executable, str(SCRIPT), "--root", str(copy), "--check"], capture_output=True,
                           text=True, timeout=300)
    assert drift.returncode == 1
    assert "statistics.json: differs" in drift.stderr


def test_script_writes_identical_bytes_twice(tmp_path):
    copy = tmp_path / "model_artifacts"
    copy.mkdir()
    shutil.copy(ROOT / "build.py", copy / "build.py")
    shutil.copytree(ROOT / "serving", copy / "serving")
    outputs = []
    for _ in range(2):
        subprocess.run([sys.executable, str(SCRIPT), "--root", str(copy)], check=True, capture_output=True, timeout=300)
        outputs.append({p.name: p.read_bytes() for p in (copy / "baseline" / "iris-classifier").iterdir()})
    assert outputs[0] == outputs[1]
    assert outputs[0] == {p.name: p.read_bytes() for p in BASELINE.iterdir() if p.is_file()}


def test_statistics_follow_the_model_monitor_schema():
    assert set(STATISTICS) == {"version", "dataset", "features"}
    assert STATISTICS["version"] == 0.0
    count = STATISTICS["dataset"]["item_count"]
    assert count == 120  # the 80 % training split of build.py
    assert [f["name"] for f in STATISTICS["features"]] == FEATURES
    for feature in STATISTICS["features"]:
        assert set(feature) == {"name", "inferred_type", "numerical_statistics"}
        assert feature["inferred_type"] == "Fractional"
        stats = feature["numerical_statistics"]
        assert set(stats) == {"common", "mean", "sum", "std_dev", "min", "max", "distribution"}
        assert stats["common"] == {"num_present": count, "num_missing": 0}
        assert all(is_number(stats[k]) for k in ("mean", "sum", "std_dev", "min", "max"))
        assert stats["min"] <= stats["mean"] <= stats["max"] and stats["std_dev"] > 0
        assert math.isclose(stats["sum"], stats["mean"] * count, rel_tol=1e-9)
        kll = stats["distribution"]["kll"]
        assert set(kll) == {"buckets", "sketch"}
        buckets = kll["buckets"]
        assert len(buckets) == 10
        assert all(set(b) == {"lower_bound", "upper_bound", "count"} for b in buckets)
        assert buckets[0]["lower_bound"] == stats["min"] and buckets[-1]["upper_bound"] == stats["max"]
        assert all(a["upper_bound"] == b["lower_bound"] for a, b in zip(buckets, buckets[1:]))
        assert sum(b["count"] for b in buckets) == count
        assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
        assert [len(level) for level in kll["sketch"]["data"]] == [count]


def test_statistics_are_those_of_the_training_split():
    build = load(ROOT / "build.py", "_test_build_for_baseline")
    _data, (x_train, _y), _holdout = build.load_data()
    for i, feature in enumerate(STATISTICS["features"]):
        column = x_train[:, i]
        stats = feature["numerical_statistics"]
        assert stats["mean"] == pytest.approx(column.mean(), rel=1e-9)
        assert stats["std_dev"] == pytest.approx(column.std(ddof=0), rel=1e-9)
        assert (stats["min"], stats["max"]) == (column.min(), column.max())
        assert stats["distribution"]["kll"]["sketch"]["data"][0] == pytest.approx(list(column))
        counts, _edges = np.histogram(column, bins=10, range=(column.min(), column.max()))
        assert [b["count"] for b in stats["distribution"]["kll"]["buckets"]] == list(counts)


def test_feature_order_is_the_models():
    model_json = json.loads(subprocess.run(
        ["tar", "-xzOf", str(ROOT / "iris-classifier" / "1.0.0" / "model.tar.gz"), "model.json"],
        check=True, capture_output=True).stdout)
    assert [BUILDER.feature_name(n) for n in model_json["feature_names"]] == FEATURES


def test_constraints_follow_the_model_monitor_schema():
    assert set(CONSTRAINTS) == {"version", "features", "monitoring_config"}
    assert CONSTRAINTS["version"] == 0.0
    assert [f["name"] for f in CONSTRAINTS["features"]] == FEATURES
    for feature in CONSTRAINTS["features"]:
        assert feature == {"name": feature["name"], "inferred_type": "Fractional", "completeness": 1.0,
                           "num_constraints": {"is_non_negative": True}}
    config = CONSTRAINTS["monitoring_config"]
    assert config["evaluate_constraints"] == "Enabled" and config["emit_metrics"] == "Enabled"
    assert 0 <= config["datatype_check_threshold"] <= 1 and 0 <= config["domain_content_threshold"] <= 1
    assert config["distribution_constraints"] == {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                                  "comparison_method": "Robust"}


PREPROCESSOR = load(BASELINE / "preprocessor.py", "_test_preprocessor")


def record(data: str, content_type: str, encoding: str = "JSON"):
    return SimpleNamespace(endpoint_input=SimpleNamespace(data=data, observed_content_type=content_type,
                                                          encoding=encoding, mode="INPUT"))


@pytest.mark.parametrize("body, content_type, encoding, expected", [
    ('{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}', "application/json", "JSON",
     [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]),
    ('{"instances": [5.1, 3.5, 1.4, 0.2]}', "application/json", "JSON", [[5.1, 3.5, 1.4, 0.2]]),
    ("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv", "CSV", [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]),
    (base64.b64encode(b"5.1,3.5,1.4,0.2").decode(), "text/csv", "BASE64", [[5.1, 3.5, 1.4, 0.2]]),
])
def test_preprocessor_flattens_every_request_shape(body, content_type, encoding, expected):
    out = PREPROCESSOR.preprocess_handler(record(body, content_type, encoding))
    assert out == [dict(zip(FEATURES, row)) for row in expected]


@pytest.mark.parametrize("body, content_type", [
    ('{"instances": [[5.1, 3.5]]}', "application/json"), ("not json", "application/json"),
    ("5.1,x,1.4,0.2", "text/csv"), ('{"rows": 3}', "application/json"),
])
def test_preprocessor_skips_what_does_not_parse(body, content_type):
    assert PREPROCESSOR.preprocess_handler(record(body, content_type)) == []


def test_preprocessor_names_match_the_baseline():
    assert PREPROCESSOR.FEATURES == FEATURES
