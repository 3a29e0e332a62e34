import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type { DockerEndpoint } from "../store/docker.ts";

export interface DockerHostArgs {
  /** The daemon: unix:///var/run/docker.sock, ssh://user@box (the docker CLI and Docker on the box), tcp://box:2376 (with certPath). Default: DOCKER_HOST, else the local socket. */
  host?: string;
  /** A docker CLI context instead of `host` (`docker context ls`). */
  context?: string;
  /** Directory with ca.pem, cert.pem and key.pem, for tcp:// with TLS. */
  certPath?: string;
  /** Extra ssh options for ssh:// (the provider's; the docker CLI reads ~/.ssh/config instead). */
  sshOpts?: string[];
}

/**
 * A Docker host for bottles: a docker.Provider that also keeps its settings as plain values.
 * Give it to a Bottle (opts `provider`): every docker resource of the bottle goes to this host,
 * and the bottle's live files and approvals reach its state container and sidecars there with
 * the same settings (store/docker.ts). A plain docker.Provider works too, but its settings can
 * only be read back as outputs, which a preview does not know: every preview then shows the live
 * files as replaced (nothing is, at `up`).
 */
export class DockerHost extends docker.Provider {
  /** What the docker CLI needs to reach this host (components/state.ts dockerEndpointOf). */
  readonly claudeBottleEndpoint: DockerEndpoint;

  constructor(name: string, args: DockerHostArgs = {}, opts?: pulumi.ResourceOptions) {
    super(name, args, opts);
    this.claudeBottleEndpoint = Object.fromEntries(Object.entries({ host: args.host, context: args.context, certPath: args.certPath }).filter(([, v]) => v)) as DockerEndpoint;
  }
}
