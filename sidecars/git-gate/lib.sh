# shellcheck shell=bash
# Shared by the git-gate entrypoint and hooks. Every path comes from the environment so the
# same scripts run in the image (defaults below) and on a test host (everything overridden).
#
#   GIT_GATE_CONFIG      upstreams.json (GitGateConfigSchema, contracts/git-gate.ts)
#   GIT_GATE_KEYS_DIR    uploaded identity keys, one file per upstream name
#   GIT_GATE_BASE        where the bare mirrors live (<name>.git); git daemon's --base-path
#   GIT_GATE_STATE       private working state: staged keys, pinned known_hosts, locks
#   GIT_GATE_LIB         directory holding these scripts (hooks/ beneath it)
#   GIT_GATE_GITLEAKS    the gitleaks binary
#   GIT_GATE_GITLEAKS_CONFIG  the gate's gitleaks config (gitleaks.toml beside these scripts)
#   GIT_GATE_AUDIT_LOG   JSON-lines audit log ("" = none)
#   GIT_GATE_TIMEOUT     seconds allowed for one upstream fetch or push (default 120)
#   GIT_GATE_SCAN_TIMEOUT seconds allowed for the gitleaks scan of one push (default 300)
#   GIT_GATE_SSH_PERSIST  seconds an upstream ssh connection is kept for reuse (default 60; 0 = off)

: "${GIT_GATE_CONFIG:=/etc/claude-bottle/git-gate/upstreams.json}"
: "${GIT_GATE_KEYS_DIR:=/etc/claude-bottle/git-gate/keys}"
: "${GIT_GATE_BASE:=/srv/git}"
: "${GIT_GATE_STATE:=/var/lib/git-gate}"
: "${GIT_GATE_LIB:=/usr/local/lib/git-gate}"
: "${GIT_GATE_GITLEAKS:=/usr/local/bin/gitleaks}"
: "${GIT_GATE_GITLEAKS_CONFIG:=$GIT_GATE_LIB/gitleaks.toml}"
: "${GIT_GATE_AUDIT_LOG:=}"
: "${GIT_GATE_TIMEOUT:=120}"
export GIT_GATE_CONFIG GIT_GATE_KEYS_DIR GIT_GATE_BASE GIT_GATE_STATE GIT_GATE_LIB GIT_GATE_GITLEAKS GIT_GATE_GITLEAKS_CONFIG GIT_GATE_AUDIT_LOG GIT_GATE_TIMEOUT

# Never let an inherited user/system config (credential helpers, insteadOf, hooks) steer the gate.
export GIT_CONFIG_NOSYSTEM=1
export GIT_CONFIG_GLOBAL=/dev/null
export GIT_TERMINAL_PROMPT=0

readonly GATE_NAME_RE='^[a-z0-9][a-z0-9._-]{0,62}$'
readonly GATE_ZERO=0000000000000000000000000000000000000000

gate_log() { printf 'git-gate: %s\n' "$*" >&2; }

# audit EVENT key=value... -> one JSON line (values are strings).
gate_audit() {
  [ -n "$GIT_GATE_AUDIT_LOG" ] || return 0
  local event=$1
  shift
  local args=(--arg event "$event" --arg time "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  local keys='{time:$time, component:"git-gate", event:$event'
  local kv k v
  for kv in "$@"; do
    k=${kv%%=*}
    v=${kv#*=}
    args+=(--arg "$k" "$v")
    keys+=", $k:\$$k"
  done
  jq -cn "${args[@]}" "$keys}" >>"$GIT_GATE_AUDIT_LOG" 2>/dev/null || true
}

# ssh://[user@]host[:port]/path -> "host port"
gate_host_port() {
  local rest=${1#ssh://}
  rest=${rest%%/*}
  rest=${rest##*@}
  local host=${rest%%:*} port=22
  [ "$rest" != "$host" ] && port=${rest#*:}
  printf '%s %s\n' "${host,,}" "$port"
}

# The upstream name a bare repo path belongs to: /srv/git/<name>.git -> <name>
gate_repo_name() {
  local base
  base=$(basename "$1")
  printf '%s\n' "${base%.git}"
}
