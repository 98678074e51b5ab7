"""Shared vocabulary of the Kubernetes components: labels, restricted security contexts, resources.

Everything here is secure by default: a container built with ``restricted_container_security`` and a
pod with ``restricted_pod_security`` meet the restricted Pod Security profile plus a read-only root
filesystem; there is no field that loosens them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import pulumi_kubernetes as k8s

PART_OF = "lastmile"
SLOT_LABEL = "lastmile.dev/slot"
COMPONENT_LABEL = "app.kubernetes.io/component"
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
DIGEST_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CIDR = re.compile(r"^[0-9a-fA-F:.]+/\d{1,3}$")

# How long an up waits for a slot's Deployment (and its progress deadline); the stack setting checks the
# same range. Not under a minute: with 15 s and 30 s, the Kubernetes provider (4.25.0) twice left an up
# hanging after the progress deadline had passed (docs/design-notes.md, Performance).
ROLLOUT_TIMEOUT_SECONDS_RANGE = (60, 28800)


class SeccompProfileType(StrEnum):
    """The seccomp profiles the restricted profile admits (Unconfined is not expressible)."""

    RUNTIME_DEFAULT = "RuntimeDefault"
    LOCALHOST = "Localhost"


@dataclass(frozen=True, kw_only=True)
class PodSecurity:
    """Identity and seccomp profile of a pod. Every value here is one the restricted profile admits.

    The UIDs default to 10001: non-root and outside the range of host users (checkov CKV_K8S_40).
    """

    run_as_user_id: int = 10001
    run_as_group_id: int = 10001
    fs_group_id: int = 10001
    seccomp_profile: SeccompProfileType = SeccompProfileType.RUNTIME_DEFAULT
    seccomp_localhost_profile: str | None = None
    """Path of the node-local profile; only with seccomp_profile LOCALHOST. Omitted: none."""

    def __post_init__(self) -> None:
        if self.run_as_user_id < 1:
            raise ValueError(f"run_as_user_id must be a non-root UID (>= 1), got {self.run_as_user_id}")
        for name in ("run_as_group_id", "fs_group_id"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if (self.seccomp_profile == SeccompProfileType.LOCALHOST) != (self.seccomp_localhost_profile is not None):
            raise ValueError("seccomp_localhost_profile is required with seccomp_profile LOCALHOST and only then")


@dataclass(frozen=True, kw_only=True)
class ContainerResources:
    """Requests equal limits (Guaranteed QoS): the quota and the scheduler see the true footprint."""

    cpu_millicores: int
    memory_mib: int

    def __post_init__(self) -> None:
        if not 10 <= self.cpu_millicores <= 64000:
            raise ValueError(f"cpu_millicores must be 10-64000, got {self.cpu_millicores}")
        if not 16 <= self.memory_mib <= 262144:
            raise ValueError(f"memory_mib must be 16-262144, got {self.memory_mib}")

    def quantities(self) -> dict[str, str]:
        return {"cpu": f"{self.cpu_millicores}m", "memory": f"{self.memory_mib}Mi"}

    def requirements(self) -> k8s.core.v1.ResourceRequirementsArgs:
        return k8s.core.v1.ResourceRequirementsArgs(requests=self.quantities(), limits=self.quantities())


def seccomp_profile(security: PodSecurity) -> k8s.core.v1.SeccompProfileArgs:
    return k8s.core.v1.SeccompProfileArgs(
        type=security.seccomp_profile.value, localhost_profile=security.seccomp_localhost_profile
    )


def restricted_pod_security(security: PodSecurity) -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=security.run_as_user_id,
        run_as_group=security.run_as_group_id,
        fs_group=security.fs_group_id,
        seccomp_profile=seccomp_profile(security),
    )


def restricted_container_security(security: PodSecurity) -> k8s.core.v1.SecurityContextArgs:
    """Set on every container too, so the container is safe even if copied out of this pod."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=security.run_as_user_id,
        run_as_group=security.run_as_group_id,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=seccomp_profile(security),
    )


def metadata(namespace, labels: dict[str, str], annotations: dict[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
    """Metadata of a namespaced child: auto-named (no hard-coded physical name), labelled."""
    return k8s.meta.v1.ObjectMetaArgs(namespace=namespace, labels=labels, annotations=annotations)


def base_labels(app: str, component: str) -> dict[str, str]:
    return {
        NAME_LABEL: app,
        COMPONENT_LABEL: component,
        PART_OF_LABEL: PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def require_dns_label(field: str, value: str) -> None:
    if not DNS_LABEL.match(value):
        raise ValueError(f"{field} must be a DNS label (lowercase alphanumerics and '-', <= 63), got {value!r}")


def require_cidrs(field: str, values: tuple[str, ...]) -> None:
    import ipaddress

    for value in values:
        network = ipaddress.ip_network(value, strict=True)  # raises ValueError naming the value
        if network.prefixlen == 0:
            raise ValueError(f"{field} must not contain a /0 network ({value}): it would allow everything")
