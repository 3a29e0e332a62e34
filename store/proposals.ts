// Proposal and decision files in a bottle's supervise volume. The supervise server (in its
// container) writes proposals; the operator CLI (through the state container) writes
// decisions; both read both, with the schemas of contracts/proposals.ts.
//
//   proposals/<id>.json   one per proposal (identical pending proposals are merged)
//   decisions/<id>.json   one per decision, created once (a proposal is decided once)
//   approved.Dockerfile   the last approved capability Dockerfile (supervise shows it)
import crypto from "node:crypto";
import path from "node:path";
import { DecisionSchema, ProposalSchema, type Decision, type Proposal } from "../contracts/proposals.ts";
import { ConfigError, parseWith } from "../contracts/validation.ts";
import { localIo, type StateIo } from "./io.ts";

export function proposalPaths(dir: string) {
  return {
    proposalsDir: path.posix.join(dir, "proposals"),
    decisionsDir: path.posix.join(dir, "decisions"),
    proposalFile: (id: string) => path.posix.join(dir, "proposals", `${id}.json`),
    decisionFile: (id: string) => path.posix.join(dir, "decisions", `${id}.json`),
    approvedDockerfile: path.posix.join(dir, "approved.Dockerfile"),
    /** Held by the CLI while it applies a decision. */
    applyLock: path.posix.join(dir, ".apply.lock"),
    /** The decision id a file name in decisionsDir stands for, if it is one. */
    idOf: (name: string) => /^(p-[0-9a-f]+)\.json$/.exec(name)?.[1],
  };
}

export function newProposalId(): string {
  return "p-" + crypto.randomBytes(4).toString("hex");
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`not valid JSON: ${(err as Error).message}`]);
  }
}

const toText = (value: unknown) => JSON.stringify(value, null, 2) + "\n";

export async function readProposal(dir: string, id: string, io: StateIo = localIo): Promise<Proposal | undefined> {
  const file = proposalPaths(dir).proposalFile(id);
  const text = await io.read(file);
  return text === undefined ? undefined : parseWith(ProposalSchema, parseJson(text, file), file);
}

export async function readDecision(dir: string, id: string, io: StateIo = localIo): Promise<Decision | undefined> {
  const file = proposalPaths(dir).decisionFile(id);
  const text = await io.read(file);
  return text === undefined ? undefined : parseWith(DecisionSchema, parseJson(text, file), file);
}

export async function isDecided(dir: string, id: string, io: StateIo = localIo): Promise<boolean> {
  return (await io.stamp(proposalPaths(dir).decisionFile(id))) !== undefined;
}

export async function writeProposal(dir: string, proposal: Proposal, io: StateIo = localIo): Promise<void> {
  const checked = parseWith(ProposalSchema, proposal, "proposal");
  await io.write(proposalPaths(dir).proposalFile(checked.id), toText(checked));
}

/** Write a decision exactly once. Returns false when the proposal was already decided. */
export async function writeDecision(dir: string, decision: Decision, io: StateIo = localIo): Promise<boolean> {
  const checked = parseWith(DecisionSchema, decision, "decision");
  return io.create(proposalPaths(dir).decisionFile(checked.id), toText(checked));
}

export interface ProposalEntry {
  proposal: Proposal;
  decision?: Decision;
}

/** Every proposal in a supervise directory with its decision, oldest first; unreadable files are reported, not fatal. Two reads, whatever the count (each a `docker exec` through the state container). */
export async function listProposals(dir: string, io: StateIo = localIo, onBad?: (file: string, err: Error) => void): Promise<ProposalEntry[]> {
  const paths = proposalPaths(dir);
  const proposals = await io.readAll(paths.proposalsDir);
  const decisions = await io.readAll(paths.decisionsDir);
  const out: ProposalEntry[] = [];
  for (const [name, text] of Object.entries(proposals)) {
    const id = paths.idOf(name);
    if (!id) continue;
    const file = paths.proposalFile(id);
    try {
      const proposal = parseWith(ProposalSchema, parseJson(text, file), file);
      if (proposal.id !== id) throw new ConfigError(file, [`id "${proposal.id}" does not match the file name`]);
      const decided = decisions[name];
      const decision = decided === undefined ? undefined : parseWith(DecisionSchema, parseJson(decided, paths.decisionFile(id)), paths.decisionFile(id));
      out.push(decision ? { proposal, decision } : { proposal });
    } catch (err) {
      onBad?.(file, err as Error);
    }
  }
  return out.sort((a, b) => a.proposal.createdAt.localeCompare(b.proposal.createdAt) || a.proposal.id.localeCompare(b.proposal.id));
}
