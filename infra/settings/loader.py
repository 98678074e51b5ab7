"""The one place that reads stack config.

``load_settings()`` reads every ``lastmile:*`` key, parses each section into its frozen model,
runs the cross-field rules, and either returns ``StackSettings`` or raises ``ConfigError`` listing
every problem at once (field, value given, what is allowed, how to fix). It runs before the
program registers any resource, so a bad stack file deploys nothing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from infra.settings.aws import AWS_RULES, AwsSettings
from infra.settings.common import (LOCAL_STACKS, MISSING, NAMESPACE, TEAM_SECRETS_PROVIDER, Environment, Problem,
                                   Serving, Strict, Topology)
from infra.settings.onprem import OnpremSettings
from infra.settings.hybrid import HYBRID_RULES, HybridSettings
from infra.settings.observability import OBSERVABILITY_RULES, ObservabilitySettings
from infra.settings.onprem import ONPREM_RULES
from infra.settings.rules import FAILED, RULES as COMMON_RULES
from infra.settings.sections import CAPACITY_DEFAULTS, Alarms, Capacity, Rollout

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class StackSettings(Strict):
    """Everything the program needs, validated. Built only by ``load_settings``."""

    stack: str
    topology: Topology
    environment: Environment
    serving: Serving
    rollout: Rollout
    capacity: Capacity
    alarms: Alarms
    aws: AwsSettings | None = None
    onprem: OnpremSettings | None = None
    hybrid: HybridSettings | None = None
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    secrets: dict[str, Any] = Field(default_factory=dict, description="SECRET_KEYS present -> secret pulumi.Output.")

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @property
    def protect_state(self) -> bool:
        """Stateful resources (keys, buckets, log groups, VPN) are protected in prod."""
        return self.environment == Environment.PROD

    @property
    def ready_timeout_seconds(self) -> int | None:
        """How long the engine waits for a slot's Deployment to become available (Kubernetes serving only):
        onprem.ready_timeout_seconds, else rollout.max_execution_seconds. None: the stack has no Kubernetes half."""
        if self.onprem is None:
            return None
        return self.onprem.ready_timeout_seconds or self.rollout.max_execution_seconds


# key -> (model, required). Order is the order problems are reported in.
SECTIONS: dict[str, tuple[Any, bool]] = {
    "topology": (Topology, True),
    "environment": (Environment, True),
    "serving": (Serving, True),
    "rollout": (Rollout, False),
    "capacity": (Capacity, False),
    "alarms": (Alarms, False),
    "aws": (AwsSettings, False),
    "onprem": (OnpremSettings, False),
    "hybrid": (HybridSettings, False),
    "observability": (ObservabilitySettings, False),
}
# Top-level keys that hold one secret each (``pulumi config set --secret lastmile:<key>``). They are
# read with get_secret, so they stay secret Outputs end to end; validation checks presence only.
SECRET_KEYS: tuple[str, ...] = (
    "kubeconfig", "tls_certificate", "tls_private_key", "model_store_credentials", "vpn_tunnel1_psk", "vpn_tunnel2_psk",
)


RULES = [*COMMON_RULES, *AWS_RULES, *ONPREM_RULES, *HYBRID_RULES, *OBSERVABILITY_RULES]


class ConfigError(pulumi.RunError):
    """A stack's config is wrong. Raised before any resource is registered."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        body = "\n".join(f"  {i}. {p.render(f'{NAMESPACE}:')}" for i, p in enumerate(problems, 1))
        super().__init__(f"stack {stack!r}: config has {count}; nothing was deployed.\n{body}")


def _allowed_keys(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The keys a model accepts at ``loc`` (for 'unknown key' messages)."""
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            args = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
            model = args[-1] if args else annotation
        elif isinstance(part, int):
            args = getattr(model, "__args__", ())
            model = args[0] if args else model
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return None


def _problems_from(section: str, model: Any, error: ValidationError) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        field = ".".join([section, *(str(p) for p in loc)])
        kind, message = err["type"], err["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            problems.append(Problem(field, err["input"], "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else ""),
                                    f"remove {loc[-1]!r} or correct its spelling"))
        elif kind == "missing":
            problems.append(Problem(field, MISSING, "required", f"add lastmile:{field} to the stack file"))
        elif kind in ("enum", "literal_error"):
            problems.append(Problem(field, err["input"], message, "use one of the allowed values"))
        elif kind.startswith(("greater_than", "less_than")) or kind.endswith(("_too_short", "_too_long")):
            problems.append(Problem(field, err["input"], message, "bring the value within the allowed range"))
        elif kind in ("int_type", "bool_type", "float_type", "int_parsing", "bool_parsing", "float_parsing"):
            wanted = {"int": "a whole number", "bool": "true or false", "float": "a number"}[kind.split("_")[0]]
            problems.append(Problem(field, err["input"], f"must be {wanted}, not {type(err['input']).__name__} "
                                    f"{err['input']!r} (no quotes, no yes/no)",
                                    f"write {loc[-1] if loc else section} as {wanted} without quotes"))
        elif kind == "string_pattern_mismatch":
            pattern = err.get("ctx", {}).get("pattern", "")
            problems.append(Problem(field, err["input"], f"does not match the expected form {pattern}",
                                    "correct the value's format (see README 'Stack config')"))
        else:
            problems.append(Problem(field, err.get("input"), message, "correct the value (see README 'Stack config')"))
    return problems


def _with_capacity_defaults(raw: Any, environment: Any) -> Any:
    """Fill omitted capacity fields from the environment's defaults (computed safe defaults)."""
    if not isinstance(raw, dict) or environment is FAILED or environment is None:
        return raw
    filled = {**CAPACITY_DEFAULTS[environment], **raw}
    filled.setdefault("initial_count", filled["min_count"])
    return filled


def parse_settings(stack: str, raw: dict[str, Any], secrets: dict[str, Any] | None = None, *,
                   secrets_provider: str | None = None) -> StackSettings:
    """Validate raw section values (already JSON-decoded). Pure: no Pulumi needed.

    ``secrets`` maps the SECRET_KEYS that are set to their (secret Output) values. ``secrets_provider``: the
    stack file's (``passphrase`` when it names none); None leaves it unjudged (a test of the sections alone).
    """
    problems: list[Problem] = list(secrets_provider_problems(stack, raw.get("environment"), secrets_provider))
    for key in sorted(set(raw) - set(SECTIONS) - set(SECRET_KEYS)):
        problems.append(Problem(key, raw[key], f"unknown key; lastmile keys are: {', '.join(SECTIONS)}",
                                f"remove lastmile:{key} or correct its spelling"))
    problems.extend(_duplicates(raw))
    parsed: dict[str, Any] = {}
    for key, (model, required) in SECTIONS.items():
        value = raw.get(key)
        if key == "capacity":
            value = _with_capacity_defaults({} if value is None else value, parsed.get("environment"))
        if value is None:
            if required:
                problems.append(Problem(key, MISSING, "required", f"add lastmile:{key} to the stack file"))
                parsed[key] = FAILED
            elif key not in ("aws", "onprem", "hybrid"):
                parsed[key] = model()
            else:
                parsed[key] = None
            continue
        try:
            parsed[key] = TypeAdapter(model).validate_python(value)
        except ValidationError as error:
            problems.extend(_problems_from(key, model, error) if issubclass_model(model) else [
                Problem(key, value, error.errors(include_url=False)[0]["msg"], "use one of the allowed values")])
            parsed[key] = _salvage(model, value, error)
    parsed["secret_keys"] = frozenset(secrets or {})  # presence only: rules never see secret values
    reported = [p.field for p in problems]
    for rule, needs in RULES:
        if all(parsed.get(n) is not FAILED for n in needs) and all(parsed.get(n) is not None for n in needs):
            problems.extend(p for p in rule(parsed) if not _overlaps(p.field, reported))
    if problems:
        raise ConfigError(stack, problems)
    del parsed["secret_keys"]
    return StackSettings(stack=stack, secrets=dict(secrets or {}), **parsed)


def _duplicates(value: Any, path: str = "") -> list[Problem]:
    """Items given twice in a list (a subnet, an email, a CIDR): a copy-paste slip, never an intention.

    Items with an ``id`` or ``name`` are compared by it; others by their whole value.
    """
    problems: list[Problem] = []
    if isinstance(value, dict):
        for key, item in value.items():
            problems.extend(_duplicates(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        seen: dict[str, int] = {}
        for index, item in enumerate(value):
            identity = item.get("id", item.get("name")) if isinstance(item, dict) else None
            token = json.dumps(identity if identity is not None else item, sort_keys=True, default=str)
            if token in seen:
                shown = identity if identity is not None else item
                problems.append(Problem(f"{path}[{index}]", shown, f"given twice in this list (also at "
                                        f"{path}[{seen[token]}])", f"remove the duplicate {path}[{index}]"))
            else:
                seen[token] = index
            problems.extend(_duplicates(item, f"{path}[{index}]"))
    return problems


def _salvage(model: Any, value: Any, error: ValidationError) -> Any:
    """The section without its invalid fields (defaults in their place), for judging the rules.

    So a bad wait_seconds does not hide a bad step_percent: every problem is reported in one run.
    FAILED when even that does not parse (the rules that read the section then stay silent).
    """
    errors = error.errors(include_url=False)
    if not (issubclass_model(model) and isinstance(value, dict)) or not all(_prunable(e["type"]) for e in errors):
        return FAILED
    pruned = copy.deepcopy(value)
    for err in errors:
        *path, leaf = err["loc"] or ("",)
        node = pruned
        for part in path:
            node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    try:
        return TypeAdapter(model).validate_python(pruned)
    except ValidationError:
        return FAILED


def _prunable(kind: str) -> bool:
    """Errors whose field can fall back to its default without changing what the rules judge.

    Not an invalid enum (a defaulted strategy would raise rule problems the user never wrote).
    """
    return kind == "extra_forbidden" or kind == "string_pattern_mismatch" or kind.startswith(("greater_than", "less_than"))


def _has(node: Any, part: Any) -> bool:
    return part in node if isinstance(node, dict) else isinstance(part, int) and 0 <= part < len(node)


def _overlaps(field: str, reported: list[str]) -> bool:
    """True when ``field`` is, contains or lies inside an already reported field."""
    return any(field == r or field.startswith(r + ".") or r.startswith(field + ".") for r in reported)


def issubclass_model(model: Any) -> bool:
    return isinstance(model, type) and issubclass(model, BaseModel)


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _raw_config() -> tuple[dict[str, Any], dict[str, Any]]:
    """Every ``lastmile:*`` key the engine passed, JSON objects decoded."""
    from pulumi.runtime import config as runtime_config

    # Private SDK state, kept on purpose: pulumi.Config reads one named key and cannot list them, and
    # listing every key is how a misspelt one is refused instead of silently ignored.
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for full_key in sorted(k for k in keys if k.startswith(prefix)):
        key = full_key[len(prefix):]
        if key in SECRET_KEYS:
            secrets[key] = config.require_secret(key)
        else:
            raw[key] = _decode(config.get(key))
    return raw, secrets


def required_secret_keys(raw: dict[str, Any]) -> tuple[str, ...]:
    """The secret keys a stack's topology needs, by name, from its raw (decoded) ``lastmile:*`` sections.

    Offline synthesis of a team stack uses it: there the secrets live encrypted with the team's key and
    are assumed set; under the engine the loader still refuses a stack that lacks one.
    """
    if raw.get("topology") not in (Topology.ONPREM.value, Topology.HYBRID.value) or not isinstance(raw.get("onprem"), dict):
        return ()
    from infra.settings.onprem import required_secrets

    try:
        onprem = OnpremSettings.model_validate(raw["onprem"])
    except ValidationError:
        return ()
    return tuple(problem.field for problem in required_secrets(onprem, frozenset()))


def secrets_provider_problems(stack: str, environment: Any, secrets_provider: str | None) -> list[Problem]:
    """Local by declaration (LOCAL_STACKS, dev only), never by a missing line: a team stack whose file lost its
    ``secretsprovider:`` would otherwise encrypt its secrets with a passphrase anyone can read."""
    if secrets_provider is None:
        return []
    if stack in LOCAL_STACKS:
        if environment not in (None, Environment.DEV.value):
            return [Problem("environment", environment, f"{stack} is a local stack (public passphrase, state in the "
                            "repository), which is only ever dev", "keep environment: dev, or use a team stack")]
        return []
    if secrets_provider.startswith(TEAM_SECRETS_PROVIDER):
        return []
    return [Problem("secretsprovider", secrets_provider, f"{stack} is a team stack (the local ones are "
                    f"{', '.join(sorted(LOCAL_STACKS))}): its secrets must be encrypted with the team's KMS key, "
                    f"{TEAM_SECRETS_PROVIDER}...; without the line Pulumi uses a passphrase",
                    f"add `secretsprovider: {TEAM_SECRETS_PROVIDER}alias/lastmile-<env>?region=<region>` to "
                    f"stacks/Pulumi.{stack}.yaml and re-encrypt its secrets with `pulumi config set --secret`")]


def stack_file_secrets_provider(stack: str) -> str | None:
    """The secrets provider the stack file names (``passphrase`` when none), read from the stack file the engine
    uses (Pulumi.yaml's stackConfigDir); None when there is no such file (a program run outside the project)."""
    import yaml

    path = PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return str(document.get("secretsprovider") or "passphrase") if isinstance(document, dict) else None


def load_settings() -> StackSettings:
    """Read and validate this stack's config, or raise ConfigError with every problem."""
    raw, secrets = _raw_config()
    stack = pulumi.get_stack()
    return parse_settings(stack, raw, secrets, secrets_provider=stack_file_secrets_provider(stack))
