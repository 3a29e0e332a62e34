// Where a bottle's state is. The live files, proposals, decisions, audit logs and the bottle's
// record live in its state volumes (contracts/state.ts), at the same paths in the state
// container and in each sidecar that mounts them (contracts/paths.ts CONTAINER_PATHS):
// stateLayout() lays them out. What `pulumi up` builds from stays on the machine that runs it
// (hostLayout(): the workspace snapshot, approved capability Dockerfiles).
import os from "node:os";
import path from "node:path";
import { CONTAINER_PATHS, FILE_NAMES } from "../contracts/paths.ts";

/** Root of every bottle's host directory on the machine that runs `pulumi up`: CLAUDE_BOTTLE_HOME, default ~/.claude-bottle. */
export function bottlesHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLAUDE_BOTTLE_HOME || path.join(os.homedir(), ".claude-bottle");
}

/** Caches that only save work (a lost one costs a redo): CLAUDE_BOTTLE_CACHE, default ~/.cache/claude-bottle. */
export function cacheHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLAUDE_BOTTLE_CACHE || path.join(os.homedir(), ".cache", "claude-bottle");
}

/** The live documents and the proposal store, wherever they are mounted. */
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

/** The same files as a container sees them, given where its mounts are (supervise: from its settings). */
export function mountedPaths(dirs: { egressConfigDir: string; pipelockConfigDir: string; superviseDir: string; auditFile: string }): LivePaths {
  return {
    routesFile: path.posix.join(dirs.egressConfigDir, FILE_NAMES.routes),
    policyFile: path.posix.join(dirs.pipelockConfigDir, FILE_NAMES.policy),
    pipelockFile: path.posix.join(dirs.pipelockConfigDir, FILE_NAMES.pipelock),
    superviseDir: dirs.superviseDir,
    auditFile: dirs.auditFile,
  };
}

/**
 * One bottle's state as its volumes hold it, under `root`: "/" in the state container (what
 * dockerIo reads and writes); a directory standing in for the volumes in tests.
 */
export function stateLayout(root = "/") {
  const at = (p: string) => path.posix.join(root, p);
  const dirs = {
    root,
    /** routes.yaml (volume `egress`). */
    egressConfigDir: at(CONTAINER_PATHS.egressConfigDir),
    /** pipelock.yaml and policy.yaml (volume `pipelock`). */
    pipelockConfigDir: at(CONTAINER_PATHS.pipelockConfigDir),
    /** Proposals and decisions (volume `supervise`). */
    superviseDir: at(CONTAINER_PATHS.superviseDir),
    /** JSON-lines audit logs, one file per writer (volume `audit`). */
    auditDir: at(CONTAINER_PATHS.auditDir),
    /** bottle.json (volume `record`). */
    recordDir: at(CONTAINER_PATHS.recordDir),
  };
  return {
    ...dirs,
    record: path.posix.join(dirs.recordDir, FILE_NAMES.record),
    egressAuditFile: path.posix.join(dirs.auditDir, FILE_NAMES.egressAudit),
    ...mountedPaths({ ...dirs, auditFile: path.posix.join(dirs.auditDir, FILE_NAMES.superviseAudit) }),
  };
}

export type StateLayout = ReturnType<typeof stateLayout>;

/**
 * What one bottle keeps on the machine that runs `pulumi up` (the stack config
 * `claude-bottle:stateDir`; default ~/.claude-bottle/<identity>): what the build reads from there.
 */
export function hostLayout(dir: string) {
  const capabilityDir = path.join(dir, "capability");
  return {
    root: dir,
    /** The agent's workspace snapshots (store/workspace.ts). */
    agentDir: path.join(dir, "agent"),
    /** Per-bottle agent Dockerfiles from approved capability changes. */
    capabilityDir,
    /** The capability Dockerfile `pulumi up` builds from (stack config claude-bottle:capabilityDockerfile). */
    capabilityDockerfile: path.join(capabilityDir, "Dockerfile"),
    /** What claude-bottle before the state volumes kept here; no longer read or written (README, "Upgrading"). */
    legacy: ["bottle.json", "egress", "pipelock", "supervise", "audit"].map((n) => path.join(dir, n)),
  };
}

export type HostLayout = ReturnType<typeof hostLayout>;
