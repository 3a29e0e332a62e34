// Files in the bottle's host state directory that sidecars watch (routes, pipelock config),
// that approvals start from (the live policy) or that the operator CLI reads (bottle.json).
// Written with the store's atomic write at `pulumi up` by a dynamic provider, so editing a
// route changes this resource only — never a container. A changed file a running sidecar
// loads (routes → egress, pipelock.yaml → pipelock) is confirmed from the sidecar's log
// (store/reload.ts): the update succeeds only when the sidecar names the bytes written. A
// change pipelock refuses on reload only (strict mode: any "downgrade") restarts pipelock;
// anything else puts the previous file back and fails the update with the sidecar's reason.
// The provider's code is serialized into the state: everything it calls is plain functions.
import * as pulumi from "@pulumi/pulumi";
import fs from "node:fs";
import path from "node:path";
import { sha256 } from "../contracts/hash.ts";
import { writeFileAtomic } from "../store/io.ts";
import { dockerSidecar, liveTarget, writeConfirmed } from "../store/reload.ts";

export const LIVE_CONFIG_KINDS = ["egress-routes", "pipelock-config", "live-policy", "bottle-record"] as const;
export type LiveConfigKind = (typeof LIVE_CONFIG_KINDS)[number];

export interface LiveConfigFileArgs {
  /** Absolute host path. */
  path: pulumi.Input<string>;
  content: pulumi.Input<string>;
  kind: LiveConfigKind;
  /** Octal string, e.g. "0644". */
  mode?: pulumi.Input<string>;
  /**
   * The container that loads this file (kinds egress-routes and pipelock-config): after an update
   * it must confirm it loaded the new bytes, or the update fails. Not running: it loads the file
   * when it starts.
   */
  reloadContainer?: pulumi.Input<string>;
  /** Directories to create (bind-mount sources must exist before a container starts). */
  ensureDirs?: pulumi.Input<string[]>;
}

interface Inputs {
  path: string;
  content: string;
  kind: LiveConfigKind;
  mode?: string;
  reloadContainer?: string;
  ensureDirs?: string[];
}

const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Inputs) {
    write(inputs);
    return { id: inputs.path, outs: { ...inputs, sha256: sha256(inputs.content) } };
  },
  async diff(_id: string, olds: Inputs, news: Inputs) {
    const changes = olds.content !== news.content || String(olds.ensureDirs) !== String(news.ensureDirs) || olds.mode !== news.mode || olds.reloadContainer !== news.reloadContainer;
    return { changes, replaces: olds.path !== news.path ? ["path"] : [], deleteBeforeReplace: false };
  },
  async update(_id: string, olds: Inputs, news: Inputs) {
    if (!news.reloadContainer || olds.content === news.content || (news.kind !== "egress-routes" && news.kind !== "pipelock-config")) {
      write(news);
      return { outs: { ...news, sha256: sha256(news.content) } };
    }
    for (const d of news.ensureDirs ?? []) fs.mkdirSync(d, { recursive: true });
    const mode = parseInt(news.mode ?? "0644", 8);
    // what the sidecar runs now is what is on disk (an approval may have rewritten it since the last `up`)
    const previous = fs.existsSync(news.path) ? fs.readFileSync(news.path, "utf8") : olds.content;
    const outcome = await writeConfirmed(
      liveTarget(news.kind === "pipelock-config" ? "pipelock" : "egress", dockerSidecar(news.reloadContainer)),
      { name: path.basename(news.path), content: news.content, previous, write: async (text) => writeFileAtomic(news.path, text, mode) },
    );
    if (!outcome.ok) throw new Error(`${outcome.detail}. The change was not applied; fix the cause and run \`pulumi up\` again.`);
    // the engine shows what a dynamic provider prints: the operator reads that pipelock was restarted
    if (outcome.status === "restarted") console.log(`claude-bottle: ${outcome.detail}`);
    // and the state keeps what the last update did (`pulumi stack export`)
    return { outs: { ...news, sha256: sha256(news.content), reload: outcome.detail } };
  },
  // Deleting leaves the file: state (routes, records) outlives the containers.
  async delete() {},
};

function write(inputs: Inputs): void {
  for (const d of inputs.ensureDirs ?? []) fs.mkdirSync(d, { recursive: true });
  writeFileAtomic(inputs.path, inputs.content, parseInt(inputs.mode ?? "0644", 8));
}

export class LiveConfigFile extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;
  constructor(name: string, args: LiveConfigFileArgs, opts?: pulumi.CustomResourceOptions) {
    super(provider, name, { sha256: undefined, mode: "0644", reloadContainer: undefined, ensureDirs: [], ...args }, opts);
  }
}
