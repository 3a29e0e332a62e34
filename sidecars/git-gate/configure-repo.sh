#!/bin/bash
# configure-repo.sh REPO NAME URL — (re)write one mirror's config. Idempotent; run by the
# entrypoint at every start so a changed upstreams.json takes effect on restart.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${GIT_GATE_LIB:=$here}"
# shellcheck source=lib.sh
. "$GIT_GATE_LIB/lib.sh"

repo=$1 name=$2 url=$3
key="$GIT_GATE_STATE/keys/$name"
known="$GIT_GATE_STATE/known_hosts/$name"
# GIT_GATE_SSH_PERSIST seconds (default 60; 0 = off): keep one authenticated connection per
# upstream so the fetch-before-push and the forward share a handshake. The socket is per
# upstream NAME, not per host: two upstreams on one host (e.g. two deploy keys on one forge)
# must never share a connection authenticated with the other's identity.
persist=${GIT_GATE_SSH_PERSIST:-60}
mux=""
if [ "$persist" != 0 ]; then
  mux=" -o ControlMaster=auto -o ControlPath='$GIT_GATE_STATE/cm-$name' -o ControlPersist=$persist"
fi
g() { git --git-dir="$repo" config "$@"; }

g gate.name "$name"
g remote.origin.url "$url"
g --replace-all remote.origin.fetch '+refs/heads/*:refs/heads/*'
g --add remote.origin.fetch '+refs/tags/*:refs/tags/*'
g remote.origin.tagOpt --no-tags
# The declared identity and the pinned host key only: no agent, no ~/.ssh, no TOFU.
g core.sshCommand "ssh -F /dev/null -i '$key' -o IdentitiesOnly=yes -o IdentityAgent=none \
-o StrictHostKeyChecking=yes -o UserKnownHostsFile='$known' -o GlobalKnownHostsFile=/dev/null \
-o CheckHostIP=no -o UpdateHostKeys=no -o BatchMode=yes -o ConnectTimeout=15 \
-o ServerAliveInterval=15 -o ServerAliveCountMax=4$mux"
g core.hooksPath "$GIT_GATE_LIB/hooks"
g core.logAllRefUpdates false
# Check what the agent pushes; refuse refs the mirror does not mirror (see pre-receive).
g receive.fsckObjects true
g receive.denyDeletes false
g receive.denyNonFastForwards false
g uploadpack.allowFilter true
g gc.auto 0
