// Fleets (issue 18): how many bottles one host holds when their networks come from a pool the
// program owns, and what bringing a bottle up on another Docker host costs. Not a timed test: it
// prints its figures and the command that made them; with --write it replaces the "fleet"
// section of bench/RESULTS.md.
//
//   node --import tsx bench/fleet-bench.ts [--stage pool,remote] [--steps 10,25,50] [--rounds 3] [--write]
//
// pool:   one stack of the example fleet program (examples/fleet/fleet.ts) on this machine's
//         engine, grown step by step (10 → 25 → 50 bottles) with `pulumi up` through the real
//         Pulumi engine (test/e2e/engine/stack.ts); after each step: bring-up time, memory (every
//         container of the fleet, `docker stats`), and isolation probes from three agents to every
//         address of every other bottle.
// remote: one bottle brought up on this machine's engine and on a second dockerd in its own
//         network namespace reached over its own socket (test/e2e/lib/second-daemon.ts), both with
//         warm build caches, `--rounds` times each (fresh stack, destroyed after).
//
// Stand-ins, as everywhere in bench/: pipelock is the TEST-ONLY stand-in image; the docker and tls
// providers are the e2e tier's plugin doubles. Everything is named cbtest-fleetbench-<run>-* and
// removed at the end, also on failure.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { fleetProgram, type FleetHost } from "../examples/fleet/fleet.ts";
import { realStack, type RealStack } from "../test/e2e/engine/stack.ts";
import { DOCKER_TYPES } from "../test/e2e/engine/docker.ts";
import { sweep } from "../test/e2e/engine/double.ts";
import { ensureTestImages } from "../test/e2e/images/build.ts";
import { docker, dockerEnv, sleep } from "../test/e2e/lib/docker.ts";
import { seedImages, stageImages, startSecondDaemon, type SecondDaemon } from "../test/e2e/lib/second-daemon.ts";
import { probe, reached, type Probe } from "../test/e2e/probe.ts";
import { buildSidecars } from "../sidecars/build.ts";
import { runBench, writeBlock } from "./results.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] && !argv[i + 1]!.startsWith("--") ? argv[i + 1]! : dflt;
};
const STAGES = flag("stage", "pool,remote").split(",");
const STEPS = flag("steps", "10,25,50").split(",").map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const ROUNDS = Number(flag("rounds", "3"));
const WRITE = argv.includes("--write");
const COMMAND = `node --import tsx bench/fleet-bench.ts ${argv.join(" ")}`.trim();
const LOCAL = "unix:///var/run/docker.sock";

const runId = crypto.randomBytes(3).toString("hex");
const prefix = `cbtest-fleetbench-${runId}-`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
const say = (s: string) => console.log(`[fleet-bench] ${s}`);
const f1 = (n: number) => n.toFixed(1);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const on = (host: string, args: string[], timeoutMs = 120_000) => docker(args, { env: { ...dockerEnv(), DOCKER_HOST: host }, timeoutMs });
const timed = async <R>(fn: () => Promise<R>): Promise<[R, number]> => {
  const t0 = Date.now();
  const r = await fn();
  return [r, (Date.now() - t0) / 1000];
};

const stacks: RealStack[] = [];
let second: SecondDaemon | undefined;
async function cleanup(): Promise<void> {
  for (const s of stacks.splice(0)) await s.stack.destroy({ onOutput: () => undefined }).catch((e) => say(`destroy: ${(e as Error).message.split("\n").slice(-2).join(" ")}`));
  await sweep(prefix);
  await second?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void cleanup().finally(() => process.exit(130)));

/** A manifest with one bottle definition and `n` agents in it (bench-1 … bench-n). */
function manifest(images: Awaited<ReturnType<typeof ensureTestImages>>, n: number): { file: string; agents: string[] } {
  const agentsDir = path.join(tmp, "agents");
  fs.mkdirSync(agentsDir, { recursive: true });
  const agents = Array.from({ length: n }, (_, i) => `a${i + 1}`);
  for (const a of agents) fs.writeFileSync(path.join(agentsDir, `${a}.md`), `---\nbottle: bench\n---\nbench agent ${a}\n`);
  const routes = [{ host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" }, role: "claude_code_oauth" }];
  const ca = fs.readdirSync("/usr/local/share/ca-certificates").filter((f) => f.endsWith(".crt")).map((f) => path.join("/usr/local/share/ca-certificates", f));
  const body = { egress: { routes }, supervise: true, runtime: "runc", images: { base: images.BASE_IMAGE, pipelock: images.PIPELOCK_IMAGE, gitleaks: images.GITLEAKS_IMAGE }, extra_ca_files: ca };
  const file = path.join(tmp, "claude-bottle.yaml");
  fs.writeFileSync(file, YAML.stringify({ agents: agentsDir, bottles: { bench: body } }));
  return { file, agents };
}

async function fleetStack(name: string, manifestFile: string, hosts: () => FleetHost[], pool: string): Promise<RealStack> {
  const workDir = path.join(tmp, `stack-${name}`);
  const s = await realStack({
    runId,
    stackName: name,
    workDir,
    program: () => fleetProgram({ manifest: manifestFile, hosts: hosts(), subnets: { cidr: pool, networkPrefix: 26 }, namePrefix: prefix, env: { CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-BENCH" }, projectDir: workDir }),
  });
  stacks.push(s);
  return s;
}

async function waitHealthy(host: string, names: string[]): Promise<void> {
  await Promise.all(
    names.map(async (n) => {
      for (let i = 0; i < 600; i++) {
        const st = (await on(host, ["inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", n])).stdout.trim();
        if (st === "healthy" || st === "none") return;
        await sleep(500);
      }
      throw new Error(`${n} did not become healthy`);
    }),
  );
}

async function freePool(hosts: string[], prefixLen: number): Promise<string> {
  const used: string[] = [];
  for (const h of hosts) {
    const ids = (await on(h, ["network", "ls", "-q"])).stdout.split("\n").filter(Boolean);
    if (ids.length) used.push(...(await on(h, ["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids])).stdout.split(/\s+/).filter(Boolean));
  }
  for (const second of [237, 238, 239, 240]) if (!used.some((s) => s.startsWith(`10.${second}.`))) return `10.${second}.0.0/${prefixLen}`;
  throw new Error("no free 10.237-240.0.0 block for the pool");
}

/** MiB of a `docker stats` MemUsage field ("33.5MiB / 23.5GiB"). */
function mib(usage: string): number {
  const m = /^([\d.]+)\s*([KMG]i?B|B)/.exec(usage.trim());
  if (!m) return NaN;
  const unit: Record<string, number> = { B: 1 / 1048576, KiB: 1 / 1024, KB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 };
  return Number(m[1]) * (unit[m[2]!] ?? NaN);
}

const report: string[] = [];
const out = (s = "") => {
  console.log(s);
  report.push(s);
};

async function stagePool(images: Awaited<ReturnType<typeof ensureTestImages>>): Promise<void> {
  const max = STEPS.at(-1)!;
  const { file, agents } = manifest(images, max);
  const pool = await freePool([LOCAL], 17);
  // warm the build caches (the agent image's build args differ from the e2e tier's): not measured
  const warm = await fleetStack("warm", file, () => [{ name: "local", docker: { host: LOCAL }, agents: [agents[0]!] }], pool);
  const [, warmS] = await timed(() => warm.stack.up({ onOutput: () => undefined }));
  await warm.stack.destroy({ onOutput: () => undefined });
  stacks.splice(stacks.indexOf(warm), 1);
  say(`build caches warm (${f1(warmS)} s)`);
  let count = 0;
  const stack = await fleetStack("pool", file, () => [{ name: "local", docker: { host: LOCAL }, agents: agents.slice(0, count) }], pool);
  out(`Pool ${pool} (three /26 per bottle: 170 bottles); one stack, grown with \`pulumi up\`:`);
  out();
  out("| bottles | `pulumi up` (the new ones) | + healthy | memory, all containers | per bottle | probes from 3 agents to every other bottle | reached |");
  out("| --- | --- | --- | --- | --- | --- | --- |");
  for (const n of STEPS) {
    const before = count;
    count = n;
    say(`up to ${n} bottles (load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")})`);
    const [res, upS] = await timed(() => stack.stack.up({ onOutput: () => undefined, parallel: 16 }));
    const bottles = Object.entries((res.outputs.bottles?.value ?? {}) as Record<string, { containers: Record<string, string> }>);
    const fresh = bottles.filter(([id]) => agents.slice(before, n).some((a) => id === `bench-${a}`));
    const [, healthyS] = await timed(() => waitHealthy(LOCAL, fresh.flatMap(([, b]) => Object.values(b.containers))));
    await sleep(10_000); // settle before measuring memory
    const stats = (await on(LOCAL, ["stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}"], 300_000)).stdout.split("\n").filter((l) => l.startsWith(prefix));
    const total = stats.reduce((sum, l) => sum + mib(l.split("\t")[1] ?? ""), 0);
    // isolation: the first, a middle and the last agent probe every address of every other bottle
    const addrs = async (names: string[]) => (await on(LOCAL, ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", ...names])).stdout.split(/\s+/).filter(Boolean);
    let probes = 0;
    let open = 0;
    for (const k of [0, Math.floor(bottles.length / 2), bottles.length - 1]) {
      const [id, b] = bottles[k]!;
      const targets: Probe[] = [];
      for (const [other, ob] of bottles) if (other !== id) for (const ip of await addrs(Object.values(ob.containers))) for (const port of [3128, 8080, 8888]) targets.push({ kind: "tcp", host: ip, port, ms: 1500 });
      for (let i = 0; i < targets.length; i += 200) {
        const chunk = targets.slice(i, i + 200);
        const res2 = await probe(b.containers.agent!, chunk);
        probes += chunk.length;
        open += res2.filter(reached).length;
      }
    }
    out(`| ${n} | ${f1(upS)} s (${n - before} new) | ${f1(healthyS)} s | ${(total / 1024).toFixed(2)} GiB (${stats.length} containers) | ${f1(total / n)} MiB | ${probes} | ${open} |`);
  }
  const [, downS] = await timed(() => stack.stack.destroy({ onOutput: () => undefined }));
  stacks.splice(stacks.indexOf(stack), 1);
  out();
  out(`\`pulumi destroy\` of the ${count} bottles: ${f1(downS)} s.`);
  out();
}

async function stageRemote(images: Awaited<ReturnType<typeof ensureTestImages>>): Promise<void> {
  const { file } = manifest(images, 1);
  second = await startSecondDaemon({ log: say });
  const b = second;
  await seedImages(b, { refs: [images.BASE_IMAGE, images.PIPELOCK_IMAGE, images.GITLEAKS_IMAGE] });
  const pool = await freePool([LOCAL, b.host], 20);
  const times: Record<string, { up: number[]; healthy: number[] }> = { local: { up: [], healthy: [] }, remote: { up: [], healthy: [] } };
  let seeded = false;
  for (let r = 0; r < ROUNDS; r++) {
    for (const where of ["local", "remote"] as const) {
      const host = where === "local" ? LOCAL : b.host;
      const stack = await fleetStack(`${where}-${r}`, file, () => [{ name: where, docker: { host }, agents: ["a1"] }], pool);
      if (where === "remote" && !seeded) {
        // B's build cache: the chains (and build stages) of the images the local round built
        const urns: { type: string; inputs?: any }[] = [];
        await stacks.find((s) => s.workDir.endsWith("stack-local-0"))?.stack.preview({ onEvent: (e) => { const m = e.resourcePreEvent?.metadata; if (m) urns.push({ type: m.type, inputs: m.new?.inputs }); } });
        const built = urns.filter((u) => u.type === DOCKER_TYPES.image).map((u) => u.inputs.imageName as string);
        const stages = await stageImages(urns.filter((u) => u.type === DOCKER_TYPES.image).map((u) => u.inputs.build), `${prefix}stage:`);
        const [bytes, s] = await timed(() => seedImages(b, { refs: [], caches: [...built, ...stages] }));
        say(`seeded B's build cache: ${(bytes / 1e6).toFixed(0)} MB in ${f1(s)} s`);
        seeded = true;
        const local0 = stacks.find((x) => x.workDir.endsWith("stack-local-0"))!;
        await local0.stack.destroy({ onOutput: () => undefined });
        stacks.splice(stacks.indexOf(local0), 1);
      }
      const [res, upS] = await timed(() => stack.stack.up({ onOutput: () => undefined }));
      const containers = Object.values((res.outputs.bottles.value as Record<string, { containers: Record<string, string> }>)["bench-a1"]!.containers);
      const [, healthyS] = await timed(() => waitHealthy(host, containers));
      times[where]!.up.push(upS);
      times[where]!.healthy.push(healthyS);
      say(`${where} round ${r + 1}: up ${f1(upS)} s, healthy +${f1(healthyS)} s`);
      // the local round's stack stays until B is seeded from it; the others go now
      if (!(where === "local" && r === 0)) {
        await stack.stack.destroy({ onOutput: () => undefined });
        stacks.splice(stacks.indexOf(stack), 1);
      }
    }
  }
  const row = (w: "local" | "remote") => `${f1(median(times[w].up))} s (${times[w].up.map(f1).join(", ")}) | ${f1(median(times[w].healthy))} s`;
  out(`One bottle, warm build caches, ${ROUNDS} rounds each (fresh stack, destroyed after):`);
  out();
  out("| engine | `pulumi up` median (each) | then healthy |");
  out("| --- | --- | --- |");
  out(`| this machine's, \`unix:///var/run/docker.sock\` | ${row("local")} |`);
  out(`| a second dockerd over its own socket, in its own network namespace | ${row("remote")} |`);
  out();
  out(`Ratio of the medians, second daemon / local: **${(median(times.remote.up) / median(times.local.up)).toFixed(2)}×** for \`pulumi up\`.`);
  out();
}

async function main(): Promise<void> {
  const started = new Date();
  say(`run ${runId}: ${COMMAND}`);
  await buildSidecars();
  const images = await ensureTestImages({ log: say });
  if (STAGES.includes("pool")) await stagePool(images);
  if (STAGES.includes("remote")) await stageRemote(images);
  const dv = (await docker(["version", "--format", "{{.Server.Version}}"])).stdout.trim();
  const header = [
    `Command: \`${COMMAND}\``,
    "",
    `Run ${started.toISOString().slice(0, 16).replace("T", " ")} UTC on ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 1024 ** 3)} GB, Docker ${dv}, node ${process.version}; load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(" / ")} — a shared machine. Real Pulumi engine (v3.248.0), the e2e tier's provider doubles, pipelock = the TEST-ONLY stand-in.`,
  ].join("\n");
  console.log(`\n${header}\n`);
  if (WRITE) writeBlock(path.join(HERE, "RESULTS.md"), "fleet", `${header}\n\n${report.join("\n")}`);
}

runBench(main, cleanup);
