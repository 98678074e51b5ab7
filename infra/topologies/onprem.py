"""The onprem topology: model serving on the company's own Kubernetes cluster.

What gets built (every piece a component in components/k8s):
  provider        explicit Kubernetes provider: kubeconfig from the secret lastmile:kubeconfig, or from
                  the project file onprem.kubeconfig_file (the local cluster's), or render mode
                  (onprem.render_directory): YAML written to that directory, no cluster
  namespace       ServingNamespace: restricted Pod Security, quota, limits, default-deny + narrow allows
  deployer        DeployerAccess: namespaced Role + RoleBinding for CI's group
  model-store     ModelStoreAccess: the store's read-only key (Secret) and CA bundle (ConfigMap)
  <model>-<slot>  ModelServer per slot that has a release in serving.slots (a slot is present iff it has one)
  <model>-router  SlotRouter: stable Service on serving.active_slot, preview Service on the other slot (for
                  in-cluster callers: they follow active_slot, never the weights)
  <model>-routes  GatewayRoutes (onprem.entry gateway, the default): one backend Service per slot, an HTTPRoute
                  and a GRPCRoute on the cluster's Gateway whose backendRefs carry serving.weights
  <model>-ingress TlsIngress (onprem.entry ingress): HTTPS-only Ingress to the stable Service, no weights

Blue/green is data: the slots are a loop over Slot; serving.active_slot moves the stable Service, and the
routes' weights (serving.weights; omitted: all on active_slot) move the traffic that comes through the Gateway.
On a cluster, the switch check (infra/switch_check.py) runs first: no component of the serving half is
registered before it has passed, on every path that runs this program.
The hybrid topology reuses ``build_onprem(settings, provider, extra_egress_cidrs=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.aws.alarms import AlarmThresholds
from components.k8s.common import ContainerResources, PodSecurity, SeccompProfileType
from components.k8s.identity import DeployerAccess, DeployerAccessArgs
from components.k8s.ingress import TlsIngress, TlsIngressArgs
from components.k8s.model_server import SERVER_POD_LABELS, ModelServer, ModelServerArgs, ReplicaPolicy
from components.k8s.model_store import ModelStoreAccess, ModelStoreAccessArgs
from components.k8s.observability import AlertRouting, ServingObservability, ServingObservabilityArgs
from components.k8s.namespace import ResourceBudget, ServingNamespace, ServingNamespaceArgs
from components.k8s.readiness import template_fingerprint
from components.k8s.router import SlotRouter, SlotRouterArgs
from components.k8s.routes import GatewayRoutes, GatewayRoutesArgs, ParentGateway, WeightedServer
from infra.settings.common import Environment, Slot
from infra.settings.loader import StackSettings
from infra.settings.onprem import CORE_MODULES, Entry, SeccompProfile
from infra.switch_check import (DEPLOYMENTS_OUTPUT, RELEASES_OUTPUT, TEMPLATES_OUTPUT, WEIGHTS_OUTPUT, release_of,
                                switch_check)

# The engine starts plugins in the program's directory (Pulumi.yaml `main: infra/`), not the project
# root: the render directory, which the stack file names relative to the project root, is handed to the
# provider relative to infra/, so it lands in the same place for `pulumi up` and `lastmile up` in any clone.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROGRAM_DIR = PROJECT_ROOT / "infra"
SURGE_PODS = 1  # the Deployments roll with maxSurge 1, maxUnavailable 0


def build(settings: StackSettings) -> dict[str, Any]:
    """Build the on-prem topology with an explicit provider (secret presence is judged by the loader)."""
    return build_onprem(settings, kubernetes_provider(settings))


def kubernetes_provider(settings: StackSettings, *, create_only: bool = False) -> k8s.Provider:
    """The Kubernetes provider; every option that could come from the environment is pinned.

    Render mode talks to no cluster and the provider refuses a kubeconfig next to a render directory;
    otherwise the kubeconfig is the project file the stack names or the stack's secret (the loader
    requires one of them), never the ambient one.

    ``create_only``: the provider of the serving namespace and its policies. With server-side apply,
    pulumi-kubernetes 4.25.0 creates by applying, so it silently takes over an object that already exists
    (another team's namespace, then deleted by `destroy`); without it, a create of an existing object
    fails ("already exists") before anything else is deployed into it.
    """
    onprem = settings.onprem
    render_directory = None
    if onprem.render_directory is not None:
        # "" and not None: the SDK would fill None from $KUBECONFIG, which the provider refuses in render mode.
        kubeconfig: pulumi.Input[str] = ""
        render_directory = os.path.relpath(PROJECT_ROOT / onprem.render_directory, PROGRAM_DIR)
    elif onprem.kubeconfig_file is not None:
        # A path: the provider reads the file itself, so the cluster's credentials never enter the state.
        kubeconfig = os.path.relpath(PROJECT_ROOT / onprem.kubeconfig_file, PROGRAM_DIR)
    else:
        kubeconfig = settings.secrets["kubeconfig"]
    return k8s.Provider(
        "kubernetes-create-only" if create_only else "kubernetes",
        kubeconfig=kubeconfig,
        render_yaml_to_directory=render_directory,
        enable_server_side_apply=not create_only,
        enable_config_map_mutable=False,
        enable_secret_mutable=False,
        delete_unreachable=False,
        skip_update_unreachable=False,
        suppress_deprecation_warnings=False,
        suppress_helm_hook_warnings=False,
    )


def build_onprem(settings: StackSettings, provider: k8s.Provider, *,
                 extra_egress_cidrs: Sequence[str] = (),
                 alert_topic_arn: pulumi.Input[str] | None = None) -> dict[str, Any]:
    """The on-prem serving half, on ``provider``. ``extra_egress_cidrs``: HTTPS destinations the model
    servers may reach besides the model store (the hybrid topology's cloud endpoints);
    ``alert_topic_arn``: the cloud plane's alert topic, named in the alerts' routing (hybrid)."""
    onprem, serving, capacity = settings.onprem, settings.serving, settings.capacity
    model = serving.active.model
    # On a cluster, nothing of the serving half is registered before the switch check has passed.
    check = switch_check(settings, provider) if onprem.render_directory is None else None
    opts = pulumi.ResourceOptions(provider=provider, depends_on=check)
    # The namespace is the stack's own: created, never taken over (see kubernetes_provider's create_only).
    creator = provider if onprem.render_directory is not None else kubernetes_provider(settings, create_only=True)
    resources = ContainerResources(cpu_millicores=onprem.resources.cpu_millicores,
                                   memory_mib=onprem.resources.memory_mib)
    pods = len(serving.slots) * (capacity.max_count + SURGE_PODS)
    gateway = onprem.gateway if onprem.entry == Entry.GATEWAY else None
    if gateway is not None:  # only the gateway's namespace (and its proxy pods, when named) reaches the servers
        sources: tuple[tuple[str, ...], tuple[str, ...], dict[str, str]] = ((gateway.namespace,), (), dict(gateway.pod_labels))
    else:
        sources = (tuple(onprem.ingress.allowed_source_namespaces), tuple(onprem.ingress.allowed_source_cidrs), {})
    namespace = ServingNamespace("serving", ServingNamespaceArgs(
        namespace_name=onprem.namespace,
        owner=settings.stack,
        retained=onprem.render_directory is None,
        pod_security_version=onprem.pod_security_version,
        quota=ResourceBudget(cpu_millicores=pods * resources.cpu_millicores,
                             memory_mib=pods * resources.memory_mib, pods=pods),
        container_defaults=resources,
        server_pod_labels=SERVER_POD_LABELS,
        server_port=8080,
        grpc_port=8081 if gateway is not None else None,
        ingress_source_namespaces=sources[0],
        ingress_source_cidrs=sources[1],
        ingress_source_pod_labels=sources[2],
        dns_namespace=onprem.dns.namespace,
        dns_pod_labels=dict(onprem.dns.pod_labels),
        model_store_cidrs=tuple(onprem.model_store.egress_cidrs),
        model_store_port=onprem.model_store.port,
        extra_egress_cidrs=tuple(extra_egress_cidrs),
    ), opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=creator)))
    ns = namespace.namespace_name
    deployer = DeployerAccess("deployer", DeployerAccessArgs(namespace=ns, group_name=onprem.deployer_group), opts=opts)
    store = ModelStoreAccess("model-store", ModelStoreAccessArgs(
        namespace=ns,
        endpoint_url=onprem.model_store.endpoint,
        bucket=onprem.model_store.bucket,
        region=onprem.model_store.region,
        key_prefix=onprem.model_store.key_prefix,
        credentials_json=settings.secrets["model_store_credentials"],
        ca_bundle_pem=onprem.model_store.ca_bundle_pem,
    ), opts=opts)
    security = _pod_security(settings)
    servers: dict[Slot, ModelServer] = {}
    for slot in Slot:
        release = serving.slots.get(slot)
        if release is None:
            continue  # a slot exists only while it has a release: dropping it from the stack file retires it
        servers[slot] = ModelServer(f"{release.model}-{slot.value}", ModelServerArgs(
            namespace=ns,
            slot=slot,
            model_name=release.model,
            model_version=release.version,
            artifact_sha256=release.sha256,
            image=release.image,
            core_module=CORE_MODULES[release.model],
            model_store=store,
            replicas=ReplicaPolicy(min_count=capacity.min_count, max_count=capacity.max_count,
                                   target_cpu_percent=capacity.target_cpu_percent,
                                   spread_required=settings.environment != Environment.DEV),
            resources=resources,
            artifact_volume_mib=onprem.resources.artifact_volume_mib,
            security=security,
            rollout_timeout_seconds=settings.ready_timeout_seconds,
        ), opts=opts)
    idle = next((server for slot, server in servers.items() if slot != serving.active_slot), None)
    router = SlotRouter(f"{model}-router", SlotRouterArgs(
        namespace=ns, active=servers[serving.active_slot], idle=idle), opts=opts)
    if settings.observability.enabled:
        watch = settings.observability
        ServingObservability(f"{model}-observability", ServingObservabilityArgs(
            namespace=ns, model_name=model, slots=tuple(servers),
            thresholds=AlarmThresholds(
                error_5xx_count=settings.alarms.error_5xx_count, latency_p99_ms=settings.alarms.latency_p99_ms,
                evaluation_minutes=settings.alarms.evaluation_minutes),
            routing=AlertRouting(
                route=f"lastmile-{settings.stack}"[:63].rstrip("-"), emails=tuple(watch.notifications.emails),
                https_endpoints=tuple(watch.notifications.https_endpoints), sns_topic_arn=alert_topic_arn),
            monitoring_namespace=watch.kubernetes.monitoring_namespace,
            prometheus_operator=watch.kubernetes.prometheus_operator,
            prometheus_selector_labels=dict(watch.kubernetes.prometheus_selector_labels)), opts=opts)
    weights = serving.traffic_weights
    entry_outputs: dict[str, Any] = {}
    if gateway is not None:
        routes = GatewayRoutes(f"{model}-routes", GatewayRoutesArgs(
            namespace=ns,
            gateway=ParentGateway(name=gateway.name, namespace=gateway.namespace, section_name=gateway.section_name),
            hostname=gateway.hostname,
            backends=tuple(WeightedServer(server=server, weight=weights[slot]) for slot, server in sorted(servers.items())),
            wait_for_accepted=gateway.wait_for_accepted,
            timeout_seconds=settings.ready_timeout_seconds,
        ), opts=opts)
        url = routes.url
        entry_outputs = {"http_route": routes.http_route_name, "grpc_route": routes.grpc_route_name}
    else:
        url = TlsIngress(f"{model}-ingress", TlsIngressArgs(
            namespace=ns,
            host=onprem.ingress.host,
            class_name=onprem.ingress.class_name,
            controller=onprem.ingress.controller,
            service_name=router.stable_service_name,
            service_port=router.port,
            tls_certificate_pem=settings.secrets["tls_certificate"],
            tls_private_key_pem=settings.secrets["tls_private_key"],
            wait_for_address=onprem.ingress.wait_for_address,
        ), opts=opts).url
    outputs: dict[str, Any] = {
        "active_slot": serving.active_slot.value,
        "active_release": f"{serving.active.model} {serving.active.version}",
        "slots": {slot.value: f"{r.model} {r.version}" for slot, r in sorted(serving.slots.items())},
        "namespace": ns,
        "endpoint_url": f"{url}/models/{model}/infer",
        "entry": onprem.entry.value,
        **entry_outputs,
        "stable_service": router.stable_service_name,
        "deployer_role": deployer.role_name,
        # What the switch check of the next update compares with (infra/switch_check.py).
        RELEASES_OUTPUT: {slot.value: release_of(r) for slot, r in sorted(serving.slots.items())},
        # With entry ingress the weights are the active slot's 100/0: all traffic follows the stable Service.
        WEIGHTS_OUTPUT: {slot.value: weight for slot, weight in weights.items()},
        DEPLOYMENTS_OUTPUT: {slot.value: pulumi.Output.concat(server.deployment.metadata.namespace, "/",
                                                              server.deployment.metadata.name)
                             for slot, server in sorted(servers.items())},
        TEMPLATES_OUTPUT: {slot.value: server.deployment.spec.apply(lambda spec: template_fingerprint(spec.template))
                           for slot, server in sorted(servers.items())},
    }
    if router.preview_service_name is not None:
        outputs["preview_service"] = router.preview_service_name
    if onprem.render_directory is not None:
        outputs["render_directory"] = onprem.render_directory
    return outputs


def _pod_security(settings: StackSettings) -> PodSecurity:
    sc = settings.onprem.security_context
    return PodSecurity(
        run_as_user_id=sc.run_as_user,
        run_as_group_id=sc.run_as_group,
        fs_group_id=sc.fs_group,
        seccomp_profile={SeccompProfile.RUNTIME_DEFAULT: SeccompProfileType.RUNTIME_DEFAULT,
                         SeccompProfile.LOCALHOST: SeccompProfileType.LOCALHOST}[sc.seccomp_profile],
        seccomp_localhost_profile=sc.seccomp_localhost_profile,
    )
