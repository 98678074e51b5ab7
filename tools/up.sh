#!/usr/bin/env bash
# The main job: a real `pulumi up` of the local default stack, onprem-local, through the Pulumi engine
# (the CLI and the Kubernetes plugin, built from the Go module proxy on first use and cached by version).
# Exits non-zero when the engine cannot be had or the deployment fails: it never reports a deployment
# that did not happen.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK="${STACK:-onprem-local}"
.venv/bin/lastmile up "$STACK"
echo "up: $STACK is deployed. Its outputs (lastmile outputs $STACK):"
.venv/bin/lastmile outputs "$STACK"
