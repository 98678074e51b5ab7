"""The ``lastmile:observability`` section: one switch for a served model's whole watch.

On: SageMaker data-quality monitoring against the shipped baseline, drift and serving-health alarms,
an encrypted alert topic with the subscriptions below, a retraining trigger, a dashboard (aws and
hybrid); Prometheus scraping, per-slot alert rules and a Grafana dashboard (onprem and hybrid).
The 5XX and p99-latency thresholds are NOT here: they are ``lastmile:alarms``, the same values that
drive SageMaker's auto-rollback, so the watch and the rollout share one health definition.

Shape (every field; an omitted field takes the environment's default from ``ENVIRONMENT_DEFAULTS``,
the only place defaults live; ``effective(environment)`` resolves them)::

    lastmile:observability:
      enabled: true                       # the switch; omitted (or no section at all): off
      notifications:
        emails: [ml-oncall@example.com]   # SNS email subscriptions (confirmed by the recipient)
        https_endpoints: [https://hooks.example.com/lastmile]   # https only; no plain http
      drift:
        threshold: 0.1                    # distance (0-1] above which a feature has drifted
        cadence: hourly                   # hourly | daily
        instance_type: ml.m5.large        # the monitoring job's instance
        max_runtime_seconds: 1800         # must fit the cadence (hourly: <= 3600)
      health:
        error_4xx_percent: 5              # 4XX share of invocations (client errors) per 5 minutes
        memory_percent: 85                # MemoryUtilization of the variant's instances
        cpu_percent: 85                   # CPUUtilization per vCPU (SageMaker sums vCPUs)
        invocations_percent_of_target: 150  # InvocationsPerInstance vs capacity's target tracking
      retraining:
        target: topic                     # topic | pipeline
        pipeline_name: iris-retrain       # required with target: pipeline
        pipeline_parameters: {Reason: drift}
      kubernetes:
        prometheus_operator: true         # ServiceMonitor + PrometheusRule; false: annotations + rules file
        monitoring_namespace: monitoring  # where Prometheus runs (the only source allowed to scrape)
        prometheus_selector_labels: {release: kube-prometheus-stack}

``OBSERVABILITY_RULES``: formats of the notification targets, prod needs one target, a pipeline
target needs its name, the monitoring job must fit its cadence, SageMaker monitoring needs data
capture.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from components.aws.monitoring_alerts import check_targets
from components.aws.monitoring_specs import Cadence, RetrainingTarget
from infra.settings.common import Environment, Problem, Strict, Topology

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
PIPELINE_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$"
MAX_NOTIFICATION_TARGETS = 20


class Notifications(Strict):
    emails: list[str] = Field(default=[], description="Email addresses subscribed to the alert topic.")
    https_endpoints: list[str] = Field(default=[], description="https:// webhooks subscribed to the alert topic.")

    @property
    def count(self) -> int:
        return len(self.emails) + len(self.https_endpoints)


class Drift(Strict):
    """SageMaker data-quality monitoring. None = the environment's default."""

    threshold: StrictFloat | None = Field(default=None, gt=0, le=1,
                                    description="Baseline drift distance (0-1] that is a violation and alarms.")
    cadence: Cadence | None = Field(default=None, description="hourly | daily monitoring runs.")
    instance_type: str | None = Field(default=None, pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    max_runtime_seconds: StrictInt | None = Field(default=None, ge=60, le=86400)


class Health(Strict):
    """Serving-health alarms beyond the two rollback alarms of lastmile:alarms. None = environment default."""

    error_4xx_percent: StrictInt | None = Field(default=None, ge=1, le=100)
    memory_percent: StrictInt | None = Field(default=None, ge=10, le=100)
    cpu_percent: StrictInt | None = Field(default=None, ge=10, le=100)
    invocations_percent_of_target: StrictInt | None = Field(default=None, ge=100, le=1000)


class Retraining(Strict):
    target: RetrainingTarget = Field(default=RetrainingTarget.TOPIC,
                                     description="Where a drift violation goes: the alert topic or a SageMaker pipeline.")
    pipeline_name: str | None = Field(default=None, pattern=PIPELINE_NAME,
                                      description="The SageMaker pipeline to start; required with target pipeline.")
    pipeline_parameters: dict[str, str] = Field(default={}, description="Static parameters of the pipeline run.")


class KubernetesObservability(Strict):
    prometheus_operator: StrictBool = Field(default=False, description="The Prometheus Operator CRDs exist in the cluster.")
    monitoring_namespace: str = Field(default="monitoring", pattern=DNS_LABEL)
    prometheus_selector_labels: dict[str, str] = Field(
        default={}, description="Labels the Prometheus instance selects rules and monitors by. Omitted: none.")


class ObservabilitySettings(Strict):
    enabled: StrictBool = Field(default=False, description="The one switch. Omitted (or no section): off.")
    notifications: Notifications = Field(default_factory=Notifications)
    drift: Drift = Field(default_factory=Drift)
    health: Health = Field(default_factory=Health)
    retraining: Retraining = Field(default_factory=Retraining)
    kubernetes: KubernetesObservability = Field(default_factory=KubernetesObservability)

    def effective(self, environment: Environment) -> "ObservabilitySettings":
        """A copy with every omitted (None) threshold filled from ``ENVIRONMENT_DEFAULTS``."""
        defaults = ENVIRONMENT_DEFAULTS[environment]
        drift = {k: v for k, v in self.drift.model_dump().items() if v is not None}
        health = {k: v for k, v in self.health.model_dump().items() if v is not None}
        return self.model_copy(update={
            "drift": Drift(**{**defaults["drift"], **drift}),
            "health": Health(**{**defaults["health"], **health}),
        })


# Safe defaults per environment (the only place they live). Prod watches hourly and tight; dev daily,
# on a small instance, with looser thresholds (less noise from test traffic).
ENVIRONMENT_DEFAULTS: dict[Environment, dict[str, dict[str, Any]]] = {
    Environment.DEV: {
        "drift": {"threshold": 0.2, "cadence": Cadence.DAILY, "instance_type": "ml.t3.medium",
                  "max_runtime_seconds": 1800},
        "health": {"error_4xx_percent": 20, "memory_percent": 90, "cpu_percent": 90,
                   "invocations_percent_of_target": 200},
    },
    Environment.STAGING: {
        "drift": {"threshold": 0.1, "cadence": Cadence.HOURLY, "instance_type": "ml.m5.large",
                  "max_runtime_seconds": 1800},
        "health": {"error_4xx_percent": 10, "memory_percent": 85, "cpu_percent": 85,
                   "invocations_percent_of_target": 150},
    },
    Environment.PROD: {
        "drift": {"threshold": 0.1, "cadence": Cadence.HOURLY, "instance_type": "ml.m5.large",
                  "max_runtime_seconds": 1800},
        "health": {"error_4xx_percent": 5, "memory_percent": 85, "cpu_percent": 80,
                   "invocations_percent_of_target": 150},
    },
}


# ---------------------------------------------------------------------------------------------
# Rules: small pure functions (sections) -> problems; see infra/settings/rules.py.

Sections = dict[str, object]


def _on(s: Sections) -> ObservabilitySettings | None:
    observability = s.get("observability")
    return observability if isinstance(observability, ObservabilitySettings) and observability.enabled else None


def notification_formats(s: Sections) -> list[Problem]:
    """Every email is an address, every webhook https with a host; no duplicates; a bounded list."""
    observability = s["observability"]
    notifications = observability.notifications
    problems = check_targets(notifications.emails, notifications.https_endpoints, prefix="observability.notifications.")
    if notifications.count > MAX_NOTIFICATION_TARGETS:
        problems.append(Problem("observability.notifications", notifications.count,
                                f"at most {MAX_NOTIFICATION_TARGETS} notification targets",
                                "subscribe a mailing list or one webhook that fans out"))
    return problems


def prod_has_a_receiver(s: Sections) -> list[Problem]:
    """An alarm nobody receives is no alarm: prod names at least one person or system."""
    observability = _on(s)
    if observability is None or s["environment"] != Environment.PROD or observability.notifications.count:
        return []
    return [Problem("observability.notifications", observability.notifications.model_dump(),
                    "prod observability needs at least one notification target: alarms and drift would reach nobody",
                    "add observability.notifications.emails (on-call list) or https_endpoints (paging webhook)")]


def retraining_target(s: Sections) -> list[Problem]:
    retraining = s["observability"].retraining
    if retraining.target == RetrainingTarget.PIPELINE and retraining.pipeline_name is None:
        return [Problem("observability.retraining.pipeline_name", None,
                        "retraining.target is pipeline but no pipeline is named",
                        "set retraining.pipeline_name to the SageMaker pipeline that retrains the model, "
                        "or set retraining.target to topic")]
    if retraining.target == RetrainingTarget.TOPIC and (retraining.pipeline_name or retraining.pipeline_parameters):
        return [Problem("observability.retraining.pipeline_name", retraining.pipeline_name,
                        "a pipeline is configured but retraining.target is topic, so it would never start",
                        "set retraining.target to pipeline, or remove pipeline_name and pipeline_parameters")]
    return []


def drift_fits_cadence(s: Sections) -> list[Problem]:
    """A monitoring run must end before the next one starts (SageMaker refuses a longer stopping condition)."""
    drift = s["observability"].effective(s["environment"]).drift
    limit = min(drift.cadence.seconds, 3600)  # SageMaker caps a monitoring job at one hour
    if drift.max_runtime_seconds <= limit:
        return []
    return [Problem("observability.drift.max_runtime_seconds", drift.max_runtime_seconds,
                    f"a {drift.cadence.value} monitoring job may run at most {limit} s",
                    f"set drift.max_runtime_seconds to {limit} or less")]


def monitoring_needs_capture(s: Sections) -> list[Problem]:
    """SageMaker monitors what the endpoint captured: without capture every run would find nothing."""
    if _on(s) is None or s["topology"] == Topology.ONPREM:
        return []
    aws = s.get("aws")
    capture = getattr(aws, "data_capture_percent", None)
    if capture is None or capture > 0:
        return []
    return [Problem("aws.data_capture_percent", capture,
                    "observability monitors captured requests for drift; with data capture off it has no data",
                    "set aws.data_capture_percent to 1-100 (prod: 10 or more), or set observability.enabled false")]


# (rule, sections it reads); appended to the loader's RULES.
OBSERVABILITY_RULES = [
    (notification_formats, ("observability",)),
    (prod_has_a_receiver, ("observability", "environment")),
    (retraining_target, ("observability",)),
    (drift_fits_cadence, ("observability", "environment")),
    (monitoring_needs_capture, ("observability", "topology")),
]
