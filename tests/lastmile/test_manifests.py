"""Graph -> Kubernetes manifests."""

from __future__ import annotations

import pulumi
import pytest
import pulumi_kubernetes as k8s

from lastmile.manifests import api_version, has_masked_secret, manifests, write


def test_api_version_of_core_and_grouped_types():
    assert api_version("kubernetes:core/v1:Service") == ("v1", "Service")
    assert api_version("kubernetes:apps/v1:Deployment") == ("apps/v1", "Deployment")
    assert api_version("kubernetes:networking.k8s.io/v1:NetworkPolicy") == ("networking.k8s.io/v1", "NetworkPolicy")


def test_manifests_round_trip_inputs(mock_run, tmp_path):
    def program():
        ns = k8s.core.v1.Namespace("ns", metadata={"name": "serving", "labels": {"a": "b"}})
        k8s.core.v1.ConfigMap("cm", metadata={"namespace": "serving"}, data={"k": "v"},
                              opts=pulumi.ResourceOptions(depends_on=[ns]))
        k8s.core.v1.Secret("s", metadata={"name": "tls", "namespace": "serving"},
                           string_data={"key": pulumi.Output.secret("x")})

    graph = mock_run(program)
    found = manifests(graph)
    assert [m["kind"] for m in found] == ["ConfigMap", "Namespace", "Secret"]
    config_map = found[0]
    assert config_map["apiVersion"] == "v1" and config_map["data"] == {"k": "v"}
    assert config_map["metadata"]["name"].startswith("cm-")  # auto-named, deterministic stand-in
    assert has_masked_secret(found[2]) and not has_masked_secret(found[1])
    paths = write(graph, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        ["configmap-serving-" + config_map["metadata"]["name"] + ".yaml", "namespace-serving.yaml", "secret-serving-tls.yaml"])


def test_a_type_token_that_contradicts_the_inputs_is_refused():
    from lastmile.manifests import to_manifest
    from lastmile.synthesis import Node

    node = Node(urn="urn:x", type="kubernetes:apps/v1:Deployment", name="d", parent=None, custom=True,
                provider=None, protect=False, retain_on_delete=False, delete_before_replace=False,
                replace_on_changes=(), ignore_changes=(), additional_secret_outputs=(), depends_on=(),
                aliases=(), custom_timeouts={}, inputs={"apiVersion": "apps/v1", "kind": "StatefulSet"})
    with pytest.raises(ValueError, match="StatefulSet"):
        to_manifest(node)
