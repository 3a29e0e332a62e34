// Where things live: the per-bottle state directory on the host and the mount points
// inside the containers. Components mount these, sidecars read them, the operator CLI
// finds bottles through them. One module so the three never disagree.
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { parseWith } from "../contracts/validation.ts";

/** Root of every bottle's state on this host. */
export function bottlesHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLAUDE_BOTTLE_HOME || path.join(os.homedir(), ".claude-bottle");
}

/** Host-side layout of one bottle's state directory. */
export function stateLayout(stateDir: string) {
  return {
    root: stateDir,
    /** bottle.json: the record the CLI uses to find this bottle. */
    record: path.join(stateDir, "bottle.json"),
    /** Live egress routes (routes.yaml); mounted read-only into egress and supervise. */
    egressConfigDir: path.join(stateDir, "egress"),
    egressRoutesFile: path.join(stateDir, "egress", "routes.yaml"),
    /** Live pipelock config (pipelock.yaml); mounted read-only into pipelock and supervise. */
    pipelockConfigDir: path.join(stateDir, "pipelock"),
    pipelockConfigFile: path.join(stateDir, "pipelock", "pipelock.yaml"),
    /** Proposals and decisions; mounted read-write into supervise. */
    superviseDir: path.join(stateDir, "supervise"),
    /** Per-bottle agent Dockerfile from an approved capability change. */
    capabilityDir: path.join(stateDir, "capability"),
    /** JSON-lines audit logs, one file per writer; mounted read-write into the sidecars. */
    auditDir: path.join(stateDir, "audit"),
  };
}

export type StateLayout = ReturnType<typeof stateLayout>;

/** Mount points inside the containers. */
export const CONTAINER_PATHS = {
  egressConfigDir: "/etc/claude-bottle/egress",
  pipelockConfigDir: "/etc/claude-bottle/pipelock",
  superviseDir: "/var/lib/claude-bottle/supervise",
  auditDir: "/var/log/claude-bottle",
} as const;

/** The record a Bottle writes at `pulumi up`; the operator CLI reads it. */
export const BottleRecordSchema = z.strictObject({
  version: z.literal(1),
  identity: z.string(),
  bottle: z.string(),
  agent: z.string(),
  stack: z.string(),
  project: z.string(),
  /** Directory of the Pulumi project, so approvals can persist into Pulumi.<stack>.yaml. */
  projectDir: z.string(),
  stateDir: z.string(),
  containers: z.record(z.string(), z.string()),
});

export type BottleRecord = z.output<typeof BottleRecordSchema>;

export function parseBottleRecord(data: unknown, where: string): BottleRecord {
  return parseWith(BottleRecordSchema, data, where);
}
