// Where a bottle's state lives on the host: one directory per bottle under the bottles home.
// Components create it and write the live files, sidecars see parts of it through mounts
// (contracts/paths.ts CONTAINER_PATHS), the operator CLI finds bottles through it.
import os from "node:os";
import path from "node:path";
import { FILE_NAMES } from "../contracts/paths.ts";

/** Root of every bottle's state on this host. */
export function bottlesHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLAUDE_BOTTLE_HOME || path.join(os.homedir(), ".claude-bottle");
}

/** Caches that only save work (a lost one costs a redo): CLAUDE_BOTTLE_CACHE, default ~/.cache/claude-bottle. */
export function cacheHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLAUDE_BOTTLE_CACHE || path.join(os.homedir(), ".cache", "claude-bottle");
}

/** The live documents and the proposal store, wherever they are mounted (host or supervise container). */
export interface LivePaths {
  routesFile: string;
  /** The live policy document (the extra pipelock allowlist). */
  policyFile: string;
  pipelockFile: string;
  /** Proposals and decisions (store/proposals.ts). */
  superviseDir: string;
  /** The hash-chained audit log of proposals and decisions. */
  auditFile: string;
}

/** The same files as the supervise container sees them. */
export function mountedPaths(dirs: { egressConfigDir: string; pipelockConfigDir: string; superviseDir: string; auditFile: string }): LivePaths {
  return {
    routesFile: path.posix.join(dirs.egressConfigDir, FILE_NAMES.routes),
    policyFile: path.posix.join(dirs.pipelockConfigDir, FILE_NAMES.policy),
    pipelockFile: path.posix.join(dirs.pipelockConfigDir, FILE_NAMES.pipelock),
    superviseDir: dirs.superviseDir,
    auditFile: dirs.auditFile,
  };
}

/** Host-side layout of one bottle's state directory. */
export function stateLayout(stateDir: string) {
  const dirs = {
    root: stateDir,
    /** bottle.json: the record the CLI uses to find this bottle. */
    record: path.join(stateDir, "bottle.json"),
    /** routes.yaml; mounted read-only into egress and supervise. */
    egressConfigDir: path.join(stateDir, "egress"),
    /** pipelock.yaml and policy.yaml; mounted read-only into pipelock and supervise. */
    pipelockConfigDir: path.join(stateDir, "pipelock"),
    /** Proposals and decisions; mounted read-write into supervise. */
    superviseDir: path.join(stateDir, "supervise"),
    /** Per-bottle agent Dockerfiles from approved capability changes. */
    capabilityDir: path.join(stateDir, "capability"),
    /** JSON-lines audit logs, one file per writer; mounted read-write into the sidecars. */
    auditDir: path.join(stateDir, "audit"),
    /** The agent's workspace snapshots (store/workspace.ts). */
    agentDir: path.join(stateDir, "agent"),
  };
  return {
    ...dirs,
    ...mountedPaths({ ...dirs, auditFile: path.join(dirs.auditDir, FILE_NAMES.superviseAudit) }),
    /** The capability Dockerfile `pulumi up` builds from (stack config claude-bottle:capabilityDockerfile). */
    capabilityDockerfile: path.join(dirs.capabilityDir, "Dockerfile"),
    /** Directories that must exist before a container bind-mounts them. */
    mountDirs: [dirs.egressConfigDir, dirs.pipelockConfigDir, dirs.superviseDir, dirs.auditDir, dirs.capabilityDir],
  };
}

export type StateLayout = ReturnType<typeof stateLayout>;
