// The pack over what the stack program registers under mocks: the bottle we ship passes its own pack
// (no mandatory violation), and deliberately broken copies of it fail on the policy that guards the
// broken property.
import test from "ava";
import { captureBottle, type Capture } from "./helpers/capture.ts";
import { describe, mandatory, runPolicies, type CapturedResource } from "./helpers/run-pack.ts";
import { fixture, FULL_ENV } from "./helpers/fixtures.ts";
import { LABEL_ROLE } from "../../contracts/labels.ts";

const C = "docker:index/container:Container";
const N = "docker:index/network:Network";
const roleOf = (r: CapturedResource) => r.inputs.labels?.find((l: any) => l.label === LABEL_ROLE)?.value;
const resourcesOf = (cap: Capture): CapturedResource[] => cap.registrations.map((r) => ({ type: r.type, name: r.name, inputs: structuredClone(r.inputs) }));
const find = (rs: CapturedResource[], type: string, role: string) => {
  const r = rs.find((x) => x.type === type && roleOf(x) === role);
  if (!r) throw new Error(`no ${role} ${type}`);
  return r;
};
const liveFile = (rs: CapturedResource[], kind: string) => {
  const r = rs.find((x) => x.inputs.kind === kind && typeof x.inputs.content === "string");
  if (!r) throw new Error(`no ${kind} live config file`);
  return r;
};

let defaultCap: Promise<Capture>;
let fullCap: Promise<Capture>;
test.before(() => {
  defaultCap = captureBottle();
  fullCap = captureBottle({ manifest: fixture("full"), env: FULL_ENV });
});

/** A broken copy of the default bottle must fail with a mandatory violation of `policy`. */
async function breaks(t: any, policy: string, mutate: (rs: CapturedResource[]) => void) {
  const rs = resourcesOf(await defaultCap);
  mutate(rs);
  const vs = mandatory(runPolicies(rs));
  t.true(vs.some((v) => v.policy === policy), `expected a mandatory ${policy} violation; got:\n${describe(vs)}`);
}

test("the default bottle passes its own pack on the outputs the provider reports (as at `pulumi up` and in a stack policy)", async (t) => {
  const cap = await defaultCap;
  const outputs: CapturedResource[] = cap.registrations.map((r) => ({ type: r.type, name: r.name, inputs: structuredClone(r.outputs) }));
  t.truthy(outputs.find((r) => r.type === N)?.inputs.ipamConfigs?.[0]?.gateway, "networks report an IPAM gateway");
  const vs = mandatory(runPolicies(outputs));
  t.deepEqual(vs, [], describe(vs));
});

test("the default bottle passes its own pack (no mandatory violation)", async (t) => {
  const rs = resourcesOf(await defaultCap);
  // The pack saw what it guards: an agent, the three networks, both live configs.
  t.truthy(find(rs, C, "agent"));
  t.truthy(liveFile(rs, "pipelock-config"));
  t.truthy(liveFile(rs, "egress-routes"));
  const vs = runPolicies(rs);
  t.deepEqual(mandatory(vs), [], describe(vs));
  t.log(`advisory: ${vs.length ? "\n" + describe(vs) : "none"}`);
});

test("the full fixture bottle passes its own pack (no mandatory violation)", async (t) => {
  const vs = runPolicies(resourcesOf(await fullCap));
  t.deepEqual(mandatory(vs), [], describe(vs));
});

test("broken: privileged agent", (t) => breaks(t, "agent-not-privileged", (rs) => (find(rs, C, "agent").inputs.privileged = true)));
test("broken: agent attached to the outside network", (t) =>
  breaks(t, "agent-networks-internal", (rs) => find(rs, C, "agent").inputs.networksAdvanced.push({ name: find(rs, N, "outside").inputs.name })));
test("broken: agent attached to the link network (straight to pipelock)", (t) =>
  breaks(t, "agent-networks-internal", (rs) => (find(rs, C, "agent").inputs.networksAdvanced = [{ name: find(rs, N, "link").inputs.name }])));
test("broken: internal network not internal", (t) =>
  breaks(t, "bottle-network-isolated", (rs) => (find(rs, N, "internal").inputs.internal = false)));
test("broken: internal network gives its members the Docker host", (t) =>
  breaks(t, "agent-networks-internal", (rs) => (find(rs, N, "internal").inputs.options = {})));
test("broken: agent keeps its capabilities", (t) => breaks(t, "agent-capabilities-dropped", (rs) => delete find(rs, C, "agent").inputs.capabilities));
test("broken: agent without no-new-privileges", (t) => breaks(t, "agent-no-new-privileges", (rs) => (find(rs, C, "agent").inputs.securityOpts = [])));
test("broken: agent on the host network", (t) => breaks(t, "agent-no-host-namespaces", (rs) => (find(rs, C, "agent").inputs.networkMode = "host")));
test("broken: docker socket mounted into the agent", (t) =>
  breaks(t, "agent-no-host-mounts", (rs) => {
    const a = find(rs, C, "agent").inputs;
    a.volumes = [...(a.volumes ?? []), { hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }];
  }));
test("broken: the real token handed to the agent instead of the placeholder", (t) =>
  breaks(t, "agent-no-credentials", (rs) => {
    const a = find(rs, C, "agent").inputs;
    a.envs = a.envs.map((e: string) => (e.startsWith("CLAUDE_CODE_OAUTH_TOKEN=") ? `CLAUDE_CODE_OAUTH_TOKEN=${FULL_ENV.CLAUDE_CODE_OAUTH_TOKEN ?? "sk-ant-oat01-" + "x".repeat(40)}` : e));
  }));
test("broken: the egress CA key uploaded to the agent", (t) =>
  breaks(t, "agent-no-ca-private-key", (rs) => {
    const key = find(rs, C, "egress").inputs.uploads.find((u: any) => /ca-key\.pem$/.test(u.file));
    find(rs, C, "agent").inputs.uploads.push({ ...key, file: "/etc/claude-bottle/ca/egress-ca-key.pem" });
  }));
test("broken: pipelock config not strict", (t) =>
  breaks(t, "pipelock-config-strict", (rs) => {
    const f = liveFile(rs, "pipelock-config");
    f.inputs.content = f.inputs.content.replace("mode: strict", "mode: balanced").replace("action: block", "action: warn");
  }));
test("broken: egress routes hold a token inline", (t) =>
  breaks(t, "egress-routes-tls-only", (rs) => {
    const f = liveFile(rs, "egress-routes");
    f.inputs.content += "# ghp_" + "q".repeat(36) + "\n";
  }));
test("broken: privileged egress (the sidecar that holds the tokens)", (t) => breaks(t, "sidecars-hardened", (rs) => (find(rs, C, "egress").inputs.privileged = true)));
test("broken: docker socket mounted into pipelock", (t) =>
  breaks(t, "sidecars-hardened", (rs) => find(rs, C, "pipelock").inputs.mounts.push({ type: "bind", source: "/var/run/docker.sock", target: "/var/run/docker.sock" })));
