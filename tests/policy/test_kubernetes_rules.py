"""The Kubernetes rules (policy/rules/kubernetes.py, the ones the CrossGuard pack enforces) on one pod
spec or one Role at a time: a clean spec passes, and each control of the restricted Pod Security
profile, lastmile's bar above it and the RBAC rules is shown a violation of its own."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.k8s.identity import DEPLOYER_RULES
from policy.rules import evaluate, kubernetes

STACK = "urn:pulumi:test-dev::lastmile::"


def findings(resource_type: str, inputs: dict[str, Any]) -> list[str]:
    """The messages of every Kubernetes rule about one resource (a dev graph: no availability rule)."""
    resource = {"urn": f"{STACK}{resource_type}::under-test", "type": resource_type, "name": "under-test",
                "options": {}, "inputs": inputs}
    return [f.message for f in evaluate({"stack": "test-dev", "resources": [resource]}, kubernetes.RULES)]


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    return findings("kubernetes:apps/v1:Deployment", {"spec": {"template": {"spec": spec}}})


def rbac_violations(rules: list[dict[str, Any]]) -> list[str]:
    return findings("kubernetes:rbac.authorization.k8s.io/v1:Role", {"rules": rules})

DIGEST = "registry.example/server@sha256:" + "a" * 64
CONTAINER = {
    "name": "server",
    "image": DIGEST,
    "securityContext": {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    },
    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
    "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
}
POD = {
    "serviceAccountName": "server",
    "automountServiceAccountToken": False,
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [CONTAINER],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def mutated(path: list, value) -> dict:
    pod = copy.deepcopy(POD)
    node = pod
    for part in path[:-1]:
        node = node[part]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return pod


def test_a_clean_pod_passes():
    assert restricted_violations(POD) == []


@pytest.mark.parametrize(("path", "value", "expected"), [
    (["hostNetwork"], True, "hostNetwork"),
    (["automountServiceAccountToken"], True, "automountServiceAccountToken"),
    (["serviceAccountName"], KeyError, "default ServiceAccount"),
    (["volumes", 0], {"name": "host", "hostPath": {"path": "/"}}, "hostPath"),
    (["securityContext", "runAsUser"], 0, "UID 0"),
    (["securityContext", "sysctls"], [{"name": "kernel.msgmax", "value": "1"}], "sysctl kernel.msgmax"),
    (["securityContext", "seLinuxOptions"], {"user": "system_u"}, "pod: seLinuxOptions"),
    (["securityContext", "appArmorProfile"], {"type": "Unconfined"}, "pod: appArmorProfile is Unconfined"),
    (["containers", 0, "securityContext", "privileged"], True, "privileged"),
    (["containers", 0, "securityContext", "allowPrivilegeEscalation"], True, "allowPrivilegeEscalation"),
    (["containers", 0, "securityContext", "runAsNonRoot"], False, "runAsNonRoot"),
    (["containers", 0, "securityContext", "seccompProfile"], {"type": "Unconfined"}, "seccompProfile"),
    (["containers", 0, "securityContext", "capabilities"], {"drop": ["NET_RAW"]}, "drop ALL"),
    (["containers", 0, "securityContext", "capabilities"], {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "SYS_ADMIN"),
    (["containers", 0, "securityContext", "procMount"], "Unmasked", "procMount is Unmasked"),
    (["containers", 0, "securityContext", "seLinuxOptions"], {"role": "sysadm_r"}, "server: seLinuxOptions"),
    (["containers", 0, "securityContext", "appArmorProfile"], {"type": "Unconfined"}, "server: appArmorProfile"),
    (["containers", 0, "securityContext", "readOnlyRootFilesystem"], False, "readOnlyRootFilesystem"),
    (["containers", 0, "resources"], {"requests": {"cpu": "1"}}, "no limits for cpu, memory"),
    (["containers", 0, "image"], "registry.example/server:1.0", "digest"),
    (["containers", 0, "readinessProbe"], KeyError, "readinessProbe"),
    (["containers", 0, "ports"], [{"containerPort": 80, "hostPort": 80}], "hostPort"),
    (["ephemeralContainers"], [{"name": "debug", "image": DIGEST, "securityContext": {"privileged": True}}],
     "ephemeral container debug: privileged"),
])
def test_each_restricted_control_is_enforced(path, value, expected):
    problems = restricted_violations(mutated(path, value))
    assert any(expected in p for p in problems), problems


def test_pod_level_seccomp_and_non_root_cover_containers_without_their_own():
    pod = copy.deepcopy(POD)
    del pod["containers"][0]["securityContext"]["seccompProfile"]
    del pod["containers"][0]["securityContext"]["runAsNonRoot"]
    assert restricted_violations(pod) == []
    del pod["securityContext"]["seccompProfile"]
    assert any("seccompProfile" in p for p in restricted_violations(pod))


def test_init_containers_are_checked_too():
    pod = copy.deepcopy(POD)
    init = copy.deepcopy(CONTAINER) | {"name": "init"}
    init["securityContext"]["allowPrivilegeEscalation"] = True
    pod["initContainers"] = [init]
    assert any("init container init" in p for p in restricted_violations(pod))


def as_rules(triples):
    return [{"apiGroups": list(g), "resources": list(r), "verbs": list(v)} for g, r, v in triples]


def test_the_deployer_rules_pass_the_rbac_check():
    assert rbac_violations(as_rules(DEPLOYER_RULES)) == []


@pytest.mark.parametrize(("rule", "expected"), [
    ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}, "wildcard in apiGroups"),
    ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, "wildcard in resources"),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}, "wildcard in verbs"),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}, "reads secrets (list)"),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["patch"]}, "reads secrets (patch)"),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["update"], "resourceNames": ["tls"]}, "reads secrets (update)"),
    ({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}, "pods/exec"),
    ({"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]}, "services/proxy"),
    ({"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]}, "pods/ephemeralcontainers"),
    ({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}, "serviceaccounts/token"),
    ({"apiGroups": [""], "resources": [], "verbs": ["get"], "nonResourceURLs": ["/metrics"]}, "nonResourceURLs"),
    ({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}, "escalate"),
    ({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["bind"]}, "bind"),
    ({"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}, "impersonate"),
])
def test_each_rbac_rule_is_enforced(rule, expected):
    assert any(expected in p for p in rbac_violations([rule])), rbac_violations([rule])


def test_one_named_secret_may_be_read_with_get():
    assert rbac_violations([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["tls"]}]) == []
