#!/usr/bin/env bash
# The main job: `pulumi up` of the local default stack, onprem-local (render mode: the Kubernetes
# provider writes manifests to rendered/onprem-local and needs no cluster, no cloud account).
# Where the Pulumi engine cannot be had (see tools/engine/README.md), say so and run the offline
# synthesis of the same stack instead, rendering its manifests to rendered/onprem-local-offline.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK="${STACK:-onprem-local}"

if bin_dir=$(tools/engine/bootstrap.sh 2>.engine-unavailable.log); then
  rm -f .engine-unavailable.log
  # shellcheck source=tools/engine/env.sh
  source tools/engine/env.sh
  tools/engine/bootstrap.sh plugins >/dev/null
  pulumi stack select --create "$STACK" --non-interactive
  pulumi up --yes --stack "$STACK" --non-interactive
  exit 0
fi

echo "up: the Pulumi engine is unavailable on this machine, so 'pulumi up' cannot run here:" >&2
grep -E "not available|error" .engine-unavailable.log | sed 's/^/up:   /' >&2 || true
echo "up: running the offline synthesis of $STACK instead (same program, Pulumi mocks, no engine)." >&2
exec .venv/bin/python -m lastmile.cli render "$STACK"
