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
import { FakeInternet, GIT_HOST, ensurePipelockStandIn, ensureToolsImage, type ServerName } from "./fake-internet.ts";
import { execFileSync } from "node:child_process";
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
  /** CLAUDE_BOTTLE_HOME for the operator CLI: stateDir is `<home>/<bottle>`. */
  home: string;
  /** The manifest's workspace directory (a git repo the agent gets a copy of). */
  workspace: string;
  /** The declared git upstream (only the first bottle has one). */
  gitUpstream?: { name: string; url: string };
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
  /** Why the real pipelock is not in this run (its forwarding stand-in is), or undefined. */
  pipelockUnavailable?: string;
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

let imagesOnce: Promise<TestImages> | undefined;
/** ensureTestImages once per process (bringUp and pipelockStatus share it). */
export function testImages(): Promise<TestImages> {
  imagesOnce ??= ensureTestImages({ log: (s) => log(`images: ${s}`) });
  return imagesOnce;
}

/**
 * Whether the real pipelock can run here. When not, the bottle's pipelock container runs the
 * TEST-ONLY forwarding stand-in (test/e2e/pipelock-standin/), and the attacks that test
 * pipelock's own checks (SSRF, DLP, strict allowlist) are reported "not run (pipelock unavailable)".
 */
export async function pipelockStatus(): Promise<{ available: boolean; reason?: string }> {
  const images = await testImages();
  if (images.PIPELOCK_IMAGE && !(process.env.CBTEST_E2E_STANDIN ?? "").split(",").includes("pipelock")) return { available: true };
  const why = images.PIPELOCK_IMAGE ? "forced by CBTEST_E2E_STANDIN" : (images.missing.PIPELOCK_IMAGE ?? "no pipelock binary image").split("\n")[0]!;
  return { available: false, reason: `pipelock unavailable: ${why.length > 200 ? why.slice(0, 200) + "…" : why}` };
}

/** Which images run as stand-ins, and why. Only pipelock may (its forwarding stand-in); under CI nothing else. */
function standInPolicy(images: TestImages, toolsImage: string, pipelockStandIn: string | undefined, standIns: Record<string, string>) {
  const forced = new Set((process.env.CBTEST_E2E_STANDIN ?? "").split(",").map((s) => s.trim()).filter(Boolean));
  return (role: string): Substitute | undefined => {
    if (role === "pipelock" && pipelockStandIn) {
      const reason = `TEST-ONLY forwarding stand-in (forwards everything, enforces nothing): ${images.PIPELOCK_IMAGE ? "forced by CBTEST_E2E_STANDIN" : `no pipelock binary image (${(images.missing.PIPELOCK_IMAGE ?? "").split(":")[0]}; see test/e2e/images)`}`;
      standIns[role] = reason;
      return { image: pipelockStandIn, reason, awaitHealth: true };
    }
    let reason: string | undefined;
    if (forced.has(role)) reason = "forced by CBTEST_E2E_STANDIN";
    else if (!fs.existsSync(path.join(SIDECARS_DIR, role, "Dockerfile"))) reason = `sidecars/${role}/Dockerfile does not exist yet`;
    if (!reason) return undefined;
    if (process.env.CI) throw new Error(`e2e under CI: ${role} would run a stand-in image (${reason}); only pipelock may`);
    standIns[role] = reason;
    return { image: toolsImage, reason };
  };
}

/** The host's locally added CAs (a TLS-inspecting proxy between the builds and the registries). */
export function hostExtraCaFiles(): string[] {
  if (process.env.CBTEST_BUILD_CA_FILE) return [process.env.CBTEST_BUILD_CA_FILE];
  const dir = "/usr/local/share/ca-certificates";
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith(".crt")).sort().map((f) => path.join(dir, f));
}

function makeWorkspace(dir: string): string {
  const ws = path.join(dir, "workspace");
  fs.mkdirSync(ws, { recursive: true });
  fs.writeFileSync(path.join(ws, "hello.txt"), "from the host workspace\n");
  const g = (...a: string[]) => execFileSync("git", ["-C", ws, "-c", "user.name=t", "-c", "user.email=t@example.invalid", ...a], { stdio: "pipe" });
  g("init", "-q", "-b", "main");
  g("add", "-A");
  g("commit", "-q", "-m", "host commit");
  return ws;
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
  const images = await t("test images", () => testImages());
  const toolsImage = await t("tools image", () => ensureToolsImage(images.BASE_IMAGE, log));
  const pl = await pipelockStatus();
  const pipelockStandIn = pl.available ? undefined : await t("pipelock stand-in image", () => ensurePipelockStandIn(toolsImage, log));
  const standIns: Record<string, string> = {};
  const internet = new FakeInternet(prefix, runId, toolsImage);
  const engine = new EngineDouble({
    runId,
    substitute: standInPolicy(images, toolsImage, pipelockStandIn, standIns),
    onBuildFailure: (role, err) => {
      if (process.env.CBTEST_E2E_NO_STANDIN === "1" || process.env.CI) return undefined;
      const last = err.message.split("\n").filter(Boolean).slice(-1)[0] ?? "";
      const reason = `docker build of sidecars/${role} failed: ${last.length > 160 ? last.slice(0, 80) + " … " + last.slice(-70) : last}`;
      standIns[role] = reason;
      return { image: toolsImage, reason };
    },
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
  const harness: Harness = { runId, prefix, images, toolsImage, internet, engine, bottles, standIns, pipelockUnavailable: pl.reason, timings, teardown };
  const home = path.join(tmp, "home");
  const workspace = makeWorkspace(tmp);
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
        // the fake internet's CA + the host's (the agent image's npm install goes through a TLS-inspecting proxy here)
        CA_FILES: [internet.caFile, ...hostExtraCaFiles()],
        WORKSPACE: workspace,
        AGENTS_DIR: path.join(FIXTURES, "agents"),
      };
      const stateDir = path.join(home, bottle);
      // phase 1
      const neutral = { ...base, SSRF_ALLOW: [], EXTRA_HOSTS: {}, GIT: { upstreams: [] } };
      const m1 = renderManifest(tmp, bottle, neutral, neutral);
      const c1 = await t("capture", () => captureBottle({ manifest: m1, agent, namePrefix: prefix, env, stateDir }));
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
        // Never the real 169.254.169.254: a forwarding stand-in would reach this machine's own metadata service.
        "metadata.example": ips.intranet,
        "approved.example": ips.web,
        [GIT_HOST]: ips.git,
      };
      // git: only the first bottle declares an upstream (the sshd on the fake internet)
      const gitUpstream = bottles.length === 0 ? { name: "upstream", url: internet.git.url } : undefined;
      const GIT = gitUpstream ? { upstreams: [{ ...gitUpstream, identity_file: internet.git.identityFile, known_host_key: internet.git.hostKey }] } : { upstreams: [] };
      const m2 = renderManifest(tmp, bottle, { ...base, SSRF_ALLOW: [`${ips.web}/32`, `${ips.sink}/32`], EXTRA_HOSTS: extraHosts, GIT }, neutral);
      const c2 = await t("capture", () => captureBottle({ manifest: m2, agent, namePrefix: prefix, env, stateDir }));
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
        home,
        workspace,
        gitUpstream,
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
