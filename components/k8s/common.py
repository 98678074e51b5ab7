"""Shared vocabulary of the Kubernetes components: labels, restricted security contexts, resources.

Everything here is secure by default: a container built with ``restricted_container_security`` and a
pod with ``restricted_pod_security`` meet the restricted Pod Security profile plus a read-only root
filesystem; there is no field that loosens them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import pulumi_kubernetes as k8s

from components.problems import MISSING, Problem, check_range, raise_problems

PART_OF = "lastmile"
SLOT_LABEL = "lastmile.dev/slot"
COMPONENT_LABEL = "app.kubernetes.io/component"
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"

# Image references: the OCI distribution reference grammar (distribution/reference, which registries, the
# container runtimes and so the kubelet parse with), written once here.
#   reference  := [registry "/"] path-component ("/" path-component)* [":" tag] ["@" digest]
#   registry   := host [":" port]          the first component, when it has a "." or ":", is "localhost",
#                                          or has an uppercase letter (else it is a path: docker.io's)
#   host       := domain-component ("." domain-component)* | "[" ipv6 "]"
#   path-component := [a-z0-9]+ (separator [a-z0-9]+)*    separator := "." | "_" | "__" | "-"+
#   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
#   digest     := algorithm ":" hex        the grammar also admits sha512; lastmile pins by sha256 (64
#                                          lowercase hex), as the manifest and the policy pack do
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
DIGEST_ALGORITHMS = {"sha256": 64}
IMAGE_NAME_MAX = 255
DIGEST_IMAGE = re.compile(rf"^(?:{_REGISTRY}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?"
                          r"@sha256:[0-9a-f]{64}$")
"""A reference pinned by sha256 digest, as a pattern (``check_image_reference`` says what is wrong)."""
_IMAGE_ALLOWED = ("an OCI image reference [registry[:port]/]path/name[:tag]@sha256:<64 lowercase hex>: path "
                  "components lowercase letters and digits joined by '.', '_', '__' or '-'; a registry host of "
                  "letters, digits, '-' and '.'")
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
        problems = [*check_range("run_as_user_id", self.run_as_user_id, 1, why=" (a non-root UID)"),
                    *check_range("run_as_group_id", self.run_as_group_id, 0),
                    *check_range("fs_group_id", self.fs_group_id, 0)]
        localhost, profile = self.seccomp_profile == SeccompProfileType.LOCALHOST, self.seccomp_localhost_profile
        if localhost != (profile is not None):
            problems.append(Problem("seccomp_localhost_profile", MISSING if localhost else profile,
                                    "seccomp_localhost_profile is required with seccomp_profile LOCALHOST and only "
                                    "then", "give the profile's path" if localhost else "omit it or use LOCALHOST"))
        raise_problems("PodSecurity", problems)


@dataclass(frozen=True, kw_only=True)
class ContainerResources:
    """Requests equal limits (Guaranteed QoS): the quota and the scheduler see the true footprint."""

    cpu_millicores: int
    memory_mib: int

    def __post_init__(self) -> None:
        raise_problems("ContainerResources", [*check_range("cpu_millicores", self.cpu_millicores, 10, 64000),
                                              *check_range("memory_mib", self.memory_mib, 16, 262144)])

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


def image_reference_problem(image: str, *, digest_required: bool = True) -> str | None:
    """What in ``image`` breaks the OCI distribution reference grammar (above); None when nothing does."""
    if not isinstance(image, str) or not image:
        return "empty"
    name, at, digest = image.partition("@")
    if at:
        algorithm, colon, hex_digits = digest.partition(":")
        length = DIGEST_ALGORITHMS.get(algorithm)
        if not colon or length is None:
            return f"digest {digest!r}: the algorithm must be one of {', '.join(DIGEST_ALGORITHMS)} (<algorithm>:<hex>)"
        if len(hex_digits) != length or not re.fullmatch(r"[0-9a-f]+", hex_digits):
            return f"digest {digest!r}: {algorithm} takes exactly {length} lowercase hex digits, not {len(hex_digits)}"
    elif digest_required:
        return "not pinned by digest (no @sha256:...): a tag can be re-pushed under a running release"
    last_slash = name.rfind("/")
    if ":" in name[last_slash + 1:]:
        name, _, tag = name.rpartition(":")
        if not re.fullmatch(_TAG, tag):
            return f"tag {tag!r}: letters, digits, '_', '.', '-', not starting with '.' or '-', at most 128"
    components = name.split("/")
    first = components[0]
    if len(components) > 1 and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        port = first.rpartition(":")[2] if ":" in first.rpartition("]")[2] else ""
        if not re.fullmatch(_REGISTRY, first) or (port and not 0 < int(port) <= 65535):
            return f"registry {first!r}: not a host[:port] (letters, digits, '-' inside dot-separated labels)"
        components = components[1:]
    for index, component in enumerate(components):
        if not re.fullmatch(_PATH_COMPONENT, component):
            return (f"repository path component {component!r}: lowercase letters and digits, joined by one '.', "
                    "'_' or '__' or by '-'s" + (" (uppercase is not allowed)" if component.lower() != component
                                               else ""))
    if len(name) > IMAGE_NAME_MAX:
        return f"the name is {len(name)} characters; at most {IMAGE_NAME_MAX}"
    return None


def check_image_reference(field: str, image: str, *, digest_required: bool = True) -> list[Problem]:
    """The one image check of the components' Args and the stack settings: the OCI distribution reference
    grammar (what a kubelet would refuse to pull is refused here), pinned by digest unless told otherwise."""
    problem = image_reference_problem(image, digest_required=digest_required)
    if problem is None:
        return []
    return [Problem(field, image, f"{problem}; allowed: {_IMAGE_ALLOWED}",
                    "copy the reference the registry gives for the pushed image, e.g. "
                    "docker.io/seldonio/mlserver@sha256:<digest> (crane digest / skopeo inspect resolve a tag)")]


def check_dns_label(field: str, value: str) -> list[Problem]:
    if DNS_LABEL.match(value):
        return []
    return [Problem(field, value, "must be a DNS label (lowercase alphanumerics and '-', <= 63)",
                    "use e.g. lastmile-serving")]


def check_cidrs(field: str, values: Sequence[str]) -> list[Problem]:
    """Each value is a network without host bits, and none is a /0 (it would allow everything). The one
    check of a NetworkPolicy's CIDRs, for the components' Args and the on-prem stack settings alike."""
    problems = []
    for index, value in enumerate(values):
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            problems.append(Problem(f"{field}.{index}", value, f"not a CIDR network: {error}",
                                    "write it as e.g. 10.20.0.0/16"))
            continue
        if network.prefixlen == 0:
            problems.append(Problem(f"{field}.{index}", value, "a /0 network would allow everything",
                                    "name the networks that need access"))
    return problems
