// Labels every bottle resource carries. The policy pack identifies agents and bottle
// networks by them; the e2e harness and the CLI find containers by them. Never a secret here.
export const LABEL_ROLE = "dev.claude-bottle.role";
export const LABEL_BOTTLE = "dev.claude-bottle.identity";

/** Every container of a bottle; `state` is the one the bottle's state volumes are read and written through (components/state.ts). */
export const ROLES = ["agent", "egress", "pipelock", "git-gate", "supervise", "state"] as const;
export type Role = (typeof ROLES)[number];

/** internal: agent + its sidecars, no way out. link: egress ↔ pipelock only. outside: sidecars that must reach the internet. */
export const NETWORK_ROLES = ["internal", "link", "outside"] as const;
export type NetworkRole = (typeof NETWORK_ROLES)[number];

export function labels(identity: string, role: Role | NetworkRole): { label: string; value: string }[] {
  return [
    { label: LABEL_BOTTLE, value: identity },
    { label: LABEL_ROLE, value: role },
  ];
}
