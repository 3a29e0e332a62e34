#!/bin/sh
# pipelock's entrypoint in the bottle: `run --config FILE` starts pipelock only when FILE ends
# with its completeness line, "# claude-bottle-sha256: <sha256 of every byte above it>"
# (contracts/seal.ts). pipelock parses the file itself and would start on a prefix of it (an
# empty file is balanced mode, no allowlist enforced); once it runs, strict mode refuses such a
# prefix on reload as a downgrade (contracts/pipelock.ts, pipelockConfigToYaml). Every other
# command (healthcheck, version) goes straight to the binary.
set -eu
PIPELOCK=/usr/local/bin/pipelock
PREFIX='# claude-bottle-sha256: '
if [ "${1:-}" = run ]; then
  config=""
  prev=""
  for arg in "$@"; do
    [ "$prev" = --config ] && config=$arg
    case $arg in --config=*) config=${arg#--config=} ;; esac
    prev=$arg
  done
  if [ -n "$config" ]; then
    last=$(tail -n 1 "$config" 2>/dev/null || true)
    want=${last#"$PREFIX"}
    have=$(sed '$d' "$config" 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$want" = "$last" ] || [ "$want" != "$have" ]; then
      echo "pipelock not started: $config does not end with a matching completeness line (\"$PREFIX<sha256 of everything above it>\"): it is incomplete, still being written, or was edited by hand" >&2
      exit 78
    fi
  fi
fi
exec "$PIPELOCK" "$@"
