// Approving and rejecting. An approval, for every proposal kind alike: plan it against the
// live documents, write the files whose bytes change (atomically) one by one, each confirmed
// by the sidecar that loads it (store/reload.ts: its log names the bytes written; pipelock is
// restarted when it refuses a change on reload only), persist the kind's stack config key,
// then write the decision that wakes the waiting tool call. A file that does not take puts
// every file back and leaves the proposal pending: it is reported as not applied, never as
// approved. Decisions are written once: a proposal is decided once, whoever is first.
import os from "node:os";
import { kindSpec, planChange, STACK_CONFIG_NAMESPACE, type ApprovalPlan, type Decision } from "../contracts/proposals.ts";
import { appendAudit } from "../store/audit.ts";
import { LockBusyError } from "../store/io.ts";
import { hostLayout } from "../store/layout.ts";
import { fileChanges, liveWrites, readLive, writeApprovedDockerfile, type CurrentConfig, type FileChange, type LiveWrite } from "../store/live.ts";
import { dockerSidecar, liveTarget, writeConfirmed, type Sidecar, type Timing } from "../store/reload.ts";
import { isDecided, proposalPaths, writeDecision } from "../store/proposals.ts";
import { UserError, type FoundBottle, type FoundProposal } from "./bottles.ts";
import { persistStackConfig, type PersistOptions } from "./persist.ts";
import { onPath } from "./which.ts";
import { shellWord } from "../store/docker.ts";

export interface ApplyOptions extends PersistOptions {
  /** Approve even though the live config moved under the proposal. */
  force?: boolean;
  /** docker binary that reaches the sidecars (on the bottle's engine); false = neither reload nor confirm (tests). Default: `docker` on PATH. */
  docker?: string | false;
  /** How a sidecar container is reached (tests run the pipelock stand-in as a process). Default: through `docker`. */
  sidecar?: (container: string) => Sidecar;
  /** Deadlines of the reload confirmation (tests). */
  timing?: Partial<Timing>;
  /** Operator name recorded in the decision. */
  by?: string;
}

export function operatorName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? "operator";
  }
}

export interface PlannedApproval extends ApprovalPlan {
  current: CurrentConfig;
  /** The live files approval rewrites, before → after. */
  files: FileChange[];
}

/** What approving would do to the bottle's live config now. Throws ConfigError if the result is invalid. */
export async function planFor(found: FoundProposal): Promise<PlannedApproval> {
  const current = await readLive(found.bottle.layout, found.bottle.io);
  const plan = planChange(found.proposal.change, current);
  return { ...plan, current, files: fileChanges(current, plan.next) };
}

/** The command that rebuilds the agent image from the stored Dockerfile and resumes the bottle. */
export function rebuildCommand(bottle: FoundBottle): string {
  return `pulumi up --yes --cwd ${shellWord(bottle.record.projectDir)} --stack ${shellWord(bottle.record.stack)}`;
}


async function withApplyLock<T>(bottle: FoundBottle, fn: () => Promise<T>): Promise<T> {
  const lock = proposalPaths(bottle.layout.superviseDir).applyLock;
  try {
    return await bottle.io.lock(lock, fn, { waitMs: 0 });
  } catch (err) {
    if (err instanceof LockBusyError && err.lock === lock) throw new UserError(`another approval for bottle ${bottle.record.identity} is in progress (lock ${lock}); try again in a moment`);
    throw err;
  }
}

/** How the approval reaches the container that loads a live file; undefined: it is not confirmed (tests only). */
function sidecarReach(bottle: FoundBottle, opts: ApplyOptions): ((container: string) => Sidecar) | undefined {
  if (opts.sidecar) return opts.sidecar;
  if (opts.docker === false) return undefined;
  const bin = opts.docker ?? onPath("docker");
  if (!bin) throw new UserError("cannot approve: no docker CLI on PATH, so the sidecars cannot be made to load the change and confirm it; nothing was changed");
  return (container) => dockerSidecar(container, bin, bottle.endpoint);
}

/**
 * Write the live files one by one; each one a sidecar loads is confirmed (store/reload.ts). The
 * first that does not take puts back every file written before it, each confirmed again, and
 * throws: nothing of the approval stays live.
 */
async function applyLive(bottle: FoundBottle, writes: LiveWrite[], opts: ApplyOptions): Promise<string[]> {
  const reach = sidecarReach(bottle, opts);
  const lines: string[] = [];
  const done: LiveWrite[] = [];
  const put = async (w: LiveWrite, content: string, previous: string | undefined) => {
    const container = w.reload ? bottle.record.containers[w.reload] : undefined;
    const write = (text: string) => bottle.io.write(w.file, text);
    if (!w.reload || !container) {
      await write(content);
      return { ok: true, detail: "" };
    }
    if (!reach) {
      await write(content);
      return { ok: true, detail: `reload signals off: ${container} loads ${w.name} on the file change (not confirmed)` };
    }
    return writeConfirmed(liveTarget(w.reload as "egress" | "pipelock", reach(container)), { name: w.name, content, previous, write }, opts.timing);
  };
  for (const w of writes) {
    const out = await put(w, w.after, w.before);
    if (!out.ok) {
      const undone: string[] = [];
      for (const d of done.reverse()) {
        if (d.before === undefined) continue;
        const back = await put(d, d.before, d.after);
        undone.push(back.ok ? `${d.name} restored${back.detail ? ` (${back.detail})` : ""}` : `${d.name}: could not restore: ${back.detail}`);
      }
      throw new UserError(
        `not applied: ${out.detail}` + (undone.length ? `\n  ${undone.join("\n  ")}` : "") + `\nThe proposal stays pending; approve it again once the cause is fixed, or reject it.`,
      );
    }
    if (out.detail) lines.push(out.detail);
    done.push(w);
  }
  return lines;
}

export interface ApproveResult {
  decision: Decision;
  plan: PlannedApproval;
}

export async function approve(found: FoundProposal, opts: ApplyOptions = {}): Promise<ApproveResult> {
  const { bottle, proposal } = found;
  const { layout } = bottle;
  return withApplyLock(bottle, async () => {
    if (await isDecided(layout.superviseDir, proposal.id, bottle.io)) throw new UserError(`proposal ${proposal.id} is already decided`);
    let plan: PlannedApproval;
    try {
      plan = await planFor(found);
    } catch (err) {
      throw new UserError(`cannot approve ${proposal.id}: ${(err as Error).message}`);
    }
    if (plan.current.problems.length) {
      throw new UserError(`cannot approve ${proposal.id}: the live config cannot be read:\n  - ${plan.current.problems.join("\n  - ")}`);
    }
    if (plan.conflicts.length && !opts.force) {
      throw new UserError(
        `the live config changed since ${proposal.id} was proposed:\n  - ${plan.conflicts.join("\n  - ")}\n` +
          `\`bottle show ${proposal.id}\` shows the result against the live config; approve with --force to apply it anyway, or reject it.`,
      );
    }
    if (plan.needsForce.length && !opts.force) {
      throw new UserError(
        `${proposal.id} sends a credential where it does not go today:\n  - ${plan.needsForce.join("\n  - ")}\n` +
          `Read \`bottle show ${proposal.id}\`; approve with --force if that host is meant to receive it, or reject it.`,
      );
    }
    const spec = kindSpec(proposal.change.kind);
    const host = hostLayout(bottle.record.hostDir);
    const writes = await liveWrites(layout, plan.next, bottle.io);
    const reload = await applyLive(bottle, writes, opts);
    const files = [...writes.map((w) => w.file), ...(await writeApprovedDockerfile(bottle, host, plan.current, plan.next, { proposalId: proposal.id }))];
    const configKey = `${STACK_CONFIG_NAMESPACE}:${bottle.record.configKeys[proposal.change.kind] ?? spec.configKey}`;
    let persisted: { how: "automation-api" | "stack-file" | "failed"; detail: string };
    try {
      persisted = await persistStackConfig(
        { projectDir: bottle.record.projectDir, stack: bottle.record.stack },
        { [configKey]: spec.configValue(plan.next, { dockerfileFile: host.capabilityDockerfile }) },
        opts,
      );
    } catch (err) {
      persisted = { how: "failed", detail: `could not persist into the stack config: ${(err as Error).message}` };
    }
    const decision: Decision = {
      version: 1,
      id: proposal.id,
      decision: "approved",
      at: new Date().toISOString(),
      by: opts.by ?? operatorName(),
      applied: { summary: plan.summary, files, persisted, reload, ...(spec.rebuild ? { command: rebuildCommand(bottle) } : {}) },
    };
    if (!(await writeDecision(layout.superviseDir, decision, bottle.io))) throw new UserError(`proposal ${proposal.id} is already decided`);
    await appendAudit(layout.auditFile, {
      type: "approved",
      bottle: bottle.record.identity,
      id: proposal.id,
      kind: proposal.change.kind,
      actor: decision.by,
      key: proposal.key,
      summary: plan.summary,
      files,
      persisted: persisted.how,
      ...(plan.conflicts.length || plan.needsForce.length ? { forced: [...plan.conflicts, ...plan.needsForce] } : {}),
    }, bottle.io);
    return { decision, plan };
  });
}

export async function reject(found: FoundProposal, reason: string, opts: { by?: string } = {}): Promise<Decision> {
  const { bottle, proposal } = found;
  const why = reason.trim();
  if (!why) throw new UserError("a reason is required: the agent reads it (bottle reject <id> --reason \"…\")");
  return withApplyLock(bottle, async () => {
    const decision: Decision = { version: 1, id: proposal.id, decision: "rejected", at: new Date().toISOString(), by: opts.by ?? operatorName(), reason: why };
    if (!(await writeDecision(bottle.layout.superviseDir, decision, bottle.io))) throw new UserError(`proposal ${proposal.id} is already decided`);
    await appendAudit(bottle.layout.auditFile, { type: "rejected", bottle: bottle.record.identity, id: proposal.id, kind: proposal.change.kind, actor: decision.by, key: proposal.key, reason: why }, bottle.io);
    return decision;
  });
}
