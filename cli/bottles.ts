// Finding a bottle or a proposal the operator named, among every bottle on this host
// (store/bottles.ts lists them); a miss is a UserError that says what does exist.
import { allProposals, findBottles, type FoundBottle, type FoundProposal } from "../store/bottles.ts";
import { bottlesHome } from "../store/layout.ts";

export type { FoundBottle, FoundProposal };

/** A mistake the operator can fix: printed without a stack trace. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

export function bottleLabel(b: FoundBottle): string {
  return b.record.bottle === b.record.identity ? b.record.bottle : `${b.record.bottle} (${b.record.identity})`;
}

export async function findBottle(query: string, home = bottlesHome()): Promise<FoundBottle> {
  const all = await findBottles(home);
  const hits = all.filter((b) => b.name === query || b.record.identity === query || b.record.bottle === query);
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new UserError(`"${query}" matches several bottles: ${hits.map((b) => b.record.identity).join(", ")}; use the identity`);
  const known = all.map((b) => b.record.identity);
  throw new UserError(`no bottle "${query}" on this host (${home})` + (known.length ? `; known: ${known.join(", ")}` : "; no bottles found"));
}

/** Find a proposal by id (or a unique prefix of one) across every bottle on this host. */
export async function findProposal(id: string, home = bottlesHome()): Promise<FoundProposal> {
  const wanted = id.trim().toLowerCase();
  const all = await allProposals(home);
  const exact = all.filter((p) => p.proposal.id === wanted);
  const hits = exact.length ? exact : wanted.length >= 3 ? all.filter((p) => p.proposal.id.startsWith(wanted) || p.proposal.id.startsWith("p-" + wanted)) : [];
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new UserError(`"${id}" matches several proposals: ${hits.map((h) => h.proposal.id).join(", ")}`);
  const pending = all.filter((p) => !p.decision).length;
  throw new UserError(`no proposal "${id}" on this host; \`bottle pending\` lists the ${pending} pending one${pending === 1 ? "" : "s"}`);
}
