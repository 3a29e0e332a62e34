// Where the bottle's live files are, by name, and where each container sees them. They live
// in the bottle's state volumes (contracts/state.ts says which volume holds which directory
// and who mounts it), mounted at the same paths in the state container and in the sidecars;
// store/layout.ts lays the files out under those paths.

/** File names, the same on the host and inside the containers. */
export const FILE_NAMES = {
  /** The egress routes document (contracts/routes.ts). */
  routes: "routes.yaml",
  /** pipelock's config, rendered from routes ∪ the live policy (contracts/pipelock.ts). */
  pipelock: "pipelock.yaml",
  /** The live policy document: what pipelock allows beyond the route hosts (contracts/policy.ts). */
  policy: "policy.yaml",
  egressAudit: "egress.jsonl",
  superviseAudit: "supervise.jsonl",
  /** The bottle's record: what the operator CLI needs to act on it (store/bottles.ts). */
  record: "bottle.json",
} as const;

/** Mount points inside the containers (the state container mounts every one, read-write). */
export const CONTAINER_PATHS = {
  /** routes.yaml; read-only in egress and supervise. */
  egressConfigDir: "/etc/claude-bottle/egress",
  /** pipelock.yaml and policy.yaml; read-only in pipelock and supervise. */
  pipelockConfigDir: "/etc/claude-bottle/pipelock",
  /** Proposals and decisions; read-write in supervise. */
  superviseDir: "/var/lib/claude-bottle/supervise",
  /** JSON-lines audit logs; read-write in egress and supervise. */
  auditDir: "/var/log/claude-bottle",
  /** bottle.json; in the state container only. */
  recordDir: "/var/lib/claude-bottle/bottle",
} as const;

/** The system trust bundle of every Debian-based image (the agent's entrypoint rebuilds it). */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
