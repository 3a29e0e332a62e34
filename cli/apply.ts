// Approving and rejecting: write the live config atomically (the sidecars watch their
// config directories), signal a reload (best effort), persist into the stack config,
// then write the decision file that wakes the waiting tool call. Decisions are written
// exclusively: a proposal is decided once, whoever is first.
import { reloadCommand } from "../contracts/docker.ts";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic } from "../store/io.ts";
import { stateLayout, type StateLayout } from "../store/layout.ts";
import { appendAudit, AUDIT_FILE_NAME } from "../store/audit.ts";
import { planChange, readCurrentConfig, renderRoutesYaml, type PlannedChange } from "../store/live.ts";
import { pipelockConfigToYaml } from "../contracts/pipelock.ts";
import { superviseLayout, writeDecisionExclusive, type Decision } from "../contracts/proposals.ts";
import { UserError, type FoundBottle, type FoundProposal } from "./bottles.ts";
import { CONFIG_KEYS, persistStackConfig, type PersistOptions } from "./persist.ts";

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

export function auditFile(bottle: FoundBottle): string {
  return path.join(stateLayout(bottle.stateDir).auditDir, AUDIT_FILE_NAME);
}

export function hostDirs(bottle: FoundBottle) {
  const s = stateLayout(bottle.stateDir);
  return { egressConfigDir: s.egressConfigDir, pipelockConfigDir: s.pipelockConfigDir, superviseDir: s.superviseDir };
}

export function planFor(found: FoundProposal): PlannedChange {
  return planChange(found.proposal, readCurrentConfig(hostDirs(found.bottle)));
}

/** The command that rebuilds the agent image from the stored Dockerfile and resumes the bottle. */
export function rebuildCommand(bottle: FoundBottle): string {
  return `pulumi up --yes --cwd ${shellQuote(bottle.record.projectDir)} --stack ${shellQuote(bottle.record.stack)}`;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

function withApplyLock<T>(bottle: FoundBottle, fn: () => Promise<T>): Promise<T> {
  const lock = superviseLayout(stateLayout(bottle.stateDir).superviseDir).applyLock;
  try {
    fs.mkdirSync(lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      const ageMs = Date.now() - fs.statSync(lock).mtimeMs;
      if (ageMs < 120_000) throw new UserError(`another approval for bottle ${bottle.record.identity} is in progress (lock ${lock}); try again in a moment`);
      fs.rmSync(lock, { recursive: true, force: true });
      fs.mkdirSync(lock);
    } else throw err;
  }
  return fn().finally(() => fs.rmSync(lock, { recursive: true, force: true }));
}

function run(bin: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 10_000 }, (err, stdout, stderr) => resolve({ ok: !err, out: (err ? stderr || err.message : stdout).trim() }));
  });
}

function dockerOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, "docker"))) return path.join(dir, "docker");
  }
  return undefined;
}

/** SIGHUP the given containers if docker is here and they run. Never throws. */
export async function signalReload(containers: string[], docker: string | false | undefined): Promise<string[]> {
  if (!containers.length) return [];
  if (docker === false) return [`reload signals off; ${containers.join(", ")} reload${containers.length === 1 ? "s" : ""} on the file change`];
  const bin = docker ?? dockerOnPath();
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
  plan: PlannedChange;
}

export async function approve(found: FoundProposal, opts: ApplyOptions = {}): Promise<ApproveResult> {
  const { bottle, proposal } = found;
  const state: StateLayout = stateLayout(bottle.stateDir);
  const sdir = state.superviseDir;
  return withApplyLock(bottle, async () => {
    if (fs.existsSync(superviseLayout(sdir).decisionFile(proposal.id))) throw new UserError(`proposal ${proposal.id} is already decided`);
    let plan: PlannedChange;
    try {
      plan = planFor(found);
    } catch (err) {
      throw new UserError(`cannot approve ${proposal.id}: ${(err as Error).message}`);
    }
    if (plan.conflicts.length && !opts.force) {
      throw new UserError(
        `the live config changed since ${proposal.id} was proposed:\n  - ${plan.conflicts.join("\n  - ")}\n` +
          `\`bottle show ${proposal.id}\` shows the result against the live config; approve with --force to apply it anyway, or reject it.`,
      );
    }
    const files: string[] = [];
    const reloadTargets: string[] = [];
    const persistValues: Record<string, unknown> = {};
    const containers = bottle.record.containers;
    let command: string | undefined;
    const change = proposal.change;
    if (change.kind === "egress_routes" || change.kind === "pipelock_allowlist") {
      if (change.kind === "egress_routes") {
        writeFileAtomic(state.egressRoutesFile, renderRoutesYaml(plan.routes!));
        files.push(state.egressRoutesFile);
        if (containers.egress) reloadTargets.push(containers.egress);
        persistValues[CONFIG_KEYS.routes] = plan.routes;
      } else {
        persistValues[CONFIG_KEYS.pipelockAllowlist] = plan.extraAllowlist;
      }
      const pipelockText = pipelockConfigToYaml(plan.pipelock!);
      let livePipelock = "";
      try {
        livePipelock = fs.readFileSync(state.pipelockConfigFile, "utf8");
      } catch {
        /* absent */
      }
      if (pipelockText !== livePipelock) {
        writeFileAtomic(state.pipelockConfigFile, pipelockText);
        files.push(state.pipelockConfigFile);
        if (containers.pipelock) reloadTargets.push(containers.pipelock);
      }
    } else {
      const file = path.join(state.capabilityDir, "Dockerfile");
      writeFileAtomic(file, plan.dockerfile!);
      writeFileAtomic(path.join(state.capabilityDir, `${proposal.id}.Dockerfile`), plan.dockerfile!);
      writeFileAtomic(superviseLayout(sdir).approvedDockerfile, plan.dockerfile!);
      files.push(file);
      persistValues[CONFIG_KEYS.capabilityDockerfile] = file;
      command = rebuildCommand(bottle);
    }
    let persisted: { how: "automation-api" | "stack-file" | "failed"; detail: string };
    try {
      persisted = await persistStackConfig({ projectDir: bottle.record.projectDir, stack: bottle.record.stack }, persistValues, opts);
    } catch (err) {
      persisted = { how: "failed", detail: `could not persist into the stack config: ${(err as Error).message}` };
    }
    const reload = await signalReload(reloadTargets, opts.docker);
    const decision: Decision = {
      version: 1,
      id: proposal.id,
      decision: "approved",
      at: new Date().toISOString(),
      by: opts.by ?? operatorName(),
      applied: { summary: plan.summary, files, persisted, reload, ...(command ? { command } : {}) },
    };
    if (!writeDecisionExclusive(sdir, decision)) throw new UserError(`proposal ${proposal.id} is already decided`);
    appendAudit(auditFile(bottle), {
      type: "approved",
      bottle: bottle.record.identity,
      id: proposal.id,
      kind: change.kind,
      actor: decision.by,
      key: proposal.key,
      summary: plan.summary,
      files,
      persisted: persisted.how,
      ...(plan.conflicts.length ? { forced: plan.conflicts } : {}),
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
    if (!writeDecisionExclusive(stateLayout(bottle.stateDir).superviseDir, decision)) throw new UserError(`proposal ${proposal.id} is already decided`);
    appendAudit(auditFile(bottle), { type: "rejected", bottle: bottle.record.identity, id: proposal.id, kind: proposal.change.kind, actor: decision.by, key: proposal.key, reason: why });
    return decision;
  });
}
