#!/usr/bin/env bash
# tools/engine/bootstrap.sh: provide the Pulumi engine for the project's pinned Python packages
# (pulumi==3.272.0, pulumi-kubernetes==4.25.0) on a machine that cannot download it.
#
#   tools/engine/bootstrap.sh            ensure the engine, print its bin directory on stdout
#   tools/engine/bootstrap.sh plugins    the same, then install the kubernetes plugin into
#                                        $PULUMI_HOME (taken from the environment)
#   tools/engine/bootstrap.sh verify     check every module of both builds against the pins, compile nothing
#
# Two binaries, built from the Go module proxy (see tools/engine/README.md):
#   pulumi                      github.com/pulumi/pulumi/pkg/v3 (cmd/pulumi) v3.274.1, via tools/engine/cli/go.mod
#   pulumi-resource-kubernetes  github.com/pulumi/pulumi-kubernetes/provider/v4 at the commit of tag v4.25.0
# and cached by version in ${LASTMILE_ENGINE_HOME:-$HOME/.cache/lastmile/engine}/pulumi-v<V>-k8s-v<V>/bin.
# No Python language host is needed: `lastmile up` runs the program inline through the Automation API.
# A `pulumi` of exactly PULUMI_VERSION already on PATH (a workstation install) is used instead of
# building the CLI.
# Every module is pinned: the CLI's by cli/go.sum, the provider module by K8S_MODULE_SUM and its
# dependencies by kubernetes/go.sum; a module that does not match stops the build (exit 1, naming it).
#
# Only the bin directory goes to stdout; everything else goes to stderr.
# Environment knobs: LASTMILE_ENGINE_HOME (cache root), LASTMILE_ENGINE_CGO (CGO_ENABLED for the
# builds, default 0).
set -euo pipefail

# ---- pinned versions: keep in step with requirements.txt -------------------------------------------
# The CLI may be newer than the Python SDK (pulumi==3.272.0, the newest wheel): the engine protocol is
# backward compatible. v3.272.0 itself is not served by the Go module proxy; v3.274.1 is.
PULUMI_VERSION=3.274.1   # -> pkg/v3, sdk/v3 v3.274.1
# The plugin must be exactly the version of the pulumi-kubernetes wheel (the SDK asks the engine for
# the plugin of its own version). Tagged provider/v4 versions are refused by the proxy; the
# pseudo-version of the commit that tag v4.25.0 points at is served.
K8S_VERSION=4.25.0       # pulumi-kubernetes==4.25.0
K8S_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
K8S_MODULE_SUM=h1:j2bphCf7c2YhnBrhwht2f3TNRRgcMImltUlAgzxr9H4= # its go.sum hash (h1:), checked before the module is copied
PKG_MOD=github.com/pulumi/pulumi/pkg/v3
SDK_MOD=github.com/pulumi/pulumi/sdk/v3
K8S_MOD=github.com/pulumi/pulumi-kubernetes/provider/v4

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/cached_build.sh
source "$SCRIPT_DIR/../lib/cached_build.sh"
ENGINE_HOME="${LASTMILE_ENGINE_HOME:-$HOME/.cache/lastmile/engine}"
ENGINE_NAME="pulumi-v${PULUMI_VERSION}-k8s-v${K8S_VERSION}"
ENGINE_DIR="$ENGINE_HOME/$ENGINE_NAME"
BIN="$ENGINE_DIR/bin"
# What pins every module of the two builds (see "module pins" in tools/lib/cached_build.sh).
PINS="$SCRIPT_DIR/cli/go.sum, $SCRIPT_DIR/kubernetes/go.sum and K8S_MODULE_SUM"

INSTALL_HINT="On a workstation with internet access, install the Pulumi CLI v${PULUMI_VERSION} instead \
(https://www.pulumi.com/docs/install/) and the plugin with \
'PULUMI_HOME=<repo>/.pulumi-home pulumi plugin install resource kubernetes ${K8S_VERSION}'."

log() { printf 'engine/bootstrap: %s\n' "$*" >&2; }
die() { printf 'engine/bootstrap: error: %s\n' "$*" >&2; exit 1; }

# ---- fast path: is everything already there? ----------------------------------------------------

# Prints the version a pulumi binary reports (e.g. v3.272.0), or nothing.
pulumi_version_of() {
	PULUMI_SKIP_UPDATE_CHECK=true "$1" version 2>/dev/null | head -n1 | tr -d '[:space:]' || true
}

# Prints the path of the first `pulumi` on PATH outside our bin dir if it is exactly v$PULUMI_VERSION.
system_pulumi() {
	local p
	while IFS= read -r p; do
		[[ "$(dirname "$p")" -ef "$BIN" ]] && continue
		if [[ "$(pulumi_version_of "$p")" == "v$PULUMI_VERSION" ]]; then
			printf '%s\n' "$p"
			return 0
		fi
		return 1 # the first one outside $BIN is what a user would run: it must be the right one
	done < <(type -ap pulumi 2>/dev/null || true)
	return 1
}

have_cli_in() { [[ -x "$1/pulumi" && "$(pulumi_version_of "$1/pulumi")" == "v$PULUMI_VERSION" ]]; }
have_k8s_in() { [[ -x "$1/pulumi-resource-kubernetes" ]]; }

# Hash of the pins (pure bash and coreutils: the fast path must not need Go).
pins_hash() {
	{ cat "$SCRIPT_DIR/cli/go.mod" "$SCRIPT_DIR/cli/go.sum" "$SCRIPT_DIR/kubernetes/go.sum"; echo "$K8S_MODULE_SUM"; } |
		sha256sum | cut -c1-16
}

# The cache is keyed by version. A cache built under other pins (its BUILDINFO pins= line) is rebuilt;
# one built before the pins existed (no such line) is kept: same versions, and its modules can be
# checked against today's pins with `bootstrap.sh verify`.
pins_match() {
	local line
	line="$(grep '^pins=' "$ENGINE_DIR/BUILDINFO" 2>/dev/null || true)"
	[[ -z "$line" || "$line" == "pins=$(pins_hash)" ]]
}

# Succeeds when $BIN (possibly together with a workstation pulumi) provides all three pieces.
engine_complete() {
	have_k8s_in "$BIN" || return 1
	pins_match || return 1
	if have_cli_in "$BIN"; then
		return 0
	fi
	local sys
	sys="$(system_pulumi)" || return 1
}

# The pulumi binary to use for plugin installation.
engine_pulumi() {
	if have_cli_in "$BIN"; then printf '%s\n' "$BIN/pulumi"; else system_pulumi; fi
}

# ---- build prerequisites -------------------------------------------------------------------------

setup_go_env() {
	local go
	go="$(find_go)" || die "the Go toolchain is missing (no 'go' on PATH nor /usr/local/go/bin/go), so the \
Pulumi engine cannot be built from the Go module proxy. Install Go >= 1.24 (the pulumi modules need it). $INSTALL_HINT"
	PATH="$(dirname "$go"):$PATH"
	export PATH
	command -v python3 >/dev/null 2>&1 || die "python3 is missing (used to read go.mod/JSON files during the build)."
	# Every module is pinned by the committed cli/go.sum and kubernetes/go.sum (see "module pins" in
	# tools/lib/cached_build.sh). GOMODCACHE and GOCACHE stay at Go's defaults under $HOME (or whatever
	# the user configured) so that warm rebuilds reuse them.
	pinned_go_env
	export CGO_ENABLED="${LASTMILE_ENGINE_CGO:-0}"
	GO_LOCAL_VERSION="$(go env GOVERSION)"
	GO_LOCAL_VERSION="${GO_LOCAL_VERSION#go}"
	log "using $(go version) ($(command -v go)), GOPROXY=$(go env GOPROXY), CGO_ENABLED=$CGO_ENABLED; modules checked against $PINS"
	[[ "$(go env GOPROXY)" != "off" ]] || die "GOPROXY=off: the Go module proxy is needed to build the engine. $INSTALL_HINT"
}

# go mod download -json MODULE@VERSION; prints "Dir<TAB>GoMod<TAB>Info" or dies with Go's error.
download_module() {
	local modver="$1" out
	if out="$(cd "$STAGE" && go mod download -json "$modver" 2>&1)"; then
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Dir"], d["GoMod"], d["Info"], sep="\t")' <<<"$out"
		return 0
	fi
	local err
	err="$(python3 -c 'import json,sys
try: print(json.load(sys.stdin).get("Error",""))
except Exception: pass' <<<"$out" 2>/dev/null || true)"
	is_checksum_error "${err:-$out}" && checksum_refusal "$PINS" "${err:-$out}"
	printf 'engine/bootstrap: module %s is not available from the Go module proxy (%s):\n%s\n' \
		"$modver" "$(go env GOPROXY)" "${err:-$out}" >&2
	return 1
}

# Checks every module needed before anything is compiled, reporting all that are missing at once.
preflight() {
	local failed=0 line
	PKG_GOMOD="" K8S_DIR=""
	download_module "$SDK_MOD@v$PULUMI_VERSION" >/dev/null || failed=1
	if [[ "$NEED_CLI" == 1 ]]; then
		if line="$(download_module "$PKG_MOD@v$PULUMI_VERSION")"; then
			IFS=$'\t' read -r _ PKG_GOMOD _ <<<"$line"
		else failed=1; fi
	fi
	if [[ "$NEED_K8S" == 1 ]]; then
		if line="$(download_module "$K8S_MOD@$K8S_MODULE_VERSION")"; then
			IFS=$'\t' read -r K8S_DIR _ _ <<<"$line"
		else failed=1; fi
	fi
	[[ "$failed" == 0 ]] || die "the Pulumi engine cannot be built here: see the module errors above. $INSTALL_HINT"
}

# ---- wrapper-module helpers ------------------------------------------------------------------------

# Copies the non-local replace directives of an upstream go.mod ($2) into a wrapper go.mod ($1)
# (a dependency's replace directives are ignored by Go, so the wrapper has to repeat them). Local
# replaces of pulumi's own modules are covered by the wrapper's requirements; any other local
# replace cannot be reproduced and is reported.
sync_replaces() {
	local wrapper="$1" upstream="$2" edits
	edits="$(go mod edit -json "$upstream" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d.get("Replace") or []:
    old, new = r["Old"], r["New"]
    o = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
    if not new.get("Version"):  # local directory
        if not old["Path"].startswith("github.com/pulumi/pulumi/"):
            print("LOCAL", o, new["Path"])
        continue
    print("REPLACE", o, new["Path"] + "@" + new["Version"])
')"
	local kind old new
	while read -r kind old new; do
		[[ -n "$kind" ]] || continue
		if [[ "$kind" == LOCAL ]]; then
			log "warning: $upstream replaces $old with local directory $new; not reproducible, using the proxy's $old"
		else
			(cd "$(dirname "$wrapper")" && go mod edit "-replace=$old=$new")
		fi
	done <<<"$edits"
}

# Sets the wrapper's go directive to the upstream module's and checks the local toolchain for it.
sync_go_directive() {
	local wrapper="$1" upstream="$2" want
	want="$(go mod edit -json "$upstream" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Go") or "")')"
	[[ -n "$want" ]] || return 0
	version_ge "$GO_LOCAL_VERSION" "$want" || die "Go $GO_LOCAL_VERSION is too old: $(basename "$(dirname "$upstream")") needs go >= $want. $INSTALL_HINT"
	(cd "$(dirname "$wrapper")" && go mod edit "-go=$want")
}

# ---- the three builds ------------------------------------------------------------------------------

# The CLI's wrapper module in $STAGE/src/cli, every module it builds from checked against cli/go.sum.
prepare_cli() {
	local w="$STAGE/src/cli"
	mkdir -p "$w"
	cp "$SCRIPT_DIR/cli/go.mod" "$SCRIPT_DIR/cli/go.sum" "$w/"
	(cd "$w" && go mod edit -require="$PKG_MOD@v$PULUMI_VERSION" -require="$SDK_MOD@v$PULUMI_VERSION")
	sync_go_directive "$w/go.mod" "$PKG_GOMOD"
	sync_replaces "$w/go.mod" "$PKG_GOMOD"
	verify_modules "$w" "$SCRIPT_DIR/cli/go.sum" "$PKG_MOD/cmd/pulumi"
}

build_cli() {
	local w="$STAGE/src/cli"
	log "building pulumi v$PULUMI_VERSION ($PKG_MOD/cmd/pulumi)"
	(cd "$w" && go build -trimpath \
		-ldflags "-s -w -X $SDK_MOD/go/common/version.Version=v$PULUMI_VERSION" \
		-o "$STAGE_BIN/pulumi" "$PKG_MOD/cmd/pulumi") >&2
	[[ "$(pulumi_version_of "$STAGE_BIN/pulumi")" == "v$PULUMI_VERSION" ]] ||
		die "the built pulumi reports '$(pulumi_version_of "$STAGE_BIN/pulumi")', expected v$PULUMI_VERSION"
}

# The provider module, checked against K8S_MODULE_SUM, copied to $STAGE/src/pulumi-kubernetes-provider
# with kubernetes/go.sum as its go.sum; every module it builds from checked against that.
prepare_k8s() {
	local src="$STAGE/src/pulumi-kubernetes-provider" got
	got="$(module_dir_hash "$K8S_DIR" "$K8S_MOD@$K8S_MODULE_VERSION")"
	[[ "$got" == "$K8S_MODULE_SUM" ]] || checksum_refusal "K8S_MODULE_SUM in $SCRIPT_DIR/bootstrap.sh" \
		"$K8S_MOD@$K8S_MODULE_VERSION ($K8S_DIR) hashes to $got, which does not match the pinned $K8S_MODULE_SUM"
	log "copying $K8S_MOD@v$K8S_VERSION to a writable directory"
	cp -R "$K8S_DIR" "$src"
	chmod -R u+w "$src"
	# Local replace directives pointing outside the module cannot resolve in the copy: drop them so
	# the proxy's version is used (reported; there is none in the releases seen so far).
	local old new
	while read -r old new; do
		[[ -n "$old" ]] || continue
		if [[ ! -d "$src/$new" && ! -d "$new" ]]; then
			log "warning: dropping replace $old => $new (local directory not part of the module)"
			(cd "$src" && go mod edit "-dropreplace=$old")
		fi
	done < <(go mod edit -json "$src/go.mod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if not r["New"].get("Version"):
        print(r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else ""), r["New"]["Path"])
')
	sync_go_directive "$src/go.mod" "$src/go.mod"
	cp "$SCRIPT_DIR/kubernetes/go.sum" "$src/go.sum"
	check_pinned "$src" "$SCRIPT_DIR/kubernetes/go.sum" ./cmd/pulumi-resource-kubernetes/generate.go
	verify_modules "$src" "$SCRIPT_DIR/kubernetes/go.sum" ./cmd/pulumi-resource-kubernetes
}

build_k8s() {
	local src="$STAGE/src/pulumi-kubernetes-provider" cmd f
	cmd="$src/cmd/pulumi-resource-kubernetes"
	log "generating schema-embed.json and terraform-mapping-embed.json (VERSION=$K8S_VERSION go run ./generate.go)"
	(cd "$cmd" && VERSION="$K8S_VERSION" go run ./generate.go) >&2
	for f in schema-embed.json terraform-mapping-embed.json; do
		[[ -s "$cmd/$f" ]] || die "generate.go did not produce $f in $cmd"
	done
	log "building pulumi-resource-kubernetes v$K8S_VERSION"
	(cd "$src" && go build -trimpath \
		-ldflags "-s -w -X $K8S_MOD/pkg/version.Version=$K8S_VERSION" \
		-o "$STAGE_BIN/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes) >&2
}

# ---- orchestration ---------------------------------------------------------------------------------

build_engine() {
	staged_build "$ENGINE_HOME" "$ENGINE_NAME" "$ENGINE_DIR" engine_complete build_engine_stage
	log "engine ready in $BIN"
}

# Fills $STAGE/$ENGINE_NAME (see staged_build in tools/lib/cached_build.sh).
build_engine_stage() {
	# What must be built: anything not in the cache (or on a workstation) already.
	local sys=""
	sys="$(system_pulumi)" || sys=""
	NEED_CLI=1 NEED_K8S=1
	if [[ -n "$sys" ]]; then
		log "using $sys (v$PULUMI_VERSION) instead of building the CLI"
		NEED_CLI=0
	fi
	have_cli_in "$BIN" && NEED_CLI=0
	have_k8s_in "$BIN" && NEED_K8S=0

	setup_go_env
	mkdir -p "$STAGE/src"

	# Keep what the existing cache already has (e.g. a host built before the CLI was needed).
	local f
	for f in pulumi pulumi-resource-kubernetes; do
		[[ -e "$BIN/$f" ]] && cp -p "$BIN/$f" "$STAGE_BIN/$f"
	done
	[[ "$NEED_CLI" == 1 ]] && rm -f "$STAGE_BIN/pulumi"

	log "building into $STAGE (cli=$NEED_CLI kubernetes=$NEED_K8S)"
	preflight
	[[ "$NEED_CLI" == 1 ]] && prepare_cli
	[[ "$NEED_K8S" == 1 ]] && prepare_k8s
	[[ "$NEED_CLI" == 1 ]] && build_cli
	[[ "$NEED_K8S" == 1 ]] && build_k8s

	{
		if [[ -x "$STAGE_BIN/pulumi" ]]; then echo "pulumi=v$PULUMI_VERSION (built)"; else echo "pulumi=v$PULUMI_VERSION (using $sys)"; fi
		echo "pulumi-resource-kubernetes=v$K8S_VERSION"
		echo "go=$(go env GOVERSION) CGO_ENABLED=$CGO_ENABLED"
		echo "pins=$(pins_hash)"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$STAGE/$ENGINE_NAME/BUILDINFO"
}

# `bootstrap.sh verify`: download (or find in the module cache) every module of both builds and check it
# against the pins, as a build does before compiling; nothing is compiled, the cache is not touched.
verify_only() {
	NEED_CLI=1 NEED_K8S=1
	setup_go_env
	STAGE="$(mktemp -d)"
	trap cleanup_stage EXIT
	preflight
	prepare_cli
	prepare_k8s
	log "every module of pulumi v$PULUMI_VERSION and pulumi-resource-kubernetes v$K8S_VERSION matches $PINS"
}

# Installs the kubernetes plugin into $PULUMI_HOME from our binary (idempotent).
install_k8s_plugin() {
	[[ -n "${PULUMI_HOME:-}" ]] || die "PULUMI_HOME is not set (lastmile sets it to .pulumi-home of the repository)"
	local dest="$PULUMI_HOME/plugins/resource-kubernetes-v$K8S_VERSION" pulumi_bin
	if [[ -x "$dest/pulumi-resource-kubernetes" && ! -e "$dest.partial" ]]; then
		return 0
	fi
	pulumi_bin="$(engine_pulumi)" || die "no pulumi v$PULUMI_VERSION available to install the plugin"
	log "installing resource plugin kubernetes v$K8S_VERSION into $PULUMI_HOME"
	mkdir -p "$PULUMI_HOME"
	PULUMI_SKIP_UPDATE_CHECK=true "$pulumi_bin" plugin install resource kubernetes "$K8S_VERSION" \
		--file "$BIN/pulumi-resource-kubernetes" >&2
}

main() {
	local cmd="${1:-bin}"
	case "$cmd" in
	bin | plugins) ;;
	verify)
		verify_only
		return 0
		;;
	-h | --help)
		sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		return 0
		;;
	*) die "unknown argument '$cmd' (expected: bin, plugins, verify, --help)" ;;
	esac
	# Not `engine_complete || build_engine`: errexit is off inside a function called from a `||` list.
	if ! engine_complete; then
		build_engine
	fi
	engine_complete || die "the engine in $BIN is incomplete after the build"
	[[ "$cmd" == plugins ]] && install_k8s_plugin
	printf '%s\n' "$BIN"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
