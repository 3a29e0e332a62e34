// Policies over the sidecar containers (egress, pipelock, git-gate, supervise). They hold the
// bottle's credentials and CA keys, so a sidecar that could escape to the host would undo the
// agent's isolation from the other side.
import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { capName, isTrue, items, known, roleOf, TYPES, who } from "./resources.ts";

export const SIDECAR_ROLES = ["egress", "pipelock", "git-gate", "supervise"] as const;

const skipUnlessSidecar = (args: ResourceValidationArgs): string => {
  const role = args.type === TYPES.container ? roleOf(args.props) : undefined;
  if (!role || !(SIDECAR_ROLES as readonly string[]).includes(role)) args.notApplicable("Policy only applies to bottle sidecar containers (label dev.claude-bottle.role).");
  return role!;
};

const DOCKER_SOCKETS = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock"];
const hostNamespace = (v: unknown): boolean => typeof v === "string" && (v === "host" || v.startsWith("container:"));

export const sidecarsHardened: ResourceValidationPolicy = {
  name: "sidecars-hardened",
  description: "Sidecar containers must not be privileged, must drop all capabilities and add none, set no-new-privileges, share no host namespace and mount no container-runtime socket.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: (args, report) => {
    const role = skipUnlessSidecar(args);
    const p = args.props;
    const where = `The ${role} container ${who(args.name)}`;
    if (isTrue(p.privileged)) report(`${where} must not be privileged.`);
    const drops = items(known(() => p.capabilities) ?? {}, "drops").map((c) => capName(String(c)));
    if (!drops.includes("ALL")) report(`${where} must drop all capabilities (capabilities.drops: ["ALL"]).`);
    const adds = items(known(() => p.capabilities) ?? {}, "adds").map((c) => capName(String(c)));
    if (adds.length) report(`${where} must not add capabilities (${adds.join(", ")}).`);
    const opts = items(p, "securityOpts").map(String);
    if (!opts.some((o) => /^no-new-privileges(:true)?$/.test(o))) report(`${where} must set securityOpts no-new-privileges:true.`);
    for (const field of ["networkMode", "pidMode", "ipcMode", "usernsMode"] as const) {
      if (hostNamespace(p[field])) report(`${where} must not share the host's namespace (${field}).`);
    }
    const sources = [
      ...items(p, "mounts").map((m) => known(() => m.source)),
      ...items(p, "volumes").map((v) => known(() => v.hostPath)),
    ].filter((s): s is string => typeof s === "string");
    for (const s of sources) if (DOCKER_SOCKETS.includes(s.replace(/\/+$/, ""))) report(`${where} must not mount the container runtime socket (${s}).`);
  },
};

export const sidecarContainerPolicies = [sidecarsHardened];
