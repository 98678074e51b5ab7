# shellcheck shell=bash
# tools/lib/cached_build.sh: the cached, locked, atomic build that tools/engine/bootstrap.sh and
# tools/kube/bootstrap.sh share. Sourced, not run; the caller defines log() and die().

# Version comparison of dotted numbers: succeeds when $1 >= $2.
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

# Prints the Go toolchain to use (go on PATH, else the usual install path), or fails.
find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		printf '%s\n' /usr/local/go/bin/go
	else
		return 1
	fi
}

cleanup_stage() {
	if [[ -n "${STAGE:-}" && -d "$STAGE" ]]; then
		chmod -R u+w "$STAGE" 2>/dev/null || true
		rm -rf "$STAGE"
	fi
}

# staged_build HOME NAME DEST IS_COMPLETE BUILD
#   One builder at a time: a caller that finds HOME/.lock taken waits, then returns when IS_COMPLETE
#   says the other build finished the cache. Leftovers of interrupted builds are removed (we hold the
#   lock). BUILD runs with STAGE (a fresh directory in HOME, removed on exit) and STAGE_BIN
#   ("$STAGE/NAME/bin", created) and fills "$STAGE/NAME"; then that directory replaces DEST with one
#   rename within HOME, so the cache is always either the old one or the new one, never half of one.
staged_build() {
	local home="$1" name="$2" dest="$3" is_complete="$4" build="$5" stale
	mkdir -p "$home"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$home/.lock"
		if ! flock -n 9; then
			log "another build is running (lock $home/.lock); waiting for it"
			flock 9
		fi
		"$is_complete" && return 0
	fi
	for stale in "$home"/.build-*; do
		[[ -d "$stale" ]] || continue
		log "removing leftover $stale"
		chmod -R u+w "$stale" 2>/dev/null || true
		rm -rf "$stale"
	done
	STAGE="$(mktemp -d "$home/.build-$name.XXXXXX")"
	trap cleanup_stage EXIT
	trap 'exit 130' INT TERM
	STAGE_BIN="$STAGE/$name/bin"
	mkdir -p "$STAGE_BIN"
	"$build"
	if [[ -e "$dest" ]]; then
		mv "$dest" "$STAGE/previous"
	fi
	mv "$STAGE/$name" "$dest"
}

# ---- module pins -----------------------------------------------------------------------------------
# Every module a build uses is pinned by a committed go.sum (tools/kube/*/go.sum, tools/engine/*/go.sum)
# that was produced once, from a build whose downloads the checksum database confirmed, and reviewed.
# Go checks each download and each module cache entry's recorded hash (.ziphash) against go.sum when a
# build uses it, and with -mod=readonly a module without a go.sum line is refused instead of added: no
# trust on first use, whatever GOSUMDB says (it is never consulted for a pinned module, and never turned
# off). What Go does not re-check is a module directory in the cache changed after its download:
# verify_modules does (go mod verify) before anything is compiled.

# Go settings for a pinned build: go.mod/go.sum are read, never updated; no go.work swaps modules in;
# no toolchain is downloaded; no VCS stamping (module sources are not checkouts).
pinned_go_env() {
	export GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off GOTOOLCHAIN=local
}

# Succeeds when Go's output ($1) says a module is not the one go.sum pins (or has no pin at all).
is_checksum_error() {
	grep -qE 'checksum mismatch|SECURITY ERROR|missing go\.sum entry|has been modified|missing ziphash|does not match the pinned' <<<"$1"
}

# checksum_refusal PINS OUTPUT: stop the build because a module is not what PINS (committed files) pin.
checksum_refusal() {
	die "module checksum verification failed against $1: a module from the proxy or in the Go module \
cache ($(go env GOMODCACHE)) is not the one pinned, so nothing is built or published.
$2
If the module cache was changed or corrupted, remove that module from it ('go clean -modcache' removes all) \
and run again: it is downloaded and checked anew. If the proxy serves these bits, do not build. A new \
version is pinned on purpose by regenerating the go.sum beside its go.mod (see the README there)."
}

# check_pinned DIR PINS PACKAGE...: every module that provides one of PACKAGES or a dependency of them,
# as the module in DIR resolves them, is the one PINS pins. go list downloads what the cache lacks and
# checks it, checks each cached module's recorded hash, and refuses a module without a pin (unlike
# `go mod download`, which fetches an unpinned module when GOSUMDB is off).
check_pinned() {
	local dir="$1" pins="$2" out
	shift 2
	# -e: a package error that is not about modules (a file generated later) must not hide the others.
	if ! out="$(cd "$dir" && go list -e -deps -f '{{with .Error}}{{.}}{{"\n"}}{{end}}' "$@" 2>&1)"; then
		is_checksum_error "$out" && checksum_refusal "$pins" "$out"
		die "go list -deps $* failed in $dir:"$'\n'"$out"
	fi
	if is_checksum_error "$out"; then checksum_refusal "$pins" "$out"; fi
}

# verify_modules DIR PINS PACKAGE...: check_pinned, then that no module directory in the cache was
# changed since its download (go mod verify: the build itself does not look again).
verify_modules() {
	local dir="$1" pins="$2" out
	check_pinned "$@"
	out="$(cd "$dir" && go mod verify 2>&1)" || checksum_refusal "$pins" "$out"
}

# Prints the go.sum hash (h1:...) of a module directory, as Go computes it (golang.org/x/mod dirhash
# Hash1: the sha256 of a sorted list of "<sha256 of file>  <module>@<version>/<path>" lines).
module_dir_hash() {
	python3 - "$1" "$2" <<'PY'
import base64, hashlib, os, sys
root, prefix = sys.argv[1], sys.argv[2]
names = []
for top, _, files in os.walk(root):
    names += [os.path.relpath(os.path.join(top, f), root).replace(os.sep, "/") for f in files]
summary = hashlib.sha256()
for name in sorted(f"{prefix}/{n}" for n in names):
    with open(os.path.join(root, name[len(prefix) + 1:]), "rb") as f:
        summary.update(f"{hashlib.sha256(f.read()).hexdigest()}  {name}\n".encode())
print("h1:" + base64.b64encode(summary.digest()).decode())
PY
}
