// The stack program's handling of user mistakes and of the runtime choice.
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { captureBottle } from "./helpers/capture.ts";

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

test("the same git host with two IPs is a manifest error naming both upstreams", async (t) => {
  const { fixture, FULL_ENV } = await import("./helpers/fixtures.ts");
  const manifest = fixture("full", (m) => {
    const first = m.bottles.dev.git.upstreams[0];
    m.bottles.dev.git.upstreams.push({ ...first, name: "lib", url: "git@github.com:acme/lib.git", extra_hosts: { "github.com": "10.213.0.99" } });
  });
  const err = await t.throwsAsync(captureBottle({ manifest, env: FULL_ENV }));
  t.true(pulumi.RunError.isInstance(err));
  t.regex(err!.message, /bottles\.dev\.git\.upstreams\[1\]\.extra_hosts\.github\.com/);
  t.regex(err!.message, /"app"/);
  t.regex(err!.message, /"lib"/);
});

test.serial("a fresh stack needs no config: every key Pulumi.yaml declares has a default, and the defaults mean 'unset'", async (t) => {
  const YAML = (await import("yaml")).default;
  const fs = await import("node:fs");
  const project = YAML.parse(fs.readFileSync(new URL("../../Pulumi.yaml", import.meta.url), "utf8"));
  const declared = Object.entries<Record<string, unknown>>(project.config ?? {});
  t.true(declared.length >= 4);
  // The Pulumi CLI refuses a stack that lacks a value for a declared key without a default.
  for (const [key, spec] of declared) t.true("default" in spec, `${key} has no default: a new stack would be refused`);
  // What the engine hands the program on a fresh stack: each declared key at its default.
  const config = Object.fromEntries(declared.map(([k, spec]) => [k, String(spec.default)]));
  pulumi.runtime.setAllConfig(config);
  try {
    const c = await captureBottle({ stateDir: undefined });
    t.is(c.outputs.identity, "default-claude");
    t.regex(String((c.outputs.containers as Record<string, string>).agent), /^claude-bottle-default-claude-agent$/);
  } finally {
    pulumi.runtime.setAllConfig({});
  }
});

test("images are built for the daemon's platform (no provider warning), and the built images are a stack output (`pulumi destroy` keeps them)", async (t) => {
  const c = await captureBottle({ program: { daemonPlatform: "linux/arm64" } });
  const images = c.byType("docker:index/image:Image");
  t.true(images.length >= 4);
  for (const i of images) t.is(i.inputs.build.platform, "linux/arm64", i.name);
  t.deepEqual([...(c.outputs.images as string[])].sort(), images.map((i) => i.inputs.imageName).sort());
  t.deepEqual((c.outputs.images as string[]).map((n) => n.split(":")[0]).sort(), ["claude-bottle-agent", "claude-bottle-egress", "claude-bottle-pipelock", "claude-bottle-state", "claude-bottle-supervise"]);
});
