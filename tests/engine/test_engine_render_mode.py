"""The engine on a render-mode stack (onprem-gitops), as a user runs it: `lastmile up`, a no-op preview, a
blue/green flip whose preview diff names exactly the stable Service's selector (and the outputs), the
up that moves it, destroy; secrets stay ciphertext; a bad stack config stops before the engine.

The stack is in render mode: the Kubernetes provider writes the manifests into rendered/onprem-gitops of
the checkout, which is what these tests read back.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml



pytestmark = pytest.mark.engine

STACK = "onprem-gitops"
SLOT_LABEL = "lastmile.dev/slot"


def _rendered(checkout) -> list[dict[str, Any]]:
    directory = checkout.root / "rendered" / STACK
    documents = []
    for path in sorted(directory.rglob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _stable_selector(checkout) -> dict[str, str]:
    services = [d for d in _rendered(checkout)
                if d["kind"] == "Service" and d["metadata"]["name"].startswith("iris-classifier-router-stable")]
    assert len(services) == 1, [d["metadata"]["name"] for d in _rendered(checkout) if d["kind"] == "Service"]
    return services[0]["spec"]["selector"]


def _flip(checkout, to: str) -> None:
    path = checkout.stack_file(STACK)
    text = path.read_text()
    flipped = re.sub(r"(?m)^(    active_slot: )\w+$", rf"\g<1>{to}", text)
    assert flipped != text
    path.write_text(flipped)


def _ok(result: Any) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def deployed(make_checkout) :
    checkout = make_checkout("onprem-gitops")
    _ok(checkout.lastmile("up", STACK))
    return checkout


def test_up_renders_the_stack_into_the_project_not_the_program_directory(deployed) -> None:
    kinds = sorted({d["kind"] for d in _rendered(deployed)})
    assert {"Namespace", "Deployment", "Service", "NetworkPolicy", "Role", "RoleBinding", "HTTPRoute",
            "GRPCRoute"} <= set(kinds)
    assert "Ingress" not in kinds  # Gateway API is the entry (onprem.entry: gateway)
    assert not (deployed.root / "infra" / "rendered").exists()
    assert _stable_selector(deployed)[SLOT_LABEL] == "green"


def test_a_second_preview_reports_no_changes(deployed) -> None:
    result = deployed.lastmile("preview", STACK)
    _ok(result)
    assert "no changes" in result.stderr


def test_outputs_name_the_active_slot_and_mask_secrets(deployed) -> None:
    outputs = json.loads(_ok(deployed.lastmile("outputs", STACK)))
    assert outputs["active_slot"] == "green"
    assert outputs["render_directory"] == "rendered/onprem-gitops"


def test_secrets_are_ciphertext_in_the_stack_file_and_absent_from_state(deployed) -> None:
    stack_text = deployed.stack_file(STACK).read_text()
    assert "BEGIN CERTIFICATE" not in stack_text and "PLACEHOLDER" not in stack_text
    assert stack_text.count("secure: v1:") == 1  # the model store's key (TLS ends at the cluster's Gateway)
    state_files = list((deployed.root / ".pulumi-state").rglob(f"{STACK}.json"))
    assert state_files, "the file backend holds the stack's state"
    state = "\n".join(p.read_text() for p in state_files)
    # The rendered Secret carries the model store's key (render mode writes plaintext, documented); the state
    # must not: the engine keeps secret inputs and outputs encrypted.
    rendered_secret = next(d for d in _rendered(deployed) if d["kind"] == "Secret")
    [key_b64] = [v for v in (rendered_secret.get("data") or {}).values()] or [
        v for v in (rendered_secret.get("stringData") or {}).values()]
    assert key_b64 and key_b64 not in state
    assert "BEGIN CERTIFICATE" not in state and "lastmile-local-only-not-a-secret" not in state
    assert "4dabf18193072939515e22adb298388d" in state  # the engine's marker of an encrypted secret value


def test_flip_previews_exactly_the_selector_then_moves_traffic_and_destroy_removes_everything(deployed) -> None:
    _flip(deployed, "blue")
    result = deployed.lastmile("preview", STACK)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [line.strip() for line in result.stdout.splitlines()]
    operations = [line for line in lines if re.match(r"^[-+~]+ \S+: \((update|create|delete|replace)", line)]
    # the stable and preview Services, and the two routes' weights (all weight follows active_slot)
    assert sorted(operations) == sorted(["~ kubernetes:core/v1:Service: (update)"] * 2 + [
        "~ kubernetes:gateway.networking.k8s.io/v1:HTTPRoute: (update)",
        "~ kubernetes:gateway.networking.k8s.io/v1:GRPCRoute: (update)"]), operations
    leaves = sorted(line for line in lines if "=>" in line)
    assert leaves == sorted([
        f'~ {SLOT_LABEL}: "green" => "blue"',  # the stable Service moves to blue ...
        f'~ {SLOT_LABEL}: "blue" => "green"',  # ... and the preview Service to the now idle green
        *['~ weight: 0 => 100', '~ weight: 100 => 0'] * 2,  # blue's backendRef gets all, green's none (2 routes)
        '~ active_release  : "iris-classifier 1.1.0" => "iris-classifier 1.0.0"',
        '~ active_slot     : "green" => "blue"',
        '~ blue : 0 => 100', '~ green: 100 => 0',  # the slot_weights output
    ]), leaves
    assert "4 to update" in result.stdout and "30 unchanged" in result.stdout

    _ok(deployed.lastmile("up", STACK))
    assert _stable_selector(deployed)[SLOT_LABEL] == "blue"
    assert json.loads(_ok(deployed.lastmile("outputs", STACK)))["active_slot"] == "blue"
    no_op = deployed.lastmile("preview", STACK)
    assert no_op.returncode == 0, no_op.stdout[-3000:]

    _ok(deployed.lastmile("destroy", STACK))
    assert _rendered(deployed) == []


def test_bad_stack_config_is_refused_before_the_engine_with_lastmiles_message(make_checkout) -> None:
    checkout = make_checkout("bad-config")
    path = checkout.stack_file(STACK)
    path.write_text(path.read_text().replace("    active_slot: green", "    active_slot: purple"))
    result = checkout.lastmile("preview", STACK)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "lastmile:serving" in result.stderr and "purple" in result.stderr and "fix:" in result.stderr
    assert not (checkout.root / ".pulumi-state").exists() or not list((checkout.root / ".pulumi-state").rglob("*.json"))


def test_unknown_stack_is_refused_naming_the_stacks(make_checkout) -> None:
    checkout = make_checkout("unknown-stack")
    result = checkout.lastmile("up", "onprem-nowhere")
    assert result.returncode == 2
    assert "onprem-nowhere" in result.stderr and "onprem-gitops" in result.stderr and "Traceback" not in result.stderr


def test_preview_against_a_base_revision_shows_the_engines_diff_of_a_pull_request(make_checkout) -> None:
    """What a pull request shows for a render-mode stack: the base deployed into a throwaway state, the head
    previewed against it. Unchanged: no changes (exit 0); a flip: exactly the selectors (exit 1)."""
    checkout = make_checkout("pr-preview")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for argv in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-qm", "base"]):
        subprocess.run(argv, cwd=checkout.root, check=True)
    same = checkout.lastmile("preview", "onprem-gitops", "--base", "HEAD")
    assert same.returncode == 0 and "no changes" in same.stderr, same.stdout[-3000:] + same.stderr[-3000:]
    path = checkout.stack_file("onprem-gitops")
    path.write_text(path.read_text().replace("    active_slot: green", "    active_slot: blue"))
    flipped = checkout.lastmile("preview", "onprem-gitops", "--base", "HEAD")
    assert flipped.returncode == 1, flipped.stdout[-3000:] + flipped.stderr[-3000:]
    assert f'~ {SLOT_LABEL}: "green" => "blue"' in flipped.stdout and "4 to update" in flipped.stdout
    assert not (checkout.root / ".pulumi-state").exists(), "the base was deployed into a throwaway state"
    unknown = checkout.lastmile("preview", "onprem-gitops", "--base", "no-such-rev")
    assert unknown.returncode == 2 and "unknown git revision" in unknown.stderr
    cluster_stack = checkout.lastmile("preview", "aws-dev", "--base", "HEAD")
    assert cluster_stack.returncode in (2, 3) and "Traceback" not in cluster_stack.stderr
