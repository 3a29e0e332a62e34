// The egress sidecar's static settings (container env) and its fixed port and paths. The
// Egress component renders them with egressSettingsToEnv(); the sidecar reads them with
// egressSettingsFromEnv(). The routes document it loads is contracts/routes.ts.
import { z } from "zod";
import { CONTAINER_PATHS, FILE_NAMES } from "./paths.ts";
import { jsonLine, type LoadEvent } from "./reload.ts";
import { ListenSchema, settingsFromEnv, settingsToEnv } from "./validation.ts";

export const EGRESS_PORT = 3128;
/**
 * Health endpoint, answered on the proxy port itself when the request is not a proxy request
 * (origin-form). The component's healthcheck and the image's own HEALTHCHECK ask it.
 */
export const EGRESS_HEALTH_PATH = "/__egress/health";
/** The egress CA (key and certificate), uploaded by the component. */
export const EGRESS_CA_DIR = "/etc/claude-bottle/egress-ca";

/** Static settings, passed as container env; parsed by the sidecar from process.env. */
export const EgressSettingsSchema = z.strictObject({
  EGRESS_LISTEN: ListenSchema.default(`0.0.0.0:${EGRESS_PORT}`),
  EGRESS_ROUTES_FILE: z.string().default(`${CONTAINER_PATHS.egressConfigDir}/${FILE_NAMES.routes}`),
  EGRESS_CA_CERT_FILE: z.string().default(`${EGRESS_CA_DIR}/ca.pem`),
  EGRESS_CA_KEY_FILE: z.string().default(`${EGRESS_CA_DIR}/ca-key.pem`),
  /** http://host:port of pipelock; unset = connect directly (standalone use, tests). */
  EGRESS_UPSTREAM_PROXY: z.string().url().optional(),
  /** Colon-separated PEM files trusted for the upstream leg, in addition to the system store (pipelock's CA, corporate CAs). */
  EGRESS_UPSTREAM_CA_FILES: z.string().optional(),
  EGRESS_AUDIT_LOG: z.string().default(`${CONTAINER_PATHS.auditDir}/${FILE_NAMES.egressAudit}`),
  /** Name of the supervise tool the 403 body points the agent to; unset = supervise is off. */
  EGRESS_SUPERVISE_TOOL: z.string().optional(),
});

export type EgressSettings = z.output<typeof EgressSettingsSchema>;

export function egressSettingsFromEnv(env: NodeJS.ProcessEnv): EgressSettings {
  return settingsFromEnv(EgressSettingsSchema, env, "egress environment");
}

export function egressSettingsToEnv(settings: z.input<typeof EgressSettingsSchema>): string[] {
  return settingsToEnv(EgressSettingsSchema, settings, "egress settings");
}

/**
 * The log lines (JSON on stderr, `msg` field) that say which routes file egress runs: each
 * carries `sha256`, the hash of the file's bytes, so a writer can confirm egress loaded exactly
 * what it wrote (readEgressLogLine). A rejected file keeps the previous routes.
 */
export const EGRESS_LOG = {
  listening: "egress listening",
  reloaded: "routes reloaded",
  rejected: "routes file NOT applied; the previous routes stay in force",
} as const;

export function readEgressLogLine(line: string): LoadEvent | undefined {
  const j = jsonLine(line);
  if (!j) return undefined;
  const hash = typeof j.sha256 === "string" ? j.sha256 : undefined;
  if ((j.msg === EGRESS_LOG.listening || j.msg === EGRESS_LOG.reloaded) && hash) return { kind: "loaded", sha256: hash, at: j.msg === EGRESS_LOG.listening ? "start" : "reload" };
  if (j.msg === EGRESS_LOG.rejected) return { kind: "refused", reason: String(j.error ?? "invalid routes file"), restartable: false, ...(hash ? { sha256: hash } : {}) };
  if (j.msg === "egress failed to start") return { kind: "note", text: String(j.error ?? "") };
  return undefined;
}
