"""Policy checks on Kubernetes manifests as plain functions (REFERENCE §4: a policy pack wires them,
tests call them directly). Input: the manifest's own camelCase dicts; output: violations as text.

- ``restricted_violations(pod_spec)``: the restricted Pod Security profile (Kubernetes' Pod Security
  Standards, baseline + restricted controls) plus lastmile's bar: read-only root filesystem,
  requests and limits, probes, images by digest, no service-account token.
- ``rbac_violations(rules)``: a namespaced Role's rules: no wildcards, no reading Secrets (get, list,
  watch, and patch or update, whose answer carries the data), no
  pods/exec, attach or port-forward, no token minting, no bind, escalate or impersonate.
checkov's RBAC checks look at ClusterRoles only (REFERENCE §4), hence the own check.
"""

from __future__ import annotations

import re
from typing import Any

RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
VOLUME_META_KEYS = frozenset({"name"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# A patch or update answers with the whole object, data included: on Secrets, writing is reading.
SECRET_READ_VERBS = frozenset({"get", "list", "watch", "patch", "update", "*"})
DANGEROUS_VERBS = frozenset({"bind", "escalate", "impersonate"})
DANGEROUS_RESOURCES = frozenset({
    "pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy", "nodes/proxy",
    "serviceaccounts/token", "pods/ephemeralcontainers",
})


def _containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or []:
            found.append((f"{kind}[{container.get('name')}]", container))
    return found


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """Everything in a pod spec that the restricted profile (or lastmile's bar above it) refuses."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(f"pod: {host} must not be true")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("pod: automountServiceAccountToken must be false")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - VOLUME_META_KEYS
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')}: type {sorted(kinds - RESTRICTED_VOLUME_TYPES)} not allowed")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl.get('name')} is not in the safe set")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod: runAsUser 0 (root)")
    if pod_sc.get("seLinuxOptions", {}).get("user") or pod_sc.get("seLinuxOptions", {}).get("role"):
        problems.append("pod: seLinuxOptions user/role must not be set")
    if (pod_sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append("pod: appArmorProfile Unconfined")
    containers = _containers(spec)
    if not containers:
        problems.append("pod: no containers")
    for where, container in containers:
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            problems.append(f"{where}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            problems.append(f"{where}: runAsUser 0 (root)")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ALLOWED_SECCOMP:
            problems.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost, got {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities must drop ALL")
        extra = [c for c in caps.get("add") or [] if c != "NET_BIND_SERVICE"]
        if extra:
            problems.append(f"{where}: capabilities add {extra} (only NET_BIND_SERVICE is allowed)")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{where}: procMount must be Default")
        if (sc.get("seLinuxOptions") or {}).get("user") or (sc.get("seLinuxOptions") or {}).get("role"):
            problems.append(f"{where}: seLinuxOptions user/role must not be set")
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            problems.append(f"{where}: appArmorProfile Unconfined")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort {port['hostPort']}")
        # lastmile's bar above the profile
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem must be true")
        resources = container.get("resources") or {}
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(bound) or {}):
                    problems.append(f"{where}: missing {bound}.{resource}")
        if not DIGEST.search(container.get("image") or ""):
            problems.append(f"{where}: image {container.get('image')!r} is not pinned by digest")
        if where.startswith("containers"):
            for probe in ("livenessProbe", "readinessProbe"):
                if not container.get(probe):
                    problems.append(f"{where}: missing {probe}")
    return problems


def rbac_violations(rules: list[dict[str, Any]]) -> list[str]:
    """What a namespaced Role must not grant."""
    problems = []
    for i, rule in enumerate(rules):
        groups, resources, verbs = (set(rule.get(k) or []) for k in ("apiGroups", "resources", "verbs"))
        where = f"rule {i} ({sorted(resources)})"
        for key, values in (("apiGroups", groups), ("resources", resources), ("verbs", verbs)):
            if "*" in values:
                problems.append(f"{where}: wildcard in {key}")
        if rule.get("nonResourceURLs"):
            problems.append(f"{where}: nonResourceURLs in a namespaced Role")
        if "secrets" in resources and "" in groups and verbs & SECRET_READ_VERBS:
            problems.append(f"{where}: reads Secrets ({sorted(verbs & SECRET_READ_VERBS)})")
        for resource in sorted(resources & DANGEROUS_RESOURCES):
            problems.append(f"{where}: grants {resource}")
        for verb in sorted(verbs & DANGEROUS_VERBS):
            problems.append(f"{where}: grants verb {verb}")
    return problems
