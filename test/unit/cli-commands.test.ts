// The operator CLI's printed output, user mistakes (clear message, no stack trace), and
// the real `bottle` bin once. Proposals come from the Supervisor class directly (no HTTP).
import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Supervisor } from "../../sidecars/supervise/supervisor.ts";
import { parseRoutesDocument, parseRoutesYaml } from "../../contracts/routes.ts";
import { withoutSeal } from "../../contracts/seal.ts";
import { main, USAGE } from "../../cli/commands.ts";
import { capture, dirBottles, INITIAL_ROUTES, makeBottle, makeHome } from "../integration/supervise-fixture.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const supervisors: Supervisor[] = [];
test.after.always(() => supervisors.forEach((s) => s.close()));

const routesDoc = (routes: unknown[]) => parseRoutesDocument({ version: 1, routes });

async function world() {
  const home = makeHome();
  const fx = makeBottle(home, "dev");
  const sup = await Supervisor.open(fx.settings);
  supervisors.push(sup);
  return { home, fx, sup };
}

async function run(home: string, ...argv: string[]) {
  const c = capture();
  const code = await main(argv, { io: c.io, bottles: dirBottles(home), now: Date.now(), apply: { docker: false, usePulumi: false, by: "alice" } });
  return { code, out: c.out, err: c.err };
}

test("pending: empty, then a table of every bottle's pending proposals", async (t) => {
  const { home, fx, sup } = await world();
  t.deepEqual(await run(home, "pending"), { code: 0, out: ["no pending proposals (1 bottle on 1 host)"], err: [] });
  const fx2 = makeBottle(home, "web");
  const sup2 = await Supervisor.open(fx2.settings);
  supervisors.push(sup2);
  await sup.propose({ kind: "egress_routes", routes: routesDoc([...INITIAL_ROUTES.routes, { host: "pypi.example.org", methods: ["GET"] }]), base: INITIAL_ROUTES }, "pip install");
  await sup2.propose({ kind: "pipelock_allowlist", allowlist: ["docs.example.net", "extra.example.org"], base: ["extra.example.org"] }, "docs");
  await sup2.propose({ kind: "pipelock_allowlist", allowlist: ["docs.example.net", "extra.example.org"], base: ["extra.example.org"] }, "docs again");
  const r = await run(home, "pending");
  t.is(r.code, 0);
  t.is(r.out.length, 3);
  t.regex(r.out[0]!, /^ID +BOTTLE +HOST +KIND +AGE +ASKED +CHANGE$/);
  t.regex(r.out[1]!, /^p-[0-9a-f]{8}  dev-coder  test  egress_routes +\d+s +1× +\+ route pypi\.example\.org GET any path$/);
  t.regex(r.out[2]!, /^p-[0-9a-f]{8}  web-coder  test  pipelock_allowlist +\d+s +2× +\+ pipelock allowlist docs\.example\.net$/);
  sup.close();
  sup2.close();
  void fx;
});

test("show: justification, changes and a diff of before → after; agent text cannot drive the terminal", async (t) => {
  const { home, sup } = await world();
  const { proposal } = await sup.propose(
    { kind: "egress_routes", routes: routesDoc([INITIAL_ROUTES.routes[0], { host: "pypi.example.org", methods: ["GET"] }]), base: INITIAL_ROUTES },
    "swap github for pypi\u001b[2J\u001b]0;pwned\u0007",
  );
  const r = await run(home, "show", proposal.id);
  t.is(r.code, 0);
  const text = r.out.join("\n");
  t.false(text.includes("\u001b"), "escape sequences from the agent are neutralised");
  t.true(r.out.includes("  swap github for pypi\\u001b[2J\\u001b]0;pwned\\u0007"));
  t.is(r.out[0], `proposal ${proposal.id}  egress_routes  bottle dev (dev-coder) on test`);
  t.true(r.out.includes("status: pending"));
  t.true(r.out.includes("changes:"));
  t.true(r.out.includes("  + route pypi.example.org GET any path"));
  t.true(r.out.includes("  - route github.com GET /acme/"));
  t.true(r.out.includes("--- routes.yaml (live)"));
  t.true(r.out.includes("+++ routes.yaml (after approval)"));
  t.true(r.out.includes("-   - host: github.com"));
  t.true(r.out.includes("+   - host: pypi.example.org"));
  t.true(r.out.includes("--- pipelock.yaml (live)"));
  t.true(r.out.includes('+   - "pypi.example.org"'));
  t.true(r.out.includes('-   - "github.com"'));
  // A unique prefix works too.
  t.is((await run(home, "show", proposal.id.slice(0, 6))).code, 0);
  sup.close();
});

test("approve then reject: printed results; a decided proposal cannot be decided again", async (t) => {
  const { home, fx, sup } = await world();
  const a = (await sup.propose({ kind: "pipelock_allowlist", allowlist: ["docs.example.net", "extra.example.org"], base: ["extra.example.org"] }, "docs")).proposal;
  const b = (await sup.propose({ kind: "pipelock_allowlist", allowlist: [], base: ["extra.example.org"] }, "tidy")).proposal;
  const r = await run(home, "approve", a.id);
  t.is(r.code, 0, r.err.join("\n"));
  t.deepEqual(r.out, [
    `approved ${a.id} (pipelock_allowlist) for bottle dev-coder`,
    "  + pipelock allowlist docs.example.net",
    `live: wrote ${fx.layout.policyFile}, ${fx.layout.pipelockFile}`,
    "reload: reload signals off: cb-dev-pipelock loads pipelock.yaml on the file change (not confirmed)",
    `persisted: wrote claude-bottle:pipelockAllowlist into ${path.join(fx.projectDir, "Pulumi.dev.yaml")}`,
  ]);
  t.deepEqual(await run(home, "approve", a.id), { code: 1, out: [], err: [`bottle: proposal ${a.id} is already approved`] });
  t.deepEqual(await run(home, "reject", b.id), { code: 1, out: [], err: ['bottle: a reason is required: bottle reject <id> --reason "…" (the agent reads it)'] });
  t.deepEqual(await run(home, "reject", b.id, "--reason", "keep extra.example.org"), {
    code: 0,
    out: [`rejected ${b.id} (pipelock_allowlist) for bottle dev-coder; the agent reads: keep extra.example.org`],
    err: [],
  });
  const shown = await run(home, "show", a.id);
  t.true(shown.out.some((l) => /^status: approved by alice at /.test(l)));
  t.true(shown.out.includes("applied:"));
  sup.close();
});

test("audit: entries listed, chain verified; tampering is reported with exit 1", async (t) => {
  const { home, fx, sup } = await world();
  const { proposal } = await sup.propose({ kind: "pipelock_allowlist", allowlist: ["x.example.com"], base: [] }, "need x");
  await run(home, "reject", proposal.id, "-m", "no");
  const r = await run(home, "audit", "dev");
  t.is(r.code, 0);
  t.is(r.out.length, 3);
  t.regex(r.out[0]!, new RegExp(`^#0  \\S+  proposed  ${proposal.id}  pipelock_allowlist  +agent  need x$`));
  t.regex(r.out[1]!, new RegExp(`^#1  \\S+  rejected  ${proposal.id}  pipelock_allowlist  +alice  reason: no$`));
  t.regex(r.out[2]!, /^audit chain OK: 2 entries, head [0-9a-f]{16}$/);
  const json = await run(home, "audit", "dev-coder", "--json");
  t.is(JSON.parse(json.out[1]!).type, "rejected");
  const file = fx.layout.auditFile;
  fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('"reason":"no"', '"reason":"yes"'));
  const bad = await run(home, "audit", "dev");
  t.is(bad.code, 1);
  t.deepEqual(bad.err, [`audit chain BROKEN at line 2 of ${file} in cb-dev-state on test: content does not match its hash (the line was edited)`]);
  // a log file on this machine (kept from before the state volumes) is verified the same way
  const local = await run(home, "audit", "--file", file);
  t.is(local.code, 1);
  t.deepEqual(local.err, [`audit chain BROKEN at line 2 of ${file}: content does not match its hash (the line was edited)`]);
  sup.close();
});

test("user mistakes: clear one-line errors and exit codes, never a stack trace", async (t) => {
  const { home, sup } = await world();
  t.deepEqual(await run(home, "show", "p-deadbeef"), { code: 1, out: [], err: [`bottle: no proposal "p-deadbeef" on ${home}; \`bottle pending\` lists the 0 pending ones`] });
  t.deepEqual(await run(home, "approve", "nope"), { code: 1, out: [], err: [`bottle: no proposal "nope" on ${home}; \`bottle pending\` lists the 0 pending ones`] });
  t.deepEqual(await run(home, "audit", "prod"), { code: 1, out: [], err: [`bottle: no bottle "prod" on ${home}; known: dev-coder@test`] });
  t.deepEqual(await run(home, "audit", "dev-coder@elsewhere"), { code: 1, out: [], err: [`bottle: no bottle "dev-coder@elsewhere" on ${home}; known: dev-coder@test`] });
  t.is((await run(home, "audit", "dev-coder@test")).code, 0, "<identity>@<host> names a bottle");
  const unknown = await run(home, "frobnicate");
  t.is(unknown.code, 2);
  t.is(unknown.err[0], 'bottle: unknown command "frobnicate"');
  const extra = await run(home, "show");
  t.is(extra.code, 2);
  t.is(extra.err[0], "bottle: bottle show takes one proposal id");
  const badFlag = await run(home, "pending", "--colour");
  t.is(badFlag.code, 2);
  t.regex(badFlag.err[0]!, /^bottle: Unknown option '--colour'/);
  t.deepEqual(await run(home, "--help"), { code: 0, out: USAGE.split("\n"), err: [] });
  const none = await run(home);
  t.is(none.code, 2);
  sup.close();
});

test("logs: a sidecar's recent log in time order, pipelock's known noise hidden unless --all", async (t) => {
  const { home, fx, sup } = await world();
  const dir = fs.mkdtempSync(path.join(home, "bin-"));
  const docker = path.join(dir, "docker");
  const j = (o: object) => JSON.stringify(o).replace(/"/g, '\\"');
  // what the real binary logs (shared facts, "Measured on the real binary"): stdout JSON, stderr text
  fs.writeFileSync(
    docker,
    `#!/bin/sh
[ "$*" = "logs --timestamps --tail 200 ${fx.record.containers.pipelock}" ] || { echo "unexpected: $*" >&2; exit 1; }
echo "2026-11-29T15:00:01Z ${j({ level: "info", event: "startup", config_hash: "ab", message: "pipelock started" })}"
echo "2026-11-29T15:00:03Z ${j({ level: "warn", event: "anomaly", url: "api.github.com:443", scanner: "tls_intercept", reason: "TLS MITM interception active", score: 0 })}"
echo "2026-11-29T15:00:04Z ${j({ level: "warn", event: "blocked", scanner: "body_dlp", reason: "request body contains secret: AWS Access ID" })}"
echo "2026-11-29T15:00:05Z ${j({ level: "error", event: "error", method: "CONNECT", error: "use of closed network connection" })}"
echo "2026-11-29T15:00:00Z WARNING: something at start" >&2
echo "2026-11-29T15:00:06Z WARNING: config reload: ssrf.ip_allowlist - SSRF IP allowlist expanded: 192.0.2.0/24" >&2
`,
    { mode: 0o755 },
  );
  const c = capture();
  t.is(await main(["logs", "dev", "pipelock"], { io: c.io, bottles: dirBottles(home), apply: { docker } }), 0, c.err.join("\n"));
  t.deepEqual(c.out, [
    `2026-11-29T15:00:01.000Z {"level":"info","event":"startup","config_hash":"ab","message":"pipelock started"}`,
    `2026-11-29T15:00:04.000Z {"level":"warn","event":"blocked","scanner":"body_dlp","reason":"request body contains secret: AWS Access ID"}`,
    "2026-11-29T15:00:06.000Z WARNING: config reload: ssrf.ip_allowlist - SSRF IP allowlist expanded: 192.0.2.0/24",
    "(3 of the last 200 lines hidden: pipelock's known noise; --all shows them)",
  ]);
  const everything = capture();
  t.is(await main(["logs", "dev", "pipelock", "--all"], { io: everything.io, bottles: dirBottles(home), apply: { docker } }), 0);
  t.is(everything.out.length, 6);
  t.regex(everything.out[0]!, /WARNING: something at start$/, "stdout and stderr merged in time order");
  const none = capture();
  t.is(await main(["logs", "dev", "git-gate"], { io: none.io, bottles: dirBottles(home), apply: { docker } }), 1);
  t.regex(none.err[0]!, /has no git-gate container \(it has: agent, egress, pipelock, supervise, state\)/);
  sup.close();
});

test("a corrupt proposal file is skipped with a warning, not a crash", async (t) => {
  const { home, fx, sup } = await world();
  fs.mkdirSync(path.join(fx.layout.superviseDir, "proposals"), { recursive: true });
  fs.writeFileSync(path.join(fx.layout.superviseDir, "proposals", "p-00000000.json"), "{ not json");
  const r = await run(home, "pending");
  t.is(r.code, 0);
  t.deepEqual(r.out, ["no pending proposals (1 bottle on 1 host)"]);
  t.regex(r.err[0]!, /^warning: skipping .*p-00000000\.json: .*not valid JSON/);
  sup.close();
});

test("the bottle bin: runs through its shebang; it looks for bottles through the Docker API (an engine it cannot reach is a warning, not a crash); user errors print one line on stderr", async (t) => {
  const empty = fs.mkdtempSync(path.join(makeHome(), "docker-config-"));
  const bin = path.join(root, "cli", "bottle.ts");
  // no context but the default, pointed at a socket nothing listens on
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: empty, DOCKER_HOST: `unix://${path.join(empty, "none.sock")}` };
  delete env.DOCKER_CONTEXT;
  const exec = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(bin, args, { cwd: root, env }, (err, stdout, stderr) => resolve({ code: err ? ((err as any).code as number) : 0, stdout, stderr })),
    );
  const pending = await exec("pending");
  t.is(pending.code, 0, pending.stderr);
  t.is(pending.stdout, "no pending proposals (0 bottles on 0 hosts)\n");
  t.regex(pending.stderr, /^warning: cannot list bottles on DOCKER_HOST \(unix:\/\/.*none\.sock\): /m);
  const bad = await exec("approve", "p-ffffffff");
  t.is(bad.code, 1);
  t.is(bad.stderr, "bottle: no proposal \"p-ffffffff\" on the Docker engines of your docker contexts and DOCKER_HOST; `bottle pending` lists the 0 pending ones\n");
  const dash = await exec("dashboard");
  t.is(dash.code, 1);
  t.regex(dash.stderr, /the dashboard needs an interactive terminal/);
});

test("seal: a hand-edited routes.yaml is validated and re-sealed; an invalid edit or another file is refused", async (t) => {
  const { home, fx } = await world();
  const file = fx.layout.routesFile;
  const before = fs.readFileSync(file, "utf8");
  t.deepEqual(await run(home, "seal", "dev", "routes.yaml"), { code: 0, out: [`${file} of dev-coder is already sealed`], err: [] });
  // A hand edit: the old seal no longer matches, so egress would refuse the file until it is re-sealed.
  const edited = before.replace("- host: github.com", "- host: github.example.org");
  fs.writeFileSync(file, edited);
  t.throws(() => parseRoutesYaml(edited), { message: /not applied/ });
  const r = await run(home, "seal", "dev", "routes.yaml");
  t.is(r.code, 0, r.err.join("\n"));
  t.regex(r.out[0]!, /^sealed .*routes\.yaml of dev-coder \(# claude-bottle-sha256: [0-9a-f]{64}\); the sidecar reloads it on the file change$/);
  t.true(parseRoutesYaml(fs.readFileSync(file, "utf8")).routes.some((x) => x.host === "github.example.org"));
  // An edit the reader would refuse is not sealed (the file stays as it was).
  fs.writeFileSync(file, withoutSeal(before).replace("\nroutes:\n", '\nroutes:\n  - host: "*.com"\n    path_allowlist: [/]\n    methods: [GET]\n'));
  const bad = await run(home, "seal", "dev", "routes.yaml");
  t.is(bad.code, 1);
  t.regex(bad.err[0]!, /routes\[\d+\]\.host: "\*\.com" is too broad/);
  t.throws(() => parseRoutesYaml(fs.readFileSync(file, "utf8")), { message: /not applied/ });
  const pl = await run(home, "seal", "dev", "pipelock.yaml");
  t.is(pl.code, 1);
  t.regex(pl.err[0]!, /is rendered from routes\.yaml and policy\.yaml/);
});

test("a credential sent to a new host: show flags it in bold words, pending marks it, approve needs --force", async (t) => {
  const { home, fx, sup } = await world();
  const routes = routesDoc([...INITIAL_ROUTES.routes, { host: "echo.example.org", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" } }, { host: "*.pages.example.org" }]);
  const { proposal } = await sup.propose({ kind: "egress_routes", routes, base: INITIAL_ROUTES }, "the echo service needs my token");
  const shown = await run(home, "show", proposal.id);
  t.true(shown.out.some((l) => /^!! CREDENTIAL TO A NEW HOST: the token in \$CLAUDE_CODE_OAUTH_TOKEN would be injected into requests to echo\.example\.org; today it goes only to api\.anthropic\.com .*\(approve needs --force\)$/.test(l)), shown.out.join("\n"));
  t.true(shown.out.some((l) => /^!! WILDCARD \*\.pages\.example\.org: matches every subdomain of pages\.example\.org, at any depth/.test(l)));
  // On a terminal the flags are bold; nothing else is.
  const c = capture();
  await main(["show", proposal.id], { io: c.io, bottles: dirBottles(home), color: true });
  t.true(c.out.filter((l) => l.startsWith("\u001b[1m!! ")).length === 2 && c.out.every((l) => l.startsWith("\u001b[1m!! ") || !l.includes("\u001b")));
  t.regex((await run(home, "pending")).out[1]!, /\[CREDENTIAL TO A NEW HOST\] \[WILDCARD\] \+ route echo\.example\.org/);
  const refused = await run(home, "approve", proposal.id);
  t.is(refused.code, 1);
  t.regex(refused.err[0]!, /sends a credential where it does not go today/);
  t.false(fs.readFileSync(fx.layout.routesFile, "utf8").includes("echo.example.org"), "nothing written");
  const forced = await run(home, "approve", proposal.id, "--force");
  t.is(forced.code, 0, forced.err.join("\n"));
  t.true(fs.readFileSync(fx.layout.routesFile, "utf8").includes("echo.example.org"));
  sup.close();
});
