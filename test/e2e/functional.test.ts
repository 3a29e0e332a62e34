// The doubles' own contract, without a Docker engine: they refuse input fields they do not
// implement (naming the field), order resources by data dependency (mock path), and the
// provider frame carries secrets from inputs to outputs.
import test from "ava";
import { checkFields, plan, T } from "./engine/double.ts";
import { durationNs } from "./engine/docker.ts";
import { UnimplementedFieldError } from "./engine/fields.ts";
import { carrySecrets, isSecret, providerOf, secret } from "./engine/plugin.ts";
import { dockerDoubles, dockerProviderConfig } from "./engine/docker.ts";
import { captureBottle } from "../unit/helpers/capture.ts";
import type { Registration } from "../helpers/pulumi-mocks.ts";

const reg = (type: string, name: string, inputs: Record<string, any>, outputs: Record<string, any> = inputs): Registration => ({ type, name, inputs, rawInputs: inputs, outputs, id: `${name}-id` });

test("an unimplemented container field fails loudly, naming the field", (t) => {
  const e = t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", shmSize: 64 })), { instanceOf: UnimplementedFieldError });
  t.regex(e!.message, /`shmSize`/);
  t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", mounts: [{ type: "bind", source: "/a", target: "/b", bindOptions: { propagation: "rshared" } }] })), { message: /mounts\[\*\]\.bindOptions\.propagation/ });
  t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", uploads: [{ file: "/a", content: "x", executable: true }] })), { message: /uploads\[\*\]\.executable/ });
  t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", healthcheck: { tests: ["CMD", "true"], startInterval: "1s" } })), { message: /healthcheck\.startInterval/ });
  t.throws(() => checkFields(reg(T.network, "n", { name: "n", ipamConfigs: [{ subnet: "10.0.0.0/24", ipRange: "10.0.0.0/25" }] })), { message: /ipamConfigs\[\*\]\.ipRange/ });
  t.throws(() => checkFields(reg("docker:index/remoteImage:RemoteImage", "r", { name: "debian" })), { message: /not implemented/ });
  t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", mounts: [{ type: "volume", source: "v", target: "/b", volumeOptions: { noCopy: true, subpath: "x" } }] })), { message: /mounts\[\*\]\.volumeOptions\.subpath/ });
  // what the state container and the sidecars' state mounts use is implemented
  t.notThrows(() => checkFields(reg(T.container, "c", { name: "x", image: "i", networkMode: "none", mounts: [{ type: "volume", source: "v", target: "/b", readOnly: true, volumeOptions: { noCopy: true } }] })));
});

test("the docker provider's settings: `host` (a unix socket) becomes this plugin process's DOCKER_HOST, as the real Configure exports it; anything else is refused", (t) => {
  const saved = process.env.DOCKER_HOST;
  try {
    dockerProviderConfig.configure({ host: "unix:///run/cbtest-b/docker.sock" });
    t.is(process.env.DOCKER_HOST, "unix:///run/cbtest-b/docker.sock");
    t.throws(() => dockerProviderConfig.configure({ host: "ssh://me@box" }), { message: /unix:\/\/ sockets only/ });
    t.throws(() => dockerProviderConfig.configure({ host: "tcp://box:2376" }), { message: /unix:\/\/ sockets only/ });
    t.deepEqual(Object.keys(dockerProviderConfig.fields), ["host"], "certPath, context and TLS material are refused at Configure (plugin.ts)");
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
});

test("the provider refuses an unimplemented field at check, with the field as the failing property", async (t) => {
  const p = providerOf("docker", "5.2.0", dockerDoubles);
  const urn = "urn:pulumi:s::p::docker:index/container:Container::c";
  const r = await p.check!(urn, {}, { name: "x", image: "i", shmSize: 64 });
  t.deepEqual(r.failures?.map((f) => f.property), ["shmSize"]);
  const ok = await p.check!(urn, {}, { name: "x", image: "i" });
  t.deepEqual(ok.failures, []);
  t.is(ok.inputs.restart, "no", "TF schema defaults are filled in");
  t.is(ok.inputs.mustRun, true);
  const bad = await p.check!(urn, {}, { name: "x", image: "i", restart: "sometimes" });
  t.regex(bad.failures![0]!.reason, /restart/);
});

test("outputs are secret where their inputs were (the engine does not copy secretness for a provider that accepts secrets)", (t) => {
  const outs = carrySecrets({ envs: ["A=1"], name: "n", uploads: [{ content: "k" }] }, { envs: [secret("A=1")], name: "n", uploads: [{ content: secret("k") }] });
  t.true(isSecret(outs.envs));
  t.false(isSecret(outs.name));
  t.true(isSecret(outs.uploads));
});

test("durations are Go durations", (t) => {
  t.is(durationNs("5s"), 5e9);
  t.is(durationNs("1m30s"), 90e9);
  t.is(durationNs("250ms"), 250e6);
  t.is(durationNs("5 seconds"), 0, "time.ParseDuration's error is ignored by the provider: 0");
});

test("the stack program's resources all pass the field check and order networks/images/config before containers; the state container before every live file", async (t) => {
  const c = await captureBottle({ namePrefix: "cbtest-e2e-plan-" });
  const steps = plan(c.registrations);
  const pos = (r: Registration) => steps.indexOf(r);
  for (const ctr of steps.filter((s) => s.type === T.container)) {
    for (const n of ctr.inputs.networksAdvanced ?? []) {
      const net = steps.find((s) => s.type === T.network && s.inputs.name === n.name)!;
      t.true(pos(net) < pos(ctr), `${net.name} before ${ctr.name}`);
    }
    const img = steps.find((s) => s.type === T.image && s.outputs.repoDigest === ctr.inputs.image)!;
    t.true(pos(img) < pos(ctr), `${img.name} before ${ctr.name}`);
    for (const file of steps.filter((s) => s.type.includes("dynamic") && s.inputs.stateContainer !== ctr.inputs.name)) {
      if ((ctr.inputs.mounts ?? []).some((m: any) => m.target === file.inputs.path.replace(/\/[^/]+$/, ""))) t.true(pos(file) < pos(ctr), `${file.name} before ${ctr.name}`);
    }
  }
  const files = steps.filter((s) => s.type.includes("dynamic"));
  t.is(files.length, 4);
  for (const file of files) {
    const state = steps.find((s) => s.type === T.container && s.inputs.name === file.inputs.stateContainer)!;
    t.true(pos(state) < pos(file), `${state.name} before ${file.name}`);
  }
});

test("README-engine.md carries the field maps the doubles implement", async (t) => {
  const fs = await import("node:fs");
  const { fieldTables } = await import("./engine/readme.ts");
  const readme = fs.readFileSync(new URL("./README-engine.md", import.meta.url), "utf8");
  t.true(readme.includes(fieldTables()), "regenerate the tables: node --import tsx test/e2e/engine/readme.ts");
});
