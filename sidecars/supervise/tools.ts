// The MCP tools the agent calls: one per proposal kind (from the registry in
// contracts/proposals.ts), plus reading the current config and resuming a wait. Each tool's
// input schema is the contract's zod schema, listed to the agent as JSON Schema and parsed
// here with the same schema — so an invalid call gets a message naming the argument path
// (with a did-you-mean), and lands in the audit log, before anything reaches the operator.
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { effectiveAllowlist } from "../../contracts/policy.ts";
import {
  JustificationSchema,
  kindSpec,
  PROPOSAL_KIND_NAMES,
  ProposalIdSchema,
  TOOL_NAMES,
  type Decision,
  type Proposal,
  type ProposalKind,
} from "../../contracts/proposals.ts";
import { ConfigError, parseWith } from "../../contracts/validation.ts";
import type { Supervisor } from "./supervisor.ts";

const VERSION = "0.1.0";

type Extra = {
  signal?: AbortSignal;
  sendNotification: (n: { method: string; params: Record<string, unknown> }) => Promise<void>;
  _meta?: { progressToken?: string | number };
};

interface ToolDef {
  name: string;
  title: string;
  description: string;
  input: z.ZodObject;
  annotations?: Tool["annotations"];
  run(args: any, extra: Extra): Promise<CallToolResult>;
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
  if (kindSpec(proposal.change.kind).rebuild) {
    lines.push("The change is stored; the operator rebuilds the agent image and resumes this session (same identity and transcript).");
    if (applied?.command) structured.command = applied.command;
  } else {
    lines.push(`The change is live now; no restart is needed. ${TOOL_NAMES.current} shows it.`);
  }
  return text(lines.join("\n"), structured);
}

function alreadyInEffect(kind: ProposalKind): CallToolResult {
  return text(`No change needed: the live config already is what you proposed (${kind}). Nothing was sent to the operator.`, { status: "approved", proposal_id: null, kind, changed: [] });
}

/** Wait for the operator, keeping the call alive with progress notifications (or log messages). */
async function waitFor(sup: Supervisor, proposal: Proposal, merged: boolean, extra: Extra): Promise<CallToolResult> {
  const progressToken = extra._meta?.progressToken;
  const say = async (n: number, message: string) => {
    try {
      if (progressToken !== undefined) await extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: n, message } });
      else await extra.sendNotification({ method: "notifications/message", params: { level: "info", logger: "supervise", data: message } });
    } catch {
      /* the client went away; the abort signal ends the wait */
    }
  };
  await say(0, `proposal ${proposal.id} ${merged ? "merged into an identical pending one" : "is pending"}; waiting for the operator (if this call is cut off, call ${TOOL_NAMES.await} with proposal_id "${proposal.id}")`);
  let decision: Decision;
  try {
    decision = await sup.waitForDecision(proposal.id, extra.signal, (n) => void say(n, `still waiting for the operator to decide ${proposal.id}`));
  } catch (err) {
    if ((err as Error).message === "cancelled") return text(`Wait cancelled; proposal ${proposal.id} stays pending. Call ${TOOL_NAMES.await} with proposal_id "${proposal.id}" to resume.`, undefined, true);
    throw err;
  }
  return decisionResult(proposal, decision);
}

function proposalTool(sup: Supervisor, kind: ProposalKind): ToolDef {
  const spec = kindSpec(kind);
  const input = z.strictObject({ ...spec.tool.input, justification: JustificationSchema });
  return {
    name: spec.tool.name,
    title: spec.tool.title,
    description: spec.tool.description,
    input,
    async run(args, extra) {
      let built;
      try {
        const parsed = parseWith(input, args, `${spec.tool.name} arguments`);
        const change = spec.tool.toChange(parsed, await sup.current());
        built = change && { change, justification: parsed.justification as string };
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        await sup.audit({ type: "invalid", tool: spec.tool.name, problem: err.message });
        throw new Error(`Invalid proposal, nothing was sent to the operator. ${err.message}`);
      }
      if (!built) return alreadyInEffect(kind);
      const { proposal, merged } = await sup.propose(built.change, built.justification);
      return waitFor(sup, proposal, merged, extra);
    },
  };
}

function tools(sup: Supervisor): ToolDef[] {
  return [
    ...PROPOSAL_KIND_NAMES.map((k) => proposalTool(sup, k)),
    {
      name: TOOL_NAMES.current,
      title: "Current bottle configuration",
      description: "Read-only: the live egress routes (with the Anthropic API server-tool switches, routes.server_tools), pipelock allowlist, approved agent Dockerfile and pending proposals of this bottle.",
      input: z.strictObject({}),
      annotations: { readOnlyHint: true, idempotentHint: true },
      async run() {
        const current = await sup.current();
        const pending = [];
        for (const id of await sup.pendingIds()) {
          const p = await sup.proposal(id);
          if (p) pending.push({ id: p.id, kind: p.change.kind, count: p.count, created_at: p.createdAt });
        }
        const view = {
          bottle: sup.settings.SUPERVISE_BOTTLE,
          routes: current.routes,
          pipelock_allowlist: effectiveAllowlist(current.routes, current.policy),
          extra_allowlist: current.policy.pipelock_allowlist,
          capability_dockerfile: current.dockerfile,
          pending,
          ...(current.problems.length ? { problems: current.problems } : {}),
        };
        return text(JSON.stringify(view, null, 2), view);
      },
    },
    {
      name: TOOL_NAMES.await,
      title: "Wait for a pending proposal's decision",
      description: "Resume waiting for the operator's decision on a proposal made earlier (for example after a cut-off call).",
      input: z.strictObject({ proposal_id: ProposalIdSchema.describe('The id, like "p-1a2b3c4d".') }),
      async run(args, extra) {
        const id = ProposalIdSchema.safeParse(args?.proposal_id);
        const proposal = id.success ? await sup.proposal(id.data) : undefined;
        if (!proposal) throw new Error(`unknown proposal id "${args?.proposal_id}"`);
        const decision = await sup.decisionFor(proposal.id);
        return decision ? decisionResult(proposal, decision) : waitFor(sup, proposal, false, extra);
      },
    },
  ];
}

/** A fresh MCP server (stateless streamable HTTP: one per request) over the shared Supervisor. */
export function createMcpServer(sup: Supervisor): Server {
  const server = new Server({ name: "claude-bottle-supervise", version: VERSION }, { capabilities: { tools: {}, logging: {} } });
  const defs = tools(sup);
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: defs.map((d) => ({
      name: d.name,
      title: d.title,
      description: d.description,
      inputSchema: z.toJSONSchema(d.input, { target: "draft-7", io: "input" }) as Tool["inputSchema"],
      ...(d.annotations ? { annotations: d.annotations } : {}),
    })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const def = defs.find((d) => d.name === request.params.name);
    try {
      if (!def) throw new Error(`Tool ${request.params.name} not found`);
      return await def.run(request.params.arguments ?? {}, { ...extra, _meta: request.params._meta ?? extra._meta } as Extra);
    } catch (err) {
      return text(err instanceof Error ? err.message : String(err), undefined, true);
    }
  });
  return server;
}
