// The engine double's own contract, without a Docker engine: it refuses input fields it does
// not implement, and orders resources by data dependency.
import test from "ava";
import { checkFields, plan, durationNs, T, UnimplementedFieldError } from "./engine.ts";
import { captureBottle } from "../unit/helpers/capture.ts";
import type { Registration } from "../helpers/pulumi-mocks.ts";

const reg = (type: string, name: string, inputs: Record<string, any>, outputs: Record<string, any> = inputs): Registration => ({ type, name, inputs, rawInputs: inputs, outputs, id: `${name}-id` });

test("an unimplemented container field fails loudly, naming the field", (t) => {
  const e = t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", shmSize: 64 })), { instanceOf: UnimplementedFieldError });
  t.regex(e!.message, /`shmSize`/);
  t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", mounts: [{ type: "bind", source: "/a", target: "/b", bindOptions: { propagation: "rshared" } }] })), { message: /mounts\[\*\]\.bindOptions\.propagation/ });
  t.throws(() => checkFields(reg(T.container, "c", { name: "x", image: "i", uploads: [{ file: "/a", content: "x", executable: true }] })), { message: /uploads\[\*\]\.executable/ });
  t.throws(() => checkFields(reg(T.network, "n", { name: "n", ipamConfigs: [{ subnet: "10.0.0.0/24" }] })), { message: /ipamConfigs/ });
  t.throws(() => checkFields(reg("docker:index/remoteImage:RemoteImage", "r", { name: "debian" })), { message: /not implemented/ });
});

test("durations are Go durations", (t) => {
  t.is(durationNs("5s"), 5e9);
  t.is(durationNs("1m30s"), 90e9);
  t.is(durationNs("250ms"), 250e6);
  t.throws(() => durationNs("5 seconds"));
});

test("the stack program's resources all pass the field check and order networks/images/config before containers", async (t) => {
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
    for (const m of ctr.inputs.mounts ?? []) {
      const file = steps.find((s) => s.type.includes("dynamic") && (s.inputs.ensureDirs ?? []).includes(m.source));
      if (file) t.true(pos(file) < pos(ctr), `${file.name} before ${ctr.name}`);
    }
  }
});
