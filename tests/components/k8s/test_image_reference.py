"""Image references follow the OCI distribution reference grammar (components.k8s.common): what a kubelet
would refuse to pull is refused when the Args or the stack settings are read, naming the part that is wrong."""

from __future__ import annotations

import pytest

from components.k8s.common import DIGEST_IMAGE, IMAGE_NAME_MAX, check_image_reference, image_reference_problem

HEX = "f1ce1afa2dddffa9697e51d15e3c7c95d5cdb1e1d31771305307f96eb08e7007"

VALID = [
    f"docker.io/seldonio/mlserver@sha256:{HEX}",
    f"seldonio/mlserver@sha256:{HEX}",
    f"mlserver@sha256:{HEX}",
    f"seldonio/mlserver:1.6.1@sha256:{HEX}",
    f"localhost/mlserver@sha256:{HEX}",
    f"localhost:5000/team/mlserver@sha256:{HEX}",
    f"registry.example.internal:443/a/b/c@sha256:{HEX}",
    f"[::1]:5000/mlserver@sha256:{HEX}",
    f"Docker.io/seldonio/mlserver@sha256:{HEX}",  # a registry host may have capitals; the path may not
    f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/my_model__x--y.z@sha256:{HEX}",
]

INVALID = {
    f"Docker.io/Seldon/MLServer@sha256:{HEX}": "repository path component 'Seldon'",
    f"docker.io/seldonio/MLServer@sha256:{HEX}": "(uppercase is not allowed)",
    f"-docker.io/x@sha256:{HEX}": "registry '-docker.io'",
    f"docker-.io/x@sha256:{HEX}": "registry 'docker-.io'",
    f"docker.io/seldonio/../mlserver@sha256:{HEX}": "repository path component '..'",
    f"docker.io/seldonio/./mlserver@sha256:{HEX}": "repository path component '.'",
    f"docker.io//mlserver@sha256:{HEX}": "repository path component ''",
    f"docker.io/seldonio/mlserver/@sha256:{HEX}": "repository path component ''",
    f"docker.io/seldonio/-mlserver@sha256:{HEX}": "repository path component '-mlserver'",
    f"docker.io/seldonio/ml...server@sha256:{HEX}": "repository path component 'ml...server'",
    f"docker.io/seldonio/ml___server@sha256:{HEX}": "repository path component 'ml___server'",
    f"registry:99999/x@sha256:{HEX}": "registry 'registry:99999'",
    f"registry:/x@sha256:{HEX}": "registry 'registry:'",
    f"mlserver:-1@sha256:{HEX}": "tag '-1'",
    f"mlserver:{'t' * 129}@sha256:{HEX}": "tag 'ttt",
    f"mlserver@sha256:{HEX[:-1]}": "sha256 takes exactly 64 lowercase hex digits, not 63",
    f"mlserver@sha256:{HEX}0": "not 65",
    f"mlserver@sha256:{HEX.upper()}": "64 lowercase hex digits",
    f"mlserver@md5:{HEX}": "the algorithm must be one of sha256",
    f"mlserver@{HEX}": "the algorithm must be one of sha256",
    f"mlserver@sha256:{HEX}@sha256:{HEX}": "64 lowercase hex digits",
    "docker.io/seldonio/mlserver:1.6.1": "not pinned by digest",
    "docker.io/seldonio/mlserver": "not pinned by digest",
    f"docker.io/seldonio/ml server@sha256:{HEX}": "repository path component 'ml server'",
    f"{'a' * 250}/mlserver@sha256:{HEX}": f"at most {IMAGE_NAME_MAX}",
    "": "empty",
}


@pytest.mark.parametrize("image", VALID)
def test_references_the_grammar_admits(image):
    assert image_reference_problem(image) is None
    assert check_image_reference("image", image) == []
    assert DIGEST_IMAGE.match(image), "the pattern and the function disagree"


@pytest.mark.parametrize("image", INVALID, ids=lambda i: i[:60])
def test_references_a_kubelet_would_refuse(image):
    (problem,) = check_image_reference("serving.slots.blue.image", image)
    assert problem.field == "serving.slots.blue.image" and problem.value == image
    assert INVALID[image] in problem.message, problem.message
    assert "allowed: an OCI image reference" in problem.message and "@sha256:<digest>" in problem.fix
    if INVALID[image] not in (f"at most {IMAGE_NAME_MAX}", "registry 'registry:99999'"):
        assert not DIGEST_IMAGE.match(image), "the pattern and the function disagree"


def test_a_tag_alone_passes_only_when_no_digest_is_required():
    assert image_reference_problem("docker.io/seldonio/mlserver:1.6.1", digest_required=False) is None
    assert "repository path component 'Seldon'" in image_reference_problem("Docker.io/Seldon/x:1", digest_required=False)
