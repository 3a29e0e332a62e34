// The LLM channel's policy, as pure functions: a Messages API request in, allow or refuse out.
// The Anthropic API runs server tools on Anthropic's infrastructure (web_fetch, web_search,
// code execution, the MCP connector, URL sources of images and documents): what they send
// leaves from outside the bottle, through the one host every bottle must allow. Egress is the
// only component that sees these requests in plaintext (pipelock passes LLM hosts through),
// so it reads them. Field names follow the API's own reference: the server tools, web fetch
// tool, MCP connector and code execution tool pages (platform.claude.com/docs) and the
// generated types of the official Python SDK (src/anthropic/types/beta/message_create_params.py,
// beta_tool_union_param.py, beta_content_block_param.py).
//
// Rules (the first that fails is the reason reported):
//  1. On an LLM route (a route with a `role`, or an LLM API host), a request with a body to
//     the API's /v1/ namespace is checked; only the Messages endpoints (/v1/messages,
//     /v1/messages/count_tokens, /v1/messages/batches) are read, any other /v1/ endpoint with
//     a body (Files, Skills, Agents, Sessions…: some run tools server-side) is refused unread.
//  2. The body is read up to LLM_BODY_CAP, its Content-Encoding undone, parsed as strict JSON
//     (llm-body.ts). Top-level fields egress does not know are refused (fail closed).
//  3. anthropic-beta tokens that unlock a switched-off tool family are refused.
//  4. Each entry of `tools` is classified by its `type` family (the dated suffix is free, so
//     web_search_20260209 and web_search_20250305 are the same family); an unknown type is
//     refused with the type named. web_search and code execution follow the switches;
//     web_fetch needs allowed_domains whose every host (subdomains included, as the API
//     reads them) a route admits for any GET; the MCP connector needs every mcp_servers URL
//     admitted by a route for POST; a `container` needs code execution.
//  5. Anywhere in messages and system (tool_result contents included; client tool_use inputs
//     excepted, the API never acts on them): a tool definition is refused (tools live in
//     `tools` only), a server_tool_use replay must name a known, allowed tool (a web_fetch
//     replay's URL is checked), container_upload needs code execution, and every `source`
//     must be inline (base64, text, content, file) or a URL a route admits for GET.
//  6. tool_choice's type must be one the API defines.
// Egress refuses, never rewrites: what was checked is byte-for-byte what the API receives.
import { LLM_API_HOSTS } from "../../contracts/pipelock.ts";
import { SERVER_TOOLS_TOOL } from "../../contracts/proposals.ts";
import type { Route } from "../../contracts/routes.ts";

/** The route a refusal suggests, in the shorthand a proposal takes (restrictions left out = any). */
type SuggestedRoute = { host: string };
import type { ServerTools, ServerToolSwitch } from "../../contracts/server-tools.ts";
import { ambiguousPath, findRoute, parseHost, pathAllowed, splitHostPort, type EgressRequest } from "./decide.ts";
import { LLM_BODY_CAP, decodeBody, parseStrictJson, type BodyProblem } from "./llm-body.ts";

export interface LlmPolicy {
  routes: readonly Route[];
  serverTools: ServerTools;
  /** The supervise tool that proposes routes (EGRESS_SUPERVISE_TOOL); unset = supervise is off, no how-to-ask. */
  superviseTool?: string;
}

export const LLM_DENY_REASONS = ["llm_endpoint", "llm_body_too_large", "llm_body", "llm_ambiguous", "llm_unknown", "llm_server_tool", "llm_host"] as const;
export type LlmDenyReason = (typeof LLM_DENY_REASONS)[number];

export interface LlmDeny {
  action: "deny";
  status: 400 | 403 | 413;
  reason: LlmDenyReason;
  /** The Anthropic API's error type for the status. */
  errorType: "invalid_request_error" | "permission_error" | "request_too_large";
  /** What was refused (a tool type, a field, a host): the audit line's detail. */
  subject: string;
  message: string;
  /** The supervise call that would make the request pass: the tool's exact arguments, or the route to add to the full routes document. */
  howToAsk?: { tool: string; arguments: Record<string, unknown> } | { tool: string; route: SuggestedRoute };
}

export type LlmVerdict = { action: "allow" } | LlmDeny;

export type LlmEndpoint = "messages" | "batches";

// ---------------------------------------------------------------------------------------------
// Which requests are read

type Headers = EgressRequest["headers"];

function headerList(headers: Headers, name: string): string[] {
  const v = headers[name];
  return v === undefined ? [] : typeof v === "string" ? [v] : [...v];
}

/** A route the Anthropic API is reached through: it carries a role, or its host is an LLM API host. */
export function isLlmRoute(route: Route, host: string): boolean {
  return route.role !== undefined || (LLM_API_HOSTS as readonly string[]).includes(host);
}

function hasBody(headers: Headers): boolean {
  const length = headerList(headers, "content-length")[0];
  return headerList(headers, "transfer-encoding").length > 0 || (length !== undefined && length.trim() !== "0");
}

/**
 * What egress does with an allowed request before it goes upstream: pass it (its body streams
 * through unread), read its body for the guard, or refuse it unread (another /v1/ endpoint).
 * Paths are compared case-insensitively and without a trailing slash: the API may be more
 * lenient than egress, never the other way round.
 */
export type LlmGate = "pass" | { action: "read"; endpoint: LlmEndpoint } | LlmDeny;

export function llmGate(route: Route, host: string, path: string, headers: Headers): LlmGate {
  if (!isLlmRoute(route, host) || !hasBody(headers)) return "pass";
  const p = path.toLowerCase().replace(/\/+$/, "");
  if (p === "/v1/messages" || p === "/v1/messages/count_tokens") return { action: "read", endpoint: "messages" };
  if (p === "/v1/messages/batches") return { action: "read", endpoint: "batches" };
  if (p === "/v1" || p.startsWith("/v1/")) {
    return deny(403, "llm_endpoint", path, `${path} is an Anthropic API endpoint egress does not check (only the Messages endpoints are read); a request to it with a body is refused, as some run tools or agents on Anthropic's infrastructure, outside the bottle.`);
  }
  return "pass";
}

// ---------------------------------------------------------------------------------------------
// Refusals

const ERROR_TYPE = { 400: "invalid_request_error", 403: "permission_error", 413: "request_too_large" } as const;

function deny(status: LlmDeny["status"], reason: LlmDenyReason, subject: string, why: string, howToAsk?: LlmDeny["howToAsk"]): LlmDeny {
  const d: LlmDeny = { action: "deny", status, reason, errorType: ERROR_TYPE[status], subject, message: `claude-bottle egress refused this request: ${why}` };
  if (howToAsk) {
    d.howToAsk = howToAsk;
    d.message +=
      "arguments" in howToAsk
        ? ` To ask the operator, call the supervise tool ${howToAsk.tool} with ${JSON.stringify(howToAsk.arguments)} and a justification.`
        : ` To ask the operator, call the supervise tool ${howToAsk.tool} with the FULL routes document (start from get_current_config) plus the route ${JSON.stringify(howToAsk.route)}, and a justification.`;
  }
  return d;
}

export function bodyDeny(p: BodyProblem): LlmDeny {
  switch (p.kind) {
    case "too_large":
      return deny(413, "llm_body_too_large", "body", `${p.detail}; egress reads at most ${LLM_BODY_CAP} bytes of an LLM request (the Messages API's own limit) to check it.`);
    case "ambiguous":
      return deny(403, "llm_ambiguous", "body", `${p.detail}. JSON parsers disagree on which one wins, so egress cannot know what the API would read.`);
    case "encoding":
      return deny(400, "llm_body", "content-encoding", `${p.detail}.`);
    case "invalid":
      return deny(400, "llm_body", "body", `${p.detail}.`);
  }
}

function switchedOff(sw: ServerToolSwitch, subject: string, policy: LlmPolicy): LlmDeny {
  return deny(
    403,
    "llm_server_tool",
    subject,
    `it uses ${subject}, which runs on Anthropic's infrastructure, outside the bottle, and this bottle's policy switches it off (server_tools.${sw}: false).`,
    policy.superviseTool ? { tool: SERVER_TOOLS_TOOL, arguments: { server_tools: { [sw]: true } } } : undefined,
  );
}

function unknown(what: string, subject: string): LlmDeny {
  return deny(403, "llm_unknown", subject, `${what} "${subject}" is unknown to egress, which refuses what it cannot classify on the LLM channel (fail closed). Leave it out; the operator cannot switch it on until claude-bottle's LLM guard knows it.`);
}

function malformed(what: string): LlmDeny {
  return deny(400, "llm_body", what, `${what} is not shaped as the Messages API defines it.`);
}

function notRouted(subject: string, host: string, why: string, policy: LlmPolicy, route?: SuggestedRoute): LlmDeny {
  return deny(
    403,
    "llm_host",
    `${subject} ${host}`,
    `${subject} would have Anthropic's servers reach ${host}, ${why}. The API may reach on this bottle's behalf only what the agent itself could: what its egress routes admit.`,
    policy.superviseTool && route ? { tool: policy.superviseTool, route } : undefined,
  );
}

// ---------------------------------------------------------------------------------------------
// Hosts the API may reach: what the routes let the agent reach itself

function admitsEverywhere(route: Route, method: string): boolean {
  return (!route.path_allowlist || route.path_allowlist.includes("/")) && (!route.methods || (route.methods as readonly string[]).includes(method));
}

/**
 * A web_fetch allowed_domains entry admits its host and every subdomain (API docs: "example.com
 * covers docs.example.com"), at any path: every name in that tree must be routed, for GET, at
 * any path — the entry's own path is narrower than that, so it is not consulted.
 */
function domainTreeProblem(domain: string, routes: readonly Route[]): { why: string; route?: SuggestedRoute } | undefined {
  const own = findRoute(domain, routes);
  if (own < 0) return { why: "which no egress route allows", route: openRoute(domain) };
  if (!admitsEverywhere(routes[own]!, "GET")) return { why: `but the route for ${routes[own]!.host} admits only some paths or methods` };
  const wildcards = routes.filter((r) => r.host.startsWith("*.") && (domain === r.host.slice(2) || domain.endsWith(r.host.slice(1))) && admitsEverywhere(r, "GET"));
  if (!wildcards.length) return { why: `and every subdomain of it (allowed_domains admit subdomains), which no wildcard route (*.${domain} or wider) admits for GET at any path`, route: openRoute(`*.${domain}`) };
  const narrow = routes.find((r) => {
    const h = r.host.startsWith("*.") ? r.host.slice(2) : r.host;
    return (h === domain || h.endsWith("." + domain)) && !admitsEverywhere(r, "GET");
  });
  return narrow ? { why: `but the route for ${narrow.host} admits only some paths or methods` } : undefined;
}

const openRoute = (host: string): SuggestedRoute => ({ host });

const URL_RE = /^(https?):\/\/([^/?#\\@\s]*)([^#\\\s]*)$/i;

/**
 * Why no route admits `method url` for the agent itself (and the route that would), or
 * undefined when one does. A URL not spelled plainly is refused, never normalised.
 */
export function urlProblem(url: unknown, method: string, routes: readonly Route[]): { host: string; why: string; route?: SuggestedRoute } | undefined {
  if (typeof url !== "string") return { host: "?", why: "but the URL is not a string" };
  const m = URL_RE.exec(url);
  const hp = m ? splitHostPort(m[2]!) : undefined;
  const ph = hp ? parseHost(hp.host) : undefined;
  if (!m || !hp || !ph || ph.kind !== "name") return { host: JSON.stringify(url.slice(0, 100)), why: "but the URL is not spelled plainly (scheme://host/path, a DNS name, no userinfo, backslash, space or fragment)" };
  const scheme = m[1]!.toLowerCase();
  if (hp.port !== undefined && hp.port !== (scheme === "https" ? 443 : 80)) return { host: ph.name, why: `on port ${hp.port}, which egress never allows` };
  const rest = m[3]!;
  const path = rest.startsWith("/") ? rest.split("?", 1)[0]! : "/";
  const amb = ambiguousPath(path);
  if (amb) return { host: ph.name, why: `but its path is ambiguous (${amb})` };
  const i = findRoute(ph.name, routes);
  if (i < 0) return { host: ph.name, why: "which no egress route allows", route: openRoute(ph.name) };
  const r = routes[i]!;
  const pathOk = !r.path_allowlist || pathAllowed(path, r.path_allowlist);
  const methodOk = !r.methods || (r.methods as readonly string[]).includes(method);
  if (!pathOk || !methodOk) {
    const widened: Route = { ...r };
    if (!pathOk) widened.path_allowlist = [...r.path_allowlist!, path];
    if (!methodOk) widened.methods = [...r.methods!, method as NonNullable<Route["methods"]>[number]];
    return { host: ph.name, why: `but its route does not allow ${method} ${path}`, route: widened };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Classification

type Family = "client" | "web_search" | "web_fetch" | "code_execution" | "mcp_toolset" | "tool_search" | "advisor";

/**
 * Tool `type` families: the family name plus any date. `client` tools run in the client (the
 * agent's own process); tool_search and advisor run at Anthropic but only read the request.
 */
const TOOL_TYPES: readonly [RegExp, Family][] = [
  [/^custom$/, "client"],
  [/^(?:bash|text_editor|computer|memory)_\d{8}$/, "client"],
  [/^web_search_\d{8}$/, "web_search"],
  [/^web_fetch_\d{8}$/, "web_fetch"],
  [/^code_execution_\d{8}$/, "code_execution"],
  [/^mcp_toolset$/, "mcp_toolset"],
  [/^tool_search_tool_(?:regex|bm25)(?:_\d{8})?$/, "tool_search"],
  [/^advisor_\d{8}$/, "advisor"],
];

/** Names a server_tool_use block carries (a replayed call the API may resume on continuation). */
const SERVER_TOOL_NAMES: Readonly<Record<string, Family>> = {
  web_search: "web_search",
  web_fetch: "web_fetch",
  code_execution: "code_execution",
  bash_code_execution: "code_execution",
  text_editor_code_execution: "code_execution",
  tool_search_tool_regex: "tool_search",
  tool_search_tool_bm25: "tool_search",
  advisor: "advisor",
};

/** anthropic-beta families that unlock a switched tool family; any other beta changes no reach. */
const BETA_SWITCHES: readonly [RegExp, ServerToolSwitch][] = [
  [/^code-execution-/, "code_execution"],
  [/^skills-/, "code_execution"],
];

/**
 * Messages API request fields (message_create_params.py), plus what the pinned Claude Code sends
 * that the SDK does not list yet (`diagnostics`: {previous_message_id}, with the
 * cache-diagnosis beta); anything else is refused. A Claude Code upgrade that sends a new field
 * is refused naming it until it is classified here (the e2e functional checks run the pin).
 */
const MESSAGES_FIELDS = new Set([
  "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_k", "top_p",
  "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management", "output_config",
  "output_format", "inference_geo", "speed", "cache_control", "user_profile_id", "diagnostics",
]);
const BATCH_FIELDS = new Set(["requests"]);
const BATCH_REQUEST_FIELDS = new Set(["custom_id", "params"]);
const TOOL_CHOICE_TYPES = new Set(["auto", "any", "tool", "none"]);
/** Sources the API reads from the request or the Files API, not from a URL. */
const INLINE_SOURCES = new Set(["base64", "text", "content", "file"]);
/** Conversation nesting egress follows; deeper is refused (no real request comes close). */
const MAX_DEPTH = 64;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function familyOf(type: string): Family | undefined {
  return TOOL_TYPES.find(([re]) => re.test(type))?.[1];
}

const SWITCHED: Partial<Record<Family, ServerToolSwitch>> = { web_search: "web_search", code_execution: "code_execution" };

// ---------------------------------------------------------------------------------------------
// The checks

function checkTool(tool: unknown, i: number, policy: LlmPolicy): LlmDeny | undefined {
  if (!isObject(tool)) return malformed(`tools[${i}]`);
  if (tool.type !== undefined && typeof tool.type !== "string") return malformed(`tools[${i}].type`);
  const type = (tool.type as string | undefined) ?? "custom";
  const family = familyOf(type);
  if (!family) return unknown("the tool type", type);
  const sw = SWITCHED[family];
  if (sw && !policy.serverTools[sw]) return switchedOff(sw, type, policy);
  if (family === "web_fetch") {
    const domains = tool.allowed_domains;
    if (!Array.isArray(domains) || domains.length === 0) {
      return deny(403, "llm_host", type, `${type} without allowed_domains lets Anthropic's fetcher reach any URL that appears in the conversation, from outside the bottle. Name allowed_domains, each a host this bottle routes for GET at any path (with its subdomains).`);
    }
    for (const entry of domains) {
      const host = typeof entry === "string" && /^[a-z0-9.-]+(?:\/\S*)?$/i.test(entry) ? parseHost(entry.split("/", 1)[0]!) : undefined;
      if (!host || host.kind !== "name") return deny(403, "llm_host", `${type} allowed_domains ${JSON.stringify(entry)}`, `${type}'s allowed_domains entry ${JSON.stringify(entry)} is not a plain domain (example.com or example.com/path).`);
      const problem = domainTreeProblem(host.name, policy.routes);
      if (problem) return notRouted(`${type} (allowed_domains)`, host.name, problem.why, policy, problem.route);
    }
  }
  return undefined;
}

function checkServerToolUse(block: Record<string, unknown>, policy: LlmPolicy): LlmDeny | undefined {
  const name = block.name;
  if (typeof name !== "string") return malformed("a server_tool_use block's name");
  const family = Object.hasOwn(SERVER_TOOL_NAMES, name) ? SERVER_TOOL_NAMES[name]! : undefined;
  if (!family) return unknown("the server tool", name);
  const sw = SWITCHED[family];
  if (sw && !policy.serverTools[sw]) return switchedOff(sw, `a ${name} call (server_tool_use)`, policy);
  if (family === "web_fetch") {
    const url = isObject(block.input) ? block.input.url : undefined;
    const p = urlProblem(url, "GET", policy.routes);
    if (p) return notRouted("a web_fetch call (server_tool_use)", p.host, p.why, policy, p.route);
  }
  return undefined;
}

/** Walk conversation content (messages, system, nested tool_result/document contents). */
function checkContent(node: unknown, policy: LlmPolicy, depth: number): LlmDeny | undefined {
  if (depth > MAX_DEPTH) return deny(400, "llm_body", "messages", `the conversation nests deeper than ${MAX_DEPTH} levels.`);
  if (Array.isArray(node)) {
    for (const n of node) {
      const d = checkContent(n, policy, depth + 1);
      if (d) return d;
    }
    return undefined;
  }
  if (!isObject(node)) return undefined;
  const type = node.type;
  if (typeof type === "string") {
    if (familyOf(type) && type !== "custom") return deny(403, "llm_unknown", type, `a tool definition (type "${type}") sits inside the conversation; tools are declared in the request's tools list only.`);
    // A client's tool call: the API never acts on its input.
    if (type === "tool_use") return undefined;
    if (type === "server_tool_use") return checkServerToolUse(node, policy);
    if (type === "container_upload" && !policy.serverTools.code_execution) return switchedOff("code_execution", "container_upload (a file for the code execution container)", policy);
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === "input" && (type === "mcp_tool_use" || type === "server_tool_use")) continue;
    if (key === "source" && isObject(value)) {
      const st = value.type;
      if (st === "url") {
        const p = urlProblem(value.url, "GET", policy.routes);
        if (p) return notRouted(`a URL ${typeof type === "string" ? type : "content"} source`, p.host, p.why, policy, p.route);
        continue;
      }
      if (typeof st !== "string" || !INLINE_SOURCES.has(st)) return unknown("the content source type", String(st));
    }
    if (typeof value === "object" && value !== null) {
      const d = checkContent(value, policy, depth + 1);
      if (d) return d;
    }
  }
  return undefined;
}

/** One Messages API request body (also count_tokens, and each batch entry's params). Pure. */
export function guardMessages(params: unknown, betas: readonly string[], policy: LlmPolicy): LlmVerdict {
  if (!isObject(params)) return malformed("the request body");
  for (const key of Object.keys(params)) if (!MESSAGES_FIELDS.has(key)) return unknown("the request field", key);
  for (const beta of betas) {
    const sw = BETA_SWITCHES.find(([re]) => re.test(beta))?.[1];
    if (sw && !policy.serverTools[sw]) return switchedOff(sw, `the beta ${beta}`, policy);
  }
  if (params.tools !== undefined && params.tools !== null) {
    if (!Array.isArray(params.tools)) return malformed("tools");
    for (let i = 0; i < params.tools.length; i++) {
      const d = checkTool(params.tools[i], i, policy);
      if (d) return d;
    }
  }
  if (params.mcp_servers !== undefined && params.mcp_servers !== null) {
    if (!Array.isArray(params.mcp_servers)) return malformed("mcp_servers");
    for (const [i, server] of params.mcp_servers.entries()) {
      if (!isObject(server)) return malformed(`mcp_servers[${i}]`);
      if (server.type !== "url") return unknown("the MCP server type", String(server.type));
      const p = urlProblem(server.url, "POST", policy.routes);
      if (p) return notRouted(`the MCP connector (mcp_servers[${i}])`, p.host, p.why, policy, p.route);
    }
  }
  if (params.container !== undefined && params.container !== null && !policy.serverTools.code_execution) return switchedOff("code_execution", "a code execution container (container)", policy);
  if (params.tool_choice !== undefined && params.tool_choice !== null) {
    if (!isObject(params.tool_choice)) return malformed("tool_choice");
    const t = params.tool_choice.type;
    if (typeof t !== "string" || !TOOL_CHOICE_TYPES.has(t)) return unknown("the tool_choice type", String(t));
  }
  return checkContent(params.system, policy, 0) ?? checkContent(params.messages, policy, 0) ?? { action: "allow" };
}

/** A Batches API body: every entry's params is a Messages request. */
function guardBatch(body: unknown, betas: readonly string[], policy: LlmPolicy): LlmVerdict {
  if (!isObject(body) || !Array.isArray(body.requests)) return malformed("the batch body");
  for (const key of Object.keys(body)) if (!BATCH_FIELDS.has(key)) return unknown("the batch field", key);
  for (const entry of body.requests) {
    if (!isObject(entry)) return malformed("a batch request");
    for (const key of Object.keys(entry)) if (!BATCH_REQUEST_FIELDS.has(key)) return unknown("the batch request field", key);
    const v = guardMessages(entry.params, betas, policy);
    if (v.action === "deny") return v;
  }
  return { action: "allow" };
}

/** anthropic-beta tokens, however many headers and commas carry them. */
export function betaTokens(headers: Headers): string[] {
  return headerList(headers, "anthropic-beta").join(",").split(",").map((b) => b.trim().toLowerCase()).filter(Boolean);
}

/** The whole check of a read body: decode, parse strictly, guard. Pure. */
export function guardBody(endpoint: LlmEndpoint, headers: Headers, raw: Buffer, policy: LlmPolicy): LlmVerdict {
  const decoded = decodeBody(raw, headerList(headers, "content-encoding"), LLM_BODY_CAP);
  if (!decoded.ok) return bodyDeny(decoded.problem);
  const parsed = parseStrictJson(decoded.body);
  if (!parsed.ok) return bodyDeny(parsed.problem);
  const betas = betaTokens(headers);
  return endpoint === "batches" ? guardBatch(parsed.value, betas, policy) : guardMessages(parsed.value, betas, policy);
}

/** The refusal's JSON body: the Anthropic API's error shape (what Claude Code reads), plus egress's own detail. */
export function llmErrorBody(d: LlmDeny): Record<string, unknown> {
  return {
    type: "error",
    error: { type: d.errorType, message: d.message },
    claude_bottle: { blocked: true, reason: d.reason, subject: d.subject, ...(d.howToAsk ? { how_to_ask: d.howToAsk } : {}) },
  };
}
