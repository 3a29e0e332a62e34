// Topology and secrecy invariants of the bottle, checked on what the stack program
// registers under Pulumi mocks. Each invariant is its own test.
import test from "ava";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { captureBottle, TYPES, type Capture } from "./helpers/capture.ts";
import { fixture, FULL_ENV } from "./helpers/fixtures.ts";
import { isSecretValue } from "../helpers/pulumi-mocks.ts";
import { DEFAULT_MAX_BODY_MIB, DEFAULT_MAX_RESPONSE_MIB, MIB, parsePipelockConfig } from "../../contracts/pipelock.ts";
import { parsePolicyYaml } from "../../contracts/policy.ts";
import { parseRoutesYaml } from "../../contracts/routes.ts";

const role = (r: { inputs: any }) => r.inputs.labels?.find((l: any) => l.label === "dev.claude-bottle.role")?.value;
const networksOf = (c: { inputs: any }) => (c.inputs.networksAdvanced ?? []).map((n: any) => n.name as string).sort();
const liveFile = (cap: Capture, kind: string) => {
  const found = cap.byType(TYPES.dynamic).find((r) => r.inputs.kind === kind);
  if (!found) throw new Error(`no ${kind} file`);
  return found;
};

let defaultCap: Promise<Capture>;
let fullCap: Promise<Capture>;
test.before(() => {
  defaultCap = captureBottle();
  fullCap = captureBottle({ manifest: fixture("full"), env: FULL_ENV });
});

test("zero-config program yields a complete bottle", async (t) => {
  const cap = await defaultCap;
  t.deepEqual(cap.byType(TYPES.container).map(role).sort(), ["agent", "egress", "pipelock", "state", "supervise"]);
  t.deepEqual(cap.byType(TYPES.network).map(role).sort(), ["internal", "link", "outside"]);
  t.is(cap.byType(TYPES.selfSignedCert).length, 2);
  t.is(cap.byType(TYPES.image).length, 5);
  t.true(cap.byType(TYPES.volume).some((v) => v.inputs.name === "claude-bottle-default-claude-home"), "the agent's home volume");
  t.deepEqual(cap.byType(TYPES.volume).filter((v) => role(v) === "state").map((v) => v.inputs.name).sort(), ["audit", "egress", "pipelock", "record", "supervise"].map((v) => `claude-bottle-default-claude-state-${v}`));
  t.is(cap.outputs.identity, "default-claude");
  t.is(cap.outputs.attach, "docker exec -it claude-bottle-default-claude-agent claude");
  t.regex(String((cap.outputs.caFingerprints as any).egress), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.not((cap.outputs.caFingerprints as any).egress, (cap.outputs.caFingerprints as any).pipelock);
  for (const key of ["containers", "networks", "stateDir", "stateContainer", "stateVolumes", "runtime"]) t.truthy(cap.outputs[key], key);
  t.is(cap.outputs.stateContainer, "claude-bottle-default-claude-state");
});

test("the agent is attached only to the internal network, which has no way out", async (t) => {
  for (const cap of [await defaultCap, await fullCap]) {
    const internal = cap.byType(TYPES.network).find((n) => role(n) === "internal")!;
    t.deepEqual(networksOf(cap.container("agent")), [internal.inputs.name]);
    t.true(internal.inputs.internal);
    t.is(internal.inputs.options["com.docker.network.bridge.inhibit_ipv4"], "true", "no host address on the bridge");
    t.falsy(internal.inputs.ipv6);
    t.falsy(cap.container("agent").inputs.networkMode);
    t.falsy(cap.container("agent").inputs.ports);
  }
});

test("only the sidecars that must reach outside are on the outside network; pipelock is off the agent's network", async (t) => {
  const cap = await defaultCap;
  const nets = Object.fromEntries(cap.byType(TYPES.network).map((n) => [role(n), n.inputs]));
  t.true(nets.link.internal);
  t.is(nets.link.options["com.docker.network.bridge.inhibit_ipv4"], "true");
  t.false(nets.outside.internal);
  const on = (net: string) => cap.byType(TYPES.container).filter((c) => networksOf(c).includes(net)).map(role).sort();
  t.deepEqual(on(nets.outside.name), ["pipelock"]);
  const full = await fullCap;
  const fullOutside = full.byType(TYPES.network).find((n) => role(n) === "outside")!.inputs.name;
  t.deepEqual(full.byType(TYPES.container).filter((c) => networksOf(c).includes(fullOutside)).map(role).sort(), ["git-gate", "pipelock"]);
  t.deepEqual(on(nets.link.name), ["egress", "pipelock"]);
  t.deepEqual(on(nets.internal.name), ["agent", "egress", "supervise"]);
});

test("no CA private key and no real token appears in any agent input", async (t) => {
  for (const [cap, tokens] of [[await defaultCap, ["sk-ant-oat01-REAL-SECRET-TOKEN-VALUE-0123456789"]], [await fullCap, Object.values(FULL_ENV)]] as const) {
    const agent = JSON.stringify(cap.container("agent").inputs);
    t.notRegex(agent, /PRIVATE KEY/);
    for (const token of tokens) t.false(agent.includes(token), "token leaked into the agent");
    const keys = cap.byType(TYPES.privateKey).map((k) => k.outputs.privateKeyPem?.value ?? k.outputs.privateKeyPem);
    for (const key of keys) t.false(agent.includes(String(key).split("\n")[1]!));
    // The agent's image has no build arg or label carrying them either.
    const agentImage = cap.byType(TYPES.image).find((i) => String(i.inputs.build.context).endsWith("agent"))!;
    t.notRegex(JSON.stringify(agentImage.inputs), /PRIVATE KEY|sk-ant-|ghp_/);
  }
});

test("the agent env has the proxies in both cases, NO_PROXY with supervise, and the CA trio", async (t) => {
  const env = Object.fromEntries((await defaultCap).container("agent").inputs.envs.map((e: string) => e.split(/=(.*)/s).slice(0, 2)));
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) t.is(env[k], "http://egress:3128", k);
  for (const k of ["NO_PROXY", "no_proxy"]) t.true(env[k].split(",").includes("supervise"), k);
  t.truthy(env.NODE_EXTRA_CA_CERTS);
  t.truthy(env.SSL_CERT_FILE);
  t.truthy(env.REQUESTS_CA_BUNDLE);
  t.is(env.CLAUDE_CODE_OAUTH_TOKEN, "claude-bottle-placeholder");
  t.is(env.DISABLE_TELEMETRY, "1");
  const upload = (await defaultCap).container("agent").inputs.uploads.find((u: any) => u.file === env.NODE_EXTRA_CA_CERTS);
  t.regex(upload.content, /BEGIN CERTIFICATE/);
});

test("the pipelock config is strict, forward proxy on, all interfaces, LLM hosts passed through, body scanning block", async (t) => {
  const cap = await fullCap;
  const cfg = parsePipelockConfig(liveFile(cap, "pipelock-config").inputs.content);
  t.is(cfg.mode, "strict");
  t.true(cfg.forward_proxy.enabled);
  t.regex(cfg.fetch_proxy.listen, /^0\.0\.0\.0:/);
  t.true(cfg.tls_interception.passthrough_domains.includes("api.anthropic.com"));
  t.is(cfg.request_body_scanning.action, "block");
  t.deepEqual(cfg.api_allowlist, ["*.docs.example.com", "api.anthropic.com", "api.github.com", "status.example.com"]);
  t.false(cfg.request_body_scanning.sensitive_headers.includes("Authorization"), "egress owns Authorization");
  // pipelock's own 5 MiB caps would block any larger download through an intercepted host
  t.is(cfg.tls_interception.max_response_bytes, DEFAULT_MAX_RESPONSE_MIB * MIB);
  t.is(cfg.request_body_scanning.max_body_bytes, DEFAULT_MAX_BODY_MIB * MIB);
  t.true(cfg.tls_interception.max_response_bytes >= 100 * 1000 * 1000, "a 100 MB download passes by default");
});

test("the live policy document holds only the extras: the manifest's allowlist, not the route hosts", async (t) => {
  const cap = await fullCap;
  const file = liveFile(cap, "live-policy");
  t.is(file.inputs.path, "/etc/claude-bottle/pipelock/policy.yaml", "in the pipelock volume, as the state container mounts it");
  t.is(file.inputs.stateContainer, cap.container("state").inputs.name);
  t.deepEqual(parsePolicyYaml(file.inputs.content), { version: 1, pipelock_allowlist: ["status.example.com"], ssrf_ip_allowlist: [] });
  t.is(file.inputs.reloadContainer, undefined, "pipelock reads pipelock.yaml only");
});

test("egress gets the routes it will load, through the live config directory", async (t) => {
  const cap = await fullCap;
  const file = liveFile(cap, "egress-routes");
  const doc = parseRoutesYaml(file.inputs.content);
  t.deepEqual(doc.routes.map((r) => r.host), ["api.anthropic.com", "api.github.com", "*.docs.example.com"]);
  t.is(file.inputs.path, "/etc/claude-bottle/egress/routes.yaml");
  const egress = cap.container("egress");
  const volume = cap.byType(TYPES.volume).find((v) => v.inputs.name.endsWith("-state-egress"))!.inputs.name;
  t.true(egress.inputs.mounts.some((m: any) => m.type === "volume" && m.source === volume && m.target === "/etc/claude-bottle/egress" && m.readOnly === true));
  t.is(file.inputs.reloadContainer, egress.inputs.name);
});

test("token values and CA keys are Pulumi secrets", async (t) => {
  const cap = await fullCap;
  const egress = cap.container("egress");
  // A secret element makes the engine store the whole list as a secret.
  t.true(isSecretValue(egress.rawInputs.envs), "egress envs (tokens) are secret in state");
  t.deepEqual(egress.inputs.envs.filter((e: string) => /TOKEN=/.test(e)).map((e: string) => e.split("=")[0]), ["CLAUDE_CODE_OAUTH_TOKEN", "GITHUB_TOKEN"]);
  t.true(isSecretValue(egress.rawInputs.uploads), "egress uploads (CA key) are secret in state");
  t.true(isSecretValue(cap.container("pipelock").rawInputs.uploads), "pipelock uploads (CA key) are secret in state");
  t.false(isSecretValue(cap.container("agent").rawInputs.envs), "the agent holds nothing secret");
  const pipelockKey = cap.container("pipelock").inputs.uploads.find((u: any) => String(u.file).endsWith("ca-key.pem"));
  t.is(pipelockKey.permissions, "0600");
  // No token in any resource name, label or the bottle record.
  const visible = JSON.stringify(cap.registrations.map((r) => [r.name, r.inputs.labels, r.inputs.kind === "bottle-record" ? r.inputs.content : ""]));
  for (const token of Object.values(FULL_ENV)) t.false(visible.includes(token));
});

test("the CAs: ECDSA P-256, CA:TRUE with cert signing, subject key id from the public key", async (t) => {
  const cap = await defaultCap;
  for (const key of cap.byType(TYPES.privateKey)) {
    t.is(key.inputs.algorithm, "ECDSA");
    t.is(key.inputs.ecdsaCurve, "P256");
    t.regex(String(key.outputs.privateKeyPem.value ?? key.outputs.privateKeyPem), /BEGIN EC PRIVATE KEY/, "SEC1, as pipelock requires");
  }
  for (const cert of cap.byType(TYPES.selfSignedCert)) {
    t.true(cert.inputs.isCaCertificate);
    t.true(cert.inputs.setSubjectKeyId);
    t.deepEqual(cert.inputs.allowedUses, ["cert_signing", "crl_signing", "digital_signature"]);
    const x = new crypto.X509Certificate(cert.outputs.certPem);
    t.true(x.ca);
    t.true(x.checkPrivateKey(crypto.createPrivateKey(cert.inputs.privateKeyPem)));
  }
});

test("every container drops all capabilities, sets no-new-privileges and is not privileged", async (t) => {
  for (const c of (await fullCap).byType(TYPES.container)) {
    t.deepEqual(c.inputs.capabilities, { drops: ["ALL"] }, role(c));
    t.true(c.inputs.securityOpts.includes("no-new-privileges:true"), role(c));
    t.false(c.inputs.privileged, role(c));
    // the state container runs only `sleep`: nothing to probe (a dead one is an exited container)
    t.truthy(c.inputs.healthcheck || role(c) === "agent" || role(c) === "state", `${role(c)} has a healthcheck`);
  }
});

test("image overrides reach the builds as build args", async (t) => {
  const cap = await fullCap;
  const pipelockImage = cap.byType(TYPES.image).find((i) => String(i.inputs.build.context).endsWith("pipelock"))!;
  t.deepEqual(pipelockImage.inputs.build.args, { BASE_IMAGE: "local/base:test", PIPELOCK_IMAGE: "local/pipelock:test" });
  t.true(pipelockImage.inputs.skipPush);
  const defaultPipelock = (await defaultCap).byType(TYPES.image).find((i) => String(i.inputs.build.context).endsWith("pipelock"))!;
  t.regex(defaultPipelock.inputs.build.args.BASE_IMAGE, /^debian:bookworm-slim/);
});

test("outside-facing sidecars get the manifest's extra hosts", async (t) => {
  t.deepEqual((await fullCap).container("pipelock").inputs.hosts, [{ host: "api.github.com", ip: "10.213.0.10" }]);
});

test("git upstreams bring a git-gate on internal + outside, keys as secrets, and the agent's insteadOf", async (t) => {
  const cap = await fullCap;
  const gate = cap.container("git-gate");
  const nets = Object.fromEntries(cap.byType(TYPES.network).map((n) => [role(n), n.inputs.name]));
  t.deepEqual(networksOf(gate), [nets.internal, nets.outside].sort());
  t.deepEqual(gate.inputs.hosts, [{ host: "github.com", ip: "10.213.0.20" }, { host: "api.github.com", ip: "10.213.0.10" }]);
  const key = gate.inputs.uploads.find((u: any) => u.file === "/etc/claude-bottle/git-gate/keys/app");
  t.regex(key.content, /BEGIN OPENSSH PRIVATE KEY/);
  t.is(key.permissions, "0600");
  t.true(isSecretValue(gate.rawInputs.uploads));
  const config = JSON.parse(gate.inputs.uploads.find((u: any) => u.file.endsWith("upstreams.json")).content);
  t.deepEqual(config.upstreams.map((u: any) => u.url), ["ssh://git@github.com/acme/app.git"]);
  t.like(config.upstreams[0], { protected_refs: ["HEAD", "refs/tags/*"], allow_force_push: false, allow_delete: false }, "the gate's history policy is written out, never implied");
  const agent = cap.container("agent");
  const gitconfig = agent.inputs.uploads.find((u: any) => String(u.file).endsWith("gitconfig")).content;
  t.regex(gitconfig, /\[url "git:\/\/git-gate:9418\/app\.git"\]/);
  t.regex(gitconfig, /insteadOf = "?git@github\.com:acme\/app\.git"?/);
  t.notRegex(JSON.stringify(agent.inputs), /OPENSSH PRIVATE KEY/);
  const env = agent.inputs.envs.find((e: string) => e.startsWith("NO_PROXY="));
  t.true(env.split("=")[1].split(",").includes("git-gate"));
});

test("no git upstreams, no git-gate", async (t) => {
  const cap = await defaultCap;
  t.false(cap.byType(TYPES.container).some((c) => role(c) === "git-gate"));
});

test("no container that receives uploads has a read-only root (docker cannot copy into it)", async (t) => {
  for (const c of (await fullCap).byType(TYPES.container)) {
    if (c.inputs.uploads?.length) t.falsy(c.inputs.readOnly, role(c));
  }
});

// --- the state volumes and the state container (issue 18) ---------------------------------

const volumeOf = (cap: Capture, name: string) => cap.byType(TYPES.volume).find((v) => v.inputs.name === name);
/** role → "<state volume>:<ro|rw>" for each state volume it mounts. */
const stateMounts = (cap: Capture, r: string) =>
  (cap.container(r).inputs.mounts ?? [])
    .map((m: any) => `${String(m.source).replace(/^.*-state-/, "")}:${m.readOnly ? "ro" : "rw"}`)
    .sort();

test("no bind mount anywhere: every container gets state only through named volumes", async (t) => {
  for (const cap of [await defaultCap, await fullCap]) {
    for (const c of cap.byType(TYPES.container)) {
      for (const m of c.inputs.mounts ?? []) {
        t.is(m.type, "volume", `${role(c)} mounts ${m.source}`);
        t.truthy(volumeOf(cap, m.source), `${role(c)}: ${m.source} is a volume of the bottle`);
      }
      t.false((c.inputs.volumes ?? []).some((v: any) => v.hostPath), `${role(c)} has no host path volume`);
    }
  }
});

test("each sidecar mounts only the state volumes it needs, read-only where it does not write: supervise (agent input) can never write routes or pipelock's config", async (t) => {
  const cap = await fullCap;
  t.deepEqual(stateMounts(cap, "egress"), ["audit:rw", "egress:ro"]);
  t.deepEqual(stateMounts(cap, "pipelock"), ["pipelock:ro"]);
  t.deepEqual(stateMounts(cap, "supervise"), ["audit:rw", "egress:ro", "pipelock:ro", "supervise:rw"]);
  t.deepEqual(stateMounts(cap, "git-gate"), []);
  t.deepEqual(stateMounts(cap, "agent"), [], "the agent has its own two volumes only");
  t.deepEqual(cap.container("agent").inputs.volumes.map((v: any) => v.volumeName).sort(), ["claude-bottle-dev-coder-home", "claude-bottle-dev-coder-workspace"].sort());
  for (const r of ["egress", "pipelock", "supervise"]) {
    for (const m of cap.container(r).inputs.mounts) t.deepEqual(m.volumeOptions, { noCopy: true }, `${r} ${m.target}: its image's mount point never re-owns a fresh volume`);
  }
});

test("the state container: every state volume read-write, no network at all, read-only root, no capabilities, no-new-privileges, uid nobody, only sleep", async (t) => {
  const cap = await fullCap;
  const st = cap.container("state");
  t.deepEqual(stateMounts(cap, "state"), ["audit:rw", "egress:rw", "pipelock:rw", "record:rw", "supervise:rw"]);
  t.deepEqual(st.inputs.mounts.map((m: any) => m.target).sort(), ["/etc/claude-bottle/egress", "/etc/claude-bottle/pipelock", "/var/lib/claude-bottle/bottle", "/var/lib/claude-bottle/supervise", "/var/log/claude-bottle"]);
  t.true(st.inputs.mounts.every((m: any) => !m.volumeOptions?.noCopy), "its image's mount points (owned by nobody) are copied into fresh volumes");
  t.is(st.inputs.networkMode, "none");
  t.falsy(st.inputs.networksAdvanced);
  t.true(st.inputs.readOnly);
  t.deepEqual(st.inputs.capabilities, { drops: ["ALL"] });
  t.true(st.inputs.securityOpts.includes("no-new-privileges:true"));
  t.is(st.inputs.user, "65534");
  t.falsy(st.inputs.uploads);
  t.deepEqual(st.inputs.command, ["sleep", "infinity"]);
  const image = cap.byType(TYPES.image).find((i) => String(i.inputs.build.context).endsWith("/state"))!;
  t.is(st.inputs.image, image.outputs.repoDigest);
  t.deepEqual(image.inputs.build.args.STATE_DIRS.split(" ").sort(), st.inputs.mounts.map((m: any) => m.target).sort(), "the image owns exactly the mount points");
  t.is(image.inputs.build.args.STATE_UID, "65534");
});

test("every writer of the state volumes runs as nobody (no operator uid: nothing is bind-mounted from the operator's home)", async (t) => {
  const cap = await fullCap;
  for (const r of ["egress", "supervise", "pipelock", "state"]) t.is(cap.container(r).inputs.user, "65534", r);
  const key = cap.container("egress").inputs.uploads.find((u: any) => String(u.file).endsWith("ca-key.pem"));
  t.like(key, { owner: "65534", group: "65534", permissions: "0600" });
});

test("the live files are written through the state container, on the engine the bottle's provider targets; bottle.json names the state container", async (t) => {
  const cap = await fullCap;
  const files = cap.byType(TYPES.dynamic);
  t.deepEqual(files.map((f) => f.inputs.kind).sort(), ["bottle-record", "egress-routes", "live-policy", "pipelock-config"]);
  for (const f of files) {
    t.is(f.inputs.stateContainer, cap.container("state").inputs.name, f.inputs.kind);
    t.deepEqual(f.inputs.docker, { host: process.env.DOCKER_HOST || "unix:///var/run/docker.sock" }, `${f.inputs.kind}: the default provider's engine`);
    t.false("ensureDirs" in f.inputs, "no host directories to create");
  }
  const record = JSON.parse(files.find((f) => f.inputs.kind === "bottle-record")!.inputs.content);
  t.is(record.version, 2);
  t.is(record.containers.state, cap.container("state").inputs.name);
  t.is(record.hostDir, cap.stateDir);
});

test("upgrading from a host state directory: its old entries are left alone (never read or written) and `pulumi up` says so", async (t) => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-legacy-"));
  fs.mkdirSync(path.join(stateDir, "audit"));
  fs.writeFileSync(path.join(stateDir, "audit", "supervise.jsonl"), "old chain\n");
  fs.writeFileSync(path.join(stateDir, "bottle.json"), "{}\n");
  const warnings: string[] = [];
  const warn = pulumi.log.warn;
  (pulumi.log as { warn: typeof warn }).warn = async (msg: string) => void warnings.push(msg);
  try {
    const cap = await captureBottle({ stateDir, namePrefix: "cblegacy-" });
    t.falsy(cap.byType(TYPES.container).flatMap((c) => c.inputs.mounts ?? []).some((m: any) => String(m.source).startsWith(stateDir)), "nothing of it is mounted");
  } finally {
    (pulumi.log as { warn: typeof warn }).warn = warn;
  }
  const w = warnings.find((m) => m.includes(stateDir));
  t.truthy(w, warnings.join("\n"));
  t.regex(w!, /holds state of a claude-bottle from before the state volumes \(bottle\.json, audit\): it is no longer read or written/);
  t.regex(w!, /bottle audit --file/);
  t.is(fs.readFileSync(path.join(stateDir, "audit", "supervise.jsonl"), "utf8"), "old chain\n", "left as it was");
});
