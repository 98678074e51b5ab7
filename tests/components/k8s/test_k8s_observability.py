"""ServingObservability: scraping, per-slot alert rules with the rollback thresholds, dashboards,
a scrape-only network allow, valid manifests and no new privileges."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from components.aws.alarms import AlarmThresholds
from components.k8s.model_server import server_selector
from components.k8s.observability import (
    METRICS_PORT,
    AlertRouting,
    ServingObservability,
    ServingObservabilityArgs,
    alert_groups,
)
from components.problems import ArgsError
from components.slots import Slot
from args_errors import reported_fields
from lastmile.manifests import manifests
from lastmile.synthesis import Graph
from policy.rules import K8S_WORKLOADS, evaluate

REPO = Path(__file__).resolve().parents[3]
KUBERNETES_VALIDATE = REPO / ".venv" / "bin" / "kubernetes-validate"
KUBERNETES_VERSION = "1.33.0"
NAMESPACE = "lastmile-serving"
THRESHOLDS = AlarmThresholds(error_5xx_count=3, latency_p99_ms=300, evaluation_minutes=2)
TOPIC = "arn:aws:sns:eu-west-1:123456789012:lastmile-alerts"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def args(**overrides) -> ServingObservabilityArgs:
    values = dict(
        namespace=NAMESPACE, model_name="iris-classifier", slots=(Slot.BLUE, Slot.GREEN), thresholds=THRESHOLDS,
        routing=AlertRouting(route="lastmile-onprem-prod", emails=("ml-oncall@example.com",),
                             https_endpoints=("https://hooks.example.com/lastmile",)),
        monitoring_namespace="monitoring", prometheus_operator=True,
        prometheus_selector_labels={"release": "kube-prometheus-stack"})
    return ServingObservabilityArgs(**(values | overrides))


def synth(mock_run, **overrides) -> Graph:
    def program():
        observability = ServingObservability("iris-observability", args(**overrides))
        return {"metrics_service_name": observability.metrics_service_name}

    return mock_run(program, stack="onprem-prod")


def by_kind(graph: Graph) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for manifest in manifests(graph):
        found.setdefault(manifest["kind"], []).append(manifest)
    return found


def test_operator_mode_builds_monitor_rules_service_policy_and_dashboard(mock_run):
    graph = synth(mock_run)
    component = graph.one("lastmile:k8s:ServingObservability")
    assert all(n.parent == component.urn for n in graph.nodes.values() if n.urn != component.urn)
    assert {n.name for n in graph.children(component)} == {
        "iris-observability-metrics", "iris-observability-allow-scrape", "iris-observability-monitor",
        "iris-observability-rules", "iris-observability-dashboard"}
    kinds = by_kind(graph)
    assert sorted(kinds) == ["ConfigMap", "NetworkPolicy", "PrometheusRule", "Service", "ServiceMonitor"]
    (monitor,) = kinds["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == ("metrics", "/metrics", "http")
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"slot", "model"}
    (service,) = kinds["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8082, "targetPort": 8082, "protocol": "TCP"}]
    assert service["spec"]["selector"] == server_selector("iris-classifier")
    assert service["spec"]["clusterIP"] == "None" and "annotations" not in service["metadata"]


def test_rules_per_slot_use_the_rollback_thresholds_and_route_labels(mock_run):
    (rules,) = by_kind(synth(mock_run, routing=AlertRouting(route="lastmile-hybrid-prod", sns_topic_arn=TOPIC,
                                                             emails=("ml-oncall@example.com",))))["PrometheusRule"]
    groups = rules["spec"]["groups"]
    assert [g["name"] for g in groups] == ["lastmile-iris-classifier-blue", "lastmile-iris-classifier-green"]
    for group, slot in zip(groups, ("blue", "green")):
        errors, latency = group["rules"]
        assert errors["expr"].endswith(f"* 60 >= {THRESHOLDS.error_5xx_count}") and 'status_code=~"5.."' in errors["expr"]
        assert latency["expr"].startswith("histogram_quantile(0.99")
        assert latency["expr"].endswith(f"* 1000 >= {THRESHOLDS.latency_p99_ms}")
        for rule in group["rules"]:
            assert f'slot="{slot}"' in rule["expr"] and f'namespace="{NAMESPACE}"' in rule["expr"]
            assert rule["for"] == f"{THRESHOLDS.evaluation_minutes}m"
            assert rule["labels"] == {"severity": "critical", "lastmile_route": "lastmile-hybrid-prod",
                                      "lastmile_model": "iris-classifier", "lastmile_slot": slot,
                                      "sns_topic_arn": TOPIC}
            assert rule["annotations"]["notify_emails"] == "ml-oncall@example.com"


def test_plain_prometheus_mode_annotates_the_service_and_ships_the_same_rules(mock_run):
    kinds = by_kind(synth(mock_run, prometheus_operator=False))
    assert not CRD_KINDS & set(kinds)
    (service,) = kinds["Service"]
    assert service["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8082",
                                                  "prometheus.io/path": "/metrics"}
    rules_map = next(m for m in kinds["ConfigMap"] if m["metadata"]["labels"].get("lastmile.dev/prometheus") == "rules")
    rules = yaml.safe_load(rules_map["data"]["lastmile-iris-classifier.rules.yaml"])
    assert rules["groups"] == alert_groups(args(prometheus_operator=False), NAMESPACE, None)
    scrape = yaml.safe_load(rules_map["data"]["lastmile-iris-classifier.scrape.yaml"])["scrape_configs"][0]
    assert {c.get("target_label") for c in scrape["relabel_configs"]} >= {"slot", "model", "namespace"}


def test_dashboard_config_map_is_picked_up_by_grafana(mock_run):
    dashboards = [m for m in by_kind(synth(mock_run))["ConfigMap"]
                  if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    (dashboard,) = dashboards
    body = json.loads(dashboard["data"]["lastmile-iris-classifier.json"])
    exprs = [t["expr"] for panel in body["panels"] for t in panel["targets"]]
    assert any("rest_server_requests_total" in e for e in exprs)
    assert any("histogram_quantile(0.99" in e for e in exprs)
    steps = [p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", []) for p in body["panels"]]
    assert [s[-1]["value"] for s in steps if s] == [THRESHOLDS.error_5xx_count, THRESHOLDS.latency_p99_ms]


def test_network_policy_lets_only_the_monitoring_namespace_reach_only_the_metrics_port(mock_run):
    (policy,) = by_kind(synth(mock_run))["NetworkPolicy"]
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": server_selector("iris-classifier")}
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": METRICS_PORT, "protocol": "TCP"}]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


@pytest.mark.parametrize("operator", [True, False])
def test_no_workload_no_rbac_and_no_policy_findings(mock_run, operator):
    graph = synth(mock_run, prometheus_operator=operator)
    assert not [n for n in graph.nodes.values() if n.type in K8S_WORKLOADS or "rbac" in n.type]
    findings = evaluate(graph.to_json())
    assert findings == [], "\n".join(f.render() for f in findings)


@pytest.mark.parametrize("operator", [True, False])
def test_non_crd_manifests_pass_strict_schema_validation(mock_run, tmp_path, operator):
    if not KUBERNETES_VALIDATE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KUBERNETES_VALIDATE} is missing in CI")
        pytest.skip("kubernetes-validate is not installed")
    paths = []
    for manifest in manifests(synth(mock_run, prometheus_operator=operator)):
        if manifest["kind"] in CRD_KINDS:
            continue
        path = tmp_path / f"{manifest['kind']}-{manifest['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=True))
        paths.append(path)
    assert len(paths) == (3 if operator else 4)  # Service, NetworkPolicy, dashboard (+ rules ConfigMap)
    result = subprocess.run([str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", KUBERNETES_VERSION,
                             "--quiet", *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overrides, message", [
    ({"slots": ()}, "slots"),
    ({"slots": (Slot.BLUE, Slot.BLUE)}, "slots"),
    ({"monitoring_namespace": "Monitoring"}, "monitoring_namespace"),
    ({"scrape_interval_seconds": 60}, "scrape_interval_seconds"),
    ({"model_name": "Iris"}, "model_name"),
])
def test_invalid_args_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        args(**overrides)


def test_routing_is_validated():
    with pytest.raises(ValueError, match="route"):
        AlertRouting(route="Not A Label")
    with pytest.raises(ValueError, match="https"):
        AlertRouting(route="r", https_endpoints=("http://x",))


def test_every_invalid_observability_field_is_reported_at_once():
    with pytest.raises(ArgsError) as caught:
        args(model_name="Iris", monitoring_namespace="Monitoring", slots=(), scrape_interval_seconds=60)
    assert reported_fields(caught.value) == ["model_name", "monitoring_namespace", "slots", "scrape_interval_seconds"]
    with pytest.raises(ArgsError) as caught:
        AlertRouting(route="Not A Label", https_endpoints=("http://x",))
    assert reported_fields(caught.value) == ["route", "https_endpoints.0"]
