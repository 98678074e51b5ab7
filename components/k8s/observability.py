"""ServingObservability: Prometheus scraping, per-slot alert rules and a Grafana dashboard for MLServer.

MLServer serves Prometheus metrics on its metrics port (``MLSERVER_METRICS_PORT`` 8082, set by
``ModelServer``) at ``/metrics``: ``rest_server_requests_total{status_code}`` and the histogram
``rest_server_request_duration_seconds`` (starlette-exporter with MLServer's default
``metrics_rest_server_prefix`` ``rest_server``), plus ``model_infer_request_success/_failure``.

What it builds in the serving namespace (no pod, no new privilege: the restricted posture stands):
- ``<name>-metrics``: a headless Service over every slot's model-server pods exposing only port 8082
  (``metrics``) for discovery;
- ``<name>-allow-scrape``: a NetworkPolicy letting pods of ``monitoring_namespace`` (only) reach the
  model servers on 8082 (only): the namespace's default-deny otherwise stands;
- with ``prometheus_operator`` (the Prometheus Operator's CRDs exist, ``monitoring.coreos.com/v1``):
  ``<name>-monitor`` ServiceMonitor (relabels the pod labels into ``model`` and ``slot``) and
  ``<name>-rules`` PrometheusRule; without: the Service carries ``prometheus.io/scrape|port|path``
  annotations (the ``kubernetes-service-endpoints`` job of a plain Prometheus) and
  ``<name>-prometheus-rules``, a ConfigMap with the same rules file and the scrape job to load;
- ``<name>-dashboard``: a ConfigMap labelled ``grafana_dashboard: "1"`` (Grafana's sidecar).

Alert rules, one group per slot, with the thresholds of ``lastmile:alarms`` (the SageMaker rollback
alarms' definition): 5XX responses per minute >= ``error_5xx_count`` and p99 request latency >=
``latency_p99_ms``, for ``evaluation_minutes``. The idle slot has rules too, so a release is judged
on the preview Service before ``active_slot`` moves to it. Every alert carries
``lastmile_route`` (the notification route) and, in the hybrid topology, ``sns_topic_arn`` of the
cloud plane's alert topic; the email and https targets are annotations: Alertmanager routes on the
label to the same people and systems the cloud plane notifies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.aws.alarms import AlarmThresholds
from components.k8s.common import base_labels, check_dns_label
from components.k8s.model_server import server_selector
from components.problems import Problem, check_range, raise_problems
from components.slots import Slot

METRICS_PORT = 8082
METRICS_PATH = "/metrics"
MONITORING_API = "monitoring.coreos.com/v1"
REQUESTS = "rest_server_requests_total"
DURATION = "rest_server_request_duration_seconds_bucket"
SLOT_POD_LABEL = "__meta_kubernetes_pod_label_lastmile_dev_slot"
MODEL_POD_LABEL = "__meta_kubernetes_pod_label_app_kubernetes_io_name"
COMPONENT = "observability"


@dataclass(frozen=True, kw_only=True)
class AlertRouting:
    """Who hears the alerts: the same targets as the cloud plane's alert topic."""

    route: str
    """Name of the Alertmanager route (``lastmile_route`` label), e.g. lastmile-onprem-prod."""
    emails: tuple[str, ...] = ()
    """Email targets (annotation ``notify_emails``). Omitted: none."""
    https_endpoints: tuple[str, ...] = ()
    """Webhook targets (annotation ``notify_https``). Omitted: none."""
    sns_topic_arn: pulumi.Input[str] | None = None
    """Hybrid: the cloud plane's alert topic (label ``sns_topic_arn``). Omitted: no label."""

    def __post_init__(self) -> None:
        raise_problems("AlertRouting", [
            *check_dns_label("route", self.route),
            *[Problem(f"https_endpoints.{i}", url, "is not https", "use an https:// URL")
              for i, url in enumerate(self.https_endpoints) if not url.startswith("https://")],
        ])


@dataclass(frozen=True, kw_only=True)
class ServingObservabilityArgs:
    namespace: pulumi.Input[str]
    """The serving namespace (``ServingNamespace.namespace_name``)."""
    model_name: str
    slots: tuple[Slot, ...]
    """The slots that have a release (rules per slot)."""
    thresholds: AlarmThresholds
    """``lastmile:alarms``: the SageMaker rollback alarms' definition."""
    routing: AlertRouting
    monitoring_namespace: str
    """Where Prometheus runs: the only namespace allowed to reach the metrics port."""
    prometheus_operator: bool
    """True: ServiceMonitor + PrometheusRule (CRDs must exist). False: annotations + rules ConfigMap."""
    prometheus_selector_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels Prometheus selects monitors and rules by (e.g. release). Omitted: none."""
    scrape_interval_seconds: int = 15
    """Scrape interval (the rules' 1-minute rate windows need <= 30 s). Omitted: 15."""

    def __post_init__(self) -> None:
        problems = [*check_dns_label("model_name", self.model_name),
                    *check_dns_label("monitoring_namespace", self.monitoring_namespace)]
        if not self.slots or len(set(self.slots)) != len(self.slots):
            problems.append(Problem("slots", self.slots, "must name each slot with a release once",
                                    "list each slot that has a release, once"))
        problems += check_range("scrape_interval_seconds", self.scrape_interval_seconds, 5, 30,
                                why=" (the rules rate over 1 minute)")
        problems += [Problem("prometheus_selector_labels", key, "bad key (empty or longer than 253)",
                             "use the label key Prometheus selects by, e.g. release")
                     for key in self.prometheus_selector_labels if not key or len(key) > 253]
        raise_problems("ServingObservabilityArgs", problems)


def alert_groups(args: ServingObservabilityArgs, namespace: str, sns_topic_arn: str | None) -> list[dict[str, Any]]:
    """The rule groups (Prometheus rule-file format), one per slot."""
    t = args.thresholds
    labels = {"severity": "critical", "lastmile_route": args.routing.route, "lastmile_model": args.model_name}
    if sns_topic_arn:
        labels["sns_topic_arn"] = sns_topic_arn
    annotations = {"notify_emails": ",".join(args.routing.emails),
                   "notify_https": ",".join(args.routing.https_endpoints)}
    groups = []
    for slot in args.slots:
        match = f'namespace="{namespace}",model="{args.model_name}",slot="{slot.value}"'
        slot_labels = labels | {"lastmile_slot": slot.value}
        groups.append({"name": f"lastmile-{args.model_name}-{slot.value}", "rules": [
            {"alert": "LastmileModelServer5xx",
             "expr": f'sum(rate({REQUESTS}{{{match},status_code=~"5.."}}[1m])) * 60 >= {t.error_5xx_count}',
             "for": f"{t.evaluation_minutes}m", "labels": slot_labels,
             "annotations": annotations | {
                 "summary": f"{args.model_name} {slot.value}: >= {t.error_5xx_count} 5XX responses per minute",
                 "description": "Same definition as the SageMaker rollback alarm (lastmile:alarms.error_5xx_count)."}},
            {"alert": "LastmileModelServerLatencyP99",
             "expr": (f"histogram_quantile(0.99, sum by (le) (rate({DURATION}{{{match}}}[1m]))) * 1000 "
                      f">= {t.latency_p99_ms}"),
             "for": f"{t.evaluation_minutes}m", "labels": slot_labels,
             "annotations": annotations | {
                 "summary": f"{args.model_name} {slot.value}: p99 latency >= {t.latency_p99_ms} ms",
                 "description": "Same definition as the SageMaker rollback alarm (lastmile:alarms.latency_p99_ms)."}},
        ]})
    return groups


def relabelings() -> list[dict[str, Any]]:
    """Pod labels -> the ``model`` and ``slot`` labels the rules and the dashboard select on."""
    return [{"sourceLabels": [SLOT_POD_LABEL], "targetLabel": "slot", "action": "replace"},
            {"sourceLabels": [MODEL_POD_LABEL], "targetLabel": "model", "action": "replace"}]


def plain_scrape_job(args: ServingObservabilityArgs, namespace: str) -> dict[str, Any]:
    """The scrape job a plain Prometheus (no operator) loads for the annotated metrics Service."""
    return {
        "job_name": f"lastmile-{args.model_name}",
        "scrape_interval": f"{args.scrape_interval_seconds}s",
        "metrics_path": METRICS_PATH,
        "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": [namespace]}}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_service_annotation_prometheus_io_scrape"], "regex": "true",
             "action": "keep"},
            {"source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": "metrics", "action": "keep"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": [SLOT_POD_LABEL], "target_label": "slot"},
            {"source_labels": [MODEL_POD_LABEL], "target_label": "model"},
        ],
    }


def dashboard(args: ServingObservabilityArgs) -> dict[str, Any]:
    """A Grafana dashboard (schema 39): traffic, 5XX, p50/p99 latency per slot, with the alert thresholds."""
    match = f'model="{args.model_name}"'
    t = args.thresholds

    def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]], threshold: float | None) -> dict:
        body: dict[str, Any] = {
            "id": index + 1, "type": "timeseries", "title": title,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(targets)],
        }
        if threshold is not None:
            body["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "red", "value": threshold}]}
            body["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
        return body

    panels = [
        panel(0, "Requests per second", "reqps",
              [(f"sum by (slot) (rate({REQUESTS}{{{match}}}[1m]))", "{{slot}}")], None),
        panel(1, "5XX per minute", "short",
              [(f'sum by (slot) (rate({REQUESTS}{{{match},status_code=~"5.."}}[1m])) * 60', "{{slot}}")],
              t.error_5xx_count),
        panel(2, "Latency p50 / p99 (ms)", "ms",
              [(f"histogram_quantile({q}, sum by (slot, le) (rate({DURATION}{{{match}}}[1m]))) * 1000",
                f"{{{{slot}}}} p{int(q * 100)}") for q in (0.5, 0.99)], t.latency_p99_ms),
        panel(3, "Inference outcomes per second", "reqps",
              [(f"sum by (slot) (rate(model_infer_request_success{{{match}}}[1m]))", "{{slot}} success"),
               (f"sum by (slot) (rate(model_infer_request_failure{{{match}}}[1m]))", "{{slot}} failure")], None),
    ]
    return {
        "title": f"lastmile {args.model_name}", "uid": f"lastmile-{args.model_name}"[:40], "schemaVersion": 39,
        "tags": ["lastmile", args.model_name], "time": {"from": "now-6h", "to": "now"}, "refresh": "1m",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": panels,
    }


class ServingObservability(pulumi.ComponentResource):
    """Scrape target, scrape-only network allow, per-slot alert rules and a dashboard for one model."""

    metrics_service_name: pulumi.Output[str]

    def __init__(self, name: str, args: ServingObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:ServingObservability", name, None, opts)
        labels = base_labels(args.model_name, COMPONENT)
        selected = labels | dict(args.prometheus_selector_labels)
        servers = server_selector(args.model_name)
        child = pulumi.ResourceOptions(parent=self)

        def meta(extra: Mapping[str, str] | None = None, annotations: dict[str, str] | None = None):
            return k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels | dict(extra or {}),
                                              annotations=annotations)

        scrape_annotations = None if args.prometheus_operator else {
            "prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT), "prometheus.io/path": METRICS_PATH}
        service = k8s.core.v1.Service(
            f"{name}-metrics",
            metadata=meta({"lastmile.dev/metrics": args.model_name}, scrape_annotations),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP", cluster_ip="None", selector=servers,
                ports=[k8s.core.v1.ServicePortArgs(name="metrics", port=METRICS_PORT, target_port=METRICS_PORT,
                                                   protocol="TCP")]),
            opts=child)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-scrape",
            metadata=meta({"lastmile.dev/policy": "allow-scrape"}),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=servers),
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": args.monitoring_namespace}))],
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=METRICS_PORT, protocol="TCP")])]),
            opts=child)
        groups = pulumi.Output.all(args.namespace, args.routing.sns_topic_arn).apply(
            lambda resolved: alert_groups(args, resolved[0], resolved[1]))
        if args.prometheus_operator:
            k8s.apiextensions.CustomResource(
                f"{name}-monitor", api_version=MONITORING_API, kind="ServiceMonitor",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=selected),
                spec={
                    "selector": {"matchLabels": {"lastmile.dev/metrics": args.model_name}},
                    "namespaceSelector": {"matchNames": [args.namespace]},
                    "endpoints": [{"port": "metrics", "path": METRICS_PATH, "scheme": "http",
                                   "interval": f"{args.scrape_interval_seconds}s", "relabelings": relabelings()}],
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[service]))
            k8s.apiextensions.CustomResource(
                f"{name}-rules", api_version=MONITORING_API, kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=selected),
                spec={"groups": groups}, opts=child)
        else:
            files = pulumi.Output.all(args.namespace, groups).apply(lambda resolved: {
                f"lastmile-{args.model_name}.rules.yaml": yaml.safe_dump({"groups": resolved[1]}, sort_keys=True),
                f"lastmile-{args.model_name}.scrape.yaml": yaml.safe_dump(
                    {"scrape_configs": [plain_scrape_job(args, resolved[0])]}, sort_keys=True),
            })
            k8s.core.v1.ConfigMap(f"{name}-prometheus-rules", metadata=meta({"lastmile.dev/prometheus": "rules"}),
                                  data=files, opts=child)
        k8s.core.v1.ConfigMap(
            f"{name}-dashboard", metadata=meta({"grafana_dashboard": "1"}),
            data={f"lastmile-{args.model_name}.json": json.dumps(dashboard(args), indent=2, sort_keys=True) + "\n"},
            opts=child)
        self.metrics_service_name = service.metadata.name
        self.register_outputs({"metrics_service_name": self.metrics_service_name})


__all__ = ["AlertRouting", "ServingObservability", "ServingObservabilityArgs", "alert_groups", "dashboard"]
