#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`, with gVisor's runsc registered when this
# script owns the engine. Idempotent.
# If none answers: apt-get update (once), install docker.io / mmdebstrap / iptables / runsc when
# missing, register runsc in daemon.json, start dockerd in the background (log under /tmp), wait
# (bounded) until it answers. If one answers, runsc is missing from it and this script started
# it (its stdout is our log): install runsc, register it and reload that dockerd with SIGHUP (no
# restart: running containers are untouched). An engine somebody else started is never touched.
# runsc is best effort: a host where it cannot be installed or does not run still gets its engine.
# Exit 0 when an engine answers; otherwise exit non-zero with a one-line reason.
set -euo pipefail

LOG=${CBTEST_DOCKERD_LOG:-/tmp/cbtest-dockerd.log}
WAIT_S=${CBTEST_DOCKERD_WAIT:-60}
APT_LOG=/tmp/cbtest-ensure-engine-apt.log
DAEMON_JSON=/etc/docker/daemon.json
RUNSC=/usr/bin/runsc
say() { echo "[ensure-engine] $*"; }
die() { echo "[ensure-engine] FAIL: $*" >&2; exit 1; }

engine_up() { docker info >/dev/null 2>&1; }
runtimes() { docker info --format '{{json .Runtimes}}' 2>/dev/null; }
has_runsc() { runtimes | grep -q '"runsc"'; }

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

# The dockerd this script started: the one whose stdout is $LOG. A dockerd run by systemd,
# Docker Desktop or another person never matches, so it is never reconfigured or signalled.
our_dockerd() {
  local pid
  for pid in $(pgrep -x dockerd 2>/dev/null); do
    [ "$(readlink "/proc/$pid/fd/1" 2>/dev/null)" = "$LOG" ] && { echo "$pid"; return 0; }
  done
  return 1
}

# runsc's flags for this kernel, as a JSON array. gVisor before mid-2024 (Debian bookworm ships
# release-20221219) decides "this is the root network namespace" by whether
# /proc/sys/net/core/rmem_default exists, which newer kernels (6.11 on; 6.18 here) expose in
# every namespace; its own network stack then refuses every container with "cannot run with
# network enabled in root network namespace" (gVisor issue 10704). With --network=host the
# sandbox uses the container's network namespace through the host kernel's TCP/IP stack:
# Docker's per-container namespace, --internal networks and iptables still apply, but the
# sentry talks to the host network stack directly (README: "gVisor"). `runsc do` runs the same
# check without an image or a daemon.
runsc_args() {
  local out
  if out=$(timeout 30 "$RUNSC" --network=sandbox do /bin/true 2>&1); then
    echo '[]'
  elif grep -q 'root network namespace' <<<"$out"; then
    echo '["--network=host"]'
  else
    say "runsc does not run here: $(tail -n1 <<<"$out")"
    return 1
  fi
}

# Merge {"runtimes":{"runsc":{path,runtimeArgs}}} into daemon.json, keeping every other key.
register_runsc() {
  local args
  args=$(runsc_args) || return 1
  command -v node >/dev/null 2>&1 || { say "node not found: cannot merge runsc into $DAEMON_JSON"; return 1; }
  mkdir -p "$(dirname "$DAEMON_JSON")"
  node -e '
    const fs = require("fs"); const [file, path, args] = process.argv.slice(1);
    let cfg = {}; try { cfg = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) { if (e.code !== "ENOENT") throw e; }
    cfg.runtimes = { ...(cfg.runtimes ?? {}), runsc: { path, runtimeArgs: JSON.parse(args) } };
    fs.writeFileSync(file + ".tmp", JSON.stringify(cfg, null, 2) + "\n"); fs.renameSync(file + ".tmp", file);
  ' "$DAEMON_JSON" "$RUNSC" "$args" || { say "could not write $DAEMON_JSON"; return 1; }
  say "runsc in $DAEMON_JSON (runtimeArgs $args)"
}

if engine_up; then
  say "engine already answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
  # mmdebstrap is still needed to build the hermetic base image.
  command -v mmdebstrap >/dev/null 2>&1 || apt_install_missing mmdebstrap
  if has_runsc; then
    say "runsc registered: $(runtimes)"
  elif pid=$(our_dockerd); then
    # subshell: apt_install_missing dies on failure, and runsc is best effort
    if (apt_install_missing runsc) && register_runsc; then
      kill -HUP "$pid" # dockerd reloads daemon.json: runtimes are reloadable, containers keep running
      for ((i = 0; i < 20; i++)); do has_runsc && break; sleep 0.25; done
      if has_runsc; then say "runsc live (dockerd $pid reloaded): $(runtimes)"; else say "dockerd $pid did not pick up runsc; see $LOG"; fi
    else
      say "runsc not registered: runtime auto stays runc on this engine"
    fi
  else
    say "runsc is not registered and this engine was not started by ensure-engine.sh: left alone (runtime auto stays runc). To add it: README.md, \"gVisor\""
  fi
  exit 0
fi

# The image build (test/e2e/images/build.ts) needs mmdebstrap too; install it in the same apt round.
apt_install_missing docker.io mmdebstrap iptables
(apt_install_missing runsc) || say "runsc not installed: runtime auto will be runc on this engine"
command -v dockerd >/dev/null 2>&1 || die "dockerd not on PATH after installing docker.io"

if pgrep -x dockerd >/dev/null 2>&1; then
  say "a dockerd process exists but does not answer yet; waiting for it"
else
  # registered before the start, so the engine comes up with it
  [ -x "$RUNSC" ] && { register_runsc || say "runsc not registered: runtime auto will be runc on this engine"; }
  say "starting dockerd in the background (log: $LOG)"
  # setsid: survive the caller's process group (CI step ends, dockerd stays)
  setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
fi

for ((i = 0; i < WAIT_S * 2; i++)); do
  if engine_up; then
    say "engine up after ~$((i / 2)) s ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'); runtimes $(runtimes))"
    exit 0
  fi
  sleep 0.5
done
die "dockerd did not answer within ${WAIT_S}s; last log line: $(tail -n1 "$LOG" 2>/dev/null || echo 'no log')"
