"""The ``lastmile:onprem`` section: cluster access, namespace, model store, ingress, pod security.

Owned by the on-prem topology (``infra/topologies/onprem.py``). Secrets are never plaintext here:
they are the top-level secret keys read by the loader with get_secret (``loader.SECRET_KEYS``):

- ``lastmile:kubeconfig``               cluster credentials; required unless ``render_directory`` or
                                        ``kubeconfig_file`` is set
- ``lastmile:tls_certificate``          PEM chain of the ingress certificate; required with entry ingress
- ``lastmile:tls_private_key``          PEM key of that certificate; required with entry ingress
                                        (entry gateway: TLS ends at the Gateway's listener, whose certificate
                                        the cluster's platform team keeps; the stack creates no listener and
                                        needs no certificate)
- ``lastmile:model_store_credentials``  JSON ``{"access_key_id": ..., "secret_access_key": ...}`` of a
                                        read-only key for the model store; always required

Shape (every field below; omitted fields take the default shown)::

    lastmile:onprem:
      namespace: lastmile-serving            # created and labelled restricted by the stack
      render_directory: rendered/onprem-gitops  # omitted: talk to the cluster of lastmile:kubeconfig
      kubeconfig_file: .lastmile/cluster/kubeconfig  # a local cluster's kubeconfig, instead of the secret
      ready_timeout_seconds: 600             # omitted: rollout.max_execution_seconds
      pod_security_version: v1.33            # Pod Security admission version pin (enforce, warn, audit)
      deployer_group: lastmile-deployers     # RBAC group CI authenticates as; bound to the deployer Role
      dns: {namespace: kube-system, pod_labels: {k8s-app: kube-dns}}
      entry: gateway                         # gateway | ingress: how traffic gets in from outside the cluster
      gateway:                               # required with entry gateway (the default), refused otherwise
        name: shared-gateway                 # required: the parent Gateway (the cluster's, not the stack's)
        namespace: gateway-system            # required: its namespace; the NetworkPolicy admits only this one
        section_name: https                  # required: the HTTPS listener the routes attach to (TLS ends there)
        hostname: iris.serving.example.internal  # required: the routes' hostname; no wildcard in prod
        pod_labels: {}                       # the gateway's proxy pods; omitted: any pod of its namespace
        wait_for_accepted: true              # false: `pulumi up` does not wait for the route's Accepted
      ingress:                               # required with entry ingress, refused otherwise
        host: iris.serving.example.internal  # required
        class_name: nginx
        controller: nginx                    # nginx | traefik
        allowed_source_namespaces: [ingress-nginx]
        allowed_source_cidrs: []
        wait_for_address: true               # false: the controller never publishes an address
      model_store:
        endpoint: https://minio.example.internal:9000   # required, https only
        bucket: lastmile-models                          # required
        region: us-east-1
        key_prefix: ""                       # object key: <key_prefix><model>/<version>/model.tar.gz
        egress_cidrs: [10.20.0.0/24]         # required: where the store answers (NetworkPolicy egress)
        ca_bundle_pem: null                  # omitted: the server image's system trust store
      resources: {cpu_millicores: 500, memory_mib: 512, artifact_volume_mib: 256}
      security_context:                      # restricted-profile values only; others are rejected
        run_as_user: 10001
        run_as_group: 10001
        fs_group: 10001
        seccomp_profile: runtime_default     # runtime_default | localhost (+ seccomp_localhost_profile)
        # run_as_non_root: true, allow_privilege_escalation: false, privileged: false,
        # read_only_root_filesystem: true, capabilities_add: [] are accepted only at these values
        # (or NET_BIND_SERVICE): a loosening override is reported with the reason, not applied.

Entry: ``gateway`` (the default) attaches an HTTPRoute (REST) and a GRPCRoute (MLServer's V2 gRPC) to
a Gateway the cluster provides, with one backend Service per slot carrying ``serving.weights``; ``ingress``
is the Ingress path for clusters without Gateway API (ingress-nginx is retired): it follows active_slot
only, so weights need entry gateway.

Render mode: the Kubernetes provider writes the manifests to render_directory and talks to no cluster;
nothing is awaited there (no readiness gate): the GitOps controller applying the YAML orders the
rollout. The TLS and model-store secrets are still required, and they are rendered in plaintext.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, StrictInt

from components.k8s.common import ROLLOUT_TIMEOUT_SECONDS_RANGE, check_cidrs, check_image_reference
from components.k8s.ingress import IngressController
from infra.settings.common import MISSING, Environment, Problem, Strict, Topology

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
# Gateway API's Hostname: a DNS name, optionally with one leading wildcard label (refused in prod by a rule).
ROUTE_HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
# Gateway API's weight bound (rules[].backendRefs[].weight).
MAX_ROUTE_WEIGHT = 1_000_000
# The framework-free core module each model's artifact ships in code/ (load_model(dir).predict(rows));
# model_artifacts/manifest.json notes: "On-prem servers can import code/iris_model.py directly".
CORE_MODULES: dict[str, str] = {"iris-classifier": "iris_model"}
# Restricted Pod Security allows adding this capability and no other.
RESTRICTED_ADDABLE_CAPABILITIES = ("NET_BIND_SERVICE",)


class SeccompProfile(StrEnum):
    RUNTIME_DEFAULT = "runtime_default"
    LOCALHOST = "localhost"
    UNCONFINED = "unconfined"  # accepted by the parser only to be rejected with a reason (restricted forbids it)


class Entry(StrEnum):
    GATEWAY = "gateway"
    INGRESS = "ingress"


class GatewayRef(Strict):
    """The parent Gateway the stack's routes attach to. It is the cluster's (its platform team's): the stack
    creates no Gateway and no listener. TLS terminates at the named listener with the certificate the team
    keeps there; the Gateway's ``allowedRoutes`` must admit routes from the serving namespace."""

    name: str = Field(pattern=DNS_NAME, max_length=253, description="The Gateway's name.")
    namespace: str = Field(pattern=DNS_LABEL, description="The Gateway's namespace; the only one the NetworkPolicy admits.")
    section_name: str = Field(pattern=DNS_LABEL, description="The Gateway's HTTPS listener (sectionName) the routes "
                              "attach to; naming it keeps the routes off a plain-HTTP listener of the same Gateway.")
    hostname: str = Field(pattern=ROUTE_HOSTNAME, max_length=253,
                          description="The routes' hostname; the listener's certificate must cover it.")
    pod_labels: dict[str, str] = Field(
        default={}, description="Labels of the gateway's proxy pods, to admit only them. Omitted: any pod of its namespace.")
    wait_for_accepted: bool = Field(
        default=True,
        description="`pulumi up` waits until the Gateway's controller reports the HTTPRoute Accepted. false: for "
        "clusters where no Gateway implementation runs (the local cluster): the routes are created and validated "
        "by the API server, and never awaited. Omitted: wait.",
    )


class Ingress(Strict):
    """The TLS ingress in front of the stable Service (entry ingress). There is no plain-HTTP variant."""

    host: str = Field(pattern=DNS_NAME, max_length=253, description="DNS name clients use; the TLS certificate must cover it.")
    class_name: str = Field(default="nginx", pattern=DNS_LABEL, description="IngressClass of the cluster's controller.")
    controller: IngressController = Field(
        default=IngressController.NGINX,
        description="nginx: HTTP is answered only by a redirect to HTTPS; traefik: the router binds websecure only.",
    )
    allowed_source_namespaces: list[str] = Field(
        default=["ingress-nginx"],
        description="Namespaces whose pods may reach the model servers (the ingress controller's). "
        "Omitted: ingress-nginx.",
    )
    allowed_source_cidrs: list[str] = Field(
        default=[], description="Extra source networks allowed to reach the model servers. Omitted: none."
    )
    wait_for_address: bool = Field(
        default=True,
        description="`pulumi up` waits until the ingress controller publishes the Ingress's address. false: for "
        "controllers that never publish one (NodePort/hostNetwork) and clusters without a controller (the local "
        "cluster). Omitted: wait.",
    )


class ModelStore(Strict):
    """The on-prem S3-compatible store the pods fetch their pinned artifact from, over TLS."""

    endpoint: str = Field(pattern=r"^https://[a-z0-9.-]+(:\d{1,5})?/?$", description="https://host[:port] only.")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,32}$", description="SigV4 signing region.")
    key_prefix: str = Field(
        default="", pattern=r"^([A-Za-z0-9._-]+/)*$", description="Object key = <key_prefix><model>/<version>/model.tar.gz."
    )
    egress_cidrs: list[str] = Field(
        min_length=1, description="Networks the store answers from; the only egress allowed besides DNS."
    )
    ca_bundle_pem: str | None = Field(
        default=None,
        pattern=r"^\s*-----BEGIN CERTIFICATE-----",
        description="PEM CA bundle that signs the store's certificate. Omitted: the image's system trust store.",
    )

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint).port or 443


class Resources(Strict):
    """Per container (model server and artifact fetcher alike): requests equal limits (Guaranteed QoS)."""

    cpu_millicores: StrictInt = Field(default=500, ge=50, le=64000)
    memory_mib: StrictInt = Field(default=512, ge=64, le=262144)
    artifact_volume_mib: StrictInt = Field(default=256, ge=16, le=65536, description="Size limit of the artifact emptyDir.")


class SecurityContext(Strict):
    """securityContext values of the model-server pods (Kubernetes' names, snake_case).

    Only values the restricted Pod Security profile admits are accepted; anything else is reported
    with the reason, so a securityContext copied from elsewhere fails at config time, not at admission.
    """

    run_as_user: StrictInt = Field(default=10001, ge=0, le=2147483647, description="Non-zero; >= 10000 avoids host UIDs.")
    run_as_group: StrictInt = Field(default=10001, ge=0, le=2147483647)
    fs_group: StrictInt = Field(default=10001, ge=0, le=2147483647)
    run_as_non_root: StrictBool = True
    allow_privilege_escalation: StrictBool = False
    privileged: StrictBool = False
    read_only_root_filesystem: StrictBool = True
    capabilities_add: list[str] = Field(default=[], description="Restricted allows NET_BIND_SERVICE only.")
    seccomp_profile: SeccompProfile = SeccompProfile.RUNTIME_DEFAULT
    seccomp_localhost_profile: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._/-]+$", description="Profile path when seccomp_profile is localhost."
    )


class Dns(Strict):
    """Where cluster DNS runs: the NetworkPolicy allows port 53 to these pods only."""

    namespace: str = Field(default="kube-system", pattern=DNS_LABEL)
    pod_labels: dict[str, str] = Field(default={"k8s-app": "kube-dns"}, min_length=1)


class OnpremSettings(Strict):
    namespace: str = Field(default="lastmile-serving", pattern=DNS_LABEL, description="Serving namespace (created).")
    render_directory: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Render mode: the Kubernetes provider writes YAML here (relative to the project root) instead "
        "of calling a cluster; no kubeconfig needed. Rendered Secrets are plaintext there. Omitted: deploy.",
    )
    kubeconfig_file: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="A kubeconfig file inside the project (relative to its root) that the Kubernetes provider "
        "reads, instead of the secret lastmile:kubeconfig: the local cluster's `.lastmile/cluster/kubeconfig` "
        "(`lastmile cluster up`). Its contents never enter the stack's state. Omitted: the secret.",
    )
    ready_timeout_seconds: StrictInt | None = Field(
        default=None,
        ge=ROLLOUT_TIMEOUT_SECONDS_RANGE[0],
        le=ROLLOUT_TIMEOUT_SECONDS_RANGE[1],
        description="How long `pulumi up` waits for a slot's Deployment to become available before it fails and "
        "leaves traffic where it was ({}-{} s). Omitted: rollout.max_execution_seconds.".format(
            *ROLLOUT_TIMEOUT_SECONDS_RANGE),
    )
    pod_security_version: str = Field(
        default="v1.33", pattern=r"^v1\.\d{1,2}$", description="Pod Security admission version pin; never 'latest'."
    )
    deployer_group: str = Field(
        default="lastmile-deployers",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,252}$",
        description="RBAC group of the CI identity that runs pulumi up; bound to the namespaced deployer Role.",
    )
    dns: Dns = Field(default_factory=Dns)
    entry: Entry = Field(default=Entry.GATEWAY, description="gateway: HTTPRoute + GRPCRoute on the cluster's Gateway "
                         "(weights); ingress: an Ingress to the stable Service (no weights). Omitted: gateway.")
    gateway: GatewayRef | None = Field(default=None, description="The parent Gateway; required with entry gateway.")
    ingress: Ingress | None = Field(default=None, description="The Ingress; required with entry ingress.")
    model_store: ModelStore
    resources: Resources = Field(default_factory=Resources)
    security_context: SecurityContext = Field(default_factory=SecurityContext)

    @property
    def render_mode(self) -> bool:
        return self.render_directory is not None


# ---------------------------------------------------------------------------------------------
# Rules: small pure functions (sections) -> problems; see infra/settings/rules.py.

KUBERNETES_TOPOLOGIES = (Topology.ONPREM, Topology.HYBRID)
Sections = dict[str, object]


def images_by_digest(s: Sections) -> list[Problem]:
    """Kubernetes pulls what it is told: a tag can move under a running release, a digest cannot; and a
    reference the kubelet cannot parse (``Docker.io/Seldon/MLServer``, ``seldonio/../mlserver``) is refused
    here rather than as a pod that never starts (the OCI grammar of ``check_image_reference``)."""
    if s["topology"] not in KUBERNETES_TOPOLOGIES:
        return []
    return [problem for slot, release in sorted(s["serving"].slots.items())
            for problem in check_image_reference(f"serving.slots.{slot.value}.image", release.image)]


def shadow_slot_needs_sagemaker(s: Sections) -> list[Problem]:
    """A shadow variant is SageMaker's: an on-prem stack has nothing that would mirror traffic to it."""
    serving = s["serving"]
    if s["topology"] != Topology.ONPREM or serving.shadow_slot is None:
        return []
    return [Problem("serving.shadow_slot", serving.shadow_slot.value,
                    "only stacks with a SageMaker endpoint (aws, hybrid) mirror traffic to a shadow slot; on "
                    "an on-prem stack it would do nothing",
                    "remove serving.shadow_slot; test the idle slot through its preview Service instead")]


def served_by_the_onprem_runtime(s: Sections) -> list[Problem]:
    """Both slots serve one model (the stable Service switches versions, not models), one the runtime knows."""
    if s["topology"] not in KUBERNETES_TOPOLOGIES:
        return []
    slots = sorted(s["serving"].slots.items())
    problems = []
    first_model = slots[0][1].model
    for slot, release in slots:
        if release.model != first_model:
            problems.append(Problem(f"serving.slots.{slot.value}.model", release.model,
                                    f"both slots must serve the same model ({first_model}); blue/green switches versions",
                                    "deploy another model as its own stack"))
        elif release.model not in CORE_MODULES:
            problems.append(Problem(f"serving.slots.{slot.value}.model", release.model,
                                    f"the on-prem runtime knows the artifact layout of {sorted(CORE_MODULES)} only",
                                    "add the model's core module to CORE_MODULES in infra/settings/onprem.py"))
    return problems


def restricted_security_context(s: Sections) -> list[Problem]:
    """Values the namespace's restricted Pod Security admission would refuse, reported with the reason."""
    sc = s["onprem"].security_context
    field = "onprem.security_context"
    fix = "remove the override (the default is restricted) or set a value the restricted profile admits"
    problems = []
    if sc.run_as_user == 0:
        problems.append(Problem(f"{field}.run_as_user", 0, "UID 0 is root; restricted requires non-root pods", fix))
    for name, bad, why in (
        ("run_as_non_root", False, "restricted requires runAsNonRoot: true"),
        ("allow_privilege_escalation", True, "restricted requires allowPrivilegeEscalation: false"),
        ("privileged", True, "privileged containers are forbidden by the baseline and restricted profiles"),
        ("read_only_root_filesystem", False, "lastmile pods run with a read-only root filesystem; writable paths "
                                             "are emptyDir volumes (/tmp, the artifact)"),
    ):
        if getattr(sc, name) == bad:
            problems.append(Problem(f"{field}.{name}", bad, why, fix))
    extra_caps = [c for c in sc.capabilities_add if c not in RESTRICTED_ADDABLE_CAPABILITIES]
    if extra_caps:
        problems.append(Problem(f"{field}.capabilities_add", sc.capabilities_add,
                                f"restricted drops ALL capabilities and allows adding only {RESTRICTED_ADDABLE_CAPABILITIES}",
                                "remove the capabilities (the server listens on 8080 and needs none)"))
    if sc.seccomp_profile == SeccompProfile.UNCONFINED:
        problems.append(Problem(f"{field}.seccomp_profile", sc.seccomp_profile.value,
                                "restricted requires seccomp runtime_default or localhost", fix))
    if (sc.seccomp_profile == SeccompProfile.LOCALHOST) != (sc.seccomp_localhost_profile is not None):
        problems.append(Problem(f"{field}.seccomp_localhost_profile", sc.seccomp_localhost_profile,
                                "seccomp_localhost_profile is needed with seccomp_profile localhost and only then",
                                "set both (localhost + a profile path) or neither"))
    return problems


def one_entry(s: Sections) -> list[Problem]:
    """The entry names its section, and only that one is set: a half-moved stack file is refused, not guessed."""
    onprem = s["onprem"]
    wanted, unused = ("gateway", "ingress") if onprem.entry == Entry.GATEWAY else ("ingress", "gateway")
    problems = []
    if getattr(onprem, wanted) is None:
        problems.append(Problem(f"onprem.{wanted}", MISSING, f"entry {onprem.entry.value} needs onprem.{wanted}" + (
            " (the parent Gateway's name, namespace, HTTPS listener section_name and the routes' hostname)"
            if wanted == "gateway" else " (host, class_name, allowed_source_namespaces)"),
            f"add onprem.{wanted}" + (", or set onprem.entry: ingress on a cluster without Gateway API"
                                       if wanted == "gateway" else ", or use the default entry gateway")))
    if getattr(onprem, unused) is not None:
        problems.append(Problem(f"onprem.{unused}", "set", f"entry {onprem.entry.value} does not read onprem.{unused}",
                                f"remove onprem.{unused}, or set onprem.entry: {unused}"))
    return problems


def gateway_hostname(s: Sections) -> list[Problem]:
    """A wildcard hostname in prod would let the route answer for every name under the domain."""
    gateway = s["onprem"].gateway
    if gateway is None or s["environment"] != Environment.PROD or not gateway.hostname.startswith("*"):
        return []
    return [Problem("onprem.gateway.hostname", gateway.hostname,
                    "a prod route names its one host: a wildcard answers for every name under the domain",
                    "name the host clients use, e.g. iris.serving.example.internal")]


def weights_need_kubernetes(s: Sections) -> list[Problem]:
    serving = s["serving"]
    if serving.weights is None or s["topology"] in KUBERNETES_TOPOLOGIES:
        return []
    return [Problem("serving.weights", {k.value: v for k, v in serving.weights.items()},
                    "weights split a Gateway API route between the Kubernetes slots; SageMaker shifts traffic "
                    "with serving.rollout", "remove serving.weights")]


def route_weights(s: Sections) -> list[Problem]:
    """serving.weights: integers 0..1000000 (Gateway API's bound), only on slots with a release, a positive
    total, and the active slot (what the stable Service and the Ingress follow) among those taking traffic."""
    serving = s["serving"]
    if serving.weights is None:
        return []
    field = "serving.weights"
    problems = []
    for slot, weight in sorted(serving.weights.items()):
        if not 0 <= weight <= MAX_ROUTE_WEIGHT:
            problems.append(Problem(f"{field}.{slot.value}", weight,
                                    f"a weight is an integer from 0 to {MAX_ROUTE_WEIGHT} (a proportion of the total)",
                                    "e.g. 90 and 10 for a 90/10 split; 0 takes the slot out of the route"))
        if slot not in serving.slots:
            problems.append(Problem(f"{field}.{slot.value}", weight,
                                    f"slot {slot.value} has no release: a route to it would have nothing to serve",
                                    f"add serving.slots.{slot.value} (deployed first with weight 0) or remove "
                                    f"serving.weights.{slot.value}"))
    if problems:
        return problems
    weights = serving.traffic_weights
    if sum(weights.values()) <= 0:
        return [Problem(field, {k.value: v for k, v in weights.items()},
                        "the weights sum to 0: the route would send every request nowhere",
                        f"give the active slot ({serving.active_slot.value}) a positive weight, e.g. 100")]
    if weights[serving.active_slot] == 0:
        problems.append(Problem(f"{field}.{serving.active_slot.value}", 0,
                                "the active slot takes no route traffic, yet the stable Service (in-cluster callers) "
                                "and the switch check follow active_slot",
                                f"give slot {serving.active_slot.value} a positive weight, or set active_slot to the "
                                "slot that takes the traffic"))
    if serving.weights and s["onprem"].entry != Entry.GATEWAY and any(
            w > 0 for slot, w in weights.items() if slot != serving.active_slot):
        problems.append(Problem(field, {k.value: v for k, v in weights.items()},
                                "an Ingress sends all traffic to the stable Service (active_slot): only Gateway API "
                                "routes carry weights", "use onprem.entry: gateway, or remove serving.weights"))
    return problems


def narrow_networks(s: Sections) -> list[Problem]:
    """CIDRs must parse, and none may be 'everything': the NetworkPolicy is the on-prem perimeter."""
    onprem = s["onprem"]
    if onprem.ingress is None:
        return check_cidrs("onprem.model_store.egress_cidrs", onprem.model_store.egress_cidrs)
    problems = [*check_cidrs("onprem.ingress.allowed_source_cidrs", onprem.ingress.allowed_source_cidrs),
                *check_cidrs("onprem.model_store.egress_cidrs", onprem.model_store.egress_cidrs)]
    if not onprem.ingress.allowed_source_namespaces and not onprem.ingress.allowed_source_cidrs:
        problems.append(Problem("onprem.ingress.allowed_source_namespaces", [],
                                "with no source namespace and no source CIDR nothing can reach the model servers",
                                "name the ingress controller's namespace (e.g. ingress-nginx)"))
    return problems


def deployer_group_not_system(s: Sections) -> list[Problem]:
    group = s["onprem"].deployer_group
    if not group.startswith("system:"):
        return []
    return [Problem("onprem.deployer_group", group,
                    "system: groups are Kubernetes' own (system:authenticated is every user); binding the deployer "
                    "Role to one grants it far beyond CI",
                    "name the group your CI identity (OIDC or certificate) carries, e.g. lastmile-deployers")]


SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def own_namespace(s: Sections) -> list[Problem]:
    """The serving namespace is the stack's own: never one Kubernetes itself keeps (default, kube-*)."""
    namespace = s["onprem"].namespace
    if namespace not in SYSTEM_NAMESPACES and not namespace.startswith("kube-"):
        return []
    return [Problem("onprem.namespace", namespace,
                    "the stack creates, locks down (restricted Pod Security, default-deny, quota) and owns its "
                    f"namespace; {', '.join(SYSTEM_NAMESPACES)} and every kube-* namespace belong to the cluster",
                    "name a namespace of the stack's own, e.g. lastmile-serving")]


def _inside_project(path: str) -> bool:
    return not path.startswith("/") and ".." not in path.split("/") and bool(path.strip("./"))


def project_paths(s: Sections) -> list[Problem]:
    """The render directory (written and cleaned by the provider) and a kubeconfig file stay in the project."""
    onprem = s["onprem"]
    problems = []
    if onprem.render_directory is not None and not _inside_project(onprem.render_directory):
        problems.append(Problem("onprem.render_directory", onprem.render_directory,
                                "the render directory must be a path inside the project, relative to its root (no "
                                "leading /, no '..'): the Kubernetes provider writes and deletes manifests there",
                                "use a directory under rendered/, e.g. rendered/<stack>"))
    if onprem.kubeconfig_file is not None and not _inside_project(onprem.kubeconfig_file):
        problems.append(Problem("onprem.kubeconfig_file", onprem.kubeconfig_file,
                                "a kubeconfig file must be inside the project, relative to its root (no leading /, "
                                "no '..'): a stack never reads whatever kubeconfig the machine has",
                                "use .lastmile/cluster/kubeconfig (the local cluster), or the secret lastmile:kubeconfig"))
    if onprem.kubeconfig_file is not None and onprem.render_directory is not None:
        problems.append(Problem("onprem.kubeconfig_file", onprem.kubeconfig_file,
                                "render mode talks to no cluster: a kubeconfig next to render_directory is refused "
                                "(the Kubernetes provider refuses the pair too)",
                                "drop kubeconfig_file to render, or render_directory to deploy"))
    return problems


def required_secrets(onprem: OnpremSettings, present: frozenset[str] | set[str]) -> list[Problem]:
    """The secret keys the on-prem topology needs: TLS is always on; a cluster needs credentials."""
    needed = (["tls_certificate", "tls_private_key"] if onprem.entry == Entry.INGRESS else []) + [
        "model_store_credentials"]
    if not onprem.render_mode and onprem.kubeconfig_file is None:
        needed.insert(0, "kubeconfig")
    why = {
        "kubeconfig": "the Kubernetes provider takes its cluster credentials from this secret only "
                      "(no ambient kubeconfig); omit it only in render mode (onprem.render_directory)",
        "tls_certificate": "the ingress terminates TLS with this certificate; there is no plain-HTTP route",
        "tls_private_key": "the ingress terminates TLS with this key; there is no plain-HTTP route",
        "model_store_credentials": "the pods fetch their pinned artifact from the model store with this read-only key",
    }
    return [Problem(key, MISSING, f"required secret is not set: {why[key]}",
                    f"pulumi config set --secret lastmile:{key} < <file>")
            for key in needed if key not in present]


def secrets_present(s: Sections) -> list[Problem]:
    """The loader passes the names of the secret keys that are set as the pseudo-section ``secret_keys``."""
    return required_secrets(s["onprem"], s["secret_keys"])


# (rule, sections it reads): see infra/settings/rules.py. A rule runs only when every section it reads
# parsed cleanly and is present.
ONPREM_RULES: list = [
    (images_by_digest, ("serving", "topology")),
    (shadow_slot_needs_sagemaker, ("serving", "topology")),
    (served_by_the_onprem_runtime, ("serving", "topology")),
    (restricted_security_context, ("onprem",)),
    (one_entry, ("onprem",)),
    (gateway_hostname, ("onprem", "environment")),
    (weights_need_kubernetes, ("serving", "topology")),
    (route_weights, ("serving", "onprem")),
    (narrow_networks, ("onprem",)),
    (deployer_group_not_system, ("onprem",)),
    (own_namespace, ("onprem",)),
    (project_paths, ("onprem",)),
    (secrets_present, ("onprem", "secret_keys")),
]
