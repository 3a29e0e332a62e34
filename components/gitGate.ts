import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { hardened } from "./container.ts";
import {
  GIT_GATE_CONFIG_FILE,
  GIT_GATE_KEYS_DIR,
  GIT_GATE_PORT,
  parseGitGateConfig,
} from "../contracts/git-gate.ts";
import { GIT_GATE_UID, agentGitConfig, mergeExtraHosts } from "../contracts/git-gate-agent.ts";
import type { GitUpstreamSpec } from "./manifest/load.ts";
import { ConfigError } from "../contracts/validation.ts";

export const GIT_GATE_ALIAS = "git-gate";

export interface GitGateArgs {
  identity: string;
  containerName: string;
  image: pulumi.Input<string>;
  internalNetwork: pulumi.Input<string>;
  outsideNetwork: pulumi.Input<string>;
  upstreams: GitUpstreamSpec[];
  /** Bottle-level host entries (merged with each upstream's extra_hosts). */
  hosts: Record<string, string>;
  /** Key path of the bottle in the manifest, e.g. bottles.dev (for errors). */
  manifestPath: string;
  manifestFile: string;
}

/** git-gate: the agent's only git path. Mirrors fetched on demand, pushes scanned then forwarded over SSH. */
export class GitGate extends pulumi.ComponentResource {
  readonly container: docker.Container;
  /** The agent's gitconfig: insteadOf rewrites of every upstream URL to the gate. */
  readonly agentGitConfig: string;

  constructor(name: string, args: GitGateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:sidecar:GitGate", name, {}, opts);
    const config = parseGitGateConfig({
      version: 1,
      upstreams: args.upstreams.map((u) => ({ name: u.name, url: u.url, known_host_key: u.known_host_key })),
    });
    const hosts = mergeExtraHosts(args.upstreams, `${args.manifestPath}.git.upstreams`, args.manifestFile);
    for (const [host, ip] of Object.entries(args.hosts)) {
      const clash = hosts.find((h) => h.host === host);
      if (clash && clash.ip !== ip) {
        throw new ConfigError(args.manifestFile, [`${args.manifestPath}.extra_hosts.${host}: ${ip} conflicts with ${clash.ip} from a git upstream's extra_hosts`]);
      }
      if (!clash) hosts.push({ host, ip });
    }
    const uid = String(GIT_GATE_UID);
    this.container = new docker.Container(
      name,
      {
        ...hardened(args.identity, "git-gate"),
        name: args.containerName,
        image: args.image,
        user: `${uid}:${uid}`,
        networksAdvanced: [
          { name: args.internalNetwork, aliases: [GIT_GATE_ALIAS] },
          { name: args.outsideNetwork },
        ],
        hosts,
        uploads: [
          { file: GIT_GATE_CONFIG_FILE, content: JSON.stringify(config, null, 2) + "\n", permissions: "0644" },
          ...args.upstreams.map((u) => ({
            file: `${GIT_GATE_KEYS_DIR}/${u.name}`,
            content: pulumi.secret(u.identityKey),
            permissions: "0600",
            owner: uid,
            group: uid,
          })),
        ],
        healthcheck: {
          tests: ["CMD", "/usr/local/lib/git-gate/healthcheck.sh"],
          interval: "5s",
          timeout: "3s",
          startPeriod: "10s",
          retries: 3,
        },
      },
      { parent: this },
    );
    this.agentGitConfig = agentGitConfig(args.upstreams, GIT_GATE_ALIAS, GIT_GATE_PORT);
    this.registerOutputs({ containerName: this.container.name });
  }
}
