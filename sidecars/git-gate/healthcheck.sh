#!/bin/bash
# Docker HEALTHCHECK: something listens on the gate's port. Read from /proc/net rather than
# connecting: a bare TCP connect makes git daemon log "the remote end hung up", and any real
# git request would make the gate fetch from the upstream.
hex=$(printf '%04X' "${GIT_GATE_PORT:-9418}")
grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
