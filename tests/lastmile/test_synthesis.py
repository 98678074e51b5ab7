"""The recording mocks themselves: they must catch what plain mocks let through (docs/design-notes.md §Offline verification)."""

from __future__ import annotations

import gc
import logging

import pulumi
import pulumi_aws as aws
import pytest

from infra.settings.loader import ConfigError
from lastmile.synthesis import (
    SECRET_MASK,
    DuplicateUrnError,
    InvokeNotAllowedError,
    RecordingMocks,
    RecordingMonitor,
    read_stack_file,
    run_with_mocks,
)


class Pair(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:test:Pair", name, None, opts)
        self.first = aws.sqs.Queue(f"{name}-first", opts=pulumi.ResourceOptions(parent=self, protect=True))
        self.second = aws.sqs.Queue(
            f"{name}-second",
            name=pulumi.Output.secret("hidden-name"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.first]),
        )
        self.register_outputs({})


def test_records_parent_options_and_masks_secrets(mock_run):
    graph = mock_run(lambda: {"secret": pulumi.Output.secret("s"), "plain": Pair("p").first.arn})
    component = graph.one("lastmile:test:Pair")
    first, second = graph.named("p-first"), graph.named("p-second")
    assert first.parent == component.urn and second.parent == component.urn
    assert first.protect and not second.protect
    assert second.depends_on == (first.urn,)
    assert second.inputs["name"] == SECRET_MASK
    assert "hidden-name" not in graph.dumps()
    assert graph.outputs["secret"] == SECRET_MASK
    assert graph.outputs["plain"].startswith("arn:aws:sqs:")


class Outer(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("lastmile:test:Outer", name, None, None)
        self.inner = Pair(f"{name}-pair", pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def test_urns_are_the_engines(mock_run):
    """Every ancestor's type qualifies a URN, the root stack's excluded (the SDK mock keeps only one)."""
    graph = mock_run(lambda: {"arn": Outer("o").inner.first.arn})
    prefix = "urn:pulumi:test::lastmile::"
    assert graph.one("lastmile:test:Outer").urn == prefix + "lastmile:test:Outer::o"
    assert graph.one("lastmile:test:Pair").urn == prefix + "lastmile:test:Outer$lastmile:test:Pair::o-pair"
    assert graph.named("o-pair-first").urn == (
        prefix + "lastmile:test:Outer$lastmile:test:Pair$aws:sqs/queue:Queue::o-pair-first")


def test_duplicate_urn_fails_like_the_engine(mock_run):
    def program():
        aws.sqs.Queue("same")
        aws.sqs.Queue("same")

    with pytest.raises(DuplicateUrnError, match="same"):
        mock_run(program)


def test_a_failed_runs_leftover_futures_stay_quiet_when_collected_later(mock_run, caplog):
    """The second registration's future fails and nobody awaits it. The SDK's runtime state holds it until
    the next run replaces that state, and the collector frees it later still, maybe during an unrelated
    test. asyncio's report then formats its traceback from inside a garbage collection, and on Python 3.11
    that can break a parse under way: "SystemError: AST constructor recursion depth mismatch"."""
    def program():
        aws.sqs.Queue("same")
        aws.sqs.Queue("same")

    with pytest.raises(DuplicateUrnError):
        mock_run(program)
    mock_run(lambda: {})
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        gc.collect()
    assert "never retrieved" not in caplog.text


def test_invokes_are_refused(mock_run):
    with pytest.raises(InvokeNotAllowedError, match="getCallerIdentity"):
        mock_run(lambda: {"account": aws.get_caller_identity().account_id})


def test_apply_bodies_run(mock_run):
    """preview=False: an apply on a mock output always runs (plain mocks in preview skip it)."""
    seen = []
    mock_run(lambda: {"x": aws.sqs.Queue("q").arn.apply(lambda arn: seen.append(arn) or arn)})
    assert seen and seen[0].startswith("arn:aws:sqs:")


def test_graph_is_deterministic(mock_run):
    first = mock_run(lambda: {"arn": Pair("p").second.arn}).dumps()
    second = mock_run(lambda: {"arn": Pair("p").second.arn}).dumps()
    assert first == second


def test_config_error_registers_nothing(tmp_path):
    (tmp_path / "Pulumi.aws-dev.yaml").write_text("config:\n  lastmile:topology: aws\n  lastmile:environment: nope\n")
    stack_file = read_stack_file("aws-dev", tmp_path)
    monitor = RecordingMonitor(RecordingMocks())
    from infra.program import run

    with pytest.raises(ConfigError) as caught:
        run_with_mocks(run, stack="aws-dev", config=stack_file.config, secret_keys=[], monitor=monitor)
    fields = {p.field for p in caught.value.problems}
    assert {"environment", "serving"} <= fields
    assert monitor.nodes == {}


def test_secure_values_become_secret_keys(tmp_path):
    (tmp_path / "Pulumi.onprem-dev.yaml").write_text(
        "config:\n  lastmile:kubeconfig:\n    secure: v1:abc\n  lastmile:topology: onprem\n"
    )
    stack_file = read_stack_file("onprem-dev", tmp_path)
    assert stack_file.secret_keys == ["lastmile:kubeconfig"]
    assert "v1:abc" not in stack_file.config["lastmile:kubeconfig"]
