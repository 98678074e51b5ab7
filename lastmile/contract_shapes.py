"""Validate one AWS API request against botocore's service model, offline.

Two passes over the same shape model, so every constraint the model states is checked once:

- botocore's own ``ParamValidator``: required members, unknown members, types, tagged unions
  (its ``min`` checks are left to the walker below, which also reports the maximum);
- :func:`walk`: enums, ``min``/``max`` of numbers, ``min``/``max`` length of strings, lists and
  maps, and ``pattern`` (Java regexes, translated by :mod:`lastmile.contract_patterns`).

A violation carries a JSON path into the request (``$.ProductionVariants[0].VolumeSizeInGB``),
the rule, and a message naming the value and what is allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from lastmile.contract_patterns import UntranslatablePattern, compile_java


_NUMBERS = ("integer", "long", "float", "double")


class Rule(StrEnum):
    REQUIRED = "required"
    UNKNOWN = "unknown"
    TYPE = "type"
    UNION = "union"
    ENUM = "enum"
    MIN = "min"
    MAX = "max"
    MIN_LENGTH = "min_length"
    MAX_LENGTH = "max_length"
    PATTERN = "pattern"
    MAPPING = "mapping"  # a Pulumi input with no counterpart in the API request (lastmile.contract)


@dataclass(frozen=True)
class Violation:
    """One broken constraint. ``resource``/``input_path`` are set when it comes from a Pulumi input."""

    service: str
    operation: str
    path: str
    rule: Rule
    message: str
    resource: str = ""
    input_path: str = ""

    def __str__(self) -> str:
        where = f"{self.resource.split('$')[-1]}: " if self.resource else ""
        source = f" (Pulumi input {self.input_path})" if self.input_path else ""
        return f"{where}{self.service} {self.operation} {self.path}{source}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {
            "service": self.service,
            "operation": self.operation,
            "path": self.path,
            "rule": str(self.rule),
            "message": self.message,
            "resource": self.resource,
            "input_path": self.input_path,
        }


@dataclass(frozen=True)
class Skipped:
    """A check that could not run (an untranslatable pattern, a masked secret); reported, not hidden."""

    path: str
    reason: str
    resource: str = ""


@dataclass(frozen=True)
class Result:
    violations: tuple[Violation, ...]
    skipped: tuple[Skipped, ...]


@lru_cache(maxsize=None)
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    try:
        return service_model(service).operation_model(operation)
    except Exception as exc:  # botocore raises OperationNotFoundError / UnknownServiceError
        raise ValueError(f"botocore knows no operation {service}:{operation}: {exc}") from exc


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _param_validator(params: dict[str, Any], shape: Shape, service: str, operation: str) -> list[Violation]:
    """botocore's checks, with its dotted names turned into JSON paths."""
    report = ParamValidator().validate(params, shape)
    found: list[Violation] = []
    # ValidationErrors keeps structured (type, name, details) tuples in ``_errors``; its public
    # API is only a formatted string. Stable since botocore 1.0.
    for error_type, name, details in report._errors:  # noqa: SLF001
        path = "$" + (name if not name or name.startswith((".", "[")) else "." + name)
        if error_type == "missing required field":
            found.append(Violation(service, operation, f"{path}.{details['required_name']}", Rule.REQUIRED,
                                   f"missing: {shape_name_at(shape, name)} requires {details['required_name']}"))
        elif error_type == "unknown field":
            found.append(Violation(service, operation, f"{path}.{details['unknown_param']}", Rule.UNKNOWN,
                                   f"not a member of {shape_name_at(shape, name)}; members: "
                                   + ", ".join(details["valid_names"])))
        elif error_type in ("invalid type", "invalid type for document"):
            valid = ", ".join(t.split("'")[1] if "'" in t else t for t in details["valid_types"])
            found.append(Violation(service, operation, path, Rule.TYPE,
                                   f"{_short(details['param'])} is a {type(details['param']).__name__}, "
                                   f"expected one of: {valid}"))
        elif error_type in ("more than one input", "empty input"):
            found.append(Violation(service, operation, path, Rule.UNION,
                                   f"set exactly one of: {', '.join(details['members'])}"))
        elif error_type in ("invalid range", "invalid length"):
            continue  # the walker reports minima together with maxima
        else:
            found.append(Violation(service, operation, path, Rule.TYPE, f"{error_type}: {details}"))
    return found


def shape_name_at(root: Shape, dotted: str) -> str:
    """The shape name at a botocore dotted name (for messages); the root shape when not found."""
    shape = root
    for part in dotted.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("[") and shape.type_name == "list":
            shape = shape.member
        elif shape.type_name == "structure" and part in shape.members:
            shape = shape.members[part]
    return shape.name


def _check_range(value: float, shape: Shape, path: str, ctx: tuple[str, str], out: list[Violation]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        out.append(Violation(*ctx, path, Rule.MIN, f"{value} is below the minimum {low} ({shape.name})"))
    if high is not None and value > high:
        out.append(Violation(*ctx, path, Rule.MAX, f"{value} is above the maximum {high} ({shape.name})"))


def _check_length(size: int, unit: str, shape: Shape, path: str, ctx: tuple[str, str], out: list[Violation]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        out.append(Violation(*ctx, path, Rule.MIN_LENGTH, f"{size} {unit}, at least {low} required ({shape.name})"))
    if high is not None and size > high:
        out.append(Violation(*ctx, path, Rule.MAX_LENGTH, f"{size} {unit}, at most {high} allowed ({shape.name})"))


def walk(value: Any, shape: Shape, path: str, ctx: tuple[str, str], out: list[Violation],
         skipped: list[Skipped]) -> None:
    """Check what ParamValidator does not: enums, ranges, lengths, patterns (recursively).

    Values of the wrong type are left alone here: ParamValidator reports them.
    """
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members and item is not None:
                walk(item, shape.members[key], f"{path}.{key}", ctx, out, skipped)
    elif kind == "list" and isinstance(value, list):
        _check_length(len(value), "items", shape, path, ctx, out)
        for index, item in enumerate(value):
            walk(item, shape.member, f"{path}[{index}]", ctx, out, skipped)
    elif kind == "map" and isinstance(value, dict):
        _check_length(len(value), "entries", shape, path, ctx, out)
        for key, item in value.items():
            walk(key, shape.key, f"{path}[{json.dumps(key)}] (key)", ctx, out, skipped)
            walk(item, shape.value, f"{path}[{json.dumps(key)}]", ctx, out, skipped)
    elif kind == "string" and isinstance(value, str):
        _check_string(value, shape, path, ctx, out, skipped)
    elif kind in _NUMBERS and isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_range(value, shape, path, ctx, out)
    elif kind == "blob" and isinstance(value, (str, bytes)):
        _check_length(len(value), "bytes", shape, path, ctx, out)


def _check_string(value: str, shape: Shape, path: str, ctx: tuple[str, str], out: list[Violation],
                  skipped: list[Skipped]) -> None:
    allowed = shape.enum
    if allowed and value not in allowed:
        out.append(Violation(*ctx, path, Rule.ENUM, f"{value!r} is not one of: {', '.join(allowed)} ({shape.name})"))
    _check_length(len(value), "characters", shape, path, ctx, out)
    pattern = shape.metadata.get("pattern")
    if pattern:
        try:
            compiled = compile_java(pattern)
        except UntranslatablePattern as exc:
            skipped.append(Skipped(path, f"pattern {pattern!r} of {shape.name} not checked: {exc}"))
            return
        if compiled.fullmatch(value) is None:
            out.append(Violation(*ctx, path, Rule.PATTERN,
                                 f"{_short(value)} does not match the pattern {pattern} ({shape.name})"))


def validate_params(service: str, operation: str, params: dict[str, Any]) -> Result:
    """All violations of ``params`` against ``service:operation``'s input shape, plus skipped checks."""
    shape = operation_model(service, operation).input_shape
    ctx = (service, operation)
    violations = _param_validator(params, shape, service, operation)
    skipped: list[Skipped] = []
    walk(params, shape, "$", ctx, violations, skipped)
    violations.sort(key=lambda v: (v.path, v.rule))
    return Result(tuple(violations), tuple(skipped))


def validate_request(service: str, operation: str, params: dict[str, Any]) -> list[Violation]:
    """The violations of one request, e.g. ``validate_request("ec2", "CreateVpnConnection", {...})``.

    ``service`` is botocore's service name (``sagemaker``, ``application-autoscaling``,
    ``cloudwatch``, ``ec2``), ``operation`` the API operation name. Checks that could not run
    (see :func:`validate_params`) are not violations.
    """
    return list(validate_params(service, operation, params).violations)
