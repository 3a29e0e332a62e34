#!/bin/bash
# The agent container's start: runs as `agent` (uid 1000), all capabilities dropped,
# no-new-privileges. Every step is idempotent (it runs on every start, also after a crash
# or a container replacement) and none is fatal: a failure is logged with what to do, and
# the container still idles so the operator can attach and look.
#   1. trust: system bundle = distro bundle + egress CA
#   2. prompt and skills from the manifest → ~/.claude (CLAUDE.md, skills/<name>/)
#   3. workspace: the one-time copy of the host repo, extracted only into an empty volume
#   4. supervise registered as a user-scope MCP server
#   5. idle; the operator attaches with `docker exec -it <agent> claude`
set -u

CONF=/etc/claude-bottle/agent
EGRESS_CA=/etc/claude-bottle/ca/egress-ca.pem
DISTRO_BUNDLE=/usr/local/share/claude-bottle/distro-ca-certificates.crt
SYSTEM_BUNDLE=/etc/ssl/certs/ca-certificates.crt
WORKSPACE=${CLAUDE_BOTTLE_WORKSPACE:-/workspace}
STATE="$HOME/.local/state/claude-bottle"

log() { echo "[agent] $*" >&2; }
# The number of entries in directory $1; nothing when it cannot be read. Bash globbing only
# (getdents): a listing that fails must never read as "empty" (under gVisor without the statx
# shim `ls` fails on every path, and the copy would land on top of the agent's own work).
count_entries() {
  [ -d "$1" ] && [ -r "$1" ] && [ -x "$1" ] || return 0
  (shopt -s nullglob dotglob && set -- "$1"/* && echo $#)
}
json_get() { # json_get FILE KEY → the string value, or nothing
  node -e 'try { const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]]; if (typeof v === "string") process.stdout.write(v); } catch {}' "$1" "$2" 2>/dev/null
}

# 1. trust ------------------------------------------------------------------------------
mkdir -p "$STATE"
if [ -s "$EGRESS_CA" ]; then
  # /etc/ssl/certs is root's; only the bundle file is the agent's, so build it aside and
  # write it in place (this runs before anything in the bottle reads it).
  if { cat "$DISTRO_BUNDLE"; echo; cat "$EGRESS_CA"; } > "$STATE/ca-bundle.tmp" && cat "$STATE/ca-bundle.tmp" > "$SYSTEM_BUNDLE"; then
    log "trust: $SYSTEM_BUNDLE = distro bundle + egress CA"
  else
    log "trust: could not write $SYSTEM_BUNDLE; HTTPS through egress fails for curl/git (node still has NODE_EXTRA_CA_CERTS)"
  fi
  rm -f "$STATE/ca-bundle.tmp"
else
  log "trust: no egress CA at $EGRESS_CA; HTTPS through egress will fail"
fi

# 2. prompt and skills --------------------------------------------------------------------
mkdir -p "$HOME/.claude" "$STATE"
if [ -f "$CONF/prompt.md" ]; then
  # The bottle owns ~/.claude/CLAUDE.md: the manifest's prompt, rewritten on every start.
  cp "$CONF/prompt.md" "$HOME/.claude/CLAUDE.md" && log "prompt: ~/.claude/CLAUDE.md from the manifest"
fi
if [ -d "$CONF/skills" ]; then
  for dir in "$CONF"/skills/*/; do
    [ -f "$dir/SKILL.md" ] || continue
    name=$(basename "$dir")
    rm -rf "$HOME/.claude/skills/$name" && mkdir -p "$HOME/.claude/skills" \
      && cp -R "$dir" "$HOME/.claude/skills/$name" && log "skill: ~/.claude/skills/$name"
  done
fi
# First start only: skip Claude Code's onboarding screens and trust the workspace folder.
if [ ! -e "$HOME/.claude.json" ]; then
  node -e '
    const ws = process.argv[2];
    const cfg = { hasCompletedOnboarding: true, projects: { [ws]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true } } };
    require("fs").writeFileSync(process.env.HOME + "/.claude.json", JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
  ' "$WORKSPACE" && log "claude: first start, onboarding skipped"
fi

# 3. workspace ------------------------------------------------------------------------------
WS_TAR=$CONF/workspace.tar
if [ -f "$WS_TAR" ]; then
  entries=$(count_entries "$WORKSPACE")
  if [ -e "$STATE/workspace-seeded" ]; then
    log "workspace: already copied at first up ($(cat "$STATE/workspace-seeded")); not touched"
  elif [ -z "$entries" ]; then
    log "workspace: cannot read $WORKSPACE; not copying into it. By hand, into an empty $WORKSPACE: tar -xf $WS_TAR -C $WORKSPACE"
  elif [ "$entries" -gt 0 ]; then
    log "workspace: $WORKSPACE is not empty; not overwriting it"
    date -u +%FT%TZ > "$STATE/workspace-seeded"
  elif tar -xf "$WS_TAR" -C "$WORKSPACE" --no-same-owner --no-same-permissions --delay-directory-restore; then
    date -u +%FT%TZ > "$STATE/workspace-seeded"
    log "workspace: copied into $WORKSPACE ($(du -sh "$WORKSPACE" 2>/dev/null | cut -f1))"
  else
    log "workspace: extracting $WS_TAR into $WORKSPACE failed; by hand: tar -xf $WS_TAR -C $WORKSPACE"
  fi
fi

# 4. supervise --------------------------------------------------------------------------------
SUPERVISE_URL=$(json_get "$CONF/agent.json" superviseUrl)
CONTAINER=$(json_get "$CONF/agent.json" containerName)
if [ -n "$SUPERVISE_URL" ]; then
  cmd=(claude mcp add --scope user --transport http supervise "$SUPERVISE_URL")
  current=$(node -e 'try { const c = JSON.parse(require("fs").readFileSync(process.env.HOME + "/.claude.json", "utf8")); process.stdout.write(c.mcpServers?.supervise?.url ?? ""); } catch {}' 2>/dev/null)
  if [ "$current" = "$SUPERVISE_URL" ]; then
    log "supervise: already registered ($SUPERVISE_URL)"
  else
    [ -n "$current" ] && timeout 60 claude mcp remove --scope user supervise >/dev/null 2>&1
    if out=$(timeout 60 "${cmd[@]}" 2>&1); then
      log "supervise: registered ($SUPERVISE_URL)"
    else
      log "supervise: registration failed: ${out//$'\n'/ }"
      log "supervise: run by hand: docker exec -it ${CONTAINER:-<agent container>} ${cmd[*]}"
    fi
  fi
else
  log "supervise: off in this bottle"
fi

# 5. idle ---------------------------------------------------------------------------------------
log "ready: attach with \`docker exec -it <this container> claude\` (resume the last session: \`claude --continue\`)"
exec sleep infinity
