// Brings bottles up on a real Docker engine: the stack program under Pulumi mocks → the
// engine double, next to the fake internet. Used by escape.test.ts and functional.test.ts.
//
// Two-phase apply per bottle: (1) capture with no extra_hosts and create only the networks,
// attach the fake internet servers to the bottle's `outside` network and learn their
// addresses there; (2) render the final manifest (extra_hosts, ssrf_ip_allowlist, test CA),
// capture again and apply everything. Network inputs do not depend on the manifest's
// hosts, so phase 2's networks equal phase 1's and are adopted unchanged (as `pulumi up`
// would leave an unchanged resource alone).
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { EngineDouble, T, sweep, type CreatedContainer, type Substitute } from "./engine.ts";
import { FakeInternet, ensureToolsImage, type ServerName } from "./fake-internet.ts";
import { docker, engineProblem } from "./lib/docker.ts";
import { ensureTestImages, type TestImages } from "./images/build.ts";
import { captureBottle, type Capture } from "../unit/helpers/capture.ts";
import { SIDECARS_DIR } from "../../components/images.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, "fixtures");

export const log = (s: string) => console.log(`[e2e] ${s}`);

export interface BottleUnderTest {
  bottle: string;
  agent: string;
  identity: string;
  capture: Capture;
  manifestFile: string;
  /** role → container */
  containers: Record<string, CreatedContainer>;
  networks: { internal: string; link: string; outside: string };
  /** fake internet addresses on this bottle's outside network */
  ips: Record<ServerName, string>;
  stateDir: string;
  /** The real token egress holds; the agent must never see it. */
  token: string;
}

export interface Harness {
  runId: string;
  prefix: string;
  images: TestImages;
  toolsImage: string;
  internet: FakeInternet;
  engine: EngineDouble;
  bottles: BottleUnderTest[];
  /** role → why it runs a stand-in image */
  standIns: Record<string, string>;
  timings: Record<string, number>;
  teardown(): Promise<string[]>;
}

export async function noEngineBanner(): Promise<string | undefined> {
  const problem = await engineProblem();
  if (!problem) return undefined;
  const banner = [
    "",
    "#".repeat(78),
    "#  E2E TIER NOT RUN: no Docker engine",
    `#  (${problem})`,
    "#  To fix: start dockerd (test/e2e/images/ensure-engine.sh installs docker.io +",
    "#  mmdebstrap and starts it), make /var/run/docker.sock usable by this user, then",
    "#  run `npm run test:e2e`. In CI (env CI set) this is a failure, not a skip.",
    "#".repeat(78),
    "",
  ].join("\n");
  console.error(banner);
  return problem;
}

const E2E_BOTTLES = ["e2e", "e2e-two"];

/** A manifest declaring every e2e bottle; `target` gets `vars`, the others neutral values. */
function renderManifest(dir: string, target: string, vars: Record<string, unknown>, neutral: Record<string, unknown>): string {
  const template = fs.readFileSync(path.join(FIXTURES, "bottle.template.yaml"), "utf8");
  const body = (v: Record<string, unknown>) => {
    let text = template;
    for (const [k, x] of Object.entries(v)) text = text.split("${" + k + "}").join(JSON.stringify(x));
    const left = /\$\{[A-Z_]+\}/.exec(text);
    if (left) throw new Error(`unfilled placeholder in manifest: ${left[0]}`);
    return YAML.parse(text);
  };
  const manifest = {
    bottles: Object.fromEntries(E2E_BOTTLES.map((b) => [b, body(b === target ? vars : neutral)])),
    agents: path.join(FIXTURES, "agents"),
  };
  const file = path.join(dir, `${target}.yaml`);
  fs.writeFileSync(file, YAML.stringify(manifest));
  return file;
}

/** Which images run as stand-ins, and why. */
function standInPolicy(images: TestImages, toolsImage: string, standIns: Record<string, string>) {
  const forced = new Set((process.env.CBTEST_E2E_STANDIN ?? "").split(",").map((s) => s.trim()).filter(Boolean));
  return (role: string): Substitute | undefined => {
    let reason: string | undefined;
    if (forced.has(role)) reason = "forced by CBTEST_E2E_STANDIN";
    else if (!fs.existsSync(path.join(SIDECARS_DIR, role, "Dockerfile"))) reason = `sidecars/${role}/Dockerfile does not exist yet`;
    else if (role === "pipelock" && !images.PIPELOCK_IMAGE) reason = `no pipelock binary image (${(images.missing.PIPELOCK_IMAGE ?? "").split(":")[0]}; see test/e2e/images)`;
    if (!reason) return undefined;
    standIns[role] = reason;
    return { image: toolsImage, reason };
  };
}

export async function bringUp(opts: { bottles?: [string, string][] } = {}): Promise<Harness> {
  const timings: Record<string, number> = {};
  const t = async <R>(what: string, fn: () => Promise<R>): Promise<R> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings[what] = (timings[what] ?? 0) + (Date.now() - t0) / 1000;
    }
  };
  const runId = crypto.randomBytes(3).toString("hex");
  const prefix = `cbtest-e2e-${runId}-`;
  log(`run ${runId}: everything is named ${prefix}*`);
  const images = await t("test images", () => ensureTestImages({ log: (s) => log(`images: ${s}`) }));
  const toolsImage = await t("tools image", () => ensureToolsImage(images.BASE_IMAGE, log));
  const standIns: Record<string, string> = {};
  const internet = new FakeInternet(prefix, runId, toolsImage);
  const engine = new EngineDouble({
    runId,
    substitute: standInPolicy(images, toolsImage, standIns),
    onBuildFailure: (role, err) => {
      if (process.env.CBTEST_E2E_NO_STANDIN === "1") return undefined;
      const last = err.message.split("\n").filter(Boolean).slice(-1)[0] ?? "";
      const reason = `docker build of sidecars/${role} failed: ${last.length > 160 ? last.slice(0, 80) + " … " + last.slice(-70) : last}`;
      standIns[role] = reason;
      return { image: toolsImage, reason };
    },
    readOnlyUploads: process.env.CBTEST_E2E_STRICT === "1" ? "fail" : "volume",
    log: (s) => log(`engine: ${s}`),
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}manifest-`));
  const bottles: BottleUnderTest[] = [];
  const stateDirs: string[] = [];
  const teardown = async () => {
    const t0 = Date.now();
    const problems: string[] = [];
    await internet.stop().catch((e) => problems.push(String(e)));
    problems.push(...(await engine.destroy()));
    await sweep(runId, prefix);
    for (const d of [tmp, ...stateDirs]) fs.rmSync(d, { recursive: true, force: true });
    log(`teardown in ${((Date.now() - t0) / 1000).toFixed(1)} s${problems.length ? `; problems:\n${problems.join("\n")}` : ""}`);
    return problems;
  };
  const harness: Harness = { runId, prefix, images, toolsImage, internet, engine, bottles, standIns, timings, teardown };
  try {
    await t("fake internet", () => internet.start());
    const wanted = opts.bottles ?? [["e2e", "alpha"], ["e2e-two", "beta"]];
    for (const [bottle, agent] of wanted) {
      const token = `sk-ant-oat01-E2E-${crypto.randomBytes(12).toString("hex")}`;
      const env = { CLAUDE_CODE_OAUTH_TOKEN: token };
      const base = {
        BASE_IMAGE: images.BASE_IMAGE,
        PIPELOCK_IMAGE: images.PIPELOCK_IMAGE ?? "cbtest/pipelock-bin:missing",
        GITLEAKS_IMAGE: images.GITLEAKS_IMAGE,
        CA_FILE: internet.caFile,
        AGENTS_DIR: path.join(FIXTURES, "agents"),
      };
      // phase 1
      const neutral = { ...base, SSRF_ALLOW: [], EXTRA_HOSTS: {} };
      const m1 = renderManifest(tmp, bottle, neutral, neutral);
      const c1 = await t("capture", () => captureBottle({ manifest: m1, agent, namePrefix: prefix, env }));
      stateDirs.push(c1.stateDir);
      await t("networks", () => engine.applyNetworks(c1.registrations));
      const outside = c1.byType(T.network).find((n) => n.inputs.name.endsWith("-outside"))!.inputs.name as string;
      const ips = await internet.attach(outside);
      // phase 2
      const extraHosts = {
        "api.anthropic.com": ips.web,
        "api.github.com": ips.web,
        "unlisted.example": ips.sink,
        "exfil.example": ips.sink,
        "internal.example": ips.intranet,
        "metadata.example": "169.254.169.254",
      };
      const m2 = renderManifest(tmp, bottle, { ...base, SSRF_ALLOW: [`${ips.web}/32`, `${ips.sink}/32`], EXTRA_HOSTS: extraHosts }, neutral);
      const c2 = await t("capture", () => captureBottle({ manifest: m2, agent, namePrefix: prefix, env }));
      stateDirs.push(c2.stateDir);
      await t(`apply ${bottle}`, () => engine.apply(c2.registrations));
      const identity = String(c2.outputs.identity);
      const containers: Record<string, CreatedContainer> = {};
      for (const c of engine.containers) if (c.identity === identity && c.role) containers[c.role] = c;
      const nets = c2.byType(T.network).map((n) => n.inputs.name as string);
      const net = (suffix: string) => nets.find((n) => n.endsWith(`-${suffix}`))!;
      bottles.push({
        bottle,
        agent,
        identity,
        capture: c2,
        manifestFile: m2,
        containers,
        networks: { internal: net("internal"), link: net("link"), outside: net("outside") },
        ips,
        stateDir: c2.stateDir,
        token,
      });
    }
    for (const [role, why] of Object.entries(standIns)) log(`STAND-IN ${role}: ${why}`);
    return harness;
  } catch (err) {
    log(`bring-up failed: ${(err as Error).message}`);
    await teardown();
    throw err;
  }
}

/** Run a shell command inside a container (the agent's view). */
export async function inContainer(container: string, script: string, timeoutS = 20) {
  const r = await docker(["exec", container, "sh", "-c", script], { timeoutMs: (timeoutS + 10) * 1000 });
  return { code: r.code, out: (r.stdout + r.stderr).trim() };
}
