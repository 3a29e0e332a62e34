// Proposals: what the agent asks the operator for, and the decision it gets. The supervise
// sidecar writes proposals, the operator CLI writes decisions; both read both with these
// schemas (the files themselves are store/proposals.ts).
//
// PROPOSAL_KINDS is the one registry of proposal kinds. An entry is everything a kind is:
// the change it stores, what makes two proposals the same, what approving it does to the
// live documents, the stack config key that keeps it across `pulumi up`, and the MCP tool
// (with the schema the agent sees). Adding a kind is adding an entry.
import { z } from "zod";
import { canonicalJson, sha256 } from "./hash.ts";
import { ExtraAllowlistSchema, type LivePolicy } from "./policy.ts";
import { allowsAnyMethod, allowsAnyPath, RouteSchema, RoutesDocumentSchema, parseRoutesDocument, type Route, type RoutesDocument } from "./routes.ts";
import { SERVER_TOOL_SWITCHES, ServerToolsChangeSchema, ServerToolsSchema, describeServerTools, withSwitches } from "./server-tools.ts";
import { ConfigError } from "./validation.ts";

export const MAX_DOCKERFILE_BYTES = 64 * 1024;
export const MAX_JUSTIFICATION_CHARS = 4000;
/** Merged requests kept per proposal (the count keeps growing; only the newest are stored). */
export const MAX_REQUESTS_KEPT = 50;
/** Stack config namespace of every persisted approval (`claude-bottle:<key>`). */
export const STACK_CONFIG_NAMESPACE = "claude-bottle";

/** The live documents an approval can change, as a plan sees them. */
export interface LiveState {
  routes: RoutesDocument;
  /** The live policy document: the extra pipelock allowlist. */
  policy: LivePolicy;
  /** The last approved capability Dockerfile; null: the image's own. */
  dockerfile: string | null;
}

export interface KindPlan {
  /** The live documents after approval. */
  next: LiveState;
  /** Human-readable lines: what changes. */
  summary: string[];
  /** Places where the live state moved since the proposal and the proposal touches the same entry. */
  conflicts: string[];
}

export interface ProposalKindSpec<C extends { kind: string }, A extends z.ZodRawShape> {
  /** The change as stored in a proposal: what is asked for, and the live value it started from (`base`). */
  change: z.ZodType<C>;
  /** The requested end state: two pending proposals wanting the same are merged into one. */
  wanted(change: C): unknown;
  /** What approving `change` makes of the live documents (rebased onto them when they moved). */
  plan(change: C, live: LiveState): KindPlan;
  /** Key in the claude-bottle stack config namespace that keeps the approval across `pulumi up`. */
  configKey: string;
  /** The value persisted under configKey; `dockerfileFile` is where the store keeps an approved Dockerfile. */
  configValue(next: LiveState, stored: { dockerfileFile: string }): unknown;
  /** Approval takes effect only after the agent image is rebuilt (`pulumi up`), not live. */
  rebuild: boolean;
  tool: {
    name: string;
    title: string;
    description: string;
    /** The tool's arguments besides the justification; the agent sees them as JSON Schema. */
    input: A;
    /** The change to propose, or undefined when the live state already is what was asked for. */
    toChange(args: z.output<z.ZodObject<A>>, live: LiveState): C | undefined;
  };
}

const kind = <C extends { kind: string }, A extends z.ZodRawShape>(spec: ProposalKindSpec<C, A>) => spec;

function describeRoute(r: Route): string {
  const parts = [r.host];
  parts.push(allowsAnyMethod(r) ? "any method" : r.methods.join(","));
  parts.push(allowsAnyPath(r) ? "any path" : r.path_allowlist.join(" "));
  if (r.auth) parts.push(`auth ${r.auth.scheme} from $${r.auth.token_ref}`);
  return parts.join(" ");
}

/** Apply base → proposed onto live, route by route (routes are keyed by host). */
export function rebaseRoutes(base: RoutesDocument, proposed: RoutesDocument, live: RoutesDocument) {
  const index = (d: RoutesDocument) => new Map(d.routes.map((r) => [r.host, r]));
  const B = index(base);
  const P = index(proposed);
  const L = index(live);
  const same = (a?: Route, b?: Route) => canonicalJson(a ?? null) === canonicalJson(b ?? null);
  const conflicts: string[] = [];
  const summary: string[] = [];
  const result = new Map<string, Route | undefined>();
  const hosts = [...new Set([...P.keys(), ...L.keys(), ...B.keys()])];
  for (const h of hosts) {
    const b = B.get(h), p = P.get(h), l = L.get(h);
    if (same(b, p)) {
      result.set(h, l);
      continue;
    }
    if (!same(l, b) && !same(l, p)) conflicts.push(`route ${h} changed since the proposal was made (live: ${l ? describeRoute(l) : "absent"})`);
    result.set(h, p);
    if (same(l, p)) continue;
    if (!l && p) summary.push(`+ route ${describeRoute(p)}`);
    else if (l && !p) summary.push(`- route ${describeRoute(l)}`);
    else if (l && p) summary.push(`~ route ${describeRoute(l)}  →  ${describeRoute(p)}`);
  }
  const order = [...P.keys(), ...live.routes.map((r) => r.host).filter((h) => !P.has(h))];
  const routes = order.flatMap((h) => (result.get(h) ? [result.get(h)!] : []));
  // The switches are not the routes kind's: whatever the proposal carried, the live ones stay.
  return { routes: parseRoutesDocument({ version: 1, routes, server_tools: live.server_tools }, "resulting routes document"), conflicts, summary };
}

function logicalLines(text: string): string[] {
  return text.replace(/\\\r?\n/g, " ").split(/\r?\n/);
}

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

/** The server_tools kind's MCP tool: egress's refusals and the routes tool's description name it too. */
export const SERVER_TOOLS_TOOL = "propose_server_tools";

export const PROPOSAL_KINDS = {
  egress_routes: kind({
    change: z.strictObject({
      kind: z.literal("egress_routes"),
      /** The full new routes document the agent asks for. */
      routes: RoutesDocumentSchema,
      /** The live routes document when the proposal was made (approval applies base → routes onto the live one). */
      base: RoutesDocumentSchema,
    }),
    wanted: (c) => c.routes,
    plan: (c, live) => {
      const { routes, conflicts, summary } = rebaseRoutes(c.base, c.routes, live.routes);
      return { next: { ...live, routes }, conflicts, summary: summary.length ? summary : ["no change: the live routes already match"] };
    },
    configKey: "routes",
    // The switches persist under the server_tools kind's own key.
    configValue: (next) => ({ version: next.routes.version, routes: next.routes.routes }),
    rebuild: false,
    tool: {
      name: "propose_egress_routes",
      title: "Propose an egress route change",
      description:
        "Ask the operator to change which hosts, paths and methods you may reach over HTTP(S). Send the FULL new routes document " +
        "(start from get_current_config's routes and edit it). host is an exact name or *.example.com; path_allowlist entries are path prefixes starting with /. " +
        `The document's server_tools are not changed by this tool (use ${SERVER_TOOLS_TOOL}). ` +
        "The call waits until the operator approves (the change is then live) or rejects (with a reason). Identical pending proposals are merged.",
      input: {
        routes: z
          .union([RoutesDocumentSchema, z.array(RouteSchema)])
          .describe("The full new routes document {version: 1, routes: [...]} (a bare array of routes is accepted too)."),
      },
      toChange: (args, live) => {
        const asked = Array.isArray(args.routes) ? { version: 1 as const, routes: args.routes } : args.routes;
        const routes = parseRoutesDocument({ ...asked, server_tools: live.routes.server_tools }, "proposed routes document");
        // A partial document (just the one route the 403 named) would drop every other
        // route, the agent's own LLM route included: refuse that before the operator sees it.
        const dropped = live.routes.routes.filter((r) => r.role && !routes.routes.some((n) => n.host === r.host));
        if (dropped.length) {
          throw new ConfigError("proposed routes document", [
            `it drops the route for ${dropped.map((r) => `${r.host} (role ${r.role})`).join(", ")}; send the FULL new document: start from get_current_config's routes and add or change entries`,
          ]);
        }
        return canonicalJson(routes) === canonicalJson(live.routes) ? undefined : { kind: "egress_routes" as const, routes, base: live.routes };
      },
    },
  }),

  pipelock_allowlist: kind({
    change: z.strictObject({
      kind: z.literal("pipelock_allowlist"),
      /** The full new extra allowlist. */
      allowlist: ExtraAllowlistSchema,
      base: ExtraAllowlistSchema,
    }),
    wanted: (c) => c.allowlist,
    plan: (c, live) => {
      const current = live.policy.pipelock_allowlist;
      const added = c.allowlist.filter((h) => !c.base.includes(h));
      const removed = c.base.filter((h) => !c.allowlist.includes(h));
      const conflicts = [...added, ...removed].filter((h) => c.base.includes(h) !== current.includes(h)).map((h) => `allowlist entry ${h} changed since the proposal was made`);
      const extra = [...new Set([...current.filter((h) => !removed.includes(h)), ...added])].sort();
      const summary = [
        ...added.filter((h) => !current.includes(h)).map((h) => `+ pipelock allowlist ${h}`),
        ...removed.filter((h) => current.includes(h)).map((h) => `- pipelock allowlist ${h}`),
      ];
      return {
        next: { ...live, policy: { ...live.policy, pipelock_allowlist: extra } },
        conflicts,
        summary: summary.length ? summary : ["no change: the live allowlist already matches"],
      };
    },
    configKey: "pipelockAllowlist",
    configValue: (next) => next.policy.pipelock_allowlist,
    rebuild: false,
    tool: {
      name: "propose_pipelock_allowlist",
      title: "Propose a pipelock allowlist change",
      description:
        "Ask the operator to change pipelock's extra allowlist: the hosts the upstream firewall lets through beyond the egress route hosts. " +
        "Send the FULL new extra allowlist (see get_current_config's extra_allowlist). Waits for the decision.",
      input: {
        allowlist: ExtraAllowlistSchema.describe("The full new extra allowlist: bare host names (*.example.com allowed)."),
      },
      toChange: (args, live) =>
        canonicalJson(args.allowlist) === canonicalJson(live.policy.pipelock_allowlist)
          ? undefined
          : { kind: "pipelock_allowlist" as const, allowlist: args.allowlist, base: live.policy.pipelock_allowlist },
    },
  }),

  server_tools: kind({
    change: z.strictObject({
      kind: z.literal("server_tools"),
      /** The full new switches. */
      server_tools: ServerToolsSchema,
      /** The live switches when the proposal was made. */
      base: ServerToolsSchema,
    }),
    wanted: (c) => c.server_tools,
    plan: (c, live) => {
      // Switch by switch: only the ones the proposal changed are applied onto the live ones.
      const current = live.routes.server_tools;
      const next = withSwitches(current, Object.fromEntries(SERVER_TOOL_SWITCHES.filter((k) => c.server_tools[k] !== c.base[k]).map((k) => [k, c.server_tools[k]])));
      const summary = SERVER_TOOL_SWITCHES.filter((k) => next[k] !== current[k]).map((k) => `~ server tool ${k}: ${current[k] ? "on" : "off"} → ${next[k] ? "on" : "off"}`);
      return {
        next: { ...live, routes: parseRoutesDocument({ ...live.routes, server_tools: next }, "resulting routes document") },
        conflicts: [],
        summary: summary.length ? summary : [`no change: the live server tools already are ${describeServerTools(current)}`],
      };
    },
    configKey: "serverTools",
    configValue: (next) => next.routes.server_tools,
    rebuild: false,
    tool: {
      name: SERVER_TOOLS_TOOL,
      title: "Propose a change to the Anthropic API server tools this bottle may use",
      description:
        "Ask the operator to switch server tools of the Anthropic API on or off for this bottle (they run on Anthropic's infrastructure, outside the bottle; " +
        `egress refuses API requests that use a switched-off one). Send only the switches to change, e.g. {"web_search": true}. ` +
        "web_fetch, the MCP connector (mcp_servers) and URL image/document sources have no switch: they may reach only hosts this bottle routes " +
        "(ask for a route with propose_egress_routes). Waits for the decision.",
      input: {
        server_tools: ServerToolsChangeSchema.describe("The switches to change (the others keep their live value)."),
      },
      toChange: (args, live) => {
        const current = live.routes.server_tools;
        const next = withSwitches(current, args.server_tools);
        return canonicalJson(next) === canonicalJson(current) ? undefined : { kind: "server_tools" as const, server_tools: next, base: current };
      },
    },
  }),

  capability: kind({
    change: z.strictObject({
      kind: z.literal("capability"),
      /** The full new agent Dockerfile. */
      dockerfile: DockerfileSchema,
      /** The last approved Dockerfile, if any. */
      base: z.string().nullable(),
    }),
    wanted: (c) => c.dockerfile,
    plan: (c, live) => ({
      next: { ...live, dockerfile: c.dockerfile },
      conflicts: (c.base ?? null) !== live.dockerfile ? ["another capability change was approved since the proposal was made"] : [],
      summary: [live.dockerfile === c.dockerfile ? "no change: this Dockerfile is already approved" : "~ agent Dockerfile replaced (the agent image must be rebuilt)"],
    }),
    configKey: "capabilityDockerfile",
    configValue: (_next, stored) => stored.dockerfileFile,
    rebuild: true,
    tool: {
      name: "propose_capability",
      title: "Propose a capability change (new agent Dockerfile)",
      description:
        "Ask the operator for new tools in your container by proposing a complete new agent Dockerfile (first instruction FROM). " +
        "On approval the operator rebuilds the agent image and resumes this session with the same identity and transcript. Waits for the decision.",
      input: {
        dockerfile: DockerfileSchema.describe("The complete new Dockerfile text."),
      },
      toChange: (args, live) => (live.dockerfile === args.dockerfile ? undefined : { kind: "capability" as const, dockerfile: args.dockerfile, base: live.dockerfile }),
    },
  }),
};

type Kinds = typeof PROPOSAL_KINDS;
export type ProposalKind = keyof Kinds;
type ChangeOf<S> = S extends ProposalKindSpec<infer C, any> ? C : never;
export type ProposalChange = ChangeOf<Kinds[ProposalKind]>;

/** A kind's entry, for code that handles every kind alike. */
export function kindSpec(kind: ProposalKind): ProposalKindSpec<ProposalChange, z.ZodRawShape> {
  return PROPOSAL_KINDS[kind] as unknown as ProposalKindSpec<ProposalChange, z.ZodRawShape>;
}

export const PROPOSAL_KIND_NAMES = Object.keys(PROPOSAL_KINDS) as ProposalKind[];

/**
 * The key (without the `claude-bottle:` namespace) each proposal kind's approvals persist under.
 * A stack of one bottle uses the kinds' own keys (`routes`); a program of many bottles gives each
 * bottle its own (`routes.<identity>`), so approving for one never rewrites another's.
 */
export function stackConfigKeys(bottle?: string): Record<ProposalKind, string> {
  return Object.fromEntries(PROPOSAL_KIND_NAMES.map((k) => [k, bottle ? `${PROPOSAL_KINDS[k].configKey}.${bottle}` : PROPOSAL_KINDS[k].configKey])) as Record<ProposalKind, string>;
}

/** Tool names the agent sees; egress's 403 names the routes tool. */
export const TOOL_NAMES = {
  ...(Object.fromEntries(PROPOSAL_KIND_NAMES.map((k) => [k, PROPOSAL_KINDS[k].tool.name])) as { [K in ProposalKind]: Kinds[K]["tool"]["name"] }),
  current: "get_current_config",
  await: "await_decision",
} as const;

export const ProposalChangeSchema = z.discriminatedUnion(
  "kind",
  PROPOSAL_KIND_NAMES.map((k) => PROPOSAL_KINDS[k].change) as unknown as [z.ZodObject<{ kind: z.ZodLiteral<ProposalKind> }>],
) as unknown as z.ZodType<ProposalChange>;

export const ProposalIdSchema = z.string().regex(/^p-[0-9a-f]{8,32}$/, { message: 'expected a proposal id like "p-1a2b3c4d"' });

export const JustificationSchema = z
  .string()
  .trim()
  .min(1, { message: "a justification is required: say why the change is needed" })
  .max(MAX_JUSTIFICATION_CHARS, { message: `keep the justification under ${MAX_JUSTIFICATION_CHARS} characters` })
  .describe("Why the change is needed (shown to the operator).");

const IsoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: "expected an ISO date" });

export const ProposalRequestSchema = z.strictObject({ at: IsoDate, justification: z.string() });

export const ProposalSchema = z.strictObject({
  version: z.literal(1),
  id: ProposalIdSchema,
  /** Identity of the bottle (informational: the CLI trusts the directory it found the file in). */
  bottle: z.string(),
  /** Dedupe key: kind + hash of the wanted end state. Identical pending proposals share it. */
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
  /** For a change that needs a rebuild: the command that rebuilds the agent and resumes it. */
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

/** What makes two proposals "identical": kind + the requested end state (not the justification). */
export function proposalKey(change: ProposalChange): string {
  return sha256(change.kind + "\n" + canonicalJson(kindSpec(change.kind).wanted(change)));
}

export interface ApprovalPlan extends KindPlan {
  /** What the operator must read before approving (shown in bold): wildcards the approval adds. */
  warnings: string[];
  /** What approval also needs --force for (shown in bold): a credential going to a host that does not receive it today. */
  needsForce: string[];
}

/** What approving `change` would make of `live`. Throws ConfigError if the result is invalid. */
export function planChange(change: ProposalChange, live: LiveState): ApprovalPlan {
  const plan = kindSpec(change.kind).plan(change, live);
  return { ...plan, ...riskFlags(live, plan.next) };
}

/**
 * What an approval does that the operator must not miss, whatever the kind: a wildcard host it
 * adds or changes (a route or an allowlist entry), and a credential it sends to a host that does
 * not receive it today — a route that names a token_ref on a new host (an upstream that echoes
 * request headers would hand that credential back).
 */
export function riskFlags(live: LiveState, next: LiveState): { warnings: string[]; needsForce: string[] } {
  const liveRoutes = new Map(live.routes.routes.map((r) => [r.host, canonicalJson(r)]));
  const wildcard = (h: string) => `WILDCARD ${h}: matches every subdomain of ${h.slice(2)}, at any depth`;
  const warnings = [
    ...next.routes.routes.filter((r) => r.host.startsWith("*.") && liveRoutes.get(r.host) !== canonicalJson(r)).map((r) => `${wildcard(r.host)} (route: ${describeRoute(r)})`),
    ...next.policy.pipelock_allowlist.filter((h) => h.startsWith("*.") && !live.policy.pipelock_allowlist.includes(h)).map((h) => `${wildcard(h)} (pipelock allowlist)`),
  ];
  const needsForce: string[] = [];
  for (const r of next.routes.routes) {
    if (!r.auth) continue;
    const ref = r.auth.token_ref;
    const today = live.routes.routes.filter((l) => l.auth?.token_ref === ref).map((l) => l.host);
    if (today.includes(r.host)) continue;
    needsForce.push(
      `CREDENTIAL TO A NEW HOST: the token in $${ref} would be injected into requests to ${r.host}; ` +
        (today.length ? `today it goes only to ${today.join(", ")}` : "today no route sends it") +
        ` — approve with --force only if ${r.host} is meant to receive it`,
    );
  }
  return { warnings, needsForce };
}
