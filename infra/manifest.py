"""model_artifacts/manifest.json: which artifact, digest and serving image each release pins."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "model_artifacts"


@dataclass(frozen=True)
class ManifestRelease:
    model: str
    version: str
    framework: str
    framework_version: str
    artifact_path: Path
    sha256: str
    sagemaker_images: dict[str, str]


@lru_cache(maxsize=8)
def load_manifest(root: Path = ARTIFACTS_DIR) -> dict[tuple[str, str], ManifestRelease]:
    document = json.loads((root / "manifest.json").read_text())
    releases = {}
    for model, entry in document["models"].items():
        images = dict(entry.get("serving_images", {}).get("sagemaker", {}))
        for version, release in entry["releases"].items():
            releases[(model, version)] = ManifestRelease(
                model=model,
                version=version,
                framework=entry["framework"],
                framework_version=entry["framework_version"],
                artifact_path=root / release["artifact"],
                sha256=release["sha256"],
                sagemaker_images=images,
            )
    return releases


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
