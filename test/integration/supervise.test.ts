// supervise end to end on loopback: the MCP SDK's own client talks streamable HTTP to the
// server; the operator decides through the CLI's command functions.
import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { parsePipelockConfig } from "../../contracts/pipelock.ts";
import { parsePolicyYaml } from "../../contracts/policy.ts";
import { TOOL_NAMES } from "../../contracts/proposals.ts";
import { parseRoutesDocument, parseRoutesYaml, renderRoutesYaml } from "../../contracts/routes.ts";
import { startSupervise, type RunningSupervise } from "../../sidecars/supervise/server.ts";
import { readAudit } from "../../store/audit.ts";
import { listProposals } from "../../store/proposals.ts";
import { cmdApprove, cmdPending, cmdReject } from "../../cli/commands.ts";
import { readStackFileConfig } from "../../cli/persist.ts";
import { capture, dirBottles, INITIAL_EXTRA, INITIAL_ROUTES, makeBottle, makeHome, until, type Fixture } from "./supervise-fixture.ts";

type Result = { content: { type: string; text: string }[]; structuredContent?: any; isError?: boolean };

async function connect(srv: RunningSupervise): Promise<Client> {
  const client = new Client({ name: "test-agent", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(srv.url)));
  return client;
}

async function setup(t: any, extra: Record<string, string> = {}) {
  const home = makeHome();
  const fx = makeBottle(home, "dev", extra);
  const srv = await startSupervise(fx.settings);
  const client = await connect(srv);
  t.teardown(async () => {
    await client.close().catch(() => {});
    await srv.close();
    fs.rmSync(home, { recursive: true, force: true });
  });
  return { home, fx, srv, client };
}

// The client's request timeout is short on purpose: only the server's keep-alives
// (progress notifications, which reset it) let a wait outlive it.
function call(client: Client, name: string, args: Record<string, unknown>, onprogress?: () => void, timeout = 10_000): Promise<Result> {
  return client.callTool({ name, arguments: args }, undefined, { onprogress: onprogress ?? (() => {}), resetTimeoutOnProgress: true, timeout }) as Promise<Result>;
}

async function pendingIds(fx: Fixture): Promise<string[]> {
  return (await listProposals(fx.layout.superviseDir)).filter((e) => !e.decision).map((e) => e.proposal.id);
}

async function onePending(fx: Fixture, n = 1): Promise<string[]> {
  return until(async () => {
    const ids = await pendingIds(fx);
    return ids.length === n && ids;
  }, 90_000, `${n} pending proposal(s)`);
}

const firstProposalCount = async (fx: Fixture) => (await listProposals(fx.layout.superviseDir))[0]?.proposal.count;

const NEW_ROUTE = { host: "registry.example.com", methods: ["get", "HEAD"], path_allowlist: ["/v2/"] };

test("lists the tools with the contracts' schemas as their input schemas", async (t) => {
  const { client } = await setup(t);
  const { tools } = await client.listTools();
  const names = tools.map((x) => x.name).sort();
  t.deepEqual(names, Object.values(TOOL_NAMES).sort());
  t.true(tools.find((x) => x.name === TOOL_NAMES.current)!.annotations?.readOnlyHint === true);
  // The agent sees the real shape of a route, not prose: field names, the method enum, the role enum.
  const routesTool = tools.find((x) => x.name === TOOL_NAMES.egress_routes)!.inputSchema as any;
  t.deepEqual(routesTool.required?.sort(), ["justification", "routes"]);
  t.false(routesTool.additionalProperties);
  const doc = routesTool.properties.routes.anyOf.find((s: any) => s.type === "object");
  const route = doc.properties.routes.items;
  t.deepEqual(Object.keys(route.properties).sort(), ["auth", "host", "methods", "path_allowlist", "role"]);
  t.deepEqual(route.properties.role.enum, ["claude_code_oauth", "anthropic_api_key"]);
  t.deepEqual(route.required, ["host"]);
  const allowlistTool = tools.find((x) => x.name === TOOL_NAMES.pipelock_allowlist)!.inputSchema as any;
  t.is(allowlistTool.properties.allowlist.type, "array");
  t.is(allowlistTool.properties.allowlist.items.type, "string");
  const awaitTool = tools.find((x) => x.name === TOOL_NAMES.await)!.inputSchema as any;
  t.is(awaitTool.properties.proposal_id.pattern, "^p-[0-9a-f]{8,32}$");
});

test("route proposal: long-polls with keep-alives, approved through the CLI, live + persisted, no drift", async (t) => {
  const { home, fx, client } = await setup(t);
  const before = JSON.parse((await call(client, TOOL_NAMES.current, {})).content[0]!.text);
  t.deepEqual(before.extra_allowlist, INITIAL_EXTRA);
  let progress = 0;
  const pending = call(client, TOOL_NAMES.egress_routes, { routes: { version: 1, routes: [...before.routes.routes, NEW_ROUTE] }, justification: "pull container images" }, () => progress++);
  const [id] = await onePending(fx);
  // The wait outlives the client's 5 s request timeout only thanks to the keep-alives; here
  // we just check they flow while the operator thinks.
  await until(() => progress >= 3, 5_000, "keep-alive progress notifications");
  const c = capture();
  t.is(await cmdApprove({ io: c.io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, id!), 0);
  t.is(c.out[0], `approved ${id} (egress_routes) for bottle dev-coder`);
  t.true(c.out.includes("  + route registry.example.com GET,HEAD /v2/"));
  t.true(c.out.some((l) => l.startsWith("persisted: wrote claude-bottle:routes into ")));

  const res = await pending;
  t.falsy(res.isError);
  t.is(res.structuredContent.status, "approved");
  t.deepEqual(res.structuredContent.changed, ["+ route registry.example.com GET,HEAD /v2/"]);
  t.regex(res.content[0]!.text, /Approved by the operator/);

  // The agent's view is live immediately.
  const after = JSON.parse((await call(client, TOOL_NAMES.current, {})).content[0]!.text);
  t.true(after.routes.routes.some((r: any) => r.host === "registry.example.com"));
  t.true(after.pipelock_allowlist.includes("registry.example.com"));
  t.deepEqual(after.extra_allowlist, INITIAL_EXTRA);
  t.deepEqual(after.pending, []);

  // Live files: valid for the sidecars' own parsers; pipelock keeps the rest of its file.
  const liveRoutes = parseRoutesYaml(fs.readFileSync(fx.layout.routesFile, "utf8"));
  const livePipelock = parsePipelockConfig(fs.readFileSync(fx.layout.pipelockFile, "utf8"));
  t.deepEqual(livePipelock.api_allowlist, ["api.anthropic.com", "extra.example.org", "github.com", "registry.example.com"]);
  t.is(livePipelock.mode, "strict");

  // Persisted: what the Bottle program reads back renders byte-identical live files (no drift).
  const persisted = readStackFileConfig({ projectDir: fx.projectDir, stack: "dev" }, "claude-bottle:routes");
  t.deepEqual(parseRoutesDocument(persisted), liveRoutes);
  t.is(renderRoutesYaml(parseRoutesDocument(persisted)), fs.readFileSync(fx.layout.routesFile, "utf8"));
  const stackText = fs.readFileSync(path.join(fx.projectDir, "Pulumi.dev.yaml"), "utf8");
  t.true(stackText.includes("# stack config of the dev bottle — keep this comment"));
  t.true(stackText.includes("aws:region: us-east-1"));

  // Audit: proposed then approved, chain intact.
  const audit = await readAudit(fx.layout.auditFile);
  t.true(audit.ok);
  t.deepEqual(audit.lines.map((l) => l.type), ["proposed", "approved"]);
});

test("allowlist proposal rejected with the operator's reason; nothing live changes", async (t) => {
  const { home, fx, client } = await setup(t);
  const routesBefore = fs.readFileSync(fx.layout.routesFile, "utf8");
  const pipelockBefore = fs.readFileSync(fx.layout.pipelockFile, "utf8");
  const pending = call(client, TOOL_NAMES.pipelock_allowlist, { allowlist: [...INITIAL_EXTRA, "pastebin.example.net"], justification: "share logs" });
  const [id] = await onePending(fx);
  const c = capture();
  t.is(await cmdReject({ io: c.io, bottles: dirBottles(home) }, id!, "no paste sites"), 0);
  t.deepEqual(c.out, [`rejected ${id} (pipelock_allowlist) for bottle dev-coder; the agent reads: no paste sites`]);
  const res = await pending;
  t.falsy(res.isError);
  t.is(res.structuredContent.status, "rejected");
  t.is(res.structuredContent.reason, "no paste sites");
  t.regex(res.content[0]!.text, /Rejected by the operator .*Reason: no paste sites/);
  t.is(fs.readFileSync(fx.layout.routesFile, "utf8"), routesBefore);
  t.is(fs.readFileSync(fx.layout.pipelockFile, "utf8"), pipelockBefore);
});

test("allowlist proposal approved: the live policy holds the extras, pipelock is rendered from routes ∪ extras, extras persisted", async (t) => {
  const { home, fx, client } = await setup(t);
  const pending = call(client, TOOL_NAMES.pipelock_allowlist, { allowlist: ["Docs.Example.NET", ...INITIAL_EXTRA], justification: "read docs" });
  const [id] = await onePending(fx);
  await cmdApprove({ io: capture().io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, id!);
  const res = await pending;
  t.deepEqual(res.structuredContent.changed, ["+ pipelock allowlist docs.example.net"]);
  const live = parsePipelockConfig(fs.readFileSync(fx.layout.pipelockFile, "utf8"));
  t.deepEqual(live.api_allowlist, ["api.anthropic.com", "docs.example.net", "extra.example.org", "github.com"]);
  t.deepEqual(parsePolicyYaml(fs.readFileSync(fx.layout.policyFile, "utf8")).pipelock_allowlist, ["docs.example.net", "extra.example.org"]);
  t.deepEqual(readStackFileConfig({ projectDir: fx.projectDir, stack: "dev" }, "claude-bottle:pipelockAllowlist"), ["docs.example.net", "extra.example.org"]);
  const view = JSON.parse((await call(client, TOOL_NAMES.current, {})).content[0]!.text);
  t.deepEqual(view.extra_allowlist, ["docs.example.net", "extra.example.org"]);
});

test("an extra host that is also a route host stays allowed when that route is removed (live)", async (t) => {
  const { home, fx, client } = await setup(t);
  // The operator also allowed github.com outright: it is a route host and an extra.
  const approveAllowlist = call(client, TOOL_NAMES.pipelock_allowlist, { allowlist: [...INITIAL_EXTRA, "github.com"], justification: "raw downloads without a route" });
  const [first] = await onePending(fx);
  await cmdApprove({ io: capture().io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, first!);
  t.is((await approveAllowlist).structuredContent.status, "approved");
  // Now the route goes away.
  const dropRoute = call(client, TOOL_NAMES.egress_routes, { routes: { version: 1, routes: INITIAL_ROUTES.routes.filter((r) => r.host !== "github.com") }, justification: "no more github API" });
  const [second] = await onePending(fx);
  const c = capture();
  await cmdApprove({ io: c.io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, second!);
  t.deepEqual((await dropRoute).structuredContent.changed, ["- route github.com GET /acme/"]);
  t.false(parseRoutesYaml(fs.readFileSync(fx.layout.routesFile, "utf8")).routes.some((r) => r.host === "github.com"));
  t.deepEqual(parsePolicyYaml(fs.readFileSync(fx.layout.policyFile, "utf8")).pipelock_allowlist, ["extra.example.org", "github.com"]);
  t.true(parsePipelockConfig(fs.readFileSync(fx.layout.pipelockFile, "utf8")).api_allowlist.includes("github.com"), "still allowed: it is an extra");
  t.false(c.out.some((l) => l.includes(fx.layout.pipelockFile)), "pipelock.yaml did not even change");
  const view = JSON.parse((await call(client, TOOL_NAMES.current, {})).content[0]!.text);
  t.deepEqual(view.extra_allowlist, ["extra.example.org", "github.com"]);
  t.true(view.pipelock_allowlist.includes("github.com"));
  t.deepEqual(readStackFileConfig({ projectDir: fx.projectDir, stack: "dev" }, "claude-bottle:pipelockAllowlist"), ["extra.example.org", "github.com"]);
});

test("capability proposal approved: Dockerfile stored in the bottle's host directory (what `pulumi up` builds from), rebuild command given", async (t) => {
  const { home, fx, client } = await setup(t);
  const dockerfile = "ARG BASE=debian:bookworm-slim\nFROM ${BASE}\nRUN apt-get update && apt-get install -y --no-install-recommends ripgrep\n";
  const pending = call(client, TOOL_NAMES.capability, { dockerfile, justification: "ripgrep for code search" });
  const [id] = await onePending(fx);
  const c = capture();
  await cmdApprove({ io: c.io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, id!);
  const stored = fx.host.capabilityDockerfile;
  t.is(fs.readFileSync(stored, "utf8"), dockerfile);
  t.true(stored.startsWith(fx.record.hostDir), "under the record's hostDir");
  t.true(c.out.includes("next: rebuild the agent image and resume the bottle with"));
  t.true(c.out.includes(`  pulumi up --yes --cwd ${fx.projectDir} --stack dev`));
  const res = await pending;
  t.is(res.structuredContent.status, "approved");
  t.is(res.structuredContent.command, `pulumi up --yes --cwd ${fx.projectDir} --stack dev`);
  t.is(readStackFileConfig({ projectDir: fx.projectDir, stack: "dev" }, "claude-bottle:capabilityDockerfile"), stored);
  const view = JSON.parse((await call(client, TOOL_NAMES.current, {})).content[0]!.text);
  t.is(view.capability_dockerfile, dockerfile);
  // Proposing the same Dockerfile again needs no operator.
  const again = await call(client, TOOL_NAMES.capability, { dockerfile, justification: "again" });
  t.regex(again.content[0]!.text, /No change needed/);
});

test("invalid proposals are immediate tool errors naming what is wrong; nothing reaches the operator", async (t) => {
  const { fx, client } = await setup(t);
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [TOOL_NAMES.egress_routes, { routes: { version: 1, routes: [{ host: "https://evil.example.com/x" }] }, justification: "x" }, /routes\[0\]\.host: expected a bare host name/],
    [TOOL_NAMES.egress_routes, { routes: { version: 1, routes: [{ host: "a.example.com" }, { host: "a.example.com" }] }, justification: "x" }, /routes\[1\]\.host: duplicate route/],
    [TOOL_NAMES.egress_routes, { routes: { version: 1, routes: [{ host: "a.example.com", metods: ["GET"] }] }, justification: "x" }, /unknown key "metods" — did you mean "methods"/],
    [TOOL_NAMES.egress_routes, { routes: { version: 1, routes: [] }, justification: "  " }, /justification.*a justification is required/],
    [TOOL_NAMES.egress_routes, { routes: [{ host: "registry.example.com" }], justification: "x" }, /drops the route for api\.anthropic\.com \(role claude_code_oauth\); send the FULL new document/],
    [TOOL_NAMES.pipelock_allowlist, { allowlist: ["10.0.0.1"], justification: "x" }, /\[0\]: expected a host name, got the IP-like/],
    [TOOL_NAMES.capability, { dockerfile: "RUN rm -rf /", justification: "x" }, /first instruction .* is FROM/],
  ];
  for (const [tool, args, re] of cases) {
    const res = await call(client, tool, args);
    t.true(res.isError, `${tool} ${JSON.stringify(args)}`);
    t.regex(res.content[0]!.text, /^Invalid proposal, nothing was sent to the operator\./);
    t.regex(res.content[0]!.text, re);
  }
  t.deepEqual(await pendingIds(fx), []);
  const audit = await readAudit(fx.layout.auditFile);
  t.true(audit.ok);
  t.is(audit.lines.filter((l) => l.type === "invalid").length, cases.length);
});

test.serial("200 concurrent pending proposals are held and each gets its own decision", async (t) => {
  const { home, fx, client } = await setup(t, { SUPERVISE_KEEPALIVE_MS: "1000" });
  t.timeout(300_000);
  const N = 200;
  const calls = Array.from({ length: N }, (_, i) => call(client, TOOL_NAMES.pipelock_allowlist, { allowlist: [...INITIAL_EXTRA, `h${i}.example.com`], justification: `need h${i}` }, undefined, 120_000));
  const ids = await onePending(fx, N);
  const c = capture();
  await cmdPending({ io: c.io, bottles: dirBottles(home) });
  t.is(c.out.length, N + 1);
  // Approve two (they rebase onto each other), reject the rest.
  const byHost = new Map((await listProposals(fx.layout.superviseDir)).map((e) => [(e.proposal.change as any).allowlist.find((h: string) => h.startsWith("h")), e.proposal.id]));
  await cmdApprove({ io: capture().io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, byHost.get("h0.example.com")!);
  await cmdApprove({ io: capture().io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, byHost.get("h1.example.com")!);
  for (const id of ids) if (id !== byHost.get("h0.example.com") && id !== byHost.get("h1.example.com")) await cmdReject({ io: capture().io, bottles: dirBottles(home) }, id, `not ${id}`);
  const results = await Promise.all(calls);
  t.is(results[0]!.structuredContent.status, "approved");
  t.is(results[1]!.structuredContent.status, "approved");
  for (let i = 2; i < N; i++) {
    t.is(results[i]!.structuredContent.status, "rejected");
    t.is(results[i]!.structuredContent.reason, `not ${results[i]!.structuredContent.proposal_id}`);
  }
  const live = parsePipelockConfig(fs.readFileSync(fx.layout.pipelockFile, "utf8"));
  t.true(live.api_allowlist.includes("h0.example.com") && live.api_allowlist.includes("h1.example.com"));
  t.true((await readAudit(fx.layout.auditFile)).ok);
});

test("identical pending proposals are merged: one for the operator, every caller answered", async (t) => {
  const { home, fx, client } = await setup(t);
  const doc = { version: 1, routes: [...INITIAL_ROUTES.routes, NEW_ROUTE] };
  const calls = Array.from({ length: 10 }, (_, i) => call(client, TOOL_NAMES.egress_routes, { routes: doc, justification: `try ${i}` }));
  await until(async () => (await firstProposalCount(fx)) === 10, 30_000, "10 merged requests");
  const [id] = await onePending(fx);
  const c = capture();
  await cmdPending({ io: c.io, bottles: dirBottles(home) });
  t.regex(c.out[1]!, new RegExp(`^${id}\\s+dev-coder\\s+test\\s+egress_routes\\s+\\d+s\\s+10×\\s+\\+ route registry.example.com`));
  await cmdApprove({ io: capture().io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, id!);
  const results = await Promise.all(calls);
  for (const r of results) t.is(r.structuredContent.proposal_id, id);
  for (const r of results) t.is(r.structuredContent.status, "approved");
});

test("supervise restart with pending proposals: nothing lost, the call resumes", async (t) => {
  const home = makeHome();
  t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
  const fx = makeBottle(home);
  const srv1 = await startSupervise(fx.settings);
  const client1 = await connect(srv1);
  const doc = { version: 1, routes: [...INITIAL_ROUTES.routes, NEW_ROUTE] };
  const cut = call(client1, TOOL_NAMES.egress_routes, { routes: doc, justification: "before restart" }).then(
    () => "resolved",
    () => "cut",
  );
  const [id] = await onePending(fx);
  await srv1.close();
  t.is(await cut, "cut");
  await client1.close().catch(() => {});

  const srv2 = await startSupervise({ ...fx.settings, SUPERVISE_LISTEN: "127.0.0.1:0" });
  const client2 = await connect(srv2);
  t.teardown(async () => {
    await client2.close().catch(() => {});
    await srv2.close();
  });
  t.deepEqual(await pendingIds(fx), [id]);
  // Resume explicitly by id, and by re-proposing the same thing (merged into the same id).
  const resumed = call(client2, TOOL_NAMES.await, { proposal_id: id });
  const reproposed = call(client2, TOOL_NAMES.egress_routes, { routes: doc, justification: "after restart" });
  await until(async () => (await firstProposalCount(fx)) === 2, 5_000, "merge after restart");
  t.deepEqual(await pendingIds(fx), [id]);
  await cmdApprove({ io: capture().io, bottles: dirBottles(home), apply: { docker: false, usePulumi: false } }, id!);
  t.is((await resumed).structuredContent.status, "approved");
  t.is((await reproposed).structuredContent.proposal_id, id);
  // Decided proposals answer await_decision at once; unknown ids are errors.
  t.is((await call(client2, TOOL_NAMES.await, { proposal_id: id })).structuredContent.status, "approved");
  const unknown = await call(client2, TOOL_NAMES.await, { proposal_id: "p-00000000" });
  t.true(unknown.isError);
});

test.serial("keep-alives keep a wait alive past the client's request timeout", async (t) => {
  const { home, fx, client } = await setup(t, { SUPERVISE_KEEPALIVE_MS: "100" });
  const started = Date.now();
  const pending = client.callTool(
    { name: TOOL_NAMES.pipelock_allowlist, arguments: { allowlist: ["late.example.com"], justification: "slow operator" } },
    undefined,
    { timeout: 400, resetTimeoutOnProgress: true, onprogress: () => {} },
  ) as Promise<Result>;
  const [id] = await onePending(fx);
  await new Promise((r) => setTimeout(r, 1500));
  await cmdReject({ io: capture().io, bottles: dirBottles(home) }, id!, "later");
  const res = await pending;
  t.true(Date.now() - started > 1400);
  t.is(res.structuredContent.status, "rejected");
});
