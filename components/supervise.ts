import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { hardened, httpHealthcheck } from "./container.ts";
import { NOBODY_UID } from "../contracts/docker.ts";
import { SUPERVISE_HEALTH_PATH, SUPERVISE_MCP_PATH, SUPERVISE_PORT, superviseSettingsToEnv } from "../contracts/supervise.ts";
import type { BottleState } from "./state.ts";

export const SUPERVISE_ALIAS = "supervise";

export interface SuperviseArgs {
  identity: string;
  containerName: string;
  image: pulumi.Input<string>;
  internalNetwork: pulumi.Input<string>;
  /** The bottle's state: supervise writes proposals and its audit log there, and reads the live files (never writes them). */
  state: BottleState;
  runtime?: string;
}

/** supervise: the MCP server through which the agent asks the operator for more access. */
export class Supervise extends pulumi.ComponentResource {
  readonly container: docker.Container;
  /** What the agent registers with `claude mcp add --transport http`. */
  readonly mcpUrl: string;

  constructor(name: string, args: SuperviseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:sidecar:Supervise", name, {}, opts);
    this.container = new docker.Container(
      name,
      {
        ...hardened(args.identity, "supervise"),
        name: args.containerName,
        image: args.image,
        user: String(NOBODY_UID),
        readOnly: true,
        runtime: args.runtime,
        networksAdvanced: [{ name: args.internalNetwork, aliases: [SUPERVISE_ALIAS] }],
        // Listen address and every path: the schema's defaults, which are the mounts below.
        envs: superviseSettingsToEnv({ SUPERVISE_BOTTLE: args.identity }),
        mounts: args.state.mountsFor("supervise"),
        tmpfs: { "/tmp": "rw,size=16m" },
        healthcheck: httpHealthcheck(`http://127.0.0.1:${SUPERVISE_PORT}${SUPERVISE_HEALTH_PATH}`),
      },
      { parent: this },
    );
    this.mcpUrl = `http://${SUPERVISE_ALIAS}:${SUPERVISE_PORT}${SUPERVISE_MCP_PATH}`;
    this.registerOutputs({ containerName: this.container.name, mcpUrl: this.mcpUrl });
  }
}
