// The stack program as a function: read stack config, load and resolve the manifest,
// declare the Bottle, return the stack outputs. index.ts calls it; tests call it under
// mocks with other configs. A user mistake becomes a RunError: a message, no stack trace.
import * as pulumi from "@pulumi/pulumi";
import path from "node:path";
import { Bottle, DEFAULT_NAME_PREFIX } from "./bottle.ts";
import { DEFAULT_MANIFEST_FILE, loadManifest, resolveBottle } from "./manifest/load.ts";
import { resolveRuntime, type RuntimeSeams } from "./runtime.ts";
import { baseImagesOf, daemonPlatform } from "./images.ts";
import { stackConfigKeys } from "../contracts/proposals.ts";
import { ConfigError } from "../contracts/validation.ts";

export interface ProgramOptions {
  /** Overrides of what the stack config says (tests, embedding programs). */
  manifest?: string;
  agent?: string;
  stateDir?: string;
  namePrefix?: string;
  env?: NodeJS.ProcessEnv;
  /** Per-bottle agent Dockerfile (default: stack config claude-bottle:capabilityDockerfile). */
  capabilityDockerfile?: string;
  /** Remove the agent's volumes on destroy (default: stack config claude-bottle:purgeOnDestroy, false). */
  purgeOnDestroy?: boolean;
  /** The daemon's platform for image builds ("linux/amd64"); default: ask `docker version`. */
  daemonPlatform?: string;
  /** Where the stack's Pulumi.yaml lives (bottle.json tells `bottle approve` where to persist); default: the working directory. */
  projectDir?: string;
  /** Where the runtime choice asks the daemon and probes runsc (default: the docker CLI, a cache file). */
  runtimeSeams?: RuntimeSeams;
}

export function bottleProgram(options: ProgramOptions = {}) {
  const stackConfig = new pulumi.Config("claude-bottle");
  // Pulumi.yaml gives every declared key the default "" (a declared key without a default is
  // required by the CLI): empty means unset here.
  const config = {
    get: (key: string) => stackConfig.get(key) || undefined,
    getObject: <T>(key: string) => stackConfig.getObject<T>(key),
    getBoolean: (key: string) => stackConfig.getBoolean(key),
  };
  const keys = stackConfigKeys();
  let bottle: Bottle;
  try {
    const manifestFile = options.manifest ?? config.get("manifest") ?? DEFAULT_MANIFEST_FILE;
    const loaded = loadManifest(manifestFile);
    const spec = resolveBottle(loaded, {
      agent: options.agent ?? config.get("agent"),
      overrides: {
        routes: config.getObject<unknown>(keys.egress_routes),
        pipelockAllowlist: config.getObject<unknown>(keys.pipelock_allowlist),
        serverTools: config.getObject<unknown>(keys.server_tools),
      },
      env: options.env,
    });
    const namePrefix = options.namePrefix ?? config.get("namePrefix");
    const choice = resolveRuntime(spec.bottle.runtime, { image: baseImagesOf(spec.bottle.images).BASE_IMAGE, namePrefix: namePrefix ?? DEFAULT_NAME_PREFIX }, options.runtimeSeams);
    for (const n of choice.notes) void (n.level === "warn" ? pulumi.log.warn(n.message) : pulumi.log.info(n.message));
    bottle = new Bottle(spec.identity, {
      spec,
      runtime: choice.runtime,
      stateDir: options.stateDir ?? config.get("stateDir"),
      namePrefix,
      capabilityDockerfile: options.capabilityDockerfile ?? config.get(keys.capability),
      // `pulumi config set claude-bottle:purgeOnDestroy true && pulumi up`, then `pulumi destroy` also removes them.
      retainVolumes: !(options.purgeOnDestroy ?? config.getBoolean("purgeOnDestroy") ?? false),
      stack: { project: pulumi.getProject(), stack: pulumi.getStack(), projectDir: path.resolve(options.projectDir ?? ".") },
      platform: options.daemonPlatform ?? daemonPlatform(),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
  return {
    identity: bottle.identity,
    runtime: bottle.runtime,
    containers: bottle.containerNames,
    networks: bottle.networkNames,
    caFingerprints: bottle.caFingerprints,
    attach: bottle.attachCommand,
    resume: pulumi.interpolate`${bottle.attachCommand} --continue`,
    agentVolumes: bottle.agentVolumes,
    images: bottle.images,
    stateDir: bottle.stateDir,
    stateContainer: bottle.stateContainer,
    stateVolumes: bottle.stateVolumes,
  };
}
