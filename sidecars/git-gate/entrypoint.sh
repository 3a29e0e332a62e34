#!/bin/bash
# git-gate entrypoint: turn upstreams.json + uploaded identity keys into one bare mirror per
# upstream, then serve them with git daemon. Fails closed: a malformed config, a missing key
# or a missing host key stops the gate instead of starting it half-configured.
#
#   entrypoint.sh            set up, then exec git daemon (foreground)
#   entrypoint.sh setup      set up only (tests, debugging)
#
# Extra env (see lib.sh for the paths):
#   GIT_GATE_LISTEN (0.0.0.0), GIT_GATE_PORT (9418)
#   GIT_GATE_RUN_AS          user to drop to when started as root (the image sets 65534, nobody);
#                            keys are staged for that user before dropping.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${GIT_GATE_LIB:=$here}"
# shellcheck source=lib.sh
. "$GIT_GATE_LIB/lib.sh"

: "${GIT_GATE_LISTEN:=0.0.0.0}"
: "${GIT_GATE_PORT:=9418}"
: "${GIT_GATE_RUN_AS:=}"

die() {
  gate_log "$*"
  exit 1
}

run_as=""
if [ "$(id -u)" = 0 ] && [ -n "$GIT_GATE_RUN_AS" ]; then
  run_as=$GIT_GATE_RUN_AS
  id "$run_as" >/dev/null 2>&1 || die "GIT_GATE_RUN_AS=$run_as: no such user"
  run_as_group=$(id -g "$run_as")
fi
# as USER: run a command as the daemon's user (so it owns what it creates)
as_gate() {
  if [ -n "$run_as" ]; then setpriv --reuid="$run_as" --regid="$run_as_group" --init-groups -- "$@"; else "$@"; fi
}

setup() {
  [ -r "$GIT_GATE_CONFIG" ] || die "config $GIT_GATE_CONFIG is missing or unreadable"
  jq -e . "$GIT_GATE_CONFIG" >/dev/null 2>&1 || die "config $GIT_GATE_CONFIG is not valid JSON"
  # The component validated this with GitGateConfigSchema; re-check what the scripts rely on
  # (names become paths, URLs and keys end up in ssh arguments).
  local problems
  problems=$(jq -r '
    def bad(p; msg): "upstreams[\(p)]: \(msg)";
    if .version != 1 then "version: expected 1"
    elif (.upstreams | type) != "array" or (.upstreams | length) == 0 then "upstreams: expected a non-empty array"
    else
      (.upstreams | to_entries[] | .key as $i | .value |
        (if (.name | type) != "string" or (.name | test("^[a-z0-9][a-z0-9._-]{0,62}$") | not) then bad($i; "bad name") else empty end),
        (if (.url | type) != "string" or (.url | test("^ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^\\s'"'"'\"`;|&$]+$") | not) then bad($i; "bad url (expected ssh://...)") else empty end),
        (if (.known_host_key | type) != "string" or (.known_host_key | test("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\\.com) [A-Za-z0-9+/]+={0,3}$") | not) then bad($i; "missing or malformed known_host_key (the gate never trusts on first use)") else empty end),
        (if (.allow_force_push | type) != "boolean" or (.allow_delete | type) != "boolean" then bad($i; "allow_force_push and allow_delete must be true or false (the hooks never guess a history policy)") else empty end),
        (if (.protected_refs | type) != "array" or any(.protected_refs[]; type != "string" or (test("^(HEAD|refs/(heads|tags)/[A-Za-z0-9._/*-]+)$") | not)) then bad($i; "protected_refs must be a list of HEAD or refs/heads/..., refs/tags/... patterns") else empty end)),
      (.upstreams | map(.name) | group_by(.) | map(select(length > 1))[] | "duplicate upstream name \"\(.[0])\"")
    end' "$GIT_GATE_CONFIG")
  [ -z "$problems" ] || die "invalid $GIT_GATE_CONFIG: $(echo "$problems" | paste -sd';' -)"

  umask 077
  mkdir -p "$GIT_GATE_STATE/keys" "$GIT_GATE_STATE/known_hosts" "$GIT_GATE_BASE"
  chmod 700 "$GIT_GATE_STATE" "$GIT_GATE_STATE/keys" "$GIT_GATE_STATE/known_hosts"
  if [ -n "$run_as" ]; then
    chown "$run_as:$run_as_group" "$GIT_GATE_STATE" "$GIT_GATE_STATE/keys" "$GIT_GATE_STATE/known_hosts" "$GIT_GATE_BASE"
    if [ -n "$GIT_GATE_AUDIT_LOG" ]; then
      touch "$GIT_GATE_AUDIT_LOG" && chown "$run_as:$run_as_group" "$GIT_GATE_AUDIT_LOG" || true
    fi
  fi

  local name url key host port src repo
  while IFS=$'\t' read -r name url key; do
    read -r host port < <(gate_host_port "$url")
    # Identity: uploaded by the component (often root-owned); stage a private copy owned by
    # the daemon's user, mode 0600, which is what ssh insists on.
    src="$GIT_GATE_KEYS_DIR/$name"
    [ -f "$src" ] || die "upstream $name: identity key $src is missing"
    install -m 600 "$src" "$GIT_GATE_STATE/keys/$name"
    # Pinned host key: the only entry ssh will consult for this upstream.
    if [ "$port" = 22 ]; then
      printf '%s %s\n' "$host" "$key" >"$GIT_GATE_STATE/known_hosts/$name"
    else
      printf '[%s]:%s %s\n' "$host" "$port" "$key" >"$GIT_GATE_STATE/known_hosts/$name"
    fi
    chmod 600 "$GIT_GATE_STATE/known_hosts/$name"
    [ -z "$run_as" ] || chown "$run_as:$run_as_group" "$GIT_GATE_STATE/keys/$name" "$GIT_GATE_STATE/known_hosts/$name"

    repo="$GIT_GATE_BASE/$name.git"
    [ -d "$repo" ] || as_gate git init --quiet --bare "$repo"
    as_gate "$GIT_GATE_LIB/configure-repo.sh" "$repo" "$name" "$url"
    gate_log "upstream $name -> $url (host key pinned for $host:$port)"
  done < <(jq -r '.upstreams[] | [.name, .url, .known_host_key] | @tsv' "$GIT_GATE_CONFIG")
}

setup
[ "${1:-}" = setup ] && exit 0

daemon=(git daemon --reuseaddr --base-path="$GIT_GATE_BASE" --export-all --informative-errors
  --enable=receive-pack --access-hook="$GIT_GATE_LIB/hooks/access-hook"
  --listen="$GIT_GATE_LISTEN" --port="$GIT_GATE_PORT" --init-timeout=30 --max-connections=32
  "$GIT_GATE_BASE")
gate_log "serving ${daemon[*]}"
if [ -n "$run_as" ]; then
  exec setpriv --reuid="$run_as" --regid="$run_as_group" --init-groups --inh-caps=-all -- env HOME="$GIT_GATE_STATE" "${daemon[@]}"
fi
export HOME="${HOME:-$GIT_GATE_STATE}"
exec "${daemon[@]}"
