"""Entry point for `pulumi up` (Pulumi.yaml: main: infra/)."""

from infra.program import run

run()
