// Approving and rejecting. An approval, for every proposal kind alike: plan it against the
// live documents, write the files whose bytes change (atomically; the sidecars watch their
// directories), signal a reload (best effort), persist the kind's stack config key, then
// write the decision that wakes the waiting tool call. Decisions are written once: a
// proposal is decided once, whoever is first.
import { execFile } from "node:child_process";
import os from "node:os";
import { reloadCommand } from "../contracts/docker.ts";
import { kindSpec, planChange, STACK_CONFIG_NAMESPACE, type ApprovalPlan, type Decision } from "../contracts/proposals.ts";
import { appendAudit } from "../store/audit.ts";
import { localIo, LockBusyError } from "../store/io.ts";
import { fileChanges, readLive, writeLive, type CurrentConfig, type FileChange } from "../store/live.ts";
import { isDecided, proposalPaths, writeDecision } from "../store/proposals.ts";
import { UserError, type FoundBottle, type FoundProposal } from "./bottles.ts";
import { persistStackConfig, type PersistOptions } from "./persist.ts";
import { onPath } from "./which.ts";

export interface ApplyOptions extends PersistOptions {
  /** Approve even though the live config moved under the proposal. */
  force?: boolean;
  /** docker binary for reload signals; false = do not signal (tests). Default: `docker` on PATH. */
  docker?: string | false;
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
  const current = await readLive(found.bottle.layout);
  const plan = planChange(found.proposal.change, current);
  return { ...plan, current, files: fileChanges(current, plan.next) };
}

/** The command that rebuilds the agent image from the stored Dockerfile and resumes the bottle. */
export function rebuildCommand(bottle: FoundBottle): string {
  return `pulumi up --yes --cwd ${shellQuote(bottle.record.projectDir)} --stack ${shellQuote(bottle.record.stack)}`;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

async function withApplyLock<T>(bottle: FoundBottle, fn: () => Promise<T>): Promise<T> {
  const lock = proposalPaths(bottle.layout.superviseDir).applyLock;
  try {
    return await localIo.lock(lock, fn, { waitMs: 0 });
  } catch (err) {
    if (err instanceof LockBusyError && err.lock === lock) throw new UserError(`another approval for bottle ${bottle.record.identity} is in progress (lock ${lock}); try again in a moment`);
    throw err;
  }
}

function run(bin: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 10_000 }, (err, stdout, stderr) => resolve({ ok: !err, out: (err ? stderr || err.message : stdout).trim() }));
  });
}

/** SIGHUP the given containers if docker is here and they run. Never throws. */
export async function signalReload(containers: string[], docker: string | false | undefined): Promise<string[]> {
  if (!containers.length) return [];
  if (docker === false) return [`reload signals off; ${containers.join(", ")} reload${containers.length === 1 ? "s" : ""} on the file change`];
  const bin = docker ?? onPath("docker");
  if (!bin) return [`no docker CLI; ${containers.join(", ")} reload${containers.length === 1 ? "s" : ""} on the file change`];
  const out: string[] = [];
  for (const c of containers) {
    const inspect = await run(bin, ["inspect", "-f", "{{.State.Running}}", c]);
    if (!inspect.ok || inspect.out !== "true") {
      out.push(`${c} is not running; it loads the new file when it starts`);
      continue;
    }
    const kill = await run(bin, reloadCommand(c));
    out.push(kill.ok ? `sent SIGHUP to ${c}` : `could not signal ${c} (${kill.out.split("\n")[0]}); it reloads on the file change`);
  }
  return out;
}

export interface ApproveResult {
  decision: Decision;
  plan: PlannedApproval;
}

export async function approve(found: FoundProposal, opts: ApplyOptions = {}): Promise<ApproveResult> {
  const { bottle, proposal } = found;
  const { layout } = bottle;
  return withApplyLock(bottle, async () => {
    if (await isDecided(layout.superviseDir, proposal.id)) throw new UserError(`proposal ${proposal.id} is already decided`);
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
    const written = await writeLive(layout, plan.current, plan.next, { proposalId: proposal.id });
    const configKey = `${STACK_CONFIG_NAMESPACE}:${spec.configKey}`;
    let persisted: { how: "automation-api" | "stack-file" | "failed"; detail: string };
    try {
      persisted = await persistStackConfig(
        { projectDir: bottle.record.projectDir, stack: bottle.record.stack },
        { [configKey]: spec.configValue(plan.next, { dockerfileFile: layout.capabilityDockerfile }) },
        opts,
      );
    } catch (err) {
      persisted = { how: "failed", detail: `could not persist into the stack config: ${(err as Error).message}` };
    }
    const reload = await signalReload(written.reload.flatMap((role) => bottle.record.containers[role] ?? []), opts.docker);
    const decision: Decision = {
      version: 1,
      id: proposal.id,
      decision: "approved",
      at: new Date().toISOString(),
      by: opts.by ?? operatorName(),
      applied: { summary: plan.summary, files: written.files, persisted, reload, ...(spec.rebuild ? { command: rebuildCommand(bottle) } : {}) },
    };
    if (!(await writeDecision(layout.superviseDir, decision))) throw new UserError(`proposal ${proposal.id} is already decided`);
    await appendAudit(layout.auditFile, {
      type: "approved",
      bottle: bottle.record.identity,
      id: proposal.id,
      kind: proposal.change.kind,
      actor: decision.by,
      key: proposal.key,
      summary: plan.summary,
      files: written.files,
      persisted: persisted.how,
      ...(plan.conflicts.length || plan.needsForce.length ? { forced: [...plan.conflicts, ...plan.needsForce] } : {}),
    });
    return { decision, plan };
  });
}

export async function reject(found: FoundProposal, reason: string, opts: { by?: string } = {}): Promise<Decision> {
  const { bottle, proposal } = found;
  const why = reason.trim();
  if (!why) throw new UserError("a reason is required: the agent reads it (bottle reject <id> --reason \"…\")");
  return withApplyLock(bottle, async () => {
    const decision: Decision = { version: 1, id: proposal.id, decision: "rejected", at: new Date().toISOString(), by: opts.by ?? operatorName(), reason: why };
    if (!(await writeDecision(bottle.layout.superviseDir, decision))) throw new UserError(`proposal ${proposal.id} is already decided`);
    await appendAudit(bottle.layout.auditFile, { type: "rejected", bottle: bottle.record.identity, id: proposal.id, kind: proposal.change.kind, actor: decision.by, key: proposal.key, reason: why });
    return decision;
  });
}
