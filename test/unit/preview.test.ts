// `pulumi preview` runs the program with unknown provider outputs; it must register the
// same resources and not hang.
import test from "ava";
import { installMocks, settle } from "../helpers/pulumi-mocks.ts";
import { DOCKER_TYPES } from "../../contracts/docker.ts";
import { buildSidecars } from "../../sidecars/build.ts";
import * as pulumi from "@pulumi/pulumi";
import { fakeDaemon } from "../helpers/runtime-seams.ts";

await buildSidecars();
const mocks = await installMocks({ preview: true });
const { bottleProgram } = await import("../../components/program.ts");

test("preview registers a complete bottle without hanging", async (t) => {
  t.true(pulumi.runtime.isDryRun());
  const outputs = bottleProgram({ env: { CLAUDE_CODE_OAUTH_TOKEN: "t" }, runtimeSeams: fakeDaemon(["runc"]), stateDir: "/tmp/cb-preview-state" });
  t.is(outputs.identity, "default-claude");
  const containers = () => mocks.registrations.filter((r) => r.type === DOCKER_TYPES.container);
  for (let waited = 0; containers().length < 5 && waited < 15_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  await settle(mocks.registrations, 300);
  t.is(containers().length, 5, "agent, egress, pipelock, supervise and the state container");
  t.is(mocks.registrations.filter((r) => r.type === DOCKER_TYPES.network).length, 3);
});
