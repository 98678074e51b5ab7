# shellcheck shell=bash
# tools/engine/env.sh: offline defaults for local Pulumi stacks. Source it, don't run it:
#
#   source tools/engine/env.sh        (bash or zsh)
#
# It sets
#   PULUMI_SKIP_UPDATE_CHECK=true                    no "new version available" lookup
#   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true never download plugins; they come from bootstrap.sh
#   PULUMI_HOME=<repo>/.pulumi-home                  project-local plugins, credentials and workspace
#   PULUMI_BACKEND_URL=file://<repo>/.pulumi-state   local state, no Pulumi Cloud login
#   PULUMI_CONFIG_PASSPHRASE=lastmile-local-only     only if neither it nor PULUMI_CONFIG_PASSPHRASE_FILE
#                                                    is set already (see below)
# then runs tools/engine/bootstrap.sh plugins (builds the engine on first use, which takes tens of
# minutes, and installs the kubernetes plugin into PULUMI_HOME) and prepends the engine's bin
# directory to PATH.
#
# PULUMI_HOME and the state directory can be moved elsewhere (tests, throwaway projects) with
# LASTMILE_PULUMI_HOME and LASTMILE_PULUMI_STATE_DIR (absolute paths).
#
# The default passphrase is for stacks on this file backend only: it is public (it is written
# here), so secrets that stacks encrypt with it are NOT protected. Set PULUMI_CONFIG_PASSPHRASE (or
# PULUMI_CONFIG_PASSPHRASE_FILE) before sourcing this file for anything that holds real secrets.
#
# Returns non-zero (after setting the variables) if the engine could not be provided.

if [ -n "${BASH_VERSION:-}" ]; then
	_lm_env_file="${BASH_SOURCE[0]}"
elif [ -n "${ZSH_VERSION:-}" ]; then
	eval '_lm_env_file="${(%):-%x}"'
else
	_lm_env_file="$0"
fi
_lm_repo="$(cd "$(dirname "$_lm_env_file")/../.." && pwd)"

export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_HOME="${LASTMILE_PULUMI_HOME:-$_lm_repo/.pulumi-home}"
_lm_state="${LASTMILE_PULUMI_STATE_DIR:-$_lm_repo/.pulumi-state}"
mkdir -p "$PULUMI_HOME" "$_lm_state" # the file backend needs its directory to exist
export PULUMI_BACKEND_URL="file://$_lm_state"
if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
	# Local-only default, see the header: not a secret.
	export PULUMI_CONFIG_PASSPHRASE=lastmile-local-only
fi

_lm_rc=0
if _lm_bin="$("$_lm_repo/tools/engine/bootstrap.sh" plugins)"; then
	case ":$PATH:" in
	*":$_lm_bin:"*) ;;
	*) export PATH="$_lm_bin:$PATH" ;;
	esac
else
	echo "tools/engine/env.sh: the Pulumi engine is not available (see the messages above); PATH unchanged" >&2
	_lm_rc=1
fi
unset _lm_env_file _lm_repo _lm_state _lm_bin
# shellcheck disable=SC2317  # `return` ends the sourcing; the rest only runs if executed directly
eval "unset _lm_rc; return $_lm_rc" 2>/dev/null || exit "$_lm_rc"
