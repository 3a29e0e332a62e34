// A fleet: one Pulumi program, many bottles, over several Docker hosts. Each host gets its own
// docker provider (a DockerHost, handed to its bottles through component opts, and from them to
// every child through `parent`); each bottle its own subnets from a pool the program owns (SubnetPool), so
// a host holds as many bottles as its memory allows, not Docker's default pools' ~10. Approvals
// persist per bottle (`claude-bottle:routes.<identity>`, …), and `npx bottle pending` lists the
// whole fleet, with the host each bottle is on, from any machine whose docker contexts reach
// the hosts (README, "Remote hosts and fleets").
import * as pulumi from "@pulumi/pulumi";
import path from "node:path";
import { Bottle, ConfigError, DockerHost, SubnetPool, baseImagesOf, daemonPlatform, dockerSeams, loadManifest, resolveBottle, resolveRuntime, stackConfigKeys, type SubnetPoolArgs } from "claude-bottle";

/** One Docker host of the fleet and the agents it runs (each agent in its own bottle). */
export interface FleetHost {
  /** Names the host's docker.Provider; shown nowhere else. */
  name: string;
  /** The docker provider's settings for it: `host` (unix://, ssh://user@box, tcp://box:2376), `certPath` for TLS, or a `context`. Default: the provider's own default (DOCKER_HOST, else the local socket). */
  docker?: { host?: string; certPath?: string; context?: string };
  /** Agents (manifest agent names) that run on this host. */
  agents: string[];
}

export interface FleetOptions {
  /** The bottle manifest (every agent it names is looked up there). */
  manifest: string;
  hosts: FleetHost[];
  /**
   * The pool the bottles' networks come from. A bottle's slot is its position in the fleet, host
   * by host, agent by agent: append agents, never reorder them (a moved slot replaces networks).
   */
  subnets: SubnetPoolArgs;
  /** Prefix of every Docker name. Default "claude-bottle-". */
  namePrefix?: string;
  /** Where token_refs are read (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
  /** Where bottle.json says the project is (approvals persist into its stack config). Default: the working directory. */
  projectDir?: string;
}

export function fleetProgram(opts: FleetOptions) {
  const config = new pulumi.Config("claude-bottle");
  const pool = new SubnetPool(opts.subnets);
  const loaded = loadManifest(opts.manifest);
  const seen = new Set<string>();
  let slot = 0;
  const bottles: Record<string, Record<string, pulumi.Input<unknown>>> = {};
  try {
    for (const host of opts.hosts) {
      const provider = new DockerHost(host.name, host.docker ?? {});
      const endpoint = host.docker && (host.docker.host || host.docker.context) ? host.docker : undefined;
      const platform = daemonPlatform(endpoint);
      for (const agent of host.agents) {
        // this bottle's approvals persist under its own keys (`claude-bottle:routes.<agent>`, …)
        const keys = stackConfigKeys(agent);
        const spec = resolveBottle(loaded, {
          agent,
          env: opts.env,
          overrides: {
            routes: config.getObject<unknown>(keys.egress_routes),
            pipelockAllowlist: config.getObject<unknown>(keys.pipelock_allowlist),
            serverTools: config.getObject<unknown>(keys.server_tools),
          },
        });
        if (seen.has(spec.identity)) throw new ConfigError(opts.manifest, [`agent ${agent} is in the fleet twice (bottle ${spec.identity})`]);
        seen.add(spec.identity);
        const choice = resolveRuntime(spec.bottle.runtime, { image: baseImagesOf(spec.bottle.images).BASE_IMAGE, namePrefix: opts.namePrefix ?? "claude-bottle-" }, dockerSeams(endpoint));
        for (const n of choice.notes) void (n.level === "warn" ? pulumi.log.warn(`${spec.identity}: ${n.message}`) : pulumi.log.info(`${spec.identity}: ${n.message}`));
        const bottle = new Bottle(
          spec.identity,
          {
            spec,
            runtime: choice.runtime,
            namePrefix: opts.namePrefix,
            subnets: pool.at(slot++),
            platform,
            capabilityDockerfile: config.get(keys.capability) || undefined,
            configKeys: keys,
            stack: { project: pulumi.getProject(), stack: pulumi.getStack(), projectDir: path.resolve(opts.projectDir ?? ".") },
          },
          { provider },
        );
        bottles[spec.identity] = { host: host.name, attach: bottle.attachCommand, containers: bottle.containerNames, networks: bottle.networkNames, stateContainer: bottle.stateContainer };
      }
    }
  } catch (err) {
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
  return { bottles };
}
