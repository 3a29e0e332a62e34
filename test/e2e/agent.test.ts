// The agent on a real Docker engine. The agent container is created from the inputs the
// stack program registers (captured under mocks: env, uploads, volumes, hardening), with
// the real image built from sidecars/agent/Dockerfile on a local base; supervise runs the
// real sidecar bundle; a TLS server presents a leaf signed by the bottle's egress CA.
// Everything is named cbtest-agent-<run>-*, and removed at the end (the cached agent
// image stays unless CBTEST_AGENT_CLEAN=1).
import test from "ava";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { captureBottle, TEST_ENV, TYPES, type Registration } from "../unit/helpers/capture.ts";
import { reveal } from "../helpers/pulumi-mocks.ts";
import { docker, dockerOk, engineProblem, sleep } from "./lib/docker.ts";
import { tarFiles } from "./lib/tar.ts";
import { ensureAgentImage, type AgentImage } from "./agent-image.ts";
import { AGENT_CA_FILE } from "../../contracts/agent.ts";
import { SIDECARS_DIR } from "../../components/images.ts";

const RUN = crypto.randomBytes(3).toString("hex");
const P = `cbtest-agent-${RUN}-`;
const log = (s: string) => console.log(`[agent-e2e] ${s}`);
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
const PINNED = /^ARG CLAUDE_CODE_VERSION=(\S+)$/m.exec(fs.readFileSync(path.join(SIDECARS_DIR, "agent", "Dockerfile"), "utf8"))![1]!;

const created = { containers: [] as string[], networks: [] as string[], volumes: [] as string[], images: [] as string[] };

interface Ctx {
  image: AgentImage;
  agentReg: Registration;
  agentName: string;
  net: string;
  caPem: string;
  caKeyPem: string;
  workspace: string;
  stateDir: string;
}
let ctx: Ctx;

async function baseImage(): Promise<string> {
  if (process.env.CBTEST_BASE_IMAGE) return process.env.CBTEST_BASE_IMAGE;
  try {
    const { ensureTestImages } = await import("./images/build.ts");
    return (await ensureTestImages({ log })).BASE_IMAGE;
  } catch (err) {
    log(`ensureTestImages failed (${(err as Error).message.split("\n")[0]}); trying cbtest-agent-base:bookworm`);
    return "cbtest-agent-base:bookworm";
  }
}

/** Agent container inputs this test maps onto `docker create`; anything else fails loudly. */
const MAPPED = new Set(["name", "image", "runtime", "hostname", "networksAdvanced", "envs", "uploads", "volumes", "workingDir", "mustRun", "capabilities", "securityOpts", "privileged", "restart", "labels", "logDriver", "logOpts"]);

/** Create + upload + start the agent as the Container resource would. */
async function createAgent(image: string, reg: Registration, network: string): Promise<void> {
  const i = reg.inputs;
  for (const k of Object.keys(i)) if (!MAPPED.has(k)) throw new Error(`agent e2e: container input ${k} is not mapped onto docker create`);
  const args = ["create", "--name", i.name, "--hostname", i.hostname, "--network", network, "--restart", i.restart, "--log-driver", i.logDriver];
  if (i.runtime) args.push("--runtime", i.runtime);
  if (i.privileged) throw new Error("agent must not be privileged");
  for (const c of i.capabilities?.drops ?? []) args.push("--cap-drop", c);
  for (const c of i.capabilities?.adds ?? []) args.push("--cap-add", c);
  for (const s of i.securityOpts ?? []) args.push("--security-opt", s);
  for (const e of i.envs ?? []) args.push("-e", e);
  for (const v of i.volumes ?? []) args.push("-v", `${v.volumeName}:${v.containerPath}`);
  for (const l of i.labels ?? []) args.push("--label", `${l.label}=${l.value}`);
  for (const [k, v] of Object.entries(i.logOpts ?? {})) args.push("--log-opt", `${k}=${v}`);
  if (i.workingDir) args.push("-w", i.workingDir);
  await dockerOk([...args, image]);
  created.containers.push(i.name);
  const files = (i.uploads as any[]).map((u) => ({
    path: u.file,
    content: u.content !== undefined ? String(u.content) : fs.readFileSync(u.source),
    mode: parseInt(u.permissions ?? "0644", 8),
    uid: 0,
    gid: 0,
  }));
  for (const u of i.uploads as any[]) if (u.source) t_assertHash(u.source, u.sourceHash);
  await dockerOk(["cp", "-", `${i.name}:/`], { input: tarFiles(files) });
  await dockerOk(["start", i.name]);
}

function t_assertHash(file: string, sha: string) {
  const got = crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  if (got !== sha) throw new Error(`upload ${file}: sourceHash ${sha} != ${got}`);
}

async function exec(container: string, script: string, opts: { user?: string; timeoutMs?: number } = {}) {
  const args = ["exec", ...(opts.user ? ["-u", opts.user] : []), container, "bash", "-c", script];
  return docker(args, { timeoutMs: opts.timeoutMs ?? 60_000 });
}

async function waitLog(container: string, needle: RegExp, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  let out = "";
  while (Date.now() < end) {
    const r = await docker(["logs", container]);
    out = r.stdout + r.stderr;
    if (needle.test(out)) return out;
    await sleep(300);
  }
  throw new Error(`timed out waiting for ${needle} in ${container} logs:\n${out}`);
}

test.before(async (t) => {
  t.timeout(25 * 60_000);
  const problem = await engineProblem();
  if (problem) throw new Error(`no Docker engine: ${problem} (run test/e2e/images/ensure-engine.sh)`);
  const base = await baseImage();
  const image = await ensureAgentImage(base, log);
  log(`agent image ${image.image}: ${(image.sizeBytes / 1e6).toFixed(1)} MB${image.seconds ? `, built in ${image.seconds.toFixed(1)} s` : " (cached)"}`);

  // A workspace: a git repo with one commit.
  const workspace = tmp("cbtest-agent-ws-");
  execFileSync("git", ["init", "-q", "-b", "main", workspace]);
  fs.writeFileSync(path.join(workspace, "hello.txt"), "from the host\n");
  execFileSync("git", ["-C", workspace, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A"]);
  execFileSync("git", ["-C", workspace, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "host commit"]);

  const mdir = tmp("cbtest-agent-manifest-");
  fs.mkdirSync(path.join(mdir, "agents"));
  fs.writeFileSync(
    path.join(mdir, "claude-bottle.yaml"),
    `bottles:\n  dev:\n    workspace: ${workspace}\n    egress:\n      routes:\n        - host: api.anthropic.com\n          auth: { scheme: bearer, token_ref: CLAUDE_CODE_OAUTH_TOKEN }\n          role: claude_code_oauth\n`,
  );
  fs.writeFileSync(path.join(mdir, "agents", "coder.md"), "---\nbottle: dev\n---\nYou are the e2e coder. Marker: PROMPT-MARKER-42.\n");
  const stateDir = tmp("cbtest-agent-state-");
  const cap = await captureBottle({ manifest: path.join(mdir, "claude-bottle.yaml"), namePrefix: P, stateDir });
  const agentReg = cap.container("agent");
  const caPem: string = agentReg.inputs.uploads.find((u: any) => u.file === AGENT_CA_FILE).content;
  const caReg = cap.byType(TYPES.selfSignedCert).find((r) => r.outputs.certPem === caPem)!;
  const caKeyPem: string = reveal(caReg.inputs.privateKeyPem);

  // The internal network (no way out), as the bottle makes it.
  const net = `${P}internal`;
  await dockerOk(["network", "create", "--internal", "--label", `dev.claude-bottle.e2e-run=${P}`, net]);
  created.networks.push(net);
  for (const v of agentReg.inputs.volumes) {
    await dockerOk(["volume", "create", "--label", `dev.claude-bottle.e2e-run=${P}`, v.volumeName]);
    created.volumes.push(v.volumeName);
  }
  ctx = { image, agentReg, agentName: agentReg.inputs.name, net, caPem, caKeyPem, workspace, stateDir };
});

test.after.always(async () => {
  for (const c of created.containers) await docker(["rm", "-f", c]);
  for (const n of created.networks) await docker(["network", "rm", n]);
  for (const v of created.volumes) await docker(["volume", "rm", "-f", v]);
  for (const i of created.images) await docker(["rmi", "-f", i]);
  if (process.env.CBTEST_AGENT_CLEAN === "1" && ctx) await docker(["rmi", ctx.image.image]);
});

async function startSupervise(): Promise<string> {
  const name = `${P}supervise`;
  const state = tmp("cbtest-agent-sv-");
  for (const d of ["supervise", "egress", "pipelock", "audit"]) fs.mkdirSync(path.join(state, d));
  await dockerOk([
    "run", "-d", "--name", name, "--network", ctx.net, "--network-alias", "supervise", "--user", "0",
    "--entrypoint", "node",
    "-v", `${path.join(SIDECARS_DIR, "supervise", "dist", "main.mjs")}:/opt/supervise/main.mjs:ro`,
    "-v", `${state}:/state`,
    "-e", "SUPERVISE_LISTEN=0.0.0.0:8080", "-e", "SUPERVISE_BOTTLE=e2e",
    "-e", "SUPERVISE_STATE_DIR=/state/supervise", "-e", "SUPERVISE_EGRESS_CONFIG_DIR=/state/egress",
    "-e", "SUPERVISE_PIPELOCK_CONFIG_DIR=/state/pipelock", "-e", "SUPERVISE_AUDIT_LOG=/state/audit/supervise.jsonl",
    // Debian bookworm's node 18 has no global `crypto`, which the MCP SDK's server uses.
    ctx.image.image, "--experimental-global-webcrypto", "/opt/supervise/main.mjs",
  ]);
  created.containers.push(name);
  await waitLog(name, /listening on/);
  return name;
}

test.serial("image: builds from a local base; `claude --version` is the pinned version; npm and sudo absent", async (t) => {
  t.log(`image ${ctx.image.image}: ${(ctx.image.sizeBytes / 1e6).toFixed(1)} MB${ctx.image.seconds ? `, build ${ctx.image.seconds.toFixed(1)} s` : " (cached)"}`);
  const v = await dockerOk(["run", "--rm", "--entrypoint", "claude", ctx.image.image, "--version"]);
  t.log(v);
  t.true(v.startsWith(PINNED), `${v} vs pinned ${PINNED}`);
  const r = await docker(["run", "--rm", "--entrypoint", "bash", ctx.image.image, "-c", "id -un; id -u; command -v sudo || echo no-sudo; command -v npm || echo no-npm; node --version; git --version; curl --version | head -1"]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  t.deepEqual(lines.slice(0, 4), ["agent", "1000", "no-sudo", "no-npm"]);
  t.log(lines.slice(4).join(" | "));
});

test.serial("start: entrypoint as uid 1000 with no capabilities; prompt, workspace and supervise registration; idles", async (t) => {
  await startSupervise();
  await createAgent(ctx.image.image, ctx.agentReg, ctx.net);
  const logs = await waitLog(ctx.agentName, /ready: attach/);
  t.log(logs);
  t.regex(logs, /trust: .* = distro bundle \+ egress CA/);
  t.regex(logs, /supervise: registered \(http:\/\/supervise:8080\/mcp\)/);
  t.regex(logs, /workspace: copied into \/workspace/);
  const r = await exec(ctx.agentName, "id -u; grep CapEff /proc/1/status; grep NoNewPrivs /proc/1/status; cat ~/.claude/CLAUDE.md; cd /workspace && git log --format=%s && git status --porcelain && cat hello.txt; echo token=$CLAUDE_CODE_OAUTH_TOKEN");
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^1000\n/);
  t.regex(r.stdout, /CapEff:\s+0000000000000000/);
  t.regex(r.stdout, /NoNewPrivs:\s+1/);
  t.regex(r.stdout, /PROMPT-MARKER-42/);
  t.regex(r.stdout, /host commit\nfrom the host\n/);
  t.regex(r.stdout, /token=claude-bottle-placeholder/);
  t.false(r.stdout.includes(TEST_ENV.CLAUDE_CODE_OAUTH_TOKEN));
  t.is(await dockerOk(["inspect", "-f", "{{.State.Running}}", ctx.agentName]), "true");
});

test.serial("trust: curl and node trust a server whose leaf the egress CA signed; without the CA they do not", async (t) => {
  // A leaf for tls.test signed by the bottle's egress CA (the key only the test and egress hold).
  const dir = tmp("cbtest-agent-tls-");
  fs.writeFileSync(path.join(dir, "ca.pem"), ctx.caPem);
  fs.writeFileSync(path.join(dir, "ca.key"), ctx.caKeyPem);
  execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path.join(dir, "leaf.key")]);
  execFileSync("openssl", ["req", "-new", "-key", path.join(dir, "leaf.key"), "-subj", "/CN=tls.test", "-out", path.join(dir, "leaf.csr")]);
  fs.writeFileSync(path.join(dir, "ext.cnf"), "subjectAltName=DNS:tls.test\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n");
  execFileSync("openssl", ["x509", "-req", "-in", path.join(dir, "leaf.csr"), "-CA", path.join(dir, "ca.pem"), "-CAkey", path.join(dir, "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", path.join(dir, "ext.cnf"), "-out", path.join(dir, "leaf.pem")], { stdio: "ignore" });
  fs.writeFileSync(
    path.join(dir, "server.js"),
    `require("https").createServer({ key: require("fs").readFileSync("/tls/leaf.key"), cert: require("fs").readFileSync("/tls/leaf.pem") }, (q, s) => s.end("tls-ok\\n")).listen(8443);`,
  );
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  const name = `${P}tls`;
  await dockerOk(["run", "-d", "--name", name, "--network", ctx.net, "--network-alias", "tls.test", "-v", `${dir}:/tls:ro`, "--entrypoint", "node", ctx.image.image, "/tls/server.js"]);
  created.containers.push(name);
  await sleep(1000);
  // The agent's proxies point at egress (absent here): go direct for this check.
  const curl = await exec(ctx.agentName, "curl -sS --noproxy '*' https://tls.test:8443/");
  t.is(curl.stdout, "tls-ok\n", curl.stderr);
  const node = await exec(ctx.agentName, `node -e 'fetch("https://tls.test:8443/").then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(String(e.cause ?? e)); process.exit(1); })'`);
  t.is(node.stdout, "tls-ok\n", node.stderr);
  const git = await exec(ctx.agentName, "env -u https_proxy -u HTTPS_PROXY GIT_CURL_VERBOSE=1 git ls-remote https://tls.test:8443/x.git 2>&1; true");
  // TLS verified (GIT_SSL_CAINFO) and the HTTP answer read: git fails only because this is no git server.
  t.regex(git.stdout, /<= Recv header: HTTP\/1\.1 200 OK[\s\S]*is this a git repository\?/, git.stdout.slice(-1500));
  t.notRegex(git.stdout, /certificate problem|server certificate verification failed/i);
  // Debian's node reads the system store too; with node's own bundled CAs only,
  // NODE_EXTRA_CA_CERTS alone must carry the trust.
  const fetchJs = `fetch("https://tls.test:8443/").then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(String(e.cause ?? e)); process.exit(3); })`;
  const nodeExtra = await exec(ctx.agentName, `node --use-bundled-ca -e '${fetchJs}'`);
  t.is(nodeExtra.stdout, "tls-ok\n", nodeExtra.stderr);
  // Negative controls: the distro bundle alone; node with neither.
  const curlNo = await exec(ctx.agentName, "curl -sS --noproxy '*' --cacert /usr/local/share/claude-bottle/distro-ca-certificates.crt https://tls.test:8443/");
  t.is(curlNo.code, 60, `curl exit ${curlNo.code}: ${curlNo.stderr}`);
  const nodeNo = await exec(ctx.agentName, `env -u NODE_EXTRA_CA_CERTS node --use-bundled-ca -e '${fetchJs}'`);
  t.is(nodeNo.code, 3, nodeNo.stderr);
  t.regex(nodeNo.stderr, /certificate|issuer/i);
});

test.serial("supervise: `claude mcp list` inside the agent shows it connected (NO_PROXY bypasses egress)", async (t) => {
  const r = await exec(ctx.agentName, "claude mcp list", { timeoutMs: 90_000 });
  t.log(r.stdout.trim());
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /supervise: http:\/\/supervise:8080\/mcp \(HTTP\) - [✓✔] Connected/);
});

test.serial("volumes: home (transcript) and workspace survive container replacement and a destroy of everything else", async (t) => {
  // Something a session would leave: a transcript, and work in the workspace.
  const setup = await exec(ctx.agentName, "mkdir -p ~/.claude/projects/-workspace && echo '{\"type\":\"user\",\"marker\":\"TRANSCRIPT-7\"}' > ~/.claude/projects/-workspace/s1.jsonl && cd /workspace && echo agent-work > hello.txt && git -c user.name=a -c user.email=a@example.invalid commit -qam 'agent commit'");
  t.is(setup.code, 0, setup.stderr);

  // 1. Replacement: the container goes, a new one (same inputs) comes, the volumes stay.
  await dockerOk(["rm", "-f", ctx.agentName]);
  await createAgent(ctx.image.image, ctx.agentReg, ctx.net);
  let logs = await waitLog(ctx.agentName, /ready: attach/);
  t.regex(logs, /supervise: already registered/);
  t.regex(logs, /workspace: already copied at first up/);
  let r = await exec(ctx.agentName, "cat ~/.claude/projects/-workspace/s1.jsonl; cd /workspace && cat hello.txt && git log --format=%s | head -1");
  t.regex(r.stdout, /TRANSCRIPT-7[\s\S]*agent-work\nagent commit/);

  // 2. Destroy: every container and network goes (only retainOnDelete volumes stay), then up again.
  for (const c of created.containers.splice(0)) await dockerOk(["rm", "-f", c]);
  for (const n of created.networks.splice(0)) await dockerOk(["network", "rm", n]);
  for (const v of ctx.agentReg.inputs.volumes) t.is((await docker(["volume", "inspect", v.volumeName])).code, 0, `${v.volumeName} kept`);
  await dockerOk(["network", "create", "--internal", ctx.net]);
  created.networks.push(ctx.net);
  await startSupervise();
  await createAgent(ctx.image.image, ctx.agentReg, ctx.net);
  logs = await waitLog(ctx.agentName, /ready: attach/);
  t.regex(logs, /supervise: already registered/);
  r = await exec(ctx.agentName, "cat ~/.claude/projects/-workspace/s1.jsonl; cd /workspace && cat hello.txt; claude mcp list", { timeoutMs: 90_000 });
  t.regex(r.stdout, /TRANSCRIPT-7[\s\S]*agent-work\n[\s\S]*supervise: .* - [✓✔] Connected/);
});

test.serial("capability: an image built FROM ${AGENT_IMAGE} replaces only the agent; transcript, workspace and registration kept", async (t) => {
  const dir = tmp("cbtest-agent-cap-");
  fs.writeFileSync(path.join(dir, "Dockerfile"), "ARG AGENT_IMAGE\nFROM ${AGENT_IMAGE}\nUSER root\nRUN echo capability-ok > /usr/local/share/cap-marker\nUSER agent\n");
  const capImage = `${P}capability:1`;
  const start = Date.now();
  await dockerOk(["build", "--force-rm", "--build-arg", `AGENT_IMAGE=${ctx.image.image}`, "--build-arg", "AGENT_IMAGE_ID=x", "--build-arg", "BASE_IMAGE=unused", "-t", capImage, dir], { timeoutMs: 300_000 });
  created.images.push(capImage);
  t.log(`capability image built in ${((Date.now() - start) / 1000).toFixed(1)} s`);
  const supervise = `${P}supervise`;
  const superviseId = await dockerOk(["inspect", "-f", "{{.Id}}", supervise]);
  await dockerOk(["rm", "-f", ctx.agentName]);
  created.containers.splice(created.containers.indexOf(ctx.agentName), 1);
  await createAgent(capImage, ctx.agentReg, ctx.net);
  const logs = await waitLog(ctx.agentName, /ready: attach/);
  t.regex(logs, /supervise: already registered/);
  const r = await exec(ctx.agentName, "cat /usr/local/share/cap-marker; id -u; cat ~/.claude/projects/-workspace/s1.jsonl; cat /workspace/hello.txt; claude --version", { timeoutMs: 60_000 });
  t.regex(r.stdout, /^capability-ok\n1000\n.*TRANSCRIPT-7.*\nagent-work\n/s);
  t.true(r.stdout.includes(PINNED));
  t.is(await dockerOk(["inspect", "-f", "{{.Id}}", supervise]), superviseId, "the sidecar was not touched");
});
