// The operator CLI's commands as importable functions: each takes an Io and returns an
// exit code, so tests run them and check exactly what they print.
import { parseArgs } from "node:util";
import path from "node:path";
import { isPipelockNoise } from "../contracts/pipelock.ts";
import { FILE_NAMES } from "../contracts/paths.ts";
import { parsePolicyYaml } from "../contracts/policy.ts";
import { parseRoutesYaml } from "../contracts/routes.ts";
import { seal, withoutSeal } from "../contracts/seal.ts";
import { ConfigError } from "../contracts/validation.ts";
import { localIo } from "../store/io.ts";
import { readAudit } from "../store/audit.ts";
import { allProposals, type BottleSource } from "../store/bottles.ts";
import { runDocker } from "../store/docker.ts";
import { stampedLines } from "../store/reload.ts";
import { approve, planFor, reject, type ApplyOptions, type PlannedApproval } from "./apply.ts";
import { bottleLabel, bottleSource, findBottle, findProposal, UserError, type FoundProposal } from "./bottles.ts";
import { onPath } from "./which.ts";
import { lineDiff } from "./diff.ts";
import { age, emphasize, FLAG, oneLine, sanitize, table } from "./text.ts";

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export interface CommandContext {
  io: Io;
  /** Where bottles are found. Default: every engine the operator's docker contexts and DOCKER_HOST reach. */
  bottles?: BottleSource;
  now?: number;
  apply?: ApplyOptions;
  /** Bold risk flags (the terminal has escape sequences). */
  color?: boolean;
}

export const USAGE = `usage: bottle <command>

  list                         every bottle, and the Docker host it runs on
  pending                      pending proposals of every bottle
  show <id>                    a proposal: justification, what changes, diff before → after
  approve <id> [--force]       apply it live (no restart), persist it into the stack config
  reject <id> --reason "…"     refuse it; the agent reads the reason
  audit <bottle> [--json]      the bottle's audit log, hash chain verified
  audit --file <path> [--json] verify an audit log file (one kept from before the state volumes)
  logs <bottle> <sidecar> [--all]
                               a sidecar's recent log (pipelock, egress, …) without its known noise
  seal <bottle> <file>         after a hand edit of the bottle's live routes.yaml or policy.yaml:
                               validate it and write its completeness line (an unsealed file is
                               never applied)
  dashboard                    interactive view: ↑/↓ or j/k select, a approve, r reject, d diff, q quit

Bottles are found on every Docker engine your docker contexts (\`docker context ls\`) and
DOCKER_HOST reach: their state containers, read through the Docker API. <bottle> is its
identity, or <identity>@<host> where two hosts run one identity.`;

function planOrError(p: FoundProposal): Promise<PlannedApproval | Error> {
  return planFor(p).catch((err: Error) => err);
}

/** The context's bottle source (the docker CLI it names, if any). */
export const sourceOf = (ctx: CommandContext) => bottleSource(ctx.bottles, ctx.apply?.docker || undefined);

/** The pending proposals among `proposals` (default: every bottle's), each with a one-line summary of what approving it would do. */
export async function pendingRows(ctx: CommandContext, proposals?: FoundProposal[]): Promise<{ found: FoundProposal; summary: string }[]> {
  const pending = (proposals ?? (await allProposals(sourceOf(ctx), (m) => ctx.io.err(`warning: ${m}`)))).filter((p) => !p.decision);
  const rows: { found: FoundProposal; summary: string }[] = [];
  for (const found of pending) {
    const plan = await planOrError(found);
    const flags = plan instanceof Error ? "" : `${plan.needsForce.length ? "[CREDENTIAL TO A NEW HOST] " : ""}${plan.warnings.length ? "[WILDCARD] " : ""}`;
    const summary = plan instanceof Error ? `(cannot apply: ${oneLine(plan.message, 60)})` : flags + (plan.summary.length > 1 ? `${plan.summary[0]} (+${plan.summary.length - 1} more)` : plan.summary[0] ?? "");
    rows.push({ found, summary });
  }
  return rows;
}

const hostCount = (bottles: { host: { label: string } }[]) => new Set(bottles.map((b) => b.host.label)).size;

export async function cmdPending(ctx: CommandContext): Promise<number> {
  const warn = (m: string) => ctx.io.err(`warning: ${m}`);
  const bottles = await sourceOf(ctx).bottles(warn);
  const rows = await pendingRows(ctx, await allProposals(sourceOf(ctx), warn, bottles));
  if (!rows.length) {
    const n = bottles.length;
    const hosts = hostCount(bottles);
    ctx.io.out(`no pending proposals (${n} bottle${n === 1 ? "" : "s"} on ${hosts} host${hosts === 1 ? "" : "s"})`);
    return 0;
  }
  const now = ctx.now ?? Date.now();
  const lines = table([
    ["ID", "BOTTLE", "HOST", "KIND", "AGE", "ASKED", "CHANGE"],
    ...rows.map(({ found: { proposal, bottle }, summary }) => [proposal.id, sanitize(bottle.record.identity), sanitize(bottle.host.label), proposal.change.kind, age(proposal.createdAt, now), `${proposal.count}×`, oneLine(summary, 70)]),
  ]);
  for (const l of lines) ctx.io.out(l);
  return 0;
}

/** `bottle list`: every bottle and the host it is on. */
export async function cmdList(ctx: CommandContext): Promise<number> {
  const bottles = await sourceOf(ctx).bottles((m) => ctx.io.err(`warning: ${m}`));
  if (!bottles.length) {
    ctx.io.out(`no bottles on ${sourceOf(ctx).where}`);
    return 0;
  }
  const lines = table([
    ["BOTTLE", "HOST", "ADDRESS", "STACK", "STATE CONTAINER"],
    ...bottles.map((b) => [sanitize(b.record.identity), sanitize(b.host.label), sanitize(b.host.address), sanitize(`${b.record.project}/${b.record.stack}`), sanitize(b.record.containers.state ?? "")]),
  ]);
  for (const l of lines) ctx.io.out(l);
  return 0;
}

/** Lines of `bottle show`: also the dashboard's diff view. */
export async function showLines(found: FoundProposal, now = Date.now()): Promise<string[]> {
  const { proposal, decision, bottle } = found;
  const out: string[] = [];
  out.push(`proposal ${proposal.id}  ${proposal.change.kind}  bottle ${sanitize(bottleLabel(bottle))} on ${sanitize(bottle.host.label)}`);
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
  const found = await findProposal(id, sourceOf(ctx));
  for (const l of await showLines(found, ctx.now)) ctx.io.out(emphasize(l, ctx.color));
  return 0;
}

export async function cmdApprove(ctx: CommandContext, id: string, force = false): Promise<number> {
  const found = await findProposal(id, sourceOf(ctx));
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
  const found = await findProposal(id, sourceOf(ctx));
  if (found.decision) throw new UserError(`proposal ${found.proposal.id} is already ${found.decision.decision}`);
  const decision = await reject(found, reason, { by: ctx.apply?.by });
  ctx.io.out(`rejected ${found.proposal.id} (${found.proposal.change.kind}) for bottle ${sanitize(found.bottle.record.identity)}; the agent reads: ${sanitize(decision.reason ?? "")}`);
  return 0;
}

/** `bottle audit <bottle>`, or `bottle audit --file <path>` for a log file on this machine. */
export async function cmdAudit(ctx: CommandContext, target: { bottle: string } | { file: string }, json = false): Promise<number> {
  let file: string;
  let v;
  if ("file" in target) {
    file = target.file;
    v = await readAudit(file, localIo);
  } else {
    const bottle = await findBottle(target.bottle, sourceOf(ctx));
    file = `${bottle.layout.auditFile} in ${bottle.record.containers.state ?? "the state container"} on ${bottle.host.label}`;
    v = await readAudit(bottle.layout.auditFile, bottle.io);
  }
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
  const bottle = await findBottle(bottleName, sourceOf(ctx));
  const container = bottle.record.containers[role];
  if (!container) throw new UserError(`bottle ${bottle.record.identity} has no ${role} container (it has: ${Object.keys(bottle.record.containers).join(", ")})`);
  const bin = ctx.apply?.docker || onPath("docker");
  if (!bin) throw new UserError("no docker CLI on PATH");
  const r = await runDocker(bottle.endpoint, ["logs", "--timestamps", "--tail", String(LOG_LINES), container], { bin });
  if (r.code !== 0) throw new UserError(`cannot read the log of ${container} on ${bottle.host.label}: ${r.stderr.trim().split("\n")[0]}`);
  const out = { lines: [...stampedLines(r.stdout.toString()), ...stampedLines(r.stderr)] };
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

/** `bottle seal`: a hand-edited live file of a bottle, validated like its reader does, re-sealed atomically in its volume. */
export async function cmdSeal(ctx: CommandContext, bottleName: string, fileName: string): Promise<number> {
  const name = path.basename(fileName);
  const parse = ({ [FILE_NAMES.routes]: parseRoutesYaml, [FILE_NAMES.policy]: parsePolicyYaml } as Record<string, ((text: string, where: string) => unknown) | undefined>)[name];
  if (!parse) {
    throw new UserError(
      name === FILE_NAMES.pipelock
        ? `${name} is rendered from routes.yaml and policy.yaml: edit those (or approve a proposal) and it follows`
        : `bottle seal takes a live ${FILE_NAMES.routes} or ${FILE_NAMES.policy}, not ${name}`,
    );
  }
  const bottle = await findBottle(bottleName, sourceOf(ctx));
  const file = name === FILE_NAMES.routes ? bottle.layout.routesFile : bottle.layout.policyFile;
  const text = await bottle.io.read(file);
  if (text === undefined) throw new UserError(`bottle ${bottle.record.identity} has no ${file} (run \`pulumi up\` first)`);
  const sealed = seal(withoutSeal(text));
  parse(sealed, file);
  if (sealed === text) {
    ctx.io.out(`${file} of ${bottle.record.identity} is already sealed`);
    return 0;
  }
  await bottle.io.write(file, sealed);
  ctx.io.out(`sealed ${file} of ${bottle.record.identity} (${sealed.slice(sealed.lastIndexOf("\n", sealed.length - 2) + 1).trim()}); the sidecar reloads it on the file change`);
  return 0;
}

/** Entry: parse argv (without node and script), run, map user mistakes to a message + exit 1. */
export async function main(argv: string[], ctx: CommandContext & { dashboard?: () => Promise<number> }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { reason: { type: "string", short: "m" }, force: { type: "boolean" }, json: { type: "boolean" }, all: { type: "boolean" }, file: { type: "string" }, help: { type: "boolean", short: "h" } },
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
      case "list":
        need(0, "no arguments");
        return await cmdList(ctx);
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
        if (values.file !== undefined) {
          need(0, "either a bottle or --file <path>");
          return await cmdAudit(ctx, { file: values.file }, values.json);
        }
        need(1, "one bottle (its identity, or <identity>@<host>) or --file <path>");
        return await cmdAudit(ctx, { bottle: rest[0]! }, values.json);
      case "logs":
        need(2, "a bottle and a sidecar (pipelock, egress, supervise, git-gate, agent)");
        return await cmdLogs(ctx, rest[0]!, rest[1]!, values.all);
      case "seal":
        need(2, "a bottle and one of its live files (routes.yaml or policy.yaml)");
        return await cmdSeal(ctx, rest[0]!, rest[1]!);
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
