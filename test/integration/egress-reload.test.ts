// The egress entry point as a real process (main.ts: settings from env, signals), upstream
// through a pipelock stand-in. Reload on file change and on SIGHUP under concurrent load with
// zero failed requests; an invalid file keeps the old routes; SIGTERM finishes in-flight work.
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { parseRoutesDocument, renderRoutesYaml } from "../../contracts/routes.ts";
import { seal } from "../../contracts/seal.ts";
import { writeFileAtomic } from "../../store/io.ts";
import { startTestUpstream } from "./helpers/https-upstream.ts";
import { agentRequest, proxiedAgent, startFakePipelock } from "./helpers/egress-harness.ts";
import { createTestCa } from "./helpers/tls.ts";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** routes.yaml as the components write it (sealed, explicit); `rules` restricts hosts. */
const routesYaml = (hosts: string[], rules: Record<string, Record<string, unknown>> = {}) =>
  renderRoutesYaml(parseRoutesDocument({ version: 1, routes: hosts.map((host) => (host === "auth.test.example" ? { host, auth: { scheme: "bearer", token_ref: "TEST_OAUTH" } } : { host, ...rules[host] })) }));

test("reload on file change and SIGHUP under load: zero failed requests; invalid file keeps old routes; SIGTERM drains", async (t) => {
  const up = await startTestUpstream();
  const pl = await startFakePipelock(up);
  const ca = await createTestCa("egress reload CA");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-egress-reload-"));
  const routesFile = path.join(dir, "egress", "routes.yaml");
  writeFileAtomic(routesFile, routesYaml(["api.test.example", "auth.test.example"]));
  fs.writeFileSync(path.join(dir, "ca.pem"), ca.certPem);
  fs.writeFileSync(path.join(dir, "ca-key.pem"), ca.keyPem, { mode: 0o600 });
  const port = await freePort();
  const auditFile = path.join(dir, "audit", "egress.jsonl");
  let stderr = "";
  // EGRESS_TEST_BUNDLE=1 runs the esbuild bundle the image runs (npm run build:sidecars first);
  // EGRESS_TEST_NODE=/path/to/node runs it with another node (e.g. Debian bookworm's 18).
  const entry = process.env.EGRESS_TEST_BUNDLE ? [path.join(repo, "sidecars/egress/dist/main.mjs")] : ["--import", "tsx", path.join(repo, "sidecars/egress/main.ts")];
  const child: ChildProcess = spawn(process.env.EGRESS_TEST_NODE || process.execPath, entry, {
    cwd: repo,
    env: {
      PATH: process.env.PATH,
      ...(process.env.LD_LIBRARY_PATH ? { LD_LIBRARY_PATH: process.env.LD_LIBRARY_PATH } : {}),
      EGRESS_LISTEN: `127.0.0.1:${port}`,
      EGRESS_ROUTES_FILE: routesFile,
      EGRESS_CA_CERT_FILE: path.join(dir, "ca.pem"),
      EGRESS_CA_KEY_FILE: path.join(dir, "ca-key.pem"),
      EGRESS_UPSTREAM_PROXY: pl.url,
      EGRESS_UPSTREAM_CA_FILES: up.caFile,
      EGRESS_AUDIT_LOG: auditFile,
      EGRESS_SUPERVISE_TOOL: "propose_egress_routes",
      TEST_OAUTH: "reload-secret-789",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  // The load loops must stop whatever happens, or a failed run spins on refused connections.
  let stopLoad = () => {};
  try {
    const health = async () => {
      const r = await fetch(`http://127.0.0.1:${port}/__egress/health`);
      return r.status === 200 ? ((await r.json()) as { generation: number; routes: number }) : undefined;
    };
    const h0 = await until("health", health);
    t.is(h0.routes, 2);

    // Concurrent load: keep-alive clients and fresh-connection clients on a route that stays.
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    stopLoad = () => {
      running = false;
    };
    const keepAlive = proxiedAgent(port, ca.certPem, 8);
    const loop = async (fresh: boolean) => {
      while (running) {
        const agent = fresh ? proxiedAgent(port, ca.certPem, 1) : keepAlive;
        try {
          const r = await agentRequest(agent, "api.test.example", "/load");
          if (r.status === 200) ok++;
          else failures.push(`${r.status} ${r.body}`);
        } catch (e) {
          failures.push(String(e));
        } finally {
          if (fresh) agent.destroy();
        }
      }
    };
    const loops = [...Array.from({ length: 8 }, () => loop(false)), ...Array.from({ length: 4 }, () => loop(true))];

    const probe = proxiedAgent(port, ca.certPem, 2);
    const status = async (host: string) => (await agentRequest(probe, host, "/probe")).status;
    t.is(await status("new.test.example"), 403);

    // 1. File change (atomic rename in the watched directory) adds a route.
    writeFileAtomic(routesFile, routesYaml(["api.test.example", "auth.test.example", "new.test.example"]));
    await until("file-change reload", async () => ((await status("new.test.example")) === 200 ? true : undefined));

    // 2. An invalid file is rejected with a reason; the old routes stay.
    writeFileAtomic(routesFile, seal("version: 1\nroutes:\n  - host: api.test.example\n    pathallowlist: [/x]\n"));
    await until("rejection logged", async () => (stderr.includes("routes file NOT applied") ? true : undefined));
    t.regex(stderr, /pathallowlist/);
    t.is(await status("new.test.example"), 200);
    t.is(await status("api.test.example"), 200);

    // 2b. A slow writer rewrites the file IN PLACE (truncate, a prefix on a line boundary, a
    // pause, the rest: `cat > routes.yaml`, an editor): no prefix is ever applied, however well
    // it parses — here the prefix ends right before new.test.example's restrictions.
    const g0 = (await health())!.generation;
    const restricted = routesYaml(["api.test.example", "auth.test.example", "new.test.example"], { "new.test.example": { path_allowlist: ["/only"], methods: ["GET"] } });
    const cut = restricted.indexOf("    path_allowlist:\n      - /only");
    t.true(cut > 0);
    const notApplied = (stderr.match(/routes file NOT applied/g) ?? []).length;
    const fd = fs.openSync(routesFile, "r+");
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, restricted.slice(0, cut), 0);
    await until("prefix refused", async () => ((stderr.match(/routes file NOT applied/g) ?? []).length > notApplied ? true : undefined));
    t.regex(stderr.slice(-2000), /does not end with its completeness line/);
    t.is((await health())!.generation, g0, "nothing was applied while the file was incomplete");
    t.is(await status("new.test.example"), 200, "the previous routes are in force");
    fs.writeSync(fd, restricted.slice(cut), cut);
    fs.closeSync(fd);
    await until("complete file applied", async () => ((await health())!.generation > g0 ? true : undefined));
    t.is(await status("new.test.example"), 403, "/probe is outside the new path rule");

    // 3. SIGHUP reloads (forced, even with unchanged content) once the file is valid again.
    writeFileAtomic(routesFile, routesYaml(["api.test.example", "auth.test.example"]));
    await until("route removed", async () => ((await status("new.test.example")) === 403 ? true : undefined));
    const g1 = (await health())!.generation;
    child.kill("SIGHUP");
    await until("SIGHUP reload", async () => ((await health())!.generation > g1 ? true : undefined));
    // stderr arrives through a pipe, possibly after the health answer: wait for the line.
    await until("SIGHUP logged", async () => (/SIGHUP: reloading routes/.test(stderr) ? true : undefined));

    // Let the load run a little past the last reload, then stop it.
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(loops);
    keepAlive.destroy();
    t.deepEqual(failures, [], "no request failed across reloads");
    t.true(ok > 50, `load ran (${ok} requests)`);

    // Injection still works after reloads; the audit file never holds the token.
    const inj = await agentRequest(probe, "auth.test.example", "/v1", { headers: { authorization: "Bearer claude-bottle-placeholder" } });
    t.is(up.seen.at(-1)!.headers.authorization, "Bearer reload-secret-789");
    t.false(inj.body.includes("reload-secret-789"), "the upstream's echo of the token is redacted");
    await until("audit flushed", async () => (fs.existsSync(auditFile) && fs.readFileSync(auditFile, "utf8").includes("auth.test.example") ? true : undefined));
    const audit = fs.readFileSync(auditFile, "utf8");
    t.false(audit.includes("reload-secret-789"));
    t.false(stderr.includes("reload-secret-789"));
    for (const line of audit.trim().split("\n")) t.notThrows(() => JSON.parse(line));

    // 4. SIGTERM: an in-flight streaming response completes, then the process exits 0.
    const inflight = agentRequest(probe, "api.test.example", "/stream");
    await new Promise((r) => setTimeout(r, 30));
    child.kill("SIGTERM");
    const streamed = await inflight;
    t.is(streamed.status, 200);
    t.is((streamed.body.match(/data: \d/g) ?? []).length, 5);
    t.is(await exited, 0);
    probe.destroy();
  } finally {
    stopLoad();
    child.kill("SIGKILL");
    await pl.close();
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
