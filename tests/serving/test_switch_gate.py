"""The on-prem switch gate through the real engine: `lastmile up --golden-url` asks the slot about to
receive traffic (a real MLServer serving what that slot's pods serve) the release's golden set before
the active slot moves; a failing row stops the up before anything is deployed and names the row.

The stack is onprem-gitops (render mode), so what the engine deployed is read back from its rendered
Service; the servers are real MLServer processes on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import REPO_ROOT, Checkout, copy_repo
from rungs import unavailable

pytestmark = [pytest.mark.engine, pytest.mark.serving]

STACK = "onprem-gitops"


def _stable_slot(checkout: Checkout) -> str:
    for path in (checkout.root / "rendered" / STACK).rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] == "Service" and "router-stable" in document["metadata"]["name"]:
                return document["spec"]["selector"]["lastmile.dev/slot"]
    raise AssertionError("no stable Service rendered")


def _set_active(checkout: Checkout, slot: str) -> None:
    path = checkout.stack_file(STACK)
    path.write_text(re.sub(r"(?m)^(    active_slot: )\w+$", rf"\g<1>{slot}", path.read_text()))


@pytest.fixture
def checkout(tmp_path) -> Checkout:
    bootstrap = subprocess.run([str(REPO_ROOT / "tools/engine/bootstrap.sh")], capture_output=True, text=True,
                               check=False)
    if bootstrap.returncode != 0:
        unavailable("the Pulumi engine", bootstrap.stderr[-2000:])
    root = copy_repo(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LASTMILE_", "AWS_"))}
    env["LASTMILE_PULUMI_HOME"] = str(tmp_path / "pulumi-home")
    return Checkout(root=Path(root), env=env)


def test_a_switch_to_a_slot_that_fails_its_golden_set_never_happens(checkout, make_pod, blue, start_mlserver):
    deployed = checkout.lastmile("up", STACK)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert _stable_slot(checkout) == "green"
    pod = make_pod(blue)
    pod.place_artifact(blue.artifact)  # blue's pods serve 1.0.0, as its slot pins
    server = start_mlserver(pod)
    server.wait_ready()

    _set_active(checkout, "blue")  # the switch to blue, checked against blue's own server: passes
    switched = checkout.lastmile("up", STACK, "--golden-url", server.base_url)
    assert switched.returncode == 0, switched.stdout[-2000:] + switched.stderr[-3000:]
    assert "all 7 rows answered as pinned" in switched.stderr and _stable_slot(checkout) == "blue"

    _set_active(checkout, "green")  # green pins 1.1.0, but what answers there serves 1.0.0: refused
    refused = checkout.lastmile("up", STACK, "--golden-url", server.base_url)
    assert refused.returncode == 1, refused.stdout[-2000:] + refused.stderr[-3000:]
    assert "row 0: input [5.1, 3.5, 1.4, 0.2]" in refused.stderr and "nothing was deployed" in refused.stderr
    assert "Traceback" not in refused.stderr and "Updating" not in refused.stdout
    assert _stable_slot(checkout) == "blue", "traffic stayed on the slot that passed"

    unreachable = checkout.lastmile("up", STACK, "--golden-url", "http://127.0.0.1:9")  # nobody answers: no switch
    assert unreachable.returncode == 3 and "nothing was deployed" in unreachable.stderr
    assert _stable_slot(checkout) == "blue"
    _set_active(checkout, "blue")  # no switch: no question asked
    unchanged = checkout.lastmile("up", STACK, "--golden-url", "http://127.0.0.1:9")
    assert unchanged.returncode == 0 and "no golden check needed" in unchanged.stderr

    # A release changed in place in the active slot (blue; the stack allows it) is asked like a switch: the URL
    # serves 1.0.0, not the new 1.1.0, so its golden set fails and nothing is deployed.
    path = checkout.stack_file(STACK)
    document = yaml.safe_load(path.read_text())
    serving = document["config"]["lastmile:serving"]
    serving["slots"] = {"blue": serving["slots"]["green"]}
    serving["allow_in_place_release"] = True
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    in_place = checkout.lastmile("up", STACK, "--golden-url", server.base_url)
    assert in_place.returncode == 1, in_place.stdout[-2000:] + in_place.stderr[-3000:]
    assert "the release in place in slot blue would send traffic to iris-classifier 1.1.0" in in_place.stderr
    assert "Updating" not in in_place.stdout and "Traceback" not in in_place.stderr
