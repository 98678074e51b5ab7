"""When a slot's Deployment may take traffic: pure rules over the API object (metadata, spec, status).

One rule set, used by the program's switch check (infra/switch_check.py) before any change and by the
tests that read the cluster: nothing here talks to a cluster or to Pulumi.

- ``incomplete``: the rule ``kubectl rollout status`` applies (the controller has observed the current
  generation, the rollout is within its progress deadline, every desired replica runs the current
  version, none of the previous version is left, every updated replica is available);
- ``below_floor``: fewer available replicas than the stack's floor (``capacity.min_count``). A
  Deployment scaled to 0 of 0 passes the rollout rule, and would leave the stable Service with no
  endpoint, so the floor is a rule of its own;
- ``template_fingerprint``: a digest of the pod template, to tell whether the live Deployment is still
  the one the stack deployed (an image or a probe changed by hand changes it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def incomplete(deployment: Mapping[str, Any]) -> list[str]:
    """Why a Deployment has not completed its rollout; empty if it has."""
    generation = (deployment.get("metadata") or {}).get("generation")
    status = deployment.get("status") or {}
    observed = status.get("observedGeneration")
    if generation is None or observed is None or observed < generation:
        return [f"the Deployment controller has not observed its current version (status.observedGeneration "
                f"{observed}, metadata.generation {generation})"]
    reasons = []
    progressing = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        reasons.append(f"the rollout exceeded its progress deadline ({progressing.get('message')})")
    desired = _spec_replicas(deployment)
    updated, replicas = status.get("updatedReplicas") or 0, status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < desired:
        reasons.append(f"{updated} of {desired} replicas run the current version")
    if replicas > updated:
        reasons.append(f"{replicas - updated} replica(s) of the previous version are still running")
    if available < updated:
        reasons.append(f"{available} of {updated} updated replicas are available")
    return reasons


def below_floor(deployment: Mapping[str, Any], min_count: int) -> list[str]:
    """Why a Deployment has too few available replicas to take traffic; empty if it has enough."""
    available = (deployment.get("status") or {}).get("availableReplicas") or 0
    if available >= min_count:
        return []
    return [f"{available} available replica(s), the stack's floor is {min_count} (capacity.min_count; "
            f"spec.replicas is {_spec_replicas(deployment)})"]


def _spec_replicas(deployment: Mapping[str, Any]) -> int:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)  # the API server's default


def template_fingerprint(template: Mapping[str, Any] | None) -> str:
    """sha256 of a pod template in a canonical JSON form (keys sorted; absent and null fields dropped)."""
    return hashlib.sha256(json.dumps(_pruned(template or {}), sort_keys=True, separators=(",", ":"),
                                     default=str).encode()).hexdigest()


def _pruned(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _pruned(v) for k, v in dict.items(dict(value)) if v is not None and v != {} and v != []}
    if isinstance(value, (list, tuple)):
        return [_pruned(v) for v in value]
    return value
