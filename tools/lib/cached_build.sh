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
