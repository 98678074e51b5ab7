"""On-prem stack settings: serving images follow the OCI reference grammar, and a shadow slot (SageMaker's)
is refused where nothing would honour it. Through the one reader of stack files, on the committed stacks."""

from __future__ import annotations

import pytest

from infra.settings.loader import ConfigError
from lastmile.common import STACKS_DIR
from lastmile.stackfile import stack_settings

HEX = "f1ce1afa2dddffa9697e51d15e3c7c95d5cdb1e1d31771305307f96eb08e7007"
GOOD = f"docker.io/seldonio/mlserver@sha256:{HEX}"


def problems_of(stack: str, old: str, new: str) -> list:
    text = (STACKS_DIR / f"Pulumi.{stack}.yaml").read_text()
    assert old in text, f"Pulumi.{stack}.yaml no longer holds {old!r}"
    with pytest.raises(ConfigError) as caught:
        stack_settings(stack, text=text.replace(old, new, 1))
    return caught.value.problems


@pytest.mark.parametrize("image, part", [
    (f"Docker.io/Seldon/MLServer@sha256:{HEX}", "'Seldon'"),
    (f"-docker.io/x@sha256:{HEX}", "registry '-docker.io'"),
    (f"docker.io/seldonio/../mlserver@sha256:{HEX}", "'..'"),
    (f"docker.io/seldonio/mlserver@sha256:{HEX[:40]}", "not 40"),
    ("docker.io/seldonio/mlserver:1.6.1", "not pinned by digest"),
])
def test_an_onprem_image_outside_the_grammar_is_refused(image, part):
    (problem,) = [p for p in problems_of("onprem-prod", f"image: {GOOD}", f"image: {image}")
                  if p.field.endswith(".image")]
    assert problem.field == "serving.slots.blue.image" and problem.value == image and part in problem.message
    assert "allowed: an OCI image reference" in problem.message and problem.fix


def test_the_committed_onprem_stacks_pass():
    for stack in ("onprem-prod", "onprem-dev", "onprem-local", "onprem-gitops"):
        stack_settings(stack)


def test_a_shadow_slot_on_an_onprem_stack_is_refused():
    (problem,) = problems_of("onprem-prod", "    active_slot: blue\n", "    active_slot: blue\n    shadow_slot: green\n")
    assert (problem.field, problem.value) == ("serving.shadow_slot", "green")
    assert "on an on-prem stack it would do nothing" in problem.message and "remove serving.shadow_slot" in problem.fix


def test_a_shadow_slot_stays_allowed_where_sagemaker_serves():
    for stack in ("aws-staging", "hybrid-staging"):
        assert stack_settings(stack).serving.shadow_slot is not None
