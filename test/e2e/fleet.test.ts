// A fleet over two Docker hosts from ONE Pulumi program, for real: this machine's engine (host A)
// and a second dockerd in its own network namespace (host B: test/e2e/lib/second-daemon.ts),
// reached over its own socket. The program is the documented example (examples/fleet/fleet.ts):
// a docker.Provider per host, a SubnetPool for every bottle's networks. It runs through the real
// Pulumi engine (engine/stack.ts) with the docker provider double honouring each provider's
// `host`. Then: each bottle's containers are on its host, its state is read through its own state
// container over that host's API; the operator CLI (the real `bottle` binary, two docker
// contexts) lists both bottles with their hosts and approves a proposal of each, confirmed by
// the sidecars on each host and persisted per bottle; the approved route is served; and the
// escape suite's isolation checks run across the hosts: an agent on A reaches nothing of B, and
// the other way round, while a plain container on either reaches the other host (the path exists).
import test, { type ExecutionContext } from "ava";
import { execFile, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { hostExtraCaFiles, log, noEngineBanner, testImages } from "./harness.ts";
import { cachedTestPki, ensureToolsImage, WEB_NAMES } from "./fake-internet.ts";
import { docker, dockerEnv, run, sleep, type RunResult } from "./lib/docker.ts";
import { tarFiles } from "./lib/tar.ts";
import { isRoot, seedImages, stageImages, startSecondDaemon, type SecondDaemon } from "./lib/second-daemon.ts";
import { pulumiCli, realStack, type RealStack } from "./engine/stack.ts";
import { DOCKER_TYPES } from "./engine/docker.ts";
import { sweep } from "./engine/double.ts";
import { probe, reached, type Probe } from "./probe.ts";
import { fleetProgram } from "../../examples/fleet/fleet.ts";
import { SubnetPool } from "../../components/subnets.ts";
import { buildSidecars } from "../../sidecars/build.ts";
import { dockerIo } from "../../store/docker.ts";
import { stateLayout } from "../../store/layout.ts";
import { parseBottleRecord } from "../../store/bottles.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const LOCAL = "unix:///var/run/docker.sock";

interface Placed {
  host: "A" | "B";
  agent: string;
  identity: string;
  dockerHost: string;
  /** role → container name */
  containers: Record<string, string>;
  webIp: string;
  web: string;
}

interface Fleet {
  prefix: string;
  b: SecondDaemon;
  stack: RealStack;
  outputs: Record<string, any>;
  bottles: Placed[];
  /** DOCKER_CONFIG with contexts cbtest-…-a (this engine) and cbtest-…-b (the second daemon). */
  dockerConfig: string;
  contexts: { a: string; b: string };
  tmp: string;
  timings: Record<string, number>;
}

const on = (host: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}) => docker(args, { env: { ...dockerEnv(), DOCKER_HOST: host }, ...opts });
const okOn = async (host: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}) => {
  const r = await on(host, args, opts);
  if (r.code !== 0) throw new Error(`docker -H ${host} ${args.slice(0, 4).join(" ")}: ${(r.stderr || r.stdout).trim().slice(-600)}`);
  return r.stdout.trim();
};

/** A /23 for the pool that no network on either engine overlaps (each bottle takes three /26 of it). */
async function freePool(hosts: string[]): Promise<string> {
  const used: string[] = [];
  for (const h of hosts) {
    const ids = (await okOn(h, ["network", "ls", "-q"])).split("\n").filter(Boolean);
    if (ids.length) used.push(...(await okOn(h, ["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids])).split(/\s+/).filter(Boolean));
  }
  for (let i = 0; i < 100; i++) {
    const third = crypto.randomInt(128) * 2;
    const cidr = `10.236.${third}.0/23`;
    if (!used.some((s) => s.startsWith(`10.236.${third}.`) || s.startsWith(`10.236.${third + 1}.`) || s.startsWith("10.236.0.0/16") || s.startsWith("10.0.0.0/8"))) return cidr;
  }
  throw new Error("no free 10.236.x.0/23 for the fleet's subnet pool");
}

async function waitHealthyOn(host: string, names: string[]): Promise<void> {
  for (const name of names) {
    const hasHealth = (await on(host, ["inspect", "-f", "{{if .Config.Healthcheck}}yes{{end}}", name])).stdout.trim() === "yes";
    if (!hasHealth) continue;
    let status = "";
    for (let i = 0; i < 240; i++) {
      status = (await on(host, ["inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{.State.Status}}", name])).stdout.trim();
      if (status.startsWith("healthy|")) break;
      await sleep(500);
    }
    if (!status.startsWith("healthy|")) throw new Error(`${name} on ${host} did not become healthy (${status}): ${(await on(host, ["logs", "--tail", "20", name])).stderr}`);
  }
}

/** The fake Anthropic/approved.example upstream on a bottle's outside network, at a fixed address of its pooled subnet. */
async function startWeb(host: string, name: string, network: string, ip: string, toolsImage: string, leafPem: string): Promise<void> {
  await okOn(host, ["create", "--name", name, "--network", network, "--ip", ip, "--entrypoint", "node", toolsImage, "/srv/servers.mjs", "web", "web"]);
  await okOn(host, ["cp", "-", `${name}:/`], { input: tarFiles([{ path: "/srv/tls/web.pem", content: leafPem, mode: 0o600, uid: 0, gid: 0 }]) });
  await okOn(host, ["start", name]);
  for (let i = 0; i < 60 && !/ up/.test((await on(host, ["logs", name])).stdout); i++) await sleep(250);
}

/** `bottle <args>` as the operator runs it: the real binary, the fleet's docker contexts, pulumi on PATH for persisting. */
function bottleCli(f: Fleet, args: string[]): Promise<RunResult> {
  return new Promise(async (resolve) => {
    const cli = await pulumiCli();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DOCKER_CONFIG: f.dockerConfig,
      PATH: `${path.dirname(cli.command)}${path.delimiter}${process.env.PATH}`,
      PULUMI_CONFIG_PASSPHRASE: f.stack.passphrase,
      PULUMI_HOME: path.join(f.stack.workDir, "pulumi-home"),
      PULUMI_SKIP_UPDATE_CHECK: "true",
    };
    delete env.DOCKER_HOST;
    delete env.DOCKER_CONTEXT;
    execFile(path.join(ROOT, "cli", "bottle.ts"), args, { cwd: ROOT, env, timeout: 180_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as any).code ?? 1) : 0, stdout, stderr }));
  });
}

/** A tool call from inside the agent (MCP over HTTP to supervise), answered when the operator decides. */
function propose(b: Placed, routes: unknown): Promise<RunResult> {
  const call = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "propose_egress_routes", arguments: { routes, justification: `fleet e2e: ${b.identity} needs approved.example` } } };
  const script = `fetch(process.argv[1], { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: process.argv[2] })
    .then(async (r) => console.log(r.status, await r.text())).catch((e) => { console.log("ERR", e.message); process.exit(1); });`;
  return on(b.dockerHost, ["exec", b.containers.agent!, "node", "-e", script, "http://supervise:8080/mcp", JSON.stringify(call)], { timeoutMs: 240_000 });
}

async function agentGet(b: Placed, url: string): Promise<number> {
  const r = await on(b.dockerHost, ["exec", b.containers.agent!, "curl", "-sS", "-m", "12", "-o", "/dev/null", "-w", "%{http_code}", url], { timeoutMs: 30_000 });
  return Number(r.stdout.trim()) || 0;
}

let fleet: Fleet | undefined;
let bringUpError: Error | undefined;
const problem = (await noEngineBanner()) ?? (await isRoot());

async function bringUp(): Promise<Fleet> {
  const timings: Record<string, number> = {};
  const timed = async <R>(what: string, fn: () => Promise<R>): Promise<R> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings[what] = Math.round((Date.now() - t0) / 100) / 10;
    }
  };
  const runId = crypto.randomBytes(3).toString("hex");
  const prefix = `cbtest-fleet-${runId}-`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  log(`fleet run ${runId}: everything is named ${prefix}*`);
  await buildSidecars();
  const images = await timed("test images", () => testImages());
  const toolsImage = await ensureToolsImage(images.BASE_IMAGE, log);
  const b = await timed("second dockerd", () => startSecondDaemon({ log }));
  const partial: Partial<Fleet> = { prefix, b, tmp, timings };
  fleet = partial as Fleet;
  await timed("seed B: base images", () => seedImages(b, { refs: [images.BASE_IMAGE, images.PIPELOCK_IMAGE, images.GITLEAKS_IMAGE, toolsImage] }));

  // the manifest: one bottle definition, an agent per host
  const pki = await cachedTestPki(WEB_NAMES);
  const caFile = path.join(tmp, "fake-internet-ca.pem");
  fs.writeFileSync(caFile, pki.caPem);
  const agents = path.join(tmp, "agents");
  fs.mkdirSync(agents);
  // one bottle definition per host (each names its own upstream's address), an agent in each
  for (const [a, bottleName] of [["here", "fleet"], ["there", "fleetb"]]) fs.writeFileSync(path.join(agents, `${a}.md`), `---\nbottle: ${bottleName}\ndescription: fleet e2e agent ${a}\n---\nYou are the fleet e2e agent on ${a}.\n`);
  const poolCidr = await freePool([LOCAL, b.host]);
  const pool = new SubnetPool({ cidr: poolCidr, networkPrefix: 26 });
  // the upstream's address: the last of the bottle's pooled outside /26 (slots in fleet order)
  const webIp = (slot: number) => {
    const [a, b2, c, d] = pool.at(slot).outside.split("/")[0]!.split(".").map(Number) as [number, number, number, number];
    return `${a}.${b2}.${c}.${d + 62}`;
  };
  const placed: Placed[] = [
    { host: "A", agent: "here", identity: "fleet-here", dockerHost: LOCAL, containers: {}, webIp: webIp(0), web: `${prefix}web-a` },
    { host: "B", agent: "there", identity: "fleetb-there", dockerHost: b.host, containers: {}, webIp: webIp(1), web: `${prefix}web-b` },
  ];
  const bottle = (ip: string) => ({
    egress: { routes: [{ host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" }, role: "claude_code_oauth" }] },
    pipelock: { ssrf_ip_allowlist: [`${ip}/32`] },
    supervise: true,
    runtime: "runc",
    images: { base: images.BASE_IMAGE, pipelock: images.PIPELOCK_IMAGE, gitleaks: images.GITLEAKS_IMAGE },
    extra_ca_files: [caFile, ...hostExtraCaFiles()],
    extra_hosts: { "api.anthropic.com": ip, "approved.example": ip },
  });
  const manifest = path.join(tmp, "claude-bottle.yaml");
  fs.writeFileSync(manifest, YAML.stringify({ agents, bottles: { fleet: bottle(placed[0]!.webIp), fleetb: bottle(placed[1]!.webIp) } }));
  const token = `sk-ant-oat01-FLEET-${crypto.randomBytes(12).toString("hex")}`;
  const workDir = path.join(tmp, "stack");
  const stack = await timed("stack init", () =>
    realStack({
      runId,
      stackName: "fleet",
      workDir,
      program: () =>
        fleetProgram({
          manifest,
          hosts: [
            { name: "a", docker: { host: LOCAL }, agents: ["here"] },
            { name: "b", docker: { host: b.host }, agents: ["there"] },
          ],
          subnets: { cidr: poolCidr, networkPrefix: 26 },
          namePrefix: prefix,
          env: { CLAUDE_CODE_OAUTH_TOKEN: token },
          projectDir: workDir,
        }),
      log,
    }),
  );
  partial.stack = stack;
  // phase 1: host A's images, built there; their build chains then go to B through the API, so
  // B's builds of the same Dockerfiles are cache hits, as on a warm remote host
  const urns: { urn: string; type: string; parent?: string; inputs?: any }[] = [];
  await timed("pulumi preview", () => stack.stack.preview({ onEvent: (e) => { const m = e.resourcePreEvent?.metadata; if (m) urns.push({ urn: m.urn, type: m.type, parent: m.new?.parent, inputs: m.new?.inputs }); } }));
  const parentOf = new Map(urns.map((u) => [u.urn, u.parent]));
  const targets = new Set<string>();
  for (const u of urns.filter((u) => u.type === DOCKER_TYPES.image && u.urn.includes("fleet-here"))) {
    for (let urn: string | undefined = u.urn; urn && !urn.includes("::pulumi:pulumi:Stack::"); urn = parentOf.get(urn)) targets.add(urn);
  }
  for (const u of urns.filter((u) => u.type === "pulumi:providers:docker")) targets.add(u.urn);
  await timed("pulumi up --target A's images", () => stack.stack.up({ target: [...targets], onOutput: () => undefined }));
  const built = (await docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter((n) => n.startsWith(prefix) && n.endsWith(":fleet-here"));
  const builds = urns.filter((u) => u.type === DOCKER_TYPES.image && u.urn.includes("fleet-here")).map((u) => u.inputs.build);
  const stages = await timed("stages of A's builds", () => stageImages(builds, `${prefix}stage:`));
  const bytes = await timed("seed B: build caches", () => seedImages(b, { refs: [], caches: [...built, ...stages] }));
  log(`seeded B with ${built.length} build chains and ${stages.length} stages (${(bytes / 1e6).toFixed(0)} MB)`);
  // the whole fleet
  const result = await timed("pulumi up (fleet)", () => stack.stack.up({ onOutput: () => undefined }));
  const outputs = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value])) as Record<string, any>;
  for (const p of placed) p.containers = outputs.bottles[p.identity].containers;
  await timed("healthy", () => Promise.all(placed.map((p) => waitHealthyOn(p.dockerHost, Object.values(p.containers)))));
  for (const p of placed) await startWeb(p.dockerHost, p.web, `${prefix}${p.identity}-outside`, p.webIp, toolsImage, pki.leafPem);
  // the operator's docker contexts: one per host
  const dockerConfig = path.join(tmp, "docker-config");
  fs.mkdirSync(dockerConfig);
  const contexts = { a: `${prefix}a`, b: `${prefix}b` };
  for (const [c, h] of [[contexts.a, LOCAL], [contexts.b, b.host]]) {
    const r = await run("docker", ["context", "create", c!, "--docker", `host=${h}`], { env: { ...process.env, DOCKER_CONFIG: dockerConfig } });
    if (r.code !== 0) throw new Error(`docker context create ${c}: ${r.stderr}`);
  }
  log(`fleet up: ${JSON.stringify(timings)}`);
  return { prefix, b, stack, outputs, bottles: placed, dockerConfig, contexts, tmp, timings };
}

async function teardown(): Promise<void> {
  const f = fleet;
  if (!f) return;
  const problems: string[] = [];
  for (const p of f.bottles ?? []) await on(p.dockerHost, ["rm", "-f", p.web]);
  if (f.stack) await f.stack.stack.destroy({ onOutput: () => undefined }).catch((e) => problems.push(`pulumi destroy: ${(e as Error).message.split("\n").slice(-3).join(" ")}`));
  // destroy keeps the volumes (retainOnDelete) and the images: this run's are removed here
  await sweep(f.prefix);
  if (f.b) problems.push(...(await f.b.stop()));
  if (f.tmp) fs.rmSync(f.tmp, { recursive: true, force: true });
  if (problems.length) log(`fleet teardown problems: ${problems.join("; ")}`);
}

if (problem) {
  if (process.env.CI) test("fleet e2e: Docker engine and root available", (t) => t.fail(`FLEET E2E NOT RUN: ${problem}`));
  else test("fleet e2e: a second dockerd (NOT RUN)", (t) => t.fail(`NOT RUN: ${problem}`));
} else {
  test.before(async (t) => {
    t.timeout(40 * 60_000);
    try {
      fleet = await bringUp();
    } catch (e) {
      bringUpError = e as Error;
      log(`fleet bring-up failed: ${(e as Error).stack}`);
    }
  });
  test.after.always(async () => {
    await teardown();
  });

  const check = (title: string, fn: (t: ExecutionContext, f: Fleet) => Promise<void>) =>
    test.serial(title, async (t) => {
      t.timeout(10 * 60_000);
      if (bringUpError || !fleet) return t.fail(`bring-up failed: ${bringUpError?.message ?? "no fleet"}`);
      await fn(t, fleet);
    });

  check("one program, two engines: each bottle's containers, networks and volumes are on its own host, networks from the program's pool; its state is read through its state container over that host's API", async (t, f) => {
    t.log(`timings: ${JSON.stringify(f.timings)}`);
    for (const p of f.bottles) {
      const other = p.host === "A" ? f.b.host : LOCAL;
      for (const [role, name] of Object.entries(p.containers)) {
        t.is(await okOn(p.dockerHost, ["inspect", "-f", "{{.State.Running}}", name]), "true", `${p.identity} ${role} runs on host ${p.host}`);
        t.not((await on(other, ["inspect", name])).code, 0, `${p.identity} ${role} is not on the other host`);
      }
      const nets = f.outputs.bottles[p.identity].networks as Record<string, string>;
      for (const [role, n] of Object.entries(nets)) t.regex(await okOn(p.dockerHost, ["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", n]), /^10\.236\.\d+\.\d+\/26$/, `${role} network from the pool`);
      const io = dockerIo(p.containers.state!, { host: p.dockerHost });
      const record = parseBottleRecord((await io.read(stateLayout().record))!, "bottle.json");
      t.is(record.identity, p.identity);
      t.deepEqual(record.configKeys, { egress_routes: `routes.${p.agent}`, pipelock_allowlist: `pipelockAllowlist.${p.agent}`, capability: `capabilityDockerfile.${p.agent}`, server_tools: `serverTools.${p.agent}` }, "approvals persist per bottle");
      t.is(await okOn(p.dockerHost, ["exec", p.containers.state!, "stat", "-c", "%u", "/var/log/claude-bottle"]), "65534", "fresh state volumes owned by nobody on this host too");
    }
    t.not(f.outputs.bottles["fleet-here"].networks.internal, undefined);
  });

  check("the operator CLI (the real binary, two docker contexts) lists both bottles with their hosts", async (t, f) => {
    const r = await bottleCli(f, ["list"]);
    t.is(r.code, 0, r.stderr);
    const rows = r.stdout.split("\n").filter((l) => l.includes(f.prefix));
    t.log(rows.join("\n"));
    const row = (identity: string) => rows.find((l) => l.startsWith(`${identity} `)) ?? "";
    t.regex(row("fleetb-there"), new RegExp(`^fleetb-there +${f.contexts.b} +${f.b.host.replace(/[/.]/g, "\\$&")} `), "the bottle on B is found through B's context");
    t.regex(row("fleet-here"), new RegExp(`^fleet-here +(default|${f.contexts.a}) +unix:///var/run/docker\\.sock `), "the bottle on A through a context that reaches A");
  });

  check("approvals from one CLI across both hosts: each agent's proposal is pending with its host, approved, confirmed by that host's sidecars, persisted per bottle; the approved route is served on each", async (t, f) => {
    const asks = f.bottles.map(async (p) => {
      t.is(await agentGet(p, "https://approved.example/before"), 403, `${p.identity}: not routed yet`);
      const io = dockerIo(p.containers.state!, { host: p.dockerHost });
      const live = YAML.parse((await io.read(stateLayout().routesFile))!);
      return propose(p, { version: 1, routes: [...live.routes, { host: "approved.example", methods: ["GET"] }] });
    });
    let ids: Record<string, string> = {};
    for (let i = 0; i < 90 && Object.keys(ids).length < 2; i++) {
      const r = await bottleCli(f, ["pending"]);
      ids = Object.fromEntries(
        r.stdout.split("\n").flatMap((l) => {
          const m = /^(p-[0-9a-f]+)\s+(fleet-here|fleetb-there)\s+(\S+)\s+egress_routes/.exec(l);
          return m ? [[m[2]!, `${m[1]} ${m[3]}`]] : [];
        }),
      );
      if (Object.keys(ids).length < 2) await sleep(1000);
    }
    t.log(JSON.stringify(ids));
    t.regex(ids["fleetb-there"] ?? "", new RegExp(` ${f.contexts.b}$`), "pending lists B's proposal with B's host");
    t.truthy(ids["fleet-here"], "and A's");
    for (const p of f.bottles) {
      const id = (ids[p.identity] ?? "").split(" ")[0]!;
      const r = await bottleCli(f, ["approve", id]);
      t.log(r.stdout.trim().split("\n").join(" / "));
      t.is(r.code, 0, r.stderr);
      t.regex(r.stdout, new RegExp(`reload: ${p.containers.pipelock} loaded pipelock\\.yaml \\(sha256 [0-9a-f]{12}…\\)`), `${p.identity}: pipelock on host ${p.host} confirmed`);
      t.regex(r.stdout, new RegExp(`reload: ${p.containers.egress} loaded routes\\.yaml \\(sha256 [0-9a-f]{12}…\\)`), `${p.identity}: egress on host ${p.host} confirmed`);
      t.regex(r.stdout, new RegExp(`persisted: set claude-bottle:routes\\.${p.agent} on stack fleet`), "persisted under the bottle's own key");
    }
    const replies = await Promise.all(asks);
    for (const r of replies) t.regex(r.stdout, /approved/i, `the agent's call returned the approval: ${r.stdout.slice(0, 200)}`);
    for (const p of f.bottles) {
      let status = 0;
      for (let i = 0; i < 20 && status !== 200; i++) {
        status = await agentGet(p, "https://approved.example/after");
        if (status !== 200) await sleep(500);
      }
      t.is(status, 200, `${p.identity}: the approved route is served by its host's upstream`);
    }
    const config = await f.stack.stack.getAllConfig();
    t.regex(config["claude-bottle:routes.here"]?.value ?? "", /approved\.example/);
    t.regex(config["claude-bottle:routes.there"]?.value ?? "", /approved\.example/);
  });

  check("isolation across hosts: an agent on A reaches nothing of B (B's address, its containers, its upstream) and an agent on B nothing of A; a plain container on either host does reach the other (the path exists)", async (t, f) => {
    const [A, B] = f.bottles as [Placed, Placed];
    // a listener on each host: on this machine on its link address, in B's namespace on B's
    const hostServer = http.createServer((_q, r) => r.end("host-a"));
    await new Promise<void>((r) => hostServer.listen(0, f.b.hostAddress, r));
    const hostPort = (hostServer.address() as AddressInfo).port;
    const nsPort = 20000 + crypto.randomInt(20000);
    const nsServer: ChildProcess = f.b.inNetns("node", ["-e", `require("http").createServer((q,r)=>r.end("host-b")).listen(${nsPort}, "${f.b.nsAddress}")`]);
    await sleep(1000);
    try {
      const ips = async (host: string, names: string[]) => (await Promise.all(names.map((n) => okOn(host, ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", n])))).join(" ").split(/\s+/).filter(Boolean);
      const bIps = await ips(B.dockerHost, [...Object.values(B.containers), B.web]);
      const aIps = await ips(A.dockerHost, [...Object.values(A.containers), A.web]);
      const tcp = (host: string, port: number): Probe => ({ kind: "tcp", host, port, ms: 1500 });
      const fromA = [tcp(f.b.nsAddress, nsPort), tcp(f.b.nsAddress, 22), ...bIps.flatMap((ip) => [tcp(ip, 443), tcp(ip, 3128), tcp(ip, 8080), tcp(ip, 8888)])];
      const fromB = [tcp(f.b.hostAddress, hostPort), tcp(f.b.hostAddress, 22), ...aIps.flatMap((ip) => [tcp(ip, 443), tcp(ip, 3128), tcp(ip, 8080), tcp(ip, 8888)])];
      const outA = await probe(A.containers.agent!, fromA);
      const outB = await probe(B.containers.agent!, fromB, B.dockerHost);
      const hits = (ps: Probe[], out: string[]) => ps.flatMap((p, i) => (reached(out[i]!) ? [`${"host" in p ? `${p.host}:${p.port}` : ""}→${out[i]}`] : []));
      t.log(`agent A → B: ${fromA.length} probes, ${hits(fromA, outA).length} reached; agent B → A: ${fromB.length} probes, ${hits(fromB, outB).length} reached`);
      t.deepEqual(hits(fromA, outA), [], "the agent on A reaches nothing of B");
      t.deepEqual(hits(fromB, outB), [], "the agent on B reaches nothing of A");
      // controls: a plain container on each host's default bridge gets through (the probe can see a path)
      const control = async (host: string, image: string, target: string, port: number) =>
        (await on(host, ["run", "--rm", "--entrypoint", "node", image, "-e", `require("http").get("http://${target}:${port}/",(r)=>{let b="";r.on("data",(c)=>b+=c);r.on("end",()=>console.log(b))}).on("error",(e)=>console.log("ERR "+e.code))`], { timeoutMs: 60_000 })).stdout.trim();
      const tools = await okOn(B.dockerHost, ["inspect", "-f", "{{.Config.Image}}", B.web]);
      t.is(await control(LOCAL, tools, f.b.nsAddress, nsPort), "host-b", "control: a plain container on A reaches host B");
      t.is(await control(B.dockerHost, tools, f.b.hostAddress, hostPort), "host-a", "control: a plain container on B reaches host A");
    } finally {
      hostServer.close();
      nsServer.kill();
    }
  });

  check("a second `pulumi preview` of the fleet shows no change (the live files' engine endpoints and pooled subnets are stable)", async (t, f) => {
    const ops: string[] = [];
    await f.stack.stack.preview({ onEvent: (e) => { const m = e.resourcePreEvent?.metadata; if (m && m.op !== "same") ops.push(`${m.op} ${m.type} ${m.urn.split("::").pop()} [${(m.diffs ?? []).join(",")}]`); } });
    t.log(ops.join("\n") || "no change");
    // approvals changed two config keys: the dynamic provider host takes the whole config as inputs
    t.true(ops.every((o) => o.startsWith("update pulumi-nodejs:dynamic:Resource") || o.startsWith("update pulumi:providers:pulumi-nodejs")), ops.join("; "));
  });
}
