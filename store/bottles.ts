// bottle.json, the record a Bottle writes at `pulumi up` into its state directory, and
// finding every bottle under the bottles home through those records.
import path from "node:path";
import { z } from "zod";
import { parseWith } from "../contracts/validation.ts";
import { localIo, type StateIo } from "./io.ts";
import { listProposals, type ProposalEntry } from "./proposals.ts";
import { stateLayout, type StateLayout } from "./layout.ts";

export const BottleRecordSchema = z.strictObject({
  version: z.literal(1),
  identity: z.string(),
  bottle: z.string(),
  agent: z.string(),
  stack: z.string(),
  project: z.string(),
  /** Directory of the Pulumi project, so approvals can persist into Pulumi.<stack>.yaml. */
  projectDir: z.string(),
  stateDir: z.string(),
  containers: z.record(z.string(), z.string()),
});

export type BottleRecord = z.output<typeof BottleRecordSchema>;

export function renderBottleRecord(record: BottleRecord): string {
  return JSON.stringify(parseWith(BottleRecordSchema, record, "bottle record"), null, 2) + "\n";
}

export interface FoundBottle {
  /** Directory name under the bottles home. */
  name: string;
  /** The state directory (where bottle.json was found). */
  stateDir: string;
  layout: StateLayout;
  record: BottleRecord;
}

/** Every bottle with a readable record under `home`; unreadable records are reported, not fatal. */
export async function findBottles(home: string, io: StateIo = localIo, onBad?: (msg: string) => void): Promise<FoundBottle[]> {
  const out: FoundBottle[] = [];
  for (const name of (await io.list(home)).sort()) {
    const stateDir = path.join(home, name);
    const layout = stateLayout(stateDir);
    const text = await io.read(layout.record).catch(() => undefined);
    if (text === undefined) continue;
    try {
      out.push({ name, stateDir, layout, record: parseWith(BottleRecordSchema, JSON.parse(text), layout.record) });
    } catch (err) {
      onBad?.(`skipping ${layout.record}: ${(err as Error).message}`);
    }
  }
  return out;
}

export interface FoundProposal extends ProposalEntry {
  bottle: FoundBottle;
}

/** Every proposal of every bottle under `home`, with its decision if it has one. */
export async function allProposals(home: string, io: StateIo = localIo, onBad?: (msg: string) => void): Promise<FoundProposal[]> {
  const out: FoundProposal[] = [];
  for (const bottle of await findBottles(home, io, onBad)) {
    for (const e of await listProposals(bottle.layout.superviseDir, io, (file, err) => onBad?.(`skipping ${file}: ${err.message}`))) out.push({ ...e, bottle });
  }
  return out;
}
