"""Plan diff: changes, replacements by rule, the rollout in words, policy findings, determinism."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lastmile import cli
from lastmile import plandiff as pd
from lastmile.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def _samples():
    """tests/policy/policy_samples.py (a site-packages `tests` package shadows `tests.policy` here)."""
    name = "lastmile_sample_graphs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "policy" / "policy_samples.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def release_change():
    samples = _samples()
    return samples.aws_prod("1.0.0"), samples.aws_prod("1.1.0")


def _render(base, head, stack="aws-prod"):
    return pd.render(base, head, stack=stack, base_label="base", head_label="head")


def test_new_model_version_with_canary_rollout(release_change):
    base, head = release_change
    changes, unchanged = pd.diff_graphs(base, head)
    kinds = {c.name: c.kind for c in changes}
    assert kinds == {"prod-config": "replace", "prod-model": "replace", "prod-endpoint": "update"}
    assert unchanged == len(head["resources"]) - 3
    text = _render(base, head)
    assert "**0 to add, 1 to change, 2 to replace, 0 to remove**, 12 unchanged." in text
    assert ("- **prod-endpoint**: iris-classifier 1.0.0 → 1.1.0 rolls out as canary 10 % for 10 min, then the rest; "
            "bake 15 min; rollback on alarms `prod-5xx-a6964e5`, `prod-latency-1e1b965`; a second fleet of "
            "2 × ml.m5.large runs during the rollout (until the bake ends); SageMaker stops and rolls back after 60 min."
            ) in text
    assert "| `productionVariants[0].modelName` | `prod-model-0792f285` | `prod-model-325e91eb` |" in text
    assert "(every EndpointConfiguration attribute forces a new config (docs/design-notes.md §Provider facts))" in text
    assert "deleted last, after the endpoint update has finished" in text
    assert "- No findings." in text


def test_output_is_byte_identical_for_the_same_inputs(release_change):
    base, head = release_change
    again = _samples().aws_prod("1.0.0"), _samples().aws_prod("1.1.0")
    assert _render(base, head) == _render(*again)
    assert _render(base, head).encode() == _render(copy.deepcopy(base), copy.deepcopy(head)).encode()


def test_cli_on_saved_graphs_matches_render(release_change, tmp_path, capsys):
    base, head = release_change
    (tmp_path / "base").write_text(json.dumps(base))
    (tmp_path / "head").write_text(json.dumps(head))
    assert cli.main(["plan", "--base-graph", str(tmp_path / "base"), "--head-graph", str(tmp_path / "head"),
                    "--out", str(tmp_path / "out.md")]) == ExitCode.FINDINGS  # the release change is a change
    assert (tmp_path / "out.md").read_text() == _render(base, head)
    assert cli.main(["plan", "--base-graph", str(tmp_path / "base"), "--head-graph", str(tmp_path / "head")]) == ExitCode.FINDINGS
    assert capsys.readouterr().out == _render(base, head)


def test_secrets_stay_masked():
    head = _samples().hybrid_prod()
    text = _render(None, head, stack="hybrid-prod")
    assert "The stack does not exist at the base" in text
    assert "psk-from-secure-config" not in text and "[secret]" in json.dumps(head)
    changed = copy.deepcopy(head)
    vpn = next(r for r in changed["resources"] if r["name"] == "prod-vpn")
    vpn["inputs"]["tunnel1PresharedKey"] = "[secret]"  # a rotated key is masked on both sides: no diff, no leak
    assert pd.diff_graphs(head, changed)[0] == []


def test_onprem_slot_switch_in_words():
    samples = _samples()
    text = _render(samples.onprem_prod("blue"), samples.onprem_prod("green"), stack="onprem-prod")
    assert "- **serving**: traffic moves from blue (1.0.0) to green (1.1.0); blue stays up for rollback." in text
    assert '| `spec.selector."lastmile.io/slot"` | `blue` | `green` |' in text
    retired = samples.onprem_prod("green", {"green": "1.1.0"})
    assert "**blue is no longer deployed: no instant rollback**" in _render(samples.onprem_prod("blue"), retired)


@pytest.mark.parametrize(("type_", "path", "replaces"), [
    ("kubernetes:apps/v1:Deployment", "spec.selector.matchLabels.app", True),
    ("kubernetes:apps/v1:Deployment", "spec.template.spec.containers[0].image", False),
    ("kubernetes:core/v1:Service", "metadata.name", True),
    ("aws:sagemaker/model:Model", "primaryContainer.image", True),
    ("aws:sagemaker/model:Model", 'tags."lastmile:version"', False),
    ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "productionVariants[0].initialInstanceCount", True),
    ("aws:sagemaker/endpoint:Endpoint", "endpointConfigName", False),
    ("aws:s3/bucket:Bucket", "bucket", True),
    ("aws:kms/key:Key", "enableKeyRotation", False),
])
def test_replace_rules(type_, path, replaces):
    resource = {"type": type_, "options": {}}
    assert bool(pd._replace_reasons(resource, [(path, 1, 2)])) is replaces


def test_every_replace_rule_is_reachable():
    for rule in pd.REPLACE_RULES:
        type_ = rule.type_.replace("*", "core/v1:ConfigMap")
        path = "anything" if rule.path == "*" else rule.path + ".x"
        assert rule.matches(type_, path), rule


def test_program_declared_replace_on_changes_and_delete_first():
    base = {"stack": "s-dev", "resources": [{"urn": "u", "type": "x:y:Z", "name": "z", "inputs": {"a": 1, "b": 1},
                                            "options": {"replace_on_changes": ["a"], "delete_before_replace": True}}]}
    head = copy.deepcopy(base)
    head["resources"][0]["inputs"]["a"] = 2
    [change] = pd.diff_graphs(base, head)[0]
    assert change.kind == "replace" and change.delete_first
    assert "replaced (delete the old one, then create): `a` (the program sets replace_on_changes)" in _render(base, head, "s-dev")


def test_policy_findings_new_and_fixed(release_change):
    base, head = copy.deepcopy(release_change[0]), copy.deepcopy(release_change[1])
    next(r for r in head["resources"] if r["name"] == "prod-key")["inputs"]["enableKeyRotation"] = False
    text = _render(base, head)
    assert "- **new** `kms-key-rotation` on **prod-key**: automatic key rotation is off" in text
    assert "- fixed: `kms-key-rotation` on **prod-key**" in _render(head, base)


def test_aliases_make_a_rename_a_change_not_a_replacement(release_change):
    base = copy.deepcopy(release_change[0])
    head = copy.deepcopy(base)
    logs = next(r for r in head["resources"] if r["name"] == "prod-logs")
    old_urn = logs["urn"]
    logs["urn"], logs["name"] = old_urn.replace("::prod-logs", "::prod-serving-logs"), "prod-serving-logs"
    logs["options"]["aliases"] = [old_urn]
    [change] = pd.diff_graphs(base, head)[0]
    assert change.kind == "update" and change.renamed_from == old_urn


def test_removed_stack(release_change):
    text = _render(release_change[0], None)
    assert "everything is removed" in text and "**0 to add, 0 to change, 0 to replace, 15 to remove**" in text


def test_property_paths():
    flat = pd.flatten({"spec": {"selector": {"lastmile.io/slot": "blue"}}, "policy": '{"Statement": [{"Action": "s3:GetObject"}]}',
                       "list": [1, {"a": None}], "empty": {}})
    assert flat == {'spec.selector."lastmile.io/slot"': "blue", "policy(json).Statement[0].Action": "s3:GetObject",
                    "list[0]": 1, "list[1].a": None, "empty": {}}


def test_affected_stacks():
    stacks = ["aws-dev", "aws-prod", "onprem-prod"]
    assert pd.affected_stacks(["stacks/Pulumi.aws-prod.yaml", "README.md"], stacks) == ["aws-prod"]
    assert pd.affected_stacks(["components/aws/endpoint.py"], stacks) == stacks
    assert pd.affected_stacks(["policy/rules/kubernetes.py"], stacks) == stacks
    assert pd.affected_stacks(["docs/x.md", "stacks/Pulumi.gone.yaml"], stacks) == []


# ---------------------------------------------------------------------------------------------
# Synthesis at git revisions: a tiny repository whose "program" prints a graph, so the mechanism
# (git archive, a subprocess importing THAT revision, cleanup) is tested without the real topologies.

_FAKE_SYNTHESIS = '''
import json
VERSION = {version!r}
def list_stacks():
    return ["demo-prod"]
class _G:
    def __init__(self, stack):
        self.stack = stack
    def dumps(self):
        return json.dumps({{"stack": self.stack, "outputs": {{}}, "resources": [{{
            "urn": "urn:pulumi:demo-prod::lastmile::kubernetes:core/v1:ConfigMap::cfg", "type": "kubernetes:core/v1:ConfigMap",
            "name": "cfg", "parent": None, "options": {{}}, "inputs": {{"data": {{"version": VERSION}}}}}}]}})
def synthesize(stack):
    return _G(stack)
'''


def _commit(repo: Path, version: str) -> str:
    for package in ("infra", "lastmile"):
        (repo / package).mkdir(exist_ok=True)
        (repo / package / "__init__.py").write_text("")
    (repo / "lastmile" / "synthesis.py").write_text(_FAKE_SYNTHESIS.format(version=version))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", version], cwd=repo, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_graphs_at_revisions_use_each_revisions_program_and_clean_up(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    first, second = _commit(repo, "1.0.0"), _commit(repo, "1.1.0")
    (repo / "lastmile" / "synthesis.py").write_text(_FAKE_SYNTHESIS.format(version="2.0.0-dirty"))
    made = []
    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(pd.tempfile, "mkdtemp", lambda *a, **kw: made.append(real_mkdtemp(*a, **kw)) or made[-1])
    events = []
    start, finish = pd._start_synthesis, pd._finish_synthesis
    monkeypatch.setattr(pd, "_start_synthesis", lambda tree, stack: events.append("start") or start(tree, stack))
    monkeypatch.setattr(pd, "_finish_synthesis", lambda *a: events.append("finish") or finish(*a))

    graphs = pd.graphs_at((first, second, pd.WORKTREE), "demo-prod", repo)
    assert [g["resources"][0]["inputs"]["data"]["version"] for g in graphs] == ["1.0.0", "1.1.0", "2.0.0-dirty"]
    assert events == ["start"] * 3 + ["finish"] * 3, "the revisions are synthesized at once"
    assert made and not any(Path(m).exists() for m in made)
    assert pd.graphs_at((first,), "other-stack", repo) == [None]
    with pytest.raises(pd.PlanDiffError, match="unknown git revision .no-such-rev."):
        pd.graphs_at(("no-such-rev",), "demo-prod", repo)
