// Pure helpers the GitGate component calls while rendering a bottle: the merged extra hosts
// for the gate container, the agent's gitconfig (insteadOf rewrites to the gate) and the
// pinned known_hosts line. The gate image itself runs bash + git + ssh + jq (entrypoint.sh,
// hooks/), not these.
import { ConfigError } from "./validation.ts";
import { GIT_GATE_PORT, gateUrl, sshHostPort } from "./git-gate.ts";

/** The gitleaks release the gate is built and tested with (`go install …/gitleaks/v8@<this>`). */
export const GITLEAKS_MODULE = "github.com/zricethezav/gitleaks/v8";
export const GITLEAKS_VERSION = "v8.30.1";

/** Files of the gate image, relative to its build context (sidecars/git-gate/). */
export const GIT_GATE_IMAGE_PATHS = {
  /** Bare mirrors, one <name>.git per upstream, owned by the gate user. */
  base: "/srv/git",
  /** Staged keys, pinned known_hosts, ssh control sockets (0700, gate user). */
  state: "/var/lib/git-gate",
  lib: "/usr/local/lib/git-gate",
  gitleaks: "/usr/local/bin/gitleaks",
} as const;
/** uid/gid of the non-root user the gate's daemon and hooks run as. */
export const GIT_GATE_UID = 10001;

export interface UpstreamExtraHosts {
  name: string;
  extra_hosts?: Record<string, string> | undefined;
}

/**
 * Merge every upstream's extra_hosts into one list for the gate container (one /etc/hosts).
 * The same host at the same IP is listed once; the same host at two IPs is a ConfigError
 * naming both upstreams and both key paths (`<pathPrefix>[i].extra_hosts.<host>`).
 */
export function mergeExtraHosts(upstreams: readonly UpstreamExtraHosts[], pathPrefix = "upstreams", where = "manifest"): { host: string; ip: string }[] {
  const seen = new Map<string, { ip: string; name: string; index: number }>();
  const out: { host: string; ip: string }[] = [];
  const problems: string[] = [];
  const at = (i: number, host: string) => `${pathPrefix}[${i}].extra_hosts.${host}`;
  upstreams.forEach((u, index) => {
    for (const [rawHost, rawIp] of Object.entries(u.extra_hosts ?? {})) {
      const host = rawHost.trim().toLowerCase().replace(/\.$/, "");
      const ip = rawIp.trim();
      const prev = seen.get(host);
      if (!prev) {
        seen.set(host, { ip, name: u.name, index });
        out.push({ host, ip });
      } else if (prev.ip !== ip) {
        problems.push(
          `${at(index, host)}: upstream "${u.name}" maps ${host} to ${ip}, but upstream "${prev.name}" (${at(prev.index, host)}) maps it to ${prev.ip}; ` +
            `the gate has one /etc/hosts, so upstreams sharing a host must agree on its address`,
        );
      }
    }
  });
  if (problems.length) throw new ConfigError(where, problems);
  return out;
}

export interface UpstreamUrl {
  name: string;
  url: string;
}

const quote = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

/** Every spelling of an upstream URL the agent might type, for `insteadOf`. */
export function upstreamSpellings(url: string): string[] {
  const u = new URL(url);
  const user = u.username ? `${decodeURIComponent(u.username)}@` : "";
  const host = u.hostname.toLowerCase();
  const path = decodeURIComponent(u.pathname);
  const bare = path.replace(/\.git$/, "");
  const forms = new Set<string>();
  const withPort = u.port ? `${host}:${u.port}` : host;
  for (const p of [path, bare, `${bare}.git`]) {
    forms.add(`ssh://${user}${withPort}${p}`);
    // scp-like `user@host:path` has no port: only for port 22.
    if (!u.port) forms.add(`${user}${host}:${p.replace(/^\//, "")}`);
  }
  forms.add(url);
  return [...forms];
}

/**
 * The agent's gitconfig: each upstream URL (ssh:// and scp-like spellings, with and without
 * `.git`) is rewritten to the gate, so clone/fetch/pull/push all reach it transparently.
 * insteadOf also governs pushes (no pushInsteadOf is set). `port` is for tests only.
 */
export function agentGitConfig(upstreams: readonly UpstreamUrl[], gateHost: string, port = GIT_GATE_PORT): string {
  const lines = ["# Written by claude-bottle: every declared git upstream goes through the git-gate sidecar.", ""];
  for (const u of upstreams) {
    lines.push(`# upstream "${u.name}": ${u.url}`);
    const target = port === GIT_GATE_PORT ? gateUrl(gateHost, u.name) : `git://${gateHost}:${port}/${u.name}.git`;
    lines.push(`[url ${quote(target)}]`);
    for (const s of upstreamSpellings(u.url)) lines.push(`\tinsteadOf = ${quote(s)}`);
    lines.push("");
  }
  return lines.join("\n");
}

/** The one known_hosts line the gate trusts for an upstream: `[host]:port type key` (`host type key` on 22). */
export function knownHostsLine(upstream: { url: string; known_host_key: string }): string {
  const { host, port } = sshHostPort(upstream.url);
  const key = upstream.known_host_key.trim().split(/\s+/).slice(0, 2).join(" ");
  return `${port === 22 ? host : `[${host}]:${port}`} ${key}`;
}
