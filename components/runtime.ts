import { execFileSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import type { RUNTIMES } from "./manifest/schema.ts";

export type RequestedRuntime = (typeof RUNTIMES)[number];

export const RUNSC_HOWTO =
  'install gVisor (Debian/Ubuntu: `apt-get install runsc`), register it in /etc/docker/daemon.json as {"runtimes":{"runsc":{"path":"/usr/bin/runsc"}}} and reload dockerd (`systemctl reload docker` or SIGHUP) — or set `runtime: runc` in the manifest';

/** The OCI runtime for the agent: auto → runsc when the daemon has it, else runc. */
export function chooseRuntime(requested: RequestedRuntime, daemonRuntimes: readonly string[] | undefined): "runc" | "runsc" {
  if (requested === "runc") return "runc";
  const hasRunsc = daemonRuntimes?.includes("runsc") ?? false;
  if (requested === "runsc") {
    if (!hasRunsc) {
      const seen = daemonRuntimes ? `the Docker daemon offers: ${daemonRuntimes.join(", ")}` : "the Docker daemon could not be asked (`docker info` failed)";
      throw new pulumi.RunError(`runtime: runsc was requested but ${seen}. To fix: ${RUNSC_HOWTO}`);
    }
    return "runsc";
  }
  return hasRunsc ? "runsc" : "runc";
}

/** Runtimes the local Docker daemon offers, or undefined when it cannot be asked. */
export function daemonRuntimes(): string[] | undefined {
  try {
    const out = execFileSync("docker", ["info", "--format", "{{json .Runtimes}}"], { timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] });
    return Object.keys(JSON.parse(out.toString()) ?? {}).sort();
  } catch {
    return undefined;
  }
}
