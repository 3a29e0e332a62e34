// The pipelock contract: the subset of pipelock's config we render, as a strict schema
// whose literals pin the security properties (strict mode, forward proxy on, body
// scanning block). pipelock.yaml is never edited, only rendered: from the routes and the
// live policy document (contracts/policy.ts), at `pulumi up` and on approval. The policy
// pack checks it with the same schema. Field meanings: pipelock's internal/config/schema.go;
// which release's schema this was read from, and what is not established about the pinned
// 3.6.0: components/upstream-images.json "pipelock_schema".
import { z } from "zod";
import YAML from "yaml";
import { CONTAINER_PATHS, FILE_NAMES } from "./paths.ts";
import { jsonLine, type LoadEvent } from "./reload.ts";
import { seal, unseal } from "./seal.ts";
import { hostName, parseWith, parseYamlText } from "./validation.ts";

export const PIPELOCK_PORT = 8888;
/**
 * /metrics and /stats on loopback, off the proxy port: on 0.0.0.0 (the default, they share the
 * proxy's listener) pipelock logs an "anomaly" at every start and reload (measured on v2.3.0).
 * Start-only in pipelock: a change is a reload warning, which strict mode refuses (a restart).
 */
export const PIPELOCK_METRICS_LISTEN = "127.0.0.1:9090";
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
  metrics_listen: z.string(),
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
    max_response_bytes: z.number().int().positive(),
  }),
  request_body_scanning: z.strictObject({
    enabled: z.literal(true),
    action: z.literal("block"),
    max_body_bytes: z.number().int().positive(),
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
  /** The largest response pipelock passes from an intercepted host, MiB. Default DEFAULT_MAX_RESPONSE_MIB. */
  maxResponseMib?: number;
  /** The largest request body pipelock passes to an intercepted host, MiB. Default DEFAULT_MAX_BODY_MIB. */
  maxBodyMib?: number;
}

/**
 * pipelock scans what crosses an intercepted (not passthrough) host before it passes it on, and
 * blocks what it cannot scan: a response is read whole into memory, scanned, then sent
 * (intercept.go: io.ReadAll up to tls_interception.max_response_bytes, 403 above it), and so is a
 * request body (request_body_scanning.max_body_bytes, "fail-closed above this limit"). Its own
 * defaults, 5 MiB each, block an npm or pip install of any larger package and most release
 * tarballs. Ours: 128 MiB responses (a 100 MB download works; a response costs about its size in
 * pipelock's memory while it is scanned, so the cap bounds that), 32 MiB bodies (uploads are
 * rarer and smaller). The manifest raises or lowers them per bottle (pipelock.max_response_mib,
 * pipelock.max_body_mib). Hosts in passthrough_domains (the LLM API) are spliced, never capped.
 */
export const DEFAULT_MAX_RESPONSE_MIB = 128;
export const DEFAULT_MAX_BODY_MIB = 32;
export const MIB = 1024 * 1024;

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
    metrics_listen: PIPELOCK_METRICS_LISTEN,
    forward_proxy: { enabled: true, max_tunnel_seconds: 3600, idle_timeout_seconds: 1800 },
    tls_interception: {
      enabled: true,
      ca_cert: `${PIPELOCK_CA_DIR}/ca.pem`,
      ca_key: `${PIPELOCK_CA_DIR}/ca-key.pem`,
      passthrough_domains: [...LLM_API_HOSTS],
      max_response_bytes: (input.maxResponseMib ?? DEFAULT_MAX_RESPONSE_MIB) * MIB,
    },
    request_body_scanning: {
      enabled: true,
      action: "block",
      max_body_bytes: (input.maxBodyMib ?? DEFAULT_MAX_BODY_MIB) * MIB,
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

// ---------------------------------------------------------------------------------------------
// pipelock's log, as the writers of pipelock.yaml and the operator read it. Mirrors pipelock's
// internal/audit/logger.go (zerolog JSON on stdout: "event" startup / config_reload / error /
// anomaly …) and internal/config/reload.go + internal/cli/runtime/server.go (plain text on
// stderr: "pipelock: config reload failed: …", "WARNING: config reload: <field> - <message>").

/**
 * Refusals a restart gets past: pipelock refuses them on reload only. In strict mode ANY reload
 * warning (a passthrough domain added, ssrf.ip_allowlist widened, a restart-only key changed)
 * rejects the whole file ("rejected: security downgrade from strict mode"), and some keys are
 * start-only ("… (requires restart)"). Not restartable: "implausibly empty config reload"
 * (pipelock's guard against a torn file, in any mode) and parse/validation failures (the same
 * file would fail at start).
 */
/** What restarting pipelock interrupts, told to the operator whenever a writer does it. */
export const PIPELOCK_RESTART_INTERRUPTS =
  "pipelock was down for about a second: the agent's HTTP(S) requests in flight through it (a streaming model reply included) were cut and fail or are retried by the client; the agent's session and every container stay";

const RESTARTABLE_REFUSAL = /^rejected: (security downgrade from strict mode|.*requires restart)/;

export function readPipelockLogLine(line: string): LoadEvent | undefined {
  const j = jsonLine(line);
  if (j) {
    const hash = typeof j.config_hash === "string" ? j.config_hash : undefined;
    if (j.event === "startup" && hash) return { kind: "loaded", sha256: hash, at: "start" };
    if (j.event === "config_reload" && j.status === "success" && hash) return { kind: "loaded", sha256: hash, at: "reload" };
    const error = typeof j.error === "string" ? j.error : "";
    if (j.event === "error" && /^(rejected: |reload failed)/.test(error)) return { kind: "refused", reason: error, restartable: RESTARTABLE_REFUSAL.test(error) };
    if (j.event === "error" && j.method === "CONFIG_RELOAD" && error) return { kind: "note", text: error };
    return undefined;
  }
  const text = line.trim();
  const failed = /^pipelock: config reload failed: (.*)$/.exec(text);
  if (failed) return { kind: "refused", reason: `config reload failed: ${failed[1]}`, restartable: false };
  if (/^WARNING: config reload/.test(text)) return { kind: "note", text };
  // a start that fails prints its reason here and exits (a restart that does not come up)
  if (/^pipelock: /.test(text)) return { kind: "note", text };
  return undefined;
}

/**
 * Lines of pipelock's log that say nothing to the operator, measured on the real binary (v2.3.0,
 * shared facts "Measured on the real binary"): per intercepted CONNECT a warn "anomaly"
 * `TLS MITM interception active` (forward.go, unconditional) and an error `use of closed network
 * connection` (the relay's close path); the WARNINGs it prints at start; the anomaly about
 * /metrics and /stats on a non-loopback listener when `metrics_listen` is not set (we set it).
 * Reload WARNINGs are kept: they name the field that made a reload a refusal.
 */
export function isPipelockNoise(line: string): boolean {
  if (/use of closed network connection/.test(line)) return true;
  const j = jsonLine(line);
  if (j) return j.event === "anomaly" && (j.scanner === "tls_intercept" || /\/metrics|\/stats/.test(String(j.reason ?? "") + String(j.url ?? "")));
  return /^WARNING: (?!config reload)/.test(line.trim());
}
