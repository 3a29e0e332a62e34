// The agent under Pulumi mocks: env, uploads, volumes (and that they outlive destroy),
// runtime choice, workspace copy, capability rebuild wiring; plus the image's pins.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { captureBottle, TEST_ENV, TYPES, type Capture, type Registration } from "./helpers/capture.ts";
import { agentUploads } from "../../components/agent.ts";
import { DEFAULT_IMAGES, SIDECARS_DIR } from "../../components/images.ts";
import { AGENT_CA_FILE, AGENT_HOME, AGENT_PATHS, AGENT_WORKSPACE, agentEnv } from "../../contracts/agent.ts";
import { SYSTEM_CA_BUNDLE } from "../../contracts/paths.ts";
import { AGENT_PLACEHOLDER_TOKEN } from "../../contracts/routes.ts";

// retainOnDelete is a resource option the mocks never see: record it from the requests.
const retainByName = new Map<string, boolean>();
const monitor = pulumi.runtime.getMonitor() as any;
const register = monitor.registerResource.bind(monitor);
monitor.registerResource = (req: any, cb: any) => {
  retainByName.set(req.getName(), req.getRetainondelete());
  return register(req, cb);
};

const env = (c: Registration): Record<string, string | undefined> => Object.fromEntries((c.inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
const upload = (c: Registration, file: string) => (c.inputs.uploads as any[]).find((u) => u.file === file);
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));

/** A manifest with one bottle and one agent, in a temp dir. */
function manifest(bottleYaml: string, agentFront = "bottle: dev"): string {
  const dir = tmp("cb-agent-manifest-");
  fs.mkdirSync(path.join(dir, "agents"));
  fs.writeFileSync(path.join(dir, "claude-bottle.yaml"), `bottles:\n  dev:\n${bottleYaml.replace(/^/gm, "    ")}\n`);
  fs.writeFileSync(path.join(dir, "agents", "coder.md"), `---\n${agentFront}\n---\nYou are the coder.\n`);
  return path.join(dir, "claude-bottle.yaml");
}

const OAUTH_ROUTE = `egress:
  routes:
    - host: api.anthropic.com
      auth: { scheme: bearer, token_ref: CLAUDE_CODE_OAUTH_TOKEN }
      role: claude_code_oauth`;

// --- env ---------------------------------------------------------------------------------

test("env: proxies in both cases, NO_PROXY holds supervise, the CA trio, HOME", async (t) => {
  const cap = await captureBottle();
  const e = env(cap.container("agent"));
  const proxy = e.HTTPS_PROXY!;
  t.regex(proxy, /^http:\/\/[a-z0-9.-]+:\d+$/);
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) t.is(e[k], proxy, k);
  t.is(e.NO_PROXY, e.no_proxy);
  t.true(e.NO_PROXY!.split(",").includes("supervise"));
  t.true(e.NO_PROXY!.split(",").includes("localhost"));
  t.is(e.NODE_EXTRA_CA_CERTS, AGENT_CA_FILE);
  for (const k of ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"]) t.is(e[k], SYSTEM_CA_BUNDLE, k);
  t.is(e.HOME, AGENT_HOME);
  t.is(e.CLAUDE_BOTTLE_SUPERVISE_URL, JSON.parse(upload(cap.container("agent"), AGENT_PATHS.settings).content).superviseUrl);
});

test("env: role claude_code_oauth → placeholder token and telemetry off; the real token is nowhere in the agent", async (t) => {
  const cap = await captureBottle({ manifest: manifest(OAUTH_ROUTE) });
  const agent = cap.container("agent");
  const e = env(agent);
  t.is(e.CLAUDE_CODE_OAUTH_TOKEN, AGENT_PLACEHOLDER_TOKEN);
  t.is(e.ANTHROPIC_API_KEY, undefined);
  t.is(e.DISABLE_TELEMETRY, "1");
  t.is(e.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, "1");
  // Nothing the agent gets (env, uploads, labels, anything) holds the real token.
  t.false(JSON.stringify(agent.inputs).includes(TEST_ENV.CLAUDE_CODE_OAUTH_TOKEN));
  // ...while egress does hold it (as a secret), so the route works.
  t.true(JSON.stringify(cap.container("egress").inputs).includes(TEST_ENV.CLAUDE_CODE_OAUTH_TOKEN));
});

test("env: no credential-injecting route → no placeholder token (telemetry stays off)", async (t) => {
  const cap = await captureBottle({ manifest: manifest("egress:\n  routes:\n    - host: example.com") });
  const e = env(cap.container("agent"));
  for (const k of ["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY"]) t.is(e[k], undefined, k);
  t.is(e.DISABLE_TELEMETRY, "1");
});

test("agentEnv: role anthropic_api_key → placeholder API key; supervise off → not in NO_PROXY", (t) => {
  const env = agentEnv({
    proxyUrl: "http://egress:3128",
    directHosts: [],
    roles: ["anthropic_api_key"],
  });
  t.true(env.includes(`ANTHROPIC_API_KEY=${AGENT_PLACEHOLDER_TOKEN}`));
  t.false(env.some((e) => e.startsWith("CLAUDE_CODE_OAUTH_TOKEN=")));
  t.true(env.includes("NO_PROXY=localhost,127.0.0.1,::1"));
});

// --- uploads -----------------------------------------------------------------------------

test("uploads: the egress CA certificate (never a key), the prompt, agent.json", async (t) => {
  const cap = await captureBottle();
  const agent = cap.container("agent");
  const ca = upload(agent, AGENT_CA_FILE);
  t.regex(ca.content, /^-----BEGIN CERTIFICATE-----/);
  const egressCaCert = cap.byType(TYPES.selfSignedCert).map((r) => r.outputs.certPem).find((pem) => pem === ca.content);
  t.truthy(egressCaCert, "the uploaded CA is one of the bottle's CA certificates");
  t.false(JSON.stringify(agent.inputs.uploads).includes("PRIVATE KEY"));
  t.regex(upload(agent, AGENT_PATHS.prompt).content, /claude-bottle/);
  // agent.json holds exactly what the entrypoint reads.
  const settings = JSON.parse(upload(agent, AGENT_PATHS.settings).content);
  t.deepEqual(Object.keys(settings).sort(), ["containerName", "superviseUrl"]);
  t.regex(settings.superviseUrl, /^http:\/\/supervise:\d+\/mcp$/);
  t.is(settings.containerName, agent.inputs.name);
  const entrypoint = fs.readFileSync(path.join(SIDECARS_DIR, "agent", "entrypoint.sh"), "utf8");
  for (const key of Object.keys(settings)) t.true(entrypoint.includes(`agent.json" ${key})`), `the entrypoint reads ${key}`);
  t.is(upload(agent, AGENT_PATHS.workspaceTar), undefined, "no workspace in the default bottle");
});

test("uploads: skills land under skills/<name>/SKILL.md", (t) => {
  const base = { egressCaPem: "CA", prompt: "p", containerName: "c" };
  const ups = agentUploads({ ...base, skills: { review: "# review", "b-2": "# b" } });
  t.deepEqual(
    ups.filter((u) => String(u.file).startsWith(AGENT_PATHS.skillsDir)).map((u) => u.file),
    [`${AGENT_PATHS.skillsDir}/b-2/SKILL.md`, `${AGENT_PATHS.skillsDir}/review/SKILL.md`],
  );
});

// --- workspace ---------------------------------------------------------------------------

test("workspace: a snapshot tar uploaded by path + hash, taken once; host changes later do not replace the agent", async (t) => {
  const ws = tmp("cb-agent-ws-");
  fs.writeFileSync(path.join(ws, "README.md"), "hello\n");
  const m = manifest(`workspace: ${ws}\n${OAUTH_ROUTE}`);
  const stateDir = tmp("cb-agent-state-");
  const first = await captureBottle({ manifest: m, stateDir });
  const up = upload(first.container("agent"), AGENT_PATHS.workspaceTar);
  t.truthy(up);
  t.is(up.content, undefined, "not inlined into the Pulumi state");
  t.true(up.source.startsWith(path.join(stateDir, "agent")));
  t.regex(up.sourceHash, /^[0-9a-f]{64}$/);
  t.true(fs.existsSync(up.source));
  fs.writeFileSync(path.join(ws, "README.md"), "changed on the host\n");
  const second = await captureBottle({ manifest: m, stateDir });
  t.deepEqual(upload(second.container("agent"), AGENT_PATHS.workspaceTar), up, "same snapshot: no diff");
});

// --- volumes -----------------------------------------------------------------------------

test("volumes: home (transcript) and workspace are named volumes kept on destroy", async (t) => {
  const cap = await captureBottle();
  const agent = cap.container("agent");
  const vols = cap.byType(TYPES.volume);
  const home = vols.find((v) => v.inputs.name.endsWith("-home"))!;
  const ws = vols.find((v) => v.inputs.name.endsWith("-workspace"))!;
  t.truthy(home);
  t.truthy(ws);
  t.deepEqual(
    agent.inputs.volumes.map((v: any) => [v.volumeName, v.containerPath]).sort(),
    [[home.inputs.name, AGENT_HOME], [ws.inputs.name, AGENT_WORKSPACE]].sort(),
  );
  t.is(retainByName.get(home.name), true);
  t.is(retainByName.get(ws.name), true);
  t.is(retainByName.get(agent.name), false, "the container itself is replaceable");
  t.deepEqual(cap.outputs.agentVolumes, { home: home.inputs.name, workspace: ws.inputs.name });
  t.regex(String(cap.outputs.resume), /^docker exec -it \S+ claude --continue$/);
  // No other container mounts them.
  for (const c of cap.byType(TYPES.container).filter((c) => c !== agent)) {
    t.false(JSON.stringify(c.inputs.volumes ?? []).includes(home.inputs.name));
  }
});

test("volumes: purgeOnDestroy drops the retain flag (the agent's two and the five state volumes)", async (t) => {
  const cap = await captureBottle({ namePrefix: "cbpurge-", program: { purgeOnDestroy: true } });
  const vols = cap.byType(TYPES.volume);
  t.is(vols.length, 7);
  for (const v of vols) t.is(retainByName.get(v.name), false, v.name);
});

// --- runtime -----------------------------------------------------------------------------

test("runtime auto: runsc when the daemon has it, on the agent only, shown in the outputs", async (t) => {
  const withRunsc = await captureBottle({ daemonRuntimes: ["runc", "runsc"] });
  t.is(withRunsc.container("agent").inputs.runtime, "runsc");
  t.is(withRunsc.outputs.runtime, "runsc");
  for (const role of ["egress", "pipelock", "supervise"]) t.not(withRunsc.container(role).inputs.runtime, "runsc", role);
  const without = await captureBottle({ daemonRuntimes: ["runc"] });
  t.is(without.container("agent").inputs.runtime, "runc");
  t.is(without.outputs.runtime, "runc");
});

test("runtime runsc on a daemon without it: a clear error saying how to install", async (t) => {
  const err = await t.throwsAsync(captureBottle({ manifest: manifest("runtime: runsc"), daemonRuntimes: ["runc"] }));
  t.regex(err!.message, /runsc/);
  t.regex(err!.message, /install gVisor/);
});

// --- capability change -------------------------------------------------------------------

const PEM_RE = /-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----\n?/g;
/** Inputs with fresh key material (new each run under the mocks) blanked out. */
function normalised(cap: Capture): Map<string, string> {
  return new Map(cap.registrations.map((r) => [`${r.type}::${r.name}`, JSON.stringify(r.inputs, (_k, v) => (typeof v === "string" ? v.replace(PEM_RE, "<PEM>") : v))]));
}

test("capability: an approved Dockerfile rebuilds only the agent image; only the agent container changes, volumes kept", async (t) => {
  const stateDir = tmp("cb-agent-cap-");
  const dockerfile = path.join(stateDir, "capability", "Dockerfile");
  fs.mkdirSync(path.dirname(dockerfile), { recursive: true });
  fs.writeFileSync(dockerfile, "ARG AGENT_IMAGE\nFROM ${AGENT_IMAGE}\nUSER root\nRUN true\nUSER agent\n");
  const before = await captureBottle({ stateDir, namePrefix: "cbcap-" });
  const after = await captureBottle({ stateDir, namePrefix: "cbcap-", program: { capabilityDockerfile: dockerfile } });

  const b = normalised(before);
  const a = normalised(after);
  const added = [...a.keys()].filter((k) => !b.has(k));
  const removed = [...b.keys()].filter((k) => !a.has(k));
  const changed = [...a.keys()].filter((k) => b.has(k) && a.get(k) !== b.get(k));
  t.deepEqual(removed, []);
  t.deepEqual(added, [`${TYPES.image}::dev-claude-agent-capability-image`].map((k) => k.replace("dev-claude", before.outputs.identity as string)));
  t.deepEqual(changed, [`${TYPES.container}::${before.container("agent").name}`]);

  const capImage = after.byType(TYPES.image).find((i) => i.name.endsWith("-agent-capability-image"))!;
  const standard = after.byType(TYPES.image).find((i) => i.inputs.imageName === `cbcap-agent:${before.outputs.identity}`)!;
  t.is(capImage.inputs.build.context, path.dirname(dockerfile));
  t.is(capImage.inputs.build.dockerfile, dockerfile);
  t.is(capImage.inputs.build.args.AGENT_IMAGE, standard.outputs.imageName);
  t.is(capImage.inputs.build.args.AGENT_IMAGE_ID, standard.outputs.repoDigest);
  t.truthy(capImage.inputs.build.args.BASE_IMAGE);
  t.is(after.container("agent").inputs.image, capImage.outputs.repoDigest);
  t.is(before.container("agent").inputs.image, standard.outputs.repoDigest);
  // The agent's only diff is its image: same volumes, env, uploads.
  const { image: _ai, ...restAfter } = after.container("agent").inputs;
  const { image: _bi, ...restBefore } = before.container("agent").inputs;
  t.is(JSON.stringify(restAfter).replace(PEM_RE, ""), JSON.stringify(restBefore).replace(PEM_RE, ""));
});

test("capability: a missing Dockerfile is a clear error saying how to go back", async (t) => {
  const err = await t.throwsAsync(captureBottle({ program: { capabilityDockerfile: "/nonexistent/capability/Dockerfile" } }));
  t.regex(err!.message, /capabilityDockerfile/);
  t.regex(err!.message, /pulumi config rm claude-bottle:capabilityDockerfile/);
});

// --- the image ---------------------------------------------------------------------------

const DOCKERFILE = fs.readFileSync(new URL("../../sidecars/agent/Dockerfile", import.meta.url), "utf8");

test("image: Claude Code pinned to an exact version; base default in step with components/images.ts", (t) => {
  const version = /^ARG CLAUDE_CODE_VERSION=(\S+)$/m.exec(DOCKERFILE)?.[1];
  t.regex(version ?? "", /^\d+\.\d+\.\d+$/);
  t.regex(DOCKERFILE, /npm install -g [^\n]*"@anthropic-ai\/claude-code@\$\{CLAUDE_CODE_VERSION\}"/);
  t.is(/^ARG BASE_IMAGE=(\S+)$/m.exec(DOCKERFILE)?.[1], DEFAULT_IMAGES.BASE_IMAGE);
  t.regex(DOCKERFILE, /^FROM \$\{BASE_IMAGE\}$/m);
});

test("image: runs as the non-root user agent (uid 1000), no sudo, entrypoint under tini", (t) => {
  t.regex(DOCKERFILE, /useradd --uid 1000 [^\n]* agent/);
  t.regex(DOCKERFILE, /^USER agent$/m);
  t.notRegex(DOCKERFILE, /apt-get install[^\n]*\bsudo\b/);
  t.regex(DOCKERFILE, /! command -v sudo/);
  t.regex(DOCKERFILE, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "\/usr\/local\/bin\/agent-entrypoint"\]$/m);
});
