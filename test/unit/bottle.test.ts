import test from "ava";
import { captureBottle, TYPES } from "./helpers/capture.ts";

test("zero-config program yields a complete bottle", async (t) => {
  const cap = await captureBottle();
  const roles = cap.byType(TYPES.container).map((c) => c.inputs.labels.find((l: any) => l.label === "dev.claude-bottle.role").value).sort();
  t.deepEqual(roles, ["agent", "egress", "pipelock", "supervise"]);
  t.is(cap.byType(TYPES.network).length, 3);
  t.is(cap.byType(TYPES.selfSignedCert).length, 2);
  t.log(JSON.stringify(cap.outputs, null, 1));
});
