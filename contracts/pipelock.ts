// The pipelock contract: the subset of pipelock's config we render, as a strict schema
// whose literals pin the security properties (strict mode, forward proxy on, body
// scanning block). pipelock.yaml is never edited, only rendered: from the routes and the
// live policy document (contracts/policy.ts), at `pulumi up` and on approval. The policy
// pack checks it with the same schema. Field meanings: pipelock's internal/config/config.go.
import { z } from "zod";
import YAML from "yaml";
import { CONTAINER_PATHS, FILE_NAMES } from "./paths.ts";
import { seal, unseal } from "./seal.ts";
import { hostName, parseWith, parseYamlText } from "./validation.ts";

export const PIPELOCK_PORT = 8888;
/** The live config as pipelock sees it; its directory is mounted (rename-replaced files stay visible). */
export const PIPELOCK_CONFIG_FILE = `${CONTAINER_PATHS.pipelockConfigDir}/${FILE_NAMES.pipelock}`;
export const PIPELOCK_CA_DIR = "/etc/claude-bottle/pipelock-ca";

/**
 * LLM API hosts: spliced, never decrypted (their bodies carry whole conversations and
 * would trip DLP). Listed explicitly, apex included: pipelock's passthrough matcher does
 * not match an apex with "*.". Static, because adding passthrough entries at reload is
 * refused in strict mode.
 */
export const LLM_API_HOSTS = ["api.anthropic.com"] as const;

const hosts = z.array(hostName(true));

export const PipelockConfigSchema = z.strictObject({
  // First, on purpose (and api_allowlist last): see pipelockConfigToYaml.
  mode: z.literal("strict"),
  version: z.literal(1),
  enforce: z.literal(true),
  explain_blocks: z.boolean(),
  fetch_proxy: z.strictObject({
    listen: z.string(),
    monitoring: z.strictObject({ max_requests_per_minute: z.number().int().positive() }),
  }),
  forward_proxy: z.strictObject({
    enabled: z.literal(true),
    max_tunnel_seconds: z.number().int().positive(),
    idle_timeout_seconds: z.number().int().positive(),
  }),
  tls_interception: z.strictObject({
    enabled: z.boolean(),
    ca_cert: z.string(),
    ca_key: z.string(),
    passthrough_domains: hosts,
  }),
  request_body_scanning: z.strictObject({
    enabled: z.literal(true),
    action: z.literal("block"),
    scan_headers: z.literal(true),
    header_mode: z.literal("sensitive"),
    sensitive_headers: z.array(z.string()),
  }),
  ssrf: z.strictObject({ ip_allowlist: z.array(z.string()) }).optional(),
  logging: z.strictObject({
    format: z.literal("json"),
    output: z.enum(["stdout", "file", "both"]),
    file: z.string().optional(),
    include_allowed: z.boolean(),
    include_blocked: z.boolean(),
  }),
  // Last, on purpose: see pipelockConfigToYaml.
  api_allowlist: hosts.min(1, { message: "strict mode refuses to start with an empty allowlist" }),
});

export type PipelockConfig = z.output<typeof PipelockConfigSchema>;

export interface PipelockConfigInput {
  /** Hosts pipelock lets through (egress route hosts + extra allowlist hosts). */
  allowlist: readonly string[];
  /** CIDRs exempt from the SSRF guard (e.g. a corporate upstream on a private range). */
  ssrfIpAllowlist?: readonly string[];
}

/**
 * Headers pipelock's header DLP looks at. Authorization and X-Api-Key are left out on
 * purpose: egress strips every agent-sent credential and injects the real token, so those
 * two only ever carry the operator's own credential on the way to its own host.
 */
export const SCANNED_HEADERS = ["Cookie", "X-Token", "Proxy-Authorization", "X-Goog-Api-Key"];

export function renderPipelockConfig(input: PipelockConfigInput): PipelockConfig {
  const allowlist = [...new Set([...input.allowlist].map((h) => h.trim().toLowerCase().replace(/\.$/, "")))].sort();
  const config = {
    mode: "strict",
    version: 1,
    enforce: true,
    explain_blocks: true,
    fetch_proxy: {
      listen: `0.0.0.0:${PIPELOCK_PORT}`,
      // Claude Code is chatty; the per-domain limit cannot be switched off, only raised.
      monitoring: { max_requests_per_minute: 6000 },
    },
    forward_proxy: { enabled: true, max_tunnel_seconds: 3600, idle_timeout_seconds: 1800 },
    tls_interception: {
      enabled: true,
      ca_cert: `${PIPELOCK_CA_DIR}/ca.pem`,
      ca_key: `${PIPELOCK_CA_DIR}/ca-key.pem`,
      passthrough_domains: [...LLM_API_HOSTS],
    },
    request_body_scanning: {
      enabled: true,
      action: "block",
      scan_headers: true,
      header_mode: "sensitive",
      sensitive_headers: SCANNED_HEADERS,
    },
    ...(input.ssrfIpAllowlist?.length ? { ssrf: { ip_allowlist: [...input.ssrfIpAllowlist] } } : {}),
    logging: { format: "json", output: "stdout", include_allowed: true, include_blocked: true },
    api_allowlist: allowlist,
  };
  return parseWith(PipelockConfigSchema, config, "rendered pipelock config");
}

/**
 * pipelock.yaml's bytes. pipelock parses its own file and knows nothing of our seal (to it the
 * trailer is a comment), so the layout itself keeps a partial file from widening anything on a
 * reload: `mode: strict` comes FIRST — a prefix without it reads as balanced mode, which strict
 * pipelock refuses as a downgrade — and api_allowlist LAST — strict mode refuses a config
 * without one (config/validate.go) — and every string is double-quoted, so a cut inside a value
 * is an unterminated scalar, not a shorter host name. What a prefix can still be: a subset of the
 * allowlist (narrower, never wider). At start there is no running config to compare against:
 * the image's entrypoint (sidecars/pipelock/start.sh) checks the seal before pipelock runs.
 */
export function pipelockConfigToYaml(config: PipelockConfig): string {
  const ordered = parseWith(PipelockConfigSchema, config, "pipelock config");
  return seal("# Rendered by claude-bottle; live changes arrive through supervise approvals.\n" + YAML.stringify(ordered, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }));
}

export function parsePipelockConfig(text: string, where: string = FILE_NAMES.pipelock): PipelockConfig {
  return parseWith(PipelockConfigSchema, parseYamlText(unseal(text, where), where), where);
}
