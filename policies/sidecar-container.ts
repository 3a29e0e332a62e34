// Policies over the sidecar containers (egress, pipelock, git-gate, supervise, state). They hold the
// bottle's credentials and CA keys, so a sidecar that could escape to the host would undo the
// agent's isolation from the other side: the confinement checks are the agent's own
// (confinement.ts), and no capability may be added back.
import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { ROLES } from "../contracts/labels.ts";
import { runtimeSockets, securityOptProblems, sharedNamespaces } from "./confinement.ts";
import { capName, isTrue, items, known, roleOf, TYPES, who } from "./resources.ts";

export const SIDECAR_ROLES = ROLES.filter((r) => r !== "agent");

const skipUnlessSidecar = (args: ResourceValidationArgs): string => {
  const role = args.type === TYPES.container ? roleOf(args.props) : undefined;
  if (!role || !(SIDECAR_ROLES as readonly string[]).includes(role)) args.notApplicable("Policy only applies to bottle sidecar containers (label dev.claude-bottle.role).");
  return role!;
};

export const sidecarsHardened: ResourceValidationPolicy = {
  name: "sidecars-hardened",
  description: "Sidecar containers must not be privileged, must drop all capabilities and add none, set no-new-privileges, keep seccomp/AppArmor, share no host namespace and mount no container-runtime socket.",
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
    for (const problem of securityOptProblems(p)) report(`${where} ${problem}.`);
    for (const ns of sharedNamespaces(p)) report(`${where} must not share ${ns} with the host or another container.`);
    for (const s of runtimeSockets(p)) report(`${where} must not mount the container runtime socket (${s}).`);
  },
};

export const sidecarContainerPolicies = [sidecarsHardened];
