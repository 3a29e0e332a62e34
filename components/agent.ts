import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { hardened } from "./container.ts";
import { labels } from "./labels.ts";
import { AGENT_PLACEHOLDER_TOKEN, type RoutesDocument } from "../sidecars/egress/config.ts";

export const AGENT_HOME = "/home/agent";
export const AGENT_CA_FILE = "/etc/claude-bottle/ca/egress-ca.pem";
/** Where the agent image's entrypoint finds what the bottle gives it. */
export const AGENT_PATHS = {
  prompt: "/etc/claude-bottle/agent/prompt.md",
  gitconfig: "/etc/claude-bottle/agent/gitconfig",
  settings: "/etc/claude-bottle/agent/agent.json",
} as const;
/** The system trust bundle the agent image rebuilds at start to include the egress CA. */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export interface AgentArgs {
  identity: string;
  containerName: string;
  image: pulumi.Input<string>;
  internalNetwork: pulumi.Input<string>;
  /** The egress CA certificate (public part only). */
  egressCaPem: pulumi.Input<string>;
  proxyUrl: string;
  /** Hosts reached directly, not through egress (supervise, git-gate). */
  directHosts: string[];
  superviseUrl?: string;
  /** gitconfig with insteadOf rewrites to git-gate. */
  gitConfig?: string;
  prompt: string;
  model?: string;
  routes: RoutesDocument;
  homeVolumeName: string;
  runtime?: string;
}

/**
 * Environment the agent gets: proxies in both cases, the CA trio, and — only when a route
 * injects that credential — a placeholder token so the client sends requests at all.
 */
export function agentEnv(args: Pick<AgentArgs, "proxyUrl" | "directHosts" | "routes" | "superviseUrl" | "model">): string[] {
  const noProxy = ["localhost", "127.0.0.1", "::1", ...args.directHosts].join(",");
  const env: Record<string, string> = {
    HTTP_PROXY: args.proxyUrl,
    HTTPS_PROXY: args.proxyUrl,
    http_proxy: args.proxyUrl,
    https_proxy: args.proxyUrl,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    NODE_EXTRA_CA_CERTS: AGENT_CA_FILE,
    SSL_CERT_FILE: SYSTEM_CA_BUNDLE,
    REQUESTS_CA_BUNDLE: SYSTEM_CA_BUNDLE,
    CURL_CA_BUNDLE: SYSTEM_CA_BUNDLE,
    GIT_SSL_CAINFO: SYSTEM_CA_BUNDLE,
    HOME: AGENT_HOME,
  };
  const roles = new Set(args.routes.routes.map((r) => r.role));
  if (roles.has("claude_code_oauth")) env.CLAUDE_CODE_OAUTH_TOKEN = AGENT_PLACEHOLDER_TOKEN;
  if (roles.has("anthropic_api_key")) env.ANTHROPIC_API_KEY = AGENT_PLACEHOLDER_TOKEN;
  if (roles.size) {
    // Telemetry and update checks would only be refused by egress; don't make noise.
    env.DISABLE_TELEMETRY = "1";
    env.DISABLE_ERROR_REPORTING = "1";
    env.DISABLE_AUTOUPDATER = "1";
    env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1";
  }
  if (args.superviseUrl) env.CLAUDE_BOTTLE_SUPERVISE_URL = args.superviseUrl;
  if (args.model) env.ANTHROPIC_MODEL = args.model;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** The agent: Claude Code on the internal network only, holding no credential. */
export class Agent extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly home: docker.Volume;
  readonly attachCommand: pulumi.Output<string>;

  constructor(name: string, args: AgentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:agent:Agent", name, {}, opts);
    // The transcript (~/.claude) lives here; it survives replacement and `pulumi destroy`.
    this.home = new docker.Volume(
      `${name}-home`,
      { name: args.homeVolumeName, labels: labels(args.identity, "agent") },
      { parent: this, retainOnDelete: true },
    );
    this.container = new docker.Container(
      name,
      {
        ...hardened(args.identity, "agent"),
        name: args.containerName,
        image: args.image,
        runtime: args.runtime,
        hostname: "bottle",
        networksAdvanced: [{ name: args.internalNetwork }],
        envs: agentEnv(args),
        uploads: [
          { file: AGENT_CA_FILE, content: args.egressCaPem, permissions: "0644" },
          { file: AGENT_PATHS.prompt, content: args.prompt, permissions: "0644" },
          ...(args.gitConfig ? [{ file: AGENT_PATHS.gitconfig, content: args.gitConfig, permissions: "0644" }] : []),
          {
            file: AGENT_PATHS.settings,
            content: JSON.stringify({ superviseUrl: args.superviseUrl ?? null, model: args.model ?? null }, null, 2) + "\n",
            permissions: "0644",
          },
        ],
        volumes: [{ volumeName: this.home.name, containerPath: AGENT_HOME }],
        mustRun: true,
      },
      { parent: this },
    );
    this.attachCommand = this.container.name.apply((n) => `docker exec -it ${n} claude`);
    this.registerOutputs({ containerName: this.container.name, attachCommand: this.attachCommand });
  }
}
