// The agent's runtime: what `auto`, `runc` and `runsc` resolve to for what the daemon lists
// and what a probe container under runsc did; when the daemon is asked and runsc probed.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { chooseRuntime, fileCache, probeKey, resolveRuntime, type DaemonFacts, type ProbeResult } from "../../components/runtime.ts";
import { DEFAULT_IMAGES } from "../../components/images.ts";
import { fakeDaemon } from "../helpers/runtime-seams.ts";
import { captureBottle } from "./helpers/capture.ts";

const PROBE = { image: "cbtest/base:x", namePrefix: "cbx-" };
const NETNS_ERROR: ProbeResult = { ok: false, cause: "runtime", error: "OCI runtime start failed: starting container: setting up network: cannot run with network enabled in root network namespace: unknown" };
const linux = (runtimes: Record<string, unknown>): DaemonFacts => ({ runtimes, operatingSystem: "Debian GNU/Linux 12 (bookworm)", id: "A", kernel: "6.18.0", serverVersion: "20.10.24" });

test("runc is taken as given: the daemon is not even asked", (t) => {
  const d = fakeDaemon(["runc", "runsc"]);
  t.deepEqual(resolveRuntime("runc", PROBE, d), { runtime: "runc", notes: [] });
  t.is(d.calls.info, 0);
  t.deepEqual(d.calls.probes, []);
});

test("auto with a listed runsc: one probe container (the base image, the bottle's name prefix), then the cached success", (t) => {
  const d = fakeDaemon(["runc", "runsc"]);
  const first = resolveRuntime("auto", PROBE, d);
  t.is(first.runtime, "runsc");
  t.deepEqual(d.calls.probes, [{ runtime: "runsc", ...PROBE }]);
  t.regex(first.notes.map((n) => n.message).join(), /a probe container started under it/);
  const again = resolveRuntime("auto", PROBE, d);
  t.is(again.runtime, "runsc");
  t.is(d.calls.probes.length, 1, "the success is remembered");
  t.regex(again.notes.map((n) => n.message).join(), /started a container on this daemon before/);
});

test("auto with a listed runsc that cannot start a container: runc, a warning quoting the error, and the failure is not remembered", (t) => {
  const d = fakeDaemon(["runc", "runsc"], { probe: NETNS_ERROR });
  const c = resolveRuntime("auto", PROBE, d);
  t.is(c.runtime, "runc");
  t.is(c.notes.length, 1);
  t.is(c.notes[0]!.level, "warn");
  t.regex(c.notes[0]!.message, /runsc is registered but a container under it fails to start/);
  t.regex(c.notes[0]!.message, /root network namespace/);
  t.regex(c.notes[0]!.message, /--network=host/, "says how to fix it");
  t.notRegex(c.notes[0]!.message, /runtime: runc/, "auto already fell back: no advice to set runc");
  resolveRuntime("auto", PROBE, d);
  t.is(d.calls.probes.length, 2, "a fixed host is picked up at the next run");
  t.is(d.cached.size, 0);
});

test("runtime runsc that cannot start a container is a RunError with the error and the how-to", (t) => {
  const err = t.throws(() => resolveRuntime("runsc", PROBE, fakeDaemon(["runc", "runsc"], { probe: NETNS_ERROR })));
  t.true(pulumi.RunError.isInstance(err));
  t.regex(err!.message, /runsc was requested but a container under it fails to start: OCI runtime start failed/);
  t.regex(err!.message, /daemon\.json/);
  t.regex(err!.message, /runtime: runc/);
});

test("the probe image cannot be had: the listing is trusted, with a warning, and nothing is remembered", (t) => {
  const d = fakeDaemon(["runc", "runsc"], { probe: { ok: false, cause: "image", error: "docker pull cbtest/base:x: pull access denied" } });
  const c = resolveRuntime("auto", PROBE, d);
  t.is(c.runtime, "runsc");
  t.deepEqual(c.notes.map((n) => n.level), ["warn", "info"]);
  t.regex(c.notes[0]!.message, /could not be tried \(docker pull/);
  t.is(d.cached.size, 0);
});

test("no runsc listed: auto is runc (the stack output says so); runsc is a RunError naming what the daemon offers and how to install", (t) => {
  const d = fakeDaemon(["io.containerd.runc.v2", "runc"]);
  const c = resolveRuntime("auto", PROBE, d);
  t.deepEqual(c, { runtime: "runc", notes: [] });
  t.deepEqual(d.calls.probes, [], "nothing to probe");
  const err = t.throws(() => resolveRuntime("runsc", PROBE, d));
  t.regex(err!.message, /runsc was requested but the Docker daemon offers: io\.containerd\.runc\.v2, runc/);
  t.regex(err!.message, /apt-get install runsc/);
  t.regex(err!.message, /systemctl reload docker/);
});

test("Docker Desktop: auto is runc with an info line saying so; runsc points at a Linux host", (t) => {
  const d = fakeDaemon(["io.containerd.runc.v2", "runc"], { operatingSystem: "Docker Desktop" });
  const c = resolveRuntime("auto", PROBE, d);
  t.is(c.runtime, "runc");
  t.deepEqual(c.notes, [{ level: "info", message: "runtime auto: Docker Desktop offers no gVisor (runsc); the agent runs under runc" }]);
  const err = t.throws(() => resolveRuntime("runsc", PROBE, d));
  t.regex(err!.message, /this is Docker Desktop, whose VM offers no gVisor/);
  t.regex(err!.message, /Linux host/);
  t.notRegex(err!.message, /apt-get/, "no Linux install advice for Desktop's VM");
});

test("no daemon answer: auto is runc with a warning; runsc is a RunError", (t) => {
  const d = fakeDaemon(undefined);
  const c = resolveRuntime("auto", PROBE, d);
  t.is(c.runtime, "runc");
  t.is(c.notes[0]!.level, "warn");
  t.regex(c.notes[0]!.message, /`docker info` failed/);
  t.regex(t.throws(() => resolveRuntime("runsc", PROBE, d))!.message, /could not be asked/);
});

test("a probe's success holds for one daemon, kernel, version and runsc entry", (t) => {
  const base = linux({ runc: {}, runsc: { path: "/usr/bin/runsc" } });
  const k = probeKey(base, "runsc");
  t.is(probeKey(linux({ runsc: { path: "/usr/bin/runsc" }, runc: {} }), "runsc"), k, "the other runtimes do not matter");
  t.not(probeKey(linux({ runc: {}, runsc: { path: "/usr/bin/runsc", runtimeArgs: ["--network=host"] } }), "runsc"), k, "runtimeArgs");
  t.not(probeKey({ ...base, kernel: "6.19.0" }, "runsc"), k, "kernel (the netns check depends on it)");
  t.not(probeKey({ ...base, id: "B" }, "runsc"), k, "another daemon");
  t.not(probeKey({ ...base, serverVersion: "28.0.0" }, "runsc"), k, "another dockerd");
  // the cache of one daemon does not vouch for a changed entry
  const cached = new Set([k]);
  const d = fakeDaemon({ runc: {}, runsc: { path: "/usr/bin/runsc", runtimeArgs: ["--network=host"] } }, { kernel: "6.18.0", cached });
  resolveRuntime("auto", PROBE, d);
  t.is(d.calls.probes.length, 1);
});

test("chooseRuntime without a probe answer trusts the listing (callers that know)", (t) => {
  t.is(chooseRuntime("auto", linux({ runc: {}, runsc: {} }), undefined).runtime, "runsc");
  t.is(chooseRuntime("runsc", linux({ runc: {}, runsc: {} }), undefined).runtime, "runsc");
});

test("the probe cache file: successes survive a new process, the newest kept; an unreadable file is an empty cache", (t) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "cb-unit-probes-")), "sub", "runtime-probes.json");
  const a = fileCache(file, 2);
  t.false(a.has("k1"));
  a.add("k1");
  t.true(fileCache(file, 2).has("k1"));
  a.add("k2");
  a.add("k3");
  const b = fileCache(file, 2);
  t.true(b.has("k3"));
  t.is(Object.keys(JSON.parse(fs.readFileSync(file, "utf8")).ok).length, 2);
  fs.writeFileSync(file, "{not json");
  t.false(fileCache(file).has("k3"));
  fileCache(file).add("k4");
  t.true(fileCache(file).has("k4"), "rewritten");
});

test("the program probes with the manifest's base image and the stack's name prefix, and puts the choice on the agent", async (t) => {
  const d = fakeDaemon(["runc", "runsc"]);
  const c = await captureBottle({ namePrefix: "cbprobe-", program: { runtimeSeams: d } });
  t.deepEqual(d.calls.probes, [{ runtime: "runsc", image: DEFAULT_IMAGES.BASE_IMAGE, namePrefix: "cbprobe-" }]);
  t.is(c.container("agent").inputs.runtime, "runsc");
  const broken = await captureBottle({ program: { runtimeSeams: fakeDaemon(["runc", "runsc"], { probe: NETNS_ERROR }) } });
  t.is(broken.container("agent").inputs.runtime, "runc");
  t.is(broken.outputs.runtime, "runc");
});
