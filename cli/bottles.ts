// Finding a bottle or a proposal the operator named, among every bottle the operator's Docker
// engines hold (store/bottles.ts finds them); a miss is a UserError that says what does exist.
import { allProposals, dockerBottles, type BottleSource, type FoundBottle, type FoundProposal } from "../store/bottles.ts";

export type { BottleSource, FoundBottle, FoundProposal };

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

/** The bottles on every engine the operator's docker contexts and DOCKER_HOST reach, unless the caller says where. */
export function bottleSource(source?: BottleSource, bin?: string): BottleSource {
  return source ?? dockerBottles(bin ? { bin } : {});
}

/** `<identity>` or `<identity>@<host>` (the host's context name, when two hosts run bottles of one identity). */
export async function findBottle(query: string, source: BottleSource): Promise<FoundBottle> {
  const all = await source.bottles();
  const [name, host] = query.includes("@") ? [query.slice(0, query.lastIndexOf("@")), query.slice(query.lastIndexOf("@") + 1)] : [query, undefined];
  const hits = all.filter((b) => (b.record.identity === name || b.record.bottle === name) && (host === undefined || b.host.label === host));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new UserError(`"${query}" matches several bottles: ${hits.map((b) => `${b.record.identity}@${b.host.label}`).join(", ")}; name one as <identity>@<host>`);
  const known = all.map((b) => `${b.record.identity}@${b.host.label}`);
  throw new UserError(`no bottle "${query}" on ${source.where}` + (known.length ? `; known: ${known.join(", ")}` : "; no bottles found"));
}

/** Find a proposal by id (or a unique prefix of one) across every bottle. */
export async function findProposal(id: string, source: BottleSource): Promise<FoundProposal> {
  const wanted = id.trim().toLowerCase();
  const all = await allProposals(source);
  const exact = all.filter((p) => p.proposal.id === wanted);
  const hits = exact.length ? exact : wanted.length >= 3 ? all.filter((p) => p.proposal.id.startsWith(wanted) || p.proposal.id.startsWith("p-" + wanted)) : [];
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new UserError(`"${id}" matches several proposals: ${hits.map((h) => `${h.proposal.id} (${h.bottle.record.identity}@${h.bottle.host.label})`).join(", ")}`);
  const pending = all.filter((p) => !p.decision).length;
  throw new UserError(`no proposal "${id}" on ${source.where}; \`bottle pending\` lists the ${pending} pending one${pending === 1 ? "" : "s"}`);
}
