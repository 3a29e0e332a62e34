import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { hardened } from "./container.ts";
import {
  GIT_GATE_CONFIG_FILE,
  GIT_GATE_HEALTHCHECK,
  GIT_GATE_KEYS_DIR,
  GIT_GATE_UID,
  agentGitConfig,
  parseGitGateConfig,
} from "../contracts/git-gate.ts";
import type { GitUpstreamSpec } from "./manifest/load.ts";

export const GIT_GATE_ALIAS = "git-gate";

export interface GitGateArgs {
  identity: string;
  containerName: string;
  image: pulumi.Input<string>;
  internalNetwork: pulumi.Input<string>;
  outsideNetwork: pulumi.Input<string>;
  upstreams: GitUpstreamSpec[];
  /** The gate's /etc/hosts entries: the bottle's and every upstream's, merged (and checked) by the manifest loader. */
  hosts: { host: string; ip: string }[];
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
      upstreams: args.upstreams.map((u) => ({ name: u.name, url: u.url, known_host_key: u.known_host_key, protected_refs: u.protected_refs, allow_force_push: u.allow_force_push, allow_delete: u.allow_delete })),
    });
    const uid = String(GIT_GATE_UID);
    this.container = new docker.Container(
      name,
      {
        ...hardened(args.identity, "git-gate"),
        name: args.containerName,
        image: args.image,
        user: uid,
        networksAdvanced: [
          { name: args.internalNetwork, aliases: [GIT_GATE_ALIAS] },
          { name: args.outsideNetwork },
        ],
        hosts: args.hosts,
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
          tests: ["CMD", GIT_GATE_HEALTHCHECK],
          interval: "5s",
          timeout: "3s",
          startPeriod: "10s",
          retries: 3,
        },
      },
      { parent: this },
    );
    this.agentGitConfig = agentGitConfig(args.upstreams, GIT_GATE_ALIAS);
    this.registerOutputs({ containerName: this.container.name });
  }
}
