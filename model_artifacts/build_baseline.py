#!/usr/bin/env python3
"""Build the SageMaker Model Monitor data-quality baseline of iris-classifier, reproducibly.

    .venv/bin/python model_artifacts/build_baseline.py           # (re)write model_artifacts/baseline/
    .venv/bin/python model_artifacts/build_baseline.py --check   # rebuild in memory; exit 1 on drift
    .venv/bin/python model_artifacts/build_baseline.py --root DIR [--check]

What it writes under ``baseline/iris-classifier/``:

- ``statistics.json``: per-feature statistics of the TRAINING rows (the exact 80 % split build.py
  trains every release on: ``build.load_data()``, stratified, random_state 0), in the Deequ-based
  format SageMaker's prebuilt analyzer writes for a baseline job: ``version``, ``dataset.item_count``,
  ``features[]`` with ``inferred_type`` and ``numerical_statistics`` (``common.num_present/num_missing``,
  ``mean``, ``sum``, ``std_dev`` (population, as Deequ computes it), ``min``, ``max``,
  ``distribution.kll`` with 10 equal-width ``buckets`` between min and max and the KLL ``sketch``
  (``parameters`` c 0.64 / k 2048 and the compactor ``data``: with fewer rows than k every value stays
  in level 0, in row order);
- ``constraints.json``: per feature ``inferred_type``, ``completeness`` and
  ``num_constraints.is_non_negative``; ``monitoring_config`` with ``evaluate_constraints``,
  ``emit_metrics``, ``datatype_check_threshold``, ``domain_content_threshold`` and
  ``distribution_constraints`` (``perform_comparison``, ``comparison_threshold``,
  ``comparison_method`` Robust). ``components/aws/monitoring.py`` uploads it with the stack's drift
  threshold as ``comparison_threshold`` (one definition: lastmile:observability);
- ``preprocessor.py``: the record preprocessor the monitoring job runs on every captured request.
  The analyzer only reads tabular or flat-JSON records; the endpoint takes ``{"instances": [[...]]}``
  or headerless CSV, so the preprocessor turns each captured row into ``{feature: value}`` with the
  feature names below (the names the drift metrics ``feature_baseline_drift_<name>`` carry).

Feature names are sklearn's ``feature_names`` in the model's column order (model.json
``feature_names``; serving/iris_model.py checks that order), made identifier-safe:
``sepal length (cm)`` -> ``sepal_length_cm``.

Sources relied on for the format (schema and field meaning):
- AWS, SageMaker Developer Guide, "Schema for Statistics (statistics.json file)" and "Schema for
  Constraints (constraints.json file)" (docs.aws.amazon.com/sagemaker/latest/dg/
  model-monitor-byoc-statistics.html, model-monitor-byoc-constraints.html,
  model-monitor-interpreting-statistics.html: "we materialize the distribution in 10 buckets");
- AWS, "Preprocessing and Postprocessing" (model-monitor-pre-and-post-processing.html): the
  ``preprocess_handler(inference_record)`` contract and the flat-JSON requirement;
- aws/sagemaker-python-sdk ``tests/data/monitor/statistics.json`` / ``constraints.json`` (float
  ``version`` 0.0, field spelling).

Determinism: values are rounded to 10 significant digits and written by ``json.dumps`` (sorted
keys, indent 2, ASCII, trailing newline); nothing depends on time, locale or thread count.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import bisect  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

sys.dont_write_bytecode = True

DEFAULT_ROOT = os.path.dirname(os.path.abspath(__file__))
MODEL_NAME = "iris-classifier"
BASELINE_DIR = os.path.join("baseline", MODEL_NAME)
STATISTICS = "statistics.json"
CONSTRAINTS = "constraints.json"
PREPROCESSOR = "preprocessor.py"
FILES = (STATISTICS, CONSTRAINTS, PREPROCESSOR)

FORMAT_VERSION = 0.0
SIGNIFICANT_DIGITS = 10
BUCKETS = 10  # the prebuilt analyzer materialises 10 buckets (not configurable)
KLL_C = 0.64
KLL_K = 2048.0
# What the prebuilt analyzer suggests for a baseline; comparison_threshold is replaced on upload
# by the stack's lastmile:observability drift threshold.
MONITORING_CONFIG = {
    "datatype_check_threshold": 1.0,
    "distribution_constraints": {
        "comparison_method": "Robust",
        "comparison_threshold": 0.1,
        "perform_comparison": "Enabled",
    },
    "domain_content_threshold": 1.0,
    "emit_metrics": "Enabled",
    "evaluate_constraints": "Enabled",
}


def feature_name(raw):
    """``sepal length (cm)`` -> ``sepal_length_cm`` (a CloudWatch- and Spark-safe column name)."""
    return re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_")


def _number(value):
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("non-finite value {!r} in the training data".format(value))
    rounded = float("{:.{}g}".format(value, SIGNIFICANT_DIGITS))
    return 0.0 if rounded == 0 else rounded


def load_build(root):
    """model_artifacts/build.py as a module: the one definition of the training split."""
    spec = importlib.util.spec_from_file_location("_baseline_build", os.path.join(root, "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_columns(root):
    """[(feature name, [values in row order])] of the training rows, in the model's column order."""
    build = load_build(root)
    data, (x_train, _y_train), _holdout = build.load_data()
    return [(feature_name(raw), [float(v) for v in x_train[:, i]]) for i, raw in enumerate(data.feature_names)]


def _buckets(values, low, high):
    """Equal-width buckets over [low, high]: [lower, upper), the last one closed. A value is counted
    against the bounds as written (rounded), so a value equal to a bound is in the bucket it opens."""
    width = (high - low) / BUCKETS
    edges = [_number(low + i * width) for i in range(BUCKETS)] + [_number(high)]
    counts = [0] * BUCKETS
    for value in values:
        index = bisect.bisect_right(edges, value, hi=BUCKETS) - 1
        counts[max(index, 0)] += 1
    return [{"count": float(counts[i]), "lower_bound": edges[i], "upper_bound": edges[i + 1]} for i in range(BUCKETS)]


def feature_statistics(name, values):
    count = len(values)
    total = math.fsum(values)
    mean = total / count
    variance = math.fsum((v - mean) ** 2 for v in values) / count  # population, as Deequ's StandardDeviation
    low, high = min(values), max(values)
    return {
        "inferred_type": "Fractional",
        "name": name,
        "numerical_statistics": {
            "common": {"num_missing": 0, "num_present": count},
            "distribution": {"kll": {
                "buckets": _buckets(values, low, high),
                "sketch": {"data": [[_number(v) for v in values]], "parameters": {"c": KLL_C, "k": KLL_K}},
            }},
            "max": _number(high),
            "mean": _number(mean),
            "min": _number(low),
            "std_dev": _number(math.sqrt(variance)),
            "sum": _number(total),
        },
    }


def statistics(columns):
    counts = {len(values) for _, values in columns}
    if len(counts) != 1:
        raise ValueError("columns differ in length: {}".format(sorted(counts)))
    return {
        "dataset": {"item_count": counts.pop()},
        "features": [feature_statistics(name, values) for name, values in columns],
        "version": FORMAT_VERSION,
    }


def constraints(columns):
    return {
        "features": [
            {"completeness": 1.0, "inferred_type": "Fractional", "name": name,
             "num_constraints": {"is_non_negative": min(values) >= 0}}
            for name, values in columns
        ],
        "monitoring_config": MONITORING_CONFIG,
        "version": FORMAT_VERSION,
    }


PREPROCESSOR_TEMPLATE = '''"""Model Monitor record preprocessor of {model} (generated by model_artifacts/build_baseline.py).

The monitoring job calls ``preprocess_handler`` on every captured request. It returns one flat record
per instance, ``{{feature: value}}`` with the baseline's feature names, so batches, JSON and CSV
requests are all judged against baseline/{model}/statistics.json. A record that does not parse
(the endpoint answered it with a 4XX anyway) is skipped by returning an empty list.
Standard library only: it runs inside SageMaker's analyzer container.
"""

import base64
import json

FEATURES = {features}


def _rows(text, content_type):
    if "json" in content_type or text.lstrip().startswith(("{{", "[")):
        body = json.loads(text)
        rows = body.get("instances") if isinstance(body, dict) else body
        if isinstance(rows, list) and rows and not isinstance(rows[0], list):
            rows = [rows]
        return rows if isinstance(rows, list) else []
    return [line.split(",") for line in text.splitlines() if line.strip()]


def records(text, content_type=""):
    """Flat records of one captured request body; [] when it does not parse."""
    try:
        rows = _rows(text, content_type.lower())
        out = []
        for row in rows:
            if not isinstance(row, list) or len(row) != len(FEATURES):
                return []
            out.append({{name: float(value) for name, value in zip(FEATURES, row)}})
        return out
    except (TypeError, ValueError, AttributeError):
        return []


def preprocess_handler(inference_record):
    endpoint_input = inference_record.endpoint_input
    data = endpoint_input.data
    if str(getattr(endpoint_input, "encoding", "")).upper() == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    return records(data, str(getattr(endpoint_input, "observed_content_type", "") or ""))
'''


def preprocessor(columns):
    return PREPROCESSOR_TEMPLATE.format(model=MODEL_NAME, features=json.dumps([name for name, _ in columns]))


def dump_json(obj):
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("utf-8")


def build(root):
    """{path relative to root: bytes} of every baseline file."""
    columns = training_columns(root)
    return {
        os.path.join(BASELINE_DIR, STATISTICS).replace(os.sep, "/"): dump_json(statistics(columns)),
        os.path.join(BASELINE_DIR, CONSTRAINTS).replace(os.sep, "/"): dump_json(constraints(columns)),
        os.path.join(BASELINE_DIR, PREPROCESSOR).replace(os.sep, "/"): preprocessor(columns).encode("utf-8"),
    }


def check(root):
    """Rebuild in memory and compare byte for byte with root. Returns a list of problems."""
    return load_build(root).differences(root, build(root))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=DEFAULT_ROOT, help="model_artifacts directory (default: this script's)")
    parser.add_argument("--check", action="store_true", help="rebuild in memory and exit 1 if any file differs")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    if args.check:
        return load_build(root).report_check(check(root), "baseline files", root,
                                             "python model_artifacts/build_baseline.py")
    for rel, content in sorted(build(root).items()):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
        print("{}  {}".format(hashlib.sha256(content).hexdigest(), rel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
