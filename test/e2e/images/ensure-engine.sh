#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`. Idempotent.
# If none answers: apt-get update (once), install docker.io / mmdebstrap / iptables when missing,
# start dockerd in the background (log under /tmp), wait (bounded) until it answers.
# Exit 0 when an engine answers; otherwise exit non-zero with a one-line reason.
set -euo pipefail

LOG=${CBTEST_DOCKERD_LOG:-/tmp/cbtest-dockerd.log}
WAIT_S=${CBTEST_DOCKERD_WAIT:-60}
APT_LOG=/tmp/cbtest-ensure-engine-apt.log
say() { echo "[ensure-engine] $*"; }
die() { echo "[ensure-engine] FAIL: $*" >&2; exit 1; }

engine_up() { docker info >/dev/null 2>&1; }

apt_updated=0
apt_install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to apt-get install ${missing[*]}"
  if [ $apt_updated -eq 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$APT_LOG" 2>&1 \
      || die "apt-get update failed: $(tail -n1 "$APT_LOG")"
    apt_updated=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1 \
    || die "apt-get install ${missing[*]} failed: $(tail -n1 "$APT_LOG")"
}

if engine_up; then
  say "engine already answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?')); nothing to do"
  # mmdebstrap is still needed to build the hermetic base image.
  command -v mmdebstrap >/dev/null 2>&1 || apt_install_missing mmdebstrap
  exit 0
fi

# The image build (test/e2e/images/build.ts) needs mmdebstrap too; install it in the same apt round.
apt_install_missing docker.io mmdebstrap iptables
command -v dockerd >/dev/null 2>&1 || die "dockerd not on PATH after installing docker.io"

if pgrep -x dockerd >/dev/null 2>&1; then
  say "a dockerd process exists but does not answer yet; waiting for it"
else
  say "starting dockerd in the background (log: $LOG)"
  # setsid: survive the caller's process group (CI step ends, dockerd stays)
  setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
fi

for ((i = 0; i < WAIT_S * 2; i++)); do
  if engine_up; then
    say "engine up after ~$((i / 2)) s ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 0.5
done
die "dockerd did not answer within ${WAIT_S}s; last log line: $(tail -n1 "$LOG" 2>/dev/null || echo 'no log')"
