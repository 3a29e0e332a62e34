import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { hardened, httpHealthcheck } from "./container.ts";
import { LiveConfigFile } from "./liveConfig.ts";
import { EGRESS_HEALTH_PATH, EGRESS_PORT, EgressSettingsSchema, egressSettingsToEnv } from "../contracts/egress.ts";
import { NOBODY_UID } from "../contracts/docker.ts";
import { TOOL_NAMES } from "../contracts/proposals.ts";
import { renderRoutesYaml, type RoutesDocument } from "../contracts/routes.ts";
import type { BottleState } from "./state.ts";

export const EGRESS_ALIAS = "egress";
const TRUST_DIR = "/etc/claude-bottle/egress-trust";

export interface EgressArgs {
  identity: string;
  containerName: string;
  image: pulumi.Input<string>;
  internalNetwork: pulumi.Input<string>;
  linkNetwork: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
  caKeyPem: pulumi.Input<string>;
  /** pipelock's CA: egress trusts it on the upstream leg (pipelock intercepts). */
  upstreamCaPem: pulumi.Input<string>;
  extraCaPems: string[];
  upstreamProxyUrl: string;
  /** Live: a change rewrites routes.yaml and egress reloads; the container stays. */
  routes: RoutesDocument;
  /** token_ref → value. Secrets: they reach only this container's env. */
  tokens: Record<string, string>;
  superviseEnabled: boolean;
  /** The bottle's state: routes.yaml is written through it, and egress mounts its volumes. */
  state: BottleState;
  runtime?: string;
}

/** egress: the agent's only HTTP(S) way out. MITM with the bottle's CA, routes, credential injection. */
export class Egress extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly routesFile: LiveConfigFile;
  readonly proxyUrl: string;

  constructor(name: string, args: EgressArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:sidecar:Egress", name, {}, opts);
    const defaults = EgressSettingsSchema.parse({});
    const uid = String(NOBODY_UID);
    this.routesFile = new LiveConfigFile(
      `${name}-routes`,
      {
        path: args.state.layout.routesFile,
        content: renderRoutesYaml(args.routes),
        kind: "egress-routes",
        stateContainer: args.state.container.name,
        docker: args.state.endpoint,
        reloadContainer: args.containerName,
      },
      { parent: this },
    );
    const trustFiles = [`${TRUST_DIR}/pipelock-ca.pem`, ...args.extraCaPems.map((_, i) => `${TRUST_DIR}/extra-${i}.pem`)];
    // Listen address, routes file and audit log: the schema's defaults, which are the mounts below.
    const settingsEnv = egressSettingsToEnv({
      EGRESS_UPSTREAM_PROXY: args.upstreamProxyUrl,
      EGRESS_UPSTREAM_CA_FILES: trustFiles.join(":"),
      ...(args.superviseEnabled ? { EGRESS_SUPERVISE_TOOL: TOOL_NAMES.egress_routes } : {}),
    });
    const tokenEnv = Object.keys(args.tokens)
      .sort()
      .map((ref) => pulumi.secret(`${ref}=${args.tokens[ref]}`));
    this.container = new docker.Container(
      name,
      {
        ...hardened(args.identity, "egress"),
        name: args.containerName,
        image: args.image,
        user: uid,
        runtime: args.runtime,
        networksAdvanced: [
          { name: args.internalNetwork, aliases: [EGRESS_ALIAS] },
          { name: args.linkNetwork },
        ],
        envs: [...settingsEnv, ...tokenEnv],
        mounts: args.state.mountsFor("egress"),
        tmpfs: { "/tmp": "rw,size=64m" },
        uploads: [
          { file: defaults.EGRESS_CA_CERT_FILE, content: args.caCertPem, permissions: "0644" },
          { file: defaults.EGRESS_CA_KEY_FILE, content: pulumi.secret(args.caKeyPem), permissions: "0600", owner: uid, group: uid },
          { file: trustFiles[0]!, content: args.upstreamCaPem, permissions: "0644" },
          ...args.extraCaPems.map((pem, i) => ({ file: trustFiles[i + 1]!, content: pem, permissions: "0644" })),
        ],
        healthcheck: httpHealthcheck(`http://127.0.0.1:${EGRESS_PORT}${EGRESS_HEALTH_PATH}`),
      },
      { parent: this, dependsOn: [this.routesFile] },
    );
    this.proxyUrl = `http://${EGRESS_ALIAS}:${EGRESS_PORT}`;
    this.registerOutputs({ containerName: this.container.name, routesSha256: this.routesFile.sha256 });
  }
}
