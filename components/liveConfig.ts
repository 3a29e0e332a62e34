// Files in the bottle's host state directory that sidecars watch (routes, pipelock config),
// that approvals start from (the live policy) or that the operator CLI reads (bottle.json).
// Written with the store's atomic write at `pulumi up` by a dynamic provider, so editing a
// route changes this resource only — never a container. After writing, a best-effort SIGHUP
// (see reloadCommand) tells the watching container to reload now.
import * as pulumi from "@pulumi/pulumi";
import fs from "node:fs";
import childProcess from "node:child_process";
import { reloadCommand } from "../contracts/docker.ts";
import { sha256 } from "../contracts/hash.ts";
import { writeFileAtomic } from "../store/io.ts";

export const LIVE_CONFIG_KINDS = ["egress-routes", "pipelock-config", "live-policy", "bottle-record"] as const;
export type LiveConfigKind = (typeof LIVE_CONFIG_KINDS)[number];

export interface LiveConfigFileArgs {
  /** Absolute host path. */
  path: pulumi.Input<string>;
  content: pulumi.Input<string>;
  kind: LiveConfigKind;
  /** Octal string, e.g. "0644". */
  mode?: pulumi.Input<string>;
  /** Container to SIGHUP after an update (best effort: it may not exist yet). */
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
  async update(_id: string, _olds: Inputs, news: Inputs) {
    write(news);
    if (news.reloadContainer) await hangUp(news.reloadContainer);
    return { outs: { ...news, sha256: sha256(news.content) } };
  },
  // Deleting leaves the file: state (routes, records) outlives the containers.
  async delete() {},
};

function write(inputs: Inputs): void {
  for (const d of inputs.ensureDirs ?? []) fs.mkdirSync(d, { recursive: true });
  writeFileAtomic(inputs.path, inputs.content, parseInt(inputs.mode ?? "0644", 8));
}

function hangUp(container: string): Promise<void> {
  return new Promise((resolve) => {
    childProcess.execFile("docker", reloadCommand(container), { timeout: 10_000 }, () => resolve());
  });
}

export class LiveConfigFile extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;
  constructor(name: string, args: LiveConfigFileArgs, opts?: pulumi.CustomResourceOptions) {
    super(provider, name, { sha256: undefined, mode: "0644", reloadContainer: undefined, ensureDirs: [], ...args }, opts);
  }
}
