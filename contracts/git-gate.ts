// The git-gate contract: which upstreams the gate mirrors. The GitGate component renders
// it (upstreams.json, uploaded) and uploads each identity key next to it; the gate's
// entrypoint and hooks read it with this schema (via `node --import` free JSON parsing in
// the image: see sidecars/git-gate/). Identity keys never appear in this document.
import { z } from "zod";
import { hostName, parseWith } from "./validation.ts";

export const GIT_GATE_PORT = 9418;
export const GIT_GATE_CONFIG_DIR = "/etc/claude-bottle/git-gate";
export const GIT_GATE_CONFIG_FILE = `${GIT_GATE_CONFIG_DIR}/upstreams.json`;
export const GIT_GATE_KEYS_DIR = `${GIT_GATE_CONFIG_DIR}/keys`;

export const UPSTREAM_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** ssh://[user@]host[:port]/path — scp-style `user@host:path` is rewritten to this by the manifest loader. */
export const SshUrlSchema = z
  .string()
  .regex(/^ssh:\/\/(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(?::\d{1,5})?\/[^\s'"`;|&$]+$/, {
    message: 'expected an ssh upstream URL like "ssh://git@github.com/org/repo.git" or "git@github.com:org/repo.git"',
  });

export const KnownHostKeySchema = z
  .string()
  .trim()
  .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}$/, {
    message: 'expected a public host key "<type> <base64>", e.g. "ssh-ed25519 AAAAC3Nza…" (as printed by `ssh-keyscan -t ed25519 <host>`, without the host name)',
  });

export const GateUpstreamSchema = z.strictObject({
  name: z.string().regex(UPSTREAM_NAME_RE, { message: "expected a short lowercase name ([a-z0-9._-])" }),
  url: SshUrlSchema,
  known_host_key: KnownHostKeySchema,
});

export const GitGateConfigSchema = z
  .strictObject({
    version: z.literal(1),
    upstreams: z.array(GateUpstreamSchema).min(1),
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.upstreams.forEach((u, i) => {
      if (names.has(u.name)) ctx.addIssue({ code: "custom", path: ["upstreams", i, "name"], message: `duplicate upstream name "${u.name}"` });
      names.add(u.name);
    });
  });

export type GitGateConfig = z.output<typeof GitGateConfigSchema>;
export type GateUpstream = z.output<typeof GateUpstreamSchema>;

export function parseGitGateConfig(data: unknown, where = "upstreams.json"): GitGateConfig {
  return parseWith(GitGateConfigSchema, data, where);
}

/** host and port of an ssh:// URL. */
export function sshHostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.toLowerCase(), port: u.port ? Number(u.port) : 22 };
}

/** The URL the agent's git sees for an upstream: `git://<alias>/<name>.git`. */
export function gateUrl(gateHost: string, name: string): string {
  return `git://${gateHost}:${GIT_GATE_PORT}/${name}.git`;
}

export const extraHostsSchema = z.record(hostName(false), z.ipv4({ message: "expected an IPv4 address" }));
