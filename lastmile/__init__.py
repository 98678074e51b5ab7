"""lastmile's operator tooling: the `lastmile` command and what it drives (offline synthesis, manifests,
contract checks, plan diffs, promotion, verification, the engine and the local cluster).

The Pulumi program itself lives in `infra/` (settings, topologies, program) and the reusable
components in `components/`; nothing here is imported by the program.
"""
