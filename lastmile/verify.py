"""Post-deploy verification: does the SageMaker endpoint really run what the stack deployed?

``pulumi up`` can report success while SageMaker rolls the endpoint back (blue/green
auto-rollback, a failed update; docs/design-notes.md §Failure modes #3). After every deployment run::

    lastmile verify --stack aws-prod [--wait-seconds 1800] [--json]
    lastmile verify --outputs-file outputs.json --endpoint-url http://127.0.0.1:5000

It reads the stack outputs (``pulumi stack output --json --show-secrets=false``, or a JSON file
of the same shape): ``endpoint_name``, ``endpoint_config_name``, ``region`` and, when exported,
``variant_name``, ``model_names`` and ``rollback_alarm_names`` (named in the rollback message).
Then it asks SageMaker (boto3, the standard AWS credential chain):

- the endpoint is InService, with no FailureReason;
- it runs the endpoint config the stack deployed (a different one means a rollback or drift);
- the running config's variants serve the exported models;
- every production variant has instances, and as many as it wants.

Exit codes (the table of lastmile/exitcodes.py): 0 every check passed; 1 a check failed (rolled back,
failed, runs another config or model); 3 could not check: AWS could not be asked (no outputs, no
endpoint, no credentials) or it is still deploying (``--wait-seconds N`` polls until it settles or N passes).
The checks are :func:`check`, a pure function over DescribeEndpoint/DescribeEndpointConfig
responses; the boto3 and argparse layers around it stay thin.

An onprem stack on a cluster (``lastmile verify --stack onprem-local``) is checked the same way by
:func:`check_kubernetes`, a pure function over the live stable Service and the active slot's Deployment:
the Service selects the stack's ``active_slot``; that slot runs the release of ``slot_releases`` (image
digest and version label); its rollout is complete with at least ``capacity.min_count`` available replicas
(the rules of components.k8s.readiness). Outputs come from the engine (the stack's own backend), the live
objects from ``kubectl`` with the stack's kubeconfig. Same exit codes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from lastmile.common import REPO_ROOT
from lastmile.exitcodes import ExitCode as Codes

SETTLING = frozenset({"Creating", "Updating", "SystemUpdating"})
BROKEN = frozenset({"Failed", "UpdateRollbackFailed", "RollingBack", "OutOfService", "Deleting"})


class Status(StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    PENDING = "PENDING"
    SKIP = "skip"


class ExitCode(IntEnum):
    """verify's outcomes in the one table of lastmile/exitcodes.py."""

    OK = Codes.OK
    FAILED = Codes.FINDINGS  # SageMaker rolled back, failed, or runs another config or model than deployed
    UNAVAILABLE = Codes.UNAVAILABLE  # could not check: no outputs, no credentials, no endpoint, AWS unreachable
    DEPLOYING = Codes.UNAVAILABLE  # could not check yet: still deploying after --wait-seconds


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": str(self.status), "message": self.message}


@dataclass(frozen=True)
class Expected:
    """What the stack says it deployed (its outputs)."""

    endpoint_name: str
    endpoint_config_name: str
    region: str
    variant_name: str | None = None
    model_names: tuple[str, ...] | None = None
    rollback_alarm_names: tuple[str, ...] = ()

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> Expected:
        """Parse stack outputs; every problem is reported at once."""
        problems: list[str] = []

        def text(key: str, required: bool) -> str | None:
            value = outputs.get(key)
            if value is None:
                if required:
                    problems.append(f"output {key!r} is missing")
                return None
            if value == "[secret]":
                problems.append(f"output {key!r} is a secret; verify needs it in plain text (do not mark it secret)")
            elif not isinstance(value, str) or not value:
                problems.append(f"output {key!r} must be a non-empty string, got {value!r}")
            return value if isinstance(value, str) else None

        def names(key: str) -> tuple[str, ...] | None:
            value = outputs.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(n, str) and n for n in value)):
                problems.append(f"output {key!r} must be a list of names, got {value!r}")
                return None
            return tuple(value) if value is not None else None

        expected = cls(
            endpoint_name=text("endpoint_name", True) or "",
            endpoint_config_name=text("endpoint_config_name", True) or "",
            region=text("region", True) or "",
            variant_name=text("variant_name", False),
            model_names=names("model_names"),
            rollback_alarm_names=names("rollback_alarm_names") or (),
        )
        if problems:
            raise OutputsError("stack outputs unusable for verification: " + "; ".join(problems))
        return expected


class OutputsError(ValueError):
    """The stack outputs cannot be read or lack what verification needs."""


# ------------------------------------------------------------------------------------------
# The checks: pure functions over the two Describe responses.


def _deployment_info(endpoint: dict[str, Any]) -> str:
    """LastDeploymentConfig / PendingDeploymentSummary, condensed for a message."""
    parts: list[str] = []
    last = endpoint.get("LastDeploymentConfig") or {}
    routing = (last.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
    if routing:
        size = routing.get("CanarySize") or routing.get("LinearStepSize") or {}
        sized = f" {size.get('Value')} {size.get('Type')}" if size else ""
        parts.append(f"last deployment: {routing.get('Type')}{sized}")
    alarms = [a.get("AlarmName") for a in (last.get("AutoRollbackConfiguration") or {}).get("Alarms") or []]
    if alarms:
        parts.append(f"rollback alarms: {', '.join(str(a) for a in alarms)}")
    pending = endpoint.get("PendingDeploymentSummary") or {}
    if pending:
        parts.append(f"pending deployment of config {pending.get('EndpointConfigName')} "
                     f"started {pending.get('StartTime', '?')}")
    return "; ".join(parts)


def _check_status(endpoint: dict[str, Any], expected: Expected) -> Finding:
    status = endpoint.get("EndpointStatus", "?")
    reason = endpoint.get("FailureReason")
    name = expected.endpoint_name
    if status in BROKEN or reason:
        because = f": {reason}" if reason else ""
        info = _deployment_info(endpoint)
        details = f" ({info})" if info else ""
        return Finding("endpoint-status", Status.FAIL, f"endpoint {name} is {status}{because}{details}")
    if status in SETTLING:
        return Finding("endpoint-status", Status.PENDING,
                       f"endpoint {name} is {status}: still deploying (rerun with --wait-seconds N to wait)")
    if status != "InService":
        return Finding("endpoint-status", Status.FAIL, f"endpoint {name} is {status}, expected InService")
    return Finding("endpoint-status", Status.OK, f"endpoint {name} is InService")


def _check_config(endpoint: dict[str, Any], expected: Expected) -> Finding:
    running = endpoint.get("EndpointConfigName")
    deployed = expected.endpoint_config_name
    if running == deployed:
        return Finding("endpoint-config", Status.OK, f"endpoint runs config {deployed}, as deployed")
    info = _deployment_info(endpoint)
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if pending == deployed and endpoint.get("EndpointStatus") in SETTLING:
        return Finding("endpoint-config", Status.PENDING,
                       f"endpoint {expected.endpoint_name} still runs config {running}; the deployment of "
                       f"{deployed} is in progress ({info})")
    reason = endpoint.get("FailureReason")
    return Finding(
        "endpoint-config", Status.FAIL,
        f"SageMaker rolled endpoint {expected.endpoint_name} back: it runs config {running}, the stack "
        f"deployed config {deployed}"
        + (f" (FailureReason: {reason})" if reason else "")
        + (f" ({info})" if info else "")
        + ". Check the rollback alarms"
        + (f" ({', '.join(expected.rollback_alarm_names)})" if expected.rollback_alarm_names else "")
        + " in CloudWatch and `aws sagemaker describe-endpoint --endpoint-name "
        f"{expected.endpoint_name} --region {expected.region}`; if nobody rolled back, the endpoint "
        "drifted: run `pulumi refresh` and redeploy.",
    )


def _check_variants(endpoint: dict[str, Any], config: dict[str, Any] | None, expected: Expected,
                    config_error: str | None) -> list[Finding]:
    running = endpoint.get("EndpointConfigName")
    if config is None:
        return [Finding("variant-models", Status.FAIL,
                        f"cannot read endpoint config {running} that endpoint {expected.endpoint_name} runs"
                        + (f": {config_error}" if config_error else "")
                        + " (deleted while the endpoint still uses it?)")]
    variants = config.get("ProductionVariants") or []
    findings: list[Finding] = []
    names = [v.get("VariantName") for v in variants]
    if expected.variant_name is not None:
        if expected.variant_name in names:
            findings.append(Finding("variant-name", Status.OK, f"config {running} has variant {expected.variant_name}"))
        else:
            findings.append(Finding("variant-name", Status.FAIL,
                                    f"config {running} has variants {', '.join(map(str, names)) or 'none'}, "
                                    f"the stack exports variant {expected.variant_name}"))
    served = {str(v.get("VariantName")): v.get("ModelName") for v in variants}
    listing = ", ".join(f"{variant}: {model}" for variant, model in served.items()) or "no variants"
    if expected.model_names is None:
        findings.append(Finding("variant-models", Status.SKIP,
                                f"config {running} serves {listing} (the stack exports no model_names to compare)"))
        return findings
    wrong = {variant: model for variant, model in served.items() if model not in expected.model_names}
    if wrong or not served:
        findings.append(Finding("variant-models", Status.FAIL,
                                f"config {running} serves {listing}; the stack deployed models "
                                f"{', '.join(expected.model_names)}"))
    else:
        findings.append(Finding("variant-models", Status.OK, f"config {running} serves {listing}, as deployed"))
    return findings


def _check_capacity(endpoint: dict[str, Any]) -> list[Finding]:
    variants = endpoint.get("ProductionVariants") or []
    settling = endpoint.get("EndpointStatus") in SETTLING
    if not variants:
        return [Finding("variant-capacity", Status.PENDING if settling else Status.FAIL,
                        "the endpoint reports no production variants")]
    findings = []
    for variant in variants:
        name = variant.get("VariantName")
        current, desired = variant.get("CurrentInstanceCount"), variant.get("DesiredInstanceCount")
        states = ", ".join(f"{s.get('Status')}{': ' + s['StatusMessage'] if s.get('StatusMessage') else ''}"
                           for s in variant.get("VariantStatus") or [])
        detail = f" (variant status: {states})" if states else ""
        if current is None and variant.get("CurrentServerlessConfig"):
            findings.append(Finding(f"variant-capacity:{name}", Status.OK, f"variant {name} is serverless"))
        elif current is None or current < 1 or (desired is not None and current != desired):
            wanted = f" of {desired} desired" if desired is not None else ""
            findings.append(Finding(f"variant-capacity:{name}", Status.PENDING if settling else Status.FAIL,
                                    f"variant {name} has {current if current is not None else 'no'} instances"
                                    f"{wanted}{detail}"))
        else:
            findings.append(Finding(f"variant-capacity:{name}", Status.OK,
                                    f"variant {name} runs {current} instances{' as desired' if desired else ''}"))
    return findings


def check(describe_endpoint: dict[str, Any], describe_config: dict[str, Any] | None, expected: Expected,
          *, config_error: str | None = None) -> list[Finding]:
    """Every check over a DescribeEndpoint response and the DescribeEndpointConfig of its running config.

    ``describe_config`` is None when the running config could not be read (``config_error`` says why).
    """
    return [
        _check_status(describe_endpoint, expected),
        _check_config(describe_endpoint, expected),
        *_check_variants(describe_endpoint, describe_config, expected, config_error),
        *_check_capacity(describe_endpoint),
    ]


@dataclass(frozen=True)
class KubernetesExpected:
    """What a Kubernetes stack says it serves (its outputs, and the floor of its stack file)."""

    active_slot: str
    namespace: str
    stable_service: str
    deployments: dict[str, str]  # slot -> namespace/name
    releases: dict[str, dict[str, str]]  # slot -> {model, version, sha256, image}
    min_count: int

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any], min_count: int) -> KubernetesExpected:
        missing = [k for k in ("active_slot", "namespace", "stable_service", "slot_deployments", "slot_releases")
                   if not outputs.get(k)]
        if missing:
            raise OutputsError(f"stack outputs unusable for verification: {', '.join(missing)} missing (a stack that "
                               "serves slots on a cluster exports them; was it deployed by this lastmile?)")
        return cls(str(outputs["active_slot"]), str(outputs["namespace"]), str(outputs["stable_service"]),
                   dict(outputs["slot_deployments"]), dict(outputs["slot_releases"]), min_count)


def check_kubernetes(stable: dict[str, Any] | None, active: dict[str, Any] | None,
                     expected: KubernetesExpected) -> list[Finding]:
    """Does the cluster serve the release the stack says, from the slot it says, with the replicas it says?
    ``stable``: the live stable Service; ``active``: the live Deployment of the stack's active slot (None: gone)."""
    from components.k8s.readiness import below_floor, incomplete

    slot = expected.active_slot
    release = expected.releases.get(slot) or {}
    name = f"{release.get('model')} {release.get('version')}"
    findings = []
    if stable is None:
        findings.append(Finding("stable-slot", Status.FAIL, f"the stable Service {expected.namespace}/"
                                f"{expected.stable_service} does not exist"))
    else:
        selected = ((stable.get("spec") or {}).get("selector") or {}).get("lastmile.dev/slot")
        status = Status.OK if selected == slot else Status.FAIL
        findings.append(Finding("stable-slot", status, f"the stable Service selects slot {selected}; the stack's "
                                f"active slot is {slot}"))
    if active is None:
        return [*findings, Finding("active-release", Status.FAIL,
                                   f"slot {slot}'s Deployment {expected.deployments.get(slot)} does not exist")]
    template = (active.get("spec") or {}).get("template") or {}
    images = {c.get("image") for kind in ("containers", "initContainers")
              for c in (template.get("spec") or {}).get(kind) or []}
    version = ((template.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/version")
    right = images == {release.get("image")} and version == release.get("version")
    findings.append(Finding("active-release", Status.OK if right else Status.FAIL,
                            f"slot {slot} serves {name} ({release.get('image')})" if right else
                            f"slot {slot} runs {', '.join(sorted(map(str, images)))} labelled version {version}; the "
                            f"stack says {name} ({release.get('image')}). `lastmile drift` names what changed"))
    reasons = [*incomplete(active), *below_floor(active, expected.min_count)]
    available = (active.get("status") or {}).get("availableReplicas") or 0
    findings.append(Finding("active-replicas", Status.FAIL if reasons else Status.OK,
                            "; ".join(reasons) if reasons else
                            f"slot {slot} has {available} available replica(s), the floor is {expected.min_count}"))
    return findings


def exit_code(findings: list[Finding]) -> ExitCode:
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return ExitCode.FAILED
    if Status.PENDING in statuses:
        return ExitCode.DEPLOYING
    return ExitCode.OK


# ------------------------------------------------------------------------------------------
# Inputs: stack outputs, and SageMaker through boto3.


def read_stack_outputs(stack: str) -> dict[str, Any]:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets=false", "--stack", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False)
    except FileNotFoundError as exc:
        raise OutputsError("the pulumi CLI is not on PATH; pass --outputs-file with the output of "
                           "`pulumi stack output --json`") from exc
    except subprocess.TimeoutExpired as exc:
        raise OutputsError(f"`{' '.join(command)}` did not answer within 120 s") from exc
    if done.returncode != 0:
        raise OutputsError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return _parse_outputs(done.stdout, f"pulumi stack output of {stack}")


def read_outputs_file(path: Path) -> dict[str, Any]:
    try:
        return _parse_outputs(path.read_text(), str(path))
    except OSError as exc:
        raise OutputsError(f"cannot read outputs file {path}: {exc.strerror}") from exc


def _parse_outputs(text: str, source: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputsError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(outputs, dict):
        raise OutputsError(f"{source} must be a JSON object of stack outputs")
    return outputs


class AwsError(RuntimeError):
    """SageMaker could not be asked, or said no."""


def _describe_error(exc: Exception, what: str, expected: Expected) -> AwsError:
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AwsError(f"no AWS credentials to {what}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                        "(or run where an instance role is available)")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "ClientError"), error.get("Message", str(exc))
        if "Could not find" in message or code in ("ResourceNotFound", "ResourceNotFoundException"):
            return AwsError(f"cannot {what}: it does not exist in region {expected.region} ({message}). Was it "
                            "deleted, or do the stack and the credentials point at another account or region?")
        return AwsError(f"cannot {what}: {code}: {message}")
    return AwsError(f"cannot {what}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Observed:
    endpoint: dict[str, Any]
    config: dict[str, Any] | None
    config_error: str | None


def observe(client: Any, expected: Expected, *, wait_seconds: float = 0, poll_seconds: float = 30,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
            log: Callable[[str], None] = lambda line: None) -> Observed:
    """DescribeEndpoint (polling while it settles, up to ``wait_seconds``), then its running config."""
    deadline = clock() + wait_seconds
    what = f"describe endpoint {expected.endpoint_name}"
    while True:
        try:
            endpoint = client.describe_endpoint(EndpointName=expected.endpoint_name)
        except (BotoCoreError, ClientError) as exc:
            raise _describe_error(exc, what, expected) from exc
        status = endpoint.get("EndpointStatus")
        remaining = deadline - clock()
        if status not in SETTLING or remaining <= 0:
            break
        log(f"endpoint {expected.endpoint_name} is {status}; waiting ({remaining:.0f} s left)")
        sleep(min(poll_seconds, remaining))
    running = endpoint.get("EndpointConfigName")
    try:
        config = client.describe_endpoint_config(EndpointConfigName=running)
        return Observed(endpoint, config, None)
    except (BotoCoreError, ClientError) as exc:
        return Observed(endpoint, None, str(_describe_error(exc, f"describe endpoint config {running}", expected)))


def sagemaker_client(region: str, endpoint_url: str | None) -> Any:
    import boto3  # here, not at the top: `lastmile --help` should not pay for boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30)
    try:
        return boto3.session.Session(region_name=region).client("sagemaker", endpoint_url=endpoint_url, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise AwsError(f"cannot create a SageMaker client for region {region!r}: {exc}") from exc


# ------------------------------------------------------------------------------------------
# The command.


def _render(findings: list[Finding], expected: Expected, code: ExitCode) -> str:
    width = max(len(f.check) for f in findings)
    lines = [f"{str(f.status):7} {f.check:{width}}  {f.message}" for f in findings]
    counts = {s: sum(1 for f in findings if f.status == s) for s in Status}
    pending = any(f.status == Status.PENDING for f in findings)
    verdict = {ExitCode.OK: "verified", ExitCode.FAILED: "FAILED",
               ExitCode.UNAVAILABLE: "still deploying" if pending else "could not check"}[code]
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append(f"{verdict}: endpoint {expected.endpoint_name} in {expected.region} ({tally}) -> exit {int(code)}")
    return "\n".join(lines) + "\n"


def _emit(args: argparse.Namespace, findings: list[Finding], expected: Expected | None, code: ExitCode) -> int:
    if args.json:
        document = {
            "endpoint_name": expected.endpoint_name if expected else None,
            "endpoint_config_name": expected.endpoint_config_name if expected else None,
            "region": expected.region if expected else None,
            "exit_code": int(code),
            "findings": [f.to_json() for f in findings],
        }
        print(json.dumps(document, indent=2))
    elif expected is None:
        print(f"could not check: {findings[0].check}  {findings[0].message} -> exit {int(code)}", file=sys.stderr)
    else:
        print(_render(findings, expected, code), end="")
    return int(code)


def _kubernetes_stack(stack: str | None) -> Any:
    """The settings of ``stack`` when it serves from a cluster only (topology onprem, not render mode), else None."""
    if stack is None or not stack.startswith("onprem-"):  # stack names are <topology>-<env> (lastmile.stackfile)
        return None
    from lastmile.engine import validate_stack

    settings = validate_stack(stack)
    onprem = settings.onprem
    return settings if settings.topology.value == "onprem" and onprem.render_directory is None else None


def _verify_kubernetes(args: argparse.Namespace, settings: Any) -> int:
    """Outputs through the engine, the live objects with kubectl and the stack's kubeconfig, then the pure check."""
    from lastmile.engine import Engine, EngineUnavailable, check_cluster, kubeconfig
    from lastmile.ownership import _kubectl

    def unavailable(check: str, message: str) -> int:
        return _emit_kubernetes(args, [Finding(check, Status.FAIL, message)], Codes.UNAVAILABLE)

    try:
        check_cluster(settings)
        engine = Engine(args.stack)
        if not engine.existing():
            return unavailable("stack-outputs", f"{args.stack} was never deployed with this backend (no state)")
        outputs = {k: v.value for k, v in engine.outputs().items()}
        expected = KubernetesExpected.from_outputs(outputs, settings.capacity.min_count)
    except (EngineUnavailable, OutputsError) as error:
        return unavailable("stack-outputs", str(error))
    live: dict[str, dict[str, Any] | None] = {}
    with kubeconfig(engine, settings) as path:
        wanted = {"stable": f"service/{expected.stable_service}",
                  "active": f"deployment/{expected.deployments.get(expected.active_slot, '/').split('/', 1)[1]}"}
        for key, name in wanted.items():
            got = _kubectl(path, "-n", expected.namespace, "get", name, "-o", "json", "--ignore-not-found")
            if got.returncode != 0:
                return unavailable("cluster", f"kubectl get {name} failed: {got.stderr.strip()[-300:]}")
            live[key] = json.loads(got.stdout) if got.stdout.strip() else None
    findings = check_kubernetes(live["stable"], live["active"], expected)
    return _emit_kubernetes(args, findings, exit_code(findings))


def _emit_kubernetes(args: argparse.Namespace, findings: list[Finding], code: int) -> int:
    if args.json:
        print(json.dumps({"stack": args.stack, "exit_code": int(code), "findings": [f.to_json() for f in findings]},
                         indent=2))
        return int(code)
    width = max(len(f.check) for f in findings)
    for f in findings:
        print(f"{str(f.status):7} {f.check:{width}}  {f.message}")
    verdict = {Codes.OK: "verified", Codes.FINDINGS: "FAILED"}.get(Codes(code), "could not check")
    print(f"{verdict}: stack {args.stack} on its cluster -> exit {int(code)}")
    return int(code)


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.wait_seconds < 0 or args.poll_seconds <= 0:
        args.parser.error("--wait-seconds must be >= 0 and --poll-seconds > 0")
    kubernetes = _kubernetes_stack(args.stack)
    if kubernetes is not None:
        return _verify_kubernetes(args, kubernetes)
    try:
        outputs = read_outputs_file(args.outputs_file) if args.outputs_file else read_stack_outputs(args.stack)
        expected = Expected.from_outputs(outputs)
    except OutputsError as exc:
        return _emit(args, [Finding("stack-outputs", Status.FAIL, str(exc))], None, ExitCode.UNAVAILABLE)
    try:
        client = sagemaker_client(expected.region, args.endpoint_url)
        observed = observe(client, expected, wait_seconds=args.wait_seconds, poll_seconds=args.poll_seconds,
                           log=lambda line: print(line, file=sys.stderr))
    except AwsError as exc:
        findings = [Finding("describe-endpoint", Status.FAIL, str(exc))]
        return _emit(args, findings, expected, ExitCode.UNAVAILABLE)
    findings = check(observed.endpoint, observed.config, expected, config_error=observed.config_error)
    return _emit(args, findings, expected, exit_code(findings))


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify",
        help="after a deploy: check that the SageMaker endpoint, or the cluster, runs what the stack deployed",
        description="Check that a deployed SageMaker endpoint runs what the stack deployed (exit 0 ok, "
        "1 rolled back, failed or runs something else, 3 could not check: no outputs, no credentials, no "
        "endpoint, or still deploying). For an onprem stack on a cluster: the stable Service selects the "
        "stack's active slot, that slot's Deployment runs the stack's release (image digest and version) and has "
        "completed its rollout with at least capacity.min_count available replicas.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="read outputs with `pulumi stack output --json --stack STACK`")
    source.add_argument("--outputs-file", type=Path, help="read outputs from this JSON file instead")
    parser.add_argument("--endpoint-url", help="SageMaker API URL (a local test server); default: AWS")
    parser.add_argument("--wait-seconds", type=float, default=0,
                        help="while the endpoint is Creating/Updating, poll up to this long (default 0: do not wait)")
    parser.add_argument("--poll-seconds", type=float, default=30, help="interval between polls (default 30)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=_cmd_verify, parser=parser)
