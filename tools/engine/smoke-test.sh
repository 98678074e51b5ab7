#!/usr/bin/env bash
# tools/engine/smoke-test.sh [DIR]: end-to-end check of the engine from bootstrap.sh.
#
# Creates a throwaway Pulumi Python project in DIR (default /tmp/enginetest, never inside the repo)
# with its own venv (pulumi + pulumi-kubernetes at the versions pinned in bootstrap.sh), a
# kubernetes Provider that renders YAML to DIR/out and a ConfigMap, then, with the environment of
# tools/engine/env.sh (PULUMI_HOME and the file backend moved into DIR):
#   pulumi stack init dev; pulumi up --yes; rendered YAML must exist;
#   pulumi preview --expect-no-changes; pulumi destroy --yes
# Exits non-zero at the first failing step.
set -euo pipefail

DIR="${1:-/tmp/enginetest}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PULUMI_VERSION="$(sed -n 's/^PULUMI_VERSION=\([0-9.]*\).*/\1/p' "$REPO/tools/engine/bootstrap.sh")"
K8S_VERSION="$(sed -n 's/^K8S_VERSION=\([0-9.]*\).*/\1/p' "$REPO/tools/engine/bootstrap.sh")"
case "$DIR" in "$REPO" | "$REPO"/*) echo "smoke-test: DIR must be outside the repo" >&2; exit 2 ;; esac

step() { printf '\n== %s\n' "$*" >&2; }

mkdir -p "$DIR"
cd "$DIR"
step "venv with pulumi==$PULUMI_VERSION pulumi-kubernetes==$K8S_VERSION"
[[ -x venv/bin/python ]] || python3 -m venv venv
venv/bin/pip install -q "pulumi==$PULUMI_VERSION" "pulumi-kubernetes==$K8S_VERSION" >&2

cat >Pulumi.yaml <<'EOF'
name: enginetest
description: throwaway project for tools/engine/smoke-test.sh
runtime:
  name: python
  options:
    virtualenv: venv
EOF
cat >__main__.py <<'EOF'
import pulumi
import pulumi_kubernetes as k8s

render = k8s.Provider("render", render_yaml_to_directory="out")
cm = k8s.core.v1.ConfigMap(
    "smoke",
    metadata={"name": "smoke", "namespace": "default"},
    data={"hello": "world"},
    opts=pulumi.ResourceOptions(provider=render),
)
pulumi.export("name", cm.metadata["name"])
EOF
rm -rf out

export LASTMILE_PULUMI_HOME="$DIR/pulumi-home" LASTMILE_PULUMI_STATE_DIR="$DIR/state"
step "source tools/engine/env.sh"
# shellcheck source=tools/engine/env.sh
source "$REPO/tools/engine/env.sh"
command -v pulumi >&2
pulumi version >&2
pulumi plugin ls >&2

step "pulumi stack init dev"
pulumi stack select dev 2>/dev/null || pulumi stack init dev
step "pulumi up --yes"
pulumi up --yes --non-interactive
step "rendered YAML"
find out -type f -name '*.yaml' | sort >&2
find out -type f -name '*.yaml' -print0 | xargs -0 grep -l 'kind: ConfigMap' >/dev/null ||
	{ echo "smoke-test: no rendered ConfigMap under $DIR/out" >&2; exit 1; }
step "pulumi preview --expect-no-changes"
pulumi preview --expect-no-changes --non-interactive
step "pulumi destroy --yes"
pulumi destroy --yes --non-interactive
step "smoke test passed"
