"""ModelServer: one blue/green slot serving one pinned model release with Seldon MLServer.

Per slot: a ServiceAccount (token automount off, no RoleBinding), an immutable ConfigMap with the
runtime files, a Deployment, a PodDisruptionBudget and a HorizontalPodAutoscaler.

How a pod comes up:
1. init container ``fetch-artifact`` (the serving image's Python, standard library only) fetches
   ``<model>/<version>/model.tar.gz`` from the model store over TLS (SigV4, certificate and hostname
   verified), checks its sha256 against the release's pin and exits non-zero on any difference, so a
   tampered or wrong artifact never reaches the server; it unpacks into an emptyDir next to
   ``model-settings.json`` and ``lastmile_runtime.py`` (``components/k8s/runtime/``);
2. container ``model-server`` runs ``mlserver start`` on that emptyDir, mounted read-only; the
   runtime imports the artifact's framework-free core module and refuses an artifact whose version is
   not the pinned one. Readiness is MLServer's per-model ready endpoint.

Safe defaults, all always on: restricted Pod Security (non-root UID 10001, no privilege escalation,
ALL capabilities dropped, seccomp RuntimeDefault) plus a read-only root filesystem on both containers;
requests equal limits; startup, liveness and readiness probes; image pinned by digest; no service
links; the store's key is mounted as a file into the init container only.

Replicas: the HPA owns ``spec.replicas`` (the Deployment omits it, so ``pulumi up`` never resets an
autoscaled count); ``min_count`` is its floor. Pods are spread over nodes (``spread_required``: a
hard constraint, for prod) and zones (best effort); the PDB keeps all but one pod through voluntary
disruptions. Readiness await: the Deployment carries ``pulumi.com/timeoutSeconds`` and Pulumi waits
for the rollout to become available before anything depending on it (the stable Service) moves. In
render mode there is no cluster and nothing is awaited: the GitOps controller applying the rendered
YAML owns the ordering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.common import (
    COMPONENT_LABEL,
    DIGEST_IMAGE,
    PART_OF,
    PART_OF_LABEL,
    ROLLOUT_TIMEOUT_SECONDS_RANGE,
    SLOT_LABEL,
    ContainerResources,
    PodSecurity,
    base_labels,
    check_dns_label,
    restricted_container_security,
    restricted_pod_security,
)
from components.k8s.model_store import CA_BUNDLE_KEY, CREDENTIALS_KEY, ModelStoreAccess
from components.problems import Problem, check_range, raise_problems
from components.slots import Slot

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
RUNTIME_CLASS = "lastmile_runtime.LastmileRuntime"
HTTP_PORT = 8080
GRPC_PORT = 8081  # MLServer's V2 gRPC protocol (the Gateway API entry routes it with a GRPCRoute)
COMPONENT = "model-server"
MODEL_REPOSITORY = "/mnt/models"
TMP_VOLUME_MIB = 64
SHA256_HEX = "0123456789abcdef"


@dataclass(frozen=True, kw_only=True)
class ReplicaPolicy:
    min_count: int
    max_count: int
    target_cpu_percent: int
    spread_required: bool
    """True: at most one pod more on any node than on another (DoNotSchedule). False: best effort."""

    def __post_init__(self) -> None:
        counts = check_range("min_count", self.min_count, 1)
        counts = counts or check_range("max_count", self.max_count, self.min_count, why=" (min_count)")
        raise_problems("ReplicaPolicy", [*counts, *check_range("target_cpu_percent", self.target_cpu_percent, 1, 100)])


@dataclass(frozen=True, kw_only=True)
class ModelServerArgs:
    namespace: pulumi.Input[str]
    slot: Slot
    model_name: str
    """DNS-label model name (manifest key), e.g. iris-classifier."""
    model_version: str
    artifact_sha256: str
    image: str
    """Serving image (Seldon MLServer compatible) pinned by digest: <repository>@sha256:<64 hex>."""
    core_module: str
    """Module in the artifact's code/ folder exposing load_model(dir).predict(rows), e.g. iris_model."""
    model_store: ModelStoreAccess
    replicas: ReplicaPolicy
    resources: ContainerResources
    artifact_volume_mib: int
    security: PodSecurity = PodSecurity()
    """UIDs and seccomp profile (restricted-profile values only). Omitted: UID/GID 10001, RuntimeDefault."""
    rollout_timeout_seconds: int = 600
    """How long Pulumi waits for the Deployment to become available (pulumi.com/timeoutSeconds) and the
    Deployment's progress deadline. Omitted: 600 s."""

    def __post_init__(self) -> None:
        raise_problems("ModelServerArgs", [
            *check_dns_label("model_name", self.model_name),
            *self._artifact_problems(),
            *check_range("artifact_volume_mib", self.artifact_volume_mib, 16, 65536),
            *check_range("rollout_timeout_seconds", self.rollout_timeout_seconds, *ROLLOUT_TIMEOUT_SECONDS_RANGE),
        ])

    def _artifact_problems(self) -> list[Problem]:
        problems = []
        if not DIGEST_IMAGE.match(self.image):
            problems.append(Problem("image", self.image, "must be pinned by digest (<repository>@sha256:<64 hex>)",
                                    "pin the image by its digest"))
        if len(self.artifact_sha256) != 64 or set(self.artifact_sha256) - set(SHA256_HEX):
            problems.append(Problem("artifact_sha256", self.artifact_sha256, "must be 64 lowercase hex digits",
                                    "pass the artifact's sha256sum in lowercase hex"))
        if not self.core_module.isidentifier():
            problems.append(Problem("core_module", self.core_module, "must be a Python module name",
                                    "use e.g. iris_model (underscores, not dashes)"))
        return problems


def server_selector(model_name: str) -> dict[str, str]:
    """Labels every model-server pod of this model carries, whatever its slot."""
    return base_labels(model_name, COMPONENT)


# Labels every lastmile model-server pod carries, whatever its model and slot (NetworkPolicy selector).
SERVER_POD_LABELS = {COMPONENT_LABEL: COMPONENT, PART_OF_LABEL: PART_OF}


class ModelServer(pulumi.ComponentResource):
    """One slot's model server: pinned release, restricted pods, autoscaled, disruption-budgeted."""

    deployment: k8s.apps.v1.Deployment
    slot: Slot
    pod_labels: dict[str, str]
    port: int
    grpc_port: int
    rollout_timeout_seconds: int

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:ModelServer", name, None, opts)
        self.slot = args.slot
        self.port = HTTP_PORT
        self.grpc_port = GRPC_PORT
        self.rollout_timeout_seconds = args.rollout_timeout_seconds
        self.pod_labels = server_selector(args.model_name) | {SLOT_LABEL: args.slot.value}
        labels = self.pod_labels | {"app.kubernetes.io/version": args.model_version}

        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        runtime = k8s.core.v1.ConfigMap(
            f"{name}-runtime",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            immutable=True,
            data=_runtime_files(args),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace, labels=labels,
                annotations={"pulumi.com/timeoutSeconds": str(args.rollout_timeout_seconds)},
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.pod_labels),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
                ),
                min_ready_seconds=5,
                progress_deadline_seconds=args.rollout_timeout_seconds,
                revision_history_limit=3,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=_pod_spec(args, self.pod_labels, account.metadata.name, runtime.metadata.name),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-budget",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.pod_labels),
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=self.deployment.metadata.name),
                min_replicas=args.replicas.min_count,
                max_replicas=args.replicas.max_count,
                metrics=[k8s.autoscaling.v2.MetricSpecArgs(
                    type="Resource",
                    resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                        name="cpu",
                        target=k8s.autoscaling.v2.MetricTargetArgs(
                            type="Utilization", average_utilization=args.replicas.target_cpu_percent),
                    ),
                )],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"deployment_name": self.deployment.metadata.name})


def _runtime_files(args: ModelServerArgs) -> dict[str, str]:
    settings = {
        "name": args.model_name,
        "implementation": RUNTIME_CLASS,
        "parameters": {
            # Relative: MLServer resolves it against the folder holding model-settings.json (the init
            # container unpacks the artifact next to it), so the file does not depend on the mount path.
            "uri": "./artifact",
            "version": args.model_version,
            "extra": {"core_module": args.core_module},
        },
    }
    return {
        "model-settings.json": json.dumps(settings, indent=2, sort_keys=True) + "\n",
        "lastmile_runtime.py": (RUNTIME_DIR / "lastmile_runtime.py").read_text(),
        "fetch_artifact.py": (RUNTIME_DIR / "fetch_artifact.py").read_text(),
    }


def _pod_spec(args: ModelServerArgs, selector: dict[str, str], account: pulumi.Input[str],
              runtime: pulumi.Input[str]) -> k8s.core.v1.PodSpecArgs:
    store = args.model_store
    mount = k8s.core.v1.VolumeMountArgs
    fetch_env = {
        "LASTMILE_STORE_ENDPOINT": store.args.endpoint_url.rstrip("/"),
        "LASTMILE_STORE_BUCKET": store.args.bucket,
        "LASTMILE_STORE_REGION": store.args.region,
        "LASTMILE_ARTIFACT_KEY": store.artifact_key(args.model_name, args.model_version),
        "LASTMILE_ARTIFACT_SHA256": args.artifact_sha256,
        "LASTMILE_CREDENTIALS_FILE": f"/etc/lastmile/store-credentials/{CREDENTIALS_KEY}",
        "LASTMILE_CA_BUNDLE": f"/etc/lastmile/store-ca/{CA_BUNDLE_KEY}" if store.ca_bundle_config_map_name else "",
        "LASTMILE_MODEL_REPOSITORY": MODEL_REPOSITORY,
        "LASTMILE_MODEL_NAME": args.model_name,
        "LASTMILE_RUNTIME_DIR": "/etc/lastmile/runtime",
        "LASTMILE_MAX_ARTIFACT_BYTES": str(args.artifact_volume_mib * 1024 * 1024),
        "HOME": "/tmp",
    }
    server_env = {
        "MLSERVER_HTTP_PORT": str(HTTP_PORT),
        "MLSERVER_GRPC_PORT": str(GRPC_PORT),
        "MLSERVER_METRICS_PORT": "8082",
        "MLSERVER_PARALLEL_WORKERS": "0",
        "MLSERVER_LOAD_MODELS_AT_STARTUP": "true",
        "MLSERVER_DEBUG": "false",
        "MLSERVER_METRICS_DIR": "/tmp/mlserver-metrics",
        "MLSERVER_ENVIRONMENTS_DIR": "/tmp/mlserver-envs",
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    volumes = [
        k8s.core.v1.VolumeArgs(name="model-repository", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
            size_limit=f"{args.artifact_volume_mib}Mi")),
        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=f"{TMP_VOLUME_MIB}Mi")),
        k8s.core.v1.VolumeArgs(name="runtime", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
            name=runtime, default_mode=0o444)),
        k8s.core.v1.VolumeArgs(name="store-credentials", secret=k8s.core.v1.SecretVolumeSourceArgs(
            secret_name=store.credentials_secret_name, default_mode=0o440)),
    ]
    fetch_mounts = [
        mount(name="model-repository", mount_path=MODEL_REPOSITORY),
        mount(name="tmp", mount_path="/tmp"),
        mount(name="runtime", mount_path="/etc/lastmile/runtime", read_only=True),
        mount(name="store-credentials", mount_path="/etc/lastmile/store-credentials", read_only=True),
    ]
    if store.ca_bundle_config_map_name is not None:
        volumes.append(k8s.core.v1.VolumeArgs(name="store-ca", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
            name=store.ca_bundle_config_map_name, default_mode=0o444)))
        fetch_mounts.append(mount(name="store-ca", mount_path="/etc/lastmile/store-ca", read_only=True))
    container_security = restricted_container_security(args.security)
    http_get = k8s.core.v1.HTTPGetActionArgs
    spread = "DoNotSchedule" if args.replicas.spread_required else "ScheduleAnyway"
    return k8s.core.v1.PodSpecArgs(
        service_account_name=account,
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=restricted_pod_security(args.security),
        termination_grace_period_seconds=30,
        init_containers=[k8s.core.v1.ContainerArgs(
            name="fetch-artifact",
            image=args.image,
            image_pull_policy="IfNotPresent",
            command=["python", "/etc/lastmile/runtime/fetch_artifact.py"],
            env=_env(fetch_env),
            resources=args.resources.requirements(),
            security_context=container_security,
            volume_mounts=fetch_mounts,
        )],
        containers=[k8s.core.v1.ContainerArgs(
            name="model-server",
            image=args.image,
            image_pull_policy="IfNotPresent",
            command=["mlserver", "start", MODEL_REPOSITORY],
            working_dir="/tmp",
            env=_env(server_env),
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=HTTP_PORT, protocol="TCP"),
                   k8s.core.v1.ContainerPortArgs(name="grpc", container_port=GRPC_PORT, protocol="TCP")],
            resources=args.resources.requirements(),
            security_context=container_security,
            volume_mounts=[
                mount(name="model-repository", mount_path=MODEL_REPOSITORY, read_only=True),
                mount(name="tmp", mount_path="/tmp"),
            ],
            startup_probe=k8s.core.v1.ProbeArgs(
                http_get=http_get(path="/v2/health/live", port="http"),
                period_seconds=2, failure_threshold=90, timeout_seconds=2),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=http_get(path="/v2/health/live", port="http"),
                period_seconds=10, failure_threshold=3, timeout_seconds=2),
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=http_get(path=f"/v2/models/{args.model_name}/ready", port="http"),
                period_seconds=5, failure_threshold=2, timeout_seconds=2),
        )],
        volumes=volumes,
        topology_spread_constraints=[
            k8s.core.v1.TopologySpreadConstraintArgs(
                max_skew=1, topology_key=key, when_unsatisfiable=when,
                label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                match_label_keys=["pod-template-hash"],
            )
            for key, when in (("kubernetes.io/hostname", spread), ("topology.kubernetes.io/zone", "ScheduleAnyway"))
        ],
    )


def _env(values: dict[str, str]) -> list[k8s.core.v1.EnvVarArgs]:
    return [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in values.items()]
