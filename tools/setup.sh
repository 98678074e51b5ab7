#!/usr/bin/env bash
# Install everything the project needs, idempotently: the Python virtualenv (.venv) from the pinned
# requirements, then the scanner virtualenv and the Pulumi engine when their scripts exist.
# Re-running is fast: each step checks a stamp (a hash of its inputs) and skips when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
need_minor=11
if ! "$PYTHON" -c "import sys; sys.exit(0 if sys.version_info >= (3, $need_minor) else 1)" 2>/dev/null; then
  echo "setup: $PYTHON is missing or older than 3.$need_minor; install Python >= 3.$need_minor (or set PYTHON=...)" >&2
  exit 1
fi

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

want=$(stamp_of requirements.txt requirements-dev.txt pyproject.toml)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python dependencies into .venv" >&2
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$want" > .venv/.stamp
fi

if [ -x tools/scanners/setup.sh ]; then tools/scanners/setup.sh; fi

# The Pulumi engine (CLI, Python language host, Kubernetes plugin), built from the Go module proxy and
# cached by version under the home directory. When it cannot be had, say why and go on: the tests
# that need it skip with that reason, and `make up` falls back to offline synthesis.
if ! tools/engine/bootstrap.sh >/dev/null 2>.engine-unavailable.log; then
  echo "setup: the Pulumi engine is unavailable here (details: .engine-unavailable.log):" >&2
  grep -m3 -E "error|refused|403" .engine-unavailable.log | sed 's/^/setup:   /' >&2 || true
else
  rm -f .engine-unavailable.log
fi

# A real local Kubernetes API server (kube-apiserver + etcd built from the Go module proxy, cached by
# version): the tests apply the rendered manifests to it and ask its Pod Security admission and RBAC.
if ! tools/kube/bootstrap.sh >/dev/null 2>.kube-unavailable.log; then
  echo "setup: the local Kubernetes API server is unavailable (details: .kube-unavailable.log):" >&2
  grep -m3 -E "error|refused|403" .kube-unavailable.log | sed 's/^/setup:   /' >&2 || true
else
  rm -f .kube-unavailable.log
fi
