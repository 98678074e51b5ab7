"""Cross-field rules of stack config: each a small pure function returning its problems.

A rule runs when the sections it reads parsed cleanly, so one run reports every
structural problem and every rule violation that can be judged.
"""

from __future__ import annotations

from typing import Callable

from components.aws.limits import CANARY_PERCENT_RANGE, MAX_EXECUTION_SECONDS_RANGE
from infra.manifest import file_sha256, load_manifest
from infra.settings.common import Environment, Problem, Topology
from infra.settings.sections import RolloutStrategy

Sections = dict[str, object]
Rule = Callable[[Sections], list[Problem]]

SAGEMAKER_MAX_STEP_PERCENT = CANARY_PERCENT_RANGE[1]
SAGEMAKER_MAX_EXECUTION_SECONDS = MAX_EXECUTION_SECONDS_RANGE[1]
TOPOLOGY_SECTIONS = {Topology.AWS: ("aws",), Topology.ONPREM: ("onprem",), Topology.HYBRID: ("aws", "onprem", "hybrid")}


def topology_sections(s: Sections) -> list[Problem]:
    topology = s["topology"]
    return [
        Problem(section, None, f"topology {topology.value} needs the {section} section",
                f"add lastmile:{section} to the stack file (see README 'Stack config')")
        for section in TOPOLOGY_SECTIONS[topology]
        if s.get(section) is None
    ]


def serving_slots(s: Sections) -> list[Problem]:
    serving = s["serving"]
    problems = []
    if serving.active_slot not in serving.slots:
        problems.append(Problem(
            "serving.active_slot", serving.active_slot.value,
            f"slot {serving.active_slot.value} has no release; releases exist for: "
            f"{', '.join(sorted(k.value for k in serving.slots))}",
            f"add serving.slots.{serving.active_slot.value} or point active_slot at a slot that has one"))
    if serving.shadow_slot is not None:
        if serving.shadow_slot == serving.active_slot:
            problems.append(Problem("serving.shadow_slot", serving.shadow_slot.value,
                                    "the shadow slot cannot be the active slot",
                                    f"set shadow_slot to the other slot ({serving.active_slot.other.value}) or remove it"))
        elif serving.shadow_slot not in serving.slots:
            problems.append(Problem("serving.shadow_slot", serving.shadow_slot.value, "the shadow slot has no release",
                                    f"add serving.slots.{serving.shadow_slot.value} or remove shadow_slot"))
    return problems


def distinct_releases(s: Sections) -> list[Problem]:
    """Blue and green hold different releases: the idle slot is either the next release or the rollback one.

    The same release twice has no purpose and the program could not build it (artifacts and SageMaker
    models are keyed by model and version).
    """
    slots = s["serving"].slots
    if len(slots) < 2:
        return []
    releases = {(r.model, r.version) for r in slots.values()}
    if len(releases) == len(slots):
        return []
    (model, version), = releases
    return [Problem("serving.slots", {slot.value: f"{r.model} {r.version}" for slot, r in sorted(slots.items())},
                    f"both slots hold {model} {version}; each slot holds its own release (the active one and the "
                    "next or rollback release)",
                    "put a different release into the idle slot, or remove the idle slot's entry")]


def releases_match_manifest(s: Sections) -> list[Problem]:
    try:
        manifest = load_manifest()
    except (OSError, ValueError, KeyError) as error:
        return [Problem("serving", None, f"model_artifacts/manifest.json is unreadable: {error}",
                        "restore it (git checkout model_artifacts/) or rebuild with model_artifacts/build.py")]
    problems = []
    for slot, release in sorted(s["serving"].slots.items()):
        field = f"serving.slots.{slot.value}"
        pinned = manifest.get((release.model, release.version))
        if pinned is None:
            known = ", ".join(f"{m} {v}" for m, v in sorted(manifest))
            problems.append(Problem(f"{field}.version", f"{release.model} {release.version}",
                                    f"no such release in model_artifacts/manifest.json; known: {known}",
                                    "build and pin it with model_artifacts/build.py, or pick a known release"))
            continue
        if release.sha256 != pinned.sha256:
            problems.append(Problem(f"{field}.sha256", release.sha256,
                                    f"differs from the manifest's sha256 {pinned.sha256} for {release.model} {release.version}",
                                    "copy the sha256 from model_artifacts/manifest.json (or promote with the promotion command)"))
        if not pinned.artifact_path.is_file():
            problems.append(Problem(f"{field}.version", release.version, f"artifact file {pinned.artifact_path} is missing",
                                    "rebuild it with model_artifacts/build.py"))
        elif (on_disk := file_sha256(pinned.artifact_path)) != pinned.sha256:
            problems.append(Problem(f"{field}.sha256", release.sha256,
                                    f"the artifact file {pinned.artifact_path.name} on disk hashes to "
                                    f"{on_disk}, not the pinned digest: refusing to deploy it",
                                    "restore the artifact (git checkout model_artifacts/) or rebuild and re-pin it"))
    return problems


def rollout_steps(s: Sections) -> list[Problem]:
    rollout = s["rollout"]
    if rollout.strategy == RolloutStrategy.ALL_AT_ONCE:
        if rollout.step_percent is not None:
            return [Problem("rollout.step_percent", rollout.step_percent, "all_at_once shifts all traffic at once; a step has no meaning",
                            "remove step_percent, or set strategy to canary or linear")]
        return []
    if rollout.step_percent is None:
        return [Problem("rollout.step_percent", None, f"{rollout.strategy.value} needs the size of its traffic step",
                        f"set rollout.step_percent (1-{SAGEMAKER_MAX_STEP_PERCENT})")]
    if rollout.step_percent > SAGEMAKER_MAX_STEP_PERCENT:
        return [Problem("rollout.step_percent", rollout.step_percent,
                        f"SageMaker allows a {rollout.strategy.value} step of at most {SAGEMAKER_MAX_STEP_PERCENT} % "
                        f"of the variant's capacity; allowed: 1-{SAGEMAKER_MAX_STEP_PERCENT}",
                        f"set rollout.step_percent to {SAGEMAKER_MAX_STEP_PERCENT} or less")]
    return []


def rollout_fits_timeout(s: Sections) -> list[Problem]:
    rollout = s["rollout"]
    steps = {RolloutStrategy.ALL_AT_ONCE: 0, RolloutStrategy.CANARY: 1}.get(
        rollout.strategy, -(-100 // (rollout.step_percent or 100)) - 1)
    needed = steps * rollout.wait_seconds + rollout.bake_seconds
    if needed <= rollout.max_execution_seconds:
        return []
    fix = (f"raise max_execution_seconds to >= {needed}, or shorten the waits" if needed <= SAGEMAKER_MAX_EXECUTION_SECONDS
           else f"shorten wait_seconds or bake_seconds, or take larger steps: SageMaker caps a deployment at "
                f"{SAGEMAKER_MAX_EXECUTION_SECONDS} s")
    return [Problem("rollout.max_execution_seconds", rollout.max_execution_seconds,
                    f"the rollout needs at least {needed} s ({steps} waits of {rollout.wait_seconds} s plus "
                    f"{rollout.bake_seconds} s bake), more than its timeout", fix)]


def prod_guardrails(s: Sections) -> list[Problem]:
    if s["environment"] != Environment.PROD:
        return []
    problems = []
    rollout, capacity = _section(s, "rollout"), _section(s, "capacity")
    sagemaker = _section(s, "topology") in (Topology.AWS, Topology.HYBRID)  # on-prem switches whole ready slots
    if sagemaker and rollout is not None and rollout.strategy == RolloutStrategy.ALL_AT_ONCE:
        problems.append(Problem("rollout.strategy", rollout.strategy.value,
                                "prod rolls out with canary or linear traffic shifting and auto-rollback",
                                "set rollout.strategy to canary or linear with a step_percent"))
    alarms = _section(s, "alarms")
    if sagemaker and rollout is not None and alarms is not None and rollout.strategy != RolloutStrategy.ALL_AT_ONCE:
        window = alarms.evaluation_minutes * 60
        for field in ("wait_seconds", "bake_seconds"):
            if getattr(rollout, field) < window:
                problems.append(Problem(f"rollout.{field}", getattr(rollout, field),
                                        f"in prod the rollback alarms must be able to trip before traffic moves on: "
                                        f"at least the alarm window, alarms.evaluation_minutes x 60 = {window} s",
                                        f"set rollout.{field} to {window} or more"))
    if capacity is not None:
        for field in ("min_count", "initial_count"):
            if field == "initial_count" and capacity.initial_count == capacity.min_count:
                continue  # one fix (min_count) mends both: initial_count defaults to it
            if getattr(capacity, field) < 2:
                problems.append(Problem(f"capacity.{field}", getattr(capacity, field),
                                        "prod needs at least 2 instances/replicas to survive one failure (SageMaker.4)",
                                        f"set capacity.{field} to 2 or more"))
    return problems


def capacity_order(s: Sections) -> list[Problem]:
    c = s["capacity"]
    if c.min_count <= c.initial_count <= c.max_count:
        return []
    return [Problem("capacity", {"min_count": c.min_count, "initial_count": c.initial_count, "max_count": c.max_count},
                    "needs min_count <= initial_count <= max_count", "reorder the three counts")]


def private_networking(s: Sections) -> list[Problem]:
    aws = _section(s, "aws")
    if aws is not None and s["topology"] == Topology.HYBRID and aws.vpc is not None:
        return [Problem("aws.vpc", [sn.id for sn in aws.vpc.subnets],
                        "the hybrid topology builds its own private VPC (lastmile:hybrid.vpc_cidr); "
                        "these subnets would be ignored",
                        "remove aws.vpc from the hybrid stack file")]
    if aws is None or s["environment"] == Environment.DEV or s["topology"] == Topology.HYBRID:
        return []
    if aws.vpc is None:
        return [Problem("aws.vpc", None, f"{s['environment'].value} runs models inside private subnets (SageMaker.5)",
                        "add aws.vpc with >= 2 subnets in distinct availability zones and security_group_ids")]
    zones = {subnet.availability_zone for subnet in aws.vpc.subnets}
    if len(zones) < 2:
        return [Problem("aws.vpc.subnets", [sn.id for sn in aws.vpc.subnets],
                        f"subnets span {len(zones)} availability zone(s); at least 2 are needed",
                        "add a private subnet in another availability zone")]
    return []


def aws_log_retention(s: Sections) -> list[Problem]:
    from components.aws.limits import check_log_retention

    aws = _section(s, "aws")
    return [] if aws is None else check_log_retention("aws.log_retention_days", aws.log_retention_days)


def sagemaker_images(s: Sections) -> list[Problem]:
    aws = _section(s, "aws")
    if aws is None:
        return []
    try:
        manifest = load_manifest()
    except (OSError, ValueError, KeyError):
        return []  # reported by releases_match_manifest
    problems = []
    for slot, release in sorted(s["serving"].slots.items()):
        pinned = manifest.get((release.model, release.version))
        if pinned is None:
            continue  # reported by releases_match_manifest
        expected = pinned.sagemaker_images.get(aws.region)
        if expected is None:
            problems.append(Problem("aws.region", aws.region, f"the manifest pins no SageMaker image for {aws.region}; "
                                    f"pinned regions: {', '.join(sorted(pinned.sagemaker_images))}",
                                    "add the region to model_artifacts/build.py and rebuild the manifest"))
        elif s["topology"] == Topology.AWS and release.image != expected:
            problems.append(Problem(f"serving.slots.{slot.value}.image", release.image,
                                    f"differs from the manifest's pinned SageMaker image for {aws.region}: {expected}",
                                    "copy the image from model_artifacts/manifest.json"))
    return problems


FAILED = object()  # marks a section that did not parse: reported already, judged by no rule


def _section(s: Sections, name: str):
    """A section that is present and parsed, else None."""
    value = s.get(name)
    return None if value is FAILED else value


# (rule, sections it reads). A rule runs only when all of them parsed cleanly.
# Topology-specific rules live beside their section (infra/settings/aws.py AWS_RULES,
# infra/settings/onprem.py ONPREM_RULES) and are appended in loader.py.
RULES: list[tuple[Rule, tuple[str, ...]]] = [
    (topology_sections, ("topology",)),
    (serving_slots, ("serving",)),
    (distinct_releases, ("serving",)),
    (releases_match_manifest, ("serving",)),
    (rollout_steps, ("rollout",)),
    (rollout_fits_timeout, ("rollout",)),
    (prod_guardrails, ("environment",)),
    (capacity_order, ("capacity",)),
    (private_networking, ("environment", "topology")),
    (aws_log_retention, ()),
    (sagemaker_images, ("serving", "topology")),
]
