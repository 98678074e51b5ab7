"""Offline synthesis: run the program for a stack under recording Pulumi mocks.

No credentials, no engine, no network. The result is a deterministic resource graph
(type, logical name, parent, options, inputs with secrets masked) that tests assert on
and that pull-request diffs are built from.

The recording monitor also closes the mock blind spots listed in docs/design-notes.md §Offline verification:
- a duplicate URN (same type, name and parent chain) fails the run, as the engine would;
- the run is always ``preview=False``, so every ``apply`` runs and no value stays unknown;
- every invoke is refused unless listed in ``_INVOKES``: programs stay deterministic;
- the program is a function called afresh per synthesis (nothing binds at import time).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
# Private SDK APIs, kept on purpose: no public API runs a program function under mocks to completion
# outside the engine (pulumi.runtime.test only wraps a test function); these are what it uses inside.
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from lastmile.common import REPO_ROOT, STACKS_DIR
from lastmile.stackfile import SECRET_PLACEHOLDER, StackFile, StackFileError, list_stacks, read_stack_file

__all__ = ["SECRET_PLACEHOLDER", "StackFile", "StackFileError", "list_stacks", "read_stack_file", "synthesize",
           "run_with_mocks", "Graph", "Node"]

PROJECT = "lastmile"

# Wire-format signatures of the Pulumi property protocol (sdk/python/lib/pulumi/runtime/rpc.py).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SIG_SECRET = "1b47061264138c4ac30d75fd1eb44270"
_SIG_RESOURCE = "5cf8f73096256a8f31e491e813e4eb8e"
_SIG_ASSET = "c44067f5952c0a294b673a41bacd8c17"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_MASK = "[secret]"

MOCK_ACCOUNT_ID = "111111111111"
MOCK_REGION = "eu-west-1"
# Attributes only AWS computes, so that tests can follow them into alarms and outputs.
MOCK_TUNNEL_ADDRESSES = ("52.95.110.11", "52.95.110.12")
MOCK_RESOLVER_IPS = ("10.40.0.10", "10.40.64.10")
# EC2 names a subnet only by its id, ``subnet-<17 hex>``, and the API contract bounds it (SubnetId: at most
# 32 characters, which an auto-name such as ``network-subnet-eu-central-1a-1a2b3c4`` exceeds): the mocks
# return ids of that form. (Other EC2 ids keep the auto-name form; tests rely on it.)
EC2_ID_PREFIXES = {"aws:ec2/subnet:Subnet": "subnet"}


class DuplicateUrnError(RuntimeError):
    """Two registrations produced the same URN: the real engine refuses this."""


class InvokeNotAllowedError(RuntimeError):
    """The program called a provider function; programs must not depend on live lookups."""


@dataclass(frozen=True)
class Node:
    """One registered resource as the engine would receive it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    provider: str | None
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    replace_on_changes: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    additional_secret_outputs: tuple[str, ...]
    depends_on: tuple[str, ...]
    aliases: tuple[str, ...]
    custom_timeouts: dict[str, str]
    inputs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "provider": self.provider,
            "options": {
                "protect": self.protect,
                "retain_on_delete": self.retain_on_delete,
                "delete_before_replace": self.delete_before_replace,
                "replace_on_changes": list(self.replace_on_changes),
                "ignore_changes": list(self.ignore_changes),
                "additional_secret_outputs": list(self.additional_secret_outputs),
                "depends_on": list(self.depends_on),
                "aliases": list(self.aliases),
                "custom_timeouts": self.custom_timeouts,
            },
            "inputs": self.inputs,
        }


@dataclass
class Graph:
    """The synthesized program: its resources and its resolved stack outputs."""

    stack: str
    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == type_]

    def one(self, type_: str) -> Node:
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected exactly one {type_}, found {len(found)}: {[n.name for n in found]}")
        return found[0]

    def named(self, name: str) -> Node:
        found = [n for n in self.nodes.values() if n.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected exactly one resource named {name!r}, found {len(found)}")
        return found[0]

    def children(self, parent: Node) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent == parent.urn]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "resources": [self.nodes[u].to_json() for u in sorted(self.nodes)],
            "outputs": self.outputs,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            counts[node.type] = counts.get(node.type, 0) + 1
        protected = sum(1 for n in self.nodes.values() if n.protect)
        lines = [
            f"stack {self.stack}: {len(self.nodes)} resources "
            f"({sum(1 for n in self.nodes.values() if n.custom)} custom, {protected} protected)",
        ]
        lines += [f"  {count:3d}  {type_}" for type_, count in sorted(counts.items())]
        lines.append("outputs: " + ", ".join(sorted(self.outputs)) if self.outputs else "outputs: none")
        return "\n".join(lines) + "\n"


def _normalize(value: Any) -> Any:
    """Turn wire-format property values into plain JSON, masking secrets."""
    if isinstance(value, dict):
        sig = value.get(_SIG_KEY)
        if sig == _SIG_SECRET:
            return SECRET_MASK
        if sig == _SIG_RESOURCE:
            return {"$ref": value.get("urn")}
        if sig == _SIG_ASSET and isinstance(value.get("path"), str):
            # The engine compares assets by content hash, not by path; a path inside the repository is recorded
            # relative to it, so the graph of a revision does not depend on where it is checked out.
            value = {**value, "path": _repo_relative(value["path"])}
        return {k: _normalize(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if value == _UNKNOWN:
        return "[unknown]"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _repo_relative(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return path


def physical_name(type_: str, name: str) -> str:
    """A stand-in for provider auto-naming: stable, unique per (type, name)."""
    return f"{name}-{hashlib.sha256(f'{type_}/{name}'.encode()).hexdigest()[:7]}"


def ec2_id(type_: str, name: str) -> str:
    """A stand-in for an EC2-assigned id (``subnet-0123456789abcdef0``): stable, unique per (type, name)."""
    return f"{EC2_ID_PREFIXES[type_]}-0{hashlib.sha256(f'{type_}/{name}'.encode()).hexdigest()[:16]}"


class RecordingMocks(pulumi_mocks.Mocks):
    """Echo inputs as outputs and fill in the identifiers providers compute."""

    def __init__(self, account_id: str = MOCK_ACCOUNT_ID, region: str = MOCK_REGION) -> None:
        self.account_id = account_id
        self.region = region

    def arn(self, type_: str, physical: str) -> str:
        """An ARN of the form AWS gives this kind of resource (global services have no region)."""
        service, kind = type_.split(":")[1].split("/")[0], type_.split(":")[2]
        kind = kind[0].lower() + kind[1:]
        if service == "iam":
            return f"arn:aws:iam::{self.account_id}:{kind}/{physical}"
        if service == "s3":
            return f"arn:aws:s3:::{physical}"
        if type_ == "aws:cloudwatch/logGroup:LogGroup":
            return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{physical}"
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{kind}/{physical}"

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        physical = physical_name(args.typ, args.name)
        if args.typ.startswith("aws:"):
            given = state.get("name")
            physical = given if isinstance(given, str) and given else physical
            if args.typ in EC2_ID_PREFIXES:
                physical = ec2_id(args.typ, args.name)
            state.setdefault("name", physical)
            state.setdefault("arn", self.arn(args.typ, physical))
            if args.typ == "aws:s3/bucket:Bucket" or args.typ == "aws:s3/bucketV2:BucketV2":
                state.setdefault("bucket", physical)
            if args.typ == "aws:kms/key:Key":
                state.setdefault("keyId", physical)
            if args.typ == "aws:ec2/vpnConnection:VpnConnection":
                state.setdefault("tunnel1Address", MOCK_TUNNEL_ADDRESSES[0])
                state.setdefault("tunnel2Address", MOCK_TUNNEL_ADDRESSES[1])
            if args.typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and state.get("vpcEndpointType") == "Gateway":
                state.setdefault("prefixListId", "pl-" + hashlib.sha256(physical.encode()).hexdigest()[:8])
            if args.typ == "aws:route53/resolverEndpoint:ResolverEndpoint":
                state["ipAddresses"] = [{**address, "ip": ip}
                                        for address, ip in zip(state.get("ipAddresses") or [], MOCK_RESOLVER_IPS)]
        elif args.typ.startswith("kubernetes:") and not args.typ.startswith("kubernetes:index"):
            metadata = dict(state.get("metadata") or {})
            metadata.setdefault("name", physical)
            state["metadata"] = metadata
            physical = metadata["name"]
        return physical, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list | None]:
        raise InvokeNotAllowedError(
            f"the program called {args.token}; lastmile programs must not depend on live lookups "
            "(docs/design-notes.md §Offline verification): pass the value through stack config instead"
        )


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that records every registration with its options and refuses duplicate URNs."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.nodes: dict[str, Node] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives: the whole chain of ancestor types, the root stack's excluded.

        (The SDK's MockMonitor keeps only the parent's own type and prefixes the stack's type, so its
        URNs of nested resources differ from the engine's; URNs are what protect, aliases and state key on.)
        """
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{type_}::{name}"

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type != "pulumi:pulumi:Stack":
            if urn in self.nodes:
                raise DuplicateUrnError(f"duplicate resource URN {urn}: the engine would refuse this program")
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            timeouts = json_format.MessageToDict(request.customTimeouts) if request.HasField("customTimeouts") else {}
            self.nodes[urn] = Node(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                provider=request.provider.split("::")[-2] if request.provider else None,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                replace_on_changes=tuple(sorted(request.replaceOnChanges)),
                ignore_changes=tuple(sorted(request.ignoreChanges)),
                additional_secret_outputs=tuple(sorted(request.additionalSecretOutputs)),
                depends_on=tuple(sorted(set(request.dependencies))),
                aliases=tuple(sorted(a.urn for a in request.aliases if a.urn)),
                custom_timeouts=timeouts,
                inputs=_normalize(raw),
            )
        return super().RegisterResource(request)


def _resolve_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """Resolve exported outputs to plain values, masking secrets."""

    async def resolve() -> dict[str, Any]:
        resolved = {}
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            secret = await out.is_secret()
            resolved[key] = SECRET_MASK if secret else _normalize(await out.future())
        return resolved

    return _sync_await(resolve())


async def _run_to_completion(body: Callable[[], None]) -> None:
    """Run ``body`` and everything it started: what ``run_pulumi_func`` does under mocks, minus its
    engine shutdown handshake, and waiting for the outstanding outputs in one gather per round (the SDK
    waits for the first of N to complete, N times: quadratic in the number of outputs)."""
    failure: BaseException | None = None
    try:
        body()
    except BaseException as error:  # noqa: BLE001 re-raised once the runtime is drained
        failure = error
    settings = pulumi.runtime.settings.SETTINGS
    while True:
        await wait_for_rpcs(await_all_outstanding_tasks=False)
        with settings.lock:
            pending = list(settings.outputs)
            settings.outputs.clear()
        if not pending:
            break
        results = await asyncio.gather(*pending, return_exceptions=True)
        if failure is None:
            failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        raise failure


# What asyncio says when the collector frees a future or task that nobody awaited.
_LEFTOVER_REPORTS = frozenset({"Future exception was never retrieved", "Task exception was never retrieved",
                               "Task was destroyed but it is pending!"})


def _drop_leftover_reports(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The exception handler of the loop that programs run on: a failed run leaves the registrations it
    had under way as futures nobody awaits, and their reports repeat the failure the run has re-raised.

    They come whenever the collector frees those futures, which can be long after the run (the SDK's
    state holds them until the next run replaces it), so silencing asyncio during the run is not enough.
    Logged from inside a garbage collection, the report's traceback is formatted there, and on Python 3.11
    that can break a parse under way in the interrupted code ("SystemError: AST constructor recursion depth
    mismatch"). Anything else goes to asyncio's default handler.
    """
    if context.get("message") not in _LEFTOVER_REPORTS:
        loop.default_exception_handler(context)


def run_with_mocks(
    program: Callable[[], dict[str, Any]],
    *,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    account_id: str = MOCK_ACCOUNT_ID,
    region: str = MOCK_REGION,
    monitor: RecordingMonitor | None = None,
) -> Graph:
    """Run ``program`` (which returns its stack outputs) under fresh recording mocks.

    Pass your own ``monitor`` to inspect what was registered when the program raises
    (a config error must leave ``monitor.nodes`` empty).
    """
    monitor = monitor or RecordingMonitor(RecordingMocks(account_id=account_id, region=region))
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config, secret_keys)
    graph = Graph(stack=stack)
    captured: dict[str, Any] = {}

    def body() -> None:
        captured.update(program() or {})

    pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
    with pulumi.runtime.settings.SETTINGS.lock:  # a failed run's outputs must not fail the next run
        pulumi.runtime.settings.SETTINGS.outputs.clear()
    _ensure_event_loop().set_exception_handler(_drop_leftover_reports)
    # Everything alive before the run (the SDKs' modules and classes: most of the heap) is frozen for
    # its duration, so neither the collector's automatic passes nor the collection below walk it again.
    gc.freeze()
    try:
        _sync_await(_run_to_completion(body))
    finally:
        # Always, not only after a failure: left to interpreter shutdown, the collection of the run's
        # leftovers can print "Exception ignored in BaseEventLoop.__del__" after a clean run.
        gc.collect()
        gc.unfreeze()
    graph.nodes = dict(monitor.nodes)
    graph.outputs = _resolve_outputs(captured)
    return graph


# ---------------------------------------------------------------------------------------------
# Stack files are read by lastmile.stackfile (the one reader); its names are re-exported here.


def synthesize(
    stack: str,
    overrides: dict[str, Any] | None = None,
    stacks_dir: Path = STACKS_DIR,
    monitor: RecordingMonitor | None = None,
) -> Graph:
    """Synthesize the lastmile program for ``stack`` offline (see run_with_mocks for ``monitor``)."""
    from infra.program import run  # imported here: the program binds to the mocks set just above

    stack_file = read_stack_file(stack, stacks_dir, overrides)
    aws_section = json.loads(stack_file.config.get("lastmile:aws", "{}") or "{}")
    return run_with_mocks(
        run,
        stack=stack,
        config=stack_file.config,
        secret_keys=stack_file.secret_keys,
        account_id=str(aws_section.get("account_id", MOCK_ACCOUNT_ID)),
        region=str(aws_section.get("region", MOCK_REGION)),
        monitor=monitor,
    )
