// The egress proxy as a real server on 127.0.0.1, with real TLS on both legs, real clients
// (curl, node's fetch, git) and an upstream that echoes what it received.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import net from "node:net";
import { TOOL_NAMES } from "../../contracts/proposals.ts";
import { AGENT_PLACEHOLDER_TOKEN } from "../../contracts/routes.ts";
import { REDACTED } from "../../sidecars/egress/redact.ts";
import { startTestUpstream, type TestUpstream } from "./helpers/https-upstream.ts";
import { agentRequest, connectThrough, proxiedAgent, proxiedFetch, rawRequest, startEgress, startFakePipelock, type Harness } from "./helpers/egress-harness.ts";
import { createTestCa } from "./helpers/tls.ts";

const run = promisify(execFile);

const ROUTES = {
  version: 1,
  routes: [
    { host: "api.test.example" },
    { host: "*.wild.test.example", path_allowlist: ["/ok"], methods: ["GET"] },
    { host: "auth.test.example", auth: { scheme: "bearer", token_ref: "TEST_OAUTH" }, role: "claude_code_oauth" },
    { host: "key.test.example", auth: { scheme: "header:x-api-key", token_ref: "TEST_API_KEY" }, role: "anthropic_api_key" },
    { host: "notoken.test.example", auth: { scheme: "token", token_ref: "TEST_ABSENT" } },
    { host: "git.test.example", path_allowlist: ["/git/"] },
    { host: "plain.test.example" },
  ],
};
const TOKENS = { TEST_OAUTH: "oauth-secret-123", TEST_API_KEY: "sk-ant-secret-456" };

let up: TestUpstream;
let eg: Harness;

test.before(async () => {
  up = await startTestUpstream();
  eg = await startEgress(up, ROUTES, { tokens: TOKENS, superviseTool: TOOL_NAMES.egress_routes });
});
test.after.always(async () => {
  await eg?.close();
  await up?.close();
});

async function curl(args: string[]): Promise<{ code: number; status: number; headers: string; body: string }> {
  const full = ["-sS", "--max-time", "20", "-D", "-", "--proxy", `http://127.0.0.1:${eg.port}`, "--cacert", eg.caFile, ...args];
  try {
    const { stdout } = await run("curl", full, { env: { PATH: process.env.PATH } });
    return parseCurl(0, stdout);
  } catch (e: any) {
    return parseCurl(e.code ?? 1, e.stdout ?? "");
  }
}
function parseCurl(code: number, out: string) {
  // With -D - the last header block precedes the body (CONNECT's 200 comes first).
  const blocks = out.split("\r\n\r\n");
  let i = 0;
  while (i < blocks.length - 1 && /^HTTP\/1\.1 200 Connection established/i.test(blocks[i]!)) i++;
  const headers = blocks[i] ?? "";
  return { code, status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(headers)?.[1] ?? 0), headers, body: blocks.slice(i + 1).join("\r\n\r\n") };
}

test.serial("curl: routed host over CONNECT reaches upstream with SNI = the route host", async (t) => {
  const r = await curl(["https://api.test.example/hello?q=1"]);
  t.is(r.status, 200, r.headers + r.body);
  const echo = JSON.parse(r.body);
  t.is(echo.url, "/hello?q=1");
  t.is(echo.headers.host, "api.test.example");
  t.is(echo.sni, "api.test.example");
  const a = eg.audit.at(-1)!;
  t.like(a, { decision: "allow", host: "api.test.example", path: "/hello", status: 200, route: 0, injected: false });
  t.false(JSON.stringify(a).includes("q=1"), "query never logged");
});

test.serial("curl: unrouted host → 403 JSON telling what was blocked and how to ask", async (t) => {
  const before = up.seen.length;
  const r = await curl(["https://nope.test.example/v1/thing"]);
  t.is(r.status, 403);
  t.regex(r.headers, /x-claude-bottle-block-reason: no_route/i);
  const body = JSON.parse(r.body);
  t.like(body, { blocked: true, reason: "no_route", host: "nope.test.example", method: "GET", path: "/v1/thing" });
  t.deepEqual(body.how_to_ask.tool, TOOL_NAMES.egress_routes);
  t.deepEqual(body.how_to_ask.route, { host: "nope.test.example" });
  t.is(up.seen.length, before, "nothing reached upstream");
});

test.serial("curl: path and method rules on a wildcard route", async (t) => {
  t.is((await curl(["https://a.wild.test.example/ok/1"])).status, 200);
  const p = await curl(["https://a.wild.test.example/nope"]);
  t.is(p.status, 403);
  t.is(JSON.parse(p.body).reason, "path_not_allowed");
  const m = await curl(["-X", "POST", "-d", "x", "https://a.wild.test.example/ok/1"]);
  t.is(JSON.parse(m.body).reason, "method_not_allowed");
  t.is((await curl(["https://wild.test.example/ok"])).status, 403, "wildcard does not match the apex");
});

test.serial("curl: ambiguous path spellings are refused, not normalised", async (t) => {
  for (const p of ["/ok/%2e%2e/x", "/ok/..%2fx", "/ok;x", "/ok//x"]) {
    const r = await curl(["--path-as-is", `https://a.wild.test.example${p}`]);
    t.is(r.status, 403, p);
    t.is(JSON.parse(r.body).reason, "ambiguous_path", p);
  }
  const r = await curl(["--path-as-is", "https://a.wild.test.example/ok/../secret"]);
  t.is(JSON.parse(r.body).reason, "ambiguous_path");
});

test.serial("CONNECT to an IP literal or another port is refused at CONNECT with a reason", async (t) => {
  for (const [target, reason] of [["127.0.0.1:443", "ip_literal"], ["2130706433:443", "ip_literal"], ["[::1]:443", "ip_literal"], ["api.test.example:8443", "port_not_allowed"]] as const) {
    const s = net.connect(eg.port, "127.0.0.1");
    const r = await rawRequest(s, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    s.destroy();
    t.is(r.status, 403, target);
    t.is(r.headers["x-claude-bottle-block-reason"], reason);
    t.is(JSON.parse(r.body).reason, reason);
  }
});

test.serial("the CONNECT target is authoritative: another Host header or SNI is refused", async (t) => {
  const before = up.seen.length;
  const s = await connectThrough(eg.port, "api.test.example", eg.ca.certPem);
  const r = await rawRequest(s, "GET / HTTP/1.1\r\nHost: auth.test.example\r\n\r\n");
  t.is(r.status, 403);
  t.is(r.headers["x-claude-bottle-block-reason"], "host_mismatch");
  s.destroy();
  // SNI naming another host (the client ignores the name mismatch, as an attacker would).
  const s2 = await connectThrough(eg.port, "api.test.example", eg.ca.certPem, { sni: "auth.test.example" });
  const r2 = await rawRequest(s2, "GET / HTTP/1.1\r\nHost: api.test.example\r\n\r\n");
  t.is(r2.headers["x-claude-bottle-block-reason"], "sni_mismatch");
  s2.destroy();
  t.is(up.seen.length, before);
});

test.serial("node fetch through the proxy: GET and POST with a body", async (t) => {
  const g = await proxiedFetch(eg.port, eg.ca.certPem, "https://api.test.example/fetch");
  t.is(g.status, 200);
  t.is((await g.json()).url, "/fetch");
  const body = "x".repeat(100_000);
  const p = await proxiedFetch(eg.port, eg.ca.certPem, "https://api.test.example/upload", { method: "POST", body });
  const echo = await p.json();
  t.is(echo.method, "POST");
  t.is(echo.bodyBytes, 100_000);
  const d = await proxiedFetch(eg.port, eg.ca.certPem, "https://blocked.example/");
  t.is(d.status, 403);
  t.is(d.headers.get("x-claude-bottle-block-reason"), "no_route");
});

test.serial("injection: placeholder Authorization is replaced by the real bearer token", async (t) => {
  const r = await curl(["-H", `Authorization: Bearer ${AGENT_PLACEHOLDER_TOKEN}`, "https://auth.test.example/v1/messages"]);
  t.is(r.status, 200);
  t.is(up.seen.at(-1)!.headers.authorization, "Bearer oauth-secret-123", "the upstream got the real token");
  const echo = JSON.parse(r.body);
  t.is(echo.headers.authorization, REDACTED, "the echo of it comes back redacted");
  t.false(r.body.includes("oauth-secret-123"));
  t.false(r.body.includes(AGENT_PLACEHOLDER_TOKEN));
  t.like(eg.audit.at(-1), { injected: true, decision: "allow" });
});

test.serial("redaction: an upstream reflecting the injected credential (header and body; plain, gzip, deflate, br) never hands it to the agent", async (t) => {
  for (const coding of ["identity", "gzip", "deflate", "br"]) {
    for (const [host, secret] of [["auth.test.example", "oauth-secret-123"], ["key.test.example", "sk-ant-secret-456"]] as const) {
      const r = await curl(["--compressed", `https://${host}/reflect/${coding}`]);
      t.is(r.status, 200, `${host} ${coding}: ${r.body}`);
      t.is(up.seen.at(-1)!.url, `/reflect/${coding}`);
      t.false(r.headers.includes(secret) || r.body.includes(secret), `${host} ${coding}: the agent saw the credential`);
      t.true(r.headers.toLowerCase().includes(`x-reflect-authorization: ${REDACTED.toLowerCase()}`), `${host} ${coding}: ${r.headers}`);
      t.regex(r.body, /"note":"reflected"/, `${host} ${coding}: the rest of the body is intact`);
      t.notRegex(r.headers, /content-encoding/i, "relayed decoded");
    }
  }
  // A plain route's responses are relayed untouched (nothing was injected there).
  const plain = await curl(["--compressed", "https://plain.test.example/reflect/gzip"]);
  t.regex(plain.headers, /content-encoding: gzip/i);
});

test.serial("injection: x-api-key placeholder replaced; no other credential header survives", async (t) => {
  const r = await curl(["-H", `x-api-key: ${AGENT_PLACEHOLDER_TOKEN}`, "-H", `Authorization: Bearer ${AGENT_PLACEHOLDER_TOKEN}`, "https://key.test.example/v1/messages"]);
  t.is(r.status, 200, r.body);
  const echo = JSON.parse(r.body);
  t.is(up.seen.at(-1)!.headers["x-api-key"], "sk-ant-secret-456");
  t.is(echo.headers["x-api-key"], REDACTED);
  t.is(echo.headers.authorization, undefined);
  // Exactly one x-api-key header upstream.
  t.is(echo.rawHeaders.filter((h: string) => h.toLowerCase() === "x-api-key").length, 1);
});

test.serial("injection: a real agent credential to an injecting route is refused, not merged", async (t) => {
  const before = up.seen.length;
  const r = await curl(["-H", "Authorization: Bearer agents-own-token", "https://auth.test.example/v1/messages"]);
  t.is(r.status, 403);
  t.is(JSON.parse(r.body).reason, "agent_credential");
  t.is(up.seen.length, before);
});

test.serial("stripping: agent credentials to a non-injecting route are not forwarded", async (t) => {
  const r = await curl(["-H", "Authorization: Bearer mine", "-H", "x-api-key: k", "-H", "Proxy-Authorization: Basic eDp5", "-H", "Cookie: a=1", "https://api.test.example/strip"]);
  const echo = JSON.parse(r.body);
  t.is(echo.headers.authorization, undefined);
  t.is(echo.headers["x-api-key"], undefined);
  t.is(echo.headers["proxy-authorization"], undefined);
  t.is(echo.headers.cookie, "a=1");
  t.deepEqual(eg.audit.at(-1)!.stripped, ["authorization", "proxy-authorization", "x-api-key"]);
});

test.serial("a route whose token is missing is refused with a reason", async (t) => {
  const r = await curl(["https://notoken.test.example/"]);
  t.is(r.status, 403);
  t.is(JSON.parse(r.body).reason, "token_missing");
  t.regex(JSON.parse(r.body).message, /TEST_ABSENT/);
});

test.serial("cleartext: absolute-URI http allowed on a plain route, refused on an injecting one", async (t) => {
  const r = await curl(["http://plain.test.example/x?y=1"]);
  t.is(r.status, 200, r.body);
  t.is(JSON.parse(r.body).url, "/x?y=1");
  t.is(JSON.parse(r.body).headers.host, "plain.test.example");
  const c = await curl(["-H", `Authorization: Bearer ${AGENT_PLACEHOLDER_TOKEN}`, "http://auth.test.example/v1"]);
  t.is(c.status, 403);
  t.is(JSON.parse(c.body).reason, "cleartext_credential");
});

test.serial("server-sent events stream through unbuffered", async (t) => {
  const r = await curl(["-N", "https://api.test.example/stream"]);
  t.is(r.status, 200);
  t.is((r.body.match(/data: \d/g) ?? []).length, 5);
});

test.serial("git over HTTPS: clone works, push is refused (the upstream would accept it)", async (t) => {
  up.makeRepo("repo");
  const tmp = await import("node:os").then((os) => os.tmpdir());
  const dir = `${tmp}/cb-git-${process.pid}-${Date.now()}`;
  const gitEnv = { PATH: process.env.PATH, HOME: dir, GIT_TERMINAL_PROMPT: "0", GIT_AUTHOR_NAME: "a", GIT_AUTHOR_EMAIL: "a@a", GIT_COMMITTER_NAME: "a", GIT_COMMITTER_EMAIL: "a@a" };
  const viaEgress = ["-c", `http.proxy=http://127.0.0.1:${eg.port}`, "-c", `http.sslCAInfo=${eg.caFile}`];
  await run("git", [...viaEgress, "clone", "-q", "https://git.test.example/git/repo.git", `${dir}/clone`], { env: gitEnv });
  await run("git", ["-C", `${dir}/clone`, "commit", "-q", "--allow-empty", "-m", "exfil"], { env: gitEnv });
  const before = up.seen.length;
  const push = await run("git", [...viaEgress, "-C", `${dir}/clone`, "push", "origin", "HEAD:main"], { env: gitEnv }).then(
    () => ({ ok: true, stderr: "" }),
    (e) => ({ ok: false, stderr: String(e.stderr) }),
  );
  t.false(push.ok, "push through egress must fail");
  t.regex(push.stderr, /403/);
  t.false(up.seen.slice(before).some((s) => s.url.includes("receive-pack")), "no receive-pack request reached upstream");
  t.true(eg.audit.some((a) => a.reason === "git_push"));
  // Control: the same push straight to the upstream succeeds, so the refusal is egress's.
  const direct = ["-c", `http.sslCAInfo=${up.caFile}`];
  await run("git", [...direct, "-C", `${dir}/clone`, "push", "-q", `https://127.0.0.1:${up.port}/git/repo.git`, "HEAD:main"], { env: gitEnv });
  // And on a host with no route at all, push is refused as a push (not merely no_route).
  const r = await curl(["https://unrouted.example/r.git/info/refs?service=git-receive-pack"]);
  t.is(JSON.parse(r.body).reason, "git_push");
});

test.serial("leaf certificates are minted once per host and cached", async (t) => {
  const agent = proxiedAgent(eg.port, eg.ca.certPem, 4);
  const before = eg.proxy.leaves.minted;
  for (let i = 0; i < 5; i++) {
    const a = proxiedAgent(eg.port, eg.ca.certPem, 1); // fresh connections each time
    t.is((await agentRequest(a, "api.test.example", "/c")).status, 200);
    a.destroy();
  }
  t.is(eg.proxy.leaves.minted, before, "api.test.example was minted by an earlier test");
  await agentRequest(agent, "fresh.wild.test.example", "/ok");
  await agentRequest(agent, "fresh.wild.test.example", "/ok");
  t.is(eg.proxy.leaves.minted, before + 1);
  agent.destroy();
});

test.serial("health endpoint answers origin-form GET; other origin-form requests are refused", async (t) => {
  const h = await fetch(`http://127.0.0.1:${eg.port}/__egress/health`);
  t.is(h.status, 200);
  t.like(await h.json(), { ok: true, routes: ROUTES.routes.length });
  const o = await fetch(`http://127.0.0.1:${eg.port}/something`);
  t.is(o.status, 400);
  t.is(o.headers.get("x-claude-bottle-block-reason"), "not_a_proxy_request");
});

test.serial("the audit log has every decision and never a token", async (t) => {
  const text = JSON.stringify(eg.audit);
  t.false(text.includes("oauth-secret-123"));
  t.false(text.includes("sk-ant-secret-456"));
  t.true(eg.audit.some((a) => a.decision === "deny" && a.reason === "no_route"));
  t.true(eg.audit.every((a) => typeof a.ts === "string" && typeof a.status === "number" && typeof a.ms === "number" && !a.path.includes("?")));
});

test.serial("an RSA egress CA signs leaves too", async (t) => {
  const rsa = await startEgress(up, ROUTES, { tokens: TOKENS }, await createTestCa("rsa egress CA", { rsa: true }));
  try {
    const a = proxiedAgent(rsa.port, rsa.ca.certPem, 1);
    t.is((await agentRequest(a, "api.test.example", "/rsa")).status, 200);
    a.destroy();
  } finally {
    await rsa.close();
  }
});

test.serial("upstream leg through pipelock: CONNECT host:443, SNI = host; its refusals are passed on", async (t) => {
  const pl = await startFakePipelock(up, ["plain.test.example"]);
  const viaPl = await startEgress(up, ROUTES, { tokens: TOKENS, upstreamProxy: pl.url, dial: undefined });
  try {
    const a = proxiedAgent(viaPl.port, viaPl.ca.certPem, 2);
    const r = await agentRequest(a, "api.test.example", "/via-pipelock");
    t.is(r.status, 200);
    t.is(JSON.parse(r.body).sni, "api.test.example");
    t.deepEqual(pl.connects, ["api.test.example:443"]);
    // Keep-alive reuse: a second request does not open a second tunnel.
    await agentRequest(a, "api.test.example", "/again");
    t.is(pl.connects.length, 1);
    const refused = await agentRequest(a, "plain.test.example", "/");
    t.is(refused.status, 403);
    t.is(refused.headers["x-claude-bottle-block-reason"], "upstream_refused");
    t.regex(JSON.parse(refused.body).message, /domain not in allowlist/);
    a.destroy();
  } finally {
    await viaPl.close();
    await pl.close();
  }
});
