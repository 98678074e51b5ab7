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

# The Pulumi engine (CLI and Kubernetes plugin) and the local Kubernetes binaries, built from the Go
# module proxy and cached by version under the home directory: tens of minutes the first time on 2 cores,
# under a second afterwards. Their build logs go to .setup-logs/; a failure stops setup and says why.
mkdir -p .setup-logs
build_cached() { # NAME SCRIPT
  local name="$1" script="$2" log=".setup-logs/$1.log" start=$SECONDS
  echo "setup: $name (cached by version under ~/.cache/lastmile; a cold build prints progress to $log)" >&2
  if ! "$script" >/dev/null 2>"$log"; then
    echo "setup: error: $name could not be provided; the end of $log:" >&2
    tail -n 15 "$log" | sed 's/^/setup:   /' >&2
    exit 1
  fi
  echo "setup: $name ready ($((SECONDS - start)) s)" >&2
}
build_cached "Pulumi engine" tools/engine/bootstrap.sh
build_cached "local Kubernetes binaries" tools/kube/bootstrap.sh
