"""`pulumi up` / `pulumi preview` of this repository's program with none of `lastmile up`'s checks around it.

What a platform engineer runs on a workstation (`pulumi up --stack onprem-local`) or the official Pulumi
GitHub action runs: the engine and the program, nothing else. The official Python language host is not
served here, so the program runs inline through the Automation API (the same engine, the same program
function, the same Pulumi.yaml and stack files); no lastmile module is imported or consulted.

    python tests/engine/plain_pulumi.py up|preview STACK      (run from the repository root)

Environment: PULUMI_HOME (the engine's home, its plugins installed), PULUMI_BIN_DIR (the directory holding
the `pulumi` CLI). The state is the repository's `.pulumi-state/` (file backend), the passphrase the local
stacks' public one. Prints the engine's output; exits 0 when the operation succeeded, 4 when the engine
reported a failure (its message on stderr).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pulumi import automation as auto

ROOT = Path.cwd()


def main(verb: str, stack: str) -> int:
    from infra.program import run

    state = ROOT / ".pulumi-state"
    state.mkdir(exist_ok=True)
    env = {"PULUMI_BACKEND_URL": state.resolve().as_uri(), "PULUMI_CONFIG_PASSPHRASE": "lastmile-local-only",
           "PULUMI_HOME": os.environ["PULUMI_HOME"], "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
           "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true"}
    workspace = auto.LocalWorkspace(work_dir=str(ROOT), program=run, env_vars=env, pulumi_command=auto.PulumiCommand(
        root=str(Path(os.environ["PULUMI_BIN_DIR"]).parent), skip_version_check=True))
    target = auto.Stack.create_or_select(stack, workspace)
    echo = lambda line: print(line, end="" if line.endswith("\n") else "\n", flush=True)  # noqa: E731
    try:
        if verb == "up":
            target.up(on_output=echo, color="never")
        else:
            target.preview(on_output=echo, color="never")
    except auto.errors.CommandError as error:
        print(str(error), file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(*sys.argv[1:3]))
