"""The GitHub workflows: valid YAML, the intended triggers and jobs, least privilege, pinned actions, one deploy
path (`lastmile up` against the team's S3 backend), exit codes handled explicitly, and actionlint clean."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from rungs import unavailable

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
ACTIONS = REPO / ".github" / "actions"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
# Write scopes and the only jobs allowed to hold them: (workflow, job) pairs.
WRITE_SCOPES = {
    "pull-requests": {("plan-comment.yml", "comment")},
    "id-token": {("preview.yml", "preview"), ("deploy.yml", "dev"), ("deploy.yml", "staging"), ("deploy.yml", "prod"),
                 ("deploy-stack.yml", "up"), ("drift.yml", "check")},
    "issues": {("drift.yml", "issues")},
    "contents": {("deploy.yml", "evidence")},
}
UNTRUSTED = ("github.event.pull_request.title", "github.event.pull_request.body", "github.event.pull_request.head.ref",
             "github.head_ref", "github.event.comment.body", "github.event.workflow_run.head_branch")
TEAM_BACKEND = "s3://${{ vars.PULUMI_STATE_BUCKET }}?region=${{ vars.PULUMI_STATE_REGION }}"
# lastmile/exitcodes.py: every code a verb can end with.
EXIT_CODES = (0, 1, 2, 3, 4, 5, 130, 141, 143)
ACTIONLINT = REPO / ".tools" / "actionlint" / "bin" / "actionlint"
SHELLCHECK = REPO / ".tools" / "actionlint" / "venv" / "bin" / "shellcheck"


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict), name
    return document


def load_action(name: str) -> dict[str, Any]:
    document = yaml.safe_load((ACTIONS / name / "action.yml").read_text())
    assert isinstance(document, dict), name
    return document


def triggers(document: dict[str, Any]) -> dict[str, Any]:
    return document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` key as True


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def all_steps() -> list[tuple[str, dict[str, Any]]]:
    """Every step of every workflow job and every local action, with where it is."""
    found = [(name, step) for name in NAMES for job in load(name)["jobs"].values() for step in steps(job)]
    return found + [(f"actions/{name}", step) for name in ACTION_NAMES for step in load_action(name)["runs"]["steps"]]


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


def index_of(job: dict[str, Any], *, uses_prefix: str = "", run: str = "") -> int:
    """The one step that uses ``uses_prefix`` or whose script contains ``run``."""
    found = [i for i, s in enumerate(steps(job))
             if (uses_prefix and s.get("uses", "").startswith(uses_prefix)) or (run and run in s.get("run", ""))]
    assert len(found) == 1, (uses_prefix or run, found)
    return found[0]


def named(job: dict[str, Any], text: str) -> dict[str, Any]:
    [step] = [s for s in steps(job) if text in s.get("name", "")]
    return step


def pin(path: Path, name: str) -> str:
    """``NAME=value`` of a shell script or ``name==value`` of a requirements file."""
    match = re.search(rf"^{re.escape(name)}(?:==|=)(\S+)", path.read_text(), re.MULTILINE)
    assert match, (path, name)
    return match.group(1)


NAMES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
ACTION_NAMES = sorted(p.parent.name for p in ACTIONS.glob("*/action.yml"))


def test_the_workflows_exist():
    assert NAMES == ["deploy-stack.yml", "deploy.yml", "drift.yml", "plan-comment.yml", "preview.yml"]
    assert ACTION_NAMES == ["pulumi-engine"]


@pytest.mark.parametrize("name", NAMES)
def test_valid_yaml_with_minimal_default_permissions(name):
    document = load(name)
    assert document["permissions"] == {"contents": "read"}
    assert document["jobs"]
    assert "pull_request_target" not in triggers(document)
    code = "\n".join(line.split("#", 1)[0] for line in (WORKFLOWS / name).read_text().splitlines())
    assert "pull_request_target" not in code
    # Every `run:` is bash -eo pipefail: a failing command anywhere in a pipeline fails its step.
    assert document["defaults"] == {"run": {"shell": "bash"}}


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
        local = ref.startswith(("./.github/workflows/", "./.github/actions/"))
        assert local or PINNED.match(ref), f"{name}: {ref} is not pinned by a full SHA"
        if ref.startswith("./.github/actions/"):
            assert (REPO / ref / "action.yml").is_file(), ref


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_local_actions_pin_what_they_use_and_name_their_shell(name):
    for step in load_action(name)["runs"]["steps"]:
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{name}: {step['uses']} is not pinned by a full SHA"
        else:
            assert step["shell"] == "bash", name  # a composite step has no default shell


def test_no_untrusted_input_is_interpolated_into_scripts():
    for where, step in all_steps():
        script = step.get("run", "")
        assert "${{" not in script, f"{where}: pass values to scripts through env, not ${{{{ }}}} in run"
        assert not any(u in str(step) for u in UNTRUSTED), where


def test_one_team_backend_and_no_pulumi_cloud_token():
    texts = {p.relative_to(REPO): p.read_text() for p in (*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml"))}
    for path, text in texts.items():
        assert "PULUMI_ACCESS_TOKEN" not in text, f"{path}: the team backend is S3 + KMS, not Pulumi Cloud"
    [up] = load("deploy-stack.yml")["jobs"].values()
    preview = load("preview.yml")["jobs"]["preview"]
    assert up["env"]["PULUMI_BACKEND_URL"] == TEAM_BACKEND
    assert preview["env"]["PULUMI_BACKEND_URL"] == TEAM_BACKEND
    # Every stack needs the bucket and its KMS key, on-prem ones too: the credentials step has no condition.
    for job in (up, preview):
        assert "if" not in step_using(job, "aws-actions/configure-aws-credentials")
    # The stack file's secrets provider must be this environment's key, checked before anything runs.
    check = named(up, "this environment's KMS key")
    assert check["env"]["PULUMI_KMS_KEY"] == "${{ vars.PULUMI_KMS_KEY }}"
    assert index_of(up, run="read_stack_file") < index_of(up, run='lastmile up "$STACK"')


def test_pulumi_actions_only_install_the_pinned_cli():
    bootstrap = REPO / "tools" / "engine" / "bootstrap.sh"
    found = [step for _, step in all_steps() if step.get("uses", "").startswith("pulumi/actions@")]
    assert found, "the CLI is installed by pulumi/actions"
    for step in found:
        assert "command" not in step["with"], "CI deploys and previews with lastmile, never pulumi/actions"
        assert step["with"]["pulumi-version"] == pin(bootstrap, "PULUMI_VERSION")


def test_the_engine_action_installs_the_pinned_plugins_where_bootstrap_looks():
    bootstrap = REPO / "tools" / "engine" / "bootstrap.sh"
    requirements = REPO / "requirements.txt"
    [install] = [s for s in load_action("pulumi-engine")["runs"]["steps"] if "run" in s]
    assert install["env"]["PULUMI_VERSION"] == pin(bootstrap, "PULUMI_VERSION")
    assert install["env"]["K8S_VERSION"] == pin(bootstrap, "K8S_VERSION") == pin(requirements, "pulumi-kubernetes")
    assert install["env"]["AWS_VERSION"] == pin(requirements, "pulumi-aws")
    # bootstrap.sh's cache entry, and its fast path checked with the proxy off (never a build in CI).
    assert 'ENGINE_NAME="pulumi-v${PULUMI_VERSION}-k8s-v${K8S_VERSION}"' in bootstrap.read_text()
    assert 'bin="$engine/pulumi-v$PULUMI_VERSION-k8s-v$K8S_VERSION/bin"' in install["run"]
    assert "GOPROXY=off tools/engine/bootstrap.sh plugins" in install["run"]
    assert 'home="$GITHUB_WORKSPACE/.pulumi-home"' in install["run"]  # lastmile's EnginePaths default
    assert 'echo "LASTMILE_PULUMI_HOME=$home"' in install["run"]


def test_preview_runs_on_pull_requests_with_both_paths():
    document = load("preview.yml")
    assert set(triggers(document)) == {"pull_request"}
    jobs = document["jobs"]
    assert set(jobs) == {"plan", "preview", "plan-diff"}
    assert "outputs.engine" in jobs["preview"]["if"] and "outputs.offline" in jobs["plan-diff"]["if"]
    for job, plan in ((jobs["preview"], 'lastmile preview "$STACK" >'), (jobs["plan-diff"], "lastmile plan --stack")):
        assert index_of(job, run='lastmile policy "$STACK"') < index_of(job, run=plan)
        assert step_using(job, "actions/upload-artifact")["with"]["name"] == "plan-diff-${{ matrix.stack }}"
    assert index_of(jobs["preview"], run='.venv/bin/lastmile preview "$STACK" >') > \
        index_of(jobs["preview"], uses_prefix="./.github/actions/pulumi-engine")
    offline = " ".join(s.get("run", "") for s in steps(jobs["plan-diff"]))
    assert "lastmile plan --stack" in offline and 'lastmile preview "$STACK" --base' in offline
    mode = " ".join(str(s.get("env", "")) for s in steps(jobs["plan"]))
    assert "vars.PULUMI_STATE_BUCKET" in mode and "head.repo.full_name == github.repository" in mode
    assert jobs["preview"]["permissions"] == {"contents": "read", "id-token": "write"}
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
    [up] = load("deploy-stack.yml")["jobs"].values()
    assert up["environment"] == "${{ inputs.environment }}"  # prod's job waits for the production environment


def test_deploy_is_lastmile_up_between_policy_and_verification():
    [up] = load("deploy-stack.yml")["jobs"].values()
    order = [index_of(up, run='.venv/bin/lastmile policy "$STACK"'),
             index_of(up, uses_prefix="aws-actions/configure-aws-credentials@"),
             index_of(up, uses_prefix="./.github/actions/pulumi-engine"),
             index_of(up, run='.venv/bin/lastmile up "$STACK"'),
             index_of(up, run='lastmile verify --stack "$STACK"'),
             steps(up).index(named(up, "Record the verification as promotion evidence"))]
    assert order == sorted(order), "policy, credentials, engine, lastmile up, verify, record"
    assert {s.get("id") for s in steps(up)} >= {"up", "verify", "readiness"}  # the evidence steps read these
    for _, step in all_steps():
        assert not re.search(r"\bpulumi (up|preview|destroy)\b", step.get("run", "")), "one deploy path: lastmile"


# -- exit codes: the scripts themselves, run as GitHub runs them (bash -eo pipefail) with a stub lastmile ---------

def run_step(script: str, tmp_path: Path, code: int, *, prints: str = "stub output", **env: str) -> subprocess.CompletedProcess:
    """``script`` in ``tmp_path`` where ``.venv/bin/lastmile`` (and ``.venv/bin/python``) print ``prints`` and exit
    ``code``."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("lastmile", "python"):
        (bin_dir / tool).write_text(f"#!/bin/sh\necho '{prints}'\nexit {code}\n")
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "plan-diff").mkdir(exist_ok=True)
    (tmp_path / "plan-diff" / "aws-prod.md").write_text("<!-- lastmile-plan-diff:aws-prod -->\n")
    files = {name: tmp_path / name for name in ("output", "summary", "runner-temp")}
    files["runner-temp"].mkdir(exist_ok=True)
    environment = {"PATH": os.environ["PATH"], "STACK": "aws-prod", "PR_NUMBER": "7", "BASE_SHA": "0" * 40,
                   "HEAD_SHA": "1" * 40, "GITHUB_OUTPUT": str(files["output"]),
                   "GITHUB_STEP_SUMMARY": str(files["summary"]), "RUNNER_TEMP": str(files["runner-temp"]), **env}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=60)


PLAN_STEPS = {
    "engine preview": lambda: named(load("preview.yml")["jobs"]["preview"], "The engine's preview"),
    "offline plan diff": lambda: named(load("preview.yml")["jobs"]["plan-diff"], "Plan diff"),
    "render-mode preview --base": lambda: named(load("preview.yml")["jobs"]["plan-diff"], "Plan diff"),
}


@pytest.mark.parametrize("code", EXIT_CODES)
@pytest.mark.parametrize("kind", sorted(PLAN_STEPS))
def test_a_preview_or_plan_passes_only_with_no_changes_or_changes(kind, code, tmp_path):
    step = PLAN_STEPS[kind]()
    result = run_step(step["run"], tmp_path, code, RENDER="true" if kind.startswith("render") else "false")
    if code in (0, 1):
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "plan-diff" / "aws-prod.md").read_text().startswith("<!-- lastmile-plan-diff:aws-prod -->")
    else:
        assert result.returncode == code, (kind, code, result.stderr)  # 5 "crashed" is never taken for "changes"


@pytest.mark.parametrize("code", EXIT_CODES)
def test_the_deploy_passes_only_with_exit_0(code, tmp_path):
    [up] = load("deploy-stack.yml")["jobs"].values()
    for step in (named(up, "lastmile up"), named(up, "Verify"), named(up, "Policy")):
        result = run_step(step["run"], tmp_path, code)
        assert result.returncode == code, (step["name"], code)


@pytest.mark.parametrize("code", [c for c in EXIT_CODES if c])
def test_affected_stacks_fail_when_lastmile_fails(code, tmp_path):
    # `echo "stacks=$(lastmile ...)"` would pass with an empty list whatever lastmile exited.
    step = named(load("preview.yml")["jobs"]["plan"], "Affected stacks")
    assert run_step(step["run"], tmp_path, code).returncode == code


def test_no_script_takes_a_failing_lastmile_for_success():
    for where, step in all_steps():
        script = step.get("run", "")
        assert not re.search(r"-le\s+1|\|\|\s*(true|:)\s*$|\|\|\s*\[\s*\$\?", script, re.MULTILINE), where
        for accepted in re.findall(r"^\s*([0-9|]+)\)", script, re.MULTILINE):
            assert set(accepted.split("|")) <= {"0", "1"}, f"{where}: accepts exit {accepted}"


def test_team_stacks_get_the_engine_preview_and_local_stacks_the_offline_diff(tmp_path):
    script = named(load("preview.yml")["jobs"]["plan"], "Stacks per job")["run"]
    stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))
    local = {"onprem-local", "onprem-gitops"}
    for mode, engine in (("engine", [s for s in stacks if s not in local]), ("offline", [])):
        output = tmp_path / f"output-{mode}"
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=REPO,
                                env={**os.environ, "STACKS": json.dumps(stacks),
                                     "MODE": mode, "GITHUB_OUTPUT": str(output)},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
        assert json.loads(outputs["engine"]) == engine
        assert sorted(json.loads(outputs["offline"])) == sorted(set(stacks) - set(engine))


def test_drift_runs_on_a_schedule_per_environment_and_only_its_issues_job_writes():
    document = load("drift.yml")
    assert set(triggers(document)) == {"schedule", "workflow_dispatch"}
    jobs = document["jobs"]
    assert jobs["check"]["strategy"]["matrix"]["environment"] == ["dev", "staging", "prod"]
    assert jobs["check"]["env"]["PULUMI_BACKEND_URL"] == TEAM_BACKEND
    assert jobs["check"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["issues"]["permissions"] == {"issues": "write"}  # no checkout, no code of the repository runs there
    assert not any(s.get("uses", "").startswith("actions/checkout@") for s in steps(jobs["issues"]))
    script = named(jobs["check"], "lastmile drift")["run"]
    assert '.venv/bin/lastmile drift --all --environment "$ENVIRONMENT" --json' in script
    issues = named(jobs["issues"], "One issue per drifted stack")["run"]
    assert "gh issue create" in issues and "gh issue edit" in issues and "gh issue close" in issues
    assert "lastmile up" not in " ".join(s.get("run", "") for s in steps(jobs["check"])), "remediation is reviewed"


DRIFT_JSON = json.dumps({"exit_code": 1, "stacks": [{"stack": "aws-prod", "status": "drifted", "markdown": "|x|"}]})


@pytest.mark.parametrize("code", EXIT_CODES)
def test_a_drift_run_reports_every_outcome_and_passes_only_with_0_or_1(code, tmp_path):
    check = load("drift.yml")["jobs"]["check"]
    ran = run_step(named(check, "lastmile drift")["run"], tmp_path, code, prints=DRIFT_JSON, ENVIRONMENT="prod")
    assert ran.returncode == 0, ran.stderr  # the report is kept (and the issues updated) whatever the code
    assert (tmp_path / "output").read_text() == f"status={code}\n"
    gate = run_step(named(check, "could not check every stack fails")["run"], tmp_path, 0, STATUS=str(code),
                    ENVIRONMENT="prod")
    assert gate.returncode == (0 if code in (0, 1) else code), (code, gate.stderr)


# -- actionlint (and the shellcheck it runs over every script) --------------------------------------------------

def tool(path: Path) -> Path:
    if not path.is_file():
        unavailable("actionlint", f"{path.relative_to(REPO)} is missing; run tools/scanners/actionlint.sh")
    return path


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    command = [str(tool(ACTIONLINT)), "-no-color", "-shellcheck", str(tool(SHELLCHECK)), "-pyflakes=",
               *map(str, paths)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.scanner
def test_actionlint_passes_every_workflow():
    result = actionlint()
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.scanner
@pytest.mark.parametrize("name", ACTION_NAMES)
def test_shellcheck_passes_the_local_actions_scripts(name, tmp_path):
    # actionlint reads a local action's inputs but does not lint its scripts: shellcheck them here.
    for i, step in enumerate(s for s in load_action(name)["runs"]["steps"] if "run" in s):
        script = tmp_path / f"{name}-{i}.sh"
        script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + step["run"])
        result = subprocess.run([str(tool(SHELLCHECK)), str(script)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout


@pytest.mark.scanner
def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: pull_request\npermissions:\n  contents: read\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo \"${{ github.event.pull_request.title }}\"\n"
        "      - run: ls $UNQUOTED\n      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n")
    result = actionlint(broken)
    assert result.returncode == 1
    for finding in ("potentially untrusted", "SC2086", "no-such-input"):
        assert finding in result.stdout, (finding, result.stdout)
