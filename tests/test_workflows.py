"""The GitHub workflows: valid YAML, the intended triggers and jobs, least privilege, pinned actions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
# Write scopes and the only jobs allowed to hold them: (workflow, job) pairs.
WRITE_SCOPES = {
    "pull-requests": {("preview.yml", "preview"), ("plan-comment.yml", "comment")},
    "id-token": {("preview.yml", "preview"), ("deploy.yml", "dev"), ("deploy.yml", "staging"), ("deploy.yml", "prod"),
                 ("deploy-stack.yml", "up")},
    "contents": {("deploy.yml", "evidence")},
}
UNTRUSTED = ("github.event.pull_request.title", "github.event.pull_request.body", "github.event.pull_request.head.ref",
             "github.head_ref", "github.event.comment.body", "github.event.workflow_run.head_branch")


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict), name
    return document


def triggers(document: dict[str, Any]) -> dict[str, Any]:
    return document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` key as True


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses(document: dict[str, Any]) -> list[str]:
    found = []
    for job in document["jobs"].values():
        if "uses" in job:
            found.append(job["uses"])
        found += [step["uses"] for step in steps(job) if "uses" in step]
    return found


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    [step] = [s for s in steps(job) if s.get("uses", "").startswith(action + "@")]
    return step


NAMES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def test_the_workflows_exist():
    assert NAMES == ["deploy-stack.yml", "deploy.yml", "plan-comment.yml", "preview.yml"]


@pytest.mark.parametrize("name", NAMES)
def test_valid_yaml_with_minimal_default_permissions(name):
    document = load(name)
    assert document["permissions"] == {"contents": "read"}
    assert document["jobs"]
    assert "pull_request_target" not in triggers(document)
    code = "\n".join(line.split("#", 1)[0] for line in (WORKFLOWS / name).read_text().splitlines())
    assert "pull_request_target" not in code


@pytest.mark.parametrize("name", NAMES)
def test_every_job_declares_least_privilege(name):
    for job_id, job in load(name)["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name}:{job_id} declares no permissions"
        for scope, level in permissions.items():
            assert level in ("read", "write"), (name, job_id, scope)
            if level == "write":
                assert (name, job_id) in WRITE_SCOPES.get(scope, set()), f"{name}:{job_id} may not write {scope}"
        if permissions.get("id-token") == "write" and "uses" not in job:
            assert any(s.get("uses", "").startswith("aws-actions/configure-aws-credentials@") for s in steps(job)), \
                f"{name}:{job_id} asks for an OIDC token it does not use"


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_by_commit(name):
    for ref in uses(load(name)):
        assert ref.startswith("./.github/workflows/") or PINNED.match(ref), f"{name}: {ref} is not pinned by a full SHA"


@pytest.mark.parametrize("name", NAMES)
def test_no_untrusted_input_is_interpolated_into_scripts(name):
    for job in load(name)["jobs"].values():
        for step in steps(job):
            script = step.get("run", "")
            assert "${{" not in script, f"{name}: pass values to scripts through env, not ${{{{ }}}} in run"
            assert not any(u in str(step) for u in UNTRUSTED)


def test_preview_runs_on_pull_requests_with_both_paths():
    document = load("preview.yml")
    assert set(triggers(document)) == {"pull_request"}
    jobs = document["jobs"]
    assert set(jobs) == {"plan", "preview", "plan-diff"}
    assert "mode == 'pulumi'" in jobs["preview"]["if"] and "mode == 'offline'" in jobs["plan-diff"]["if"]
    pulumi = step_using(jobs["preview"], "pulumi/actions")["with"]
    assert pulumi["command"] == "preview" and pulumi["diff"] is True and pulumi["comment-on-pr"] is True
    assert pulumi["policyPacks"] == "policy"
    offline = " ".join(s.get("run", "") for s in steps(jobs["plan-diff"]))
    assert "python -m lastmile plan --stack" in offline
    assert step_using(jobs["plan-diff"], "actions/upload-artifact")
    mode = " ".join(str(s.get("env", "")) for s in steps(jobs["plan"]))
    assert "secrets.PULUMI_ACCESS_TOKEN" in mode and "head.repo.full_name == github.repository" in mode
    assert jobs["plan-diff"]["permissions"] == {"contents": "read"}  # fork code never gets a write token


def test_plan_comment_only_reads_artifacts():
    document = load("plan-comment.yml")
    assert triggers(document) == {"workflow_run": {"workflows": ["preview"], "types": ["completed"]}}
    job = document["jobs"]["comment"]
    assert not any(s.get("uses", "").startswith("actions/checkout@") for s in steps(job))
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}


def test_deploy_runs_dev_then_staging_then_prod_behind_approval():
    document = load("deploy.yml")
    assert triggers(document)["push"]["branches"] == ["main"]
    jobs = document["jobs"]
    assert "stacks" in jobs["dev"]["needs"] and "dev" in jobs["staging"]["needs"] and "staging" in jobs["prod"]["needs"]
    environments = {env: jobs[env]["with"]["environment"] for env in ("dev", "staging", "prod")}
    assert environments == {"dev": "dev", "staging": "staging", "prod": "production"}
    assert all(jobs[env]["uses"] == "./.github/workflows/deploy-stack.yml" for env in environments)
    assert document["concurrency"]["cancel-in-progress"] is False

    reusable = load("deploy-stack.yml")
    [up] = reusable["jobs"].values()
    assert up["environment"] == "${{ inputs.environment }}"  # prod's job waits for the production environment
    pulumi = step_using(up, "pulumi/actions")["with"]
    assert pulumi["command"] == "up" and pulumi["policyPacks"] == "policy"
    scripts = [s.get("run", "") for s in steps(up)]
    order = [i for i, s in enumerate(steps(up)) if s.get("uses", "").startswith("pulumi/actions@")] + \
            [i for i, run in enumerate(scripts) if "python -m lastmile verify --stack" in run]
    assert len(order) == 2 and order[0] < order[1], "verify runs after pulumi up"
    assert any("python -m lastmile promote record-verification" in run for run in scripts)
