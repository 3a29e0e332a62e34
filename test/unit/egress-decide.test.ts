// Table tests for the pure egress policy: sidecars/egress/decide.ts.
import test from "ava";
import { TOOL_NAMES } from "../../contracts/proposals.ts";
import { parseRoutesDocument, AGENT_PLACEHOLDER_TOKEN } from "../../contracts/routes.ts";
import { decide, decideConnect, denyBody, malformedUtf8, parseHost, pathAllowed, percentDecodedBytes, pipelockBlock, pipelockRefusal, type EgressRequest, type Decision } from "../../sidecars/egress/decide.ts";

const { routes } = parseRoutesDocument({
  version: 1,
  routes: [
    { host: "api.example.com" },
    { host: "*.example.com" },
    { host: "deep.sub.example.com", methods: ["get"] },
    { host: "*.sub.example.com", path_allowlist: ["/ok/"] },
    { host: "github.com", path_allowlist: ["/acme/repo", "/acme/tools/"], methods: ["GET", "POST"] },
    { host: "api.github.com", auth: { scheme: "token", token_ref: "GH_TOKEN" } },
    { host: "api.anthropic.com", auth: { scheme: "header:x-api-key", token_ref: "ANTHROPIC_KEY" }, role: "anthropic_api_key" },
    { host: "claude.ai", auth: { scheme: "bearer", token_ref: "OAUTH_TOKEN" }, role: "claude_code_oauth" },
    { host: "basic.test", auth: { scheme: "basic", token_ref: "BASIC_CRED" } },
    { host: "custom.test", auth: { scheme: "header:X-Custom-Auth", token_ref: "CUSTOM" } },
    { host: "missing.test", auth: { scheme: "bearer", token_ref: "NOT_SET" } },
    { host: "plain.test" },
  ],
}, "test routes");

const ctx = {
  tokens: { GH_TOKEN: "ghp_real", ANTHROPIC_KEY: "sk-ant-real", OAUTH_TOKEN: "oauth-real", BASIC_CRED: "user:pw", CUSTOM: "c-real" },
  superviseTool: TOOL_NAMES.egress_routes,
};

type Case = {
  name: string;
  req: Partial<EgressRequest> & { host?: string };
  expect: "allow" | Decision["reason"];
  route?: number;
  check?: (d: Decision) => void;
};

function https(host: string, target = "/", extra: Partial<EgressRequest> = {}): Case["req"] {
  return { scheme: "https", connectHost: host, connectPort: 443, sni: host, method: "GET", target, headers: { host }, ...extra };
}
function http(url: string, extra: Partial<EgressRequest> = {}): Case["req"] {
  const host = /^http:\/\/([^/?#]*)/i.exec(url)?.[1] ?? "";
  return { scheme: "http", method: "GET", target: url, headers: { host }, ...extra };
}

const cases: Case[] = [
  // Host matching.
  { name: "exact route", req: https("api.example.com"), expect: "allow", route: 0 },
  { name: "exact beats wildcard", req: https("api.example.com", "/x"), expect: "allow", route: 0 },
  { name: "wildcard matches one label", req: https("www.example.com"), expect: "allow", route: 1 },
  { name: "wildcard matches any depth", req: https("a.b.c.example.com"), expect: "allow", route: 1 },
  { name: "wildcard does not match the apex", req: https("example.com"), expect: "no_route" },
  { name: "wildcard does not match a look-alike suffix", req: https("evilexample.com"), expect: "no_route" },
  { name: "longest wildcard wins", req: https("x.sub.example.com", "/nope"), expect: "path_not_allowed", route: 3 },
  { name: "exact beats longer wildcard", req: https("deep.sub.example.com", "/any"), expect: "allow", route: 2 },
  { name: "host is case-insensitive", req: https("API.Example.COM", "/", { headers: { host: "api.example.com" } }), expect: "allow", route: 0 },
  { name: "trailing dot ignored (CONNECT)", req: https("api.example.com.", "/", { sni: "api.example.com", headers: { host: "api.example.com" } }), expect: "allow", route: 0 },
  { name: "trailing dot ignored (Host header)", req: https("api.example.com", "/", { headers: { host: "api.example.com." } }), expect: "allow", route: 0 },
  { name: "double trailing dot is not a name", req: https("api.example.com..", "/", { sni: undefined, headers: {} }), expect: "bad_host" },
  { name: "unknown host", req: https("exfil.invalid"), expect: "no_route" },
  { name: "underscore host is invalid", req: https("bad_host.example.com"), expect: "bad_host" },
  { name: "percent-encoded host is invalid", req: https("api%2eexample.com"), expect: "bad_host" },
  // IP literals in every spelling.
  { name: "dotted IPv4", req: https("127.0.0.1"), expect: "ip_literal" },
  { name: "short IPv4 (127.1)", req: https("127.1"), expect: "ip_literal" },
  { name: "decimal IPv4", req: https("2130706433"), expect: "ip_literal" },
  { name: "hex IPv4", req: https("0x7f000001"), expect: "ip_literal" },
  { name: "dotted hex IPv4", req: https("0x7f.0x0.0x0.0x1"), expect: "ip_literal" },
  { name: "octal IPv4", req: https("0177.0.0.1"), expect: "ip_literal" },
  { name: "numeric last label is an IP spelling", req: https("example.com.1"), expect: "ip_literal" },
  { name: "bracketed IPv6", req: https("[::1]"), expect: "ip_literal" },
  { name: "IPv4-mapped IPv6", req: https("[::ffff:127.0.0.1]"), expect: "ip_literal" },
  { name: "IP literal over cleartext", req: http("http://169.254.169.254/latest/meta-data/"), expect: "ip_literal" },
  // Ports.
  { name: "https on a non-default port", req: https("api.example.com", "/", { connectPort: 8443 }), expect: "port_not_allowed" },
  { name: "http on a non-default port", req: http("http://plain.test:8080/"), expect: "port_not_allowed" },
  { name: "explicit default port is fine", req: http("http://plain.test:80/x", { headers: { host: "plain.test:80" } }), expect: "allow", route: 11 },
  // CONNECT target is authoritative.
  { name: "Host header names another host", req: https("api.example.com", "/", { headers: { host: "evil.invalid" } }), expect: "host_mismatch" },
  { name: "Host header names another routed host", req: https("api.example.com", "/", { headers: { host: "api.github.com" } }), expect: "host_mismatch" },
  { name: "Host header with another port", req: https("api.example.com", "/", { headers: { host: "api.example.com:8443" } }), expect: "host_mismatch" },
  { name: "two Host headers", req: https("api.example.com", "/", { headers: { host: ["api.example.com", "evil.invalid"] } }), expect: "host_mismatch" },
  { name: "Host header IP literal", req: https("api.example.com", "/", { headers: { host: "127.0.0.1" } }), expect: "host_mismatch" },
  { name: "SNI names another host", req: https("api.example.com", "/", { sni: "evil.invalid" }), expect: "sni_mismatch" },
  { name: "SNI differs only in case and dot", req: https("api.example.com", "/", { sni: "API.example.com." }), expect: "allow", route: 0 },
  { name: "no SNI is not a mismatch", req: https("api.example.com", "/", { sni: undefined }), expect: "allow", route: 0 },
  { name: "absolute-form in tunnel naming another host", req: https("api.example.com", "https://evil.invalid/"), expect: "host_mismatch" },
  { name: "absolute-form in tunnel naming the same host", req: https("api.example.com", "https://api.example.com/x?y"), expect: "allow", check: (d) => d.action === "allow" && void expectEq(d.upstreamTarget, "/x?y") },
  { name: "cleartext Host header mismatch", req: http("http://plain.test/", { headers: { host: "evil.invalid" } }), expect: "host_mismatch" },
  { name: "cleartext userinfo", req: http("http://user@plain.test/"), expect: "bad_request" },
  { name: "cleartext needs an absolute URI", req: { scheme: "http", method: "GET", target: "/x", headers: { host: "plain.test" } }, expect: "bad_request" },
  // Path spellings: refused, never normalised.
  { name: "dot-dot segment", req: https("github.com", "/acme/repo/../../evil/x"), expect: "ambiguous_path" },
  { name: "dot segment", req: https("github.com", "/acme/./repo"), expect: "ambiguous_path" },
  { name: "trailing dot-dot", req: https("github.com", "/acme/repo/.."), expect: "ambiguous_path" },
  { name: "encoded dot (lower)", req: https("github.com", "/acme/repo/%2e%2e/evil"), expect: "ambiguous_path" },
  { name: "encoded dot (upper)", req: https("github.com", "/acme/repo/%2E%2E/evil"), expect: "ambiguous_path" },
  { name: "half-encoded dot-dot", req: https("github.com", "/acme/repo/.%2e/evil"), expect: "ambiguous_path" },
  { name: "encoded slash", req: https("github.com", "/acme/repo%2f..%2fevil"), expect: "ambiguous_path" },
  { name: "encoded slash (upper)", req: https("github.com", "/acme%2Frepo"), expect: "ambiguous_path" },
  { name: "encoded backslash", req: https("github.com", "/acme/repo%5c..%5cevil"), expect: "ambiguous_path" },
  { name: "backslash", req: https("github.com", "/acme/repo\\..\\evil"), expect: "ambiguous_path" },
  { name: "double encoding", req: https("github.com", "/acme/repo/%252e%252e/evil"), expect: "ambiguous_path" },
  { name: "semicolon path parameter", req: https("github.com", "/acme/repo;/../evil"), expect: "ambiguous_path" },
  { name: "semicolon alone", req: https("github.com", "/acme/repo;jsessionid=1"), expect: "ambiguous_path" },
  { name: "empty segment", req: https("github.com", "/acme//repo"), expect: "ambiguous_path" },
  { name: "malformed escape", req: https("github.com", "/acme/repo/%zz"), expect: "ambiguous_path" },
  { name: "encoded NUL", req: https("github.com", "/acme/repo/%00"), expect: "ambiguous_path" },
  { name: "fragment", req: https("github.com", "/acme/repo#x"), expect: "ambiguous_path" },
  // Overlong UTF-8: a decoder that accepts them reads "." and "/" (issue 14, item 5).
  { name: "overlong dot %c0%ae", req: https("github.com", "/acme/repo/%c0%ae%c0%ae/evil"), expect: "ambiguous_path" },
  { name: "overlong dot, 3 bytes %e0%80%ae", req: https("github.com", "/acme/repo/%e0%80%ae%e0%80%ae/evil"), expect: "ambiguous_path" },
  { name: "overlong slash %c0%af", req: https("github.com", "/acme/repo/..%c0%afevil"), expect: "ambiguous_path" },
  { name: "overlong slash, 3 bytes %e0%80%af", req: https("github.com", "/acme/repo%e0%80%afx"), expect: "ambiguous_path" },
  { name: "overlong dot, 4 bytes %f0%80%80%ae", req: https("github.com", "/acme/repo/%f0%80%80%ae"), expect: "ambiguous_path" },
  { name: "overlong backslash %c1%9c", req: https("github.com", "/acme/repo/%c1%9c"), expect: "ambiguous_path" },
  { name: "overlong upper-case %C0%AE", req: https("github.com", "/acme/repo/%C0%AE"), expect: "ambiguous_path" },
  { name: "UTF-16 surrogate %ed%a0%80", req: https("github.com", "/acme/repo/%ed%a0%80"), expect: "ambiguous_path" },
  { name: "lone continuation byte %80", req: https("github.com", "/acme/repo/%80"), expect: "ambiguous_path" },
  { name: "truncated sequence %e2%82", req: https("github.com", "/acme/repo/%e2%82"), expect: "ambiguous_path" },
  { name: "well-formed UTF-8 escapes pass (é, €, 😀)", req: https("github.com", "/acme/repo/caf%c3%a9/%e2%82%ac/%f0%9f%98%80"), expect: "allow" },
  { name: "asterisk-form", req: https("github.com", "*", { method: "OPTIONS" }), expect: "ambiguous_path" },
  { name: "dots in the query are not path", req: https("github.com", "/acme/repo/info?x=../..;%2f"), expect: "allow", route: 4 },
  { name: "ordinary encoded char is fine", req: https("api.example.com", "/a%20b"), expect: "allow", route: 0 },
  // Path allowlist (segment-aware prefixes).
  { name: "path prefix exact", req: https("github.com", "/acme/repo"), expect: "allow", route: 4 },
  { name: "path prefix below", req: https("github.com", "/acme/repo/info/refs?service=git-upload-pack"), expect: "allow", route: 4 },
  { name: "path prefix does not admit a sibling", req: https("github.com", "/acme/repo-evil"), expect: "path_not_allowed" },
  { name: "trailing-slash prefix admits below", req: https("github.com", "/acme/tools/x"), expect: "allow", route: 4 },
  { name: "trailing-slash prefix: not the bare dir", req: https("github.com", "/acme/tools"), expect: "path_not_allowed" },
  { name: "path outside allowlist", req: https("github.com", "/other/repo"), expect: "path_not_allowed", check: (d) => d.action === "deny" && void expectEq(d.howToAsk?.route.path_allowlist, ["/acme/repo", "/acme/tools/", "/other/repo"]) },
  { name: "path case matters", req: https("github.com", "/ACME/repo"), expect: "path_not_allowed" },
  // Methods.
  { name: "method allowed", req: https("github.com", "/acme/repo", { method: "POST" }), expect: "allow", route: 4 },
  { name: "method not allowed", req: https("github.com", "/acme/repo", { method: "DELETE" }), expect: "method_not_allowed", check: (d) => d.action === "deny" && void expectEq(d.howToAsk?.route.methods, ["GET", "POST", "DELETE"]) },
  { name: "lower-case method is upper-cased", req: https("deep.sub.example.com", "/", { method: "get" }), expect: "allow", route: 2 },
  { name: "unknown method without a method list", req: https("api.example.com", "/", { method: "TRACE" }), expect: "method_not_allowed", check: (d) => d.action === "deny" && void expectEq(d.howToAsk, undefined) },
  { name: "invalid method token", req: https("api.example.com", "/", { method: "GE T" }), expect: "bad_request" },
  { name: "protocol upgrade", req: https("api.example.com", "/", { headers: { host: "api.example.com", upgrade: "websocket" } }), expect: "upgrade_not_supported" },
  // git push, routed or not.
  { name: "push advertisement on a routed host", req: https("github.com", "/acme/repo/info/refs?service=git-receive-pack"), expect: "git_push" },
  { name: "push endpoint on a routed host", req: https("github.com", "/acme/repo/git-receive-pack", { method: "POST" }), expect: "git_push" },
  { name: "push on an unrouted host", req: https("git.invalid", "/r.git/git-receive-pack", { method: "POST" }), expect: "git_push" },
  { name: "push with encoded query", req: https("github.com", "/acme/repo/info/refs?service=git%2Dreceive%2Dpack"), expect: "git_push" },
  { name: "push in upper case", req: https("github.com", "/acme/repo/GIT-RECEIVE-PACK", { method: "POST" }), expect: "git_push" },
  { name: "push by content type", req: https("github.com", "/acme/repo/x", { method: "POST", headers: { host: "github.com", "content-type": "application/x-git-receive-pack-request" } }), expect: "git_push" },
  { name: "push over cleartext", req: http("http://plain.test/r.git/info/refs?service=git-receive-pack"), expect: "git_push" },
  { name: "fetch is fine", req: https("github.com", "/acme/repo/git-upload-pack", { method: "POST" }), expect: "allow", route: 4 },
  // Credentials.
  { name: "inject token scheme", req: https("api.github.com", "/user"), expect: "allow", check: (d) => d.action === "allow" && void expectEq(d.inject, { name: "Authorization", value: "token ghp_real" }) },
  { name: "inject bearer (placeholder stripped)", req: https("claude.ai", "/v1", { headers: { host: "claude.ai", authorization: `Bearer ${AGENT_PLACEHOLDER_TOKEN}` } }), expect: "allow", check: (d) => d.action === "allow" && void (expectEq(d.inject, { name: "Authorization", value: "Bearer oauth-real" }), expectEq(d.strip, ["authorization"])) },
  { name: "inject x-api-key (placeholder stripped)", req: https("api.anthropic.com", "/v1/messages", { method: "POST", headers: { host: "api.anthropic.com", "x-api-key": AGENT_PLACEHOLDER_TOKEN } }), expect: "allow", check: (d) => d.action === "allow" && void (expectEq(d.inject, { name: "x-api-key", value: "sk-ant-real" }), expectEq(d.strip, ["x-api-key"])) },
  { name: "inject basic", req: https("basic.test"), expect: "allow", check: (d) => d.action === "allow" && void expectEq(d.inject?.value, `Basic ${Buffer.from("user:pw").toString("base64")}`) },
  { name: "inject custom header", req: https("custom.test"), expect: "allow", check: (d) => d.action === "allow" && void expectEq(d.inject, { name: "X-Custom-Auth", value: "c-real" }) },
  { name: "agent credential to injecting route refused", req: https("api.github.com", "/", { headers: { host: "api.github.com", authorization: "token ghp_agents_own" } }), expect: "agent_credential" },
  { name: "agent x-api-key to bearer route refused", req: https("claude.ai", "/", { headers: { host: "claude.ai", "x-api-key": "sk-ant-other" } }), expect: "agent_credential" },
  { name: "agent sends the injected custom header", req: https("custom.test", "/", { headers: { host: "custom.test", "x-custom-auth": "mine" } }), expect: "agent_credential" },
  { name: "agent Proxy-Authorization to injecting route", req: https("api.github.com", "/", { headers: { host: "api.github.com", "proxy-authorization": "Basic eDp5" } }), expect: "agent_credential" },
  { name: "placeholder plus a real credential", req: https("claude.ai", "/", { headers: { host: "claude.ai", authorization: `Bearer ${AGENT_PLACEHOLDER_TOKEN}`, "x-api-key": "sk-real" } }), expect: "agent_credential" },
  { name: "token missing from the environment", req: https("missing.test"), expect: "token_missing" },
  { name: "injecting route over cleartext", req: http("http://api.github.com/user"), expect: "cleartext_credential" },
  { name: "credentials stripped on a non-injecting route", req: https("api.example.com", "/", { headers: { host: "api.example.com", authorization: "Bearer mine", "x-api-key": "k", cookie: "c=1" } }), expect: "allow", check: (d) => d.action === "allow" && void (expectEq(d.strip, ["authorization", "x-api-key"]), expectEq(d.inject, undefined)) },
  { name: "cleartext plain route", req: http("http://plain.test/index.html?q=1"), expect: "allow", route: 11, check: (d) => d.action === "allow" && void (expectEq(d.upstreamTarget, "/index.html?q=1"), expectEq(d.path, "/index.html")) },
  { name: "cleartext query-only target", req: http("http://plain.test?q=1"), expect: "allow", route: 11, check: (d) => d.action === "allow" && void expectEq(d.upstreamTarget, "/?q=1") },
];

let currentFail: ((msg: string) => void) | undefined;
function expectEq(a: unknown, b: unknown): void {
  if (JSON.stringify(a) !== JSON.stringify(b)) currentFail?.(`expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

for (const c of cases) {
  test(`decide: ${c.name}`, (t) => {
    const d = decide(c.req as EgressRequest, routes, ctx);
    t.is(d.action === "allow" ? "allow" : d.reason, c.expect, JSON.stringify(d));
    if (c.route !== undefined && d.action === "allow") t.is(d.routeIndex, c.route);
    if (d.action === "deny") {
      t.is(d.status, 403);
      t.true(d.message.length > 10);
    }
    const problems: string[] = [];
    currentFail = (m) => problems.push(m);
    c.check?.(d);
    currentFail = undefined;
    t.deepEqual(problems, []);
    // Never a token in a refusal.
    t.false(JSON.stringify(d.action === "deny" ? denyBody(d) : {}).includes("real"));
  });
}

test("decide is table-sized (≥ 40 cases)", (t) => {
  t.true(cases.length >= 40, String(cases.length));
});

test("no route → how_to_ask names the supervise tool and the exact route", (t) => {
  const d = decide(https("new.invalid", "/v1/x?secret=1") as EgressRequest, routes, ctx);
  t.is(d.action, "deny");
  if (d.action !== "deny") return;
  const body = denyBody(d);
  t.like(body, { blocked: true, reason: "no_route", host: "new.invalid", method: "GET", path: "/v1/x" });
  t.deepEqual((body.how_to_ask as any).tool, TOOL_NAMES.egress_routes);
  t.deepEqual((body.how_to_ask as any).route, { host: "new.invalid" });
  // The proposed route is valid under the same contract.
  t.notThrows(() => parseRoutesDocument({ version: 1, routes: [(body.how_to_ask as any).route] }));
});

test("how_to_ask is absent without a supervise tool and for unfixable refusals", (t) => {
  const d1 = decide(https("new.invalid") as EgressRequest, routes, { tokens: ctx.tokens });
  t.is(d1.action === "deny" ? d1.howToAsk : "x", undefined);
  const d2 = decide(https("github.com", "/acme/repo/git-receive-pack", { method: "POST" }) as EgressRequest, routes, ctx);
  t.is(d2.action === "deny" ? d2.howToAsk : "x", undefined);
  const d3 = decide(https("github.com", "/acme/../x") as EgressRequest, routes, ctx);
  t.is(d3.action === "deny" ? d3.howToAsk : "x", undefined);
});

test("widened route from path_not_allowed is valid under the contract", (t) => {
  const d = decide(https("github.com", "/other/repo", { method: "DELETE" }) as EgressRequest, routes, ctx);
  if (d.action !== "deny" || !d.howToAsk) return t.fail();
  t.is(d.reason, "path_not_allowed");
  t.deepEqual(d.howToAsk.route.methods, ["GET", "POST", "DELETE"]);
  t.notThrows(() => parseRoutesDocument({ version: 1, routes: [d.howToAsk!.route] }));
});

test("decideConnect refuses what no tunnel could fix, tunnels the rest", (t) => {
  t.like(decideConnect("api.example.com:443"), { action: "allow", host: "api.example.com", port: 443 });
  t.like(decideConnect("unrouted.invalid:443"), { action: "allow" });
  t.like(decideConnect("API.Example.com.:443"), { action: "allow", host: "api.example.com" });
  t.like(decideConnect("127.0.0.1:443"), { action: "deny", reason: "ip_literal" });
  t.like(decideConnect("[::1]:443"), { action: "deny", reason: "ip_literal" });
  t.like(decideConnect("2130706433:443"), { action: "deny", reason: "ip_literal" });
  t.like(decideConnect("api.example.com:22"), { action: "deny", reason: "port_not_allowed" });
  t.like(decideConnect("api.example.com"), { action: "deny", reason: "bad_request" });
  t.like(decideConnect("a b:443"), { action: "deny", reason: "bad_host" });
});

test("parseHost and pathAllowed helpers", (t) => {
  t.deepEqual(parseHost("Example.COM."), { kind: "name", name: "example.com" });
  t.is(parseHost("1.2.3").kind, "ip");
  t.is(parseHost("::1").kind, "ip");
  t.is(parseHost("x..y").kind, "invalid");
  t.true(pathAllowed("/anything", ["/"]));
  t.false(pathAllowed("/ab", ["/a"]));
  t.true(pathAllowed("/a?x", ["/a"]) === false); // callers pass the path without the query
});

// ---------------------------------------------------------------------------------------------
// pipelock's refusals, recognised by its block-reason header set (pipelock internal/blockreason)

const PL = (code: string, extra: Record<string, string> = {}) => ({ "x-pipelock-block-reason": code, "x-pipelock-block-reason-version": "1", "x-pipelock-block-reason-severity": "critical", ...extra });

test("pipelockBlock: only an error carrying pipelock's header set, version 1, is pipelock's refusal", (t) => {
  t.deepEqual(pipelockBlock(403, PL("dlp_match", { "x-pipelock-block-reason-layer": "body_dlp", "x-pipelock-block-reason-retry": "none" }), "blocked: request body contains secret: AWS Access ID\n"), {
    status: 403,
    code: "dlp_match",
    layer: "body_dlp",
    retry: "none",
    detail: "blocked: request body contains secret: AWS Access ID",
  });
  t.is(pipelockBlock(403, {}, "Forbidden"), undefined, "an upstream's own 403");
  t.is(pipelockBlock(403, { "x-pipelock-block-reason": "dlp_match" }, ""), undefined, "no version: not the v1 vocabulary");
  t.is(pipelockBlock(200, PL("dlp_match"), ""), undefined, "a success is never a refusal");
  t.is(pipelockBlock(429, PL("rate_limit", { "x-pipelock-block-reason-retry": "transient" }), "CONNECT blocked: rate limit exceeded for x")!.retry, "transient");
});

test("pipelockRefusal: names the layer and pipelock's words; how_to_ask only where supervise widens it (the allowlist)", (t) => {
  const req = { host: "pypi.example.org", method: "GET", path: "/simple/" };
  const ctx = { superviseTool: "propose_egress_routes", pipelockTool: "propose_pipelock_allowlist" };
  const cases: { title: string; block: Parameters<typeof pipelockBlock>; message: RegExp; ask: boolean }[] = [
    { title: "allowlist (CONNECT)", block: [403, PL("parse_error", { "x-pipelock-block-reason-layer": "allowlist" }), "CONNECT blocked: domain not in allowlist: pypi.example.org\n"], message: /Ask the operator with the propose_pipelock_allowlist tool: send get_current_config's extra_allowlist plus "pypi\.example\.org"/, ask: true },
    { title: "body DLP", block: [403, PL("dlp_match"), "blocked: request body contains secret: GitHub Token\n"], message: /contains secret: GitHub Token\. pipelock found what looks like a secret .* no proposal changes that/, ask: false },
    { title: "SSRF", block: [403, PL("ssrf_private_ip"), "CONNECT blocked: SSRF blocked: pypi.example.org resolves to internal IP 10.0.0.5\n"], message: /resolves to an internal address; .* pipelock\.ssrf_ip_allowlist/, ask: false },
    { title: "response over the cap", block: [403, PL("data_budget"), "blocked: response too large for scanning\n"], message: /larger than what pipelock scans .* pipelock\.max_response_mib \/ pipelock\.max_body_mib/, ask: false },
    { title: "body over the cap (labelled by the body scanner)", block: [403, PL("dlp_match"), "blocked: request body exceeds max_body_bytes (33554432)\n"], message: /exceeds max_body_bytes \(33554432\)\. The transfer is larger than what pipelock scans/, ask: false },
    { title: "compressed", block: [403, PL("compressed_response"), "blocked: compressed response cannot be scanned\n"], message: /uncompressed/, ask: false },
    { title: "rate limit", block: [429, PL("rate_limit", { "x-pipelock-block-reason-retry": "transient" }), "CONNECT blocked: rate limit exceeded for pypi.example.org\n"], message: /retry later/, ask: false },
  ];
  for (const c of cases) {
    const b = pipelockBlock(...c.block)!;
    const r = pipelockRefusal(b, req, ctx);
    t.is(r.status, c.block[0], c.title);
    t.is(r.reason, "pipelock_blocked", c.title);
    t.like(r.body, { blocked: true, layer: "pipelock", pipelock_reason: b.code, host: req.host }, c.title);
    t.regex(String(r.body.message), /^pipelock, the bottle's outbound firewall behind egress, refused this request: /, c.title);
    t.regex(String(r.body.message), c.message, c.title);
    t.is(r.body.how_to_ask !== undefined, c.ask, c.title);
  }
  const ask = pipelockRefusal(pipelockBlock(...cases[0]!.block)!, req, ctx).body.how_to_ask as Record<string, string>;
  t.deepEqual(ask.tool, "propose_pipelock_allowlist");
  t.is(ask.add_to_allowlist, "pypi.example.org");
  // supervise off: no tool to name, and the words say so
  const off = pipelockRefusal(pipelockBlock(...cases[0]!.block)!, req, {});
  t.is(off.body.how_to_ask, undefined);
  t.regex(String(off.body.message), /supervise is off: only the operator can add it/);
});

test("malformedUtf8: RFC 3629 well-formedness of percent-decoded path bytes", (t) => {
  const table: [string, string | undefined][] = [
    ["/plain/ascii", undefined],
    ["/%c3%a9", undefined],
    ["/%e2%82%ac", undefined],
    ["/%ef%bf%bf", undefined],
    ["/%f0%9f%98%80", undefined],
    ["/%f4%8f%bf%bf", undefined], // U+10FFFF, the last code point
    ["/%c0%ae", "overlong %c0%ae"],
    ["/%c1%bf", "overlong %c1%bf"],
    ["/%e0%80%ae", "overlong %e0%80%ae"],
    ["/%e0%9f%bf", "overlong %e0%9f%bf"],
    ["/%f0%80%80%af", "overlong %f0%80%80%af"],
    ["/%f0%8f%bf%bf", "overlong %f0%8f%bf%bf"],
    ["/%ed%a0%80", "out-of-range %ed%a0%80"],
    ["/%f4%90%80%80", "out-of-range %f4%90%80%80"],
    ["/%f5%80%80%80", "invalid byte %f5"],
    ["/%ff", "invalid byte %ff"],
    ["/%80", "stray continuation byte %80"],
    ["/%e2%82", "truncated %e2%82"],
    ["/%e2%82x", "truncated %e2%82%78"],
  ];
  for (const [path, want] of table) t.is(malformedUtf8(percentDecodedBytes(path)), want, path);
});
