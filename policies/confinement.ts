// The container checks the agent and the sidecars share: the sidecars hold the bottle's
// tokens and CA keys, so a sidecar that could escape to the host undoes the agent's
// isolation from the other side. One definition, so the two policies cannot drift.
import { items, known } from "./resources.ts";

type Props = Record<string, any>;

/** A container runtime's API socket, by file name: whoever holds one controls every container. */
const RUNTIME_SOCKET_RE = /(?:^|\/)(?:docker|containerd|podman|crio|buildkitd)\.sock$/;

export function isRuntimeSocket(p: string): boolean {
  return RUNTIME_SOCKET_RE.test(p.replace(/\/+$/, ""));
}

/** Every runtime socket a container would have: bind sources and mount targets alike. */
export function runtimeSockets(p: Props): string[] {
  const paths = [
    ...items(p, "volumes").flatMap((v) => [known(() => v.hostPath), known(() => v.containerPath)]),
    ...items(p, "mounts").flatMap((m) => [known(() => m.type) === "bind" ? known(() => m.source) : undefined, known(() => m.target)]),
  ];
  return [...new Set(paths.filter((s): s is string => typeof s === "string" && s !== "" && isRuntimeSocket(s)))];
}

const NAMESPACES = [
  ["networkMode", "network"],
  ["pidMode", "PID"],
  ["ipcMode", "IPC"],
  ["usernsMode", "user"],
  ["cgroupnsMode", "cgroup"],
] as const;

/** "the <label> namespace (<field>)" for each namespace shared with the host or another container. */
export function sharedNamespaces(p: Props): string[] {
  return NAMESPACES.flatMap(([field, label]) => {
    const v = p[field];
    return typeof v === "string" && (v === "host" || v.startsWith("container:")) ? [`the ${label} namespace (${field})`] : [];
  });
}

const NO_NEW_PRIVS_RE = /^no-new-privileges(?:(?::|=)true)?$/i;
const UNCONFINED_RE = /^(?:seccomp|apparmor|systempaths)[:=]unconfined$|^label[:=]disable$/i;

/** What is wrong with a container's securityOpts: no no-new-privileges, or confinement switched off. */
export function securityOptProblems(p: Props): string[] {
  const opts = items(p, "securityOpts").map((o) => String(o).trim());
  const out: string[] = [];
  if (!opts.some((o) => NO_NEW_PRIVS_RE.test(o))) out.push('must set securityOpts "no-new-privileges:true"');
  for (const o of opts) if (UNCONFINED_RE.test(o)) out.push(`must not weaken its confinement (securityOpts ${o.split(/[:=]/)[0]})`);
  return out;
}
