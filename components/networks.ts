import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { INHIBIT_IPV4 } from "../contracts/docker.ts";
import { labels, type NetworkRole } from "../contracts/labels.ts";
import { parseCidr, type BottleSubnets } from "./subnets.ts";

export interface BottleNetworksArgs {
  identity: string;
  /** Prefix of every docker name this bottle creates. */
  namePrefix: string;
  /** Each network's subnet (a SubnetPool hands them out). Default: Docker's default address pools pick (about 10 bottles per host). */
  subnets?: BottleSubnets;
}

/**
 * Three networks per bottle:
 * - internal: the agent and the sidecars it talks to. `internal` (no NAT) and no host
 *   address on the bridge (`inhibit_ipv4`), so neither the internet nor the Docker host
 *   answers; --internal alone still lets containers reach the host's gateway address.
 * - link: egress ↔ pipelock only, built the same way; the agent is not on it, so it cannot
 *   reach pipelock and bypass the egress rules.
 * - outside: pipelock and git-gate reach the internet through it.
 */
export class BottleNetworks extends pulumi.ComponentResource {
  readonly internal: docker.Network;
  readonly link: docker.Network;
  readonly outside: docker.Network;

  constructor(name: string, args: BottleNetworksArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:network:BottleNetworks", name, {}, opts);
    const ipam = (role: NetworkRole) => {
      const subnet = args.subnets?.[role];
      if (subnet === undefined) return {};
      parseCidr(subnet, `${role} subnet`);
      return { ipamConfigs: [{ subnet }] };
    };
    const closed = (role: NetworkRole) =>
      new docker.Network(
        `${name}-${role}`,
        {
          name: `${args.namePrefix}${args.identity}-${role}`,
          driver: "bridge",
          internal: true,
          ipv6: false,
          options: { [INHIBIT_IPV4]: "true" },
          ...ipam(role),
          labels: labels(args.identity, role),
        },
        { parent: this },
      );
    this.internal = closed("internal");
    this.link = closed("link");
    this.outside = new docker.Network(
      `${name}-outside`,
      {
        name: `${args.namePrefix}${args.identity}-outside`,
        driver: "bridge",
        internal: false,
        ipv6: false,
        ...ipam("outside"),
        labels: labels(args.identity, "outside"),
      },
      { parent: this },
    );
    this.registerOutputs({ internal: this.internal.name, link: this.link.name, outside: this.outside.name });
  }
}
