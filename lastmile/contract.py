"""Contract check: the AWS API requests the provider would send for what the program registers.

Pulumi's mocks accept any value, and no provider validates enums, ranges or name patterns before
``pulumi up`` reaches AWS (docs/design-notes.md §Offline verification). This module turns each registered resource (a
:class:`lastmile.synthesis.Node`, inputs in pulumi-aws camelCase) into the botocore request(s) the
provider sends, and validates them against botocore's service model (:mod:`lastmile.contract_shapes`):

==========================================================  ===========================================
Pulumi resource type                                        API requests
==========================================================  ===========================================
``aws:sagemaker/model:Model``                               sagemaker CreateModel
``aws:sagemaker/endpointConfiguration:EndpointConfiguration``  sagemaker CreateEndpointConfig
``aws:sagemaker/endpoint:Endpoint``                         sagemaker CreateEndpoint, UpdateEndpoint
``aws:appautoscaling/target:Target``                        application-autoscaling RegisterScalableTarget
``aws:appautoscaling/policy:Policy``                        application-autoscaling PutScalingPolicy
``aws:cloudwatch/metricAlarm:MetricAlarm``                  cloudwatch PutMetricAlarm
==========================================================  ===========================================

The network resources of the hybrid stacks (VPN connection with its tunnel options, customer and VPN
gateways, route propagation, flow logs, VPC endpoints, Route 53 Resolver endpoint, CloudWatch log
groups) have explicit mappings in :mod:`lastmile.contract_network` (:data:`NETWORK_MAPPINGS`), checked
here the same way plus the values EC2 enumerates only in its documentation.

Field names are matched to the API's members case-insensitively, guided by the operation's shape
(``volumeSizeInGb`` -> ``VolumeSizeInGB``, ``roleArn`` -> ``RoleARN``, ``okActions`` ->
``OKActions``), except where pulumi-aws names differ beyond case:

- ``name`` -> ``ModelName`` / ``EndpointConfigName`` / ``EndpointName`` / ``PolicyName`` /
  ``AlarmName``; when omitted, the auto-name ``<logical name>-<7 hex>`` stands in (as the mocks do),
  ``namePrefix`` -> prefix plus the provider's 26-character unique suffix;
- EndpointConfiguration ``kmsKeyArn`` -> ``KmsKeyId`` (inside data capture and async output
  configs pulumi-aws already says ``kmsKeyId``);
- pulumi-aws pluralizes single-item blocks: ``s3DataSources`` -> ``S3DataSource``,
  ``routingConfigs`` -> ``RoutingConfig``, ``includeInferenceResponseIns`` -> ``IncludeInferenceResponseIn``;
  a one-element list becomes the structure;
- MetricAlarm ``evaluateLowSampleCountPercentiles`` -> ``EvaluateLowSampleCountPercentile``,
  ``metricQueries`` -> ``Metrics`` with ``metric{metricName, namespace, dimensions, period, stat, unit}``
  regrouped as ``MetricStat{Metric{MetricName, Namespace, Dimensions}, Period, Stat, Unit}``;
- maps become the API's pair lists: ``tags`` -> ``Tags[{Key, Value}]`` (a map again for
  RegisterScalableTarget), alarm ``dimensions`` -> ``Dimensions[{Name, Value}]``;
- step adjustments' ``metricIntervalLowerBound``/``UpperBound`` and predictive scaling's
  ``metricSpecifications[].targetValue`` are strings in pulumi-aws, doubles in the API (``""`` means
  unset); integral floats become integers where the API wants integers;
- ``region``, ``namePrefix`` and ``tagsAll`` are consumed by the provider; Endpoint ``tags`` do not
  travel with UpdateEndpoint.

An input with no counterpart is a ``mapping`` violation, never silently dropped. Masked secrets are
not pattern-checked: such checks are listed as skipped. The recording mocks give every resource an
ARN of the shape AWS gives it, so ARNs are pattern-checked like any other value. ``lastmile contract --stack aws-dev`` runs the check on a stack file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.model import Shape

from lastmile.contract_network import (NETWORK_MAPPINGS, documented_value_violations, network_translations,
                                       opaque_reason)
from lastmile.contract_shapes import Result, Rule, Skipped, Violation, operation_model, validate_params, validate_request
from lastmile.synthesis import Graph, Node, physical_name

__all__ = ["Report", "Request", "check_graph", "check_node", "requests_for", "validate_request", "COVERED_TYPES"]

SAGEMAKER = "sagemaker"
AUTOSCALING = "application-autoscaling"
CLOUDWATCH = "cloudwatch"


@dataclass(frozen=True)
class _Call:
    service: str
    operation: str
    name_member: str | None = None  # the API member that receives the resource's `name`
    omit: frozenset[str] = frozenset()  # inputs the provider sends through another call


@dataclass(frozen=True)
class _Mapping:
    calls: tuple[_Call, ...]
    renames: dict[str, str] = field(default_factory=dict)  # top-level input -> API member, beyond case


_MAPPINGS: dict[str, _Mapping] = {
    "aws:sagemaker/model:Model": _Mapping((_Call(SAGEMAKER, "CreateModel", "ModelName"),)),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _Mapping(
        (_Call(SAGEMAKER, "CreateEndpointConfig", "EndpointConfigName"),), {"kmsKeyArn": "KmsKeyId"}
    ),
    "aws:sagemaker/endpoint:Endpoint": _Mapping(
        (
            _Call(SAGEMAKER, "CreateEndpoint", "EndpointName"),
            _Call(SAGEMAKER, "UpdateEndpoint", "EndpointName", omit=frozenset({"tags"})),
        )
    ),
    "aws:appautoscaling/target:Target": _Mapping((_Call(AUTOSCALING, "RegisterScalableTarget"),)),
    "aws:appautoscaling/policy:Policy": _Mapping((_Call(AUTOSCALING, "PutScalingPolicy", "PolicyName"),)),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _Mapping(
        (_Call(CLOUDWATCH, "PutMetricAlarm", "AlarmName"),),
        {"evaluateLowSampleCountPercentiles": "EvaluateLowSampleCountPercentile", "metricQueries": "Metrics"},
    ),
}
COVERED_TYPES = tuple(sorted({*_MAPPINGS, *NETWORK_MAPPINGS}))

_PROVIDER_ONLY = frozenset({"region", "namePrefix", "tagsAll"})
_NESTED_RENAMES = {
    "s3DataSources": "S3DataSource",
    "routingConfigs": "RoutingConfig",
    "includeInferenceResponseIns": "IncludeInferenceResponseIn",
}
# Inputs pulumi-aws types as strings where the API takes a number (found by the schema walk in tests).
_STRING_NUMBERS = ("stepAdjustments.metricIntervalLowerBound", "stepAdjustments.metricIntervalUpperBound",
                   "predictiveScalingPolicyConfiguration.metricSpecifications.targetValue")
_UNIQUE_SUFFIX = "20260101000000000000000001"  # the provider's prefix suffix is 26 characters
_DROP = object()


@dataclass(frozen=True)
class Request:
    """One API call the provider would make for one resource."""

    resource: str
    service: str
    operation: str
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "service": self.service, "operation": self.operation, "params": self.params}


@dataclass(frozen=True)
class Report:
    requests: tuple[Request, ...]
    violations: tuple[Violation, ...]
    skipped: tuple[Skipped, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "requests": len(self.requests),
            "violations": [v.to_json() for v in self.violations],
            "skipped": [{"resource": s.resource, "path": s.path, "reason": s.reason} for s in self.skipped],
        }

    def text(self) -> str:
        lines = [f"FAIL  {v}" for v in self.violations]
        lines += [f"skip  {s.resource.split('$')[-1]}: {s.path}: {s.reason}" for s in self.skipped]
        verdict = "ok" if self.ok else "FAIL"
        lines.append(
            f"contract {verdict}: {len(self.requests)} requests, {len(self.violations)} violations, "
            f"{len(self.skipped)} checks skipped"
        )
        return "\n".join(lines) + "\n"


def _join(src: str, key: str) -> str:
    return f"{src}.{key}" if src else key


def _is_string_number(src: str) -> bool:
    return re.sub(r"\[\d+\]", "", src).endswith(_STRING_NUMBERS)


def _pair_members(shape: Shape) -> tuple[str, str] | None:
    """(key member, value member) when a list's items are {Key, Value} or {Name, Value} pairs."""
    if shape.type_name == "structure":
        members = set(shape.members)
        for pair in (("Key", "Value"), ("Name", "Value")):
            if members == set(pair):
                return pair
    return None


def _regroup_metric_queries(queries: Any) -> Any:
    """pulumi-aws ``metricQueries[].metric{...}`` -> the API's ``MetricStat{Metric{...}, Period, Stat, Unit}``."""
    if not isinstance(queries, list):
        return queries
    regrouped = []
    for query in queries:
        if isinstance(query, dict) and isinstance(query.get("metric"), dict):
            query = dict(query)
            metric = dict(query.pop("metric"))
            inner = {k: metric.pop(k) for k in ("metricName", "namespace", "dimensions") if k in metric}
            query["metricStat"] = {"metric": inner, **metric}
        regrouped.append(query)
    return regrouped


class _Translator:
    """Pulumi inputs -> one operation's params, guided by the operation's input shape."""

    def __init__(self, resource: str, call: _Call) -> None:
        self.resource = resource
        self.call = call
        self.violations: list[Violation] = []
        self.input_paths: dict[str, str] = {}
        self.opaque: dict[str, str] = {}
        self.scalars: dict[str, Any] = {}  # API path -> the scalar sent there

    def top(self, node: Node, renames: dict[str, str]) -> dict[str, Any]:
        inputs = {k: v for k, v in node.inputs.items() if k not in _PROVIDER_ONLY and k not in self.call.omit}
        if "metricQueries" in inputs:
            inputs["metricQueries"] = _regroup_metric_queries(inputs["metricQueries"])
        name = inputs.pop("name", None)
        shape = operation_model(self.call.service, self.call.operation).input_shape
        params = self.structure(inputs, shape, "", "$", renames)
        if self.call.name_member:
            if name is None:
                prefix = node.inputs.get("namePrefix")
                auto = f"{prefix}{_UNIQUE_SUFFIX}" if isinstance(prefix, str) else physical_name(node.type, node.name)
                name, source = auto, "name (auto-named)"
            else:
                source = "name"
            path = f"$.{self.call.name_member}"
            params[self.call.name_member] = self.value(name, shape.members[self.call.name_member], source, path)
        elif name is not None:
            self._unmapped("name", "$.name", shape)
        return params

    def input_path(self, path: str) -> str:
        """The Pulumi input behind an API path; for a missing member, where it would go."""
        if path in self.input_paths:
            return self.input_paths[path]
        parent, _, member = path.rpartition(".")
        if parent == "$" or parent in self.input_paths:
            return _join(self.input_paths.get(parent, ""), member[:1].lower() + member[1:])
        return ""

    def _unmapped(self, src: str, dst: str, shape: Shape) -> None:
        self.violations.append(Violation(
            self.call.service, self.call.operation, dst, Rule.MAPPING,
            f"no counterpart in {shape.name} (members: {', '.join(shape.members)}); "
            "extend lastmile/contract.py's mapping if the provider sends it",
            resource=self.resource, input_path=src,
        ))

    def structure(self, inputs: dict[str, Any], shape: Shape, src: str, dst: str,
                  renames: dict[str, str] | None = None) -> dict[str, Any]:
        by_lower = {member.lower(): member for member in shape.members}
        out: dict[str, Any] = {}
        for key, item in sorted(inputs.items()):
            if item is None:
                continue
            member = (renames or {}).get(key) or _NESTED_RENAMES.get(key) or by_lower.get(key.lower())
            if member not in shape.members:
                self._unmapped(_join(src, key), f"{dst}.{key}", shape)
                continue
            value = self.value(item, shape.members[member], _join(src, key), f"{dst}.{member}")
            if value is not _DROP:
                out[member] = value
        return out

    def value(self, value: Any, shape: Shape, src: str, dst: str) -> Any:
        self.input_paths[dst] = src
        if (reason := opaque_reason(value)) is not None:
            self.opaque[dst] = reason
            return value
        kind = shape.type_name
        if kind == "structure":
            if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
                value, src = value[0], f"{src}[0]"  # a pulumi-aws single-item block
            return self.structure(value, shape, src, dst) if isinstance(value, dict) else value
        if kind == "list":
            pair = _pair_members(shape.member)
            if isinstance(value, dict) and pair:
                return [{pair[0]: k, pair[1]: self.value(v, shape.member.members[pair[1]], f"{src}.{k}",
                                                         f"{dst}[{i}].{pair[1]}")}
                        for i, (k, v) in enumerate(sorted(value.items()))]
            if isinstance(value, list):
                return [self.value(v, shape.member, f"{src}[{i}]", f"{dst}[{i}]") for i, v in enumerate(value)]
            return value
        if kind == "map" and isinstance(value, dict):
            return {k: self.value(v, shape.value, f"{src}.{k}", f"{dst}[{json.dumps(k)}]") for k, v in value.items()}
        if kind in ("integer", "long", "double", "float") and isinstance(value, str) and _is_string_number(src):
            if value == "":
                return _DROP
            try:
                value = float(value)
            except ValueError:
                return value  # left for the type check
        if kind in ("integer", "long") and isinstance(value, float) and value.is_integer():
            value = int(value)
        self.scalars[dst] = value
        return value


def _translations(node: Node) -> list[tuple[Request, Any]]:
    """(request, translation) pairs; a translation has ``violations``, ``opaque`` and ``input_path()``."""
    if node.type in NETWORK_MAPPINGS:
        return [(Request(node.urn, t.service, t.operation, t.params), t) for t in network_translations(node)]
    mapping = _MAPPINGS.get(node.type)
    if mapping is None:
        return []
    built: list[tuple[Request, Any]] = []
    for call in mapping.calls:
        translator = _Translator(node.urn, call)
        params = translator.top(node, mapping.renames)
        built.append((Request(node.urn, call.service, call.operation, params), translator))
    return built


def requests_for(node: Node) -> list[Request]:
    """The API requests the provider sends for ``node`` (none for types outside COVERED_TYPES)."""
    return [request for request, _ in _translations(node)]


def check_node(node: Node) -> Report:
    """Translate one node into its requests and validate each."""
    requests: list[Request] = []
    violations: list[Violation] = []
    skipped: list[Skipped] = []
    for request, translator in _translations(node):
        requests.append(request)
        violations += translator.violations
        skipped += [Skipped(path, f"not checked: the value is {reason}", node.urn)
                    for path, reason in translator.opaque.items()]
        result: Result = validate_params(request.service, request.operation, request.params)
        found = list(result.violations)
        if node.type in NETWORK_MAPPINGS:
            found = sorted(found + documented_value_violations(request.service, request.operation, request.params),
                           key=lambda v: (v.path, v.rule))
        for violation in found:
            violation = replace(violation, resource=node.urn, input_path=translator.input_path(violation.path))
            under_opaque = any(violation.path == path or violation.path.startswith((f"{path}.", f"{path}[", f"{path} "))
                               for path in translator.opaque)
            if under_opaque and violation.rule != Rule.REQUIRED:
                continue  # reported as skipped above
            violations.append(violation)
        skipped += [replace(s, resource=node.urn) for s in result.skipped]
    return Report(tuple(requests), tuple(violations), tuple(dict.fromkeys(skipped)))


def check_graph(graph: Graph) -> Report:
    """Every covered resource of a synthesized program, translated and validated."""
    requests: list[Request] = []
    violations: list[Violation] = []
    skipped: list[Skipped] = []
    for urn in sorted(graph.nodes):
        report = check_node(graph.nodes[urn])
        requests += report.requests
        violations += report.violations
        skipped += report.skipped
    return Report(tuple(requests), tuple(violations), tuple(skipped))
