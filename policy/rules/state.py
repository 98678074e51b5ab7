"""State safety and secrets: protected stateful resources in prod, secrets only as secrets."""

from __future__ import annotations

from typing import Iterable

from policy.rules.core import (
    GraphDict,
    inputs,
    K8S_SECRET,
    PROD,
    Resource,
    RETAINED_TYPES,
    Rule,
    SECRET_MASK,
    STATEFUL_TYPES,
    VPN_CONNECTION,
)


def prod_stateful_protected(r: Resource, g: GraphDict) -> Iterable[str]:
    options = r.get("options") or {}
    if options.get("protect") is not True:
        yield "stateful resource is not protected in prod; set protect=True (ResourceOptions)"
    if r["type"] in RETAINED_TYPES and options.get("retain_on_delete") is False:
        yield "deleting this resource loses data; set retain_on_delete=True in prod"


SECRET_INPUTS = {VPN_CONNECTION: ("tunnel1PresharedKey", "tunnel2PresharedKey")}


def secrets_masked(r: Resource, g: GraphDict) -> Iterable[str]:
    props = inputs(r)
    if r["type"] == K8S_SECRET:
        for field in ("data", "stringData"):
            value = props.get(field)
            if isinstance(value, dict):
                leaked = sorted(k for k, v in value.items() if v != SECRET_MASK)
                if leaked:
                    yield f"{field} keys {', '.join(leaked)} are plaintext; pass them as secret Outputs (secure: config)"
            elif value not in (None, SECRET_MASK):
                yield f"{field} is plaintext; pass it as a secret Output"
        return
    for field in SECRET_INPUTS.get(r["type"], ()):
        if props.get(field) not in (None, SECRET_MASK):
            yield f"{field} is plaintext; take it from secure: config (Output.secret) or let AWS generate it"


# ---------------------------------------------------------------------------------------------


RULES: tuple[Rule, ...] = (
    Rule("prod-stateful-protected", "docs/security-checklist.md §State safety",
         "protect (and retain on delete) on keys, buckets, log groups and the VPN connection in prod", STATEFUL_TYPES,
         prod_stateful_protected, PROD),
    Rule("secrets-masked", "docs/security-checklist.md §Secrets", "pre-shared keys and Secret data only as secrets",
         (VPN_CONNECTION, K8S_SECRET), secrets_masked, needs_secret_markers=True),
)
