// What a bottle costs (issue 9): bring-up time per stage, teardown and leftovers, idle memory
// and CPU per container, and a fleet of bottles on one host with a cross-bottle reachability
// probe. Not a timed test: it prints its figures and the command that made them, and with
// --write replaces the "bottle" section of bench/RESULTS.md.
//
// It builds on the e2e harness's pieces (test/e2e: the stack program under Pulumi mocks →
// EngineDouble on the real engine, the fake internet). Everything it creates is named
// cbtest-bench-<run id>-* and labelled with the run id; it removes only that, also on Ctrl-C,
// on failure and when the --timeout-min deadline hits.
//
//   node --import tsx bench/bottle-bench.ts [--stage bringup|stats|fleet|all (or a,b)] [--fleet 1,5,10,20]
//        [--bringups 3] [--bringup-variant V] [--window 30] [--variants baseline,hc-node,node-flags,hc-1s]
//        [--node-options "..."] [--fleet-order parallel|sequential] [--agent engine|prebuilt]
//        [--timeout-min 30] [--write]
// Variants rewrite the captured egress/supervise containers before apply (measured, not shipped):
// hc-node = the Node healthcheck they had before, hc-<dur> = healthcheck interval, node-flags =
// NODE_OPTIONS; combine with "+".
//
// Stand-ins (printed with every figure): pipelock runs the e2e harness's TEST-ONLY forwarding
// stand-in unless a real pipelock image exists; the agent is the real agent image, built by the
// engine double (cached), or with --agent prebuilt by test/e2e/agent-image.ts.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { EngineDouble, T, isDynamic, sweep, type Substitute } from "../test/e2e/engine/double.ts";
import { FakeInternet, ensureToolsImage, GIT_HOST, SERVERS, type ServerName } from "../test/e2e/fake-internet.ts";
import { hostExtraCaFiles } from "../test/e2e/harness.ts";
import { docker, dockerOk, sleep } from "../test/e2e/lib/docker.ts";
import { ensureTestImages, type TestImages } from "../test/e2e/images/build.ts";
import { ensureAgentImage } from "../test/e2e/agent-image.ts";
import { captureBottle, type Capture } from "../test/unit/helpers/capture.ts";
import type { Registration } from "../test/helpers/pulumi-mocks.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..");
const TEMPLATE = path.join(REPO, "test/e2e/fixtures/bottle.template.yaml");

// ------------------------------------------------------------------------------------------
// CLI
const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] && !argv[i + 1]!.startsWith("--") ? argv[i + 1]! : dflt;
};
const has = (name: string) => argv.includes(`--${name}`);
const STAGE = flag("stage", "all");
const FLEET = flag("fleet", "1,5,10,20").split(",").map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const BRINGUPS = Number(flag("bringups", "3"));
const WINDOW_S = Number(flag("window", "30"));
const VARIANTS = flag("variants", "baseline,hc-node,node-flags,hc-1s").split(",").filter(Boolean);
const NODE_FLAGS = flag("node-options", "--max-semi-space-size=1 --max-old-space-size=64");
const TIMEOUT_MIN = Number(flag("timeout-min", "30"));
const WRITE = has("write");
const BRINGUP_VARIANT = flag("bringup-variant", "baseline");
const FLEET_PARALLEL = flag("fleet-order", "parallel") === "parallel";
const COMMAND = `node --import tsx bench/bottle-bench.ts ${argv.join(" ")}`.trim();
const PORTS = [3128, 8888, 8080, 9418, 22, 80, 443];

const say = (s: string) => console.log(`[bench] ${s}`);
const f1 = (n: number) => n.toFixed(1);
const mb = (b: number) => b / 1024 / 1024;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" / ");

// ------------------------------------------------------------------------------------------
// Engine API (stats) over the unix socket

function apiGet(p: string, timeoutMs = 15_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: "/var/run/docker.sock", method: "GET", path: `/v1.41${p}`, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`engine API GET ${p} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

interface Sample {
  t: number;
  cpuNs: number;
  mem: number;
  rss: number;
  pids: number;
}
async function sample(name: string): Promise<Sample> {
  const s = await apiGet(`/containers/${encodeURIComponent(name)}/stats?stream=false`);
  const st = s.memory_stats?.stats ?? {};
  const inactive = st.total_inactive_file ?? st.inactive_file ?? 0;
  return {
    t: Date.now(),
    cpuNs: Number(s.cpu_stats?.cpu_usage?.total_usage ?? 0),
    mem: Number(s.memory_stats?.usage ?? 0) - Number(inactive),
    rss: Number(st.total_rss ?? st.rss ?? st.anon ?? 0),
    pids: Number(s.pids_stats?.current ?? 0),
  };
}

interface Usage {
  cpuPct: number;
  memMB: number;
  memMaxMB: number;
  rssMB: number;
  pids: number;
}
/** CPU over the whole window (cumulative counter); memory = mean and max of samples every ~5 s. */
async function usageOver(names: string[], windowS: number): Promise<Record<string, Usage>> {
  const first: Record<string, Sample> = {};
  const mems: Record<string, number[]> = {};
  const rss: Record<string, number[]> = {};
  const pids: Record<string, number[]> = {};
  const take = async () => {
    const got = await Promise.all(names.map((n) => sample(n)));
    names.forEach((n, i) => {
      first[n] ??= got[i]!;
      (mems[n] ??= []).push(got[i]!.mem);
      (rss[n] ??= []).push(got[i]!.rss);
      (pids[n] ??= []).push(got[i]!.pids);
    });
    return got;
  };
  const end = Date.now() + windowS * 1000;
  let last = await take();
  while (Date.now() < end) {
    await sleep(Math.min(5000, Math.max(0, end - Date.now())));
    last = await take();
  }
  const out: Record<string, Usage> = {};
  names.forEach((n, i) => {
    const a = first[n]!;
    const b = last[i]!;
    const m = mems[n]!;
    out[n] = {
      cpuPct: b.t > a.t ? ((b.cpuNs - a.cpuNs) / ((b.t - a.t) * 1e6)) * 100 : NaN,
      memMB: mb(m.reduce((x, y) => x + y, 0) / m.length),
      memMaxMB: mb(Math.max(...m)),
      rssMB: mb(median(rss[n]!)),
      pids: median(pids[n]!),
    };
  });
  return out;
}

async function procs(name: string): Promise<string> {
  const r = await docker(["top", name, "-o", "pid,rss,args"]);
  return r.stdout
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .map((l) => {
      const [, rssKb, ...rest] = l.trim().split(/\s+/);
      return `${(Number(rssKb) / 1024).toFixed(1)} MB ${rest.join(" ").slice(0, 60)}`;
    })
    .join("; ");
}

// ------------------------------------------------------------------------------------------
// Run-wide state and cleanup

const runId = crypto.randomBytes(3).toString("hex");
const prefix = `cbtest-bench-${runId}-`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
const agentsDir = path.join(tmp, "agents");
fs.mkdirSync(agentsDir);
let internet: FakeInternet | undefined;
const live = new Map<string, Bottle>();
let cleaning: Promise<void> | undefined;

async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    say(`cleanup of run ${runId} (${live.size} bottle(s) up)`);
    for (const b of [...live.values()]) await teardownBottle(b).catch((e) => say(`teardown ${b.name}: ${e}`));
    await internet?.stop().catch((e) => say(`fake internet stop: ${e}`));
    await sweep(prefix);
    fs.rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    say(`${sig}: tearing down`);
    void cleanup().finally(() => process.exit(130));
  });
}
const deadline = setTimeout(() => {
  say(`--timeout-min ${TIMEOUT_MIN} reached: tearing down`);
  void cleanup().finally(() => process.exit(124));
}, TIMEOUT_MIN * 60_000);
deadline.unref();

// ------------------------------------------------------------------------------------------
// One bottle

interface Ctx {
  images: TestImages;
  toolsImage: string;
  agentImage?: string;
  pipelockStandIn?: string;
  workspace: string;
  standIns: Record<string, string>;
}

interface Bottle {
  name: string;
  engine: EngineDouble;
  capture?: Capture;
  containers: Record<string, string>; // role → container name
  networks: string[]; // networks this bench created itself (explicit subnets)
  outside?: string;
  stages: [string, number][];
  firstStatus?: string;
  stateDirs: string[];
}

/** The healthcheck egress and supervise had before this bench (a Node runtime per probe), for before/after. */
export function nodeHealthcheck(tests: string[]): string[] {
  const m = /\/dev\/tcp\/([\d.]+)\/(\d+) .*GET (\S+) HTTP/.exec(tests.join(" "));
  if (!m) return tests; // already node
  const url = `http://${m[1]}:${m[2]}${m[3]}`;
  return ["CMD", "node", "-e", `fetch(${JSON.stringify(url)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`];
}

/** Registration rewrites for the "find and fix" variants (measured, not shipped). */
function transform(variant: string, regs: Registration[]): Registration[] {
  if (variant === "baseline") return regs;
  if (variant.includes("+")) return variant.split("+").reduce((rs, v) => transform(v, rs), regs);
  const role = (r: Registration) => (r.inputs.labels ?? []).find((l: any) => l.label === "dev.claude-bottle.role")?.value;
  return regs.map((r) => {
    if (r.type !== T.container || !["egress", "supervise"].includes(role(r))) return r;
    const inputs = { ...r.inputs };
    if (variant === "node-flags") inputs.envs = [...(inputs.envs ?? []), `NODE_OPTIONS=${NODE_FLAGS}`];
    else if (variant === "hc-node") inputs.healthcheck = { ...inputs.healthcheck, tests: nodeHealthcheck(inputs.healthcheck.tests) };
    else if (variant.startsWith("hc-")) inputs.healthcheck = { ...inputs.healthcheck, interval: variant.slice(3) };
    else throw new Error(`unknown variant ${variant}`);
    return { ...r, inputs };
  });
}

function writeManifest(names: string[], ctx: Ctx, ips: Record<ServerName, string> | undefined): string {
  const template = fs.readFileSync(TEMPLATE, "utf8");
  const vars: Record<string, unknown> = {
    BASE_IMAGE: ctx.images.BASE_IMAGE,
    PIPELOCK_IMAGE: ctx.images.PIPELOCK_IMAGE,
    GITLEAKS_IMAGE: ctx.images.GITLEAKS_IMAGE,
    CA_FILE: internet!.caFile,
    CA_FILES: [internet!.caFile, ...hostExtraCaFiles()],
    GIT: { upstreams: [] },
    RUNTIME: "runc",
    WORKSPACE: ctx.workspace,
    SSRF_ALLOW: ips ? [`${ips.web}/32`, `${ips.sink}/32`] : [],
    EXTRA_HOSTS: ips
      ? { "api.anthropic.com": ips.web, "api.github.com": ips.web, "unlisted.example": ips.sink, "exfil.example": ips.sink, "internal.example": ips.intranet, "metadata.example": "169.254.169.254", "approved.example": ips.web, ...(ips.git ? { [GIT_HOST]: ips.git } : {}) }
      : {},
  };
  let text = template;
  for (const [k, x] of Object.entries(vars)) text = text.split("${" + k + "}").join(JSON.stringify(x));
  const left = /\$\{[A-Z_]+\}/.exec(text);
  if (left) throw new Error(`bench: the e2e manifest template has a placeholder this bench does not fill: ${left[0]}`);
  const body = YAML.parse(text);
  const file = path.join(tmp, `m-${crypto.randomBytes(4).toString("hex")}.yaml`);
  // the program checks every agent file in agentsDir against the manifest: declare them all
  const all = new Set([...names, ...fs.readdirSync(agentsDir).map((f) => f.replace(/\.md$/, ""))]);
  fs.writeFileSync(file, YAML.stringify({ bottles: Object.fromEntries([...all].map((n) => [n, body])), agents: agentsDir }));
  return file;
}

let subnetCursor = crypto.randomInt(200);
async function freeSubnet(): Promise<string> {
  const ids = (await dockerOk(["network", "ls", "-q"])).split("\n").filter(Boolean);
  const used = (await dockerOk(["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids])).split(/\s+/);
  for (let i = 0; i < 256; i++) {
    const s = `10.214.${(subnetCursor++ % 250) + 1}.0/24`;
    if (!used.includes(s)) return s;
  }
  throw new Error("no free 10.214.x.0/24");
}

function stringsOf(v: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof v === "string") out.add(v);
  else if (Array.isArray(v)) v.forEach((x) => stringsOf(x, out));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => stringsOf(x, out));
  return out;
}

/**
 * `pulumi up`'s order instead of the double's one-at-a-time walk: everything but containers
 * first (as the double), then each container as soon as the containers it refers to (by
 * name) are up; the agent after every sidecar (components/bottle.ts: dependsOn egress,
 * supervise, git-gate). Each container is still awaited to `healthy`, which the provider does
 * not do (no `wait`), so this is an upper bound on what `pulumi up` would take.
 */
async function applyParallel(engine: EngineDouble, regs: Registration[]): Promise<void> {
  const role = (r: Registration) => (r.inputs.labels ?? []).find((l: any) => l.label === "dev.claude-bottle.role")?.value;
  // the state container first: the live files are written through it
  const state = regs.filter((r) => r.type === T.container && role(r) === "state");
  const ctrs = regs.filter((r) => r.type === T.container && role(r) !== "state");
  await engine.apply(regs.filter((r) => r.type !== T.container && !isDynamic(r.type)));
  await engine.apply(state);
  await engine.apply(regs.filter((r) => isDynamic(r.type)));
  const started = new Map<Registration, Promise<void>>();
  const start = (r: Registration): Promise<void> => {
    let p = started.get(r);
    if (!p) {
      const mine = stringsOf(r.inputs);
      const deps = ctrs.filter((o) => o !== r && (mine.has(o.outputs.name) || (role(r) === "agent" && role(o) !== "agent")));
      p = Promise.all(deps.map(start)).then(() => engine.apply([r]));
      started.set(r, p);
    }
    return p;
  };
  await Promise.all(ctrs.map(start));
}

async function bringUpBottle(ctx: Ctx, name: string, opts: { variant?: string; explicitSubnets?: boolean; parallel?: boolean } = {}): Promise<Bottle> {
  const variant = opts.variant ?? "baseline";
  fs.writeFileSync(path.join(agentsDir, `${name}.md`), `---\nbottle: ${name}\ndescription: bench agent ${name}\n---\nbench agent\n`);
  const resourceTimes: [string, number][] = [];
  const engine = new EngineDouble({
    runId,
    networkSubnet: opts.explicitSubnets ? () => freeSubnet() : undefined,
    substitute: (role) => {
      let sub: Substitute | undefined;
      if (role === "agent" && ctx.agentImage) sub = { image: ctx.agentImage, reason: "the real agent image, prebuilt by test/e2e/agent-image.ts (--agent prebuilt)" };
      if (sub) ctx.standIns[role] = sub.reason;
      return sub;
    },
    log: (l) => {
      const m = /^(\w+) (\S+) \(([\d.]+) s\)$/.exec(l);
      if (m) resourceTimes.push([`${m[1]} ${m[2]!.replace(prefix, "").replace(`${name}-`, "")}`, Number(m[3])]);
    },
  });
  const b: Bottle = { name, engine, containers: {}, networks: [], stages: [], stateDirs: [] };
  live.set(name, b);
  const t = async <R>(stage: string, fn: () => Promise<R>): Promise<R> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      b.stages.push([stage, (Date.now() - t0) / 1000]);
    }
  };
  const env = { CLAUDE_CODE_OAUTH_TOKEN: `sk-ant-oat01-BENCH-${crypto.randomBytes(12).toString("hex")}` };
  const t0 = Date.now();
  // phase 1: the program (incl. the bottle CA: tls resources, real crypto in the mocks) and networks
  const c1 = await t("program + CA (phase 1 capture)", () => captureBottle({ manifest: writeManifest([name], ctx, undefined), agent: name, namePrefix: prefix, env }));
  b.stateDirs.push(c1.stateDir);
  const netRegs = c1.byType(T.network);
  await t(opts.explicitSubnets ? "networks (3, explicit /24s)" : "networks (3)", () => engine.applyNetworks(c1.registrations));
  b.outside = netRegs.find((n) => n.inputs.name.endsWith("-outside"))!.inputs.name as string;
  const ips = await t("[bench] attach fake internet", () => internet!.attach(b.outside!));
  // phase 2: final manifest, then everything else
  const c2 = await t("program (phase 2 capture)", () => captureBottle({ manifest: writeManifest([name], ctx, ips), agent: name, namePrefix: prefix, env }));
  b.stateDirs.push(c2.stateDir);
  b.capture = c2;
  let regs = transform(variant, c2.registrations);
  if (opts.explicitSubnets) regs = regs.filter((r) => r.type !== T.network);
  const tApply = Date.now();
  if (opts.parallel) await applyParallel(engine, regs);
  else await engine.apply(regs);
  const applyS = (Date.now() - tApply) / 1000;
  const grouped = new Map<string, number>();
  for (const [k, s] of resourceTimes) {
    const key = k.startsWith("Resource") ? "live config files" : k.startsWith("Volume") ? "volumes" : k.startsWith("Network") ? "networks (adopted)" : k;
    grouped.set(key, (grouped.get(key) ?? 0) + s);
  }
  for (const [k, s] of grouped) b.stages.push([k.replace(/^Container /, "container ").replace(/^Image /, "image (cached build) "), s]);
  b.stages.push([opts.parallel ? "(apply total, containers in parallel)" : "(apply total)", applyS]);
  for (const c of engine.containers) if (c.role) b.containers[c.role] = c.name;
  // the agent's first request through egress: any HTTP answer counts (see the report)
  await t("agent's first HTTPS request answered", async () => {
    const until = Date.now() + 20_000;
    for (;;) {
      const r = await docker(["exec", b.containers.agent!, "curl", "-sS", "-m", "8", "-o", "/dev/null", "-w", "%{http_code}", "https://api.anthropic.com/v1/messages"], { timeoutMs: 15_000 });
      const code = r.stdout.trim();
      if (/^[1-5]\d\d$/.test(code)) {
        b.firstStatus = code;
        return;
      }
      if (Date.now() > until) {
        b.firstStatus = `none (${(r.stderr || code).trim().slice(0, 100)})`;
        return;
      }
      await sleep(200);
    }
  });
  b.stages.push(["TOTAL", (Date.now() - t0) / 1000]);
  return b;
}

async function existing(kind: "container" | "network" | "volume", names: string[]): Promise<string[]> {
  if (!names.length) return [];
  const args = kind === "container" ? ["ps", "-a", "--format", "{{.Names}}"] : [kind, "ls", "--format", "{{.Name}}"];
  const all = new Set((await dockerOk(args)).split("\n").filter(Boolean));
  return names.filter((n) => all.has(n));
}

/** Tear one bottle down: time the engine's destroy and list what is left behind. */
async function teardownBottle(b: Bottle): Promise<{ seconds: number; left: string[] }> {
  live.delete(b.name);
  const ctrs = b.engine.containers.map((c) => c.name);
  const nets = [...b.engine.networks, ...b.networks];
  const vols = [...b.engine.volumes];
  for (const c of ctrs) {
    const r = await docker(["inspect", "-f", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}", c]);
    for (const v of r.stdout.split(/\s+/).filter(Boolean)) if (!vols.includes(v)) vols.push(v);
  }
  // bench-only: the fake internet's servers are attached to `outside`; not part of the bottle
  if (b.outside && internet) for (const s of SERVERS) await docker(["network", "disconnect", "-f", b.outside, internet.names[s]]);
  const t0 = Date.now();
  const problems = await b.engine.destroy();
  for (const n of b.networks) await docker(["network", "rm", n]);
  const seconds = (Date.now() - t0) / 1000;
  for (const d of b.stateDirs) fs.rmSync(d, { recursive: true, force: true });
  fs.rmSync(path.join(agentsDir, `${b.name}.md`), { force: true });
  const left = [
    ...(await existing("container", ctrs)).map((x) => `container ${x}`),
    ...(await existing("network", nets)).map((x) => `network ${x}`),
    ...(await existing("volume", vols)).map((x) => `volume ${x}`),
    ...problems,
  ];
  return { seconds, left };
}

// ------------------------------------------------------------------------------------------
// Stages

const report: string[] = [];
const out = (s = "") => {
  console.log(s);
  report.push(s);
};
const standInNote = (ctx: Ctx) =>
  Object.entries(ctx.standIns)
    .map(([r, why]) => `${r}: ${why}`)
    .join("; ");

async function stageBringup(ctx: Ctx, parallel: boolean) {
  const runs: Bottle[] = [];
  const tears: { seconds: number; left: string[] }[] = [];
  const loads: string[] = [];
  for (let i = 0; i < BRINGUPS; i++) {
    const name = `${parallel ? "upp" : "up"}${i + 1}`;
    loads.push(os.loadavg()[0]!.toFixed(2));
    say(`bring-up ${i + 1}/${BRINGUPS}${parallel ? " (containers in parallel)" : ""} (load ${load()})`);
    const b = await bringUpBottle(ctx, name, { parallel, variant: BRINGUP_VARIANT });
    runs.push(b);
    tears.push(await teardownBottle(b));
    say(`  total ${f1(b.stages.find((s) => s[0] === "TOTAL")![1])} s, first answer HTTP ${b.firstStatus}, teardown ${f1(tears.at(-1)!.seconds)} s, left ${tears.at(-1)!.left.length}`);
  }
  for (const r of runs) for (const s of r.stages) s[0] = s[0].replace(/upp?\d+-/, "");
  const stages = runs[0]!.stages.map((s) => s[0]);
  out(
    parallel
      ? `### Bring-up, containers created as \`pulumi up\` would (in parallel, honouring references; each still awaited to healthy)`
      : `### Bring-up (one bottle, images cached, the engine double's order: one container at a time, each awaited to healthy)`,
  );
  out();
  if (BRINGUP_VARIANT !== "baseline") out(`Variant **${BRINGUP_VARIANT}** (see the idle footprint below).`);
  out(`${BRINGUPS} runs; 1-min load average at the start of each: ${loads.join(", ")}; at the end ${load()}.`);
  out();
  out(`| stage | ${runs.map((_, i) => `run ${i + 1} s`).join(" | ")} | median s |`);
  out(`| --- | ${runs.map(() => "---:").join(" | ")} | ---: |`);
  for (const st of stages) {
    const xs = runs.map((r) => r.stages.find((s) => s[0] === st)?.[1] ?? NaN);
    const bold = st === "TOTAL" ? "**" : "";
    out(`| ${bold}${st}${bold} | ${xs.map(f1).join(" | ")} | ${bold}${f1(median(xs))}${bold} |`);
  }
  out();
  out(`First answer the agent got (curl https://api.anthropic.com/v1/messages via HTTPS_PROXY=egress): HTTP ${runs.map((r) => r.firstStatus).join(", ")}.`);
  out();
  out(`#### Teardown${parallel ? " (parallel runs)" : ""}: the engine double's destroy (rm -f -v each container, network rm, volume rm), timed; then a check by name`);
  out();
  out(`| run | seconds | left behind (containers, networks, volumes incl. anonymous) |`);
  out(`| --- | ---: | --- |`);
  tears.forEach((x, i) => out(`| ${i + 1} | ${f1(x.seconds)} | ${x.left.length ? x.left.join(", ") : "nothing"} |`));
  out();
}

async function stageStats(ctx: Ctx) {
  out(`### Idle footprint per container (docker stats over a ${WINDOW_S} s window after 10 s settle)`);
  out();
  out(`Memory = cgroup usage minus inactive file cache (what \`docker stats\` shows), mean of samples every 5 s (max in brackets); CPU = cgroup CPU time over the window / wall time, % of one core (includes the healthcheck processes Docker execs inside the container).`);
  out();
  for (const variant of VARIANTS) {
    say(`stats: variant ${variant} (load ${load()})`);
    const b = await bringUpBottle(ctx, `st-${variant.replace(/[^a-z0-9]/g, "")}`, { variant });
    try {
      await sleep(10_000);
      const names = Object.values(b.containers);
      const u = await usageOver(names, WINDOW_S);
      const top: Record<string, string> = {};
      for (const [role, n] of Object.entries(b.containers)) top[role] = await procs(n);
      const describe = (variant: string): string =>
        variant.includes("+") ? variant.split("+").map(describe).join(" + ") :
        variant === "baseline" ? "as shipped: healthcheck in bash builtins (components/container.ts httpHealthcheck), 5s interval" : variant === "node-flags" ? `egress + supervise with NODE_OPTIONS="${NODE_FLAGS}"` : variant === "hc-node" ? "BEFORE the fix: egress + supervise healthcheck `node -e fetch(URL)` (a Node runtime per probe), 5s interval" : `egress + supervise healthcheck interval ${variant.slice(3)} (shipped: 5s)`;
      const desc = describe(variant);
      out(`**${variant}** (${desc}; bring-up ${f1(b.stages.find((s) => s[0] === "TOTAL")![1])} s; load ${load()})`);
      out();
      out(`| container | mem MB (max) | anon RSS MB | CPU % | pids | processes (RSS) |`);
      out(`| --- | ---: | ---: | ---: | ---: | --- |`);
      let side = 0;
      let all = 0;
      let cpu = 0;
      for (const [role, n] of Object.entries(b.containers)) {
        const x = u[n]!;
        all += x.memMB;
        cpu += x.cpuPct;
        if (role !== "agent") side += x.memMB;
        const si = ctx.standIns[role] && role !== "agent" ? " (STAND-IN)" : "";
        out(`| ${role}${si} | ${f1(x.memMB)} (${f1(x.memMaxMB)}) | ${f1(x.rssMB)} | ${x.cpuPct.toFixed(2)} | ${x.pids} | ${top[role]} |`);
      }
      out(`| **sidecars** | **${f1(side)}** | | | | |`);
      out(`| **whole bottle** | **${f1(all)}** | | **${cpu.toFixed(2)}** | | |`);
      out();
    } finally {
      await teardownBottle(b);
    }
  }
}

async function probeIsolation(bottles: Bottle[]): Promise<{ probes: number; open: string[] }> {
  // every address of every container of each bottle
  const addrs = new Map<string, string[]>();
  for (const b of bottles) {
    const ips: string[] = [];
    for (const n of Object.values(b.containers)) {
      const r = await dockerOk(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", n]);
      ips.push(...r.split(/\s+/).filter(Boolean));
    }
    addrs.set(b.name, [...new Set(ips)]);
  }
  let probes = 0;
  const open: string[] = [];
  const script = `const net=require("net");const t=JSON.parse(process.argv[1]);let o=[];Promise.all(t.map(([h,p])=>new Promise(r=>{const s=net.connect({host:h,port:p,timeout:1500});s.on("connect",()=>{o.push(h+":"+p);s.destroy();r()});s.on("timeout",()=>{s.destroy();r()});s.on("error",()=>r())}))).then(()=>{console.log(JSON.stringify(o))})`;
  await Promise.all(
    bottles.map(async (b, idx) => {
      await sleep(idx * 150); // stagger: 2 cores
      const targets: [string, number][] = [];
      for (const other of bottles) if (other !== b) for (const ip of addrs.get(other.name)!) for (const p of PORTS) targets.push([ip, p]);
      if (!targets.length) return;
      probes += targets.length;
      const r = await docker(["exec", b.containers.agent!, "node", "-e", script, JSON.stringify(targets)], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`probe from ${b.name} failed: ${r.stderr.slice(0, 300)}`);
      for (const x of JSON.parse(r.stdout.trim() || "[]") as string[]) open.push(`${b.name} → ${x}`);
    }),
  );
  return { probes, open };
}

async function hostUsedMB(): Promise<number> {
  const m = fs.readFileSync("/proc/meminfo", "utf8");
  const v = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(m)![1]) / 1024;
  return v("MemTotal") - v("MemAvailable");
}

async function stageFleet(ctx: Ctx) {
  out(`### Fleet (bottles added one after another and left running)`);
  out();
  out(
    `Each bottle is brought up ${FLEET_PARALLEL ? "with its containers in parallel (as \`pulumi up\`, see above)" : "in the engine double's one-at-a-time order"}; its 3 networks get explicit 10.214.x.0/24 subnets (the daemon's default address pools run out near 10 bottles, see below). Memory and CPU: the bottles' containers over a 20 s window after 10 s settle; host used = MemTotal − MemAvailable, minus before the first bottle. Isolation: from each agent, a TCP connect (1.5 s timeout) to every address of every container of every other bottle on ports ${PORTS.join(", ")}.`,
  );
  out();
  out(`| bottles | load at start | bring-up of the bottles added: first / median / last s | bottle containers mem MB (per bottle) | sidecars per bottle MB | CPU % all bottles (idle) | host used MB Δ | isolation probes (open) |`);
  out(`| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |`);
  const host0 = await hostUsedMB();
  const bottles: Bottle[] = [];
  for (const size of FLEET) {
    const loadStart = load();
    const times: number[] = [];
    while (bottles.length < size) {
      const name = `f${String(bottles.length + 1).padStart(2, "0")}`;
      say(`fleet: bringing up ${name} (load ${load()})`);
      const b = await bringUpBottle(ctx, name, { explicitSubnets: true, parallel: FLEET_PARALLEL });
      bottles.push(b);
      times.push(b.stages.find((s) => s[0] === "TOTAL")![1]);
    }
    await sleep(10_000);
    const names = bottles.flatMap((b) => Object.values(b.containers));
    const u = await usageOver(names, Math.min(WINDOW_S, 20));
    const mem = names.reduce((s, n) => s + u[n]!.memMB, 0);
    const side = bottles.reduce((s, b) => s + Object.entries(b.containers).filter(([r]) => r !== "agent").reduce((x, [, n]) => x + u[n]!.memMB, 0), 0);
    const cpu = names.reduce((s, n) => s + u[n]!.cpuPct, 0);
    const hostD = (await hostUsedMB()) - host0;
    say(`fleet ${size}: probing isolation`);
    const iso = await probeIsolation(bottles);
    out(
      `| ${size} | ${loadStart} | ${f1(times[0]!)} / ${f1(median(times))} / ${f1(times.at(-1)!)} | ${f1(mem)} (${f1(mem / size)}) | ${f1(side / size)} | ${cpu.toFixed(1)} | ${f1(hostD)} | ${iso.probes} (${iso.open.length ? iso.open.join(", ") : "0 open"}) |`,
    );
    if (iso.open.length) say(`ISOLATION FAILURE: ${iso.open.join(", ")}`);
  }
  out();
  say(`fleet: tearing down ${bottles.length}`);
  const t0 = Date.now();
  const left: string[] = [];
  for (const b of bottles) left.push(...(await teardownBottle(b)).left);
  out(`Fleet teardown: ${bottles.length} bottles in ${f1((Date.now() - t0) / 1000)} s, left behind: ${left.length ? left.join(", ") : "nothing"}.`);
  out();
}

// ------------------------------------------------------------------------------------------

/**
 * RESULTS.md: the "bottle" section lies between <!-- bottle:begin --> and <!-- bottle:end -->;
 * each stage's figures between <!-- bottle-<stage>:begin/end --> inside it, so a run of one
 * stage replaces only that block (the hand-written explanation around them stays).
 */
function writeResults(stage: string, body: string) {
  const file = path.join(HERE, "RESULTS.md");
  const [b0, b1] = ["<!-- bottle:begin -->", "<!-- bottle:end -->"];
  const [s0, s1] = [`<!-- bottle-${stage}:begin -->`, `<!-- bottle-${stage}:end -->`];
  let text = fs.readFileSync(file, "utf8");
  if (!text.includes(b0) || !text.includes(b1)) text = text.trimEnd() + `\n\n${b0}\n## bottle\n\n${b1}\n`;
  const block = `${s0}\n${body.trim()}\n${s1}`;
  const i = text.indexOf(s0);
  const j = text.indexOf(s1);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + s1.length);
  else {
    const k = text.indexOf(b1);
    text = text.slice(0, k) + block + "\n\n" + text.slice(k);
  }
  fs.writeFileSync(file, text);
  say(`wrote the bottle-${stage} block of ${path.relative(REPO, file)}`);
}

async function main() {
  const started = new Date();
  say(`run ${runId}: everything is named ${prefix}*; command: ${COMMAND}`);
  const images = await ensureTestImages({ log: (s) => say(`images: ${s}`) });
  const toolsImage = await ensureToolsImage(images.BASE_IMAGE, say);
  const agentImage = flag("agent", "engine") === "prebuilt" ? (await ensureAgentImage(images.BASE_IMAGE, say)).image : undefined;
  const pipelockStandIn = images.pipelockStandIn;
  const workspace = path.join(tmp, "workspace");
  fs.mkdirSync(workspace);
  fs.writeFileSync(path.join(workspace, "hello.txt"), "bench workspace\n");
  const g = (...a: string[]) => execFileSync("git", ["-C", workspace, "-c", "user.name=b", "-c", "user.email=b@example.invalid", ...a], { stdio: "pipe" });
  g("init", "-q", "-b", "main");
  g("add", "-A");
  g("commit", "-q", "-m", "bench");
  const ctx: Ctx = { images, toolsImage, agentImage, pipelockStandIn, workspace, standIns: pipelockStandIn ? { pipelock: `TEST-ONLY stand-in (test/e2e/pipelock-standin) inside the product's pipelock image: ${pipelockStandIn}` } : {} };
  internet = new FakeInternet(prefix, runId, toolsImage);
  await internet.start().catch((e: Error) => {
    // The bench needs web (the allowed upstream) only; the fake internet's sshd git upstream
    // (started last) is not used here, so its failure does not stop the bench.
    if (!/fake internet git/.test(e.message)) throw e;
    say(`fake internet: git server did not start (not needed here): ${e.message.split("\n")[0]}`);
  });
  const stages = STAGE === "all" ? ["bringup", "stats", "fleet"] : STAGE.split(",");
  const blocks: [string, number][] = [];
  const mark = (st: string) => blocks.push([st, report.length]);
  if (stages.includes("bringup")) {
    mark("bringup");
    await stageBringup(ctx, false);
    await stageBringup(ctx, true);
  }
  if (stages.includes("stats")) {
    mark("stats");
    await stageStats(ctx);
  }
  if (stages.includes("fleet")) {
    mark("fleet");
    await stageFleet(ctx);
  }
  const mem = Math.round(os.totalmem() / 1024 ** 3);
  const dv = (await docker(["version", "--format", "{{.Server.Version}}"])).stdout.trim();
  const header = [
    `Command: \`${COMMAND}\``,
    "",
    `Run ${started.toISOString().slice(0, 16).replace("T", " ")} UTC on ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), ${mem} GB, Docker ${dv}, node ${process.version}; load average (1/5/15 min) at the end ${load()} — a shared machine with e2e runs.`,
    "",
    `**Stand-ins** (every figure below): ${standInNote(ctx) || "none"}. Bring-up ends when the agent's first HTTPS request (curl via HTTPS_PROXY=egress → pipelock stand-in → fake upstream) is answered.`,
  ].join("\n");
  console.log("\n" + header + "\n");
  if (WRITE)
    blocks.forEach(([st, from], k) => {
      const to = blocks[k + 1]?.[1] ?? report.length;
      writeResults(st, `${header}\n\n${report.slice(from, to).join("\n")}`);
    });
}

main()
  .then(() => cleanup())
  .then(() => {
    clearTimeout(deadline);
    process.exit(0);
  })
  .catch(async (e) => {
    console.error(e);
    await cleanup();
    process.exit(1);
  });
