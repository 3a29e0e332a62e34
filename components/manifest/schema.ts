// The bottle manifest: what a user writes. Bottles (in a YAML file) and agents (markdown
// files with YAML front-matter; the body is the agent's prompt). Pieces a sidecar reads
// (routes, git upstream fields, pipelock hosts) are that contract's own schemas.
import { z } from "zod";
import { HISTORY_DEFAULTS, HistoryPolicyFields, KnownHostKeySchema, SshUrlSchema, UpstreamNameSchema } from "../../contracts/git-gate.ts";
import { ExtraAllowlistSchema, MaxBodyMibSchema, MaxResponseMibSchema, SsrfIpAllowlistSchema } from "../../contracts/policy.ts";
import { RouteSchema } from "../../contracts/routes.ts";
import { ServerToolsSchema } from "../../contracts/server-tools.ts";
import { hostName } from "../../contracts/validation.ts";

export const RUNTIMES = ["auto", "runc", "runsc"] as const;

/** `git@host:path` → `ssh://git@host/path`; ssh:// URLs pass through. */
export function normaliseSshUrl(url: string): string {
  const scp = /^([A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!\/\/)(.+)$/.exec(url);
  return scp ? `ssh://${scp[1] ?? ""}${scp[2]}/${scp[3]}` : url;
}

/** Host entries for a container's /etc/hosts: name → IPv4. */
export const ExtraHostsSchema = z.record(hostName(false), z.ipv4({ message: "expected an IPv4 address" }));

export const GitUpstreamManifestSchema = z.strictObject({
  name: UpstreamNameSchema,
  url: z.string().transform(normaliseSshUrl).pipe(SshUrlSchema),
  identity_file: z.string().min(1).describe("path of the SSH private key git-gate pushes and fetches with"),
  known_host_key: KnownHostKeySchema,
  extra_hosts: ExtraHostsSchema.optional(),
  protected_refs: HistoryPolicyFields.protected_refs.default([...HISTORY_DEFAULTS.protected_refs]),
  allow_force_push: HistoryPolicyFields.allow_force_push.default(HISTORY_DEFAULTS.allow_force_push),
  allow_delete: HistoryPolicyFields.allow_delete.default(HISTORY_DEFAULTS.allow_delete),
});

/** Base images are build args; defaults are pinned by digest. Air-gapped users (and our tests) pass local ones. */
export const ImagesSchema = z.strictObject({
  base: z.string().min(1).optional(),
  pipelock: z.string().min(1).optional(),
  gitleaks: z.string().min(1).optional(),
});

export const BottleManifestSchema = z.strictObject({
  egress: z
    .strictObject({
      routes: z.array(RouteSchema).default([]),
      /** Anthropic API server tools the bottle's LLM requests may switch on (egress enforces them). */
      server_tools: ServerToolsSchema.prefault({}),
    })
    .prefault({}),
  pipelock: z
    .strictObject({
      allowlist: ExtraAllowlistSchema.default([]).describe("extra hosts pipelock allows besides the egress route hosts"),
      ssrf_ip_allowlist: SsrfIpAllowlistSchema.default([]),
      /** Default 128 (contracts/pipelock.ts DEFAULT_MAX_RESPONSE_MIB). */
      max_response_mib: MaxResponseMibSchema.optional(),
      /** Default 32 (contracts/pipelock.ts DEFAULT_MAX_BODY_MIB). */
      max_body_mib: MaxBodyMibSchema.optional(),
    })
    .default({ allowlist: [], ssrf_ip_allowlist: [] }),
  git: z
    .strictObject({
      upstreams: z.array(GitUpstreamManifestSchema).default([]),
    })
    .default({ upstreams: [] }),
  supervise: z.boolean().default(true),
  runtime: z.enum(RUNTIMES).default("auto"),
  images: ImagesSchema.default({}),
  /** Extra CA certificates (PEM files) trusted on the upstream leg: corporate TLS inspection, test upstreams. */
  extra_ca_files: z.array(z.string().min(1)).default([]),
  /** Host entries for the sidecars that reach outside (pipelock, git-gate): name → IPv4. */
  extra_hosts: ExtraHostsSchema.default({}),
  /** A host directory (usually a git repo) copied into the bottle at first up. */
  workspace: z.string().min(1).optional(),
});

export type BottleManifest = z.output<typeof BottleManifestSchema>;

/** Bottle and agent names: they name containers, networks and volumes. */
export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,30}$/;

export const ManifestSchema = z.strictObject({
  bottles: z.record(z.string().regex(NAME_RE, { message: "bottle names are lowercase letters, digits and dashes (at most 31)" }), BottleManifestSchema)
    .refine((b) => Object.keys(b).length > 0, { message: "declare at least one bottle" }),
  /** Directory of agent markdown files, relative to the manifest. Default: agents/ */
  agents: z.string().min(1).default("agents"),
});

export type Manifest = z.output<typeof ManifestSchema>;

export const AgentFrontMatterSchema = z.strictObject({
  bottle: z.string().min(1),
  description: z.string().optional(),
  /** Claude model alias or id handed to `claude --model`. */
  model: z.string().min(1).optional(),
  /** Claude Code skills: directories (relative to the agent file) each holding a SKILL.md. */
  skills: z.array(z.string().min(1)).default([]),
});

export type AgentFrontMatter = z.output<typeof AgentFrontMatterSchema>;

export interface AgentSpec extends Omit<AgentFrontMatter, "skills"> {
  /** skill name (directory name) → SKILL.md text. */
  skills: Record<string, string>;
  name: string;
  prompt: string;
  file: string;
}
