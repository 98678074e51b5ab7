"""Tests of model_artifacts/: manifest, tarballs, the shipped inference code, build.py --check.

Offline and fast: the inference code is imported from freshly extracted tarballs, and
build.py runs as a subprocess (it trains two tiny models on sklearn's bundled iris data).
"""

import gzip
import hashlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "model_artifacts"
BUILD = ROOT / "build.py"
MODEL = "iris-classifier"
REGIONS = {"eu-west-1", "eu-central-1", "us-east-1", "us-west-2"}
EXPECTED_MEMBERS = ["code", "code/inference.py", "code/iris_model.py", "model.json"]

MANIFEST_BYTES = (ROOT / "manifest.json").read_bytes()
MANIFEST = json.loads(MANIFEST_BYTES)
RELEASES = sorted(MANIFEST["models"][MODEL]["releases"])


def release(version):
    return MANIFEST["models"][MODEL]["releases"][version]


def artifact_path(version):
    return ROOT / release(version)["artifact"]


def run_build(*args):
    return subprocess.run(
        [sys.executable, str(BUILD), *args],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def iris():
    # Imported here, not at the top: scikit-learn takes ~1.7 s to import, and every pytest-xdist worker
    # collects (imports) every test module, while only the one that runs these tests needs it.
    from sklearn.datasets import load_iris

    return load_iris()


@pytest.fixture(scope="module", params=RELEASES)
def served(request, tmp_path_factory):
    """(version, inference module, loaded model, extract dir) for one release's tarball."""
    version = request.param
    target = tmp_path_factory.mktemp("release-" + version)
    with tarfile.open(artifact_path(version), "r:gz") as tar:
        tar.extractall(target, filter="data")
    modules_before = set(sys.modules)
    name = "_test_inference_{}".format(uuid.uuid4().hex)
    spec = importlib.util.spec_from_file_location(name, target / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # never registered in sys.modules
    # Importing the handlers must not leak modules (e.g. a shared `iris_model`) into the process.
    assert not {m for m in set(sys.modules) - modules_before if "iris" in m or "inference" in m}
    model = module.model_fn(str(target))
    return version, module, model, target


def invoke(module, model, body, content_type, accept="application/json"):
    data = module.input_fn(body, content_type)
    prediction = module.predict_fn(data, model)
    response, response_type = module.output_fn(prediction, accept)
    assert response_type == "application/json"
    return json.loads(response)


# -- manifest -----------------------------------------------------------------------------


def test_manifest_is_canonical_json():
    canonical = json.dumps(MANIFEST, indent=2, sort_keys=True) + "\n"
    assert MANIFEST_BYTES.decode("utf-8") == canonical


def test_manifest_schema():
    assert MANIFEST["schema_version"] == 1
    entry = MANIFEST["models"][MODEL]
    assert set(entry) == {"framework", "framework_version", "releases", "serving_images", "notes"}
    assert entry["framework"] == "sklearn"
    assert entry["framework_version"] == "1.2-1"
    assert {"1.0.0", "1.1.0"} <= set(entry["releases"])
    assert "digest" in entry["notes"]
    for version, rel in entry["releases"].items():
        assert set(rel) == {"artifact", "golden", "sha256", "trained_with", "metrics"}
        assert rel["artifact"] == "{}/{}/model.tar.gz".format(MODEL, version)
        assert re.fullmatch(r"[0-9a-f]{64}", rel["sha256"])
        assert rel["trained_with"]["data"] == "sklearn.datasets.load_iris"
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", rel["trained_with"]["scikit-learn"])
        assert isinstance(rel["trained_with"]["params"], dict)
        assert set(rel["metrics"]) == {"train_accuracy", "holdout_accuracy"}
        for value in rel["metrics"].values():
            assert 0.9 <= value <= 1.0


def test_serving_images_pinned_per_region():
    images = MANIFEST["models"][MODEL]["serving_images"]["sagemaker"]
    assert set(images) == REGIONS
    for region, uri in images.items():
        assert re.fullmatch(
            r"\d{{12}}\.dkr\.ecr\.{}\.amazonaws\.com/sagemaker-scikit-learn:1\.2-1-cpu-py3".format(
                re.escape(region)
            ),
            uri,
        ), uri


@pytest.mark.parametrize("version", RELEASES)
def test_artifact_sha256_matches_manifest(version):
    digest = hashlib.sha256(artifact_path(version).read_bytes()).hexdigest()
    assert digest == release(version)["sha256"]


# -- tarball layout -----------------------------------------------------------------------


@pytest.mark.parametrize("version", RELEASES)
def test_tarball_is_normalized(version):
    blob = artifact_path(version).read_bytes()
    # gzip header: magic, deflate, no flags (so no embedded file name), mtime 0.
    assert blob[:3] == b"\x1f\x8b\x08"
    assert blob[3] == 0, "gzip header flags set (file name/comment embedded)"
    assert blob[4:8] == b"\x00\x00\x00\x00", "gzip header mtime is not 0"

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == EXPECTED_MEMBERS
    assert names == sorted(names)
    for member in members:
        assert member.mtime == 0, member.name
        assert (member.uid, member.gid) == (0, 0), member.name
        assert (member.uname, member.gname) == ("", ""), member.name
        if member.isdir():
            assert member.mode == 0o755, member.name
        else:
            assert member.isreg(), member.name
            assert member.mode == 0o644, member.name


@pytest.mark.parametrize("version", RELEASES)
def test_tarball_code_is_the_committed_serving_source(version):
    with tarfile.open(artifact_path(version), "r:gz") as tar:
        for name in ("inference.py", "iris_model.py"):
            shipped = tar.extractfile("code/" + name).read()
            assert shipped == (ROOT / "serving" / name).read_bytes(), name


# -- inference contract -------------------------------------------------------------------


def test_json_predictions(served, iris):
    version, module, model, _ = served
    body = json.dumps({"instances": iris.data.tolist()})
    for payload in (body, body.encode("utf-8")):
        result = invoke(module, model, payload, "application/json")
        assert result["model_name"] == MODEL
        assert result["model_version"] == version
        assert result["classes"] == list(iris.target_names)
        predictions = result["predictions"]
        assert len(predictions) == len(iris.target)
        labels = [p["label"] for p in predictions]
        accuracy = np.mean(np.array(labels) == iris.target_names[iris.target])
        assert accuracy >= 0.9, accuracy
        for p in predictions:
            assert len(p["probabilities"]) == 3
            assert all(0.0 <= x <= 1.0 for x in p["probabilities"])
            assert sum(p["probabilities"]) == pytest.approx(1.0, abs=1e-9)
            assert p["label"] == result["classes"][int(np.argmax(p["probabilities"]))]


def test_csv_matches_json(served, iris):
    _, module, model, _ = served
    rows = iris.data[::7]
    csv_body = "\r\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n"
    from_csv = invoke(module, model, csv_body.encode("utf-8"), "text/csv; charset=utf-8")
    from_json = invoke(
        module, model, json.dumps({"instances": rows.tolist()}), "application/json; charset=utf-8"
    )
    assert from_csv == from_json
    labels = [p["label"] for p in from_csv["predictions"]]
    assert np.mean(np.array(labels) == iris.target_names[iris.target[::7]]) >= 0.9


def test_single_row_and_accept_variants(served):
    _, module, model, _ = served
    data = module.input_fn('{"instances": [[5.1, 3.5, 1.4, 0.2]]}', "application/json")
    prediction = module.predict_fn(data, model)
    assert prediction["predictions"][0]["label"] == "setosa"
    for accept in (None, "", "*/*", "application/json", "text/html, application/json;q=0.9"):
        body, content_type = module.output_fn(prediction, accept)
        assert content_type == "application/json"
        assert json.loads(body) == prediction


@pytest.mark.parametrize(
    "body, content_type",
    [
        ('{"instances": [[5.1, 3.5, 1.4]]}', "application/json"),  # 3 features
        ('{"instances": [[5.1, 3.5, 1.4, 0.2, 9.9]]}', "application/json"),  # 5 features
        ('{"instances": [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5]]}', "application/json"),  # ragged
        ('{"instances": [5.1, 3.5, 1.4, 0.2]}', "application/json"),  # not a list of rows
        ('{"instances": []}', "application/json"),
        ('{"instances": [["a", "b", "c", "d"]]}', "application/json"),
        ('{"instances": [[true, 3.5, 1.4, 0.2]]}', "application/json"),
        ('{"instances": [[NaN, 3.5, 1.4, 0.2]]}', "application/json"),
        ('{"inputs": [[5.1, 3.5, 1.4, 0.2]]}', "application/json"),
        ("[[5.1, 3.5, 1.4, 0.2]]", "application/json"),
        ("{not json", "application/json"),
        (b"\xff\xfe", "application/json"),
        ("5.1,3.5,1.4\n", "text/csv"),
        ("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n", "text/csv"),
        ("", "text/csv"),
        ("5.1,3.5,1.4,0.2", "application/x-npy"),
        ("5.1,3.5,1.4,0.2", "text/plain"),
        ("5.1,3.5,1.4,0.2", None),
    ],
)
def test_bad_input_raises_value_error(served, body, content_type):
    _, module, model, _ = served
    with pytest.raises(ValueError):
        data = module.input_fn(body, content_type)
        module.predict_fn(data, model)


def test_wrong_feature_count_message_is_clear(served):
    _, module, model, _ = served
    data = module.input_fn("5.1,3.5,1.4\n", "text/csv")
    with pytest.raises(ValueError, match=r"3 features, expected 4"):
        module.predict_fn(data, model)


def test_unsupported_accept_raises_value_error(served):
    _, module, model, _ = served
    prediction = module.predict_fn(module.input_fn("5.1,3.5,1.4,0.2", "text/csv"), model)
    with pytest.raises(ValueError, match="accept"):
        module.output_fn(prediction, "text/csv")


def test_core_is_usable_without_the_sagemaker_handlers(served, iris):
    """An on-prem server can load code/iris_model.py on its own."""
    _, _, _, target = served
    spec = importlib.util.spec_from_file_location(
        "_test_core_{}".format(uuid.uuid4().hex), target / "code" / "iris_model.py"
    )
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    model = core.load_model(str(target))
    proba = model.predict_proba(iris.data)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert np.mean(proba.argmax(axis=1) == iris.target) >= 0.9


def test_golden_set_is_what_the_shipped_code_answers(served, iris):
    version, module, model, _ = served
    pinned = release(version)["golden"]
    assert pinned["source"] == "sklearn.datasets.load_iris rows [0, 50, 100, 145, 77, 106, 133]"
    rows = [r["input"] for r in pinned["rows"]]
    assert rows == [iris.data[i].tolist() for i in (0, 50, 100, 145, 77, 106, 133)]
    answer = invoke(module, model, json.dumps({"instances": rows}), "application/json")
    for row, got in zip(pinned["rows"], answer["predictions"]):
        assert got["label"] == row["label"]
        np.testing.assert_allclose(got["probabilities"], row["probabilities"], rtol=0,
                                   atol=pinned["probability_tolerance"])


# -- releases differ ----------------------------------------------------------------------


def _model_json(version):
    with tarfile.open(artifact_path(version), "r:gz") as tar:
        return json.loads(tar.extractfile("model.json").read())


def test_releases_are_different_models():
    assert len(RELEASES) >= 2
    digests = {release(v)["sha256"] for v in RELEASES}
    assert len(digests) == len(RELEASES)
    specs = {v: _model_json(v) for v in RELEASES}
    params = {v: release(v)["trained_with"]["params"] for v in RELEASES}
    for a, b in zip(RELEASES, RELEASES[1:]):
        assert params[a] != params[b]
        assert specs[a]["version"] == a and specs[b]["version"] == b
        assert not np.allclose(specs[a]["coef"], specs[b]["coef"])
        assert specs[a]["scaler"] != specs[b]["scaler"]


# -- build.py --check ---------------------------------------------------------------------


def test_build_check_passes_on_committed_tree():
    result = run_build("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def _copy_tree(tmp_path):
    copy = tmp_path / "model_artifacts"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def test_build_check_detects_tampered_artifact(tmp_path):
    copy = _copy_tree(tmp_path)
    target = copy / release(RELEASES[0])["artifact"]
    blob = bytearray(target.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    target.write_bytes(bytes(blob))

    result = run_build("--check", "--root", str(copy))
    assert result.returncode != 0
    assert release(RELEASES[0])["artifact"] in result.stderr
    # --check reports, it does not repair.
    assert target.read_bytes() == bytes(blob)


def test_build_check_detects_edited_manifest_and_serving_code(tmp_path):
    copy = _copy_tree(tmp_path)
    manifest = copy / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"1.2-1"', b'"1.2-2"', 1))
    source = copy / "serving" / "inference.py"
    source.write_bytes(source.read_bytes() + b"\n# local edit\n")

    result = run_build("--check", "--root", str(copy))
    assert result.returncode != 0
    assert "manifest.json" in result.stderr
    for version in RELEASES:  # the serving code is in every tarball
        assert release(version)["artifact"] in result.stderr
