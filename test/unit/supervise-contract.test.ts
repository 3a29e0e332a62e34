// The supervise contract: proposal/decision schemas, dedupe keys, settings, planning
// (rebase of a proposal onto a live config that moved), exclusive decisions, audit chain.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { pipelockConfigToYaml } from "../../contracts/pipelock.ts";
import { EMPTY_POLICY, ExtraAllowlistSchema, pipelockConfigFor } from "../../contracts/policy.ts";
import { planChange, PROPOSAL_KINDS, proposalKey, rebaseRoutes, type LiveState, type ProposalChange, type ProposalKind } from "../../contracts/proposals.ts";
import { HTTP_METHODS, parseRoutesDocument } from "../../contracts/routes.ts";
import { superviseSettingsFromEnv, superviseSettingsToEnv } from "../../contracts/supervise.ts";
import { ConfigError, parseWith } from "../../contracts/validation.ts";
import { appendAudit, readAudit, verifyAudit } from "../../store/audit.ts";
import { fileChanges } from "../../store/live.ts";
import { proposalPaths, readDecision, writeDecision } from "../../store/proposals.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "cb-supervise-unit-"));

const doc = (routes: unknown[]) => parseRoutesDocument({ version: 1, routes });

const EMPTY: LiveState = { routes: doc([]), policy: EMPTY_POLICY, dockerfile: null };

/** What the MCP tool of `kind` makes of these arguments: the schema the agent sees, then the kind's own check. */
function asTool(kind: ProposalKind, args: Record<string, unknown>, live: LiveState = EMPTY) {
  const tool = PROPOSAL_KINDS[kind].tool;
  return (tool.toChange as (a: unknown, l: LiveState) => unknown)(parseWith(z.strictObject(tool.input), args, tool.name), live);
}

test("settings: defaults are the container paths; env round-trips", (t) => {
  const s = superviseSettingsFromEnv({ SUPERVISE_BOTTLE: "dev-coder", PATH: "/bin" });
  t.is(s.SUPERVISE_LISTEN, "0.0.0.0:8080");
  t.is(s.SUPERVISE_STATE_DIR, "/var/lib/claude-bottle/supervise");
  t.is(s.SUPERVISE_EGRESS_CONFIG_DIR, "/etc/claude-bottle/egress");
  t.is(s.SUPERVISE_PIPELOCK_CONFIG_DIR, "/etc/claude-bottle/pipelock");
  t.is(s.SUPERVISE_AUDIT_LOG, "/var/log/claude-bottle/supervise.jsonl");
  t.is(s.SUPERVISE_KEEPALIVE_MS, 15_000);
  const env = superviseSettingsToEnv({ SUPERVISE_BOTTLE: "dev-coder" });
  t.true(env.includes("SUPERVISE_BOTTLE=dev-coder"));
  t.deepEqual(superviseSettingsFromEnv(Object.fromEntries(env.map((e) => e.split("=", 2) as [string, string]))), s);
  const err = t.throws(() => superviseSettingsFromEnv({ SUPERVISE_LISTEN: "8080" }), { instanceOf: ConfigError });
  t.regex(err!.message, /SUPERVISE_LISTEN: expected "host:port"/);
  t.regex(err!.message, /SUPERVISE_BOTTLE: required string is missing/);
});

test("tool inputs are parsed with the contracts' schemas; a call that changes nothing is no proposal", (t) => {
  t.like(asTool("egress_routes", { routes: [{ host: "Example.COM." }] }), { kind: "egress_routes", routes: { version: 1, routes: [{ host: "example.com" }] } });
  t.throws(() => asTool("egress_routes", { routes: { version: 2, routes: [] } }), { message: /version/ });
  t.throws(() => asTool("egress_routes", { routes: [{ host: "a.example.com" }, { host: "a.example.com" }] }), { message: /duplicate route/ });
  t.throws(() => asTool("egress_routes", { routes: [{ host: "a.example.com", metods: ["GET"] }] }), { message: /routes\[0\]\.metods: unknown key "metods" — did you mean "methods"\?/ });
  t.is(asTool("egress_routes", { routes: { version: 1, routes: [] } }), undefined, "the live routes already are that");
  t.like(asTool("pipelock_allowlist", { allowlist: ["b.example.com", "A.example.com", "b.example.com"] }), { allowlist: ["a.example.com", "b.example.com"], base: [] });
  t.throws(() => asTool("pipelock_allowlist", { allowlist: "a.example.com" }), { message: /expected array/ });
  t.like(asTool("capability", { dockerfile: "# comment\nARG X=1\nFROM debian\n" }), { dockerfile: "# comment\nARG X=1\nFROM debian\n", base: null });
  t.throws(() => asTool("capability", { dockerfile: "ARG X\nRUN true\nFROM debian" }), { message: /first instruction/ });
  t.throws(() => asTool("capability", { dockerfile: "FROM a\n" + "#".repeat(70_000) }), { message: /under 65536 bytes/ });
});

test("a routes proposal may not drop a route the agent's own credentials ride on", (t) => {
  const live: LiveState = { ...EMPTY, routes: doc([{ host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "T" }, role: "claude_code_oauth" }]) };
  const err = t.throws(() => asTool("egress_routes", { routes: [{ host: "pypi.example.org" }] }, live), { instanceOf: ConfigError });
  t.regex(err!.message, /drops the route for api\.anthropic\.com \(role claude_code_oauth\)/);
});

test("a proposal for a too-broad wildcard is refused before the operator sees it (route, allowlist); a registrable one passes", (t) => {
  for (const host of ["*.com", "*.co.uk", "*.io", "*.github.io"]) {
    t.throws(() => asTool("egress_routes", { routes: [{ host }] }), { instanceOf: ConfigError, message: /too broad.*public suffix/ }, host);
    t.throws(() => asTool("pipelock_allowlist", { allowlist: [host] }), { instanceOf: ConfigError, message: /too broad.*public suffix/ }, host);
  }
  t.like(asTool("egress_routes", { routes: [{ host: "*.example.co.uk" }] }), { kind: "egress_routes" });
  t.like(asTool("pipelock_allowlist", { allowlist: ["*.pages.github.io"] }), { allowlist: ["*.pages.github.io"] });
});

test("dedupe key: same end state = same key, whatever the spelling; justification does not count", (t) => {
  const base = doc([]);
  const a = proposalKey({ kind: "egress_routes", routes: doc([{ host: "A.example.com", methods: ["get"] }]), base });
  const b = proposalKey({ kind: "egress_routes", routes: parseRoutesDocument({ routes: [{ methods: ["GET"], host: "a.example.com" }] }), base: doc([{ host: "x.example.com" }]) });
  t.is(a, b);
  const c = proposalKey({ kind: "egress_routes", routes: doc([{ host: "a.example.com", methods: ["POST"] }]), base });
  t.not(a, c);
  const allowlist = (hosts: string[]) => ExtraAllowlistSchema.parse(hosts);
  t.is(
    proposalKey({ kind: "pipelock_allowlist", allowlist: allowlist(["b.example.com", "a.example.com"]), base: [] }),
    proposalKey({ kind: "pipelock_allowlist", allowlist: allowlist(["a.example.com", "b.example.com"]), base: ["z.example.com"] }),
  );
});

test("rebase: a route proposal applies its own change onto a live document that moved", (t) => {
  const base = doc([{ host: "a.example.com" }, { host: "b.example.com" }]);
  const proposed = doc([{ host: "a.example.com" }, { host: "b.example.com" }, { host: "new.example.com" }]);
  const live = doc([{ host: "a.example.com", methods: ["GET"] }, { host: "b.example.com" }, { host: "other.example.com" }]);
  const r = rebaseRoutes(base, proposed, live);
  t.deepEqual(r.routes.routes.map((x) => x.host), ["a.example.com", "b.example.com", "new.example.com", "other.example.com"]);
  t.deepEqual(r.routes.routes[0], { host: "a.example.com", methods: ["GET"], path_allowlist: ["/"] }, "a change made meanwhile is kept");
  t.deepEqual(r.conflicts, []);
  t.deepEqual(r.summary, ["+ route new.example.com any method any path"]);
  // Proposal and live both changed the same route: a conflict.
  const r2 = rebaseRoutes(base, doc([{ host: "a.example.com", methods: ["POST"] }, { host: "b.example.com" }]), live);
  t.is(r2.conflicts.length, 1);
  t.regex(r2.conflicts[0]!, /route a.example.com changed since the proposal/);
  // Removal.
  t.deepEqual(rebaseRoutes(base, doc([{ host: "a.example.com" }]), base).summary, ["- route b.example.com any method any path"]);
});

test("plan: an allowlist change rewrites the live policy; pipelock.yaml is rendered from routes ∪ extras, SSRF exemptions and size caps kept", (t) => {
  const live: LiveState = { routes: doc([{ host: "github.com" }]), policy: { version: 1, pipelock_allowlist: ["old.example.com"], ssrf_ip_allowlist: ["10.9.0.0/16"], max_response_mib: 512 }, dockerfile: null };
  const plan = planChange({ kind: "pipelock_allowlist", allowlist: ["new.example.com"], base: ["old.example.com"] }, live);
  t.deepEqual(plan.next.policy, { version: 1, pipelock_allowlist: ["new.example.com"], ssrf_ip_allowlist: ["10.9.0.0/16"], max_response_mib: 512 });
  t.deepEqual(plan.next.routes, live.routes);
  t.deepEqual(plan.summary, ["+ pipelock allowlist new.example.com", "- pipelock allowlist old.example.com"]);
  t.deepEqual(plan.conflicts, []);
  const files = fileChanges(live, plan.next);
  t.deepEqual(files.map((f) => f.name), ["policy.yaml", "pipelock.yaml"]);
  const pipelock = pipelockConfigFor(plan.next.routes, plan.next.policy);
  t.deepEqual(pipelock.api_allowlist, ["github.com", "new.example.com"]);
  t.deepEqual(pipelock.ssrf, { ip_allowlist: ["10.9.0.0/16"] });
  t.is(pipelock.tls_interception.max_response_bytes, 512 * 1024 * 1024, "the manifest's cap survives an approval");
  t.is(files[1]!.after, pipelockConfigToYaml(pipelock));
});

test("server tools: the tool names only what changes; the plan flips those switches in routes.yaml and nothing else; route proposals leave them alone", (t) => {
  const live: LiveState = { ...EMPTY, routes: parseRoutesDocument({ routes: [{ host: "api.anthropic.com" }], server_tools: { web_search: true, code_execution: false } }) };
  const change = asTool("server_tools", { server_tools: { code_execution: true } }, live) as ProposalChange;
  t.deepEqual(change, { kind: "server_tools", server_tools: { web_search: true, code_execution: true }, base: { web_search: true, code_execution: false } });
  t.is(asTool("server_tools", { server_tools: { web_search: true } }, live), undefined, "already in effect");
  t.throws(() => asTool("server_tools", { server_tools: {} }, live), { message: /name at least one switch \(web_search, code_execution\)/ });
  t.throws(() => asTool("server_tools", { server_tools: { web_fetch: true } }, live), { message: /unknown key "web_fetch"/ });
  // Meanwhile the operator switched web_search off by hand: the proposal only brings code_execution.
  const moved: LiveState = { ...live, routes: { ...live.routes, server_tools: { web_search: false, code_execution: false } } };
  const plan = planChange(change, moved);
  t.deepEqual(plan.next.routes.server_tools, { web_search: false, code_execution: true });
  t.deepEqual(plan.next.routes.routes, live.routes.routes);
  t.deepEqual(plan.summary, ["~ server tool code_execution: off → on"]);
  t.deepEqual(fileChanges(moved, plan.next).map((f) => f.name), ["routes.yaml"], "egress reloads it; pipelock is untouched");
  t.deepEqual(PROPOSAL_KINDS.server_tools.configValue(plan.next, { dockerfileFile: "" }), { web_search: false, code_execution: true });
  // A routes proposal carries whatever switches the agent sent; the live ones stay, and are not persisted under "routes".
  const routesChange = asTool("egress_routes", { routes: { version: 1, routes: [{ host: "api.anthropic.com" }, { host: "x.example.com" }], server_tools: { web_search: true, code_execution: true } } }, moved) as ProposalChange;
  const routesPlan = planChange(routesChange, moved);
  t.deepEqual(routesPlan.next.routes.server_tools, { web_search: false, code_execution: false });
  t.deepEqual(PROPOSAL_KINDS.egress_routes.configValue(routesPlan.next, { dockerfileFile: "" }), { version: 1, routes: [{ host: "api.anthropic.com", path_allowlist: ["/"], methods: [...HTTP_METHODS] }, { host: "x.example.com", path_allowlist: ["/"], methods: [...HTTP_METHODS] }] });
});

test("plan: removing a route keeps its host in pipelock when it is also an extra (no subtraction)", (t) => {
  const live: LiveState = { routes: doc([{ host: "github.com" }, { host: "pypi.example.org" }]), policy: { version: 1, pipelock_allowlist: ["github.com"], ssrf_ip_allowlist: [] }, dockerfile: null };
  const plan = planChange({ kind: "egress_routes", routes: doc([{ host: "pypi.example.org" }]), base: live.routes }, live);
  t.deepEqual(plan.summary, ["- route github.com any method any path"]);
  t.deepEqual(plan.next.policy, live.policy);
  t.deepEqual(pipelockConfigFor(plan.next.routes, plan.next.policy).api_allowlist, ["github.com", "pypi.example.org"]);
  t.deepEqual(fileChanges(live, plan.next).map((f) => f.name), ["routes.yaml"], "pipelock.yaml does not change at all");
  // Without the extra, the host leaves pipelock with its route.
  const bare = { ...live, policy: EMPTY_POLICY };
  t.deepEqual(pipelockConfigFor(planChange({ kind: "egress_routes", routes: doc([{ host: "pypi.example.org" }]), base: bare.routes }, bare).next.routes, EMPTY_POLICY).api_allowlist, ["pypi.example.org"]);
});

test("plan: every kind names the stack config key it persists, and the MCP tool that proposes it", (t) => {
  const keys = Object.values(PROPOSAL_KINDS).map((k) => k.configKey);
  t.deepEqual(keys, ["routes", "pipelockAllowlist", "serverTools", "capabilityDockerfile"]);
  t.deepEqual(Object.values(PROPOSAL_KINDS).map((k) => k.tool.name), ["propose_egress_routes", "propose_pipelock_allowlist", "propose_server_tools", "propose_capability"]);
});

test("decisions are written once; the second writer is told", async (t) => {
  const dir = tmp();
  const d = { version: 1 as const, id: "p-0123abcd", decision: "rejected" as const, at: new Date().toISOString(), by: "op", reason: "no" };
  t.true(await writeDecision(dir, d));
  t.false(await writeDecision(dir, { ...d, decision: "approved", reason: undefined }));
  t.is((await readDecision(dir, "p-0123abcd"))?.decision, "rejected");
  t.deepEqual(fs.readdirSync(proposalPaths(dir).decisionsDir), ["p-0123abcd.json"], "no temp files left");
});

test("audit log: hash chain verifies, and any edit, deletion or reorder is detected", async (t) => {
  const file = path.join(tmp(), "supervise.jsonl");
  for (let i = 0; i < 5; i++) await appendAudit(file, { type: "proposed", bottle: "dev", id: `p-0000000${i}`, actor: "agent", justification: `j${i}` });
  const good = await readAudit(file);
  t.true(good.ok);
  t.is(good.lines.length, 5);
  t.deepEqual(good.lines.map((l) => l.seq), [0, 1, 2, 3, 4]);
  const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
  const edited = [...lines];
  edited[2] = edited[2]!.replace('"j2"', '"approved by nobody"');
  t.like(verifyAudit(edited.join("\n")), { ok: false, brokenAt: 3 });
  t.regex(verifyAudit(edited.join("\n")).problem!, /edited/);
  t.like(verifyAudit([lines[0], lines[1], lines[3], lines[4]].join("\n")), { ok: false, brokenAt: 3 });
  t.like(verifyAudit([lines[1], lines[0], ...lines.slice(2)].join("\n")), { ok: false, brokenAt: 1 });
  t.like(verifyAudit(lines.slice(0, 4).join("\n")), { ok: true }, "truncation at the end is only visible against the head hash, which `bottle audit` prints");
});

test("audit log: two processes appending at once keep one unbroken chain", async (t) => {
  const file = path.join(tmp(), "supervise.jsonl");
  const auditModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../store/audit.ts");
  const script = `import { appendAudit } from ${JSON.stringify(auditModule)};
for (let i = 0; i < 100; i++) await appendAudit(process.argv[1], { type: "merged", bottle: "dev", actor: process.argv[2] });`;
  const run = (who: string) =>
    new Promise<number>((resolve) => spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, file, who], { stdio: "inherit" }).on("exit", (c) => resolve(c ?? 1)));
  t.deepEqual(await Promise.all([run("a"), run("b")]), [0, 0]);
  const v = await readAudit(file);
  t.true(v.ok, v.problem);
  t.is(v.lines.length, 200);
  t.is(v.lines.filter((l) => l.actor === "a").length, 100);
});

test("risk flags: a credential on a host that does not receive it today needs --force; wildcards the approval adds are flagged", (t) => {
  const oauth = { host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" }, role: "claude_code_oauth" };
  const live: LiveState = { ...EMPTY, routes: doc([oauth, { host: "*.docs.example.com", methods: ["GET"] }]), policy: { ...EMPTY_POLICY, pipelock_allowlist: ["*.cdn.example.net"] } };
  const cases: { title: string; routes?: unknown[]; allowlist?: string[]; needsForce: RegExp[]; warnings: RegExp[] }[] = [
    { title: "nothing risky", routes: [oauth, { host: "*.docs.example.com", methods: ["GET"] }, { host: "pypi.example.org" }], needsForce: [], warnings: [] },
    {
      title: "the agent's own token attached to a new host",
      routes: [oauth, { host: "*.docs.example.com", methods: ["GET"] }, { host: "echo.example.org", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" } }],
      needsForce: [/^CREDENTIAL TO A NEW HOST: the token in \$CLAUDE_CODE_OAUTH_TOKEN would be injected into requests to echo\.example\.org; today it goes only to api\.anthropic\.com/],
      warnings: [],
    },
    {
      title: "a token no route sends today",
      routes: [oauth, { host: "*.docs.example.com", methods: ["GET"] }, { host: "api.github.com", auth: { scheme: "token", token_ref: "GH_TOKEN" } }],
      needsForce: [/\$GH_TOKEN would be injected into requests to api\.github\.com; today no route sends it/],
      warnings: [],
    },
    {
      title: "a credential moved to a wildcard",
      routes: [{ ...oauth, host: "*.anthropic.com" }, { host: "*.docs.example.com", methods: ["GET"] }],
      needsForce: [/requests to \*\.anthropic\.com/],
      warnings: [/^WILDCARD \*\.anthropic\.com: matches every subdomain of anthropic\.com, at any depth/],
    },
    { title: "a wildcard route widened", routes: [oauth, { host: "*.docs.example.com" }], needsForce: [], warnings: [/^WILDCARD \*\.docs\.example\.com: .*any method any path/] },
    { title: "a wildcard allowlist entry added", allowlist: ["*.cdn.example.net", "*.pkg.example.org"], needsForce: [], warnings: [/^WILDCARD \*\.pkg\.example\.org: .*\(pipelock allowlist\)$/] },
  ];
  for (const c of cases) {
    const change = c.routes
      ? { kind: "egress_routes" as const, routes: doc(c.routes), base: live.routes }
      : { kind: "pipelock_allowlist" as const, allowlist: c.allowlist!, base: live.policy.pipelock_allowlist };
    const plan = planChange(change, live);
    t.is(plan.needsForce.length, c.needsForce.length, `${c.title}: ${plan.needsForce.join(" | ")}`);
    c.needsForce.forEach((re, i) => t.regex(plan.needsForce[i] ?? "", re, c.title));
    t.is(plan.warnings.length, c.warnings.length, `${c.title}: ${plan.warnings.join(" | ")}`);
    c.warnings.forEach((re, i) => t.regex(plan.warnings[i] ?? "", re, c.title));
  }
});
