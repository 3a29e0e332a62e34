// The git-gate contract: which upstreams the gate mirrors (upstreams.json, uploaded by the
// GitGate component next to each identity key; the gate's entrypoint and hooks read it with
// jq), and the agent's gitconfig that routes every upstream URL to the gate. Identity keys
// never appear in these documents.
import { NOBODY_UID } from "./docker.ts";
import { z } from "zod";
import { parseWith } from "./validation.ts";

export const GIT_GATE_PORT = 9418;
export const GIT_GATE_CONFIG_DIR = "/etc/claude-bottle/git-gate";
export const GIT_GATE_CONFIG_FILE = `${GIT_GATE_CONFIG_DIR}/upstreams.json`;
export const GIT_GATE_KEYS_DIR = `${GIT_GATE_CONFIG_DIR}/keys`;
/** The gate's own healthcheck script (sidecars/git-gate/healthcheck.sh, as the image installs it). */
export const GIT_GATE_HEALTHCHECK = "/usr/local/lib/git-gate/healthcheck.sh";
/** uid/gid the gate's daemon and hooks run as: nobody (see NOBODY_UID for why; sidecars/git-gate/Dockerfile). */
export const GIT_GATE_UID = NOBODY_UID;

/** The gitleaks release the gate is built and tested with (`go install …/gitleaks/v8@<this>`). */
export const GITLEAKS_MODULE = "github.com/zricethezav/gitleaks/v8";
export const GITLEAKS_VERSION = "v8.30.1";

export const UpstreamNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { message: "expected a short lowercase name ([a-z0-9._-], at most 63 characters)" });

/** ssh://[user@]host[:port]/path — the manifest rewrites scp-style `user@host:path` to this. */
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

/** A ref pattern: a full ref name where `*` matches any characters ("/" too), or HEAD = the upstream's default branch. */
export const RefPatternSchema = z.string().regex(/^(?:HEAD|refs\/(?:heads|tags)\/[A-Za-z0-9._\/*-]+)$/, {
  message: 'expected HEAD (the upstream\'s default branch) or a full ref name under refs/heads/ or refs/tags/, "*" matching any characters (e.g. "refs/heads/release/*")',
});

/**
 * What the gate lets a push destroy, per upstream. Deleting a ref and any non-fast-forward move
 * (a rewrite; for a tag: any move at all) are refused unless the operator allows them, and
 * never for a ref matching protected_refs.
 */
export const HISTORY_DEFAULTS = {
  protected_refs: ["HEAD", "refs/tags/*"],
  allow_force_push: false,
  allow_delete: false,
} as const;

export const HistoryPolicyFields = {
  protected_refs: z.array(RefPatternSchema).describe("refs never deleted or rewritten through the gate, whatever allow_force_push / allow_delete say"),
  allow_force_push: z.boolean().describe("forward non-fast-forward updates (and tag moves) of refs not in protected_refs"),
  allow_delete: z.boolean().describe("forward deletions of refs not in protected_refs"),
};

export const GateUpstreamSchema = z.strictObject({
  name: UpstreamNameSchema,
  url: SshUrlSchema,
  known_host_key: KnownHostKeySchema,
  // Explicit in upstreams.json (the manifest has defaults): the gate's hooks read what is written.
  ...HistoryPolicyFields,
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
 * `.git`) is rewritten to the gate (`git://<gateHost>:<port>/<name>.git`), so clone, fetch,
 * pull and push all reach it. insteadOf also governs pushes (no pushInsteadOf is set).
 * `port` is for tests only.
 */
export function agentGitConfig(upstreams: readonly { name: string; url: string }[], gateHost: string, port = GIT_GATE_PORT): string {
  const lines = ["# Written by claude-bottle: every declared git upstream goes through the git-gate sidecar.", ""];
  for (const u of upstreams) {
    lines.push(`# upstream "${u.name}": ${u.url}`);
    lines.push(`[url ${quote(`git://${gateHost}:${port}/${u.name}.git`)}]`);
    for (const s of upstreamSpellings(u.url)) lines.push(`\tinsteadOf = ${quote(s)}`);
    lines.push("");
  }
  return lines.join("\n");
}
