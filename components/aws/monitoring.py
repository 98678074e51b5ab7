"""ModelMonitoring: the whole SageMaker watch of one endpoint, secure by default.

What it builds (children of the component; pure definitions in ``monitoring_specs.py``, policy
statements in ``monitoring_iam.py``):
- ``<name>-alerts``: an ``AlertTopic`` (encrypted SNS topic, publish only by this account's alarms and
  rules over TLS, email/https subscriptions);
- ``<name>-statistics`` / ``-constraints`` / ``-preprocessor``: the data-quality baseline
  (``model_artifacts/baseline/<model>/``) uploaded SSE-KMS to the artifact store under
  ``monitoring/<model>/<digest>/`` (content-addressed: a new baseline or threshold is a new prefix).
  The uploaded constraints carry ``drift_threshold`` as ``comparison_threshold``, so the violation
  that triggers retraining and the drift alarm use one number;
- ``<name>-role``: the job's own role (trusted by SageMaker for this account only): read the
  endpoint's ``data-capture/<endpoint>/`` and the baseline prefix, write ``monitoring-reports/<endpoint>/``,
  the stack key only, metrics only in the data-quality namespace, logs only in the processing-job group;
- ``<name>-job``: a ``DataQualityJobDefinition`` with the pinned regional analyzer image, the record
  preprocessor, KMS on the volume and the outputs, network isolation, inter-container traffic
  encryption, the VPC's private subnets (required unless ``allow_without_vpc``) and a stopping
  condition; content-hashed name (a job definition is immutable), so a change creates the new one,
  repoints the schedule and deletes the old one;
- ``<name>-schedule``: the ``MonitoringSchedule`` (hourly or daily cron);
- ``<name>-alarm-<kind>`` / ``<name>-alarm-drift-<feature>``: serving-health and drift alarms (see
  ``monitoring_specs``), each notifying the topic on ALARM and OK;
- ``<name>-rollback-alarms``: an EventBridge rule that sends the endpoint's auto-rollback alarms'
  state changes to the topic: those alarms are ``ModelEndpoint``'s and are not declared twice;
- ``<name>-violations``: an EventBridge rule on a monitoring run that completed with violations,
  targeting the topic or (``RetrainingTarget.PIPELINE``) starting the retraining pipeline with a role
  that may start that pipeline only;
- ``<name>-dashboard``: invocations, 4XX/5XX, ModelLatency p50/p99, utilization, drift, alarms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.aws.alarms import AlarmThresholds
from components.aws.artifact_store import CAPTURE_PREFIX, ArtifactStore
from components.aws.limits import check_vpc_config
from components.aws.monitoring_alerts import AlertTopic, AlertTopicArgs, check_targets
from components.aws.monitoring_iam import (
    EVENTS_PRINCIPAL,
    SAGEMAKER_PRINCIPAL,
    monitoring_role_statements,
    pipeline_arn,
    start_pipeline_statements,
    trust,
)
from components.aws.monitoring_specs import (
    Cadence,
    HealthThresholds,
    RetrainingTarget,
    analyzer_image_uri,
    check_analyzer_region,
    check_instance_size,
    dashboard_body,
    drift_alarm_args,
    health_alarm_args,
    rollback_alarm_event_pattern,
    violations_event_pattern,
)
from components.aws.naming import content_name, digest, is_sagemaker_name, partition
from components.network.addressing import check_account_id
from components.problems import MISSING, Problem, check_range, raise_problems

BASELINE_PREFIX = "monitoring/"
REPORTS_PREFIX = "monitoring-reports/"
BASELINE_ROOT = Path(__file__).resolve().parents[2] / "model_artifacts" / "baseline"
PROCESSING_INPUT = "/opt/ml/processing/input/endpoint"
PROCESSING_OUTPUT = "/opt/ml/processing/output"
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The data-quality baseline of one model: model_artifacts/baseline/<model>/ (build_baseline.py)."""

    model: str
    directory: Path

    def __post_init__(self) -> None:
        problems = [Problem("directory", str(self.directory), f"baseline of {self.model} has no {file}",
                            "run model_artifacts/build_baseline.py")
                    for file in ("statistics.json", "constraints.json", "preprocessor.py")
                    if not (self.directory / file).is_file()]
        if not problems and not self.features:
            problems.append(Problem("directory", str(self.directory), f"baseline of {self.model} lists no features",
                                    "run model_artifacts/build_baseline.py"))
        raise_problems("Baseline", problems)

    @classmethod
    def of(cls, model: str) -> "Baseline":
        return cls(model=model, directory=BASELINE_ROOT / model)

    @property
    def features(self) -> tuple[str, ...]:
        statistics = json.loads((self.directory / "statistics.json").read_text())
        return tuple(feature["name"] for feature in statistics["features"])

    def files(self, drift_threshold: float) -> dict[str, str]:
        """File name -> the exact text uploaded (constraints with the stack's drift threshold)."""
        constraints = json.loads((self.directory / "constraints.json").read_text())
        constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = drift_threshold
        return {
            "statistics.json": (self.directory / "statistics.json").read_text(),
            "constraints.json": json.dumps(constraints, indent=2, sort_keys=True) + "\n",
            "preprocessor.py": (self.directory / "preprocessor.py").read_text(),
        }


@dataclass(frozen=True, kw_only=True)
class MonitoringNetwork:
    """Private subnets and security groups the monitoring job's network interfaces use."""

    subnet_ids: tuple[pulumi.Input[str], ...]
    """Subnet ids (Outputs when created in the same program, as in the hybrid topology)."""
    security_group_ids: tuple[pulumi.Input[str], ...]

    def __post_init__(self) -> None:
        raise_problems("MonitoringNetwork", check_vpc_config("subnet_ids", self.subnet_ids, self.security_group_ids))


@dataclass(frozen=True, kw_only=True)
class Retraining:
    target: RetrainingTarget = RetrainingTarget.TOPIC
    """Where a run with violations goes. Omitted: the alert topic."""
    pipeline_name: str | None = None
    """The SageMaker pipeline to start; required with PIPELINE, refused otherwise."""
    pipeline_parameters: Mapping[str, str] = field(default_factory=dict)
    """Static parameters of the pipeline run. Omitted: none."""

    def __post_init__(self) -> None:
        pipeline = self.target is RetrainingTarget.PIPELINE
        problems = []
        if pipeline != (self.pipeline_name is not None):
            problems.append(Problem("pipeline_name", MISSING if pipeline else self.pipeline_name,
                                    "pipeline_name is required with target PIPELINE and only then",
                                    "name the pipeline" if pipeline else "omit pipeline_name or use target PIPELINE"))
        if self.pipeline_name is not None and not _PIPELINE_NAME.match(self.pipeline_name):
            problems.append(Problem("pipeline_name", self.pipeline_name, "not a SageMaker pipeline name (letters, "
                                    "digits and -, at most 256)", "use the pipeline's name as SageMaker shows it"))
        if self.pipeline_parameters and not pipeline:
            problems.append(Problem("pipeline_parameters", dict(self.pipeline_parameters), "without target PIPELINE "
                                    "they would never be used", "omit pipeline_parameters or use target PIPELINE"))
        raise_problems("Retraining", problems)


@dataclass(frozen=True, kw_only=True)
class ModelMonitoringArgs:
    account_id: str
    region: str
    endpoint_name: str
    """The monitored endpoint's physical name (``ModelEndpointArgs.endpoint_name``)."""
    variant_name: str
    """The production variant (``ModelEndpoint.variant_name``: primary)."""
    instance_type: str
    """The endpoint's instance type (sizes the CPU alarm: SageMaker sums CPUUtilization over vCPUs)."""
    artifact_store: ArtifactStore
    """Holds the capture (``data-capture/<endpoint>/``), the baseline and the reports."""
    kms_key_arn: pulumi.Input[str]
    """The stack key: baseline objects, reports and the job's volume."""
    baseline: Baseline
    rollback_alarm_names: pulumi.Input[Sequence[str]]
    """``ModelEndpoint.alarm_names``: routed to the topic, shown on the dashboard, never re-declared."""
    rollback_thresholds: AlarmThresholds
    """The rollback alarms' thresholds; their ``evaluation_minutes`` is every health alarm's window."""
    health: HealthThresholds
    drift_threshold: float
    """Baseline distance (0-1] that is a violation (constraints) and alarms (drift alarms)."""
    cadence: Cadence = Cadence.HOURLY
    """Monitoring runs. Omitted: hourly."""
    job_instance_type: str = "ml.m5.large"
    """The monitoring job's instance. Omitted: ml.m5.large."""
    job_volume_gib: int = 20
    """The job's encrypted volume. Omitted: 20 GiB."""
    max_runtime_seconds: int = 1800
    """Stopping condition of one run (<= 3600 and <= the cadence). Omitted: 1800."""
    network: MonitoringNetwork | None = None
    """Private subnets of the job. Omitted: refused unless ``allow_without_vpc``."""
    allow_without_vpc: bool = False
    """Run the (network-isolated) job outside your VPC (dev only). Omitted: a VPC is required."""
    emails: tuple[str, ...] = ()
    """Alert topic email subscriptions. Omitted: none."""
    https_endpoints: tuple[str, ...] = ()
    """Alert topic https subscriptions. Omitted: none."""
    retraining: Retraining = Retraining()
    """Retraining trigger. Omitted: violations go to the alert topic."""
    depends_on: tuple[pulumi.Resource, ...] = ()
    """What must exist first (the ``ModelEndpoint``: a schedule needs its endpoint). Omitted: nothing."""
    protect_state: bool = False
    """Protect and retain the alert topic's key. Omitted: deletable."""

    def __post_init__(self) -> None:
        raise_problems("ModelMonitoringArgs", [
            *check_account_id("account_id", self.account_id),
            *check_analyzer_region("region", self.region),
            *check_instance_size("instance_type", self.instance_type),
            *[Problem(name, getattr(self, name), "not a SageMaker name (letters, digits and -, at most 63)",
                      "pass the endpoint's own name (ModelEndpoint)")
              for name in ("endpoint_name", "variant_name") if not is_sagemaker_name(getattr(self, name))],
            *self._job_problems(),
            *check_targets(self.emails, self.https_endpoints),
        ])

    def _job_problems(self) -> list[Problem]:
        problems = []
        if not 0 < self.drift_threshold <= 1:
            problems.append(Problem("drift_threshold", self.drift_threshold, "must be in (0, 1]",
                                    "use a baseline distance such as 0.1"))
        problems += check_range("max_runtime_seconds", self.max_runtime_seconds, 60, min(self.cadence.seconds, 3600),
                                unit=" seconds", why=f" for a {self.cadence.value} schedule")
        problems += check_range("job_volume_gib", self.job_volume_gib, 1, 16384, unit=" GiB")
        if self.network is None and not self.allow_without_vpc:
            problems.append(Problem("network", MISSING, "network is required: the monitoring job runs in private "
                                    "subnets", "pass a MonitoringNetwork (allow_without_vpc=True is for dev only)"))
        return problems

    @property
    def capture_prefix(self) -> str:
        return f"{CAPTURE_PREFIX}{self.endpoint_name}/"

    @property
    def reports_prefix(self) -> str:
        return f"{REPORTS_PREFIX}{self.endpoint_name}/"


class ModelMonitoring(pulumi.ComponentResource):
    """Data-quality monitoring, alarms, alert routing, retraining trigger and dashboard of one endpoint."""

    topic_arn: pulumi.Output[str]
    schedule_name: pulumi.Output[str]
    job_definition_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ModelMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:aws:ModelMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        alerts = AlertTopic(f"{name}-alerts", AlertTopicArgs(
            account_id=args.account_id, region=args.region, emails=args.emails, https_endpoints=args.https_endpoints,
            protect_state=args.protect_state), opts=child)
        uris, uploads = self._baseline(name, args)
        role, grants = self._role(name, args, uris["prefix"])
        job = self._job_definition(name, args, uris, role, [*uploads, *grants])
        schedule = aws.sagemaker.MonitoringSchedule(
            f"{name}-schedule",
            name=content_name(f"{args.endpoint_name}-data-quality", {"endpoint": args.endpoint_name}),
            monitoring_schedule_config={
                "monitoring_type": "DataQuality",
                "monitoring_job_definition_name": job.name,
                "schedule_config": {"schedule_expression": args.cadence.schedule_expression},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
        alarms = self._alarms(name, args, schedule, alerts.topic_arn)
        self._routing(name, args, schedule, alerts.topic_arn)
        arns = [alarm.arn for alarm in alarms]
        rollback_arns = pulumi.Output.from_input(args.rollback_alarm_names).apply(
            lambda names: [f"arn:{partition(args.region)}:cloudwatch:{args.region}:{args.account_id}:alarm:{n}" for n in names])
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.endpoint_name,  # already "lastmile-<stack>-<hash>"; one dashboard per endpoint
            dashboard_body=pulumi.Output.json_dumps(dashboard_body(
                region=args.region, endpoint_name=args.endpoint_name, variant_name=args.variant_name,
                schedule_name=schedule.name, features=args.baseline.features,
                drift_threshold=args.drift_threshold, cadence=args.cadence,
                alarm_arns=pulumi.Output.all(rollback_arns, *arns).apply(lambda a: [*a[0], *a[1:]]))),
            opts=child)

        self.topic_arn = alerts.topic_arn
        self.schedule_name = schedule.name
        self.job_definition_name = job.name
        self.role_arn = role.arn
        self.dashboard_name = dashboard.dashboard_name
        self.alarm_names = pulumi.Output.all(*[alarm.name for alarm in alarms])
        self.register_outputs({
            "topic_arn": self.topic_arn, "schedule_name": self.schedule_name,
            "job_definition_name": self.job_definition_name, "role_arn": self.role_arn,
            "dashboard_name": self.dashboard_name, "alarm_names": self.alarm_names,
        })

    def _baseline(self, name: str, args: ModelMonitoringArgs) -> tuple[dict[str, Any], list[pulumi.Resource]]:
        files = args.baseline.files(args.drift_threshold)
        prefix = f"{BASELINE_PREFIX}{args.baseline.model}/{digest(files)}/"
        store = args.artifact_store
        uploads, uris = [], {"prefix": prefix}
        for file, text in sorted(files.items()):
            role = file.split(".")[0]
            obj = aws.s3.BucketObjectv2(
                f"{name}-{role}", bucket=store.bucket_name, key=prefix + file, content=text,
                content_type="application/json" if file.endswith(".json") else "text/x-python",
                checksum_algorithm="SHA256", server_side_encryption="aws:kms", kms_key_id=args.kms_key_arn,
                bucket_key_enabled=True, opts=pulumi.ResourceOptions(parent=self))
            uploads.append(obj)
            uris[role] = pulumi.Output.concat("s3://", obj.bucket, "/", obj.key)
        uris["reports"] = pulumi.Output.concat("s3://", store.bucket_name, "/", args.reports_prefix)
        return uris, uploads

    def _role(self, name: str, args: ModelMonitoringArgs,
              baseline_prefix: str) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        role = aws.iam.Role(
            f"{name}-role",
            description="SageMaker data-quality monitoring of one lastmile endpoint (components/aws/monitoring.py)",
            assume_role_policy=iam.policy_document([trust(SAGEMAKER_PRINCIPAL, args.account_id)]),
            opts=pulumi.ResourceOptions(parent=self))
        network = args.network
        statements = monitoring_role_statements(
            account_id=args.account_id, region=args.region, bucket_arn=args.artifact_store.bucket_arn,
            read_prefixes=(args.capture_prefix, baseline_prefix), write_prefix=args.reports_prefix,
            kms_key_arn=args.kms_key_arn, subnet_ids=network.subnet_ids if network else (),
            security_group_ids=network.security_group_ids if network else ())
        grants = [aws.iam.RolePolicy(f"{name}-{suffix}", role=role.name, policy=iam.policy_document(body),
                                     opts=pulumi.ResourceOptions(parent=self))
                  for suffix, body in statements.items()]
        return role, grants

    def _job_definition(self, name: str, args: ModelMonitoringArgs, uris: dict[str, Any], role: aws.iam.Role,
                        permissions: list[pulumi.Resource]) -> aws.sagemaker.DataQualityJobDefinition:
        network = args.network
        content = {
            "data_quality_app_specification": {
                "image_uri": analyzer_image_uri(args.region),
                "record_preprocessor_source_uri": uris["preprocessor"],
                "environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            "data_quality_baseline_config": {
                "constraints_resource": {"s3_uri": uris["constraints"]},
                "statistics_resource": {"s3_uri": uris["statistics"]},
            },
            "data_quality_job_input": {"endpoint_input": {
                "endpoint_name": args.endpoint_name, "local_path": PROCESSING_INPUT,
                "s3_data_distribution_type": "FullyReplicated", "s3_input_mode": "File"}},
            "data_quality_job_output_config": {
                "kms_key_id": args.kms_key_arn,
                "monitoring_outputs": {"s3_output": {"s3_uri": uris["reports"], "local_path": PROCESSING_OUTPUT,
                                                     "s3_upload_mode": "EndOfJob"}},
            },
            "job_resources": {"cluster_config": {
                "instance_count": 1, "instance_type": args.job_instance_type,
                "volume_size_in_gb": args.job_volume_gib, "volume_kms_key_id": args.kms_key_arn}},
            "network_config": {
                "enable_network_isolation": True,
                "enable_inter_container_traffic_encryption": True,
                "vpc_config": None if network is None else {
                    "security_group_ids": _sorted_ids(network.security_group_ids),
                    "subnets": _sorted_ids(network.subnet_ids)},
            },
            "role_arn": role.arn,
            "stopping_condition": {"max_runtime_in_seconds": args.max_runtime_seconds},
        }
        return aws.sagemaker.DataQualityJobDefinition(
            f"{name}-job",
            name=pulumi.Output.from_input(content).apply(
                lambda resolved: content_name(f"{args.endpoint_name}-dq", resolved)),
            **content,
            opts=pulumi.ResourceOptions(parent=self, depends_on=permissions))

    def _alarms(self, name: str, args: ModelMonitoringArgs, schedule: aws.sagemaker.MonitoringSchedule,
                topic_arn: pulumi.Output[str]) -> list[aws.cloudwatch.MetricAlarm]:
        specs = {f"alarm-{kind}": spec for kind, spec in health_alarm_args(
            args.health, args.rollback_thresholds, instance_type=args.instance_type,
            endpoint_name=args.endpoint_name, variant_name=args.variant_name).items()}
        for feature in args.baseline.features:
            specs[f"alarm-drift-{feature.replace('_', '-')}"] = drift_alarm_args(
                feature, args.drift_threshold, args.cadence, endpoint_name=args.endpoint_name,
                schedule_name=schedule.name)
        return [aws.cloudwatch.MetricAlarm(f"{name}-{role}", **spec, alarm_actions=[topic_arn], ok_actions=[topic_arn],
                                           opts=pulumi.ResourceOptions(parent=self))
                for role, spec in specs.items()]

    def _routing(self, name: str, args: ModelMonitoringArgs, schedule: aws.sagemaker.MonitoringSchedule,
                 topic_arn: pulumi.Output[str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        rollback = aws.cloudwatch.EventRule(
            f"{name}-rollback-alarms",
            description="State changes of the endpoint's auto-rollback alarms -> alert topic",
            event_pattern=pulumi.Output.json_dumps(rollback_alarm_event_pattern(args.rollback_alarm_names)),
            opts=child)
        aws.cloudwatch.EventTarget(f"{name}-rollback-alarms-target", rule=rollback.name, arn=topic_arn, opts=child)
        violations = aws.cloudwatch.EventRule(
            f"{name}-violations",
            description="A data-quality monitoring run completed with violations -> retraining trigger",
            event_pattern=pulumi.Output.json_dumps(violations_event_pattern(schedule.arn)),
            opts=child)
        retraining = args.retraining
        if retraining.target is RetrainingTarget.TOPIC:
            aws.cloudwatch.EventTarget(f"{name}-violations-target", rule=violations.name, arn=topic_arn, opts=child)
            return
        role = aws.iam.Role(
            f"{name}-retraining-role",
            description="EventBridge starts the retraining pipeline of one lastmile endpoint",
            assume_role_policy=iam.policy_document([trust(EVENTS_PRINCIPAL, args.account_id)]), opts=child)
        grant = aws.iam.RolePolicy(
            f"{name}-retraining", role=role.name,
            policy=iam.policy_document(start_pipeline_statements(args.account_id, args.region,
                                                                 retraining.pipeline_name)),
            opts=child)
        aws.cloudwatch.EventTarget(
            f"{name}-violations-target", rule=violations.name,
            arn=pipeline_arn(args.account_id, args.region, retraining.pipeline_name), role_arn=role.arn,
            sagemaker_pipeline_target={"pipeline_parameter_lists": [
                {"name": key, "value": value} for key, value in sorted(retraining.pipeline_parameters.items())]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[grant]))


def _sorted_ids(ids: tuple[pulumi.Input[str], ...]) -> pulumi.Output[list[str]]:
    """Ids in a stable order (they enter the job definition's content hash), strings or Outputs alike."""
    return pulumi.Output.all(*ids).apply(sorted)
