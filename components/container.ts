import type * as docker from "@pulumi/docker";
import { labels, type Role } from "../contracts/labels.ts";

/** Settings every bottle container shares: least privilege, labelled, restarted on crash. */
export function hardened(identity: string, role: Role): Partial<docker.ContainerArgs> {
  return {
    capabilities: { drops: ["ALL"] },
    securityOpts: ["no-new-privileges:true"],
    privileged: false,
    restart: "unless-stopped",
    labels: labels(identity, role),
    logDriver: "json-file",
    logOpts: { "max-size": "10m", "max-file": "3" },
  };
}

/**
 * Docker's healthcheck for an http://<IPv4>:<port>/<path> URL inside the container: healthy iff
 * the answer's status is 200. Bash builtins only (/dev/tcp, printf, read): one short-lived bash
 * per probe, where `node -e fetch(…)` started a whole Node runtime every 5 s — ~7% of a core per
 * idle sidecar on a 2-core host (bench/RESULTS.md, "bottle"). bash is Essential in Debian, so
 * every sidecar image based on BASE_IMAGE has it.
 */
export function httpHealthcheck(url: string): docker.types.input.ContainerHealthcheck {
  const u = new URL(url);
  const target = `${u.pathname}${u.search}`;
  // Everything lands in a bash -c string and a printf format: allow no metacharacter (nor %).
  if (u.protocol !== "http:" || !/^\d{1,3}(\.\d{1,3}){3}$/.test(u.hostname) || !/^\/[A-Za-z0-9_./?=&-]*$/.test(target)) {
    throw new Error(`httpHealthcheck: ${url} must be http://<IPv4>[:port]/path with a plain path`);
  }
  const port = u.port || "80";
  return {
    tests: ["CMD", "bash", "-c", `exec 3<>/dev/tcp/${u.hostname}/${port} && printf 'GET ${target} HTTP/1.0\\r\\n\\r\\n' >&3 && read -r -t 2 _ code _ <&3 && [ "$code" = 200 ]`],
    interval: "5s",
    timeout: "3s",
    startPeriod: "2s",
    retries: 3,
  };
}
