#!/usr/bin/env bash
# tools/scanners/setup.sh: the scanner virtualenv, kept apart from .venv.
#
# checkov pins an old boto3 (and more) that would fight the project's own pins, so it lives in its own
# repo-local, gitignored virtualenv: .tools/checkov-venv. Idempotent and fast when present: a stamp of
# the pinned requirement is compared before anything is installed.
#
#   tools/scanners/setup.sh          ensure the venv; prints nothing when it is already up to date
#   .tools/checkov-venv/bin/checkov --framework kubernetes --skip-download -d <dir> --compact
#
# kubernetes-validate (pure Python, schemas bundled) is pinned in requirements-dev.txt and runs from .venv.
# actionlint and the shellcheck it runs: tools/scanners/actionlint.sh (called last), in .tools/actionlint.
set -euo pipefail
cd "$(dirname "$0")/../.."

CHECKOV_VERSION=3.3.30
VENV=.tools/checkov-venv
PYTHON="${PYTHON:-python3}"
want="checkov==${CHECKOV_VERSION} $("$PYTHON" -c 'import sys; print("py%d.%d" % sys.version_info[:2])')"

if [ -x "$VENV/bin/checkov" ] && [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$want" ]; then
  exec tools/scanners/actionlint.sh
fi

echo "scanners: installing checkov==${CHECKOV_VERSION} into $VENV" >&2
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==${CHECKOV_VERSION}"
# Fail here, not in a test, when the install is broken.
"$VENV/bin/checkov" --version >/dev/null
echo "$want" > "$VENV/.stamp"
exec tools/scanners/actionlint.sh
