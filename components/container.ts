import type * as docker from "@pulumi/docker";
import { labels, type Role } from "./labels.ts";

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

/** Docker's healthcheck for a URL inside the container, using the image's node. */
export function httpHealthcheck(url: string): docker.types.input.ContainerHealthcheck {
  return {
    tests: ["CMD", "node", "-e", `fetch(${JSON.stringify(url)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`],
    interval: "5s",
    timeout: "3s",
    startPeriod: "2s",
    retries: 3,
  };
}

/** user:group for sidecars that write into the operator's state directory. */
export function operatorUser(): { uid: string; gid: string; user: string } {
  const uid = String(process.getuid?.() ?? 1000);
  const gid = String(process.getgid?.() ?? 1000);
  return { uid, gid, user: `${uid}:${gid}` };
}
