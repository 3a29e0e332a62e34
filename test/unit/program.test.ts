// The stack program's handling of user mistakes and of the runtime choice.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { captureBottle } from "./helpers/capture.ts";
import { chooseRuntime } from "../../components/runtime.ts";

test("an unset token fails the program with a RunError naming the variable (no stack trace)", async (t) => {
  const err = await t.throwsAsync(captureBottle({ env: {} }));
  t.true(pulumi.RunError.isInstance(err));
  t.regex(err!.message, /CLAUDE_CODE_OAUTH_TOKEN is not set/);
  t.regex(err!.message, /bottles\.default\.egress\.routes\[0\]\.auth\.token_ref/);
});

test("a missing manifest is a RunError naming the file", async (t) => {
  const err = await t.throwsAsync(captureBottle({ manifest: "/nonexistent/claude-bottle.yaml" }));
  t.true(pulumi.RunError.isInstance(err));
  t.regex(err!.message, /\/nonexistent\/claude-bottle\.yaml: manifest not found/);
});

test("runtime auto picks runsc when the daemon has it, and the choice is a stack output", async (t) => {
  t.is((await captureBottle({ daemonRuntimes: ["io.containerd.runc.v2", "runc", "runsc"] })).outputs.runtime, "runsc");
  t.is((await captureBottle({ daemonRuntimes: ["runc"] })).outputs.runtime, "runc");
});

test("runtime choice rules", (t) => {
  t.is(chooseRuntime("auto", undefined), "runc");
  t.is(chooseRuntime("runc", ["runsc"]), "runc");
  t.is(chooseRuntime("runsc", ["runc", "runsc"]), "runsc");
  const err = t.throws(() => chooseRuntime("runsc", ["runc"]));
  t.regex(err!.message, /runsc was requested but the Docker daemon offers: runc/);
  t.regex(err!.message, /apt-get install runsc/);
});
