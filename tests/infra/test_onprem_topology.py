"""The onprem topology, synthesized from the committed stack files under the recording mocks.

Invariants on every on-prem stack (restricted pods, RBAC, default-deny, explicit provider), the
blue -> green flip as a graph diff, each acceptance failure as a ConfigError that registers nothing,
and (marked ``scanner``) every manifest through kubernetes-validate --strict and checkov.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lastmile.manifests import manifests
from infra.settings.loader import ConfigError
from infra.settings.sections import Alarms
from lastmile.synthesis import (
    REPO_ROOT,
    SECRET_MASK,
    Node,
    STACKS_DIR,
    Graph,
    RecordingMocks,
    RecordingMonitor,
    synthesize,
)
from policy.rules import evaluate, kubernetes

STACKS = ["onprem-local", "onprem-dev", "onprem-prod"]
POD_TEMPLATES = ("kubernetes:apps/v1:Deployment",)
KUBERNETES_VERSION = "1.33.0"  # matches onprem.pod_security_version's default pin (v1.33)
CHECKOV = REPO_ROOT / ".tools" / "checkov-venv" / "bin" / "checkov"
KUBERNETES_VALIDATE = REPO_ROOT / ".venv" / "bin" / "kubernetes-validate"


def kubernetes_findings(*nodes: Node) -> list[str]:
    """The Kubernetes policy rules (the CrossGuard pack's) on these resources alone, judged as dev."""
    graph = {"stack": "test-dev", "resources": [node.to_json() for node in nodes]}
    return [finding.render() for finding in evaluate(graph, kubernetes.RULES)]
# checkov checks skipped for the on-prem manifests, each with its reason. Empty: every check runs and passes.
CHECKOV_SKIPS: dict[str, str] = {}
MONITORING_API = "monitoring.coreos.com/v1"
# Kinds kept out of kubernetes-validate, each with its reason. The tool ships the schemas of Kubernetes'
# own kinds only: for any other kind it prints "Couldn't find schema" and exits 0, so such a manifest
# would "pass" strict validation unread. The Prometheus Operator's CRD kinds (lastmile:observability
# with prometheus_operator) are therefore asserted field by field in
# test_prometheus_operator_objects_are_well_formed, and tests/integration registers the kinds on a real
# API server. test_kubernetes_validate_cannot_judge_the_excluded_kinds keeps the reason true.
NO_SCHEMA_KINDS: dict[tuple[str, str], str] = {
    (MONITORING_API, "ServiceMonitor"): "Prometheus Operator CRD: kubernetes-validate has no schema for it",
    (MONITORING_API, "PrometheusRule"): "Prometheus Operator CRD: kubernetes-validate has no schema for it",
}
# Manifests per stack: the serving set (23); onprem-prod adds lastmile:observability's metrics Service,
# scrape NetworkPolicy, dashboard ConfigMap, ServiceMonitor and PrometheusRule.
MANIFEST_COUNTS = {"onprem-local": 25, "onprem-dev": 25, "onprem-prod": 30}
# Gateway API kinds: kubernetes-validate ships core schemas only; these are validated (strictly: no unknown field)
# against the openAPIV3Schema of the pinned CRDs (tools/kube/gateway-api.sh); the API server's CEL rules are
# judged in tests/integration/test_gateway_api.py.
GATEWAY_KINDS = {("gateway.networking.k8s.io/v1", "HTTPRoute"), ("gateway.networking.k8s.io/v1", "GRPCRoute")}


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]


def kubernetes_nodes(graph: Graph):
    return [n for n in graph.nodes.values() if n.type.startswith("kubernetes:")]


def prometheus_operator(stack: str) -> bool:
    """lastmile:observability is on and says the cluster has the Prometheus Operator's CRDs."""
    watch = stack_config(stack).get("lastmile:observability", {})
    return bool(watch.get("enabled")) and bool(watch.get("kubernetes", {}).get("prometheus_operator"))


# -- invariants on every stack ---------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_template_meets_the_restricted_profile(stack_graph, stack):
    graph = stack_graph(stack)
    templates = [n for t in POD_TEMPLATES for n in graph.of_type(t)]
    assert len(templates) == len(stack_config(stack)["lastmile:serving"]["slots"])
    for node in templates:
        assert kubernetes_findings(node) == [], node.name
    assert not graph.of_type("kubernetes:core/v1:Pod")  # no bare pods outside the checked templates


@pytest.mark.parametrize("stack", STACKS)
def test_namespace_enforces_restricted_and_denies_by_default(stack_graph, stack):
    graph = stack_graph(stack)
    namespace = graph.one("kubernetes:core/v1:Namespace").inputs["metadata"]
    assert namespace["name"] == stack_config(stack)["lastmile:onprem"]["namespace"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce-version"].startswith("v1.")
    policies = graph.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    deny = [p for p in policies if p.inputs["spec"]["podSelector"] == {}]
    assert len(deny) == 1 and sorted(deny[0].inputs["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny[0].inputs["spec"] and "egress" not in deny[0].inputs["spec"]
    for policy in policies:  # no allow rule opens everything
        for rule in policy.inputs["spec"].get("ingress", []) + policy.inputs["spec"].get("egress", []):
            peers = rule.get("from", rule.get("to"))
            assert peers, f"{policy.name}: a rule without peers allows every source/destination"
            assert all(p.get("ipBlock", {}).get("cidr") not in ("0.0.0.0/0", "::/0") for p in peers)
            assert rule.get("ports"), f"{policy.name}: a rule without ports allows every port"


@pytest.mark.parametrize("stack", STACKS)
def test_rbac_is_namespaced_least_privilege_and_model_servers_are_unbound(stack_graph, stack):
    graph = stack_graph(stack)
    for cluster_type in ("ClusterRole", "ClusterRoleBinding"):
        assert not graph.of_type(f"kubernetes:rbac.authorization.k8s.io/v1:{cluster_type}")
    for role in graph.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role"):
        assert kubernetes_findings(role) == [], role.name
    subjects = [s for b in graph.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
                for s in b.inputs["subjects"]]
    assert subjects and all(s["kind"] == "Group" and not s["name"].startswith("system:") for s in subjects)
    accounts = graph.of_type("kubernetes:core/v1:ServiceAccount")
    assert accounts and all(a.inputs["automountServiceAccountToken"] is False for a in accounts)


NAMESPACE_COMPONENT = "lastmile:k8s:ServingNamespace"


@pytest.mark.parametrize("stack", STACKS)
def test_explicit_providers_for_everything(stack_graph, stack):
    """One provider applies everything server-side; on a cluster the namespace and its policies come from a
    second one with the same cluster and options but server-side apply, so a create of an existing namespace
    fails instead of taking it over."""
    graph = stack_graph(stack)
    provider = graph.named("kubernetes")
    onprem = stack_config(stack)["lastmile:onprem"]
    render = onprem.get("render_directory")
    if render is not None:  # render mode talks to no cluster, and never to the ambient one
        assert provider.inputs["kubeconfig"] == ""
        assert provider.inputs.get("renderYamlToDirectory") == f"../{render}"  # plugins run in infra/
    elif onprem.get("kubeconfig_file"):  # a project file the provider reads: no credentials in state
        assert provider.inputs["kubeconfig"] == f"../{onprem['kubeconfig_file']}"
    else:
        assert provider.inputs["kubeconfig"] == SECRET_MASK  # never ambient, never plaintext
    assert provider.inputs["enableServerSideApply"] == "true"
    providers = {p.name for p in graph.of_type("pulumi:providers:kubernetes")}
    if render is None:
        creator = graph.named("kubernetes-create-only")
        assert providers == {"kubernetes", "kubernetes-create-only"}
        assert creator.inputs == provider.inputs | {"enableServerSideApply": "false"}
    else:
        assert providers == {"kubernetes"}
    for node in kubernetes_nodes(graph):
        if node.custom:
            namespaced = NAMESPACE_COMPONENT in (node.parent or "") and render is None
            assert node.provider == ("kubernetes-create-only" if namespaced else "kubernetes"), node.name
    assert ("render_directory" in graph.outputs) == (render is not None)


def test_the_environment_does_not_leak_into_the_provider(stack_graph, monkeypatch):
    """The SDK fills unset provider options from $KUBECONFIG and PULUMI_K8S_*: every one is pinned."""
    baseline = stack_graph("onprem-local").named("kubernetes")  # before the environment changes
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/config")
    for name in ("DELETE_UNREACHABLE", "ENABLE_PATCH_FORCE", "UPSERT_EXISTING_OBJECTS", "ENABLE_SERVER_SIDE_APPLY"):
        monkeypatch.setenv(f"PULUMI_K8S_{name}", "true" if name != "ENABLE_SERVER_SIDE_APPLY" else "false")
    assert synthesize("onprem-local").named("kubernetes") == baseline


@pytest.mark.parametrize("stack", STACKS)
def test_secrets_stay_masked(stack_graph, stack):
    graph = stack_graph(stack)
    for secret in graph.of_type("kubernetes:core/v1:Secret"):
        assert secret.inputs["stringData"] == SECRET_MASK and secret.inputs["immutable"] is True
    # The Gateway API entry: TLS ends at the named listener of the cluster's Gateway; the stack holds no certificate.
    assert not graph.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    gateway = stack_config(stack)["lastmile:onprem"]["gateway"]
    for kind in ("HTTPRoute", "GRPCRoute"):
        route = graph.one(f"kubernetes:gateway.networking.k8s.io/v1:{kind}").inputs["spec"]
        assert route["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"],
                                        "namespace": gateway["namespace"], "sectionName": gateway["section_name"]}]
        assert route["hostnames"] == [gateway["hostname"]]


def test_prod_survives_a_node_loss_and_spreads(stack_graph):
    graph = stack_graph("onprem-prod")
    for hpa in graph.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
        assert hpa.inputs["spec"]["minReplicas"] >= 2
    assert len(graph.of_type("kubernetes:policy/v1:PodDisruptionBudget")) == 2
    for deployment in graph.of_type("kubernetes:apps/v1:Deployment"):
        spread = deployment.inputs["spec"]["template"]["spec"]["topologySpreadConstraints"]
        hostname = next(c for c in spread if c["topologyKey"] == "kubernetes.io/hostname")
        assert hostname["whenUnsatisfiable"] == "DoNotSchedule"
        assert deployment.inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "1800"
    quota = graph.one("kubernetes:core/v1:ResourceQuota").inputs["spec"]["hard"]
    assert quota["pods"] == str(2 * (6 + 1))  # two slots at max_count 6 plus one surge pod each


def test_the_local_stacks_need_no_cloud_and_no_ambient_kubeconfig(stack_graph):
    """onprem-local deploys to the local cluster through its project kubeconfig file; onprem-gitops renders."""
    local = stack_config("onprem-local")
    assert "lastmile:kubeconfig" not in local and "render_directory" not in local["lastmile:onprem"]
    assert local["lastmile:onprem"]["kubeconfig_file"] == ".lastmile/cluster/kubeconfig"
    provider = stack_graph("onprem-local").named("kubernetes").inputs
    assert provider["kubeconfig"] == "../.lastmile/cluster/kubeconfig" and "renderYamlToDirectory" not in provider
    gitops = stack_config("onprem-gitops")
    assert "lastmile:kubeconfig" not in gitops
    assert gitops["lastmile:onprem"]["render_directory"] == "rendered/onprem-gitops"
    assert stack_graph("onprem-gitops").outputs["render_directory"] == "rendered/onprem-gitops"


# -- blue/green ------------------------------------------------------------------------------------

def _leaves(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, child in value.items():
            found |= _leaves(child, f"{path}.{key}")
        return found
    return {path: value}


def graph_diff(before: Graph, after: Graph) -> set[str]:
    """Every (resource, field) or output that differs, resources named by logical name."""
    changed: set[str] = set()
    for urn in before.nodes.keys() | after.nodes.keys():
        if urn not in before.nodes or urn not in after.nodes:
            changed.add(f"{urn.rsplit('::', 1)[-1]}: {'added' if urn in after.nodes else 'removed'}")
            continue
        old, new = _leaves(before.nodes[urn].to_json(), ""), _leaves(after.nodes[urn].to_json(), "")
        changed |= {f"{before.nodes[urn].name}: {k.lstrip('.')}" for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    changed |= {f"output {k}" for k in before.outputs.keys() | after.outputs.keys()
                if before.outputs.get(k) != after.outputs.get(k)}
    return changed


def serving_with(stack: str, **changes) -> dict[str, Any]:
    serving = copy.deepcopy(stack_config(stack)["lastmile:serving"])
    return serving | changes


def test_flipping_blue_to_green_moves_only_the_services(stack_graph):
    before = stack_graph("onprem-prod")
    assert before.outputs["active_slot"] == "blue"
    after = synthesize("onprem-prod", overrides={"lastmile:serving": serving_with("onprem-prod", active_slot="green")})
    assert graph_diff(before, after) == {
        "iris-classifier-router-stable: inputs.spec.selector.lastmile.dev/slot",
        "iris-classifier-router-stable: options.depends_on",
        "iris-classifier-router-preview: inputs.spec.selector.lastmile.dev/slot",
        "iris-classifier-router-preview: options.depends_on",
        "output active_slot",
        "output active_release",
        "output slot_weights",
        # The Gateway API entry: the weights follow active_slot (serving.weights omitted), 100/0 -> 0/100.
        "iris-classifier-routes-http: inputs.spec.rules",
        "iris-classifier-routes-grpc: inputs.spec.rules",
    }
    stable = after.named("iris-classifier-router-stable")
    assert stable.inputs["spec"]["selector"]["lastmile.dev/slot"] == "green"
    assert after.named("iris-classifier-green-deployment").urn in stable.depends_on  # moves only once green is ready
    assert after.named("iris-classifier-blue-deployment").urn not in stable.depends_on


def test_the_previous_slot_stays_until_config_retires_it(stack_graph):
    before = stack_graph("onprem-prod")
    serving = serving_with("onprem-prod")
    del serving["slots"]["green"]
    after = synthesize("onprem-prod", overrides={"lastmile:serving": serving})
    removed = {c for c in graph_diff(before, after) if c.endswith(": removed")}
    assert removed == {f"iris-classifier-green-{role}: removed" for role in
                       ("account", "runtime", "deployment", "budget", "autoscaler")} | {
        "iris-classifier-green: removed", "iris-classifier-router-preview: removed",
        "iris-classifier-routes-green: removed"}  # its backend Service leaves the routes with it
    blue = {n.urn: n for n in before.nodes.values() if n.name.startswith("iris-classifier-blue")}
    assert all(after.nodes[urn] == node for urn, node in blue.items())  # the serving slot is untouched


# -- acceptance failures: each a ConfigError naming the field, with nothing registered -------------

def _onprem(stack: str, **changes) -> dict[str, Any]:
    return copy.deepcopy(stack_config(stack)["lastmile:onprem"]) | changes


def _ingress_entry(**ingress: Any) -> dict[str, Any]:
    """onprem-prod on the Ingress path (entry ingress), which needs the stack's certificate."""
    onprem = {k: v for k, v in _onprem("onprem-prod").items() if k != "gateway"}
    return onprem | {"entry": "ingress", "ingress": {"host": "iris.serving.example.internal",
                                                     "allowed_source_namespaces": ["ingress-nginx"], **ingress}}


def _tagged_image() -> dict[str, Any]:
    serving = serving_with("onprem-prod")
    serving["slots"]["blue"]["image"] = "docker.io/seldonio/mlserver:1.7.1"
    return {"lastmile:serving": serving}


def _security(**values) -> dict[str, Any]:
    return {"lastmile:onprem": _onprem("onprem-prod", security_context=values)}


FAILURES = {
    "active slot without a release": (
        {"lastmile:serving": {"active_slot": "green", "slots": {"blue": serving_with("onprem-prod")["slots"]["blue"]}}},
        "serving.active_slot"),
    "one replica in prod": ({"lastmile:capacity": {"min_count": 1, "max_count": 6}}, "capacity.min_count"),
    "image by tag": (_tagged_image(), "serving.slots.blue.image"),
    "privilege escalation": (_security(allow_privilege_escalation=True), "onprem.security_context.allow_privilege_escalation"),
    "root user": (_security(run_as_user=0), "onprem.security_context.run_as_user"),
    "run as root allowed": (_security(run_as_non_root=False), "onprem.security_context.run_as_non_root"),
    "added capability": (_security(capabilities_add=["SYS_ADMIN"]), "onprem.security_context.capabilities_add"),
    "unconfined seccomp": (_security(seccomp_profile="unconfined"), "onprem.security_context.seccomp_profile"),
    "writable root filesystem": (_security(read_only_root_filesystem=False),
                                 "onprem.security_context.read_only_root_filesystem"),
    "ingress without a certificate": ({"lastmile:onprem": _ingress_entry(), "lastmile:tls_certificate": None},
                                      "tls_certificate"),
    "ingress without a key": ({"lastmile:onprem": _ingress_entry(), "lastmile:tls_private_key": None},
                              "tls_private_key"),
    "ingress with TLS switched off": ({"lastmile:onprem": _ingress_entry(tls=False)}, "onprem.ingress.tls"),
    "gateway reference missing": ({"lastmile:onprem": _onprem("onprem-prod", gateway=None)}, "onprem.gateway"),
    "wildcard hostname in prod": ({"lastmile:onprem": _onprem("onprem-prod", gateway={
        **_onprem("onprem-prod")["gateway"], "hostname": "*.serving.example.internal"})}, "onprem.gateway.hostname"),
    "weights summing to 0": ({"lastmile:serving": serving_with("onprem-prod") | {"weights": {"blue": 0, "green": 0}}},
                             "serving.weights"),
    "cluster without credentials": ({"lastmile:kubeconfig": None}, "kubeconfig"),
    "egress to everything": ({"lastmile:onprem": _onprem("onprem-prod", model_store={
        **_onprem("onprem-prod")["model_store"], "egress_cidrs": ["0.0.0.0/0"]})},
        "onprem.model_store.egress_cidrs.0"),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_acceptance_failures_fail_clearly_and_register_nothing(case):
    overrides, field = FAILURES[case]
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        synthesize("onprem-prod", overrides=overrides, monitor=monitor)
    assert field in {p.field for p in caught.value.problems}, caught.value
    assert f"lastmile:{field}" in str(caught.value) and "nothing was deployed" in str(caught.value)
    assert monitor.nodes == {}


def test_render_mode_needs_no_kubeconfig_but_keeps_tls(stack_graph):
    """Render mode still needs the certificate where the stack terminates TLS itself (entry ingress)."""
    monitor = RecordingMonitor(RecordingMocks())
    onprem = {k: v for k, v in _onprem("onprem-gitops").items() if k != "gateway"} | {
        "entry": "ingress", "ingress": {"host": "iris.lastmile.localhost"}}
    with pytest.raises(ConfigError) as caught:
        synthesize("onprem-gitops", overrides={"lastmile:onprem": onprem}, monitor=monitor)
    assert {p.field for p in caught.value.problems} == {"tls_certificate", "tls_private_key"}
    assert monitor.nodes == {}


# -- scanners --------------------------------------------------------------------------------------

def export_manifests(graph: Graph, directory: Path) -> list[Path]:
    """The synthesized Kubernetes objects (``lastmile.manifests``) as YAML files for the scanners.

    Masked secret payloads become a dummy map, so the scanners read them as Secrets, not as strings.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for manifest in manifests(graph):
        for key in ("data", "stringData"):
            if manifest.get(key) == SECRET_MASK:
                manifest[key] = {"masked": "masked"}
        path = directory / f"{manifest['kind']}-{manifest['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=True))
        paths.append(path)
    return paths


def _tool(path: Path, setup_hint: str) -> Path:
    if path.exists():
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is missing in CI: {setup_hint}")
    pytest.skip(f"{path} is missing; run {setup_hint}")


def kubernetes_validate(paths: list[Path]) -> subprocess.CompletedProcess:
    tool = _tool(KUBERNETES_VALIDATE, "tools/setup.sh (kubernetes-validate is in requirements-dev.txt)")
    return subprocess.run([str(tool), "--strict", "--kubernetes-version", KUBERNETES_VERSION, "--quiet",
                           *map(str, paths)], capture_output=True, text=True, timeout=300)


def checkov(directory: Path) -> tuple[dict[str, Any], subprocess.CompletedProcess]:
    tool = _tool(CHECKOV, "tools/scanners/setup.sh")
    command = [str(tool), "--framework", "kubernetes", "--skip-download", "-d", str(directory), "--compact",
               "--output", "json"]
    if CHECKOV_SKIPS:
        command += ["--skip-check", ",".join(sorted(CHECKOV_SKIPS))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    return report, result


@pytest.mark.scanner
@pytest.mark.parametrize("stack", STACKS)
def test_manifests_pass_strict_schema_validation(stack_graph, stack, tmp_path):
    paths = export_manifests(stack_graph(stack), tmp_path / stack)
    assert len(paths) == MANIFEST_COUNTS[stack]
    kinds = {path: _api_kind(path) for path in paths}
    excluded = sorted(kind for kind in kinds.values() if kind in NO_SCHEMA_KINDS)
    assert excluded == (sorted(NO_SCHEMA_KINDS) if prometheus_operator(stack) else [])  # asserted in the test below
    judged = [path for path in paths if kinds[path] not in NO_SCHEMA_KINDS and kinds[path] not in GATEWAY_KINDS]
    result = kubernetes_validate(judged)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Couldn't find schema" not in result.stdout + result.stderr  # every manifest given to it was read
    routes = [path for path in paths if kinds[path] in GATEWAY_KINDS]
    assert sorted(kinds[path][1] for path in routes) == ["GRPCRoute", "HTTPRoute"]
    for path in routes:
        assert gateway_api_errors(yaml.safe_load(path.read_text())) == [], path.name


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema with unknown fields refused, as the API server's strict field validation does."""
    schema = dict(schema)
    if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for key in ("properties",):
        if key in schema:
            schema[key] = {name: _strict(sub) for name, sub in schema[key].items()}
    if isinstance(schema.get("items"), dict):
        schema["items"] = _strict(schema["items"])
    return schema


def gateway_api_errors(manifest: dict[str, Any]) -> list[str]:
    """Errors of a Gateway API manifest against its pinned CRD's OpenAPI schema (the storage version's)."""
    import jsonschema

    from lastmile.gateway_api import bundle, crd_directory

    group, version = manifest["apiVersion"].split("/")
    for crd in bundle(crd_directory()):
        if crd.get("kind") == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == manifest["kind"]:
            served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
            schema = _strict(served["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}
            validator = jsonschema.Draft7Validator(schema)
            return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]
    raise AssertionError(f"no CRD for {manifest['apiVersion']} {manifest['kind']}")


@pytest.mark.scanner
def test_the_route_schema_check_refuses_what_the_api_server_would(stack_graph, tmp_path):
    """A misspelt field, a negative weight and a weight above Gateway API's bound are errors of gateway_api_errors."""
    [path] = [p for p in export_manifests(stack_graph("onprem-local"), tmp_path) if p.name.startswith("HTTPRoute")]
    route = yaml.safe_load(path.read_text())
    assert gateway_api_errors(route) == []
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    for change, words in (({"wieght": 1}, "wieght"), ({"weight": -1}, "-1"), ({"weight": 1_000_001}, "1000001")):
        broken = copy.deepcopy(route)
        broken["spec"]["rules"][0]["backendRefs"][0] = {**backend, **change}
        assert any(words in error for error in gateway_api_errors(broken)), change


def _api_kind(path: Path) -> tuple[str, str]:
    manifest = yaml.safe_load(path.read_text())
    return manifest["apiVersion"], manifest["kind"]


@pytest.mark.scanner
def test_kubernetes_validate_cannot_judge_the_excluded_kinds(tmp_path):
    """The reason of NO_SCHEMA_KINDS: a misspelt field in those kinds passes --strict with a warning only."""
    assert all(reason.strip() for reason in NO_SCHEMA_KINDS.values())
    paths = []
    for api, kind in sorted(NO_SCHEMA_KINDS):
        path = tmp_path / f"{kind}.yaml"
        path.write_text(yaml.safe_dump({"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "y"},
                                        "spec": {"selectr": {}, "gruops": []}}))
        paths.append(path)
    result = kubernetes_validate(paths)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for api, kind in NO_SCHEMA_KINDS:
        assert f"Couldn't find schema for kind {kind} with api version {api}" in output, output


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_operator_objects_are_well_formed(stack_graph, stack):
    """What kubernetes-validate cannot read (NO_SCHEMA_KINDS), field by field and against the objects
    they point at: the ServiceMonitor selects the metrics Service, whose port is the model servers'
    metrics port; the PrometheusRule has one group per slot with the lastmile:alarms thresholds."""
    found = manifests(stack_graph(stack))
    operator = [m for m in found if m["apiVersion"].startswith("monitoring.coreos.com/")]
    if not prometheus_operator(stack):
        assert operator == []
        return
    assert sorted((m["apiVersion"], m["kind"]) for m in operator) == sorted(NO_SCHEMA_KINDS)
    config = stack_config(stack)
    namespace = config["lastmile:onprem"]["namespace"]
    selector_labels = config["lastmile:observability"]["kubernetes"]["prometheus_selector_labels"]
    for manifest in operator:
        assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}, manifest["kind"]
        assert manifest["metadata"]["namespace"] == namespace
        # Prometheus selects monitors and rules by these labels.
        assert selector_labels and selector_labels.items() <= manifest["metadata"]["labels"].items()
    [monitor] = [m for m in operator if m["kind"] == "ServiceMonitor"]
    [rule] = [m for m in operator if m["kind"] == "PrometheusRule"]
    _assert_service_monitor(monitor["spec"], found, namespace)
    _assert_prometheus_rule(rule["spec"], stack, namespace)


def _assert_service_monitor(spec: dict[str, Any], found: list[dict[str, Any]], namespace: str) -> None:
    assert set(spec) == {"selector", "namespaceSelector", "endpoints"}
    assert spec["namespaceSelector"] == {"matchNames": [namespace]}
    assert set(spec["selector"]) == {"matchLabels"} and spec["selector"]["matchLabels"]
    selected = [m for m in found if m["kind"] == "Service" and m["metadata"]["namespace"] == namespace
                and spec["selector"]["matchLabels"].items() <= m["metadata"].get("labels", {}).items()]
    assert len(selected) == 1, f"the ServiceMonitor selects {len(selected)} Services, not the one metrics Service"
    [service] = selected
    ports = {port["name"]: port for port in service["spec"]["ports"]}
    templates = [m["spec"]["template"] for m in found if m["kind"] == "Deployment"]
    assert templates and all(service["spec"]["selector"].items() <= t["metadata"]["labels"].items() for t in templates)
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) == {"port", "path", "scheme", "interval", "relabelings"}
        assert endpoint["port"] in ports and (endpoint["path"], endpoint["scheme"]) == ("/metrics", "http")
        for template in templates:  # the port the Service forwards to is where MLServer serves its metrics
            for container in template["spec"]["containers"]:
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                assert env["MLSERVER_METRICS_PORT"] == str(ports[endpoint["port"]]["targetPort"])
        assert re.fullmatch(r"\d+s", endpoint["interval"]) and 5 <= int(endpoint["interval"][:-1]) <= 30
        # The labels the rules and the dashboard select on.
        assert sorted(r["targetLabel"] for r in endpoint["relabelings"]) == ["model", "slot"]
        for relabeling in endpoint["relabelings"]:
            assert set(relabeling) == {"sourceLabels", "targetLabel", "action"} and relabeling["action"] == "replace"
            for source in relabeling["sourceLabels"]:  # a label every model-server pod carries
                prefix = "__meta_kubernetes_pod_label_"
                assert source.startswith(prefix), source
                for template in templates:
                    sanitized = {re.sub(r"[^a-zA-Z0-9_]", "_", label) for label in template["metadata"]["labels"]}
                    assert source[len(prefix):] in sanitized, source


def _assert_prometheus_rule(spec: dict[str, Any], stack: str, namespace: str) -> None:
    config = stack_config(stack)
    serving = config["lastmile:serving"]
    model = serving["slots"][serving["active_slot"]]["model"]
    alarms = Alarms(**config.get("lastmile:alarms", {}))  # the SageMaker rollback alarms' definition
    emails = config["lastmile:observability"]["notifications"]["emails"]
    assert set(spec) == {"groups"}
    groups = {group["name"]: group for group in spec["groups"]}
    assert len(groups) == len(spec["groups"])
    assert sorted(groups) == sorted(f"lastmile-{model}-{slot}" for slot in serving["slots"])  # the idle slot too
    thresholds = {"LastmileModelServer5xx": alarms.error_5xx_count,
                  "LastmileModelServerLatencyP99": alarms.latency_p99_ms}
    for slot in serving["slots"]:
        group = groups[f"lastmile-{model}-{slot}"]
        assert set(group) == {"name", "rules"}
        assert sorted(rule["alert"] for rule in group["rules"]) == sorted(thresholds)
        for rule in group["rules"]:
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
            expr = rule["expr"]
            assert isinstance(expr, str) and expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            for matcher in (f'namespace="{namespace}"', f'model="{model}"', f'slot="{slot}"'):
                assert matcher in expr, (rule["alert"], expr)
            assert expr.endswith(f" >= {thresholds[rule['alert']]}"), expr
            assert rule["for"] == f"{alarms.evaluation_minutes}m"
            assert rule["labels"] == {"severity": "critical", "lastmile_route": f"lastmile-{stack}",
                                      "lastmile_model": model, "lastmile_slot": slot}
            assert rule["annotations"]["notify_emails"] == ",".join(emails) and rule["annotations"]["summary"]


@pytest.mark.scanner
def test_strict_schema_validation_catches_an_unknown_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                                    "dta": {"a": "b"}}))
    assert kubernetes_validate([path]).returncode != 0


@pytest.mark.scanner
def test_manifests_pass_checkov(stack_graph, tmp_path):
    for stack in STACKS:
        export_manifests(stack_graph(stack), tmp_path / stack)
    report, result = checkov(tmp_path)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, failed
    assert summary["passed"] > 0 and summary["resource_count"] >= sum(MANIFEST_COUNTS.values())  # all read
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped <= set(CHECKOV_SKIPS), f"skipped without a written reason: {skipped - set(CHECKOV_SKIPS)}"
    assert all(reason.strip() for reason in CHECKOV_SKIPS.values())


@pytest.mark.scanner
def test_checkov_catches_an_unsafe_pod(tmp_path):
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "serving"},
        "spec": {"containers": [{"name": "c", "image": "nginx:latest", "securityContext": {"privileged": True}}]},
    }))
    report, _ = checkov(tmp_path)
    assert {"CKV_K8S_16", "CKV_K8S_43"} <= {c["check_id"] for c in report["results"]["failed_checks"]}


def test_every_problem_is_reported_at_once():
    """Pure validation (no Pulumi): three unrelated mistakes, one ConfigError listing all three."""
    from infra.settings.loader import parse_settings

    config = stack_config("onprem-prod")
    raw = {key.split(":", 1)[1]: value for key, value in config.items() if "secure" not in str(value)}
    raw["serving"]["slots"]["green"]["image"] = "docker.io/seldonio/mlserver:latest"
    raw["onprem"]["security_context"] = {"privileged": True}
    raw["onprem"]["model_store"]["egress_cidrs"] = ["::/0"]
    # onprem-prod is a team stack: its secrets are set with the team's KMS key, outside this file.
    secrets = {key: "set" for key in ("kubeconfig", "tls_certificate", "tls_private_key", "model_store_credentials")}
    with pytest.raises(ConfigError) as caught:
        parse_settings("onprem-prod", raw, secrets)
    assert {p.field for p in caught.value.problems} == {
        "serving.slots.green.image", "onprem.security_context.privileged", "onprem.model_store.egress_cidrs.0"}


@pytest.mark.parametrize(("value", "accepted"), [(59, False), (60, True), (28800, True), (28801, False)])
def test_ready_timeout_takes_the_components_range(value, accepted):
    """The stack setting and the ModelServer component check one range (components/k8s/common.py)."""
    from infra.settings.loader import parse_settings

    raw = {key.split(":", 1)[1]: value for key, value in stack_config("onprem-local").items()}
    raw["onprem"]["ready_timeout_seconds"] = value
    secrets = {key: "set" for key in ("tls_certificate", "tls_private_key", "model_store_credentials")}
    if accepted:
        assert parse_settings("onprem-local", raw, secrets).onprem.ready_timeout_seconds == value
    else:
        with pytest.raises(ConfigError) as refused:
            parse_settings("onprem-local", raw, secrets)
        assert [(p.field, p.value) for p in refused.value.problems] == [("onprem.ready_timeout_seconds", value)]
