"""Shared vocabulary of stack config: enums, the strict base model, problems and releases."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from components.problems import MISSING, Problem  # noqa: F401 (the settings' vocabulary re-exports the one type)
from components.slots import Slot

NAMESPACE = "lastmile"
LOCAL_STACKS = frozenset({"onprem-local", "onprem-gitops"})
"""The stacks that only ever run on a developer's machine: state in the repository's file backend, secrets
with Pulumi's passphrase provider and a public passphrase. Declared here, reviewed as code: every other stack
is a team stack and must keep its secrets with the team's KMS key (``secretsprovider: awskms://...``)."""
TEAM_SECRETS_PROVIDER = "awskms://"


class Topology(StrEnum):
    AWS = "aws"
    ONPREM = "onprem"
    HYBRID = "hybrid"


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Strict(BaseModel):
    """Frozen, closed config model: an unknown key is an error, not a silent no-op."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


SHA256_PATTERN = r"^[0-9a-f]{64}$"


class Release(Strict):
    """One model release: what a slot serves. Promotion moves exactly these fields between stacks."""

    model: str = Field(description="Model name in model_artifacts/manifest.json.", pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    version: str = Field(description="Release version in the manifest.", pattern=r"^\d+\.\d+\.\d+$")
    sha256: str = Field(description="sha256 of the artifact; must equal the manifest and the file.", pattern=SHA256_PATTERN)
    image: str = Field(description="Serving image. Kubernetes: an OCI image reference pinned by @sha256 digest "
                                   "(components.k8s.common.check_image_reference). SageMaker: the manifest's URI.")


class Serving(Strict):
    """Which release each slot holds and which slot takes traffic."""

    active_slot: Slot
    slots: dict[Slot, Release] = Field(min_length=1)
    shadow_slot: Slot | None = Field(
        default=None,
        description="SageMaker only: mirror traffic to this slot's release as a shadow variant. Omitted: no shadow.",
    )
    allow_in_place_release: bool = Field(
        default=False,
        description="Kubernetes on a cluster: let one update change the active slot's release in place, a rolling "
                    "update of live traffic gated only by Kubernetes' readiness probes. Omitted: refused by the "
                    "switch check; release into the idle slot and flip.",
    )

    weights: dict[Slot, StrictInt] | None = Field(
        default=None,
        description="Kubernetes (Gateway API entry): each slot's share of the route's traffic, integers read as a "
                    "proportion (90 and 10 is 90 %/10 %; 0 takes a slot out of the route; at most 1000000 each). "
                    "Omitted: all traffic on active_slot (100 on it, 0 on the other).",
    )

    @property
    def active(self) -> Release:
        return self.slots[self.active_slot]

    @property
    def traffic_weights(self) -> dict[Slot, int]:
        """The weight of every slot that has a release (the route's backends), defaults filled in."""
        if self.weights is None:
            return {slot: 100 if slot == self.active_slot else 0 for slot in sorted(self.slots)}
        return {slot: self.weights.get(slot, 0) for slot in sorted(self.slots)}
