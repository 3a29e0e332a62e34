// What gVisor costs the agent (issue 15): the real agent image under runsc vs runc on this
// engine, in one run, as ratios. Not a timed test: it prints its figures and the command that
// made them, and with --write replaces the "gvisor" section of bench/RESULTS.md.
//
//   node --import tsx bench/gvisor-bench.ts [--rounds 3] [--files 3000] [--commits 300] [--settle 15] [--write]
//
// Each round creates one agent per runtime (order alternating round by round) as the bottle
// does: the real agent image, the bottle's hardening (all capabilities dropped,
// no-new-privileges, user agent), an --internal network, fresh home and workspace volumes, the
// workspace tar uploaded before start. Then, each the wall time of one `docker exec` (so the
// exec's own overhead is in every figure; `exec true` is measured to show it):
//   bring-up: `docker start` → first `docker exec true` that succeeds; → the entrypoint's
//     `ready:` line (it extracts the workspace tar: --files files, --commits commits)
//   idle memory: the container's cgroup (docker stats), --settle s after ready
//   git: `git status` first and warm, `git log --stat`, `git log -p`
//   a test suite: `node --test` over 40 files × 25 tests; "install": untar the workspace again
// Everything it creates is named cbtest-gvbench-<run>-* and removed at the end, also on Ctrl-C.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureTestImages } from "../test/e2e/images/build.ts";
import { ensureAgentImage } from "../test/e2e/agent-image.ts";
import { sweep } from "../test/e2e/engine/double.ts";
import { docker, dockerOk, sleep } from "../test/e2e/lib/docker.ts";
import { tarFiles } from "../test/e2e/lib/tar.ts";
import { writeWorkspaceTar } from "../store/workspace.ts";
import { AGENT_HOME, AGENT_PATHS, AGENT_WORKSPACE } from "../contracts/agent.ts";
import { daemonFacts, probeContainer } from "../components/runtime.ts";
import { runBench } from "./results.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] && !argv[i + 1]!.startsWith("--") ? argv[i + 1]! : dflt;
};
const ROUNDS = Number(flag("rounds", "3"));
const FILES = Number(flag("files", "3000"));
const COMMITS = Number(flag("commits", "300"));
const SETTLE_S = Number(flag("settle", "15"));
const WRITE = argv.includes("--write");
const COMMAND = `node --import tsx bench/gvisor-bench.ts ${argv.join(" ")}`.trim();
const RUNTIMES = ["runc", "runsc"] as const;
type Rt = (typeof RUNTIMES)[number];

const say = (s: string) => console.log(`[gvbench] ${s}`);
const runId = crypto.randomBytes(3).toString("hex");
const prefix = `cbtest-gvbench-${runId}-`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" / ");

let cleaning: Promise<void> | undefined;
const cleanup = () => (cleaning ??= sweep(prefix).then(() => fs.rmSync(tmp, { recursive: true, force: true })));
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void cleanup().finally(() => process.exit(130)));

/** A few-thousand-file JS repo with history and a node:test suite, as the agent would get it. */
function makeWorkspace(): { dir: string; tar: string; files: number } {
  const dir = path.join(tmp, "workspace");
  const dirs = Math.ceil((FILES - 41) / 50);
  for (let d = 0; d < dirs; d++) {
    fs.mkdirSync(path.join(dir, "src", `m${d}`), { recursive: true });
    for (let f = 0; f < 50; f++) fs.writeFileSync(path.join(dir, "src", `m${d}`, `f${f}.js`), `exports.f${f} = (x) => x * ${f} + ${d};\n// ${"x".repeat(200)}\n`);
  }
  fs.mkdirSync(path.join(dir, "test"));
  for (let t = 0; t < 40; t++) {
    const cases = Array.from({ length: 25 }, (_, i) => `test("f${i} of m${t % dirs}", () => assert.equal(require("../src/m${t % dirs}/f${i}.js").f${i}(2), ${2 * i + (t % dirs)}));`);
    fs.writeFileSync(path.join(dir, "test", `t${t}.test.js`), `const test = require("node:test");\nconst assert = require("node:assert");\n${cases.join("\n")}\n`);
  }
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "bench-ws", version: "1.0.0", scripts: { test: "node --test test/" } }, null, 2) + "\n");
  const git = (...a: string[]) => execFileSync("git", ["-C", dir, "-c", "user.name=b", "-c", "user.email=b@example.invalid", ...a], { stdio: "pipe" });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "initial");
  for (let c = 0; c < COMMITS; c++) {
    fs.appendFileSync(path.join(dir, "src", `m${c % dirs}`, `f${c % 50}.js`), `// change ${c}\n`);
    git("commit", "-q", "-am", `change ${c}`);
  }
  git("gc", "-q");
  const files = Number(execFileSync("git", ["-C", dir, "ls-files"]).toString().trim().split("\n").length);
  return { dir, tar: writeWorkspaceTar(dir, path.join(tmp, "workspace.tar")).file, files };
}

type Sample = Record<string, number>;

async function execS(c: string, script: string, timeoutMs = 300_000): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await docker(["exec", c, "sh", "-c", script], { timeoutMs });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.code !== 0) throw new Error(`${c}: \`${script}\` exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return s;
}

function mib(s: string): number {
  const m = /^([\d.]+)\s*([KMG]i?B|B)/.exec(s.trim());
  if (!m) return NaN;
  return Number(m[1]) * ({ B: 1 / 1048576, KiB: 1 / 1024, KB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 } as Record<string, number>)[m[2]!]!;
}

async function round(image: string, net: string, tarBytes: Buffer, rt: Rt, i: number): Promise<Sample> {
  const c = `${prefix}${rt}-${i}`;
  const home = `${c}-home`;
  const ws = `${c}-workspace`;
  await dockerOk([
    "create", "--name", c, "--runtime", rt, "--network", net, "--hostname", "bottle",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
    "-v", `${home}:${AGENT_HOME}`, "-v", `${ws}:${AGENT_WORKSPACE}`, image,
  ]);
  await dockerOk(["cp", "-", `${c}:/`], { input: tarFiles([{ path: AGENT_PATHS.workspaceTar, content: tarBytes, mode: 0o644, uid: 0, gid: 0 }]) });
  const s: Sample = {};
  const t0 = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - t0) / 1e9;
  await dockerOk(["start", c]);
  while ((await docker(["exec", c, "true"])).code !== 0) await sleep(20);
  s.start = since();
  for (;;) {
    const logs = await docker(["logs", c]);
    if (/\[agent\] ready:/.test(logs.stdout + logs.stderr)) break;
    if (since() > 300) throw new Error(`${c}: no ready line after 300 s:\n${logs.stderr.slice(-800)}`);
    await sleep(50);
  }
  s.ready = since();
  await sleep(SETTLE_S * 1000);
  const stats = JSON.parse(await dockerOk(["stats", "--no-stream", "--format", "{{json .}}", c]));
  s.memIdle = mib(String(stats.MemUsage).split("/")[0]!);
  s.execTrue = await execS(c, "true");
  s.gitStatusFirst = await execS(c, "git -C /workspace status --porcelain > /dev/null");
  const warm: number[] = [];
  for (let k = 0; k < 3; k++) warm.push(await execS(c, "git -C /workspace status --porcelain > /dev/null"));
  s.gitStatus = median(warm);
  s.gitLogStat = await execS(c, "git -C /workspace log --stat --format=%H%an%s > /dev/null");
  s.gitLogP = await execS(c, "git -C /workspace log -p > /dev/null");
  s.lsR = await execS(c, "ls -laR /workspace/src > /dev/null");
  s.suite = await execS(c, "cd /workspace && node --test test/ > /dev/null");
  s.install = await execS(c, `mkdir -p /workspace/.x && tar -xf ${AGENT_PATHS.workspaceTar} -C /workspace/.x && rm -rf /workspace/.x`);
  s.claudeVersion = await execS(c, "claude --version > /dev/null");
  await docker(["rm", "-f", "-v", c]);
  await docker(["volume", "rm", "-f", home, ws]);
  return s;
}

const ROWS: [key: string, what: string, unit: "s" | "MiB"][] = [
  ["start", "bring-up: `docker start` → first `docker exec true` that succeeds", "s"],
  ["ready", "bring-up: `docker start` → the entrypoint's `ready:` line (workspace extracted)", "s"],
  ["memIdle", "idle memory of the agent (`docker stats` MemUsage, after the settle)", "MiB"],
  ["execTrue", "`docker exec … true` (the overhead in every row below)", "s"],
  ["gitStatusFirst", "`git status --porcelain`, first after start", "s"],
  ["gitStatus", "`git status --porcelain`, warm (median of 3)", "s"],
  ["gitLogStat", "`git log --stat` over the history", "s"],
  ["gitLogP", "`git log -p`", "s"],
  ["lsR", "`ls -laR /workspace/src`", "s"],
  ["suite", "test suite: `node --test test/` (40 files, 1000 tests)", "s"],
  ["install", "\"install\": untar the workspace (every file) into the volume, `rm -rf` it", "s"],
  ["claudeVersion", "`claude --version` (the native binary starts)", "s"],
];

function writeResults(body: string) {
  const file = path.join(HERE, "RESULTS.md");
  const [b0, b1] = ["<!-- gvisor:begin -->", "<!-- gvisor:end -->"];
  let text = fs.readFileSync(file, "utf8");
  const block = `${b0}\n${body.trim()}\n${b1}`;
  const i = text.indexOf(b0);
  const j = text.indexOf(b1);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + b1.length) : `${text.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(file, text);
  say(`wrote the gvisor section of bench/RESULTS.md`);
}

async function main() {
  const started = new Date();
  say(`run ${runId}: everything is named ${prefix}*; ${COMMAND}`);
  const facts = daemonFacts();
  const runsc = facts?.runtimes.runsc;
  if (!runsc) throw new Error("the Docker engine lists no runsc: register it first (README, \"gVisor\"; test/e2e/images/ensure-engine.sh)");
  const images = await ensureTestImages({ log: (s) => say(`images: ${s}`) });
  const { image } = await ensureAgentImage(images.BASE_IMAGE, say);
  const probe = probeContainer("runsc", images.BASE_IMAGE, prefix);
  if (!probe.ok) throw new Error(`runsc is registered but does not start a container: ${probe.error}`);
  const net = `${prefix}internal`;
  await dockerOk(["network", "create", "--internal", net]);
  say("making the workspace");
  const ws = makeWorkspace();
  const tarBytes = fs.readFileSync(ws.tar);
  const samples: Record<Rt, Sample[]> = { runc: [], runsc: [] };
  const loads: string[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    for (const rt of i % 2 ? [...RUNTIMES].reverse() : RUNTIMES) {
      loads.push(os.loadavg()[0]!.toFixed(1));
      say(`round ${i + 1}/${ROUNDS} ${rt} (load ${load()})`);
      samples[rt].push(await round(image, net, tarBytes, rt, i));
    }
  }
  const dv = await dockerOk(["version", "--format", "{{.Server.Version}}"]);
  const out: string[] = [
    "## gvisor",
    "",
    `What gVisor costs the agent: \`bench/gvisor-bench.ts\`, the real agent image (\`${image}\`, with the statx shim) under \`runsc\` vs \`runc\`, interleaved round by round, medians of ${ROUNDS} rounds. The figures are written by the bench (\`--write\`); the reading below them is by hand.`,
    "",
    `Command: \`${COMMAND}\``,
    "",
    `Run ${started.toISOString().slice(0, 16).replace("T", " ")} UTC on ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 1024 ** 3)} GB, kernel ${os.release()}, Docker ${dv}; runsc entry \`${JSON.stringify(runsc)}\` (${execFileSync("sh", ["-c", "runsc --version 2>/dev/null | head -1 || true"]).toString().trim() || "runsc version unknown"}). Workspace: ${ws.files} files, ${COMMITS + 1} commits, packed, tar ${(tarBytes.length / 1e6).toFixed(1)} MB. 1-min load average at each start: ${loads.join(", ")}; at the end ${load()} (a shared machine: read the ratios).`,
    "",
    "| what (each a `docker exec` wall time unless a unit says otherwise) | runc | runsc | runsc / runc |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const [key, what, unit] of ROWS) {
    const a = median(samples.runc.map((s) => s[key]!));
    const b = median(samples.runsc.map((s) => s[key]!));
    const f = (x: number) => (unit === "MiB" ? `${x.toFixed(1)} MiB` : `${x.toFixed(3)} s`);
    out.push(`| ${what} | ${f(a)} | ${f(b)} | **${(b / a).toFixed(2)}×** |`);
  }
  const body = out.join("\n");
  console.log("\n" + body + "\n");
  if (WRITE) writeResults(body);
}

runBench(main, cleanup);
