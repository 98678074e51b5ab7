#!/usr/bin/env bash
# tools/kube/gateway-api.sh: provide the Gateway API CRDs of the standard channel (and the bundle's
# ValidatingAdmissionPolicy, vap_safeupgrades) that `lastmile cluster up` installs.
#
#   tools/kube/gateway-api.sh          ensure the files, print their directory on stdout
#   tools/kube/gateway-api.sh verify   check the module against its pin, copy nothing
#
# Source: the Go module sigs.k8s.io/gateway-api at the version tools/kube/gateway-api/go.mod requires, from
# the Go module proxy, checked against the committed tools/kube/gateway-api/go.sum (the h1: hash of the
# module's zip) under -mod=readonly, GOWORK=off, GOTOOLCHAIN=local; then `go mod verify` (the extracted
# directory is the zip's). Its config/crd/standard/*.yaml are copied to
# ${LASTMILE_KUBE_HOME:-$HOME/.cache/lastmile/kube}/gateway-api-<version>/crds, with a BUILDINFO naming the pin.
# Only the directory goes to stdout. Exit 1 naming the module and Go's words when it cannot be had or does
# not match its pin.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/cached_build.sh
source "$SCRIPT_DIR/../lib/cached_build.sh"
WRAPPER="$SCRIPT_DIR/gateway-api"
MOD=sigs.k8s.io/gateway-api

log() { printf 'kube/gateway-api: %s\n' "$*" >&2; }
die() { printf 'kube/gateway-api: error: %s\n' "$*" >&2; exit 1; }

VERSION="$(sed -n "s|^require $MOD \(v[^ ]*\)$|\1|p" "$WRAPPER/go.mod")"
[[ -n "$VERSION" ]] || die "$WRAPPER/go.mod does not require $MOD"
PIN="$(sha256sum "$WRAPPER/go.mod" "$WRAPPER/go.sum" | sha256sum | cut -c1-16)"
DEST="${LASTMILE_KUBE_HOME:-$HOME/.cache/lastmile/kube}/gateway-api-$VERSION"

cached() { [[ -f "$DEST/BUILDINFO" ]] && grep -qx "pins=$PIN" "$DEST/BUILDINFO" && compgen -G "$DEST/crds/*.yaml" >/dev/null; }

# The module's directory in the Go module cache, checked against the pin.
module_dir() {
	local go out
	if command -v go >/dev/null 2>&1; then go="$(command -v go)"
	elif [[ -x /usr/local/go/bin/go ]]; then go=/usr/local/go/bin/go
	else die "the Go toolchain is missing (no 'go' on PATH nor /usr/local/go/bin/go): it downloads $MOD@$VERSION"
	fi
	PATH="$(dirname "$go"):$PATH"
	pinned_go_env
	out="$(cd "$WRAPPER" && go mod download -json "$MOD" 2>&1)" || true
	if is_checksum_error "$out" || ! (cd "$WRAPPER" && go mod verify >/dev/null 2>&1); then
		die "module checksum verification failed against $WRAPPER/go.sum: $MOD@$VERSION is not the one pinned, \
nothing is installed.
$out"
	fi
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or ""); sys.exit(1 if d.get("Error") else 0)' \
		<<<"$out" || die "$MOD@$VERSION cannot be had from $(go env GOPROXY): $out"
}

main() {
	case "${1:-}" in
	verify) module_dir >/dev/null; log "$MOD@$VERSION matches $WRAPPER/go.sum"; return ;;
	--help|-h) sed -n '2,14p' "$0"; return ;;
	"") ;;
	*) die "unknown argument '$1' (expected: verify, --help)" ;;
	esac
	if cached; then printf '%s\n' "$DEST/crds"; return; fi
	local dir stage
	dir="$(module_dir)"
	[[ -d "$dir/config/crd/standard" ]] || die "$MOD@$VERSION has no config/crd/standard"
	mkdir -p "$(dirname "$DEST")"
	stage="$(mktemp -d "$(dirname "$DEST")/.gateway-api-XXXXXX")"
	mkdir "$stage/crds"
	cp "$dir"/config/crd/standard/*.yaml "$stage/crds/"
	chmod 0644 "$stage"/crds/*.yaml
	printf 'module=%s@%s\npins=%s\n' "$MOD" "$VERSION" "$PIN" >"$stage/BUILDINFO"
	rm -rf "$DEST"
	mv "$stage" "$DEST"
	log "installed $(find "$DEST/crds" -name "*.yaml" | wc -l) files of $MOD@$VERSION into $DEST/crds"
	printf '%s\n' "$DEST/crds"
}

main "$@"
