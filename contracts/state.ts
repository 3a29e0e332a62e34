// The bottle's state volumes: one per directory the layout separates, each mounted only into
// the containers that need it, read-only wherever the container does not write it. supervise
// parses the agent's input, so it reads the routes and pipelock's config but can never write
// them. The state container mounts every volume read-write: every writer and reader outside
// the sidecars goes through it (store/docker.ts), on whichever Docker engine the bottle runs.
import { CONTAINER_PATHS } from "./paths.ts";
import type { Role } from "./labels.ts";

export const STATE_VOLUMES = {
  /** routes.yaml */
  egress: { path: CONTAINER_PATHS.egressConfigDir, mountedBy: { egress: "ro", supervise: "ro" } },
  /** pipelock.yaml, policy.yaml */
  pipelock: { path: CONTAINER_PATHS.pipelockConfigDir, mountedBy: { pipelock: "ro", supervise: "ro" } },
  /** proposals, decisions, the last approved capability Dockerfile */
  supervise: { path: CONTAINER_PATHS.superviseDir, mountedBy: { supervise: "rw" } },
  /** egress.jsonl, supervise.jsonl */
  audit: { path: CONTAINER_PATHS.auditDir, mountedBy: { egress: "rw", supervise: "rw" } },
  /** bottle.json */
  record: { path: CONTAINER_PATHS.recordDir, mountedBy: {} },
} as const satisfies Record<string, { path: string; mountedBy: Partial<Record<Role, "ro" | "rw">> }>;

export type StateVolume = keyof typeof STATE_VOLUMES;
export const STATE_VOLUME_NAMES = Object.keys(STATE_VOLUMES) as StateVolume[];

/** The state volumes `role` mounts, and how. */
export function stateMountsOf(role: Role): { volume: StateVolume; path: string; readOnly: boolean }[] {
  return STATE_VOLUME_NAMES.flatMap((volume) => {
    const how = (STATE_VOLUMES[volume].mountedBy as Partial<Record<Role, "ro" | "rw">>)[role];
    return how ? [{ volume, path: STATE_VOLUMES[volume].path, readOnly: how === "ro" }] : [];
  });
}

/** The state container's command: it only holds the volumes; every operation is a `docker exec`. */
export const STATE_COMMAND = ["sleep", "infinity"];
