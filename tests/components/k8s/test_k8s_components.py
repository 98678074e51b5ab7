"""Each Kubernetes component under the recording mocks: its invariants, not just that it ran."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.k8s.common import ContainerResources, PodSecurity, SeccompProfileType
from components.k8s.identity import DeployerAccess, DeployerAccessArgs
from components.k8s.ingress import IngressController, TlsIngress, TlsIngressArgs
from components.k8s.model_server import SERVER_POD_LABELS, ModelServer, ModelServerArgs, ReplicaPolicy
from components.k8s.model_store import ModelStoreAccess, ModelStoreAccessArgs
from components.k8s.namespace import ResourceBudget, ServingNamespace, ServingNamespaceArgs
from components.k8s.router import SlotRouter, SlotRouterArgs
from components.problems import ArgsError
from infra.settings.common import Slot
from args_errors import reported_fields
from lastmile.synthesis import SECRET_MASK, Node
from policy.rules import evaluate, kubernetes

IMAGE = "registry.example/mlserver@sha256:" + "b" * 64
SHA = "c" * 64
RESOURCES = ContainerResources(cpu_millicores=500, memory_mib=512)


def kubernetes_findings(*nodes: Node) -> list[str]:
    """The Kubernetes policy rules (the CrossGuard pack's) on these resources alone, judged as dev."""
    graph = {"stack": "test-dev", "resources": [node.to_json() for node in nodes]}
    return [finding.render() for finding in evaluate(graph, kubernetes.RULES)]


def namespace_args(**overrides) -> ServingNamespaceArgs:
    values = dict(
        namespace_name="serving", owner="onprem-dev", pod_security_version="v1.33",
        quota=ResourceBudget(cpu_millicores=4000, memory_mib=4096, pods=8), container_defaults=RESOURCES,
        server_pod_labels=SERVER_POD_LABELS, server_port=8080, ingress_source_namespaces=("ingress-nginx",),
        model_store_cidrs=("10.20.0.0/24",), model_store_port=9000,
    )
    return ServingNamespaceArgs(**(values | overrides))


def store(ca: str | None = None) -> ModelStoreAccess:
    return ModelStoreAccess("store", ModelStoreAccessArgs(
        namespace="serving", endpoint_url="https://minio.example:9000", bucket="models", region="us-east-1",
        credentials_json=pulumi.Output.secret('{"access_key_id": "a", "secret_access_key": "b"}'), ca_bundle_pem=ca))


def server(slot: Slot, model_store: ModelStoreAccess, *, spread_required: bool = True, name: str = "iris",
           **overrides) -> ModelServer:
    values = dict(
        namespace="serving", slot=slot, model_name="iris-classifier", model_version="1.0.0", artifact_sha256=SHA,
        image=IMAGE, core_module="iris_model", model_store=model_store,
        replicas=ReplicaPolicy(min_count=2, max_count=4, target_cpu_percent=70, spread_required=spread_required),
        resources=RESOURCES, artifact_volume_mib=256,
    )
    return ModelServer(f"{name}-{slot.value}", ModelServerArgs(**(values | overrides)))


def only(graph, type_: str, name: str):
    return next(n for n in graph.of_type(type_) if n.name == name)


# -- ServingNamespace ------------------------------------------------------------------------------

def test_namespace_is_restricted_quota_bound_and_default_deny(mock_run):
    graph = mock_run(lambda: {"ns": ServingNamespace("serving", namespace_args()).namespace_name})
    component = graph.one("lastmile:k8s:ServingNamespace")
    labels = graph.one("kubernetes:core/v1:Namespace").inputs["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.33"
    hard = graph.one("kubernetes:core/v1:ResourceQuota").inputs["spec"]["hard"]
    assert hard["services.loadbalancers"] == "0" and hard["services.nodeports"] == "0" and hard["pods"] == "8"
    limits = graph.one("kubernetes:core/v1:LimitRange").inputs["spec"]["limits"][0]
    assert limits["default"] == limits["defaultRequest"] == {"cpu": "500m", "memory": "512Mi"}
    deny = only(graph, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "serving-default-deny").inputs["spec"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    for node in graph.children(component):
        assert node.name.startswith("serving-") and node.provider is None and not node.protect
    assert graph.outputs["ns"] == "serving"


def test_namespace_allows_are_narrow(mock_run):
    graph = mock_run(lambda: ServingNamespace("serving", namespace_args()) and None)
    allow_in = only(graph, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "serving-allow-ingress").inputs["spec"]
    assert allow_in["podSelector"] == {"matchLabels": SERVER_POD_LABELS}
    (rule,) = allow_in["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    allow_out = only(graph, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "serving-allow-egress").inputs["spec"]
    dns, store_rule = allow_out["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
    assert store_rule == {"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [{"port": 9000, "protocol": "TCP"}]}


def test_extra_egress_is_https_only_and_absent_by_default(mock_run):
    graph = mock_run(lambda: ServingNamespace("serving", namespace_args(extra_egress_cidrs=("172.31.0.0/16",))) and None)
    egress = only(graph, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "serving-allow-egress").inputs["spec"]["egress"]
    assert egress[-1] == {"to": [{"ipBlock": {"cidr": "172.31.0.0/16"}}], "ports": [{"port": 443, "protocol": "TCP"}]}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"namespace_name": "Bad_Name"}, "DNS label"),
    ({"pod_security_version": "latest"}, "pinned"),
    ({"server_pod_labels": {}}, "empty selector"),
    ({"ingress_source_namespaces": ()}, "nothing could reach"),
    ({"model_store_cidrs": ("0.0.0.0/0",)}, "/0"),
    ({"ingress_source_cidrs": ("10.0.0.1/8",)}, "host bits"),
])
def test_namespace_args_refuse_unsafe_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        namespace_args(**overrides)


# -- DeployerAccess --------------------------------------------------------------------------------

def test_deployer_role_is_least_privilege_and_bound_to_a_group(mock_run):
    graph = mock_run(lambda: {"role": DeployerAccess("deployer", DeployerAccessArgs(
        namespace="serving", group_name="lastmile-deployers")).role_name})
    role = graph.one("kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert role.inputs["metadata"]["namespace"] == "serving"
    assert kubernetes_findings(role) == []
    binding = graph.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").inputs
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "lastmile-deployers"}]
    # no verb on Secrets at all: the answer to a patch or update carries the data (a write is a read)
    assert not [r for r in role.inputs["rules"] if "secrets" in r["resources"]]
    assert not graph.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")


@pytest.mark.parametrize("group", ["system:authenticated", "system:masters", ""])
def test_deployer_refuses_system_groups(group):
    with pytest.raises(ValueError, match="group_name"):
        DeployerAccessArgs(namespace="serving", group_name=group)


# -- ModelServer -----------------------------------------------------------------------------------

def test_model_server_pods_meet_restricted_and_lastmile_bar(mock_run):
    graph = mock_run(lambda: server(Slot.BLUE, store()) and None)
    deployment = graph.one("kubernetes:apps/v1:Deployment")
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert kubernetes_findings(deployment) == []
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsUser"] >= 10000
    account = graph.one("kubernetes:core/v1:ServiceAccount")
    assert account.inputs["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"].startswith(account.name + "-")
    assert not graph.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")


def test_model_server_fetches_verifies_and_serves_read_only(mock_run):
    graph = mock_run(lambda: server(Slot.GREEN, store(ca="-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")) and None)
    pod = graph.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["LASTMILE_ARTIFACT_SHA256"] == SHA
    assert env["LASTMILE_STORE_ENDPOINT"] == "https://minio.example:9000"
    assert env["LASTMILE_ARTIFACT_KEY"] == "iris-classifier/1.0.0/model.tar.gz"
    assert env["LASTMILE_CA_BUNDLE"] == "/etc/lastmile/store-ca/ca.crt"
    assert init["image"] == main["image"] == IMAGE
    # the store's key reaches the init container only, as a file
    assert any(m["name"] == "store-credentials" for m in init["volumeMounts"])
    assert not any(m["name"].startswith("store-") for m in main["volumeMounts"])
    assert not any("valueFrom" in e for c in (init, main) for e in c["env"])
    repository = next(m for m in main["volumeMounts"] if m["name"] == "model-repository")
    assert repository["readOnly"] is True
    assert main["readinessProbe"]["httpGet"]["path"] == "/v2/models/iris-classifier/ready"
    runtime = graph.named("iris-green-runtime").inputs
    assert runtime["immutable"] is True
    settings = json.loads(runtime["data"]["model-settings.json"])
    assert settings["implementation"] == "lastmile_runtime.LastmileRuntime"
    assert settings["parameters"]["version"] == "1.0.0"
    assert settings["parameters"]["extra"] == {"core_module": "iris_model"}
    # relative to model-settings.json, where the init container unpacks the artifact (see tests/serving)
    assert settings["parameters"]["uri"] == "./artifact"
    assert "def signed_headers" in runtime["data"]["fetch_artifact.py"]


def test_model_server_scaling_is_owned_by_the_hpa_and_disruption_budgeted(mock_run):
    graph = mock_run(lambda: server(Slot.BLUE, store()) and None)
    deployment = graph.one("kubernetes:apps/v1:Deployment").inputs
    assert "replicas" not in deployment["spec"]  # pulumi up never resets an autoscaled count
    assert deployment["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "600"
    hpa = graph.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 4)
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    pdb = graph.one("kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"]["lastmile.dev/slot"] == "blue"
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname" and spread[0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_best_effort_spread_outside_prod(mock_run):
    graph = mock_run(lambda: server(Slot.BLUE, store(), spread_required=False) and None)
    spread = graph.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["whenUnsatisfiable"] for c in spread} == {"ScheduleAnyway"}


def test_model_server_children_are_parented_and_named(mock_run):
    graph = mock_run(lambda: server(Slot.BLUE, store()) and None)
    component = graph.one("lastmile:k8s:ModelServer")
    children = graph.children(component)
    assert {c.name for c in children} == {f"iris-blue-{role}" for role in
                                          ("account", "runtime", "deployment", "budget", "autoscaler")}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"image": "seldonio/mlserver:1.7.1"}, "digest"),
    ({"artifact_sha256": "xyz"}, "artifact_sha256"),
    ({"model_name": "Iris_Classifier"}, "DNS label"),
    ({"core_module": "iris-model"}, "core_module"),
    ({"rollout_timeout_seconds": 59}, "rollout_timeout_seconds = 59: must be 60-28800"),
    ({"rollout_timeout_seconds": 28801}, "rollout_timeout_seconds = 28801: must be 60-28800"),
])
def test_model_server_args_refuse(overrides, message):
    with pytest.raises(ValueError, match=message):
        server(Slot.BLUE, None, **overrides)


def test_pod_security_refuses_root_and_half_set_localhost_seccomp():
    with pytest.raises(ValueError, match="non-root"):
        PodSecurity(run_as_user_id=0)
    with pytest.raises(ValueError, match="seccomp_localhost_profile"):
        PodSecurity(seccomp_profile=SeccompProfileType.LOCALHOST)


# -- SlotRouter ------------------------------------------------------------------------------------

def test_router_selects_the_active_slot_after_its_deployment(mock_run):
    def program():
        model_store = store()
        blue = server(Slot.BLUE, model_store)
        green = server(Slot.GREEN, model_store, rollout_timeout_seconds=90)
        router = SlotRouter("iris-router", SlotRouterArgs(namespace="serving", active=green, idle=blue))
        return {"stable": router.stable_service_name, "preview": router.preview_service_name}

    graph = mock_run(program)
    stable, preview = graph.named("iris-router-stable"), graph.named("iris-router-preview")
    assert stable.inputs["spec"]["selector"]["lastmile.dev/slot"] == "green"
    assert preview.inputs["spec"]["selector"]["lastmile.dev/slot"] == "blue"
    assert graph.named("iris-green-deployment").urn in stable.depends_on
    assert graph.named("iris-blue-deployment").urn in preview.depends_on
    assert stable.inputs["spec"]["type"] == "ClusterIP"
    # each Service waits for ready endpoints no longer than the Deployment it follows (not the provider's 10 min)
    assert stable.inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "90"
    assert preview.inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "600"


def test_router_without_an_idle_slot_has_no_preview(mock_run):
    graph = mock_run(lambda: SlotRouter("r", SlotRouterArgs(namespace="serving", active=server(Slot.BLUE, store()))) and None)
    assert [s.name for s in graph.of_type("kubernetes:core/v1:Service")] == ["r-stable"]


def test_router_refuses_two_servers_on_one_slot(mock_run):
    def program():
        model_store = store()
        a = server(Slot.BLUE, model_store)
        b = ModelServer("other-blue", ModelServerArgs(**{**vars(a_args(model_store)), "slot": Slot.BLUE}))
        SlotRouterArgs(namespace="serving", active=a, idle=b)

    def a_args(model_store):
        return ModelServerArgs(namespace="serving", slot=Slot.BLUE, model_name="iris-classifier", model_version="1.0.0",
                               artifact_sha256=SHA, image=IMAGE, core_module="iris_model", model_store=model_store,
                               replicas=ReplicaPolicy(min_count=1, max_count=1, target_cpu_percent=70,
                                                      spread_required=False),
                               resources=RESOURCES, artifact_volume_mib=64)

    with pytest.raises(ValueError, match="other slot"):
        mock_run(program)


# -- TlsIngress ------------------------------------------------------------------------------------

def ingress(controller=IngressController.NGINX) -> TlsIngress:
    return TlsIngress("iris-ingress", TlsIngressArgs(
        namespace="serving", host="iris.example.internal", class_name="nginx", controller=controller,
        service_name="stable", service_port=8080,
        tls_certificate_pem=pulumi.Output.secret("CERT"), tls_private_key_pem=pulumi.Output.secret("KEY")))


def test_ingress_is_tls_only_with_its_certificate_secret(mock_run):
    graph = mock_run(lambda: {"url": ingress().url})
    secret = graph.one("kubernetes:core/v1:Secret").inputs
    assert secret["type"] == "kubernetes.io/tls" and secret["immutable"] is True
    assert secret["stringData"] == SECRET_MASK and "KEY" not in graph.dumps()
    spec = graph.one("kubernetes:networking.k8s.io/v1:Ingress").inputs["spec"]
    assert spec["tls"][0]["hosts"] == ["iris.example.internal"]
    assert spec["tls"][0]["secretName"].startswith("iris-ingress-tls-")
    assert [r["host"] for r in spec["rules"]] == ["iris.example.internal"]
    annotations = graph.one("kubernetes:networking.k8s.io/v1:Ingress").inputs["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert graph.outputs["url"] == "https://iris.example.internal/v2"


def test_traefik_ingress_binds_websecure_only(mock_run):
    graph = mock_run(lambda: ingress(IngressController.TRAEFIK) and None)
    annotations = graph.one("kubernetes:networking.k8s.io/v1:Ingress").inputs["metadata"]["annotations"]
    assert annotations == {"traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
                           "traefik.ingress.kubernetes.io/router.tls": "true"}


def test_an_ingress_without_tls_cannot_be_constructed():
    with pytest.raises(TypeError, match="tls_certificate_pem"):
        TlsIngressArgs(namespace="serving", host="iris.example.internal", class_name="nginx",
                       controller=IngressController.NGINX, service_name="stable", service_port=8080)
    with pytest.raises(ValueError, match="TLS is required"):
        TlsIngressArgs(namespace="serving", host="iris.example.internal", class_name="nginx",
                       controller=IngressController.NGINX, service_name="stable", service_port=8080,
                       tls_certificate_pem=None, tls_private_key_pem=None)


# -- every problem at once -------------------------------------------------------------------------

def test_every_invalid_namespace_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        namespace_args(namespace_name="Bad_Name", pod_security_version="latest", server_pod_labels={},
                       model_store_cidrs=("0.0.0.0/0",), server_port=0)
    assert reported_fields(caught.value) == ["namespace_name", "pod_security_version", "server_pod_labels",
                                             "model_store_cidrs.0", "server_port"]


def test_every_invalid_quota_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        ResourceBudget(cpu_millicores=0, memory_mib=0, pods=0)
    assert reported_fields(caught.value) == ["cpu_millicores", "memory_mib", "pods"]


def test_every_invalid_server_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        server(Slot.BLUE, None, model_name="Iris_Classifier", image="seldonio/mlserver:1.7.1", artifact_sha256="xyz",
               core_module="iris-model", artifact_volume_mib=8, rollout_timeout_seconds=59)
    assert reported_fields(caught.value) == ["model_name", "image", "artifact_sha256", "core_module",
                                             "artifact_volume_mib", "rollout_timeout_seconds"]


def test_every_invalid_replica_and_resource_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        ReplicaPolicy(min_count=0, max_count=2, target_cpu_percent=0, spread_required=False)
    assert reported_fields(caught.value) == ["min_count", "target_cpu_percent"]
    with pytest.raises(ArgsError) as caught:
        ContainerResources(cpu_millicores=5, memory_mib=8)
    assert reported_fields(caught.value) == ["cpu_millicores", "memory_mib"]


def test_every_pod_security_problem_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        PodSecurity(run_as_user_id=0, run_as_group_id=-1, fs_group_id=-1, seccomp_profile=SeccompProfileType.LOCALHOST)
    assert reported_fields(caught.value) == ["run_as_user_id", "run_as_group_id", "fs_group_id",
                                             "seccomp_localhost_profile"]


def test_every_invalid_store_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        ModelStoreAccessArgs(namespace="serving", endpoint_url="http://minio.example", bucket="models",
                             region="us-east-1", credentials_json="{}", key_prefix="models", ca_bundle_pem="nope")
    assert reported_fields(caught.value) == ["endpoint_url", "key_prefix", "ca_bundle_pem"]


def test_every_invalid_ingress_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        TlsIngressArgs(namespace="serving", host="not a host", class_name="Nginx", controller=IngressController.NGINX,
                       service_name="stable", service_port=8080, tls_certificate_pem=None, tls_private_key_pem=None)
    assert reported_fields(caught.value) == ["class_name", "host", "tls_certificate_pem", "tls_private_key_pem"]


def test_every_router_problem_is_reported_at_once(mock_run):
    def program():
        model_store = store()
        SlotRouterArgs(namespace="serving", active=server(Slot.BLUE, model_store),
                       idle=server(Slot.BLUE, model_store, name="wine", model_name="wine-classifier"))

    with pytest.raises(ArgsError) as caught:
        mock_run(program)
    assert reported_fields(caught.value) == ["idle", "idle"]
    assert "other slot" in str(caught.value) and "same model" in str(caught.value)
