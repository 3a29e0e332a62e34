// The supervise sidecar's state: proposals it recorded (merged when identical), and the
// callers waiting for their decisions. Files are the truth (store/), so a restart loses
// nothing: pending proposals are found again, and a decision written while nobody waited
// is read when someone asks.
import { MAX_REQUESTS_KEPT, proposalKey, type Decision, type Proposal, type ProposalChange } from "../../contracts/proposals.ts";
import type { SuperviseSettings } from "../../contracts/supervise.ts";
import { appendAudit, type AuditEvent } from "../../store/audit.ts";
import { localIo, type StateIo } from "../../store/io.ts";
import { mountedPaths, type LivePaths } from "../../store/layout.ts";
import { liveStamp, readLive, type CurrentConfig } from "../../store/live.ts";
import { isDecided, listProposals, newProposalId, proposalPaths, readDecision, readProposal, writeProposal } from "../../store/proposals.ts";

export type Log = (msg: string) => void;

/** One per process, shared by every MCP request. */
export class Supervisor {
  readonly paths: LivePaths;
  private readonly pendingByKey = new Map<string, string>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private stopWatching: () => void = () => {};
  private poller?: ReturnType<typeof setInterval>;
  /** propose() runs one at a time: merging needs the pending set as the previous call left it. */
  private proposing: Promise<unknown> = Promise.resolve();
  private cached?: { stamp: string; config: CurrentConfig };

  private constructor(
    readonly settings: SuperviseSettings,
    private readonly log: Log,
    private readonly io: StateIo,
  ) {
    this.paths = mountedPaths({
      egressConfigDir: settings.SUPERVISE_EGRESS_CONFIG_DIR,
      pipelockConfigDir: settings.SUPERVISE_PIPELOCK_CONFIG_DIR,
      superviseDir: settings.SUPERVISE_STATE_DIR,
      auditFile: settings.SUPERVISE_AUDIT_LOG,
    });
  }

  static async open(settings: SuperviseSettings, log: Log = () => {}, io: StateIo = localIo): Promise<Supervisor> {
    const sup = new Supervisor(settings, log, io);
    const dir = settings.SUPERVISE_STATE_DIR;
    for (const { proposal, decision } of await listProposals(dir, io, (file, err) => log(`ignoring unreadable proposal ${file}: ${err.message}`))) {
      if (!decision) sup.pendingByKey.set(proposal.key, proposal.id);
    }
    const paths = proposalPaths(dir);
    sup.stopWatching = io.watch(paths.decisionsDir, (name) => {
      const id = paths.idOf(name);
      if (id && sup.waiters.has(id)) void sup.check(id);
    });
    sup.poller = setInterval(() => {
      for (const id of sup.waiters.keys()) void sup.check(id);
    }, settings.SUPERVISE_POLL_MS);
    sup.poller.unref?.();
    return sup;
  }

  close(): void {
    this.stopWatching();
    if (this.poller) clearInterval(this.poller);
  }

  /** The live config; re-read whenever one of its files changed. */
  async current(): Promise<CurrentConfig> {
    const stamp = await liveStamp(this.paths, this.io);
    if (this.cached?.stamp === stamp) return this.cached.config;
    const config = await readLive(this.paths, this.io);
    this.cached = { stamp, config };
    return config;
  }

  decisionFor(id: string): Promise<Decision | undefined> {
    return readDecision(this.settings.SUPERVISE_STATE_DIR, id, this.io);
  }

  proposal(id: string): Promise<Proposal | undefined> {
    return readProposal(this.settings.SUPERVISE_STATE_DIR, id, this.io);
  }

  async pendingIds(): Promise<string[]> {
    for (const [key, id] of this.pendingByKey) if (await isDecided(this.settings.SUPERVISE_STATE_DIR, id, this.io)) this.pendingByKey.delete(key);
    return [...this.pendingByKey.values()];
  }

  async audit(event: Omit<AuditEvent, "bottle" | "actor">): Promise<void> {
    try {
      await appendAudit(this.paths.auditFile, { bottle: this.settings.SUPERVISE_BOTTLE, actor: "agent", ...event } as AuditEvent, this.io);
    } catch (err) {
      this.log(`audit log write failed: ${(err as Error).message}`);
    }
  }

  /** Record a proposal, merging it into an identical pending one. */
  propose(change: ProposalChange, justification: string): Promise<{ proposal: Proposal; merged: boolean }> {
    const next = this.proposing.then(() => this.record(change, justification));
    this.proposing = next.catch(() => undefined);
    return next;
  }

  private async record(change: ProposalChange, justification: string): Promise<{ proposal: Proposal; merged: boolean }> {
    const dir = this.settings.SUPERVISE_STATE_DIR;
    const key = proposalKey(change);
    const now = new Date().toISOString();
    const existingId = this.pendingByKey.get(key);
    const existing = existingId && !(await isDecided(dir, existingId, this.io)) ? await this.proposal(existingId) : undefined;
    if (existing) {
      const merged: Proposal = { ...existing, count: existing.count + 1, requests: [...existing.requests, { at: now, justification }].slice(-MAX_REQUESTS_KEPT) };
      await writeProposal(dir, merged, this.io);
      await this.audit({ type: "merged", id: merged.id, kind: change.kind, key, count: merged.count, justification });
      return { proposal: merged, merged: true };
    }
    if ((await this.pendingIds()).length >= this.settings.SUPERVISE_MAX_PENDING) {
      throw new Error(`too many pending proposals (${this.settings.SUPERVISE_MAX_PENDING}); wait for the operator to decide the ones already asked`);
    }
    let id = newProposalId();
    while ((await this.io.stamp(proposalPaths(dir).proposalFile(id))) !== undefined) id = newProposalId();
    const proposal: Proposal = { version: 1, id, bottle: this.settings.SUPERVISE_BOTTLE, key, createdAt: now, count: 1, requests: [{ at: now, justification }], change };
    await writeProposal(dir, proposal, this.io);
    this.pendingByKey.set(key, id);
    await this.audit({ type: "proposed", id, kind: change.kind, key, justification, change });
    this.log(`proposal ${id} (${change.kind}) pending`);
    return { proposal, merged: false };
  }

  private async check(id: string): Promise<void> {
    if (!(await isDecided(this.settings.SUPERVISE_STATE_DIR, id, this.io))) return;
    const ws = this.waiters.get(id);
    this.waiters.delete(id);
    for (const w of ws ?? []) w();
  }

  /** Resolve when the decision for `id` exists; tick() every keep-alive interval meanwhile. */
  async waitForDecision(id: string, signal: AbortSignal | undefined, tick: (n: number) => void): Promise<Decision> {
    let n = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(new Error("cancelled"));
        const wake = () => resolve();
        let set = this.waiters.get(id);
        if (!set) this.waiters.set(id, (set = new Set()));
        set.add(wake);
        signal?.addEventListener("abort", () => {
          this.waiters.get(id)?.delete(wake);
          reject(new Error("cancelled"));
        });
        timer = setInterval(() => tick(++n), this.settings.SUPERVISE_KEEPALIVE_MS);
        void this.check(id);
      });
    } finally {
      if (timer) clearInterval(timer);
    }
    const decision = await this.decisionFor(id);
    if (!decision) throw new Error(`decision ${id} vanished`);
    return decision;
  }
}
