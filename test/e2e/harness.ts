// Brings bottles up on a real Docker engine through the REAL Pulumi engine: the stack program
// runs as an inline Automation API program (engine/stack.ts), the `docker` and `tls` packages are
// served by our provider plugin doubles (engine/docker.ts, engine/tls.ts), next to the fake
// internet. Used by escape.test.ts (attacks, functional checks, stack lifecycle).
//
// Two `pulumi up`s per bottle: (1) `--target` the three networks (their URNs read from a
// preview), attach the fake internet servers to the bottle's `outside` network and learn their
// addresses there; (2) the final manifest (extra_hosts, ssrf_ip_allowlist, test CA) and a full
// `up`. Network inputs do not depend on the manifest's hosts, so phase 2 leaves them alone.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { execFileSync } from "node:child_process";
import { FakeInternet, GIT_HOST, ensureToolsImage, type ServerName } from "./fake-internet.ts";
import { docker, dockerOk, engineProblem } from "./lib/docker.ts";
import { ensureTestImages, type TestImages } from "./images/build.ts";
import { realStack, type RealStack } from "./engine/stack.ts";
import { sweep, waitHealthy } from "./engine/double.ts";
import { DOCKER_TYPES } from "./engine/docker.ts";
import { bottleProgram } from "../../components/program.ts";
import { buildSidecars } from "../../sidecars/build.ts";
import { dockerBottles, type BottleSource } from "../../store/bottles.ts";
import { dockerIo } from "../../store/docker.ts";
import type { StateIo } from "../../store/io.ts";
import { stateLayout, type StateLayout } from "../../store/layout.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, "fixtures");

export const log = (s: string) => console.log(`[e2e] ${s}`);

export interface BottleUnderTest {
  bottle: string;
  agent: string;
  identity: string;
  /** The bottle's Pulumi stack (real engine, local file backend). */
  stack: RealStack;
  /** The stack outputs of the last `up`. */
  outputs: Record<string, any>;
  /** Re-run the program with another manifest (phase 2, lifecycle tests). */
  setManifest(file: string): void;
  manifestFile: string;
  /** role → container (runtime: the OCI runtime it runs under, from `docker inspect`) */
  containers: Record<string, { name: string; id: string; runtime: string }>;
  networks: { internal: string; link: string; outside: string };
  /** fake internet addresses on this bottle's outside network */
  ips: Record<ServerName, string>;
  /** The bottle's directory on this machine (the workspace snapshot, capability Dockerfiles). */
  stateDir: string;
  /** Its state volumes, through its state container (as `pulumi up` and the operator CLI reach them). */
  state: StateIo;
  layout: StateLayout;
  /** The real token egress holds; the agent must never see it. */
  token: string;
  /** Where the operator CLI finds this run's bottles: the state containers on the engine, named with the run's prefix. */
  bottles: BottleSource;
  /** The manifest's workspace directory (a git repo the agent gets a copy of). */
  workspace: string;
  /** The declared git upstream (only the first bottle has one). */
  gitUpstream?: { name: string; url: string };
  /** Renders this bottle's manifest with other values (lifecycle tests). */
  render(vars: Record<string, unknown>): string;
  vars: Record<string, unknown>;
}

export interface Harness {
  runId: string;
  prefix: string;
  images: TestImages;
  toolsImage: string;
  internet: FakeInternet;
  bottles: BottleUnderTest[];
  /** Why pipelock is the TEST-ONLY stand-in in this run, or undefined for the real one. */
  pipelockStandIn?: string;
  timings: Record<string, number>;
  /** `pulumi destroy` of every bottle still up, then removal of what the harness made. */
  teardown(): Promise<string[]>;
  /** Destroy one bottle's stack now (lifecycle test); returns what `pulumi destroy` left behind. */
  destroyBottle(b: BottleUnderTest): Promise<{ volumes: string[]; images: string[]; containers: string[]; networks: string[] }>;
}

export async function noEngineBanner(): Promise<string | undefined> {
  const problem = await engineProblem();
  if (!problem) return undefined;
  console.error(
    [
      "",
      "#".repeat(78),
      "#  E2E TIER NOT RUN: no Docker engine",
      `#  (${problem})`,
      "#  To fix: start dockerd (test/e2e/images/ensure-engine.sh installs docker.io +",
      "#  mmdebstrap and starts it), make /var/run/docker.sock usable by this user, then",
      "#  run `npm run test:e2e`. In CI (env CI set) this is a failure, not a skip.",
      "#".repeat(78),
      "",
    ].join("\n"),
  );
  return problem;
}

const E2E_BOTTLES = ["e2e", "e2e-two"];
// issue 15: the first (attacked) bottle's agent takes `runtime: auto` — gVisor wherever the
// engine has a runsc that starts containers (functional.ts requires it under CI) — and the
// second stays on runc, so both runtimes run every time.
export const E2E_RUNTIMES: Record<string, "auto" | "runc"> = { e2e: "auto", "e2e-two": "runc" };

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
  const file = path.join(dir, `${target}-${crypto.randomBytes(3).toString("hex")}.yaml`);
  fs.writeFileSync(file, YAML.stringify(manifest));
  return file;
}

let imagesOnce: Promise<TestImages> | undefined;
/** ensureTestImages once per process. */
export function testImages(): Promise<TestImages> {
  imagesOnce ??= ensureTestImages({ log: (s) => log(`images: ${s}`) });
  return imagesOnce;
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

/** Wait until every container of the bottle that has a healthcheck is healthy (`pulumi up` does not wait). */
export async function waitBottleHealthy(containers: Record<string, { name: string }>): Promise<void> {
  await Promise.all(
    Object.values(containers).map(async (c) => {
      const hasHealth = (await docker(["inspect", "-f", "{{if .Config.Healthcheck}}yes{{end}}", c.name])).stdout.trim() === "yes";
      if (hasHealth) await waitHealthy(c.name, { timeoutS: 120 });
    }),
  );
}

async function containerMap(names: Record<string, string>): Promise<Record<string, { name: string; id: string; runtime: string }>> {
  const out: Record<string, { name: string; id: string; runtime: string }> = {};
  for (const [role, name] of Object.entries(names)) {
    const [id = "", runtime = ""] = (await dockerOk(["inspect", "-f", "{{.Id}} {{.HostConfig.Runtime}}", name])).split(" ");
    out[role] = { name, id, runtime };
  }
  return out;
}

const plain = (outputs: Record<string, { value: unknown }>) => Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value])) as Record<string, any>;

export async function bringUp(opts: { bottles?: [string, string][] } = {}): Promise<Harness> {
  const timings: Record<string, number> = {};
  const t = async <R>(what: string, fn: () => Promise<R>): Promise<R> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings[what] = Math.round(((timings[what] ?? 0) + (Date.now() - t0) / 1000) * 10) / 10;
    }
  };
  const runId = crypto.randomBytes(3).toString("hex");
  const prefix = `cbtest-e2e-${runId}-`;
  log(`run ${runId}: everything is named ${prefix}*`);
  // The images copy sidecars/*/dist/main.mjs: bundle the sources under test, not whatever was built last.
  await t("sidecar bundles", () => buildSidecars());
  const images = await t("test images", () => testImages());
  const toolsImage = await t("tools image", () => ensureToolsImage(images.BASE_IMAGE, log));
  if (images.pipelockStandIn) log(`pipelock is the TEST-ONLY stand-in: ${images.pipelockStandIn}`);
  const internet = new FakeInternet(prefix, runId, toolsImage);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}run-`));
  const bottles: BottleUnderTest[] = [];
  /** Stacks not destroyed yet (also a bottle whose bring-up failed half-way). */
  const live = new Set<RealStack>();

  const leftovers = async (b: BottleUnderTest) => {
    const list = async (args: string[]) => (await docker(args)).stdout.split("\n").map((s) => s.trim()).filter((n) => n.startsWith(`${prefix}`) && n.includes(b.identity));
    return {
      containers: await list(["ps", "-a", "--format", "{{.Names}}"]),
      networks: await list(["network", "ls", "--format", "{{.Name}}"]),
      volumes: await list(["volume", "ls", "--format", "{{.Name}}"]),
      images: (await docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter((n) => n.startsWith(prefix) && n.endsWith(`:${b.identity}`)),
    };
  };
  const destroyBottle = async (b: BottleUnderTest) => {
    // The fake internet's servers sit on `outside`; they are not the bottle's, detach them first.
    for (const name of Object.values(internet.names)) await docker(["network", "disconnect", "-f", b.networks.outside, name]);
    await b.stack.stack.destroy({ onOutput: () => undefined });
    live.delete(b.stack);
    const left = await leftovers(b);
    return left;
  };
  const teardown = async () => {
    const t0 = Date.now();
    const problems: string[] = [];
    await internet.stop().catch((e) => problems.push(String(e)));
    for (const s of [...live]) {
      await s.stack.destroy({ onOutput: () => undefined }).catch((e) => problems.push(`pulumi destroy: ${(e as Error).message.split("\n").slice(-3).join(" ")}`));
      live.delete(s);
    }
    // `pulumi destroy` keeps the agent's volumes (retainOnDelete) and the built images: the sweep
    // removes them (the images' layers stay under a cache tag).
    await sweep(prefix);
    for (const dir of fs.readdirSync(tmp).filter((d) => d.startsWith("stack-"))) fs.rmSync(path.join(tmp, dir), { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
    log(`teardown in ${((Date.now() - t0) / 1000).toFixed(1)} s${problems.length ? `; problems:\n${problems.join("\n")}` : ""}`);
    return problems;
  };
  const harness: Harness = { runId, prefix, images, toolsImage, internet, bottles, pipelockStandIn: images.pipelockStandIn, timings, teardown, destroyBottle };
  const home = path.join(tmp, "home");
  const workspace = makeWorkspace(tmp);
  const bottleSource = dockerBottles({ namePrefix: prefix });
  try {
    await t("fake internet", () => internet.start());
    const wanted = opts.bottles ?? [["e2e", "alpha"], ["e2e-two", "beta"]];
    for (const [bottle, agent] of wanted) {
      const token = `sk-ant-oat01-E2E-${crypto.randomBytes(12).toString("hex")}`;
      const env = { CLAUDE_CODE_OAUTH_TOKEN: token };
      const base = {
        BASE_IMAGE: images.BASE_IMAGE,
        PIPELOCK_IMAGE: images.PIPELOCK_IMAGE,
        GITLEAKS_IMAGE: images.GITLEAKS_IMAGE,
        // the fake internet's CA + the host's (the agent image's npm install goes through a TLS-inspecting proxy here)
        CA_FILES: [internet.caFile, ...hostExtraCaFiles()],
        WORKSPACE: workspace,
        AGENTS_DIR: path.join(FIXTURES, "agents"),
      };
      const stateDir = path.join(home, bottle);
      const neutral = { ...base, RUNTIME: "runc", SSRF_ALLOW: [], EXTRA_HOSTS: {}, GIT: { upstreams: [] } };
      let manifest = renderManifest(tmp, bottle, neutral, neutral);
      const workDir = path.join(tmp, `stack-${bottle}`);
      const stack = await t("stack init", () =>
        realStack({
          runId,
          stackName: bottle,
          workDir,
          // projectDir: where `bottle approve` persists approvals (the stack's own workspace)
          program: () => bottleProgram({ manifest, agent, env, stateDir, namePrefix: prefix, projectDir: workDir }),
          log,
        }),
      );
      live.add(stack);
      // phase 1: the networks only (`pulumi up --target`)
      const networks: { urn: string; name: string }[] = [];
      const parentOf = new Map<string, string>();
      await t("pulumi preview", () =>
        stack.stack.preview({
          onEvent: (e) => {
            const m = e.resourcePreEvent?.metadata;
            if (!m) return;
            if (m.new?.parent) parentOf.set(m.urn, m.new.parent);
            if (m.type === DOCKER_TYPES.network) networks.push({ urn: m.urn, name: String(m.new?.inputs?.name) });
          },
        }),
      );
      if (networks.length !== 3) throw new Error(`preview: expected 3 networks, saw ${networks.map((n) => n.name).join(", ")}`);
      // --target needs each target's component parents too (the stack itself is always there)
      const targets = new Set<string>();
      for (const n of networks) {
        for (let urn: string | undefined = n.urn; urn && !urn.includes("::pulumi:pulumi:Stack::"); urn = parentOf.get(urn)) targets.add(urn);
      }
      await t("pulumi up --target networks", () => stack.stack.up({ target: [...targets], onOutput: () => undefined }));
      const net = (suffix: string) => networks.find((n) => n.name.endsWith(`-${suffix}`))!.name;
      const ips = await internet.attach(net("outside"));
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
      const vars = { ...base, RUNTIME: E2E_RUNTIMES[bottle] ?? "runc", SSRF_ALLOW: [`${ips.web}/32`, `${ips.sink}/32`], EXTRA_HOSTS: extraHosts, GIT };
      manifest = renderManifest(tmp, bottle, vars, neutral);
      const result = await t(`pulumi up ${bottle}`, () => stack.stack.up({ onOutput: () => undefined }));
      const outputs = plain(result.outputs as any);
      const containers = await containerMap(outputs.containers);
      await t(`healthy ${bottle}`, () => waitBottleHealthy(containers));
      const b: BottleUnderTest = {
        bottle,
        agent,
        identity: String(outputs.identity),
        stack,
        outputs,
        setManifest: (file) => void (manifest = file),
        manifestFile: manifest,
        containers,
        networks: { internal: net("internal"), link: net("link"), outside: net("outside") },
        ips,
        stateDir: String(outputs.stateDir),
        state: dockerIo(String(outputs.stateContainer)),
        layout: stateLayout(),
        token,
        bottles: bottleSource,
        workspace,
        gitUpstream,
        vars,
        render: (v) => renderManifest(tmp, bottle, v, neutral),
      };
      bottles.push(b);
    }
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
