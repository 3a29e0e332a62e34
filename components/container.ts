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

/**
 * The container `user` for sidecars that write into the operator's state directory: a bare uid.
 * Not "uid:gid": an upload with owner/group makes the docker provider copy with the daemon's
 * CopyUIDGID option, and the daemon (Docker 20.10, moby daemon/archive_tarcopyoptions_unix.go)
 * resolves the container's `user` with the host's passwd/getent, where "1000:1000" is no name:
 * `getent unable to find entry "1000:1000" in passwd database`.
 */
export function operatorUser(): { uid: string; gid: string; user: string } {
  const uid = String(process.getuid?.() ?? 1000);
  const gid = String(process.getgid?.() ?? 1000);
  return { uid, gid, user: uid };
}
