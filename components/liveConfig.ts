// Files in the bottle's state volumes that sidecars watch (routes, pipelock config), that
// approvals start from (the live policy) or that the operator CLI reads (bottle.json). Written
// at `pulumi up` by a dynamic provider through the bottle's state container (store/docker.ts:
// `docker exec`, temp file + rename inside the volume), on whichever Docker engine the bottle's
// provider targets — so editing a route changes this resource only, never a container. A changed
// file a running sidecar loads (routes → egress, pipelock.yaml → pipelock) is confirmed from the
// sidecar's log (store/reload.ts): the update succeeds only when the sidecar names the bytes
// written. A change pipelock refuses on reload only (strict mode: any "downgrade") restarts
// pipelock; anything else puts the previous file back and fails the update with the sidecar's
// reason. The provider's code is serialized into the state: everything it calls is plain
// functions and whole built-in modules.
import * as pulumi from "@pulumi/pulumi";
import path from "node:path";
import { sha256 } from "../contracts/hash.ts";
import { dockerIo, type DockerEndpoint } from "../store/docker.ts";
import { dockerSidecar, liveTarget, writeConfirmed } from "../store/reload.ts";

export const LIVE_CONFIG_KINDS = ["egress-routes", "pipelock-config", "live-policy", "bottle-record"] as const;
export type LiveConfigKind = (typeof LIVE_CONFIG_KINDS)[number];

export interface LiveConfigFileArgs {
  /** The file's path inside the state container (store/layout.ts stateLayout()). */
  path: pulumi.Input<string>;
  content: pulumi.Input<string>;
  kind: LiveConfigKind;
  /** Octal string. Default "0644". */
  mode?: pulumi.Input<string>;
  /** The state container the file is written through. */
  stateContainer: pulumi.Input<string>;
  /** The Docker engine of the state container and the sidecars (components/state.ts dockerEndpointOf). */
  docker: pulumi.Input<DockerEndpoint>;
  /**
   * The container that loads this file (kinds egress-routes and pipelock-config): after an update
   * it must confirm it loaded the new bytes, or the update fails. Not running: it loads the file
   * when it starts. Default: none (nothing reloads it).
   */
  reloadContainer?: pulumi.Input<string>;
}

interface Inputs {
  path: string;
  content: string;
  kind: LiveConfigKind;
  mode?: string;
  stateContainer: string;
  docker: DockerEndpoint;
  reloadContainer?: string;
}

const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Inputs) {
    await dockerIo(inputs.stateContainer, inputs.docker).write(inputs.path, inputs.content, parseInt(inputs.mode ?? "0644", 8));
    return { id: `${inputs.stateContainer}:${inputs.path}`, outs: { ...inputs, sha256: sha256(inputs.content) } };
  },
  async diff(_id: string, olds: Inputs, news: Inputs) {
    const changes = olds.content !== news.content || olds.mode !== news.mode || olds.reloadContainer !== news.reloadContainer;
    // Another file, another state container or another engine: the file is written there anew.
    const replaces = (["path", "stateContainer", "docker"] as const).filter((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
    return { changes: changes || replaces.length > 0, replaces, deleteBeforeReplace: false };
  },
  async update(_id: string, olds: Inputs, news: Inputs) {
    const io = dockerIo(news.stateContainer, news.docker);
    const mode = parseInt(news.mode ?? "0644", 8);
    if (!news.reloadContainer || olds.content === news.content || (news.kind !== "egress-routes" && news.kind !== "pipelock-config")) {
      await io.write(news.path, news.content, mode);
      return { outs: { ...news, sha256: sha256(news.content) } };
    }
    // what the sidecar runs now is what is in the volume (an approval may have rewritten it since the last `up`)
    const previous = (await io.read(news.path)) ?? olds.content;
    const outcome = await writeConfirmed(liveTarget(news.kind === "pipelock-config" ? "pipelock" : "egress", dockerSidecar(news.reloadContainer, "docker", news.docker)), {
      name: path.posix.basename(news.path),
      content: news.content,
      previous,
      write: (text) => io.write(news.path, text, mode),
    });
    if (!outcome.ok) throw new Error(`${outcome.detail}. The change was not applied; fix the cause and run \`pulumi up\` again.`);
    // the engine shows what a dynamic provider prints: the operator reads that pipelock was restarted
    if (outcome.status === "restarted") console.log(`claude-bottle: ${outcome.detail}`);
    // and the state keeps what the last update did (`pulumi stack export`)
    return { outs: { ...news, sha256: sha256(news.content), reload: outcome.detail } };
  },
  // Deleting leaves the file: state (routes, records) outlives the containers, in its volume.
  async delete() {},
};

export class LiveConfigFile extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;
  constructor(name: string, args: LiveConfigFileArgs, opts?: pulumi.CustomResourceOptions) {
    super(provider, name, { sha256: undefined, mode: "0644", reloadContainer: undefined, ...args }, opts);
  }
}
