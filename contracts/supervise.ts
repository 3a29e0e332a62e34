// The supervise sidecar's static settings, passed as container env. The Supervise
// component renders them with superviseSettingsToEnv(); the sidecar parses them with
// superviseSettingsFromEnv(). Nothing is parsed two ways.
import path from "node:path";
import { z } from "zod";
import { CONTAINER_PATHS } from "../store/layout.ts";
import { parseWith, settingsToEnv } from "./validation.ts";
import { AUDIT_FILE_NAME } from "../store/audit.ts";

export const SUPERVISE_PORT = 8080;
export const SUPERVISE_MCP_PATH = "/mcp";
export const SUPERVISE_HEALTH_PATH = "/health";
export const SUPERVISE_ROUTES_FILE_NAME = "routes.yaml";
export const SUPERVISE_PIPELOCK_FILE_NAME = "pipelock.yaml";

const intFromEnv = (def: number) => z.coerce.number().int().positive().default(def);

export const SuperviseSettingsSchema = z.strictObject({
  /** host:port the MCP server listens on. */
  SUPERVISE_LISTEN: z.string().regex(/^[^:]+:\d+$/, { message: 'expected "host:port"' }).default(`0.0.0.0:${SUPERVISE_PORT}`),
  /** Identity of the bottle this supervise serves (written into proposals and the audit log). */
  SUPERVISE_BOTTLE: z.string().min(1),
  /** Proposals and decisions (read-write mount). */
  SUPERVISE_STATE_DIR: z.string().default(CONTAINER_PATHS.superviseDir),
  /** The live egress config directory (read-only mount) holding routes.yaml. */
  SUPERVISE_EGRESS_CONFIG_DIR: z.string().default(CONTAINER_PATHS.egressConfigDir),
  /** The live pipelock config directory (read-only mount) holding pipelock.yaml. */
  SUPERVISE_PIPELOCK_CONFIG_DIR: z.string().default(CONTAINER_PATHS.pipelockConfigDir),
  /** The hash-chained audit log (in the read-write audit mount). */
  SUPERVISE_AUDIT_LOG: z.string().default(path.posix.join(CONTAINER_PATHS.auditDir, AUDIT_FILE_NAME)),
  /** Keep-alive interval while a proposing call waits (progress notification + SSE comment). */
  SUPERVISE_KEEPALIVE_MS: intFromEnv(15_000),
  /** Fallback poll for decision files (fs.watch events do not cross every mount). */
  SUPERVISE_POLL_MS: intFromEnv(1_000),
  /** Refuse new proposals beyond this many pending ones (approval flooding). */
  SUPERVISE_MAX_PENDING: intFromEnv(1_000),
});

export type SuperviseSettings = z.output<typeof SuperviseSettingsSchema>;

export function superviseSettingsFromEnv(env: NodeJS.ProcessEnv): SuperviseSettings {
  const picked = Object.fromEntries(Object.keys(SuperviseSettingsSchema.shape).flatMap((k) => (env[k] !== undefined ? [[k, env[k]]] : [])));
  return parseWith(SuperviseSettingsSchema, picked, "supervise environment");
}

export function superviseSettingsToEnv(settings: z.input<typeof SuperviseSettingsSchema>): string[] {
  return settingsToEnv(SuperviseSettingsSchema, settings, "supervise settings");
}

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) };
}
