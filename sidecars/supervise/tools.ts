// The supervise MCP server: the agent proposes, the operator decides (through the
// `bottle` CLI, which writes decision files). Streamable HTTP in stateless mode, so a
// restart of supervise invalidates no client session; proposals and decisions are files,
// so a restart loses nothing either: an identical re-proposal merges into the pending
// one, and await_decision resumes a wait by id.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ConfigError } from "../../contracts/validation.ts";
import { appendAudit } from "../../store/audit.ts";
import { PIPELOCK_FILE_NAME, readCurrentConfig, ROUTES_FILE_NAME, type CurrentConfig } from "../../store/live.ts";
import { parseListen, SUPERVISE_HEALTH_PATH, SUPERVISE_MCP_PATH, type SuperviseSettings } from "../../contracts/supervise.ts";
import {
  canonicalJson,
  listProposals,
  MAX_REQUESTS_KEPT,
  newProposalId,
  parseJustification,
  parseProposedAllowlist,
  parseProposedDockerfile,
  parseProposedRoutes,
  ProposalIdSchema,
  proposalKey,
  readDecision,
  readProposal,
  superviseLayout,
  TOOL_NAMES,
  writeProposal,
  type Decision,
  type Proposal,
  type ProposalChange,
} from "../../contracts/proposals.ts";

const VERSION = "0.1.0";

type Log = (msg: string) => void;

/** Proposal store + decision waiting; one per process, shared by every MCP request. */
export class Supervisor {
  private readonly layout;
  private readonly pendingByKey = new Map<string, string>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private watcher?: fs.FSWatcher;
  private poller?: ReturnType<typeof setInterval>;

  constructor(
    readonly settings: SuperviseSettings,
    private readonly log: Log = () => {},
  ) {
    this.layout = superviseLayout(settings.SUPERVISE_STATE_DIR);
    fs.mkdirSync(this.layout.proposalsDir, { recursive: true });
    fs.mkdirSync(this.layout.decisionsDir, { recursive: true });
    for (const { proposal, decision } of listProposals(settings.SUPERVISE_STATE_DIR, (file, err) => log(`ignoring unreadable proposal ${file}: ${err.message}`))) {
      if (!decision) this.pendingByKey.set(proposal.key, proposal.id);
    }
    try {
      this.watcher = fs.watch(this.layout.decisionsDir, (_event, name) => {
        const id = name?.toString().replace(/\.json$/, "");
        if (id && this.waiters.has(id)) this.check(id);
      });
      this.watcher.on("error", () => {});
      this.watcher.unref?.();
    } catch {
      /* polling covers it */
    }
    this.poller = setInterval(() => {
      for (const id of this.waiters.keys()) this.check(id);
    }, settings.SUPERVISE_POLL_MS);
    this.poller.unref?.();
  }

  close(): void {
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
  }

  private cached?: { stamp: string; config: CurrentConfig };

  /** The live config; re-read whenever one of the files changed (size, mtime or inode). */
  current(): CurrentConfig {
    const files = [
      path.join(this.settings.SUPERVISE_EGRESS_CONFIG_DIR, ROUTES_FILE_NAME),
      path.join(this.settings.SUPERVISE_PIPELOCK_CONFIG_DIR, PIPELOCK_FILE_NAME),
      this.layout.approvedDockerfile,
    ];
    const stamp = files
      .map((f) => {
        try {
          const st = fs.statSync(f);
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch {
          return "-";
        }
      })
      .join("|");
    if (this.cached?.stamp === stamp) return this.cached.config;
    const config = this.read();
    this.cached = { stamp, config };
    return config;
  }

  private read(): CurrentConfig {
    return readCurrentConfig({
      egressConfigDir: this.settings.SUPERVISE_EGRESS_CONFIG_DIR,
      pipelockConfigDir: this.settings.SUPERVISE_PIPELOCK_CONFIG_DIR,
      superviseDir: this.settings.SUPERVISE_STATE_DIR,
    });
  }

  decisionFor(id: string): Decision | undefined {
    const file = this.layout.decisionFile(id);
    if (!fs.existsSync(file)) return undefined;
    return readDecision(file);
  }

  proposal(id: string): Proposal | undefined {
    const file = this.layout.proposalFile(id);
    if (!fs.existsSync(file)) return undefined;
    return readProposal(file);
  }

  pendingIds(): string[] {
    for (const [key, id] of this.pendingByKey) if (fs.existsSync(this.layout.decisionFile(id))) this.pendingByKey.delete(key);
    return [...this.pendingByKey.values()];
  }

  private audit(event: Record<string, unknown> & { type: any }): void {
    try {
      appendAudit(this.settings.SUPERVISE_AUDIT_LOG, { bottle: this.settings.SUPERVISE_BOTTLE, actor: "agent", ...event });
    } catch (err) {
      this.log(`audit log write failed: ${(err as Error).message}`);
    }
  }

  auditInvalid(tool: string, problem: string): void {
    this.audit({ type: "invalid", tool, problem });
  }

  /**
   * Record a proposal, merging it into an identical pending one. Synchronous, so
   * concurrent calls in this process never race each other.
   */
  propose(change: ProposalChange, justification: string): { proposal: Proposal; merged: boolean } {
    const key = proposalKey(change);
    const now = new Date().toISOString();
    const existingId = this.pendingByKey.get(key);
    if (existingId && !fs.existsSync(this.layout.decisionFile(existingId))) {
      const existing = readProposal(this.layout.proposalFile(existingId));
      const merged: Proposal = { ...existing, count: existing.count + 1, requests: [...existing.requests, { at: now, justification }].slice(-MAX_REQUESTS_KEPT) };
      writeProposal(this.settings.SUPERVISE_STATE_DIR, merged);
      this.audit({ type: "merged", id: merged.id, kind: change.kind, key, count: merged.count, justification });
      return { proposal: merged, merged: true };
    }
    if (this.pendingIds().length >= this.settings.SUPERVISE_MAX_PENDING) {
      throw new Error(`too many pending proposals (${this.settings.SUPERVISE_MAX_PENDING}); wait for the operator to decide the ones already asked`);
    }
    let id = newProposalId();
    while (fs.existsSync(this.layout.proposalFile(id))) id = newProposalId();
    const proposal: Proposal = {
      version: 1,
      id,
      bottle: this.settings.SUPERVISE_BOTTLE,
      key,
      createdAt: now,
      count: 1,
      requests: [{ at: now, justification }],
      change,
    };
    writeProposal(this.settings.SUPERVISE_STATE_DIR, proposal);
    this.pendingByKey.set(key, id);
    this.audit({ type: "proposed", id, kind: change.kind, key, justification, change });
    this.log(`proposal ${id} (${change.kind}) pending`);
    return { proposal, merged: false };
  }

  private check(id: string): void {
    if (!fs.existsSync(this.layout.decisionFile(id))) return;
    const ws = this.waiters.get(id);
    this.waiters.delete(id);
    for (const w of ws ?? []) w();
  }

  /** Resolve when the decision file for `id` exists; tick() every keep-alive interval meanwhile. */
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
        this.check(id);
      });
    } finally {
      if (timer) clearInterval(timer);
    }
    return readDecision(this.layout.decisionFile(id));
  }
}

function text(t: string, structured?: Record<string, unknown>, isError = false): CallToolResult {
  return { content: [{ type: "text", text: t }], ...(structured ? { structuredContent: structured } : {}), ...(isError ? { isError: true } : {}) };
}

function decisionResult(proposal: Proposal, decision: Decision): CallToolResult {
  const structured: Record<string, unknown> = { status: decision.decision, proposal_id: proposal.id, kind: proposal.change.kind };
  if (decision.decision === "rejected") {
    structured.reason = decision.reason ?? "";
    return text(`Rejected by the operator (proposal ${proposal.id}). Reason: ${decision.reason || "(none given)"}`, structured);
  }
  const applied = decision.applied;
  structured.changed = applied?.summary ?? [];
  const lines = [`Approved by the operator (proposal ${proposal.id}).`];
  if (applied?.summary.length) lines.push("What changed:", ...applied.summary.map((s) => `  ${s}`));
  if (proposal.change.kind === "capability") {
    lines.push("The new Dockerfile is stored; the operator rebuilds the agent image and resumes this session (same identity and transcript).");
    if (applied?.command) structured.command = applied.command;
  } else {
    lines.push("The change is live now; no restart is needed. get_current_config shows it.");
  }
  return text(lines.join("\n"), structured);
}

function alreadyInEffect(kind: ProposalChange["kind"]): CallToolResult {
  return text(`No change needed: the live config already is what you proposed (${kind}). Nothing was sent to the operator.`, { status: "approved", proposal_id: null, kind, changed: [] });
}

const justificationArg = z.string().describe("Why the change is needed (shown to the operator).");

export function createMcpServer(sup: Supervisor): McpServer {
  const server = new McpServer({ name: "claude-bottle-supervise", version: VERSION }, { capabilities: { logging: {} } });

  const wait = async (proposal: Proposal, merged: boolean, extra: any): Promise<CallToolResult> => {
    const progressToken = extra?._meta?.progressToken;
    const say = async (n: number, message: string) => {
      try {
        if (progressToken !== undefined) {
          await extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: n, message } });
        } else {
          await extra.sendNotification({ method: "notifications/message", params: { level: "info", logger: "supervise", data: message } });
        }
      } catch {
        /* the client went away; the abort signal ends the wait */
      }
    };
    const first = `proposal ${proposal.id} ${merged ? "merged into an identical pending one" : "is pending"}; waiting for the operator (if this call is cut off, call ${TOOL_NAMES.await} with proposal_id "${proposal.id}")`;
    await say(0, first);
    let decision: Decision;
    try {
      decision = await sup.waitForDecision(proposal.id, extra?.signal, (n) => void say(n, `still waiting for the operator to decide ${proposal.id}`));
    } catch (err) {
      if ((err as Error).message === "cancelled") return text(`Wait cancelled; proposal ${proposal.id} stays pending. Call ${TOOL_NAMES.await} with proposal_id "${proposal.id}" to resume.`, undefined, true);
      throw err;
    }
    return decisionResult(proposal, decision);
  };

  const guard = (tool: string, fn: () => { change: ProposalChange; justification: string } | CallToolResult) => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigError) {
        sup.auditInvalid(tool, err.message);
        throw new Error(`Invalid proposal, nothing was sent to the operator. ${err.message}`);
      }
      throw err;
    }
  };

  const proposeWith = async (tool: string, build: (current: CurrentConfig) => { change: ProposalChange; justification: string } | CallToolResult, extra: any) => {
    const current = sup.current();
    const built = guard(tool, () => build(current));
    if ("content" in built) return built;
    const { proposal, merged } = sup.propose(built.change, built.justification);
    return wait(proposal, merged, extra);
  };

  server.registerTool(
    TOOL_NAMES.egress_routes,
    {
      title: "Propose an egress route change",
      description:
        "Ask the operator to change which hosts, paths and methods you may reach over HTTP(S). Send the FULL new routes document " +
        "(start from get_current_config's routes and edit it): {version: 1, routes: [{host, path_allowlist?, methods?, auth?: {scheme, token_ref}, role?}]}. " +
        "host is an exact name or *.example.com; path_allowlist entries are path prefixes starting with /; methods are GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS. " +
        "The call waits until the operator approves (the change is then live) or rejects (with a reason). Identical pending proposals are merged.",
      inputSchema: {
        routes: z.any().describe("The full new routes document {version: 1, routes: [...]} (a bare array of routes is accepted too)."),
        justification: justificationArg,
      },
    },
    async (args, extra) =>
      proposeWith(
        TOOL_NAMES.egress_routes,
        (current) => {
          const routes = parseProposedRoutes(args.routes);
          const justification = parseJustification(args.justification);
          // A partial document (just the one route the 403 named) would drop every other
          // route, the agent's own LLM route included: refuse that before the operator sees it.
          const dropped = current.routes.routes.filter((r) => r.role && !routes.routes.some((n) => n.host === r.host));
          if (dropped.length) {
            throw new ConfigError("proposed routes document", [
              `it drops the route for ${dropped.map((r) => `${r.host} (role ${r.role})`).join(", ")}; send the FULL new document: start from get_current_config's routes and add or change entries`,
            ]);
          }
          if (canonicalJson(routes) === canonicalJson(current.routes)) return alreadyInEffect("egress_routes");
          return { change: { kind: "egress_routes", routes, base: current.routes }, justification };
        },
        extra,
      ),
  );

  server.registerTool(
    TOOL_NAMES.pipelock_allowlist,
    {
      title: "Propose a pipelock allowlist change",
      description:
        "Ask the operator to change pipelock's extra allowlist: the hosts the upstream firewall lets through beyond the egress route hosts. " +
        "Send the FULL new extra allowlist (see get_current_config's extra_allowlist) as bare host names (*.example.com allowed). Waits for the decision.",
      inputSchema: {
        allowlist: z.any().describe("The full new extra allowlist: an array of host names."),
        justification: justificationArg,
      },
    },
    async (args, extra) =>
      proposeWith(
        TOOL_NAMES.pipelock_allowlist,
        (current) => {
          const allowlist = parseProposedAllowlist(args.allowlist);
          const justification = parseJustification(args.justification);
          if (canonicalJson(allowlist) === canonicalJson(current.extraAllowlist)) return alreadyInEffect("pipelock_allowlist");
          return { change: { kind: "pipelock_allowlist", allowlist, base: current.extraAllowlist }, justification };
        },
        extra,
      ),
  );

  server.registerTool(
    TOOL_NAMES.capability,
    {
      title: "Propose a capability change (new agent Dockerfile)",
      description:
        "Ask the operator for new tools in your container by proposing a complete new agent Dockerfile (first instruction FROM). " +
        "On approval the operator rebuilds the agent image and resumes this session with the same identity and transcript. Waits for the decision.",
      inputSchema: {
        dockerfile: z.any().describe("The complete new Dockerfile text."),
        justification: justificationArg,
      },
    },
    async (args, extra) =>
      proposeWith(
        TOOL_NAMES.capability,
        (current) => {
          const dockerfile = parseProposedDockerfile(args.dockerfile);
          const justification = parseJustification(args.justification);
          if (current.dockerfile === dockerfile) return alreadyInEffect("capability");
          return { change: { kind: "capability", dockerfile, base: current.dockerfile }, justification };
        },
        extra,
      ),
  );

  server.registerTool(
    TOOL_NAMES.current,
    {
      title: "Current bottle configuration",
      description: "Read-only: the live egress routes, pipelock allowlist, approved agent Dockerfile and pending proposals of this bottle.",
      inputSchema: {},
      annotations: { readOnlyHint: true, idempotentHint: true },
    },
    async () => {
      const current = sup.current();
      const pending = sup.pendingIds().flatMap((id) => {
        const p = sup.proposal(id);
        return p ? [{ id: p.id, kind: p.change.kind, count: p.count, created_at: p.createdAt }] : [];
      });
      const view = {
        bottle: sup.settings.SUPERVISE_BOTTLE,
        routes: current.routes,
        pipelock_allowlist: current.pipelock?.api_allowlist ?? [],
        extra_allowlist: current.extraAllowlist,
        capability_dockerfile: current.dockerfile,
        pending,
        ...(current.problems.length ? { problems: current.problems } : {}),
      };
      return text(JSON.stringify(view, null, 2), view);
    },
  );

  server.registerTool(
    TOOL_NAMES.await,
    {
      title: "Wait for a pending proposal's decision",
      description: "Resume waiting for the operator's decision on a proposal made earlier (for example after a cut-off call).",
      inputSchema: { proposal_id: z.string().describe('The id, like "p-1a2b3c4d".') },
    },
    async (args, extra) => {
      const id = ProposalIdSchema.safeParse(args.proposal_id);
      const proposal = id.success ? sup.proposal(id.data) : undefined;
      if (!proposal) throw new Error(`unknown proposal id "${args.proposal_id}"`);
      const decision = sup.decisionFor(proposal.id);
      if (decision) return decisionResult(proposal, decision);
      return wait(proposal, false, extra);
    },
  );

  return server;
}

export interface RunningSupervise {
  url: string;
  port: number;
  supervisor: Supervisor;
  close(): Promise<void>;
}

export async function startSupervise(settings: SuperviseSettings, log: Log = () => {}): Promise<RunningSupervise> {
  const sup = new Supervisor(settings, log);
  const sockets = new Set<import("node:net").Socket>();
  const httpServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://supervise");
    if (url.pathname === SUPERVISE_HEALTH_PATH) {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (url.pathname !== SUPERVISE_MCP_PATH) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found; the MCP endpoint is ${SUPERVISE_MCP_PATH}\n`);
      return;
    }
    const server = createMcpServer(sup);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, keepAliveMs: settings.SUPERVISE_KEEPALIVE_MS });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch((err) => {
        log(`request failed: ${(err as Error).message}`);
        if (!res.headersSent) res.writeHead(500).end();
      });
  });
  httpServer.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // Long polls: never let Node's own timeouts cut a 30-minute wait.
  httpServer.requestTimeout = 0;
  httpServer.headersTimeout = 60_000;
  httpServer.keepAliveTimeout = 65_000;
  httpServer.timeout = 0;
  const { host, port } = parseListen(settings.SUPERVISE_LISTEN);
  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, host, () => resolve());
  });
  const actual = (httpServer.address() as AddressInfo).port;
  const shownHost = host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shownHost}:${actual}${SUPERVISE_MCP_PATH}`,
    port: actual,
    supervisor: sup,
    close: () =>
      new Promise<void>((resolve) => {
        sup.close();
        for (const s of sockets) s.destroy();
        httpServer.close(() => resolve());
      }),
  };
}
