"""Kubernetes: Pod Security Standards (restricted) and lastmile's bar above them, RBAC, isolation, availability."""

from __future__ import annotations

import re
from typing import Any, Iterable

from policy.rules.core import (
    as_list,
    containers,
    dependencies,
    depends_on,
    get,
    GraphDict,
    inputs,
    K8S_CLUSTER_ROLE_BINDING,
    K8S_CRONJOB,
    K8S_HPA,
    k8s_name,
    k8s_namespace,
    K8S_NAMESPACE,
    K8S_NETWORK_POLICY,
    K8S_PDB,
    K8S_ROLES,
    K8S_SCALED,
    K8S_SERVICE_ACCOUNT,
    K8S_WORKLOADS,
    known,
    pod_labels,
    pod_spec,
    PROD,
    Resource,
    resources,
    Rule,
    same_namespace,
)


PSS_LABEL = "pod-security.kubernetes.io/enforce"
RESTRICTED_VOLUME_KEYS = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                          "projected", "secret", "name"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# The sysctls the Pod Security Standards call safe (baseline "Sysctls"): namespaced, no host effect.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})


def _confinement(where: str, ctx: dict[str, Any]) -> Iterable[str]:
    """SELinux and AppArmor settings the baseline profile forbids, on a pod or a container."""
    selinux = ctx.get("seLinuxOptions") or {}
    if selinux.get("user") or selinux.get("role"):
        yield f"{where}: seLinuxOptions sets user or role; the baseline profile allows only type and level"
    if get(ctx, "appArmorProfile.type") == "Unconfined":
        yield f"{where}: appArmorProfile is Unconfined"


def k8s_namespace_pss(r: Resource, g: GraphDict) -> Iterable[str]:
    labels = get(inputs(r), "metadata.labels", {}) or {}
    if labels.get(PSS_LABEL) != "restricted":
        yield f"namespace is not labelled {PSS_LABEL}: restricted (found {labels.get(PSS_LABEL)!r})"


def k8s_pod_restricted(r: Resource, g: GraphDict) -> Iterable[str]:
    spec = pod_spec(r)
    pod_ctx = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            yield f"{flag} is on; the restricted profile forbids host namespaces"
    for volume in as_list(spec.get("volumes")):
        kinds = sorted(set(volume) - RESTRICTED_VOLUME_KEYS)
        if kinds:
            yield f"volume {volume.get('name')} is {', '.join(kinds)}; restricted allows {', '.join(sorted(RESTRICTED_VOLUME_KEYS - {'name'}))}"
    for sysctl in as_list(pod_ctx.get("sysctls")):
        if isinstance(sysctl, dict) and sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"sysctl {sysctl.get('name')} is not in the safe set"
    yield from _confinement("pod", pod_ctx)
    pod_seccomp = get(pod_ctx, "seccompProfile.type")
    for label, c in containers(spec):
        ctx = c.get("securityContext") or {}
        yield from _confinement(label, ctx)
        if ctx.get("procMount", "Default") != "Default":
            yield f"{label}: procMount is {ctx.get('procMount')}; only Default is allowed"
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            yield f"{label}: runAsNonRoot is not true"
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            yield f"{label}: runs as UID 0"
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield f"{label}: allowPrivilegeEscalation is not false"
        if ctx.get("privileged"):
            yield f"{label}: privileged"
        caps = ctx.get("capabilities") or {}
        if "ALL" not in as_list(caps.get("drop")):
            yield f"{label}: capabilities do not drop ALL"
        added = sorted(set(as_list(caps.get("add"))) - {"NET_BIND_SERVICE"})
        if added:
            yield f"{label}: adds capabilities {', '.join(added)}"
        if get(ctx, "seccompProfile.type", pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            yield f"{label}: seccompProfile is not RuntimeDefault"
        if any(p.get("hostPort") for p in as_list(c.get("ports")) if isinstance(p, dict)):
            yield f"{label}: uses a hostPort"


def k8s_readonly_root(r: Resource, g: GraphDict) -> Iterable[str]:
    for label, c in containers(pod_spec(r)):
        if get(c, "securityContext.readOnlyRootFilesystem") is not True:
            yield f"{label}: readOnlyRootFilesystem is not true (mount an emptyDir where it writes)"


def k8s_resources(r: Resource, g: GraphDict) -> Iterable[str]:
    for label, c in containers(pod_spec(r)):
        for kind in ("requests", "limits"):
            missing = [res for res in ("cpu", "memory") if not known(get(c, f"resources.{kind}.{res}"))]
            if missing:
                yield f"{label}: no {kind} for {', '.join(missing)}"


def k8s_probes(r: Resource, g: GraphDict) -> Iterable[str]:
    if r["type"] in ("kubernetes:batch/v1:Job", K8S_CRONJOB):
        return
    for label, c in containers(pod_spec(r), init=False):
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
        if missing:
            yield f"{label}: no {' and no '.join(missing)}"


def k8s_image_digest(r: Resource, g: GraphDict) -> Iterable[str]:
    for label, c in containers(pod_spec(r)):
        image = str(c.get("image", ""))
        if not DIGEST.search(image):
            yield f"{label}: image {image or '(none)'} is not pinned by @sha256 digest"


def k8s_service_account(r: Resource, g: GraphDict) -> Iterable[str]:
    if r["type"] == K8S_SERVICE_ACCOUNT:
        if inputs(r).get("automountServiceAccountToken") is not False:
            yield "automountServiceAccountToken is not false; pods get an API token they do not need"
        return
    spec = pod_spec(r)
    if spec.get("serviceAccountName") in (None, "", "default"):
        yield "the pod runs as the namespace's default ServiceAccount; give it a dedicated one"
    if spec.get("automountServiceAccountToken") is True:
        yield "the pod mounts a ServiceAccount token; set automountServiceAccountToken false"


def _is_default_deny(policy: Resource) -> bool:
    spec = get(inputs(policy), "spec", {}) or {}
    return (not (spec.get("podSelector") or {}).get("matchLabels") and not (spec.get("podSelector") or {}).get("matchExpressions")
            and {"Ingress", "Egress"} <= set(as_list(spec.get("policyTypes")))
            and not spec.get("ingress") and not spec.get("egress"))


def k8s_default_deny(r: Resource, g: GraphDict) -> Iterable[str]:
    name = k8s_name(r)
    policies = [p for p in resources(g, K8S_NETWORK_POLICY)
                if r["urn"] in depends_on(p) or (known(name) and k8s_namespace(p) == name)]
    if not any(_is_default_deny(p) for p in policies):
        yield "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules) in this namespace"


RBAC_ESCALATION_VERBS = {"bind", "escalate", "impersonate"}
# The answer to a patch or update carries the whole object: on Secrets, writing is reading.
RBAC_SECRET_READ_VERBS = {"get", "list", "watch", "patch", "update", "*"}
# Subresources that run code in, proxy to, or mint credentials for what they name.
RBAC_EXEC = {"pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy", "nodes/proxy",
             "serviceaccounts/token", "pods/ephemeralcontainers"}


def k8s_rbac_least_privilege(r: Resource, g: GraphDict) -> Iterable[str]:
    for i, rule in enumerate(as_list(inputs(r).get("rules"))):
        verbs = {str(v) for v in as_list(rule.get("verbs"))}
        kinds = {str(x) for x in as_list(rule.get("resources"))}
        groups = {str(x) for x in as_list(rule.get("apiGroups"))}
        where = f"rule {i}"
        for field, values in (("verbs", verbs), ("resources", kinds), ("apiGroups", groups)):
            if "*" in values:
                yield f"{where}: wildcard in {field}; list what is needed"
        read = verbs & RBAC_SECRET_READ_VERBS
        if "secrets" in kinds and read and (not rule.get("resourceNames") or read - {"get"}):
            yield f"{where}: reads secrets ({', '.join(sorted(read))}); name them with resourceNames and get only"
        if rule.get("nonResourceURLs") and r["type"] != K8S_ROLES[1]:  # ClusterRoles may grant nonResourceURLs
            yield f"{where}: nonResourceURLs in a namespaced Role"
        if kinds & RBAC_EXEC:
            yield f"{where}: grants {', '.join(sorted(kinds & RBAC_EXEC))}"
        if verbs & RBAC_ESCALATION_VERBS:
            yield f"{where}: grants {', '.join(sorted(verbs & RBAC_ESCALATION_VERBS))}"


def k8s_rbac_namespaced(r: Resource, g: GraphDict) -> Iterable[str]:
    yield "a ClusterRoleBinding grants cluster-wide; bind a namespaced Role with a RoleBinding"


def _selects(selector_owner: Resource, labels: dict[str, str]) -> bool:
    match = get(inputs(selector_owner), "spec.selector.matchLabels") or {}
    return bool(match) and match.items() <= labels.items()


def k8s_availability(r: Resource, g: GraphDict) -> Iterable[str]:
    props, name = inputs(r), k8s_name(r)
    hpas = [h for h in resources(g, K8S_HPA)
            if r["urn"] in depends_on(h) or (known(name) and get(inputs(h), "spec.scaleTargetRef.name") == name)]
    floor = min((get(inputs(h), "spec.minReplicas", 1) for h in hpas), default=None)
    replicas = floor if floor is not None else get(props, "spec.replicas", 1)
    if replicas < 2:
        yield f"runs {replicas} replica(s); prod needs >= 2 (and an HPA floor of >= 2)"
    labels = pod_labels(r)
    pdbs = [p for p in resources(g, K8S_PDB) if same_namespace(p, r, g) and _selects(p, labels)]
    if not pdbs:
        yield "no PodDisruptionBudget selects these pods"
    spec = pod_spec(r)
    if not spec.get("topologySpreadConstraints") and not get(spec, "affinity.podAntiAffinity"):
        yield "pods are not spread (no topologySpreadConstraints or podAntiAffinity)"


# ---------------------------------------------------------------------------------------------
# Gateway API: the routes the stack creates, and any Gateway (it creates none; a team that adds one is held to TLS).

K8S_ROUTES = ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "kubernetes:gateway.networking.k8s.io/v1:GRPCRoute")
K8S_GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _backend_refs(route: Resource) -> list[dict[str, Any]]:
    return [ref for rule in as_list(get(inputs(route), "spec.rules")) if isinstance(rule, dict)
            for ref in as_list(rule.get("backendRefs")) if isinstance(ref, dict)]


def k8s_route_own_services(r: Resource, g: GraphDict) -> Iterable[str]:
    """A backend is a Service of the route's own namespace (no cross-namespace reference, no other kind)."""
    own = k8s_namespace(r)
    for ref in _backend_refs(r):
        if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
            yield f"backendRef {ref.get('name')} is a {ref.get('group', '')}/{ref.get('kind')}; route to Services only"
        namespace = ref.get("namespace")
        if namespace is not None and (not known(own) or namespace != own):
            yield f"backendRef {ref.get('name')} is in namespace {namespace}; route only to the namespace's own Services"


def k8s_route_weights(r: Resource, g: GraphDict) -> Iterable[str]:
    """Each rule's weights sum to a positive total (Gateway API's default weight is 1)."""
    for i, rule in enumerate(as_list(get(inputs(r), "spec.rules"))):
        weights = [ref.get("weight", 1) for ref in as_list((rule or {}).get("backendRefs")) if isinstance(ref, dict)]
        if all(known(w) for w in weights) and sum(weights) <= 0:
            yield f"rule {i}: the backendRefs' weights sum to {sum(weights)}; every request would go nowhere"


def k8s_route_hostnames(r: Resource, g: GraphDict) -> Iterable[str]:
    """Prod routes name their hosts: no wildcard, and no route without hostnames (that matches every host)."""
    hostnames = as_list(get(inputs(r), "spec.hostnames"))
    if not hostnames:
        yield "no hostnames: the route answers for every host of its listener; name the host clients use"
    for hostname in hostnames:
        if isinstance(hostname, str) and "*" in hostname:
            yield f"hostname {hostname} is a wildcard; a prod route names its one host"


def k8s_route_to_released_slot(r: Resource, g: GraphDict) -> Iterable[str]:
    """A backend Service with weight selects pods of a Deployment the stack deploys (a slot with a release)."""
    services = dependencies(r, g, K8S_SERVICE)
    deployed = [pod_labels(d) for d in resources(g, K8S_DEPLOYMENT)]
    for service in services:
        selector = get(inputs(service), "spec.selector") or {}
        if not any(selector and selector.items() <= labels.items() for labels in deployed):
            yield f"backend Service {k8s_name(service) or service.get('name')} selects no Deployment of the stack: " \
                  "no route to a slot without a release"


def k8s_gateway_tls(r: Resource, g: GraphDict) -> Iterable[str]:
    """A Gateway the stack creates terminates TLS on every listener (HTTPS/TLS with a certificate)."""
    for listener in as_list(get(inputs(r), "spec.listeners")):
        name, protocol = listener.get("name"), listener.get("protocol")
        if protocol not in ("HTTPS", "TLS"):
            yield f"listener {name} speaks {protocol}; serve HTTPS or TLS only"
        elif protocol == "HTTPS" and not as_list(get(listener, "tls.certificateRefs")):
            yield f"listener {name} has no tls.certificateRefs"


RULES: tuple[Rule, ...] = (
    Rule("k8s-namespace-restricted", "docs/security-checklist.md §Kubernetes (Pod Security Standards)",
         "namespace labelled pod-security.kubernetes.io/enforce: restricted", (K8S_NAMESPACE,), k8s_namespace_pss),
    Rule("k8s-pod-restricted-profile", "docs/security-checklist.md §Kubernetes (PSS restricted)",
         "runAsNonRoot, no privilege escalation, drop ALL, seccomp RuntimeDefault, restricted volumes", K8S_WORKLOADS,
         k8s_pod_restricted),
    Rule("k8s-readonly-root-filesystem", "docs/security-checklist.md §Kubernetes", "readOnlyRootFilesystem", K8S_WORKLOADS,
         k8s_readonly_root),
    Rule("k8s-resources", "docs/security-checklist.md §Kubernetes", "requests and limits", K8S_WORKLOADS, k8s_resources),
    Rule("k8s-probes", "docs/security-checklist.md §Kubernetes", "readiness and liveness probes", K8S_WORKLOADS, k8s_probes),
    Rule("k8s-image-digest", "docs/security-checklist.md §Kubernetes", "images by digest", K8S_WORKLOADS, k8s_image_digest),
    Rule("k8s-service-account", "docs/security-checklist.md §Kubernetes",
         "dedicated ServiceAccount with automountServiceAccountToken: false", (K8S_SERVICE_ACCOUNT, *K8S_WORKLOADS),
         k8s_service_account),
    Rule("k8s-default-deny", "docs/security-checklist.md §Kubernetes", "default-deny NetworkPolicy", (K8S_NAMESPACE,), k8s_default_deny),
    Rule("k8s-rbac-least-privilege", "docs/security-checklist.md §Kubernetes (RBAC)",
         "no wildcards, no secrets read or written, no exec/attach/proxy/token subresources, "
         "no bind/escalate/impersonate", K8S_ROLES, k8s_rbac_least_privilege),
    Rule("k8s-rbac-namespaced", "docs/security-checklist.md §Kubernetes (RBAC)", "bindings namespaced", (K8S_CLUSTER_ROLE_BINDING,),
         k8s_rbac_namespaced),
    Rule("k8s-availability", "docs/security-checklist.md §Kubernetes", ">= 2 replicas, PodDisruptionBudget, spread (prod)", K8S_SCALED,
         k8s_availability, PROD),
    Rule("k8s-route-own-services", "docs/security-checklist.md §Kubernetes", "routes only to the namespace's own Services",
         K8S_ROUTES, k8s_route_own_services),
    Rule("k8s-route-weights", "docs/security-checklist.md §Kubernetes", "route weights sum to a positive total", K8S_ROUTES,
         k8s_route_weights),
    Rule("k8s-route-hostnames", "docs/security-checklist.md §Kubernetes", "no wildcard hostnames (prod)", K8S_ROUTES,
         k8s_route_hostnames, PROD),
    Rule("k8s-route-released-slot", "docs/security-checklist.md §Kubernetes", "no route to a slot without a release",
         K8S_ROUTES, k8s_route_to_released_slot),
    Rule("k8s-gateway-tls", "docs/security-checklist.md §Kubernetes", "TLS on every listener the stack creates",
         (K8S_GATEWAY,), k8s_gateway_tls),
)
