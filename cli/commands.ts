// The operator CLI's commands as importable functions: each takes an Io and returns an
// exit code, so tests run them and check exactly what they print.
import { execFile } from "node:child_process";
import { parseArgs } from "node:util";
import { isPipelockNoise } from "../contracts/pipelock.ts";
import fs from "node:fs";
import path from "node:path";
import { FILE_NAMES } from "../contracts/paths.ts";
import { parsePolicyYaml } from "../contracts/policy.ts";
import { parseRoutesYaml } from "../contracts/routes.ts";
import { seal, withoutSeal } from "../contracts/seal.ts";
import { ConfigError } from "../contracts/validation.ts";
import { writeFileAtomic } from "../store/io.ts";
import { readAudit } from "../store/audit.ts";
import { allProposals, findBottles } from "../store/bottles.ts";
import { stampedLines } from "../store/reload.ts";
import { bottlesHome } from "../store/layout.ts";
import { approve, planFor, reject, type ApplyOptions, type PlannedApproval } from "./apply.ts";
import { bottleLabel, findBottle, findProposal, UserError, type FoundProposal } from "./bottles.ts";
import { onPath } from "./which.ts";
import { lineDiff } from "./diff.ts";
import { age, emphasize, FLAG, oneLine, sanitize, table } from "./text.ts";

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export interface CommandContext {
  io: Io;
  home?: string;
  now?: number;
  apply?: ApplyOptions;
  /** Bold risk flags (the terminal has escape sequences). */
  color?: boolean;
}

export const USAGE = `usage: bottle <command>

  pending                      pending proposals of every bottle on this host
  show <id>                    a proposal: justification, what changes, diff before → after
  approve <id> [--force]       apply it live (no restart), persist it into the stack config
  reject <id> --reason "…"     refuse it; the agent reads the reason
  audit <bottle> [--json]      the bottle's audit log, hash chain verified
  logs <bottle> <sidecar> [--all]
                               a sidecar's recent log (pipelock, egress, …) without its known noise
  seal <file>                  after a hand edit of a live routes.yaml or policy.yaml: validate it
                               and write its completeness line (an unsealed file is never applied)
  dashboard                    interactive view: ↑/↓ or j/k select, a approve, r reject, d diff, q quit

Bottles are found under $CLAUDE_BOTTLE_HOME (default ~/.claude-bottle).`;

function planOrError(p: FoundProposal): Promise<PlannedApproval | Error> {
  return planFor(p).catch((err: Error) => err);
}

export async function pendingRows(ctx: CommandContext): Promise<{ found: FoundProposal; summary: string }[]> {
  const home = ctx.home ?? bottlesHome();
  const pending = (await allProposals(home, undefined, (m) => ctx.io.err(`warning: ${m}`))).filter((p) => !p.decision);
  const rows: { found: FoundProposal; summary: string }[] = [];
  for (const found of pending) {
    const plan = await planOrError(found);
    const flags = plan instanceof Error ? "" : `${plan.needsForce.length ? "[CREDENTIAL TO A NEW HOST] " : ""}${plan.warnings.length ? "[WILDCARD] " : ""}`;
    const summary = plan instanceof Error ? `(cannot apply: ${oneLine(plan.message, 60)})` : flags + (plan.summary.length > 1 ? `${plan.summary[0]} (+${plan.summary.length - 1} more)` : plan.summary[0] ?? "");
    rows.push({ found, summary });
  }
  return rows;
}

export async function cmdPending(ctx: CommandContext): Promise<number> {
  const home = ctx.home ?? bottlesHome();
  const rows = await pendingRows(ctx);
  if (!rows.length) {
    const n = (await findBottles(home)).length;
    ctx.io.out(`no pending proposals (${n} bottle${n === 1 ? "" : "s"} on this host)`);
    return 0;
  }
  const now = ctx.now ?? Date.now();
  const lines = table([
    ["ID", "BOTTLE", "KIND", "AGE", "ASKED", "CHANGE"],
    ...rows.map(({ found: { proposal, bottle }, summary }) => [proposal.id, sanitize(bottle.record.identity), proposal.change.kind, age(proposal.createdAt, now), `${proposal.count}×`, oneLine(summary, 70)]),
  ]);
  for (const l of lines) ctx.io.out(l);
  return 0;
}

/** Lines of `bottle show`: also the dashboard's diff view. */
export async function showLines(found: FoundProposal, now = Date.now()): Promise<string[]> {
  const { proposal, decision, bottle } = found;
  const out: string[] = [];
  out.push(`proposal ${proposal.id}  ${proposal.change.kind}  bottle ${sanitize(bottleLabel(bottle))}`);
  out.push(`asked ${proposal.count}× since ${proposal.createdAt} (${age(proposal.createdAt, now)} ago)`);
  if (decision) {
    out.push(`status: ${decision.decision} by ${sanitize(decision.by)} at ${decision.at}` + (decision.reason ? ` — ${sanitize(decision.reason)}` : ""));
  } else out.push("status: pending");
  out.push("justification:");
  const reqs = proposal.requests;
  for (const r of reqs.slice(-3)) out.push(...sanitize(r.justification, true).split("\n").map((l) => `  ${l}`));
  if (reqs.length > 3 || proposal.count > reqs.length) out.push(`  (${proposal.count - Math.min(3, reqs.length)} earlier request(s) not shown)`);
  if (decision?.applied) {
    out.push("applied:", ...decision.applied.summary.map((s) => `  ${sanitize(s)}`));
    return out;
  }
  if (decision) return out;
  const plan = await planOrError(found);
  if (plan instanceof Error) {
    out.push(`cannot apply against the live config: ${sanitize(plan.message, true)}`);
    return out;
  }
  out.push("changes:", ...plan.summary.map((s) => `  ${sanitize(s)}`));
  for (const f of plan.needsForce) out.push(`${FLAG}${sanitize(f)} (approve needs --force)`);
  for (const w of plan.warnings) out.push(`${FLAG}${sanitize(w)}`);
  if (plan.conflicts.length) out.push("conflicts (the live config moved since the proposal; approve needs --force):", ...plan.conflicts.map((c) => `  ! ${sanitize(c)}`));
  for (const f of plan.files) {
    const d = lineDiff(f.before, f.after);
    out.push(`--- ${f.name} (live)`, `+++ ${f.name} (after approval)`);
    if (!d.length) out.push("  (identical)");
    else out.push(...d.map((l) => sanitize(l)));
  }
  return out;
}

export async function cmdShow(ctx: CommandContext, id: string): Promise<number> {
  const found = await findProposal(id, ctx.home ?? bottlesHome());
  for (const l of await showLines(found, ctx.now)) ctx.io.out(emphasize(l, ctx.color));
  return 0;
}

export async function cmdApprove(ctx: CommandContext, id: string, force = false): Promise<number> {
  const found = await findProposal(id, ctx.home ?? bottlesHome());
  if (found.decision) throw new UserError(`proposal ${found.proposal.id} is already ${found.decision.decision}`);
  const { decision } = await approve(found, { ...ctx.apply, force: force || ctx.apply?.force });
  const a = decision.applied!;
  ctx.io.out(`approved ${found.proposal.id} (${found.proposal.change.kind}) for bottle ${sanitize(found.bottle.record.identity)}`);
  for (const s of a.summary) ctx.io.out(`  ${sanitize(s)}`);
  if (a.files.length) ctx.io.out(`live: wrote ${a.files.join(", ")}`);
  for (const r of a.reload) ctx.io.out(`reload: ${r}`);
  ctx.io.out(`persisted: ${a.persisted.detail}`);
  if (a.persisted.how === "failed") ctx.io.err(`warning: the change is live but not in the stack config; the next \`pulumi up\` would undo it`);
  if (a.command) ctx.io.out(`next: rebuild the agent image and resume the bottle with\n  ${a.command}`);
  return 0;
}

export async function cmdReject(ctx: CommandContext, id: string, reason: string | undefined): Promise<number> {
  if (!reason?.trim()) throw new UserError('a reason is required: bottle reject <id> --reason "…" (the agent reads it)');
  const found = await findProposal(id, ctx.home ?? bottlesHome());
  if (found.decision) throw new UserError(`proposal ${found.proposal.id} is already ${found.decision.decision}`);
  const decision = await reject(found, reason, { by: ctx.apply?.by });
  ctx.io.out(`rejected ${found.proposal.id} (${found.proposal.change.kind}) for bottle ${sanitize(found.bottle.record.identity)}; the agent reads: ${sanitize(decision.reason ?? "")}`);
  return 0;
}

export async function cmdAudit(ctx: CommandContext, bottleName: string, json = false): Promise<number> {
  const bottle = await findBottle(bottleName, ctx.home ?? bottlesHome());
  const file = bottle.layout.auditFile;
  const v = await readAudit(file);
  if (json) for (const l of v.lines) ctx.io.out(JSON.stringify(l));
  else {
    if (!v.lines.length && v.ok) ctx.io.out(`no audit entries yet (${file})`);
    for (const l of v.lines) {
      const detail = l.type === "rejected" ? `reason: ${l.reason}` : l.type === "approved" ? (l.summary as string[] | undefined)?.join("; ") ?? "" : l.type === "invalid" ? String(l.problem ?? "") : String(l.justification ?? "");
      ctx.io.out(`#${l.seq}  ${l.at}  ${String(l.type).padEnd(8)}  ${String(l.id ?? "-").padEnd(10)}  ${String(l.kind ?? "").padEnd(18)}  ${sanitize(String(l.actor))}  ${oneLine(detail, 80)}`.trimEnd());
    }
  }
  if (!v.ok) {
    ctx.io.err(`audit chain BROKEN at line ${v.brokenAt} of ${file}: ${v.problem}`);
    return 1;
  }
  ctx.io.out(`audit chain OK: ${v.lines.length} entr${v.lines.length === 1 ? "y" : "ies"}` + (v.lines.length ? `, head ${v.lines.at(-1)!.hash.slice(0, 16)}` : ""));
  return 0;
}

/** Lines of a sidecar's log that say nothing to the operator (per sidecar; --all shows them). */
const NOISE: Record<string, (line: string) => boolean> = { pipelock: isPipelockNoise };
const LOG_LINES = 200;

/** The last lines of a sidecar's log (stdout and stderr, as `docker logs`), known noise left out unless `all`. */
export async function cmdLogs(ctx: CommandContext, bottleName: string, role: string, all = false): Promise<number> {
  const bottle = await findBottle(bottleName, ctx.home ?? bottlesHome());
  const container = bottle.record.containers[role];
  if (!container) throw new UserError(`bottle ${bottle.record.identity} has no ${role} container (it has: ${Object.keys(bottle.record.containers).join(", ")})`);
  const bin = ctx.apply?.docker || onPath("docker");
  if (!bin) throw new UserError("no docker CLI on PATH");
  const out = await new Promise<{ lines: { ns: bigint; text: string }[]; error?: string }>((resolve) =>
    execFile(bin, ["logs", "--timestamps", "--tail", String(LOG_LINES), container], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ lines: [...stampedLines(stdout), ...stampedLines(stderr)], error: err ? (stderr || err.message).trim().split("\n")[0] : undefined }),
    ),
  );
  if (out.error) throw new UserError(`cannot read the log of ${container}: ${out.error}`);
  const noise = all ? undefined : NOISE[role];
  let hidden = 0;
  // stdout and stderr come apart from docker: merged again in the daemon's time order
  for (const l of out.lines.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0))) {
    if (noise?.(l.text)) hidden++;
    else ctx.io.out(`${new Date(Number(l.ns / 1_000_000n)).toISOString()} ${sanitize(l.text)}`);
  }
  if (hidden) ctx.io.out(`(${hidden} of the last ${LOG_LINES} lines hidden: ${role}'s known noise; --all shows them)`);
  return 0;
}

/** `bottle seal`: a hand-edited live file, validated like its reader does, re-sealed atomically. */
export async function cmdSeal(ctx: CommandContext, file: string): Promise<number> {
  const name = path.basename(file);
  const parse = ({ [FILE_NAMES.routes]: parseRoutesYaml, [FILE_NAMES.policy]: parsePolicyYaml } as Record<string, ((text: string, where: string) => unknown) | undefined>)[name];
  if (!parse) {
    throw new UserError(
      name === FILE_NAMES.pipelock
        ? `${file} is rendered from routes.yaml and policy.yaml: edit those (or approve a proposal) and it follows`
        : `bottle seal takes a live ${FILE_NAMES.routes} or ${FILE_NAMES.policy}, not ${name}`,
    );
  }
  let text: string;
  let mode: number;
  try {
    text = fs.readFileSync(file, "utf8");
    mode = fs.statSync(file).mode & 0o777;
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const sealed = seal(withoutSeal(text));
  parse(sealed, file);
  if (sealed === text) {
    ctx.io.out(`${file} is already sealed`);
    return 0;
  }
  writeFileAtomic(file, sealed, mode);
  ctx.io.out(`sealed ${file} (${sealed.slice(sealed.lastIndexOf("\n", sealed.length - 2) + 1).trim()}); the sidecar reloads it on the file change`);
  return 0;
}

/** Entry: parse argv (without node and script), run, map user mistakes to a message + exit 1. */
export async function main(argv: string[], ctx: CommandContext & { dashboard?: () => Promise<number> }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { reason: { type: "string", short: "m" }, force: { type: "boolean" }, json: { type: "boolean" }, all: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    ctx.io.err(`bottle: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [cmd, ...rest] = parsed.positionals;
  const { values } = parsed;
  if (values.help || !cmd || cmd === "help") {
    (cmd || values.help ? ctx.io.out : ctx.io.err)(USAGE);
    return cmd || values.help ? 0 : 2;
  }
  const need = (n: number, what: string) => {
    if (rest.length !== n) throw new UsageError(`bottle ${cmd} takes ${what}`);
  };
  try {
    switch (cmd) {
      case "pending":
        need(0, "no arguments");
        return await cmdPending(ctx);
      case "show":
        need(1, "one proposal id");
        return await cmdShow(ctx, rest[0]!);
      case "approve":
        need(1, "one proposal id");
        return await cmdApprove(ctx, rest[0]!, values.force);
      case "reject":
        need(1, 'one proposal id and --reason "…"');
        return await cmdReject(ctx, rest[0]!, values.reason);
      case "audit":
        need(1, "one bottle (its name or identity)");
        return await cmdAudit(ctx, rest[0]!, values.json);
      case "logs":
        need(2, "a bottle and a sidecar (pipelock, egress, supervise, git-gate, agent)");
        return await cmdLogs(ctx, rest[0]!, rest[1]!, values.all);
      case "seal":
        need(1, "one live file (routes.yaml or policy.yaml)");
        return await cmdSeal(ctx, rest[0]!);
      case "dashboard":
        need(0, "no arguments");
        if (!ctx.dashboard) throw new UserError("the dashboard needs an interactive terminal");
        return await ctx.dashboard();
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      ctx.io.err(`bottle: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof UserError || err instanceof ConfigError) {
      ctx.io.err(`bottle: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

class UsageError extends Error {}
