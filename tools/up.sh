#!/usr/bin/env bash
# The main job: a real `pulumi up` of the local default stack, onprem-local, through the Pulumi engine,
# onto the local Kubernetes cluster (etcd, control plane and kwok on 127.0.0.1; `lastmile cluster up`
# starts it or reuses the running one). The engine waits until the Deployments are available.
# Exits non-zero when anything is missing or the deployment fails: it never reports a deployment that
# did not happen. `lastmile cluster down` stops the cluster afterwards (its data stays).
set -euo pipefail
cd "$(dirname "$0")/.."
STACK="${STACK:-onprem-local}"
.venv/bin/lastmile cluster up
.venv/bin/lastmile up "$STACK"
kubeconfig="$(.venv/bin/lastmile cluster kubeconfig)"
namespace="$(.venv/bin/lastmile outputs "$STACK" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["namespace"])')"
cat <<MSG
up: $STACK is deployed on the local cluster. Its outputs: lastmile outputs $STACK
up: see it with
  kubectl --kubeconfig "$kubeconfig" -n $namespace get deploy,svc,endpointslices
up: flip serving.active_slot in stacks/Pulumi.$STACK.yaml and run \`lastmile up $STACK\` to switch slots;
up: \`lastmile cluster down\` stops the cluster.
MSG
