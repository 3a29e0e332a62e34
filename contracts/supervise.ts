// The supervise sidecar's static settings (container env) and its fixed port and paths. The
// Supervise component renders them with superviseSettingsToEnv(); the sidecar parses them
// with superviseSettingsFromEnv(). Nothing is parsed two ways.
import { z } from "zod";
import { CONTAINER_PATHS, FILE_NAMES } from "./paths.ts";
import { ListenSchema, settingsFromEnv, settingsToEnv } from "./validation.ts";

export const SUPERVISE_PORT = 8080;
export const SUPERVISE_MCP_PATH = "/mcp";
export const SUPERVISE_HEALTH_PATH = "/health";

const intFromEnv = (def: number) => z.coerce.number().int().positive().default(def);

export const SuperviseSettingsSchema = z.strictObject({
  /** host:port the MCP server listens on. */
  SUPERVISE_LISTEN: ListenSchema.default(`0.0.0.0:${SUPERVISE_PORT}`),
  /** Identity of the bottle this supervise serves (written into proposals and the audit log). */
  SUPERVISE_BOTTLE: z.string().min(1),
  /** Proposals and decisions (read-write mount). */
  SUPERVISE_STATE_DIR: z.string().default(CONTAINER_PATHS.superviseDir),
  /** The live egress config directory (read-only mount) holding the routes document. */
  SUPERVISE_EGRESS_CONFIG_DIR: z.string().default(CONTAINER_PATHS.egressConfigDir),
  /** The live pipelock config directory (read-only mount) holding pipelock's config and the live policy. */
  SUPERVISE_PIPELOCK_CONFIG_DIR: z.string().default(CONTAINER_PATHS.pipelockConfigDir),
  /** The hash-chained audit log (in the read-write audit mount). */
  SUPERVISE_AUDIT_LOG: z.string().default(`${CONTAINER_PATHS.auditDir}/${FILE_NAMES.superviseAudit}`),
  /** Keep-alive interval while a proposing call waits (progress notification + SSE comment). */
  SUPERVISE_KEEPALIVE_MS: intFromEnv(15_000),
  /** Fallback poll for decision files (fs.watch events do not cross every mount). */
  SUPERVISE_POLL_MS: intFromEnv(1_000),
  /** Refuse new proposals beyond this many pending ones (approval flooding). */
  SUPERVISE_MAX_PENDING: intFromEnv(1_000),
});

export type SuperviseSettings = z.output<typeof SuperviseSettingsSchema>;

export function superviseSettingsFromEnv(env: NodeJS.ProcessEnv): SuperviseSettings {
  return settingsFromEnv(SuperviseSettingsSchema, env, "supervise environment");
}

export function superviseSettingsToEnv(settings: z.input<typeof SuperviseSettingsSchema>): string[] {
  return settingsToEnv(SuperviseSettingsSchema, settings, "supervise settings");
}
