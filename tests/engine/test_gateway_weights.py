"""Route weights through the real engine on the local cluster (its Gateway API CRDs, installed by
`lastmile cluster up`, validate every route the API server stores).

One cluster for the module. onprem-local's first up attaches an HTTPRoute and a GRPCRoute to the local
Gateway with all weight on the active slot; then a 90/10 split (blue/green) is a stack-file change and
`lastmile up`, then 0/100, then back: after each up the routes' backendRefs are the stack file's weights.
Giving weight to a slot that is not ready live is refused like a flip, by the program alone and by
`lastmile up`, and the routes keep their weights.
"""

from __future__ import annotations

import json
import re

import pytest
from cluster_live import NAMESPACE, NEVER_READY_IMAGE, STACK, deployment, ok, until

pytestmark = [pytest.mark.engine, pytest.mark.kube]


def route_weights(live, kind: str = "httproute") -> dict[str, int]:
    """{slot: weight} of the route's backendRefs (backend Services are named <model>-routes-<slot>-<suffix>)."""
    [route] = live.kubectl("-n", NAMESPACE, "get", kind, "-o", "json")["items"]
    [rule] = route["spec"]["rules"]
    return {re.match(r"iris-classifier-routes-(blue|green)-", ref["name"]).group(1): ref["weight"]
            for ref in rule["backendRefs"]}


def set_weights(live, original: str, blue: int | None, green: int | None) -> None:
    """The stack file with serving.weights (None: omitted, all on active_slot)."""
    text = original if blue is None else original.replace(
        "    active_slot: green\n", f"    active_slot: green\n    weights: {{blue: {blue}, green: {green}}}\n", 1)
    live.checkout.stack_file(STACK).write_text(text)


def test_weights_follow_the_stack_file(live) -> None:
    original = live.checkout.stack_file(STACK).read_text()
    assert "    active_slot: green\n" in original and "weights:" not in original
    ok(live.checkout.lastmile("up", STACK))
    assert route_weights(live) == route_weights(live, "grpcroute") == {"blue": 0, "green": 100}
    route = live.kubectl("-n", NAMESPACE, "get", "httproute", "-o", "json")["items"][0]
    assert route["spec"]["parentRefs"][0] | {} == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                   "name": "lastmile-local", "namespace": "lastmile-gateway",
                                                   "sectionName": "https"}
    for blue, green in ((90, 10), (0, 100), (90, 10)):
        set_weights(live, original, blue, green)
        ok(live.checkout.lastmile("up", STACK))
        assert route_weights(live) == route_weights(live, "grpcroute") == {"blue": blue, "green": green}
        assert f"weight: {blue}" in live.kubectl("-n", NAMESPACE, "get", "httproute", "-o", "yaml")
    set_weights(live, original, None, None)
    ok(live.checkout.lastmile("up", STACK))
    assert route_weights(live) == {"blue": 0, "green": 100}


def test_a_weight_to_a_slot_not_ready_live_is_refused(live) -> None:
    """Blue (weight 0) is changed behind Pulumi's back to a release that never becomes ready; giving it weight
    is a switch: refused by plain `pulumi up` and by `lastmile up` (exit 1), the routes keep their weights."""
    original = live.checkout.stack_file(STACK).read_text()
    assert route_weights(live) == {"blue": 0, "green": 100}
    name = deployment(live, "blue")["metadata"]["name"]
    patch = [{"op": "replace", "path": f"/spec/template/spec/{kind}/0/image", "value": NEVER_READY_IMAGE}
             for kind in ("containers", "initContainers")]
    live.kubectl("-n", NAMESPACE, "patch", "deployment", name, "--type", "json", "-p", json.dumps(patch))
    assert until(lambda: live.slot_ips("blue", ready=False))
    set_weights(live, original, 10, 90)
    plain = live.plain("up")
    assert plain.returncode != 0 and "switch check: not ready, nothing was changed: slot blue" in plain.stderr, \
        plain.stderr[-3000:]
    refused = live.checkout.lastmile("up", STACK)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "switch check: not ready, nothing was changed: slot blue" in refused.stderr
    assert route_weights(live) == route_weights(live, "grpcroute") == {"blue": 0, "green": 100}
    live.checkout.stack_file(STACK).write_text(original)
