// Finding bottles and proposals on this host: bottlesHome()/*/bottle.json.
import fs from "node:fs";
import path from "node:path";
import { bottlesHome, parseBottleRecord, stateLayout, type BottleRecord } from "../store/layout.ts";
import { listProposals, type ProposalEntry } from "../contracts/proposals.ts";

/** A mistake the operator can fix: printed without a stack trace. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

export interface FoundBottle {
  /** Directory name under the bottles home. */
  name: string;
  /** The state directory (where bottle.json was found). */
  stateDir: string;
  record: BottleRecord;
}

export interface FoundProposal extends ProposalEntry {
  bottle: FoundBottle;
}

export function findBottles(home = bottlesHome(), onBad?: (msg: string) => void): FoundBottle[] {
  let names: string[];
  try {
    names = fs.readdirSync(home).sort();
  } catch {
    return [];
  }
  const out: FoundBottle[] = [];
  for (const name of names) {
    const stateDir = path.join(home, name);
    const file = stateLayout(stateDir).record;
    if (!fs.existsSync(file)) continue;
    try {
      const record = parseBottleRecord(JSON.parse(fs.readFileSync(file, "utf8")), file);
      out.push({ name, stateDir, record });
    } catch (err) {
      onBad?.(`skipping ${file}: ${(err as Error).message}`);
    }
  }
  return out;
}

export function bottleLabel(b: FoundBottle): string {
  return b.record.bottle === b.record.identity ? b.record.bottle : `${b.record.bottle} (${b.record.identity})`;
}

export function findBottle(query: string, home = bottlesHome()): FoundBottle {
  const all = findBottles(home);
  const hits = all.filter((b) => b.name === query || b.record.identity === query || b.record.bottle === query);
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new UserError(`"${query}" matches several bottles: ${hits.map((b) => b.record.identity).join(", ")}; use the identity`);
  const known = all.map((b) => b.record.identity);
  throw new UserError(`no bottle "${query}" on this host (${home})` + (known.length ? `; known: ${known.join(", ")}` : "; no bottles found"));
}

export function allProposals(home = bottlesHome(), onBad?: (msg: string) => void): FoundProposal[] {
  return findBottles(home, onBad).flatMap((bottle) =>
    listProposals(stateLayout(bottle.stateDir).superviseDir, (file, err) => onBad?.(`skipping ${file}: ${err.message}`)).map((e) => ({ ...e, bottle })),
  );
}

/** Find a proposal by id (or a unique prefix of one) across every bottle on this host. */
export function findProposal(id: string, home = bottlesHome()): FoundProposal {
  const wanted = id.trim().toLowerCase();
  const all = allProposals(home);
  const exact = all.filter((p) => p.proposal.id === wanted);
  const hits = exact.length ? exact : wanted.length >= 3 ? all.filter((p) => p.proposal.id.startsWith(wanted) || p.proposal.id.startsWith("p-" + wanted)) : [];
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new UserError(`"${id}" matches several proposals: ${hits.map((h) => h.proposal.id).join(", ")}`);
  const pending = all.filter((p) => !p.decision).length;
  throw new UserError(`no proposal "${id}" on this host; \`bottle pending\` lists the ${pending} pending one${pending === 1 ? "" : "s"}`);
}
