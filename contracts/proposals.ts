// The supervise contract: what a proposal and a decision look like on disk. The
// supervise server (in its container) writes proposals; the operator CLI (on the host)
// writes decisions. Both read both with these schemas — nothing is parsed two ways.
//
// Layout of a bottle's supervise directory (host: stateLayout(stateDir).superviseDir,
// container: CONTAINER_PATHS.superviseDir):
//   proposals/<id>.json   one per proposal (identical pending proposals are merged)
//   decisions/<id>.json   one per decision, created exclusively (a proposal is decided once)
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { RoutesDocumentSchema, type RoutesDocument } from "./egress.ts";
import { writeFileAtomic } from "../store/io.ts";
import { ConfigError, hostName, parseWith } from "./validation.ts";

export const PROPOSAL_KINDS = ["egress_routes", "pipelock_allowlist", "capability"] as const;
export type ProposalKind = (typeof PROPOSAL_KINDS)[number];

/** Tool names the agent sees. PROPOSE_ROUTES_TOOL in egress/config.ts is the same string. */
export const TOOL_NAMES = {
  egress_routes: "propose_egress_routes",
  pipelock_allowlist: "propose_pipelock_allowlist",
  capability: "propose_capability",
  current: "get_current_config",
  await: "await_decision",
} as const;

export const MAX_DOCKERFILE_BYTES = 64 * 1024;
export const MAX_JUSTIFICATION_CHARS = 4000;
/** Merged requests kept per proposal (the count keeps growing; only the newest are stored). */
export const MAX_REQUESTS_KEPT = 50;

export const ProposalIdSchema = z.string().regex(/^p-[0-9a-f]{8,32}$/, { message: 'expected a proposal id like "p-1a2b3c4d"' });

export const JustificationSchema = z
  .string()
  .trim()
  .min(1, { message: "a justification is required: say why the change is needed" })
  .max(MAX_JUSTIFICATION_CHARS, { message: `keep the justification under ${MAX_JUSTIFICATION_CHARS} characters` });

/** The extra pipelock allowlist: hosts pipelock lets through beyond the egress route hosts. */
export const AllowlistSchema = z
  .array(hostName(true))
  .max(500, { message: "at most 500 hosts" })
  .transform((hosts) => [...new Set(hosts)].sort());

export const DockerfileSchema = z
  .string()
  .refine((s) => Buffer.byteLength(s) <= MAX_DOCKERFILE_BYTES, { message: `the Dockerfile must be under ${MAX_DOCKERFILE_BYTES} bytes` })
  .refine((s) => !s.includes("\0"), { message: "the Dockerfile contains a NUL byte" })
  .superRefine((s, ctx) => {
    const instructions = logicalLines(s).filter((l) => !/^\s*(#|$)/.test(l));
    const first = instructions.find((l) => !/^\s*ARG\s/i.test(l));
    if (!first || !/^\s*FROM\s+\S/i.test(first)) {
      ctx.addIssue({ code: "custom", message: "expected a Dockerfile whose first instruction (after ARG lines and comments) is FROM <image>" });
    }
  });

function logicalLines(text: string): string[] {
  return text.replace(/\\\r?\n/g, " ").split(/\r?\n/);
}

const IsoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: "expected an ISO date" });

export const ProposalChangeSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("egress_routes"),
    /** The full new routes document the agent asks for. */
    routes: RoutesDocumentSchema,
    /** The live routes document when the proposal was made (approval applies base → routes onto the live one). */
    base: RoutesDocumentSchema,
  }),
  z.strictObject({
    kind: z.literal("pipelock_allowlist"),
    /** The full new extra allowlist. */
    allowlist: AllowlistSchema,
    base: AllowlistSchema,
  }),
  z.strictObject({
    kind: z.literal("capability"),
    /** The full new agent Dockerfile. */
    dockerfile: DockerfileSchema,
    /** The last approved Dockerfile, if any. */
    base: z.string().nullable(),
  }),
]);

export type ProposalChange = z.output<typeof ProposalChangeSchema>;

export const ProposalRequestSchema = z.strictObject({ at: IsoDate, justification: z.string() });

export const ProposalSchema = z.strictObject({
  version: z.literal(1),
  id: ProposalIdSchema,
  /** Identity of the bottle (informational: the CLI trusts the directory it found the file in). */
  bottle: z.string(),
  /** Dedupe key: kind + hash of the normalized change. Identical pending proposals share it. */
  key: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: IsoDate,
  /** How many times the agent asked for exactly this (merged duplicates included). */
  count: z.number().int().positive(),
  /** The newest requests (justification of each), oldest first. */
  requests: z.array(ProposalRequestSchema).min(1),
  change: ProposalChangeSchema,
});

export type Proposal = z.output<typeof ProposalSchema>;

export const AppliedSchema = z.strictObject({
  /** Human-readable lines: what changed. */
  summary: z.array(z.string()),
  /** Live files written (host paths). */
  files: z.array(z.string()),
  /** Where the change was persisted so the next `pulumi up` keeps it. */
  persisted: z.strictObject({ how: z.enum(["automation-api", "stack-file", "failed"]), detail: z.string() }),
  /** Reload signals sent (best effort). */
  reload: z.array(z.string()),
  /** For a capability change: the command that rebuilds the agent and resumes it. */
  command: z.string().optional(),
});

export const DecisionSchema = z.strictObject({
  version: z.literal(1),
  id: ProposalIdSchema,
  decision: z.enum(["approved", "rejected"]),
  at: IsoDate,
  /** The operator (host user name). */
  by: z.string(),
  reason: z.string().optional(),
  applied: AppliedSchema.optional(),
});

export type Decision = z.output<typeof DecisionSchema>;

export function superviseLayout(dir: string) {
  return {
    root: dir,
    proposalsDir: path.join(dir, "proposals"),
    decisionsDir: path.join(dir, "decisions"),
    proposalFile: (id: string) => path.join(dir, "proposals", `${id}.json`),
    decisionFile: (id: string) => path.join(dir, "decisions", `${id}.json`),
    /** The last approved capability Dockerfile (written by the CLI on approval; read by the current-config view). */
    approvedDockerfile: path.join(dir, "approved.Dockerfile"),
    /** Held (mkdir) by the CLI while it applies a decision. */
    applyLock: path.join(dir, ".apply.lock"),
  };
}

export function newProposalId(): string {
  return "p-" + crypto.randomBytes(4).toString("hex");
}

/** Canonical JSON: sorted keys, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (value && typeof value === "object") {
    return "{" + Object.keys(value).sort().filter((k) => (value as any)[k] !== undefined).map((k) => JSON.stringify(k) + ":" + canonicalJson((value as any)[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

export function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** What makes two proposals "identical": kind + the requested end state (not the justification). */
export function proposalKey(change: ProposalChange): string {
  const wanted = change.kind === "egress_routes" ? change.routes : change.kind === "pipelock_allowlist" ? change.allowlist : change.dockerfile;
  return sha256(change.kind + "\n" + canonicalJson(wanted));
}

/** Validate what the agent sent for a routes proposal (a full document; a bare route array is accepted too). */
export function parseProposedRoutes(raw: unknown): RoutesDocument {
  const doc = Array.isArray(raw) ? { version: 1, routes: raw } : raw;
  return parseWith(RoutesDocumentSchema, doc, "proposed routes document");
}

export function parseProposedAllowlist(raw: unknown): string[] {
  return parseWith(AllowlistSchema, raw, "proposed pipelock allowlist");
}

export function parseProposedDockerfile(raw: unknown): string {
  return parseWith(DockerfileSchema, raw, "proposed Dockerfile");
}

export function parseJustification(raw: unknown): string {
  return parseWith(JustificationSchema, raw, "justification");
}

function readJson(file: string): unknown {
  const text = fs.readFileSync(file, "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`not valid JSON: ${(err as Error).message}`]);
  }
}

export function readProposal(file: string): Proposal {
  return parseWith(ProposalSchema, readJson(file), file);
}

export function readDecision(file: string): Decision {
  return parseWith(DecisionSchema, readJson(file), file);
}

export function writeProposal(dir: string, proposal: Proposal): void {
  const checked = parseWith(ProposalSchema, proposal, "proposal");
  writeFileAtomic(superviseLayout(dir).proposalFile(checked.id), JSON.stringify(checked, null, 2) + "\n");
}

/**
 * Write a decision exactly once: temp file + fsync + link(2) to the final name, which
 * fails if a decision already exists. Readers never see a partial decision.
 * Returns false when the proposal was already decided.
 */
export function writeDecisionExclusive(dir: string, decision: Decision): boolean {
  const checked = parseWith(DecisionSchema, decision, "decision");
  const layout = superviseLayout(dir);
  fs.mkdirSync(layout.decisionsDir, { recursive: true });
  const final = layout.decisionFile(checked.id);
  const tmp = path.join(layout.decisionsDir, `.${checked.id}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`);
  const fd = fs.openSync(tmp, "w", 0o644);
  try {
    fs.writeSync(fd, JSON.stringify(checked, null, 2) + "\n");
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, final);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export interface ProposalEntry {
  proposal: Proposal;
  decision?: Decision;
}

/** Every proposal in a supervise directory with its decision; unreadable files are reported, not fatal. */
export function listProposals(dir: string, onBad?: (file: string, err: Error) => void): ProposalEntry[] {
  const layout = superviseLayout(dir);
  let names: string[] = [];
  try {
    names = fs.readdirSync(layout.proposalsDir).filter((n) => /^p-[0-9a-f]+\.json$/.test(n));
  } catch {
    return [];
  }
  const out: ProposalEntry[] = [];
  for (const name of names) {
    const file = path.join(layout.proposalsDir, name);
    try {
      const proposal = readProposal(file);
      if (`${proposal.id}.json` !== name) throw new ConfigError(file, [`id "${proposal.id}" does not match the file name`]);
      const entry: ProposalEntry = { proposal };
      const dfile = layout.decisionFile(proposal.id);
      if (fs.existsSync(dfile)) entry.decision = readDecision(dfile);
      out.push(entry);
    } catch (err) {
      onBad?.(file, err as Error);
    }
  }
  return out.sort((a, b) => a.proposal.createdAt.localeCompare(b.proposal.createdAt) || a.proposal.id.localeCompare(b.proposal.id));
}

/** Hosts of a routes document (pipelock must let these through). */
export function routeHosts(doc: RoutesDocument): string[] {
  return [...new Set(doc.routes.map((r) => r.host))].sort();
}
