#!/usr/bin/env python3
"""Build the model artifacts and manifest under model_artifacts/, reproducibly.

    .venv/bin/python model_artifacts/build.py           # (re)write artifacts + manifest.json
    .venv/bin/python model_artifacts/build.py --check   # rebuild in a temp dir; exit 1 on drift
    .venv/bin/python model_artifacts/build.py --root DIR [--check]  # another model_artifacts copy

For each release of iris-classifier this trains a LogisticRegression on sklearn's bundled iris
data, exports the learned parameters to model.json (no pickle), packs model.json plus the
inference code from serving/ into a byte-reproducible model.tar.gz (SageMaker scikit-learn
container, script mode), resolves the SageMaker serving image per region offline with
sagemaker-core, and writes manifest.json.
"""

import os

# Single-threaded BLAS: the numbers must not depend on the machine's core count.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.dont_write_bytecode = True  # keep serving/ free of __pycache__

DEFAULT_ROOT = os.path.dirname(os.path.abspath(__file__))
MANIFEST = "manifest.json"
SCHEMA_VERSION = 1

MODEL_NAME = "iris-classifier"
MODEL_FORMAT = "lastmile.logistic-regression/v1"  # must match serving/iris_model.py
DATA_SOURCE = "sklearn.datasets.load_iris"

# Serving image: SageMaker's scikit-learn inference container.
FRAMEWORK = "sklearn"
FRAMEWORK_VERSION = "1.2-1"
IMAGE_INSTANCE_TYPE = "ml.m5.large"
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2")

# Files of serving/ copied into the tarball as code/<name>.
SERVING_FILES = ("inference.py", "iris_model.py")

# Significant digits kept for every exported parameter. The solver converges to ~1e-12, so
# rounding to 8 digits makes model.json independent of last-bit BLAS/CPU differences.
SIGNIFICANT_DIGITS = 8

# Fixed stratified holdout split, shared by all releases so their metrics compare.
HOLDOUT = {"random_state": 0, "stratify": True, "test_size": 0.2}

# Golden set of every release: these rows of load_iris() with the release's own answers (labels and
# probabilities from the shipped core on the exported parameters). Rows 0, 50, 100: one per class; 145: the
# README's example; 77, 106, 133: the rows where 1.0.0 and 1.1.0 answer differently, so that a server running
# the wrong release fails the golden set of the right one. A served probability may differ from the pinned
# one by GOLDEN_PROBABILITY_TOLERANCE (the pinned ones are rounded to GOLDEN_DECIMALS).
GOLDEN_ROWS = (0, 50, 100, 145, 77, 106, 133)
GOLDEN_DECIMALS = 6
GOLDEN_PROBABILITY_TOLERANCE = 1e-4

RELEASES = {
    "1.0.0": {
        "C": 1.0,
        "feature_scaling": "none",
        "max_iter": 1000,
        "random_state": 0,
        "solver": "newton-cholesky",
        "tol": 1e-10,
    },
    "1.1.0": {
        "C": 10.0,
        "feature_scaling": "standard",
        "max_iter": 1000,
        "random_state": 0,
        "solver": "newton-cholesky",
        "tol": 1e-10,
    },
}

NOTES = (
    "model.tar.gz follows the SageMaker scikit-learn container's script-mode layout: model.json "
    "(exported LogisticRegression parameters, no pickle) at the root and code/inference.py + "
    "code/iris_model.py (numpy-only inference). Create the SageMaker model with environment "
    "SAGEMAKER_PROGRAM=inference.py and SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code. "
    "On-prem servers can import code/iris_model.py directly (load_model(model_dir).predict(rows)). "
    "serving_images were resolved offline with sagemaker.core.image_uris.retrieve('sklearn', "
    "region, version='1.2-1', instance_type='ml.m5.large') from sagemaker-core's bundled image "
    "config. They are AWS-owned, versioned but mutable tags (AWS may re-push them, e.g. with "
    "patches); an image digest cannot be resolved offline, so none is pinned here. Resolve "
    "and pin a digest at deploy time (ecr:DescribeImages in the AWS account) if immutability is "
    "required. The sha256 values are of the tarball bytes (gzip level 9, mtime 0, no name); "
    "build.py --check rebuilds and compares byte for byte."
)


# -- training --------------------------------------------------------------------------------


def _round(values):
    """Round to SIGNIFICANT_DIGITS and return plain Python floats (written with repr by json)."""
    if np.ndim(values):
        return [_round(v) for v in values]
    return float("{:.{}g}".format(float(values), SIGNIFICANT_DIGITS))


def load_data():
    data = load_iris()
    x_train, x_holdout, y_train, y_holdout = train_test_split(
        data.data,
        data.target,
        test_size=HOLDOUT["test_size"],
        stratify=data.target if HOLDOUT["stratify"] else None,
        random_state=HOLDOUT["random_state"],
    )
    return data, (x_train, y_train), (x_holdout, y_holdout)


def train(version, params, data, train_split):
    x_train, y_train = train_split
    spec = {
        "classes": [str(name) for name in data.target_names],
        "feature_names": [str(name) for name in data.feature_names],
        "format": MODEL_FORMAT,
        "name": MODEL_NAME,
        "scaler": None,
        "version": version,
    }
    x = x_train
    if params["feature_scaling"] == "standard":
        scaler = StandardScaler().fit(x_train)
        x = scaler.transform(x_train)
        spec["scaler"] = {"mean": _round(scaler.mean_), "scale": _round(scaler.scale_)}
    elif params["feature_scaling"] != "none":
        raise ValueError("unknown feature_scaling {!r}".format(params["feature_scaling"]))
    clf = LogisticRegression(
        C=params["C"],
        solver=params["solver"],
        tol=params["tol"],
        max_iter=params["max_iter"],
        random_state=params["random_state"],
    ).fit(x, y_train)
    if int(np.max(clf.n_iter_)) >= params["max_iter"]:
        raise RuntimeError("{} {}: solver did not converge".format(MODEL_NAME, version))
    if list(clf.classes_) != list(range(len(data.target_names))):
        raise RuntimeError("unexpected class order {}".format(clf.classes_))
    spec["coef"] = _round(clf.coef_)
    spec["intercept"] = _round(clf.intercept_)
    return spec, clf.predict_proba(x)  # sklearn's own probabilities on the training rows


def load_core(root):
    """Import serving/iris_model.py (the code that ships) without touching sys.modules."""
    path = os.path.join(root, "serving", "iris_model.py")
    spec = importlib.util.spec_from_file_location("_build_iris_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(core, spec, reference, train_split, holdout_split):
    """Metrics of the exported parameters, run through the shipped numpy inference code."""
    model = core.IrisModel(spec)
    x_train, y_train = train_split
    x_holdout, y_holdout = holdout_split
    proba = model.predict_proba(x_train)
    # The export (rounded parameters, numpy-only code) must reproduce sklearn's model.
    if not np.allclose(proba, reference, rtol=0, atol=1e-6):
        raise RuntimeError(
            "exported model disagrees with sklearn: max |dp| = {:.3g}".format(
                float(np.abs(proba - reference).max())
            )
        )
    if not np.array_equal(proba.argmax(axis=1), reference.argmax(axis=1)):
        raise RuntimeError("exported model predicts different labels than sklearn")
    holdout_pred = model.predict_proba(x_holdout).argmax(axis=1)
    return {
        "holdout_accuracy": round(float(np.mean(holdout_pred == y_holdout)), 4),
        "train_accuracy": round(float(np.mean(proba.argmax(axis=1) == y_train)), 4),
    }


def golden_set(core, spec, data):
    """The release's answers on GOLDEN_ROWS, as pinned in the manifest (see GOLDEN_ROWS)."""
    rows = [[float(v) for v in data.data[i]] for i in GOLDEN_ROWS]
    result = core.IrisModel(spec).predict(rows)
    return {
        "probability_tolerance": GOLDEN_PROBABILITY_TOLERANCE,
        "rows": [
            {
                "input": row,
                "label": prediction["label"],
                "probabilities": [round(float(p), GOLDEN_DECIMALS) for p in prediction["probabilities"]],
            }
            for row, prediction in zip(rows, result["predictions"])
        ],
        "source": "{} rows {}".format(DATA_SOURCE, list(GOLDEN_ROWS)),
    }


# -- packaging -------------------------------------------------------------------------------


def dump_json(obj):
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("utf-8")


def _tarinfo(name, size=0, directory=False):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = 0 if directory else size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def make_tarball(files):
    """files: {archive path: bytes}. Returns deterministic .tar.gz bytes."""
    entries = dict(files)
    for path in files:  # explicit directory entries for every parent
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            entries.setdefault("/".join(parts[:i]) + "/", None)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(entries, key=lambda p: p.rstrip("/")):
            content = entries[path]
            if content is None:
                tar.addfile(_tarinfo(path.rstrip("/"), directory=True))
            else:
                tar.addfile(_tarinfo(path, size=len(content)), io.BytesIO(content))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def resolve_images():
    # sagemaker-core 2.x: the SDK's image_uris module lives at sagemaker.core.image_uris and
    # reads the bundled image_uri_config/sklearn.json; no AWS call is made.
    from sagemaker.core import image_uris

    return {
        region: image_uris.retrieve(
            FRAMEWORK,
            region=region,
            version=FRAMEWORK_VERSION,
            instance_type=IMAGE_INSTANCE_TYPE,
        )
        for region in REGIONS
    }


def build(root):
    """Return {relative path: bytes} for every generated file (artifacts + manifest)."""
    core = load_core(root)
    serving = {}
    for name in SERVING_FILES:
        with open(os.path.join(root, "serving", name), "rb") as handle:
            serving["code/" + name] = handle.read()

    data, train_split, holdout_split = load_data()
    outputs = {}
    releases = {}
    for version, params in sorted(RELEASES.items()):
        spec, reference = train(version, params, data, train_split)
        metrics = evaluate(core, spec, reference, train_split, holdout_split)
        files = dict(serving)
        files["model.json"] = dump_json(spec)
        tarball = make_tarball(files)
        artifact = "{}/{}/model.tar.gz".format(MODEL_NAME, version)
        outputs[artifact] = tarball
        releases[version] = {
            "artifact": artifact,
            "golden": golden_set(core, spec, data),
            "metrics": metrics,
            "sha256": hashlib.sha256(tarball).hexdigest(),
            "trained_with": {
                "data": DATA_SOURCE,
                "params": dict(params, holdout=dict(HOLDOUT)),
                "scikit-learn": sklearn.__version__,
            },
        }

    manifest = {
        "models": {
            MODEL_NAME: {
                "framework": FRAMEWORK,
                "framework_version": FRAMEWORK_VERSION,
                "notes": NOTES,
                "releases": releases,
                "serving_images": {"sagemaker": resolve_images()},
            }
        },
        "schema_version": SCHEMA_VERSION,
    }
    outputs[MANIFEST] = dump_json(manifest)
    return outputs


def _existing_artifacts(root):
    """Relative paths of model.tar.gz files currently under root/<model>/."""
    found = set()
    base = os.path.join(root, MODEL_NAME)
    for dirpath, _dirs, filenames in os.walk(base):
        for filename in filenames:
            if filename == "model.tar.gz":
                rel = os.path.relpath(os.path.join(dirpath, filename), root)
                found.add(rel.replace(os.sep, "/"))
    return found


def write(root, outputs):
    for rel, content in sorted(outputs.items()):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)


def differences(root, outputs):
    """Each of ``outputs`` (relative path -> bytes) that is missing under root or differs from it, byte for byte."""
    problems = []
    for rel, expected in sorted(outputs.items()):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            problems.append("{}: missing".format(rel))
            continue
        with open(path, "rb") as handle:
            actual = handle.read()
        if actual != expected:
            problems.append("{}: differs (committed sha256 {}, rebuilt sha256 {})".format(
                rel, hashlib.sha256(actual).hexdigest(), hashlib.sha256(expected).hexdigest()))
    return problems


def check(root):
    """Rebuild in memory and compare byte for byte with root. Returns a list of problems."""
    outputs = build(root)
    problems = differences(root, outputs)
    for rel in sorted(_existing_artifacts(root) - set(outputs)):
        problems.append("{}: not produced by build.py (stale release?)".format(rel))
    return problems


def report_check(problems, what, root, rebuild):
    """Print the outcome of a --check (``problems`` from a rebuild compared byte for byte); exit code."""
    if problems:
        print("{} are out of date in {}:".format(what, root), file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        print("rebuild with: " + rebuild, file=sys.stderr)
        return 1
    print("{} are up to date ({})".format(what, root))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root",
        default=DEFAULT_ROOT,
        help="model_artifacts directory to build into / check (default: this script's directory)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a temp dir and exit 1 if any artifact or the manifest differs",
    )
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)

    if args.check:
        return report_check(check(root), "model artifacts", root, "python model_artifacts/build.py")

    outputs = build(root)
    write(root, outputs)
    for rel in sorted(outputs):
        print("{}  {}".format(hashlib.sha256(outputs[rel]).hexdigest(), rel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
