// The agent's OCI runtime. `auto` means gVisor (runsc) when the daemon has a runsc that can
// start a container, else runc. A runtime listed by `docker info` is not proof that it runs:
// dockerd lists any entry of daemon.json, also one whose binary is missing, and Debian's runsc
// (release-20221219) registered plainly on a 6.11+ kernel fails every container ("cannot run
// with network enabled in root network namespace"). So the first `preview`/`up` against a
// daemon starts one throw-away container under runsc (≈1 s; the base image is pulled if it is
// not local — the agent image build needs it anyway) and remembers a success per daemon,
// kernel and runsc entry (CLAUDE_BOTTLE_CACHE/runtime-probes.json); a failure is not
// remembered, so a fixed host is picked up at the next run. The decision is chooseRuntime
// (pure); the I/O sits behind RuntimeSeams.
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { RUNTIMES } from "./manifest/schema.ts";
import { NOBODY_UID } from "../contracts/docker.ts";
import { dockerCliEnv, type DockerEndpoint } from "../store/docker.ts";
import { writeFileAtomic } from "../store/io.ts";
import { cacheHome } from "../store/layout.ts";

export type RequestedRuntime = (typeof RUNTIMES)[number];
export type AgentRuntime = "runc" | "runsc";

export const RUNSC_HOWTO =
  'install gVisor (gVisor\'s apt repository, or Debian/Ubuntu: `apt-get install runsc`), register it in /etc/docker/daemon.json as {"runtimes":{"runsc":{"path":"/usr/bin/runsc"}}} and reload dockerd (`systemctl reload docker` or SIGHUP); a runsc older than mid-2024 on a 6.11+ kernel also needs "runtimeArgs":["--network=host"] (README, "gVisor") — or set `runtime: runc` in the manifest';

/** `docker info` .OperatingSystem of Docker Desktop (macOS, Windows, Linux): its VM offers runc only. */
export const DOCKER_DESKTOP = "Docker Desktop";

/** What the runtime choice needs from `docker info`. */
export interface DaemonFacts {
  /** Registered runtimes: name → the entry as the daemon shows it (path, runtimeArgs). */
  runtimes: Record<string, unknown>;
  operatingSystem: string;
  /** Daemon id, kernel and version: a probe's answer holds for these (and the runsc entry). */
  id: string;
  kernel: string;
  serverVersion: string;
}

/** A throw-away container under runsc: it ran, runsc failed it, or the probe image was not to be had. */
export type ProbeResult = { ok: true; cached?: boolean } | { ok: false; cause: "runtime" | "image"; error: string };

export interface RuntimeChoice {
  runtime: AgentRuntime;
  /** What `preview`/`up` should tell the operator about the choice. */
  notes: { level: "info" | "warn"; message: string }[];
}

/**
 * The decision. runc is taken as given; runsc only when the daemon lists it AND the probe
 * started a container under it (or could not be run for want of the image: then the listing is
 * trusted, with a warning). `runtime: runsc` that cannot be honoured is a RunError saying why.
 */
export function chooseRuntime(requested: RequestedRuntime, daemon: DaemonFacts | undefined, probe: ProbeResult | undefined): RuntimeChoice {
  if (requested === "runc") return { runtime: "runc", notes: [] };
  const fail = (why: string, fix = RUNSC_HOWTO): never => {
    throw new pulumi.RunError(`runtime: runsc was requested but ${why}. To fix: ${fix}`);
  };
  const runc = (level: "info" | "warn", message: string): RuntimeChoice => ({ runtime: "runc", notes: [{ level, message: `runtime auto: ${message}; the agent runs under runc` }] });
  if (!daemon) {
    if (requested === "runsc") fail("the Docker daemon could not be asked (`docker info` failed)");
    return runc("warn", "`docker info` failed, so gVisor (runsc) could not be looked for");
  }
  const desktop = daemon.operatingSystem === DOCKER_DESKTOP;
  if (!("runsc" in daemon.runtimes)) {
    const offers = `the Docker daemon offers: ${Object.keys(daemon.runtimes).sort().join(", ")}`;
    if (desktop) {
      const fix = "use a Linux host (or VM) running Docker Engine with gVisor registered, or set `runtime: runc` in the manifest";
      if (requested === "runsc") fail(`this is Docker Desktop, whose VM offers no gVisor (${offers})`, fix);
      return runc("info", "Docker Desktop offers no gVisor (runsc)");
    }
    if (requested === "runsc") fail(offers);
    // the common case on Linux: the stack output `runtime` says runc, no line on every preview
    return { runtime: "runc", notes: [] };
  }
  if (probe && !probe.ok && probe.cause === "runtime") {
    if (requested === "runsc") fail(`a container under it fails to start: ${probe.error}`);
    return runc("warn", `runsc is registered but a container under it fails to start (${probe.error}). To fix: ${RUNSC_HOWTO.replace(/ — or set .*$/, "")}`);
  }
  const notes: RuntimeChoice["notes"] = [];
  if (probe && !probe.ok) notes.push({ level: "warn", message: `runtime ${requested}: runsc is registered but could not be tried (${probe.error}); trusting \`docker info\`` });
  notes.push({ level: "info", message: `runtime ${requested}: the agent runs under gVisor (runsc)${probe?.ok ? (probe.cached ? "; it started a container on this daemon before" : "; a probe container started under it") : ""}` });
  return { runtime: "runsc", notes };
}

/** The I/O chooseRuntime's inputs come from. */
export interface RuntimeSeams {
  info(): DaemonFacts | undefined;
  /** Start a throw-away container from `image` under `runtime`, named with `namePrefix`. */
  probe(runtime: AgentRuntime, image: string, namePrefix: string): ProbeResult;
  /** Probe successes already seen, by probeKey. */
  cache: { has(key: string): boolean; add(key: string): void };
}

/** The daemon, kernel and runsc entry a probe's success holds for. */
export function probeKey(daemon: DaemonFacts, runtime: AgentRuntime): string {
  const facts = [daemon.id, daemon.serverVersion, daemon.kernel, runtime, daemon.runtimes[runtime] ?? null];
  return crypto.createHash("sha256").update(JSON.stringify(facts)).digest("hex").slice(0, 32);
}

/** Ask the daemon (never for `runc`), probe runsc when it is listed and not known to work, decide. */
export function resolveRuntime(requested: RequestedRuntime, probe: { image: string; namePrefix: string }, seams: RuntimeSeams = dockerSeams()): RuntimeChoice {
  if (requested === "runc") return chooseRuntime(requested, undefined, undefined);
  const daemon = seams.info();
  let result: ProbeResult | undefined;
  if (daemon && "runsc" in daemon.runtimes) {
    const key = probeKey(daemon, "runsc");
    if (seams.cache.has(key)) result = { ok: true, cached: true };
    else {
      result = seams.probe("runsc", probe.image, probe.namePrefix);
      if (result.ok) seams.cache.add(key);
    }
  }
  return chooseRuntime(requested, daemon, result);
}

// --- the Docker CLI and a cache file: the real seams -----------------------------------------

const docker = (args: string[], timeoutMs: number, endpoint?: DockerEndpoint) => {
  const r = spawnSync("docker", args, { timeout: timeoutMs, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...(endpoint ? { env: dockerCliEnv(endpoint) } : {}) });
  // the daemon's answer, not the CLI's "Run 'docker run --help'" tail
  const lines = `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().split("\n").filter(Boolean);
  const why = (lines.find((l) => /Error response from daemon|^docker: /.test(l)) ?? lines.pop() ?? "").replace(/^docker: /, "");
  return { ok: r.status === 0, stdout: r.stdout ?? "", error: r.error ? `${r.error.message}${why ? `: ${why}` : ""}` : why || `docker ${args[0]} exited ${r.status}` };
};

/** What `docker info` says about the engine at `endpoint` (default: the docker CLI's own). */
export function daemonFacts(endpoint?: DockerEndpoint): DaemonFacts | undefined {
  const r = docker(["info", "--format", "{{json .}}"], 15_000, endpoint);
  if (!r.ok) return undefined;
  try {
    const i = JSON.parse(r.stdout);
    return { runtimes: i.Runtimes ?? {}, operatingSystem: String(i.OperatingSystem ?? ""), id: String(i.ID ?? ""), kernel: String(i.KernelVersion ?? ""), serverVersion: String(i.ServerVersion ?? "") };
  } catch {
    return undefined;
  }
}

/** `docker run --rm` of `true` under the runtime, confined like the agent (no network, no capabilities, nobody). */
export function probeContainer(runtime: AgentRuntime, image: string, namePrefix: string, endpoint?: DockerEndpoint): ProbeResult {
  if (!docker(["image", "inspect", "--format", "{{.Id}}", image], 15_000, endpoint).ok) {
    const pull = docker(["pull", "--quiet", image], 300_000, endpoint);
    if (!pull.ok) return { ok: false, cause: "image", error: `docker pull ${image}: ${pull.error}` };
  }
  const name = `${namePrefix}runtime-probe-${crypto.randomBytes(4).toString("hex")}`;
  const run = docker(
    ["run", "--rm", "--name", name, "--runtime", runtime, "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true", "--user", String(NOBODY_UID), "--entrypoint", "true", image],
    120_000,
    endpoint,
  );
  if (run.ok) return { ok: true };
  docker(["rm", "-f", name], 30_000, endpoint); // --rm does not cover a CLI killed by the timeout
  return { ok: false, cause: "runtime", error: run.error };
}

/** Probe successes in CLAUDE_BOTTLE_CACHE/runtime-probes.json; an unreadable file is an empty cache. */
export function fileCache(file = path.join(cacheHome(), "runtime-probes.json"), keep = 32) {
  const read = (): Record<string, string> => {
    try {
      const v = JSON.parse(fs.readFileSync(file, "utf8"));
      return v && typeof v.ok === "object" ? v.ok : {};
    } catch {
      return {};
    }
  };
  return {
    has: (key: string) => key in read(),
    add: (key: string) => {
      // newest first (the new key leads its millisecond), the oldest dropped
      const entries: [string, string][] = [[key, new Date().toISOString()], ...Object.entries(read()).filter(([k]) => k !== key)];
      const ok = Object.fromEntries(entries.sort((a, b) => b[1].localeCompare(a[1])).slice(0, keep));
      try {
        writeFileAtomic(file, JSON.stringify({ ok }, null, 2) + "\n");
      } catch {
        // a cache that cannot be written only costs the next run another probe
      }
    },
  };
}

/** The real seams, against the engine at `endpoint` (a fleet's host; default: the docker CLI's own). */
export const dockerSeams = (endpoint?: DockerEndpoint): RuntimeSeams => ({
  info: () => daemonFacts(endpoint),
  probe: (runtime, image, namePrefix) => probeContainer(runtime, image, namePrefix, endpoint),
  cache: fileCache(),
});
