import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { hardened } from "./container.ts";
import { NOBODY_UID } from "../contracts/docker.ts";
import { LiveConfigFile } from "./liveConfig.ts";
import { PIPELOCK_CA_DIR, PIPELOCK_CONFIG_FILE, PIPELOCK_PORT, pipelockConfigToYaml } from "../contracts/pipelock.ts";
import { pipelockConfigFor, renderPolicyYaml, type LivePolicy } from "../contracts/policy.ts";
import type { RoutesDocument } from "../contracts/routes.ts";
import type { BottleState } from "./state.ts";

export const PIPELOCK_ALIAS = "pipelock";
/** pipelock runs unprivileged; its CA key is uploaded owned by this user, mode 0600. A bare uid (see NOBODY_UID). */
export const PIPELOCK_USER = String(NOBODY_UID);
const TRUST_DIR = "/etc/claude-bottle/pipelock-trust";

export interface PipelockArgs {
  identity: string;
  containerName: string;
  image: pulumi.Input<string>;
  linkNetwork: pulumi.Input<string>;
  outsideNetwork: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
  caKeyPem: pulumi.Input<string>;
  /** The egress routes: their hosts are allowed through. Live: changes rewrite the config file only. */
  routes: RoutesDocument;
  /** The live policy: hosts allowed besides the route hosts, SSRF exemptions. Live as well. */
  policy: LivePolicy;
  /** Extra CAs pipelock trusts when it talks to intercepted upstreams. */
  extraCaPems: string[];
  hosts: { host: string; ip: string }[];
  /** The bottle's state: pipelock.yaml and policy.yaml are written through it; pipelock mounts its config volume read-only. */
  state: BottleState;
  runtime?: string;
}

/** pipelock: the last hop. Strict allowlist, DLP on bodies, SSRF guard. */
export class Pipelock extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly config: LiveConfigFile;
  readonly policy: LiveConfigFile;
  readonly url: string;

  constructor(name: string, args: PipelockArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:sidecar:Pipelock", name, {}, opts);
    // Approvals start from the policy document, never from pipelock.yaml: that is only ever rendered.
    const through = { stateContainer: args.state.container.name, docker: args.state.endpoint };
    this.policy = new LiveConfigFile(`${name}-policy`, { path: args.state.layout.policyFile, content: renderPolicyYaml(args.policy), kind: "live-policy", ...through }, { parent: this });
    this.config = new LiveConfigFile(
      `${name}-config`,
      {
        path: args.state.layout.pipelockFile,
        content: pipelockConfigToYaml(pipelockConfigFor(args.routes, args.policy)),
        kind: "pipelock-config",
        ...through,
        reloadContainer: args.containerName,
      },
      { parent: this },
    );
    this.container = new docker.Container(
      name,
      {
        ...hardened(args.identity, "pipelock"),
        name: args.containerName,
        image: args.image,
        user: PIPELOCK_USER,
        runtime: args.runtime,
        command: ["run", "--config", PIPELOCK_CONFIG_FILE],
        networksAdvanced: [
          { name: args.linkNetwork, aliases: [PIPELOCK_ALIAS] },
          { name: args.outsideNetwork },
        ],
        hosts: args.hosts,
        envs: [`SSL_CERT_DIR=/etc/ssl/certs:${TRUST_DIR}`, "HOME=/tmp"],
        mounts: args.state.mountsFor("pipelock"),
        tmpfs: { "/tmp": "rw,size=64m" },
        uploads: [
          { file: `${PIPELOCK_CA_DIR}/ca.pem`, content: args.caCertPem, permissions: "0644" },
          { file: `${PIPELOCK_CA_DIR}/ca-key.pem`, content: pulumi.secret(args.caKeyPem), permissions: "0600", owner: PIPELOCK_USER, group: PIPELOCK_USER },
          ...args.extraCaPems.map((pem, i) => ({ file: `${TRUST_DIR}/extra-${i}.pem`, content: pem, permissions: "0644" })),
        ],
        healthcheck: {
          tests: ["CMD", "/usr/local/bin/pipelock", "healthcheck", "--addr", `127.0.0.1:${PIPELOCK_PORT}`],
          interval: "5s",
          timeout: "4s",
          startPeriod: "2s",
          retries: 3,
        },
      },
      { parent: this, dependsOn: [this.config] },
    );
    this.url = `http://${PIPELOCK_ALIAS}:${PIPELOCK_PORT}`;
    this.registerOutputs({ containerName: this.container.name, configSha256: this.config.sha256 });
  }
}
