// Bring-up through the REAL Pulumi engine vs the engine double's mock path, in one run (issue 12):
// nothing → the agent's first allowed HTTPS request answered, one bottle, images cached, the fake
// internet already up (not counted). Each path runs in its own process (the mock path installs
// Pulumi mocks, which the real engine's inline program must not see), alternating, N rounds.
//
//   node --import tsx bench/engine-bench.ts [--rounds 3] [--write]
//   (child mode: --path real|double, prints one JSON line)
//
// Everything is named cbtest-bench-<run id>-* and removed afterwards, also on failure.
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..");
const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] && !argv[i + 1]!.startsWith("--") ? argv[i + 1]! : dflt;
};
const say = (s: string) => console.error(`[engine-bench] ${s}`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Result {
  path: "real" | "double";
  /** nothing → the agent's first allowed HTTPS request answered */
  total: number;
  stages: [string, number][];
  status: string;
  teardown: number;
}

/** One bottle through one path; the fake internet and images are prepared outside the window. */
async function child(which: "real" | "double"): Promise<Result> {
  const { FakeInternet, GIT_HOST, ensureToolsImage } = await import("../test/e2e/fake-internet.ts");
  const { hostExtraCaFiles, testImages, waitBottleHealthy } = await import("../test/e2e/harness.ts");
  const { docker } = await import("../test/e2e/lib/docker.ts");
  const { sweep } = await import("../test/e2e/engine/double.ts");
  const runId = crypto.randomBytes(3).toString("hex");
  const prefix = `cbtest-bench-${runId}-`;
  const images = await testImages();
  const toolsImage = await ensureToolsImage(images.BASE_IMAGE, say);
  const internet = new FakeInternet(prefix, runId, toolsImage);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}`));
  const stateDir = path.join(tmp, "state");
  const env = { CLAUDE_CODE_OAUTH_TOKEN: `sk-ant-oat01-BENCH-${crypto.randomBytes(12).toString("hex")}` };
  const template = fs.readFileSync(path.join(REPO, "test/e2e/fixtures/bottle.template.yaml"), "utf8");
  const render = (vars: Record<string, unknown>) => {
    let text = template;
    for (const [k, x] of Object.entries(vars)) text = text.split("${" + k + "}").join(JSON.stringify(x));
    return YAML.parse(text);
  };
  // the fixtures' agents name both e2e bottles: declare the second one, never brought up
  const manifest = (vars: Record<string, unknown>) => {
    const file = path.join(tmp, `m-${crypto.randomBytes(3).toString("hex")}.yaml`);
    fs.writeFileSync(file, YAML.stringify({ bottles: { e2e: render(vars), "e2e-two": render(neutral) }, agents: path.join(REPO, "test/e2e/fixtures/agents") }));
    return file;
  };
  await internet.start();
  const base = { BASE_IMAGE: images.BASE_IMAGE, PIPELOCK_IMAGE: images.PIPELOCK_IMAGE, GITLEAKS_IMAGE: images.GITLEAKS_IMAGE, CA_FILES: [internet.caFile, ...hostExtraCaFiles()], WORKSPACE: fs.mkdtempSync(path.join(tmp, "ws-")), GIT: { upstreams: [] }, RUNTIME: "runc" };
  const neutral = { ...base, SSRF_ALLOW: [], EXTRA_HOSTS: {} };
  const final = (ips: Record<string, string>) => ({ ...base, SSRF_ALLOW: [`${ips.web}/32`], EXTRA_HOSTS: { "api.anthropic.com": ips.web, "api.github.com": ips.web, "internal.example": ips.intranet, "metadata.example": ips.intranet, [GIT_HOST]: ips.git } });
  const stages: [string, number][] = [];
  let last = 0;
  let t0 = 0;
  const mark = (what: string) => {
    const now = Date.now();
    stages.push([what, (now - last) / 1000]);
    last = now;
  };
  let teardown = async () => {};
  let containers: Record<string, { name: string }> = {};
  try {
    t0 = last = Date.now();
    if (which === "real") {
      const { realStack } = await import("../test/e2e/engine/stack.ts");
      const { bottleProgram } = await import("../components/program.ts");
      const { DOCKER_TYPES } = await import("../contracts/docker.ts");
      let file = manifest(neutral);
      const rs = await realStack({ runId, stackName: "bench", workDir: path.join(tmp, "stack"), program: () => bottleProgram({ manifest: file, agent: "alpha", env, stateDir, namePrefix: prefix, projectDir: path.join(tmp, "stack") }) });
      teardown = async () => void (await rs.stack.destroy({ onOutput: () => undefined }));
      mark("stack init (workspace, CLI)");
      const nets: { urn: string; name: string }[] = [];
      const parentOf = new Map<string, string>();
      await rs.stack.preview({
        onEvent: (e) => {
          const m = e.resourcePreEvent?.metadata;
          if (!m) return;
          if (m.new?.parent) parentOf.set(m.urn, m.new.parent);
          if (m.type === DOCKER_TYPES.network) nets.push({ urn: m.urn, name: String(m.new?.inputs?.name) });
        },
      });
      mark("pulumi preview");
      const targets = new Set<string>();
      for (const n of nets) for (let u: string | undefined = n.urn; u && !u.includes("::pulumi:pulumi:Stack::"); u = parentOf.get(u)) targets.add(u);
      await rs.stack.up({ target: [...targets], onOutput: () => undefined });
      mark("pulumi up --target networks");
      const ips = await internet.attach(nets.find((n) => n.name.endsWith("-outside"))!.name);
      mark("[bench] attach fake internet");
      file = manifest(final(ips));
      const up = await rs.stack.up({ onOutput: () => undefined });
      mark("pulumi up (everything else)");
      containers = Object.fromEntries(Object.entries(up.outputs.containers!.value as Record<string, string>).map(([r, n]) => [r, { name: n }]));
      await waitBottleHealthy(containers);
      mark("wait healthy (pulumi up does not)");
    } else {
      const { captureBottle } = await import("../test/unit/helpers/capture.ts");
      const { EngineDouble, T } = await import("../test/e2e/engine/double.ts");
      const engine = new EngineDouble({ runId, log: () => undefined });
      teardown = async () => void (await engine.destroy());
      const c1 = await captureBottle({ manifest: manifest(neutral), agent: "alpha", namePrefix: prefix, env, stateDir });
      mark("program under mocks (phase 1)");
      await engine.applyNetworks(c1.registrations);
      mark("networks");
      const ips = await internet.attach(c1.byType(T.network).find((n) => n.inputs.name.endsWith("-outside"))!.inputs.name);
      mark("[bench] attach fake internet");
      const c2 = await captureBottle({ manifest: manifest(final(ips)), agent: "alpha", namePrefix: prefix, env, stateDir });
      mark("program under mocks (phase 2)");
      await engine.apply(c2.registrations);
      mark("apply, one resource at a time, each container awaited to healthy");
      containers = Object.fromEntries(engine.containers.filter((c) => c.role).map((c) => [c.role!, { name: c.name }]));
    }
    let status = "none";
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      const r = await docker(["exec", containers.agent!.name, "curl", "-sS", "-m", "8", "-o", "/dev/null", "-w", "%{http_code}", "https://api.anthropic.com/v1/messages"], { timeoutMs: 15_000 });
      if (/^[1-5]\d\d$/.test(r.stdout.trim())) {
        status = r.stdout.trim();
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    mark("agent's first HTTPS request answered");
    const total = (Date.now() - t0) / 1000;
    const td0 = Date.now();
    for (const name of Object.values(internet.names)) await docker(["network", "disconnect", "-f", `${prefix}e2e-alpha-outside`, name]);
    await teardown();
    teardown = async () => {};
    return { path: which, total, stages, status, teardown: (Date.now() - td0) / 1000 };
  } finally {
    await teardown().catch(() => undefined);
    await internet.stop().catch(() => undefined);
    await sweep(prefix);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function parent(): Promise<void> {
  const rounds = Number(flag("rounds", "3"));
  const results: Result[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const which of i % 2 ? (["double", "real"] as const) : (["real", "double"] as const)) {
      say(`round ${i + 1}/${rounds}: ${which}`);
      const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--path", which], { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 30 * 60_000 });
      const line = r.stdout.trim().split("\n").pop() ?? "";
      if (r.status !== 0 || !line.startsWith("{")) throw new Error(`${which} run failed (exit ${r.status}): ${r.stdout.slice(-400)}`);
      results.push(JSON.parse(line));
    }
  }
  const of = (p: string) => results.filter((r) => r.path === p);
  const real = median(of("real").map((r) => r.total));
  const dbl = median(of("double").map((r) => r.total));
  const lines = [
    "## engine",
    "",
    `\`node --import tsx bench/engine-bench.ts --rounds ${rounds}\` — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(" / ")} at the end; one bottle (agent, egress, supervise, pipelock = the TEST-ONLY stand-in), images cached, fake internet up before the clock starts. Nothing → the agent's first allowed HTTPS request answered.`,
    "",
    "| path | runs (s) | median (s) |",
    "| --- | --- | --- |",
    `| real Pulumi engine (CLI + inline program + our provider plugins), containers created as the engine schedules them, then health awaited | ${of("real").map((r) => r.total.toFixed(1)).join(", ")} | ${real.toFixed(1)} |`,
    `| engine double (program under mocks, one resource at a time, each container awaited) | ${of("double").map((r) => r.total.toFixed(1)).join(", ")} | ${dbl.toFixed(1)} |`,
    "",
    `**Ratio real / double: ${(real / dbl).toFixed(2)}×.** Teardown: real \`pulumi destroy\` ${median(of("real").map((r) => r.teardown)).toFixed(1)} s, double ${median(of("double").map((r) => r.teardown)).toFixed(1)} s (medians).`,
    "",
    "Where the time goes (last run of each):",
    "",
  ];
  for (const p of ["real", "double"]) {
    lines.push(`| ${p}: stage | s |`, "| --- | --- |");
    for (const [stage, secs] of of(p).at(-1)!.stages) lines.push(`| ${stage} | ${secs.toFixed(1)} |`);
    lines.push("");
  }
  const section = lines.join("\n");
  console.log(section);
  if (argv.includes("--write")) {
    const file = path.join(HERE, "RESULTS.md");
    const text = fs.readFileSync(file, "utf8");
    const start = text.indexOf("## engine\n");
    const next = start >= 0 ? text.indexOf("\n## ", start + 1) : -1;
    const updated = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, start)}${section}${next >= 0 ? text.slice(next + 1) : ""}`;
    fs.writeFileSync(file, updated);
    say(`wrote the "engine" section of ${file}`);
  }
}

const which = flag("path", "");
if (which === "real" || which === "double") {
  child(which).then(
    (r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
} else parent().catch((e) => {
  console.error(e);
  process.exit(1);
});
