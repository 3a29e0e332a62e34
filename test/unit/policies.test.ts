// Each policy of the pack, called directly (validateResource / validateStack through runPolicies with
// a one-policy list): at least one passing and two failing cases per policy, plus preview-unknowns.
import test from "ava";
import { seal, withoutSeal } from "../../contracts/seal.ts";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import type { Policies } from "@pulumi/policy";
import { runPolicies, describe, type CapturedResource } from "./helpers/run-pack.ts";
import * as agent from "../../policies/agent-container.ts";
import { agentNoCredentials, agentNoPrivateKeys } from "../../policies/credentials.ts";
import { agentNetworksInternal, bottleNetworkIsolated } from "../../policies/networks.ts";
import { egressRoutesTlsOnly, pipelockConfigStrict } from "../../policies/live-config.ts";
import { isPinnedImage, sidecarImagesPinned } from "../../policies/images.ts";
import { ALL_POLICIES } from "../../policies/all.ts";
import { sidecarsHardened } from "../../policies/sidecar-container.ts";
import { CREDENTIAL_PATTERNS, findCredentials } from "../../policies/credential-patterns.ts";
import { LABEL_BOTTLE, LABEL_ROLE } from "../../contracts/labels.ts";
import { pipelockConfigToYaml, renderPipelockConfig } from "../../contracts/pipelock.ts";
import { AGENT_PLACEHOLDER_TOKEN } from "../../contracts/routes.ts";

const UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the engine's unknown-string sentinel
const ID = "dev-claude";
const NET = { internal: `cb-${ID}-internal`, link: `cb-${ID}-link`, outside: `cb-${ID}-outside` };
const labels = (role: string, identity = ID) => [
  { label: LABEL_BOTTLE, value: identity },
  { label: LABEL_ROLE, value: role },
];
const CERT = "-----BEGIN CERTIFICATE-----\nMIIB0zCCAXigAwIBAgIJANTpb8VhLpuj\n-----END CERTIFICATE-----\n";
const EC_KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEILd44lvGnb+DhYraN8kl+ZHw\n-----END EC PRIVATE KEY-----\n";

type Props = Record<string, any>;
const goodAgent = (): Props => ({
  image: "sha256:" + "b".repeat(64),
  name: `cb-${ID}-agent`,
  labels: labels("agent"),
  capabilities: { drops: ["ALL"] },
  securityOpts: ["no-new-privileges:true"],
  privileged: false,
  runtime: "runc",
  networksAdvanced: [{ name: NET.internal }],
  envs: ["HTTPS_PROXY=http://egress:3128", "NO_PROXY=localhost,supervise", `CLAUDE_CODE_OAUTH_TOKEN=${AGENT_PLACEHOLDER_TOKEN}`, "DISABLE_TELEMETRY=1"],
  volumes: [{ containerPath: "/home/agent", volumeName: `cb-${ID}-home` }],
  mounts: [{ type: "bind", source: path.join(os.homedir(), ".claude-bottle", ID, "workspace"), target: "/workspace" }],
  uploads: [
    { file: "/etc/claude-bottle/ca/egress-ca.pem", content: CERT, permissions: "0644" },
    { file: "/etc/claude-bottle/agent/prompt.md", content: "You are working inside a claude-bottle." },
  ],
});
const sidecar = (role: string, nets: string[], extra: Props = {}): Props => ({
  image: "sha256:" + "c".repeat(64),
  name: `cb-${ID}-${role}`,
  labels: labels(role),
  capabilities: { drops: ["ALL"] },
  securityOpts: ["no-new-privileges:true"],
  networksAdvanced: nets.map((name) => ({ name })),
  ...extra,
});
const network = (role: "internal" | "link" | "outside", extra: Props = {}): Props => ({
  name: NET[role],
  driver: "bridge",
  internal: role !== "outside",
  ipv6: false,
  labels: labels(role),
  ...(role !== "outside" ? { options: { "com.docker.network.bridge.inhibit_ipv4": "true" } } : {}),
  ...extra,
});
const C = "docker:index/container:Container";
const N = "docker:index/network:Network";
const DYN = "pulumi-nodejs:dynamic/claude-bottle:Resource";

const run = (policy: Policies[number], type: string, props: Props, opts: { preview?: boolean; config?: Props } = {}) =>
  runPolicies([{ type, name: "r", inputs: props }], { policies: [policy], preview: opts.preview, config: opts.config ? { [policy.name]: opts.config } : undefined });
const passes = (t: any, vs: ReturnType<typeof run>) => t.deepEqual(vs, [], describe(vs));
const fails = (t: any, vs: ReturnType<typeof run>, re: RegExp) => {
  t.true(vs.length > 0, "expected a violation");
  t.true(vs.some((v) => re.test(v.message)), describe(vs));
};

// ---------------------------------------------------------------- the pack as a whole
test("policy names are unique and valid, and each has a description and enforcement level", (t) => {
  const names = ALL_POLICIES.map((p) => p.name);
  t.is(new Set(names).size, names.length);
  for (const p of ALL_POLICIES) {
    t.regex(p.name, /^[A-Za-z0-9-_.]{1,100}$/);
    t.true(p.description.length > 20, p.name);
    t.true(["mandatory", "advisory"].includes(p.enforcementLevel ?? ""), p.name);
  }
  t.is(ALL_POLICIES.find((p) => p.name === "sidecar-images-pinned")?.enforcementLevel, "advisory");
});

// ---------------------------------------------------------------- agent-not-privileged
test("agent-not-privileged: the shipped agent shape passes; sidecars are not its business", (t) => {
  passes(t, run(agent.agentNotPrivileged, C, goodAgent()));
  passes(t, run(agent.agentNotPrivileged, C, sidecar("egress", [NET.internal], { privileged: true })));
  passes(t, run(agent.agentNotPrivileged, C, { ...goodAgent(), runtime: "runsc" }));
});
test("agent-not-privileged: privileged fails", (t) => fails(t, run(agent.agentNotPrivileged, C, { ...goodAgent(), privileged: true }), /must not be privileged/));
test("agent-not-privileged: host devices fail", (t) => fails(t, run(agent.agentNotPrivileged, C, { ...goodAgent(), devices: [{ hostPath: "/dev/kvm" }] }), /host devices/));
test("agent-not-privileged: a GPU runtime fails", (t) => fails(t, run(agent.agentNotPrivileged, C, { ...goodAgent(), runtime: "nvidia" }), /confining OCI runtime/));
test("agent-not-privileged: joining the docker group fails", (t) => fails(t, run(agent.agentNotPrivileged, C, { ...goodAgent(), groupAdds: ["docker"] }), /docker or root group/));

// ---------------------------------------------------------------- agent-no-host-namespaces
test("agent-no-host-namespaces: passes with private namespaces", (t) => passes(t, run(agent.agentNoHostNamespaces, C, { ...goodAgent(), ipcMode: "private" })));
test("agent-no-host-namespaces: host network fails", (t) => fails(t, run(agent.agentNoHostNamespaces, C, { ...goodAgent(), networkMode: "host" }), /network namespace/));
test("agent-no-host-namespaces: host PID fails", (t) => fails(t, run(agent.agentNoHostNamespaces, C, { ...goodAgent(), pidMode: "host" }), /PID namespace/));
test("agent-no-host-namespaces: another container's IPC fails", (t) => fails(t, run(agent.agentNoHostNamespaces, C, { ...goodAgent(), ipcMode: "container:egress" }), /IPC namespace/));
test("agent-no-host-namespaces: host user namespace fails", (t) => fails(t, run(agent.agentNoHostNamespaces, C, { ...goodAgent(), usernsMode: "host" }), /user namespace/));

// ---------------------------------------------------------------- agent-internal-networks-only
test("agent-internal-networks-only: passes on networksAdvanced alone", (t) => passes(t, run(agent.agentInternalNetworksOnly, C, goodAgent())));
test("agent-internal-networks-only: preview with an unknown network name still runs (names are checked by the stack policy)", (t) => {
  const props = { ...goodAgent(), networksAdvanced: [{ name: UNKNOWN_STRING }] };
  passes(t, run(agent.agentInternalNetworksOnly, C, props, { preview: true }));
});
test("agent-internal-networks-only: no networksAdvanced (default bridge) fails", (t) => {
  const { networksAdvanced: _, ...props } = goodAgent();
  fails(t, run(agent.agentInternalNetworksOnly, C, props), /internal network through networksAdvanced/);
  fails(t, run(agent.agentInternalNetworksOnly, C, { ...props, networksAdvanced: [] }), /internal network through networksAdvanced/);
});
test("agent-internal-networks-only: networkMode naming another network fails", (t) => fails(t, run(agent.agentInternalNetworksOnly, C, { ...goodAgent(), networkMode: NET.outside }), /must not set networkMode/));
test("agent-internal-networks-only: published ports fail", (t) => fails(t, run(agent.agentInternalNetworksOnly, C, { ...goodAgent(), ports: [{ internal: 22, external: 2222 }] }), /publish ports/));
test("agent-internal-networks-only: host-gateway host entry fails", (t) => fails(t, run(agent.agentInternalNetworksOnly, C, { ...goodAgent(), hosts: [{ host: "host.docker.internal", ip: "host-gateway" }] }), /Docker host/));

// ---------------------------------------------------------------- agent-no-host-mounts
test("agent-no-host-mounts: named volumes and a workspace under the state dir pass", (t) => passes(t, run(agent.agentNoHostMounts, C, goodAgent())));
test("agent-no-host-mounts: the docker socket fails (volume or bind mount)", (t) => {
  fails(t, run(agent.agentNoHostMounts, C, { ...goodAgent(), volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }] }), /socket/);
  fails(t, run(agent.agentNoHostMounts, C, { ...goodAgent(), mounts: [{ type: "bind", source: "/home/u/.docker/run/docker.sock", target: "/tmp/d.sock" }] }), /socket/);
});
test("agent-no-host-mounts: the host root fails", (t) => fails(t, run(agent.agentNoHostMounts, C, { ...goodAgent(), mounts: [{ type: "bind", source: "/", target: "/host" }] }), /host root/));
test("agent-no-host-mounts: the operator's ~/.ssh and ~/.claude fail", (t) => {
  fails(t, run(agent.agentNoHostMounts, C, { ...goodAgent(), volumes: [{ hostPath: path.join(os.homedir(), ".ssh"), containerPath: "/home/agent/.ssh" }] }), /credentials/);
  fails(t, run(agent.agentNoHostMounts, C, { ...goodAgent(), volumes: [{ hostPath: path.join(os.homedir(), ".claude"), containerPath: "/home/agent/.claude" }] }), /credentials/);
});
test("agent-no-host-mounts: volumes from another container fail", (t) => fails(t, run(agent.agentNoHostMounts, C, { ...goodAgent(), volumes: [{ fromContainer: "cb-egress" }] }), /another container/));
test("forbiddenHostPath: segment-wise, so ~/.claude-bottle is fine but ~/.claude is not", (t) => {
  t.is(agent.forbiddenHostPath("/home/u/.claude-bottle/x/transcript", "/home/u"), undefined);
  t.truthy(agent.forbiddenHostPath("/home/u/.claude/", "/home/u"));
  t.truthy(agent.forbiddenHostPath("/home/u", "/home/u"));
  t.truthy(agent.forbiddenHostPath("/etc/../etc/shadow", "/home/u"));
  t.is(agent.forbiddenHostPath("/srv/projects/app", "/home/u"), undefined);
  t.is(agent.forbiddenHostPath("/root/.claude-bottle/x", "/root"), undefined);
  t.truthy(agent.forbiddenHostPath("/root/.ssh", "/root"));
  t.truthy(agent.forbiddenHostPath("/root/.ssh", "/home/u"));
});

// ---------------------------------------------------------------- agent-capabilities-dropped
test("agent-capabilities-dropped: drop ALL passes, with an allow-listed add too", (t) => {
  passes(t, run(agent.agentCapabilitiesDropped, C, goodAgent()));
  passes(t, run(agent.agentCapabilitiesDropped, C, { ...goodAgent(), capabilities: { drops: ["all"], adds: ["CAP_CHOWN"] } }));
});
test("agent-capabilities-dropped: not dropping ALL fails", (t) => fails(t, run(agent.agentCapabilitiesDropped, C, { ...goodAgent(), capabilities: { drops: ["NET_RAW"] } }), /drop ALL/));
test("agent-capabilities-dropped: adding NET_RAW or SYS_ADMIN fails even when configured as allowed", (t) => {
  fails(t, run(agent.agentCapabilitiesDropped, C, { ...goodAgent(), capabilities: { drops: ["ALL"], adds: ["NET_RAW"] } }), /NET_RAW/);
  fails(t, run(agent.agentCapabilitiesDropped, C, { ...goodAgent(), capabilities: { drops: ["ALL"], adds: ["SYS_ADMIN"] } }, { config: { allowedCapabilities: ["SYS_ADMIN"] } }), /SYS_ADMIN/);
});
test("agent-capabilities-dropped: config narrows the allow list", (t) =>
  fails(t, run(agent.agentCapabilitiesDropped, C, { ...goodAgent(), capabilities: { drops: ["ALL"], adds: ["CHOWN"] } }, { config: { allowedCapabilities: [] } }), /CHOWN/));

// ---------------------------------------------------------------- agent-no-new-privileges
test("agent-no-new-privileges: passes with no-new-privileges:true (and the bare form)", (t) => {
  passes(t, run(agent.agentNoNewPrivileges, C, goodAgent()));
  passes(t, run(agent.agentNoNewPrivileges, C, { ...goodAgent(), securityOpts: ["no-new-privileges"] }));
});
test("agent-no-new-privileges: missing fails", (t) => fails(t, run(agent.agentNoNewPrivileges, C, { ...goodAgent(), securityOpts: [] }), /no-new-privileges/));
test("agent-no-new-privileges: seccomp or apparmor unconfined fails", (t) => {
  fails(t, run(agent.agentNoNewPrivileges, C, { ...goodAgent(), securityOpts: ["no-new-privileges:true", "seccomp=unconfined"] }), /seccomp/);
  fails(t, run(agent.agentNoNewPrivileges, C, { ...goodAgent(), securityOpts: ["no-new-privileges:true", "apparmor:unconfined"] }), /apparmor/);
});

// ---------------------------------------------------------------- agent-no-credentials
test("agent-no-credentials: proxies, placeholder and a CA certificate pass", (t) => {
  passes(t, run(agentNoCredentials, C, goodAgent()));
  passes(t, run(agentNoCredentials, C, { ...goodAgent(), envs: [`ANTHROPIC_API_KEY=sk-ant-${AGENT_PLACEHOLDER_TOKEN}`] }));
});
test("agent-no-credentials: a real token in env fails, naming the variable but not the value", (t) => {
  const token = "sk-ant-oat01-" + "A".repeat(40);
  const vs = run(agentNoCredentials, C, { ...goodAgent(), envs: [`CLAUDE_CODE_OAUTH_TOKEN=${token}`] });
  fails(t, vs, /CLAUDE_CODE_OAUTH_TOKEN.*Anthropic API Key/);
  t.false(describe(vs).includes(token));
});
test("agent-no-credentials: a secret-named env with a non-placeholder value fails", (t) => fails(t, run(agentNoCredentials, C, { ...goodAgent(), envs: ["GITHUB_TOKEN=hunter2"] }), /GITHUB_TOKEN.*placeholder/));
test("agent-no-credentials: a credential in an uploaded file or the command fails", (t) => {
  fails(t, run(agentNoCredentials, C, { ...goodAgent(), uploads: [{ file: "/home/agent/.aws/credentials", content: "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n" }] }), /\.aws\/credentials.*AWS Access Key ID/);
  fails(t, run(agentNoCredentials, C, { ...goodAgent(), uploads: [{ file: "/x", contentBase64: Buffer.from("token: ghp_" + "a".repeat(36)).toString("base64") }] }), /GitHub Token/);
  fails(t, run(agentNoCredentials, C, { ...goodAgent(), command: ["sh", "-c", "curl -H 'Authorization: Bearer glpat-" + "x".repeat(20) + "'"] }), /command.*GitLab PAT/);
});
test("agent-no-credentials: at preview, unknown env elements are skipped and known ones still checked", (t) => {
  const props = { ...goodAgent(), envs: [UNKNOWN_STRING, "SLACK=xoxb-" + "1".repeat(20)] };
  const vs = run(agentNoCredentials, C, props, { preview: true });
  fails(t, vs, /Slack Token/);
  t.false(vs.some((v) => /can't run/.test(v.message)));
});

// ---------------------------------------------------------------- agent-no-ca-private-key
test("agent-no-ca-private-key: certificates only pass", (t) => passes(t, run(agentNoPrivateKeys, C, goodAgent())));
test("agent-no-ca-private-key: an upload at a key path fails", (t) => fails(t, run(agentNoPrivateKeys, C, { ...goodAgent(), uploads: [{ file: "/etc/claude-bottle/egress-ca/ca-key.pem", content: "x" }] }), /private key file/));
test("agent-no-ca-private-key: a PEM private key at an innocent path fails (plain or base64)", (t) => {
  fails(t, run(agentNoPrivateKeys, C, { ...goodAgent(), uploads: [{ file: "/etc/claude-bottle/ca/egress-ca.pem", content: CERT + EC_KEY }] }), /private key \(PEM/);
  fails(t, run(agentNoPrivateKeys, C, { ...goodAgent(), uploads: [{ file: "/tmp/blob", contentBase64: Buffer.from(EC_KEY).toString("base64") }] }), /private key \(PEM/);
});
test("agent-no-ca-private-key: a bind-mounted key file fails", (t) => fails(t, run(agentNoPrivateKeys, C, { ...goodAgent(), mounts: [{ type: "bind", source: "/srv/state/pipelock-ca/ca-key.pem", target: "/k" }] }), /bind-mount a private key/));
test("agent-no-ca-private-key: the egress container may hold its CA key", (t) =>
  passes(t, run(agentNoPrivateKeys, C, sidecar("egress", [NET.internal, NET.link], { uploads: [{ file: "/etc/claude-bottle/egress-ca/ca-key.pem", content: EC_KEY, permissions: "0600" }] }))));

// ---------------------------------------------------------------- bottle-network-isolated
test("bottle-network-isolated: internal and link networks as the components build them pass; outside is not checked", (t) => {
  passes(t, run(bottleNetworkIsolated, N, network("internal")));
  passes(t, run(bottleNetworkIsolated, N, network("link")));
  passes(t, run(bottleNetworkIsolated, N, network("outside")));
});
test("bottle-network-isolated: the IPAM gateway Docker always reports (also with inhibit_ipv4) passes", (t) => {
  // What the engine reads back for an internal network created with inhibit_ipv4 (docker network inspect).
  const reported = { ipamConfigs: [{ subnet: "172.30.0.0/16", gateway: "172.30.0.1", ipRange: "", auxAddress: {} }] };
  passes(t, run(bottleNetworkIsolated, N, network("internal", reported)));
  passes(t, runStack(edit(bottle(), "net-internal", (p) => Object.assign(p, reported))));
  fails(t, run(bottleNetworkIsolated, N, network("internal", { ...reported, options: {} })), /inhibit_ipv4/);
});
test("bottle-network-isolated: a non-internal internal network fails", (t) => fails(t, run(bottleNetworkIsolated, N, network("internal", { internal: false })), /must be internal/));
test("bottle-network-isolated: a bridge with a host address fails", (t) => {
  fails(t, run(bottleNetworkIsolated, N, network("internal", { options: {} })), /inhibit_ipv4/);
  fails(t, run(bottleNetworkIsolated, N, network("link", { ipv6: true })), /IPv6/);
});
test("bottle-network-isolated: a non-bridge driver fails", (t) => fails(t, run(bottleNetworkIsolated, N, network("link", { driver: "macvlan" })), /bridge driver/));

// ---------------------------------------------------------------- agent-networks-internal (stack)
const bottle = (): CapturedResource[] => [
  { type: N, name: "net-internal", inputs: network("internal") },
  { type: N, name: "net-link", inputs: network("link") },
  { type: N, name: "net-outside", inputs: network("outside") },
  { type: C, name: "agent", inputs: goodAgent() },
  { type: C, name: "egress", inputs: sidecar("egress", [NET.internal, NET.link]) },
  { type: C, name: "supervise", inputs: sidecar("supervise", [NET.internal]) },
  { type: C, name: "pipelock", inputs: sidecar("pipelock", [NET.link, NET.outside]) },
];
const runStack = (rs: CapturedResource[], preview = false) => runPolicies(rs, { policies: [agentNetworksInternal], preview });
const edit = (rs: CapturedResource[], name: string, f: (p: Props) => void) => {
  const copy = structuredClone(rs);
  f(copy.find((r) => r.name === name)!.inputs);
  return copy;
};
test("agent-networks-internal: the bottle topology passes", (t) => passes(t, runStack(bottle())));
test("agent-networks-internal: agent on the outside network fails", (t) => fails(t, runStack(edit(bottle(), "agent", (p) => p.networksAdvanced.push({ name: NET.outside }))), /internal network, not to "net-outside" \(role outside\)/));
test("agent-networks-internal: agent on the link network (pipelock directly) fails", (t) => fails(t, runStack(edit(bottle(), "agent", (p) => (p.networksAdvanced = [{ name: NET.link }]))), /not to "net-link" \(role link\)/));
test("agent-networks-internal: agent on a network the stack does not declare fails", (t) => fails(t, runStack(edit(bottle(), "agent", (p) => (p.networksAdvanced = [{ name: "bridge" }]))), /networks this stack declares/));
test("agent-networks-internal: the agent's network made non-internal fails", (t) => fails(t, runStack(edit(bottle(), "net-internal", (p) => (p.internal = false))), /must be internal/));
test("agent-networks-internal: pipelock on the agent's network fails", (t) => fails(t, runStack(edit(bottle(), "pipelock", (p) => p.networksAdvanced.push({ name: NET.internal }))), /must not also hold pipelock/));
test("agent-networks-internal: another bottle's container on the agent's network fails", (t) =>
  fails(t, runStack([...bottle(), { type: C, name: "stranger", inputs: sidecar("egress", [NET.internal], { labels: labels("egress", "other-bottle") }) }]), /same bottle/));
test("agent-networks-internal: at preview, unknown network names make it advisory 'can't run'", (t) => {
  const vs = runStack(edit(bottle(), "agent", (p) => (p.networksAdvanced = [{ name: UNKNOWN_STRING }])), true);
  t.is(vs.length, 1, describe(vs));
  t.is(vs[0]!.enforcementLevel, "advisory");
  t.regex(vs[0]!.message, /can't run/);
});

// ---------------------------------------------------------------- pipelock-config-strict
const pipelockYaml = (mutate?: (c: any) => void) => {
  const c: any = structuredClone(renderPipelockConfig({ allowlist: ["api.anthropic.com", "github.com"] }));
  mutate?.(c);
  return mutate ? seal(YAML.stringify(c)) : pipelockConfigToYaml(c);
};
const liveFile = (kind: string, content: string, type = DYN) => ({ type, props: { kind, content, path: `/state/${kind}` } });
const runLive = (policy: Policies[number], f: { type: string; props: Props }) => run(policy, f.type, f.props);
test("pipelock-config-strict: the rendered config passes, under either type token; other kinds are not its business", (t) => {
  passes(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", pipelockYaml())));
  passes(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", pipelockYaml(), "claude-bottle:index:LiveConfigFile")));
  passes(t, runLive(pipelockConfigStrict, liveFile("egress-routes", "not: pipelock")));
});
test("pipelock-config-strict: a non-strict mode fails", (t) => fails(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", pipelockYaml((c) => (c.mode = "balanced")))), /mode: strict/));
test("pipelock-config-strict: body scanning warn fails", (t) => fails(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", pipelockYaml((c) => (c.request_body_scanning.action = "warn")))), /action: block/));
test("pipelock-config-strict: an unknown key or bad YAML fails the contract", (t) => {
  fails(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", pipelockYaml((c) => (c.dlp = { include_defaults: false })))), /contract.*dlp/);
  fails(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", "mode: [strict")), /valid YAML/);
});
test("pipelock-config-strict: allowlisting a public suffix fails (a TLD, a multi-label or private suffix)", (t) => {
  for (const host of ["*.com", "*.co.uk", "*.github.io"]) fails(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", pipelockYaml((c) => c.api_allowlist.push(host)))), /too broad.*public suffix/);
});
test("pipelock-config-strict: an unsealed or cut-short file fails the contract", (t) => {
  const full = pipelockYaml();
  fails(t, runLive(pipelockConfigStrict, liveFile("pipelock-config", full.slice(0, full.indexOf("api_allowlist")))), /completeness line/);
});

// ---------------------------------------------------------------- egress-routes-tls-only
const ROUTES = seal("version: 1\nroutes:\n  - host: api.anthropic.com\n    path_allowlist: [/]\n    methods: [GET, POST]\n    auth: { scheme: bearer, token_ref: CLAUDE_CODE_OAUTH_TOKEN }\n    role: claude_code_oauth\n  - host: github.com\n    path_allowlist: [/]\n    methods: [GET]\n");
test("egress-routes-tls-only: routes with token_ref pass", (t) => passes(t, runLive(egressRoutesTlsOnly, liveFile("egress-routes", ROUTES))));
test("egress-routes-tls-only: an inline token fails without echoing it", (t) => {
  const vs = runLive(egressRoutesTlsOnly, liveFile("egress-routes", seal(withoutSeal(ROUTES) + "# token: ghp_" + "z".repeat(36) + "\n")));
  fails(t, vs, /token_ref, not hold them/);
  t.false(describe(vs).includes("zzzz"));
});
test("egress-routes-tls-only: a cleartext http:// host with auth fails", (t) =>
  fails(t, runLive(egressRoutesTlsOnly, liveFile("egress-routes", "routes:\n  - host: http://api.example.com\n    auth: { scheme: bearer, token_ref: T }\n")), /only over TLS/));
test("egress-routes-tls-only: a live route must say what it allows (no path_allowlist/methods is not 'any')", (t) =>
  fails(t, runLive(egressRoutesTlsOnly, liveFile("egress-routes", seal("version: 1\nroutes:\n  - host: api.example.com\n"))), /contract.*path_allowlist: required/));
test("egress-routes-tls-only: a plaintext switch (unknown key) fails the contract", (t) =>
  fails(t, runLive(egressRoutesTlsOnly, liveFile("egress-routes", seal("version: 1\nroutes:\n  - host: api.example.com\n    path_allowlist: [/]\n    methods: [GET]\n    scheme: http\n    auth: { scheme: bearer, token_ref: T }\n"))), /contract.*scheme/));

// ---------------------------------------------------------------- sidecar-images-pinned (advisory)
const I = "docker:index/image:Image";
const RI = "docker:index/remoteImage:RemoteImage";
const DIGEST = "@sha256:" + "0123456789abcdef".repeat(4);
test("sidecar-images-pinned: digest-pinned and local test bases pass", (t) => {
  passes(t, run(sidecarImagesPinned, I, { imageName: "cb-egress:x", build: { args: { BASE_IMAGE: "debian:bookworm-slim" + DIGEST, CLAUDE_CODE_VERSION: "2.0.0" } } }));
  passes(t, run(sidecarImagesPinned, I, { imageName: "cb-pipelock:x", build: { args: { BASE_IMAGE: "cbtest/base:bookworm-0123456789ab", PIPELOCK_IMAGE: "cbtest/pipelock-bin:2.3.0-0123456789ab" } } }));
  passes(t, run(sidecarImagesPinned, RI, { name: "example/pipelock" + DIGEST }));
  t.true(isPinnedImage("sha256:" + "a".repeat(64)));
});
test("sidecar-images-pinned: a tag-only base fails as advisory", (t) => {
  const vs = run(sidecarImagesPinned, I, { imageName: "cb-pipelock:x", build: { args: { BASE_IMAGE: "debian:bookworm-slim" + DIGEST, PIPELOCK_IMAGE: "example/pipelock:2.3.0" } } });
  fails(t, vs, /PIPELOCK_IMAGE pinned by digest/);
  t.true(vs.every((v) => v.enforcementLevel === "advisory"));
});
test("sidecar-images-pinned: a pulled image by tag fails", (t) => fails(t, run(sidecarImagesPinned, RI, { name: "example/gitleaks:v8" }), /pulled by digest/));

// ---------------------------------------------------------------- the shared credential pattern set
const SAMPLES: Record<string, string> = {
  "AWS Access Key ID": "AKIAIOSFODNN7EXAMPLE",
  "AWS Secret Access Key": "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  "GitHub Token": "ghs_" + "a1".repeat(18),
  "GitHub Fine-Grained PAT": "github_pat_" + "A".repeat(22),
  "GitLab PAT": "glpat-" + "x".repeat(20),
  "Slack Token": "xoxp-1234567890-abc",
  "Anthropic API Key": "sk-ant-api03-" + "k".repeat(30),
  "OpenAI API Key": "sk-proj-" + "o".repeat(30),
  "Google API Key": "AIza" + "G".repeat(35),
  "GCP Service Account Key": '{"type": "service_account", "project_id": "p"}',
  "Private Key": "-----BEGIN OPENSSH PRIVATE KEY-----",
  "JSON Web Token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
  "Stripe Secret Key": "sk_live_" + "s".repeat(24),
  "Hugging Face Token": "hf_" + "h".repeat(34),
};
test("credential patterns: every pattern has a sample it matches; plain config and the placeholder match none", (t) => {
  for (const p of CREDENTIAL_PATTERNS) {
    const sample = SAMPLES[p.name];
    t.truthy(sample, `no sample for ${p.name}`);
    t.true(findCredentials(sample!).includes(p.name), p.name);
  }
  for (const clean of ["HTTPS_PROXY=http://egress:3128", "NODE_EXTRA_CA_CERTS=/etc/claude-bottle/ca/egress-ca.pem", CERT, AGENT_PLACEHOLDER_TOKEN, `sk-ant-${AGENT_PLACEHOLDER_TOKEN}`, "DISABLE_TELEMETRY=1"]) {
    t.deepEqual(findCredentials(clean), [], clean);
  }
});

// ---------------------------------------------------------------- sidecars-hardened
const goodSidecar = (role = "egress"): Props => ({
  image: "sha256:" + "c".repeat(64),
  name: `cb-${ID}-${role}`,
  labels: labels(role),
  capabilities: { drops: ["ALL"] },
  securityOpts: ["no-new-privileges:true"],
  privileged: false,
  networksAdvanced: [{ name: NET.internal }, { name: NET.link }],
  mounts: [{ type: "bind", source: "/home/op/.claude-bottle/x/egress", target: "/etc/claude-bottle/egress", readOnly: true }],
});
test("sidecars-hardened: every sidecar role as the components build it passes; the agent is not its business", (t) => {
  for (const role of ["egress", "pipelock", "git-gate", "supervise"]) passes(t, run(sidecarsHardened, C, goodSidecar(role)));
  passes(t, run(sidecarsHardened, C, { ...goodAgent(), privileged: true }));
});
test("sidecars-hardened: privileged, added capabilities or no drop ALL fail", (t) => {
  fails(t, run(sidecarsHardened, C, { ...goodSidecar(), privileged: true }), /egress container .* must not be privileged/);
  fails(t, run(sidecarsHardened, C, { ...goodSidecar("pipelock"), capabilities: { drops: ["ALL"], adds: ["NET_ADMIN"] } }), /must not add capabilities \(NET_ADMIN\)/);
  fails(t, run(sidecarsHardened, C, { ...goodSidecar("supervise"), capabilities: {} }), /drop all capabilities/);
});
test("sidecars-hardened: the agent's confinement checks, one definition: podman socket, cgroup namespace, unconfined seccomp fail", (t) => {
  fails(t, run(sidecarsHardened, C, { ...goodSidecar("egress"), mounts: [{ type: "bind", source: "/run/user/1000/podman/podman.sock", target: "/run/podman.sock" }] }), /runtime socket \(\/run\/user\/1000\/podman\/podman\.sock\)/);
  fails(t, run(sidecarsHardened, C, { ...goodSidecar("supervise"), cgroupnsMode: "host" }), /cgroup namespace/);
  fails(t, run(sidecarsHardened, C, { ...goodSidecar("pipelock"), securityOpts: ["no-new-privileges:true", "seccomp=unconfined"] }), /weaken its confinement \(securityOpts seccomp\)/);
  passes(t, run(sidecarsHardened, C, { ...goodSidecar("pipelock"), securityOpts: ["no-new-privileges"] }));
});

test("sidecars-hardened: the docker socket, host namespaces or no no-new-privileges fail", (t) => {
  fails(t, run(sidecarsHardened, C, { ...goodSidecar("git-gate"), volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }] }), /runtime socket/);
  fails(t, run(sidecarsHardened, C, { ...goodSidecar(), networkMode: "host" }), /networkMode/);
  fails(t, run(sidecarsHardened, C, { ...goodSidecar(), securityOpts: [] }), /no-new-privileges/);
});
