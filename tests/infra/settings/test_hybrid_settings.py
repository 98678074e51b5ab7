"""The ``lastmile:hybrid`` section: structure (HybridSettings), semantics (HYBRID_RULES), and the loader path.

Pure validation, no Pulumi engine. Rules are called directly with parsed sections; the loader path
(``parse_settings``) is checked for the hybrid problems only, so a change in another section's
required fields does not mask or fake a hybrid result.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
from pydantic import ValidationError

from components.network.tunnel_crypto import (
    DEFAULT_DH_GROUPS,
    DEFAULT_ENCRYPTION,
    DEFAULT_INTEGRITY,
    DhGroup,
    DpdTimeoutAction,
    EncryptionAlgorithm,
    StartupAction,
    VpnRouting,
)
from infra import manifest as manifest_module
from infra.settings.aws import AwsSettings
from infra.settings.common import Problem, Topology
from infra.settings.hybrid import HYBRID_RULES, HybridSettings, ServingPlane
from infra.settings.loader import ConfigError, parse_settings

PINNED = manifest_module.load_manifest()[("iris-classifier", "1.0.0")]


def valid_hybrid() -> dict:
    return {
        "vpc_cidr": "10.40.0.0/16",
        "availability_zones": ["eu-west-1a", "eu-west-1b"],
        "onprem_cidrs": ["10.20.0.0/16", "192.168.50.0/24"],
        "customer_gateway": {"ip_address": "93.184.216.34", "bgp_asn": 65010},
        "tunnels": [{"inside_cidr": "169.254.10.0/30"}, {"inside_cidr": "169.254.10.4/30"}],
        "traffic_policy": {"primary": "onprem"},
    }


def valid_raw() -> dict:
    """A whole hybrid-prod config; the onprem part is best effort (see module docstring)."""
    return {
        "topology": "hybrid",
        "environment": "prod",
        "serving": {"active_slot": "blue", "slots": {"blue": {
            "model": PINNED.model, "version": PINNED.version, "sha256": PINNED.sha256,
            "image": PINNED.sagemaker_images["eu-west-1"]}}},
        "rollout": {"strategy": "canary", "step_percent": 10, "wait_seconds": 600, "bake_seconds": 900},
        "capacity": {"min_count": 2, "max_count": 6},
        "aws": {"account_id": "123456789012", "region": "eu-west-1"},
        "onprem": {"ingress": {"host": "iris.serving.example.internal"},
                   "model_store": {"endpoint": "https://models.example.internal", "bucket": "lastmile-models",
                                   "egress_cidrs": ["10.20.30.0/24"]}},
        "hybrid": valid_hybrid(),
    }


def sections(hybrid: dict, topology: Topology = Topology.HYBRID, secret_keys: frozenset = frozenset()) -> dict:
    return {"topology": topology, "aws": AwsSettings(account_id="123456789012", region="eu-west-1"),
            "hybrid": HybridSettings.model_validate(hybrid), "secret_keys": secret_keys}


def rule_problems(hybrid: dict, topology: Topology = Topology.HYBRID) -> list[Problem]:
    parsed = sections(hybrid, topology)
    return [p for rule, _ in HYBRID_RULES for p in rule(parsed)]


def loader_hybrid_problems(raw: dict) -> list[Problem]:
    try:
        parse_settings("hybrid-prod", raw)
    except ConfigError as error:
        return [p for p in error.problems if p.field == "hybrid" or p.field.startswith("hybrid.")]
    return []


# --- structure -----------------------------------------------------------------------------------


def test_minimal_section_gets_the_hardened_defaults():
    minimal = valid_hybrid()
    del minimal["tunnels"]
    settings = HybridSettings.model_validate(minimal)
    assert settings.routing is VpnRouting.BGP and settings.amazon_side_asn == 64512
    assert settings.traffic_policy.primary is ServingPlane.ONPREM and settings.traffic_policy.failover is True
    assert len(settings.tunnels) == 2
    for tunnel in settings.tunnels:
        assert tuple(tunnel.phase1_encryption_algorithms) == DEFAULT_ENCRYPTION
        assert tuple(tunnel.phase2_integrity_algorithms) == DEFAULT_INTEGRITY
        assert tuple(tunnel.phase2_dh_group_numbers) == DEFAULT_DH_GROUPS
        assert tunnel.dpd_timeout_action is DpdTimeoutAction.RESTART and tunnel.startup_action is StartupAction.START
        assert tunnel.inside_cidr is None
    assert rule_problems(minimal) == []


def test_valid_section_has_no_rule_problems():
    assert rule_problems(valid_hybrid()) == []


def test_section_is_frozen_and_closed():
    settings = HybridSettings.model_validate(valid_hybrid())
    with pytest.raises(ValidationError):
        settings.vpc_cidr = "10.0.0.0/16"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        HybridSettings.model_validate({**valid_hybrid(), "vpn_psk": "x"})


@pytest.mark.parametrize(
    "tunnel, loc, given",
    [
        ({"phase1_encryption_algorithms": ["AES128"]}, ("phase1_encryption_algorithms", 0), "AES128"),
        ({"phase2_encryption_algorithms": ["AES256", "AES128-GCM-16"]}, ("phase2_encryption_algorithms", 1), "AES128-GCM-16"),
        ({"phase1_integrity_algorithms": ["SHA1"]}, ("phase1_integrity_algorithms", 0), "SHA1"),
        ({"phase2_integrity_algorithms": ["MD5"]}, ("phase2_integrity_algorithms", 0), "MD5"),
        ({"phase1_dh_group_numbers": [2]}, ("phase1_dh_group_numbers", 0), 2),
        ({"phase2_dh_group_numbers": [14, 5]}, ("phase2_dh_group_numbers", 1), 5),
        ({"phase2_dh_group_numbers": [24]}, ("phase2_dh_group_numbers", 0), 24),
        ({"phase1_encryption_algorithms": []}, ("phase1_encryption_algorithms",), []),
        ({"dpd_timeout_action": "none"}, ("dpd_timeout_action",), "none"),
        ({"dpd_timeout_seconds": 10}, ("dpd_timeout_seconds",), 10),
        ({"ike_versions": ["ikev1"]}, ("ike_versions",), ["ikev1"]),  # not configurable: always IKEv2
    ],
)
def test_crypto_outside_the_allow_list_is_rejected(tunnel: dict, loc: tuple, given):
    raw = valid_hybrid()
    raw["tunnels"][1].update(tunnel)
    with pytest.raises(ValidationError) as caught:
        HybridSettings.model_validate(raw)
    (error,) = caught.value.errors()
    assert error["loc"] == ("tunnels", 1, *loc) and error["input"] == given


# --- rules ---------------------------------------------------------------------------------------


def _set(path: str, value):
    def mutate(raw: dict) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return mutate


@pytest.mark.parametrize(
    "mutate, field, value, words",
    [
        (_set("onprem_cidrs", ["10.40.128.0/20"]), "hybrid.onprem_cidrs.0", "10.40.128.0/20", "overlaps the VPC"),
        (_set("onprem_cidrs", ["10.0.0.0/8"]), "hybrid.onprem_cidrs.0", "10.0.0.0/8", "overlaps the VPC"),
        (_set("onprem_cidrs", ["10.20.0.0/16", "10.20.4.0/22"]), "hybrid.onprem_cidrs.1", "10.20.4.0/22", "overlaps"),
        (_set("onprem_cidrs", ["8.8.8.0/24"]), "hybrid.onprem_cidrs.0", "8.8.8.0/24", "RFC 1918"),
        (_set("onprem_cidrs", ["100.64.0.0/16"]), "hybrid.onprem_cidrs.0", "100.64.0.0/16", "RFC 1918"),
        (_set("onprem_cidrs", ["0.0.0.0/0"]), "hybrid.onprem_cidrs.0", "0.0.0.0/0", "RFC 1918"),
        (_set("onprem_cidrs", ["10.20.0.1/16"]), "hybrid.onprem_cidrs.0", "10.20.0.1/16", "host bits"),
        (_set("onprem_cidrs", []), "hybrid.onprem_cidrs", [], "at least one"),
        (_set("vpc_cidr", "52.10.0.0/16"), "hybrid.vpc_cidr", "52.10.0.0/16", "RFC 1918"),
        (_set("customer_gateway.ip_address", "10.1.2.3"), "hybrid.customer_gateway.ip_address", "10.1.2.3", "public"),
        (_set("customer_gateway.ip_address", "192.168.1.1"), "hybrid.customer_gateway.ip_address", "192.168.1.1", "public"),
        (_set("customer_gateway.ip_address", "100.64.1.1"), "hybrid.customer_gateway.ip_address", "100.64.1.1", "shared"),
        (_set("customer_gateway.ip_address", "198.51.100.7"), "hybrid.customer_gateway.ip_address", "198.51.100.7",
         "documentation"),
        (_set("customer_gateway.ip_address", "127.0.0.1"), "hybrid.customer_gateway.ip_address", "127.0.0.1", "loopback"),
        (_set("customer_gateway.ip_address", "vpn.example.com"), "hybrid.customer_gateway.ip_address", "vpn.example.com",
         "public"),
        (_set("amazon_side_asn", 65010), "hybrid.amazon_side_asn", 65010, "two ASNs"),
        (_set("amazon_side_asn", 65535), "hybrid.amazon_side_asn", 65535, "private ASN"),
        (_set("tunnels", [{}]), "hybrid.tunnels", [{}], "two tunnels"),
        (_set("tunnels", []), "hybrid.tunnels", [], "two tunnels"),
        (_set("tunnels", [{}, {}, {}]), "hybrid.tunnels", [{}, {}, {}], "two tunnels"),
        (_set("tunnels.1.inside_cidr", "169.254.10.0/30"), "hybrid.tunnels.1.inside_cidr", "169.254.10.0/30", "same"),
        (_set("tunnels.0.inside_cidr", "169.254.169.252/30"), "hybrid.tunnels.0.inside_cidr", "169.254.169.252/30",
         "reserved"),
        (_set("tunnels.0.inside_cidr", "10.0.0.0/30"), "hybrid.tunnels.0.inside_cidr", "10.0.0.0/30", "169.254.0.0/16"),
        (_set("tunnels.0.phase1_dh_group_numbers", [19, 19]), "hybrid.tunnels.0.phase1_dh_group_numbers", [19, 19], "twice"),
        (_set("availability_zones", ["eu-west-1a"]), "hybrid.availability_zones", ["eu-west-1a"], "2 distinct"),
        (_set("availability_zones", ["eu-west-1a", "eu-west-1a"]), "hybrid.availability_zones",
         ["eu-west-1a", "eu-west-1a"], "2 distinct"),
        (_set("availability_zones", ["eu-west-1a", "us-east-1b"]), "hybrid.availability_zones", ["us-east-1b"], "region"),
    ],
)
def test_each_invalid_input_is_one_problem_with_field_value_and_fix(mutate, field: str, value, words: str):
    raw = valid_hybrid()
    mutate(raw)
    problems = rule_problems(raw)
    assert len(problems) == 1, [p.render() for p in problems]
    (problem,) = problems
    assert (problem.field, problem.value) == (field, value)
    text = problem.render("lastmile:")  # as ConfigError shows it
    assert words in text and text.startswith(f"lastmile:{field} = ") and "fix: " in text and problem.fix


def test_static_routing_may_share_the_asn():
    raw = valid_hybrid()
    raw.update(routing="static", amazon_side_asn=65010)
    assert rule_problems(raw) == []


def test_hybrid_section_only_in_the_hybrid_topology():
    (problem,) = rule_problems(valid_hybrid(), Topology.AWS)
    assert problem.field == "hybrid" and "topology" in problem.fix


def test_vpn_keys_only_in_the_hybrid_topology():
    parsed = sections(valid_hybrid(), Topology.AWS, frozenset({"vpn_tunnel2_psk", "kubeconfig"}))
    problems = [p for rule, _ in HYBRID_RULES if rule.__name__ == "vpn_keys_need_hybrid_topology" for p in rule(parsed)]
    assert [(p.field, p.value) for p in problems] == [("vpn_tunnel2_psk", "[secret]")]
    assert "pulumi config rm lastmile:vpn_tunnel2_psk" in problems[0].fix
    hybrid = sections(valid_hybrid(), Topology.HYBRID, frozenset({"vpn_tunnel1_psk", "vpn_tunnel2_psk"}))
    assert [p for rule, _ in HYBRID_RULES for p in rule(hybrid)] == []


def test_rules_report_every_problem_at_once():
    raw = valid_hybrid()
    raw["onprem_cidrs"] = ["8.8.8.0/24", "10.40.0.0/24"]
    raw["customer_gateway"]["ip_address"] = "10.0.0.1"
    raw["tunnels"] = [{}]
    fields = {p.field for p in rule_problems(raw)}
    assert fields == {"hybrid.onprem_cidrs.0", "hybrid.onprem_cidrs.1", "hybrid.customer_gateway.ip_address",
                      "hybrid.tunnels"}


def test_each_rule_declares_what_it_reads():
    for rule, needs in HYBRID_RULES:
        assert "hybrid" in needs or "secret_keys" in needs, rule.__name__
        parsed = sections(valid_hybrid())
        rule({k: parsed[k] for k in needs})  # reads nothing it did not declare


# --- through the loader ----------------------------------------------------------------------------


def test_valid_hybrid_config_has_no_hybrid_problems():
    assert loader_hybrid_problems(valid_raw()) == []


def test_loader_passes_the_vpn_keys_presence_to_the_rules():
    raw = valid_raw()
    raw["topology"] = "aws"
    del raw["hybrid"]
    try:
        parse_settings("aws-prod", raw, secrets={"vpn_tunnel1_psk": object()})
    except ConfigError as error:
        assert [p.field for p in error.problems if p.field.startswith("vpn_")] == ["vpn_tunnel1_psk"]
    else:
        pytest.fail("a VPN key in a stack without a VPN must be reported")


@pytest.mark.parametrize(
    "mutate, field, value",
    [
        (_set("hybrid.onprem_cidrs", ["10.40.0.0/24"]), "hybrid.onprem_cidrs.0", "10.40.0.0/24"),  # overlaps the VPC
        (_set("hybrid.onprem_cidrs", ["52.95.0.0/16"]), "hybrid.onprem_cidrs.0", "52.95.0.0/16"),  # not private
        (_set("hybrid.tunnels.0.phase1_dh_group_numbers", [2]), "hybrid.tunnels.0.phase1_dh_group_numbers.0", 2),
        (_set("hybrid.tunnels.1.phase2_encryption_algorithms", ["AES128"]),
         "hybrid.tunnels.1.phase2_encryption_algorithms.0", "AES128"),
        (_set("hybrid.tunnels", [{"inside_cidr": "169.254.10.0/30"}]), "hybrid.tunnels", [{"inside_cidr": "169.254.10.0/30"}]),
        (_set("hybrid.customer_gateway.ip_address", "172.16.5.5"), "hybrid.customer_gateway.ip_address", "172.16.5.5"),
        (_set("hybrid.availability_zones", ["eu-west-1a", "eu-central-1b"]), "hybrid.availability_zones", ["eu-central-1b"]),
        (_set("hybrid.routing", "ospf"), "hybrid.routing", "ospf"),
    ],
)
def test_loader_rejects_each_invalid_input_with_a_clear_problem(mutate, field: str, value):
    raw = valid_raw()
    mutate(raw)
    problems = loader_hybrid_problems(raw)
    assert [(p.field, p.value) for p in problems] == [(field, value)], [p.render() for p in problems]
    assert problems[0].fix and problems[0].message


def test_loader_reports_all_hybrid_problems_at_once_and_does_not_mutate_input():
    raw = valid_raw()
    raw["hybrid"]["onprem_cidrs"] = ["10.40.0.0/24"]
    raw["hybrid"]["customer_gateway"]["ip_address"] = "10.9.9.9"
    raw["hybrid"]["tunnels"] = [{}]
    before = copy.deepcopy(raw)
    fields = {p.field for p in loader_hybrid_problems(raw)}
    assert fields == {"hybrid.onprem_cidrs.0", "hybrid.customer_gateway.ip_address", "hybrid.tunnels"}
    assert raw == before


# --- settings and component agree -----------------------------------------------------------------


def test_settings_tunnels_become_component_tunnel_options():
    """What the builder will do: every parsed tunnel is valid TunnelOptions with the same hardened values."""
    from components.network.vpn import TunnelOptions

    defaults = {f.name: f.default for f in dataclasses.fields(TunnelOptions)}
    for tunnel in HybridSettings.model_validate(valid_hybrid()).tunnels:
        fields = {name: tuple(v) if isinstance(v, list) else v for name, v in tunnel.__dict__.items()}
        options = TunnelOptions(**fields)
        for name in ("phase1_encryption_algorithms", "phase2_integrity_algorithms", "phase1_dh_group_numbers",
                     "dpd_timeout_seconds", "dpd_timeout_action", "startup_action"):
            assert getattr(options, name) == defaults[name], name
    assert set(HybridSettings.model_fields["tunnels"].annotation.__args__[0].model_fields) == (
        set(defaults) - {"preshared_key"})


def test_allow_lists_are_shared_not_copied():
    assert {m.value for m in EncryptionAlgorithm} == {"AES256", "AES256-GCM-16"}
    assert min(DhGroup) == 14
