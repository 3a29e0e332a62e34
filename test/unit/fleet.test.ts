// A fleet under mocks (examples/fleet/fleet.ts): one program, a docker.Provider per host handed to
// each Bottle through component opts. Every docker resource of a bottle — nested components
// included — is registered with its host's provider (through `parent`), its live files are
// written through its own state container on that host, its networks come from the program's
// pool without overlaps, and its approvals persist under keys of its own. SubnetPool's own rules.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { installMocks, settle, unwrap, type Registration } from "../helpers/pulumi-mocks.ts";
import { DOCKER_TYPES } from "../../contracts/docker.ts";
import { buildSidecars } from "../../sidecars/build.ts";
import { SubnetPool, parseCidr } from "../../components/subnets.ts";
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";

await buildSidecars();
const mocks = await installMocks();
const { fleetProgram } = await import("../../examples/fleet/fleet.ts");
const { dockerEndpointOf } = await import("../../components/state.ts");
const { DockerHost } = await import("../../components/host.ts");

const B_HOST = "unix:///run/cbtest-unit-b/docker.sock";

function manifest(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-fleet-"));
  fs.mkdirSync(path.join(dir, "agents"));
  for (const a of ["coder", "tester", "reviewer"]) fs.writeFileSync(path.join(dir, "agents", `${a}.md`), `---\nbottle: dev\n---\n${a}\n`);
  const routes = [{ host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" }, role: "claude_code_oauth" }];
  fs.writeFileSync(path.join(dir, "claude-bottle.yaml"), YAML.stringify({ agents: "agents", bottles: { dev: { egress: { routes }, supervise: true, runtime: "runc" } } }));
  return path.join(dir, "claude-bottle.yaml");
}

let regs: Registration[];
let outputs: any;
test.before(async () => {
  const start = mocks.registrations.length;
  const program = fleetProgram({
    manifest: manifest(),
    hosts: [
      { name: "here", agents: ["reviewer"] },
      { name: "box", docker: { host: B_HOST }, agents: ["coder", "tester"] },
    ],
    subnets: { cidr: "10.200.0.0/16" },
    env: { CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-FLEET-UNIT" },
  });
  outputs = await unwrap(program as any);
  await settle(mocks.registrations);
  regs = mocks.registrations.slice(start);
});

const providerUrn = (name: string) => regs.find((r) => r.type === "pulumi:providers:docker" && r.name === name);
/** The bottle a resource belongs to, by its docker name or logical name. */
const bottleOf = (r: Registration) => ["dev-reviewer", "dev-coder", "dev-tester"].find((id) => r.name.startsWith(id) || String(r.inputs.name ?? r.inputs.imageName ?? "").includes(id));

test("one docker.Provider per host; every docker resource of a bottle (containers, networks, volumes, images) is registered with its host's provider, through `parent`", (t) => {
  t.truthy(providerUrn("here"));
  t.is(providerUrn("box")!.inputs.host, B_HOST);
  const docker = regs.filter((r) => r.type.startsWith("docker:index/"));
  t.true(docker.length >= 3 * (5 + 3 + 7 + 5), `${docker.length} docker resources`);
  for (const r of docker) {
    const bottle = bottleOf(r);
    t.truthy(bottle, `${r.type} ${r.name} belongs to a bottle`);
    const want = bottle === "dev-reviewer" ? "here" : "box";
    t.regex(r.provider ?? "(default provider)", new RegExp(`::pulumi:providers:docker::${want}::`), `${r.type} ${r.name} → provider ${want}`);
  }
  t.false(regs.some((r) => r.type === "pulumi:providers:docker" && r.name.startsWith("default")), "no default docker provider");
});

test("each bottle's live files go through its own state container on its host's engine", (t) => {
  const files = regs.filter((r) => r.type === "pulumi-nodejs:dynamic:Resource");
  t.is(files.length, 3 * 4);
  for (const f of files) {
    const bottle = bottleOf(f)!;
    t.is(f.inputs.stateContainer, `claude-bottle-${bottle}-state`);
    if (bottle === "dev-reviewer") t.deepEqual(f.inputs.docker, { host: process.env.DOCKER_HOST || "unix:///var/run/docker.sock" }, "the provider's default");
    else t.deepEqual(f.inputs.docker, { host: B_HOST });
  }
  t.is(outputs.bottles["dev-coder"].attach, `docker -H ${B_HOST} exec -it claude-bottle-dev-coder-agent claude`, "the attach command reaches the bottle's host");
  t.is(outputs.bottles["dev-reviewer"].attach, `docker exec -it claude-bottle-dev-reviewer-agent claude`);
});

test("networks from the program's pool: deterministic slots in fleet order, no two overlap", (t) => {
  const nets = regs.filter((r) => r.type === DOCKER_TYPES.network);
  t.is(nets.length, 9);
  const subnet = (n: Registration) => n.inputs.ipamConfigs[0].subnet as string;
  t.deepEqual(nets.filter((n) => bottleOf(n) === "dev-reviewer").map(subnet).sort(), ["10.200.0.0/26", "10.200.0.128/26", "10.200.0.64/26"]);
  t.deepEqual(nets.filter((n) => bottleOf(n) === "dev-tester").map(subnet).sort(), ["10.200.1.128/26", "10.200.1.192/26", "10.200.2.0/26"]);
  const ranges = nets.map((n) => parseCidr(subnet(n))).map(({ base, prefix }) => [base, base + 2 ** (32 - prefix)] as const);
  for (let i = 0; i < ranges.length; i++) for (let j = i + 1; j < ranges.length; j++) t.true(ranges[i]![1] <= ranges[j]![0] || ranges[j]![1] <= ranges[i]![0], "no overlap");
});

test("approvals persist per bottle: bottle.json names the bottle's own stack config keys", (t) => {
  const record = JSON.parse(regs.find((r) => r.type === "pulumi-nodejs:dynamic:Resource" && r.inputs.kind === "bottle-record" && r.inputs.stateContainer.includes("dev-coder"))!.inputs.content);
  t.deepEqual(record.configKeys, { egress_routes: "routes.coder", pipelock_allowlist: "pipelockAllowlist.coder", capability: "capabilityDockerfile.coder", server_tools: "serverTools.coder" });
});

test("SubnetPool: /26 triples by slot, a capacity, names hashed to stable slots, mistakes refused", (t) => {
  const pool = new SubnetPool({ cidr: "10.200.0.0/16" });
  t.is(pool.capacity, 341);
  t.deepEqual(pool.at(0), { internal: "10.200.0.0/26", link: "10.200.0.64/26", outside: "10.200.0.128/26" });
  t.deepEqual(pool.at(340), { internal: "10.200.255.0/26", link: "10.200.255.64/26", outside: "10.200.255.128/26" });
  t.throws(() => pool.at(341), { message: /slot 341 is outside 0…340/ });
  const wide = new SubnetPool({ cidr: "10.201.0.0/16", networkPrefix: 24 });
  t.is(wide.capacity, 85);
  t.deepEqual(wide.at(1), { internal: "10.201.3.0/24", link: "10.201.4.0/24", outside: "10.201.5.0/24" });
  const named = new SubnetPool({ cidr: "10.192.0.0/12" });
  t.deepEqual(named.forName("dev-coder"), named.forName("dev-coder"), "a name always gets its slot");
  t.deepEqual(new SubnetPool({ cidr: "10.192.0.0/12" }).forName("dev-coder"), named.forName("dev-coder"), "in every run");
  const tiny = new SubnetPool({ cidr: "10.9.0.0/24", networkPrefix: 26 });
  t.is(tiny.capacity, 1);
  tiny.forName("a");
  t.throws(() => tiny.forName("b"), { message: /"a" and "b" hash to the same slot 0/ });
  t.throws(() => new SubnetPool({ cidr: "10.200.0.1/16" }), { message: /host bits are set \(did you mean 10\.200\.0\.0\/16\?\)/ });
  t.throws(() => new SubnetPool({ cidr: "10.200.0.0/16", networkPrefix: 30 }), { message: /between the pool's \/16 and 29/ });
  t.throws(() => new SubnetPool({ cidr: "300.1.0.0/16" }), { message: /expected an IPv4 CIDR/ });
  t.throws(() => new SubnetPool({ cidr: "10.9.0.0/25", networkPrefix: 26 }), { message: /too small for one bottle/ });
});

class Holder extends pulumi.ComponentResource {
  constructor(name: string, opts: pulumi.ComponentResourceOptions) {
    super("cbtest:index:Holder", name, {}, opts);
  }
}
/** An Output's value, or its error (the Output's own promises: apply callbacks never see a rejection; each is handled here). */
const settled = (o: pulumi.Output<unknown>) => {
  const x = o as any;
  for (const p of [x.isKnown, x.isSecret, x.allResources?.()]) p?.catch?.(() => undefined);
  return x.promise() as Promise<unknown>;
};

test("dockerEndpointOf: a DockerHost's plain settings; a plain docker.Provider's read back as outputs; a child inherits its parent's; inline TLS material refused", async (t) => {
  t.deepEqual(await settled(dockerEndpointOf(new Holder("h1", { provider: new DockerHost("dh", { host: "ssh://me@box", sshOpts: ["-p", "2222"] }) }))), { host: "ssh://me@box" });
  const plain = new docker.Provider("plain", { host: "tcp://box:2376", certPath: "/certs/box" });
  const parent = new Holder("h2", { providers: [plain] });
  t.deepEqual(await settled(dockerEndpointOf(new Holder("h2-child", { parent }))), { host: "tcp://box:2376", certPath: "/certs/box" }, "through `parent`");
  const ctx = new docker.Provider("ctx", { context: "box" });
  t.deepEqual(await settled(dockerEndpointOf(new Holder("h3", { provider: ctx }))), { context: "box" });
  const inline = new docker.Provider("inline", { host: "tcp://box:2376", caMaterial: "-----BEGIN CERTIFICATE-----" });
  await t.throwsAsync(settled(dockerEndpointOf(new Holder("h4", { provider: inline }))), { message: /takes TLS material as files: set the docker provider's `certPath`/ });
});
