#!/usr/bin/env bash
# tools/kube/bootstrap.sh: provide the binaries of a local Kubernetes cluster -- etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (fake nodes and pod lifecycle) -- on a machine that
# reaches only the package registries.
#
#   tools/kube/bootstrap.sh          ensure the binaries, print their bin directory on stdout
#   tools/kube/bootstrap.sh verify   check every module of the builds against the wrappers' go.sum, compile nothing
#   tools/kube/bootstrap.sh --help   this text
#
# All are built from the Go module proxy through the wrapper modules beside this script, which
# are the single source of the versions (tidied go.mod + go.sum, so every dependency is pinned by hash):
#   kube-apiserver, kube-controller-manager, kube-scheduler
#                   k8s.io/kubernetes (cmd/kube-*), tools/kube/apiserver/go.mod; its staging
#                   modules (k8s.io/api, apimachinery, apiserver, client-go, ...) are pinned there to the
#                   matching v0.<minor>.<patch> release, since kubernetes' own go.mod points them at
#                   ./staging/src, which a dependency cannot do
#   etcd            go.etcd.io/etcd/server/v3 (its root package is etcd's main), tools/kube/etcd/go.mod
#   kwok            sigs.k8s.io/kwok (cmd/kwok), tools/kube/kwok/go.mod
# and cached by version in ${LASTMILE_KUBE_HOME:-$HOME/.cache/lastmile/kube}/kube-v<V>-etcd-v<V>-kwok-v<V>/bin.
# A cache whose BUILDINFO was built from other wrapper files is rebuilt. Every module is checked against
# the wrappers' committed go.sum; one that does not match stops the build (exit 1, naming it).
#
# Only the bin directory goes to stdout; everything else goes to stderr. Exit 1, naming the module,
# version and the proxy's error, when a module cannot be had.
# Environment knobs: LASTMILE_KUBE_HOME (cache root), LASTMILE_KUBE_CGO (CGO_ENABLED, default 0).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/cached_build.sh
source "$SCRIPT_DIR/../lib/cached_build.sh"
APISERVER_WRAPPER="$SCRIPT_DIR/apiserver"
ETCD_WRAPPER="$SCRIPT_DIR/etcd"
KWOK_WRAPPER="$SCRIPT_DIR/kwok"
KUBE_MOD=k8s.io/kubernetes
ETCD_MOD=go.etcd.io/etcd/server/v3
KWOK_MOD=sigs.k8s.io/kwok
KUBE_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler)
ETCD_MIN_VERSION=3.5.13 # older 3.5 releases lack fixes the 1.33 apiserver relies on

log() { printf 'kube/bootstrap: %s\n' "$*" >&2; }
die() { printf 'kube/bootstrap: error: %s\n' "$*" >&2; exit 1; }

# The version a wrapper go.mod requires for a module (pure bash: the fast path must not need Go).
required_version() {
	local gomod="$1" mod="$2" line
	while IFS= read -r line; do
		line="${line#"${line%%[![:space:]]*}"}"
		line="${line#require }"
		if [[ "$line" == "$mod "v* ]]; then
			line="${line#"$mod "}"
			printf '%s\n' "${line%%[[:space:]]*}"
			return 0
		fi
	done <"$gomod"
	return 1
}

KUBE_VERSION="$(required_version "$APISERVER_WRAPPER/go.mod" "$KUBE_MOD")" ||
	die "$APISERVER_WRAPPER/go.mod does not require $KUBE_MOD"
ETCD_VERSION="$(required_version "$ETCD_WRAPPER/go.mod" "$ETCD_MOD")" ||
	die "$ETCD_WRAPPER/go.mod does not require $ETCD_MOD"
KWOK_VERSION="$(required_version "$KWOK_WRAPPER/go.mod" "$KWOK_MOD")" ||
	die "$KWOK_WRAPPER/go.mod does not require $KWOK_MOD"
KUBE_HOME="${LASTMILE_KUBE_HOME:-$HOME/.cache/lastmile/kube}"
NAME="kube-${KUBE_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}"
DEST="$KUBE_HOME/$NAME"
BIN="$DEST/bin"

# Hash of what decides the build: the wrapper modules (versions and dependency hashes).
wrappers_hash() {
	cat "$APISERVER_WRAPPER/go.mod" "$APISERVER_WRAPPER/go.sum" "$ETCD_WRAPPER/go.mod" "$ETCD_WRAPPER/go.sum" \
		"$KWOK_WRAPPER/go.mod" "$KWOK_WRAPPER/go.sum" |
		sha256sum | cut -c1-16
}

cache_complete() {
	local bin
	for bin in "${KUBE_COMPONENTS[@]}" etcd kwok; do
		[[ -x "$BIN/$bin" ]] || return 1
	done
	[[ -f "$DEST/BUILDINFO" ]] || return 1
	grep -qx "wrappers=$(wrappers_hash)" "$DEST/BUILDINFO"
}

# ---- build prerequisites -------------------------------------------------------------------------


setup_go_env() {
	local go want
	if command -v go >/dev/null 2>&1; then go="$(command -v go)"
	elif [[ -x /usr/local/go/bin/go ]]; then go=/usr/local/go/bin/go
	else die "the Go toolchain is missing (no 'go' on PATH nor /usr/local/go/bin/go); install Go >= 1.26 to build kube-apiserver, etcd and kwok"
	fi
	PATH="$(dirname "$go"):$PATH"
	export PATH
	command -v python3 >/dev/null 2>&1 || die "python3 is missing (used to read go's JSON output during the build)"
	# The wrappers are tidied and their go.sum files pin every module: build read-only against them
	# (see "module pins" in tools/lib/cached_build.sh). GOMODCACHE/GOCACHE stay at Go's (or the user's) defaults.
	pinned_go_env
	export CGO_ENABLED="${LASTMILE_KUBE_CGO:-0}"
	GO_LOCAL_VERSION="$(go env GOVERSION)"
	GO_LOCAL_VERSION="${GO_LOCAL_VERSION#go}"
	for want in "$APISERVER_WRAPPER/go.mod" "$ETCD_WRAPPER/go.mod" "$KWOK_WRAPPER/go.mod"; do
		want="$(go mod edit -json "$want" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Go") or "0")')"
		version_ge "$GO_LOCAL_VERSION" "$want" || die "Go $GO_LOCAL_VERSION is too old: the wrappers in $SCRIPT_DIR need go >= $want"
	done
	[[ "$(go env GOPROXY)" != "off" ]] || die "GOPROXY=off: the Go module proxy is needed to build kube-apiserver, etcd and kwok"
	log "using $(go version) ($(command -v go)), GOPROXY=$(go env GOPROXY), CGO_ENABLED=$CGO_ENABLED; modules checked against the wrappers' go.sum"
}

# Downloads every module a wrapper's build needs (each checked against the wrapper's go.sum: PINS);
# on failure names each refused module, its version and Go's error (all of them at once), and exits 1.
download_modules() {
	local dir="$1" pins="$2" out failed
	out="$(cd "$dir" && go mod download -json 2>/dev/null)" || true
	failed="$(python3 -c '
import json, sys
dec, text, i, bad = json.JSONDecoder(), sys.stdin.read(), 0, []
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    obj, i = dec.raw_decode(text, i)
    if obj.get("Error"):
        bad.append("  %s@%s: %s" % (obj.get("Path"), obj.get("Version"), obj["Error"]))
print("\n".join(bad))' <<<"$out")" || failed="  (could not read go mod download output)"
	is_checksum_error "$failed" && checksum_refusal "$pins" "$failed"
	if [[ -n "$failed" ]]; then
		printf 'kube/bootstrap: error: modules refused by the Go module proxy (%s) for %s:\n%s\n' \
			"$(go env GOPROXY)" "$dir" "$failed" >&2
		exit 1
	fi
	if [[ -z "$out" ]]; then # go itself failed before listing anything (e.g. go.mod unreadable)
		if ! out="$(cd "$dir" && go mod download 2>&1)"; then
			is_checksum_error "$out" && checksum_refusal "$pins" "$out"
			die "go mod download failed in $dir:"$'\n'"$out"
		fi
	fi
}

# Prints "<Dir>\t<GoMod>\t<Info>" of one module download; on failure prints the module, version and
# the proxy's error to stderr and returns 1 (call it as `x="$(module_paths ...)" || exit 1`).
module_paths() {
	local dir="$1" modver="$2" out
	out="$(cd "$dir" && go mod download -json "$modver" 2>&1)" || true
	is_checksum_error "$out" && checksum_refusal "$SCRIPT_DIR/$(basename "$dir")/go.sum" "$out"
	python3 -c '
import json, sys
modver, text = sys.argv[1], sys.stdin.read()
try:
    d = json.loads(text or "{}")
except ValueError:
    d = {"Error": text.strip()}
if d.get("Error") or not d.get("Dir"):
    sys.exit("kube/bootstrap: error: module %s is not available from the Go module proxy (%s): %s"
             % (modver, sys.argv[2], d.get("Error") or "no module directory"))
print(d["Dir"], d["GoMod"], d["Info"], sep="\t")' "$modver" "$(go env GOPROXY)" <<<"$out"
}

# Every staging module k8s.io/kubernetes replaces locally must be pinned in the wrapper to the
# matching published release (k8s v1.M.P -> v0.M.P); reports all gaps at once.
check_staging_pins() {
	local kube_gomod="$1" problems
	problems="$(python3 -c '
import json, subprocess, sys
def edit_json(path):
    return json.loads(subprocess.run(["go", "mod", "edit", "-json", path], check=True,
                                     capture_output=True, text=True).stdout)
upstream, wrapper_mod, version = edit_json(sys.argv[1]), edit_json(sys.argv[2]), sys.argv[3]
want = "v0." + version.split(".", 1)[1]
wrapper = {r["Old"]["Path"]: r["New"].get("Version") for r in wrapper_mod.get("Replace") or []}
for r in upstream.get("Replace") or []:
    path = r["Old"]["Path"]
    if r["New"].get("Version"):
        continue
    pinned = wrapper.get(path) or "nothing"
    if pinned != want:
        print(f"  {path}: the wrapper pins {pinned}, want {path} => {path} {want}")
' "$kube_gomod" "$APISERVER_WRAPPER/go.mod" "$KUBE_VERSION")"
	[[ -z "$problems" ]] || die "$APISERVER_WRAPPER/go.mod does not pin the staging modules of $KUBE_MOD@$KUBE_VERSION:"$'\n'"$problems"$'\n'"fix the replace block, then run 'go mod tidy' there"
}

# ---- the builds ------------------------------------------------------------------------------------

# Checks every module before anything is compiled: the three main modules (reporting all that are
# refused), the staging pins, then every dependency of the three wrappers.
preflight() {
	local line failed=0
	mkdir -p "$STAGE/src/apiserver" "$STAGE/src/etcd" "$STAGE/src/kwok"
	cp "$APISERVER_WRAPPER/go.mod" "$APISERVER_WRAPPER/go.sum" "$STAGE/src/apiserver/"
	cp "$ETCD_WRAPPER/go.mod" "$ETCD_WRAPPER/go.sum" "$STAGE/src/etcd/"
	cp "$KWOK_WRAPPER/go.mod" "$KWOK_WRAPPER/go.sum" "$STAGE/src/kwok/"
	version_ge "${ETCD_VERSION#v}" "$ETCD_MIN_VERSION" ||
		die "etcd $ETCD_VERSION pinned in $ETCD_WRAPPER/go.mod is older than $ETCD_MIN_VERSION"
	module_paths "$STAGE/src/etcd" "$ETCD_MOD@$ETCD_VERSION" >/dev/null || failed=1
	module_paths "$STAGE/src/kwok" "$KWOK_MOD@$KWOK_VERSION" >/dev/null || failed=1
	if line="$(module_paths "$STAGE/src/apiserver" "$KUBE_MOD@$KUBE_VERSION")"; then
		IFS=$'\t' read -r _ KUBE_GOMOD KUBE_INFO <<<"$line"
	else
		failed=1
	fi
	[[ "$failed" == 0 ]] || exit 1
	check_staging_pins "$KUBE_GOMOD"
	log "downloading the modules of $ETCD_MOD@$ETCD_VERSION, $KUBE_MOD@$KUBE_VERSION and $KWOK_MOD@$KWOK_VERSION"
	download_modules "$STAGE/src/etcd" "$ETCD_WRAPPER/go.sum"
	download_modules "$STAGE/src/apiserver" "$APISERVER_WRAPPER/go.sum"
	download_modules "$STAGE/src/kwok" "$KWOK_WRAPPER/go.sum"
	log "checking every module of the builds against the wrappers' go.sum"
	verify_modules "$STAGE/src/etcd" "$ETCD_WRAPPER/go.sum" "$ETCD_MOD"
	verify_modules "$STAGE/src/apiserver" "$APISERVER_WRAPPER/go.sum" "${KUBE_COMPONENTS[@]/#/$KUBE_MOD/cmd/}"
	verify_modules "$STAGE/src/kwok" "$KWOK_WRAPPER/go.sum" "$KWOK_MOD/cmd/kwok"
}

build_etcd() {
	local got
	log "building etcd $ETCD_VERSION ($ETCD_MOD)"
	(cd "$STAGE/src/etcd" && go build -trimpath -ldflags "-s -w" -o "$STAGE_BIN/etcd" "$ETCD_MOD") >&2
	got="$("$STAGE_BIN/etcd" --version 2>&1 | head -n1 || true)"
	[[ "$got" == "etcd Version: ${ETCD_VERSION#v}" ]] || die "the built etcd reports '$got', expected 'etcd Version: ${ETCD_VERSION#v}'"
}

# kube-apiserver, kube-controller-manager and kube-scheduler, with the same version stamp.
build_kube_components() {
	local build_date minor ver_flags pkg got component
	# The version the server reports (/version, kubectl version) and derives its binary version from;
	# what hack/lib/version.sh sets. The build date is the release's commit time: reproducible.
	build_date="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("Time",""))' "$KUBE_INFO")"
	minor="${KUBE_VERSION#v*.}"
	minor="${minor%%.*}"
	ver_flags=""
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ver_flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		ver_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
	done
	for component in "${KUBE_COMPONENTS[@]}"; do
		log "building $component $KUBE_VERSION ($KUBE_MOD/cmd/$component)"
		(cd "$STAGE/src/apiserver" && go build -trimpath -ldflags "-s -w$ver_flags" \
			-o "$STAGE_BIN/$component" "$KUBE_MOD/cmd/$component") >&2
		got="$("$STAGE_BIN/$component" --version 2>&1 || true)"
		[[ "$got" == "Kubernetes $KUBE_VERSION" ]] || die "the built $component reports '$got', expected 'Kubernetes $KUBE_VERSION'"
	done
}

build_kwok() {
	local got
	log "building kwok $KWOK_VERSION ($KWOK_MOD/cmd/kwok)"
	(cd "$STAGE/src/kwok" && go build -trimpath \
		-ldflags "-s -w -X $KWOK_MOD/pkg/consts.Version=${KWOK_VERSION#v}" \
		-o "$STAGE_BIN/kwok" "$KWOK_MOD/cmd/kwok") >&2
	got="$("$STAGE_BIN/kwok" --version 2>&1 || true)"
	[[ "$got" == *"${KWOK_VERSION#v}"* ]] || die "the built kwok reports '$got', expected version ${KWOK_VERSION#v}"
}

build_all() {
	staged_build "$KUBE_HOME" "$NAME" "$DEST" cache_complete build_stage
	log "${KUBE_COMPONENTS[*]} $KUBE_VERSION, etcd $ETCD_VERSION and kwok $KWOK_VERSION ready in $BIN"
}

# Fills $STAGE/$NAME (see staged_build in tools/lib/cached_build.sh).
build_stage() {
	setup_go_env
	log "building into $STAGE"
	preflight
	build_etcd
	build_kube_components
	build_kwok
	{
		echo "kube-apiserver=$KUBE_MOD@$KUBE_VERSION"
		echo "kube-controller-manager=$KUBE_MOD@$KUBE_VERSION"
		echo "kube-scheduler=$KUBE_MOD@$KUBE_VERSION"
		echo "etcd=$ETCD_MOD@$ETCD_VERSION"
		echo "kwok=$KWOK_MOD@$KWOK_VERSION"
		echo "go=$(go env GOVERSION) CGO_ENABLED=$CGO_ENABLED modules=verified against the wrappers' go.sum"
		echo "wrappers=$(wrappers_hash)"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$STAGE/$NAME/BUILDINFO"
}

# `bootstrap.sh verify`: download (or find in the module cache) every module of the three wrappers and
# check it against their go.sum, as a build does before compiling; nothing is compiled, the cache is not touched.
verify_only() {
	setup_go_env
	STAGE="$(mktemp -d)"
	trap cleanup_stage EXIT
	preflight
	log "every module of the three wrappers matches their go.sum"
}

main() {
	case "${1:-bin}" in
	bin) ;;
	verify)
		verify_only
		return 0
		;;
	-h | --help)
		sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		return 0
		;;
	*) die "unknown argument '$1' (expected: bin, verify, --help)" ;;
	esac
	# Not `cache_complete || build_all`: errexit is off inside a function called from a `||` list.
	if ! cache_complete; then
		build_all
	fi
	cache_complete || die "the binaries in $BIN are incomplete after the build"
	printf '%s\n' "$BIN"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
