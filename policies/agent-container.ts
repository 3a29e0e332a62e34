// Policies over the agent container (docker:index/container:Container labelled role=agent): what the
// agent can touch on the host and which networks it sits on. The network membership itself (are those
// networks internal?) needs the network resources too: see networks.ts `agent-networks-internal`.
import os from "node:os";
import path from "node:path";
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { isRuntimeSocket, runtimeSockets, securityOptProblems, sharedNamespaces } from "./confinement.ts";
import { capName, skipUnlessAgent, isTrue, items, known, peek, UNKNOWN, who } from "./resources.ts";

/** OCI runtimes that confine at least as well as runc (gVisor and Kata confine better). Others (e.g. GPU runtimes) are refused. */
export const AGENT_RUNTIMES = ["runc", "crun", "youki", "runsc", "kata", "kata-runtime", "kata-qemu", "kata-fc", "sysbox-runc"];

export const agentNotPrivileged: ResourceValidationPolicy = {
  name: "agent-not-privileged",
  description: "The agent container must not be privileged, get host devices or GPUs, or run under an OCI runtime that confines less than runc.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    const p = args.props;
    if (isTrue(p.privileged)) report(`The agent container ${who(args.name)} must not be privileged.`);
    if (items(p, "devices").length) report(`The agent container ${who(args.name)} must not be given host devices.`);
    if (items(p, "deviceRequests").length || (p.gpus !== undefined && p.gpus !== "")) report(`The agent container ${who(args.name)} must not request GPUs or other host devices.`);
    const runtime = p.runtime;
    if (typeof runtime === "string" && runtime !== "" && !AGENT_RUNTIMES.includes(runtime)) report(`The agent container ${who(args.name)} must use a confining OCI runtime (${AGENT_RUNTIMES.join(", ")}), not "${runtime}".`);
    if (items(p, "groupAdds").some((g) => ["docker", "root", "0"].includes(String(g)))) report(`The agent container ${who(args.name)} must not join the docker or root group.`);
  },
};

export const agentNoHostNamespaces: ResourceValidationPolicy = {
  name: "agent-no-host-namespaces",
  description: "The agent container must not share the host's (or another container's) network, PID, IPC, user or cgroup namespace.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    for (const ns of sharedNamespaces(args.props)) report(`The agent container ${who(args.name)} must not share ${ns} with the host or another container.`);
  },
};

export const agentInternalNetworksOnly: ResourceValidationPolicy = {
  name: "agent-internal-networks-only",
  description: "The agent container must be attached only through networksAdvanced (the bottle's internal network), publish no ports and map no name to the Docker host.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    const p = args.props;
    // Names may be unknown at preview; only the list itself is read here. networks.ts checks the names.
    const nets = peek(() => p.networksAdvanced);
    if (nets !== UNKNOWN && (!Array.isArray(nets) || nets.length === 0)) {
      report(`The agent container ${who(args.name)} must be attached to the bottle's internal network through networksAdvanced (without it, it lands on the default bridge, which reaches the internet and the host).`);
    }
    const mode = p.networkMode;
    if (mode !== undefined && mode !== "" && mode !== "bridge" && mode !== "default") {
      report(`The agent container ${who(args.name)} must not set networkMode; attach it through networksAdvanced only.`);
    }
    if (items(p, "ports").length || isTrue(p.publishAllPorts)) report(`The agent container ${who(args.name)} must not publish ports.`);
    for (const h of items(p, "hosts")) {
      if (known(() => h.ip) === "host-gateway") report(`The agent container ${who(args.name)} must not map a host name to the Docker host (host-gateway).`);
    }
  },
};

/** Host paths the agent must never see: the host root and system trees, container runtimes' sockets and state. */
const FORBIDDEN_HOST_ROOTS = ["/", "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run", "/var/run", "/var/lib/docker", "/var/lib/containerd", "/usr", "/bin", "/sbin", "/lib", "/lib64"];
/** Where the operator's own credentials live, relative to $HOME. */
const FORBIDDEN_HOME_ENTRIES = [".ssh", ".aws", ".azure", ".docker", ".kube", ".gnupg", ".pulumi", ".config", ".claude", ".claude.json", ".netrc", ".git-credentials", ".npmrc"];

const within = (p: string, root: string): boolean => (root === "/" ? p === "/" : p === root || p.startsWith(root + "/"));

/** Why a host path must not be mounted into the agent, or undefined if it may be. */
export function forbiddenHostPath(hostPath: string, home: string = os.homedir()): string | undefined {
  const p = path.posix.normalize(hostPath).replace(/(.)\/+$/, "$1");
  if (isRuntimeSocket(p)) return "a container runtime socket";
  if (p === "/") return "the host root";
  const h = path.posix.normalize(home).replace(/(.)\/+$/, "$1");
  if (h !== "/" && within(p, h)) {
    // Inside the operator's home (which may itself be /root): a bottle's host directory is fine,
    // the home itself and its credential stores are not.
    if (p === h) return "the operator's whole home directory";
    for (const entry of FORBIDDEN_HOME_ENTRIES) if (within(p, `${h}/${entry}`)) return `the operator's credentials (~/${entry})`;
    return undefined;
  }
  for (const root of FORBIDDEN_HOST_ROOTS) if (root !== "/" && within(p, root)) return `a host system directory (${root})`;
  return undefined;
}

export const agentNoHostMounts: ResourceValidationPolicy = {
  name: "agent-no-host-mounts",
  description: "The agent container must not mount the Docker socket, the host root or system directories, the operator's credential directories, or another container's volumes.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    const p = args.props;
    const sources = [
      ...items(p, "volumes").map((v) => known(() => v.hostPath)),
      ...items(p, "mounts").map((m) => (known(() => m.type) === "bind" ? known(() => m.source) : undefined)),
    ];
    for (const source of sources) {
      const why = typeof source === "string" && source && !isRuntimeSocket(source) ? forbiddenHostPath(source) : undefined;
      if (why) report(`The agent container ${who(args.name)} must not mount ${why}.`);
    }
    if (items(p, "volumes").some((v) => known(() => v.fromContainer))) report(`The agent container ${who(args.name)} must not take volumes from another container.`);
    for (const s of runtimeSockets(p)) report(`The agent container ${who(args.name)} must not have a container runtime socket (${s}).`);
  },
};

/** Capabilities the agent may add back after dropping ALL (entrypoint chown/setuid to the unprivileged user). */
export const DEFAULT_ALLOWED_AGENT_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"];
/** Never allowed, whatever the configuration says: these reach the kernel, the host or other containers' traffic. */
export const FORBIDDEN_AGENT_CAPABILITIES = ["ALL", "SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "SYS_BOOT", "SYS_TIME", "DAC_READ_SEARCH", "BPF", "PERFMON", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "LINUX_IMMUTABLE", "SYSLOG", "AUDIT_CONTROL"];

export const agentCapabilitiesDropped: ResourceValidationPolicy = {
  name: "agent-capabilities-dropped",
  description: "The agent container must drop ALL capabilities and add back only an allow-listed few.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: {
    properties: {
      allowedCapabilities: { type: "array", items: { type: "string" }, default: DEFAULT_ALLOWED_AGENT_CAPABILITIES },
    },
  },
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    const caps = args.props.capabilities ?? {};
    const drops = items(caps, "drops").map((c) => capName(String(c)));
    if (!drops.includes("ALL")) report(`The agent container ${who(args.name)} must drop ALL capabilities (capabilities.drops: ["ALL"]).`);
    const config = known(() => args.getConfig<{ allowedCapabilities?: string[] }>()) ?? {};
    const allowed = new Set((config.allowedCapabilities ?? DEFAULT_ALLOWED_AGENT_CAPABILITIES).map(capName));
    for (const raw of items(caps, "adds")) {
      const c = capName(String(raw));
      if (FORBIDDEN_AGENT_CAPABILITIES.includes(c) || !allowed.has(c)) report(`The agent container ${who(args.name)} must not add capability ${c}.`);
    }
  },
};

export const agentNoNewPrivileges: ResourceValidationPolicy = {
  name: "agent-no-new-privileges",
  description: "The agent container must set no-new-privileges and must not switch off seccomp, AppArmor, SELinux labels or masked system paths.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    for (const problem of securityOptProblems(args.props)) report(`The agent container ${who(args.name)} ${problem}.`);
  },
};

export const agentContainerPolicies = [agentNotPrivileged, agentNoHostNamespaces, agentInternalNetworksOnly, agentNoHostMounts, agentCapabilitiesDropped, agentNoNewPrivileges];
