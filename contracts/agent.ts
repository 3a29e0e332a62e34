// What the agent image reads (sidecars/agent/entrypoint.sh and Claude Code itself): where the
// bottle puts its files, agent.json, and the container env. The Agent component writes them;
// nothing else does.
import { AGENT_PLACEHOLDER_TOKEN, type RouteRole } from "./routes.ts";
import { SYSTEM_CA_BUNDLE } from "./paths.ts";

export const AGENT_HOME = "/home/agent";
/** The agent's copy of the manifest's workspace; a volume of its own. */
export const AGENT_WORKSPACE = "/workspace";
/** The egress CA certificate; the entrypoint adds it to the system bundle. */
export const AGENT_CA_FILE = "/etc/claude-bottle/ca/egress-ca.pem";
/** Where the entrypoint finds what the bottle gives it. */
export const AGENT_PATHS = {
  prompt: "/etc/claude-bottle/agent/prompt.md",
  gitconfig: "/etc/claude-bottle/agent/gitconfig",
  settings: "/etc/claude-bottle/agent/agent.json",
  /** The one-time workspace copy (a tar the entrypoint extracts into an empty volume). */
  workspaceTar: "/etc/claude-bottle/agent/workspace.tar",
  /** skills/<name>/SKILL.md, copied into ~/.claude/skills/<name>/ at start. */
  skillsDir: "/etc/claude-bottle/agent/skills",
} as const;

/** A Claude Code skill name: lowercase letters, digits and hyphens, at most 64 characters. */
export const SKILL_NAME_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** agent.json: the two values the entrypoint reads (`json_get`). */
export function renderAgentSettings(settings: { superviseUrl?: string; containerName: string }): string {
  return JSON.stringify({ superviseUrl: settings.superviseUrl ?? null, containerName: settings.containerName }, null, 2) + "\n";
}

export interface AgentEnvInput {
  /** http://egress:<port>. */
  proxyUrl: string;
  /** Hosts reached directly, not through egress (supervise, git-gate). */
  directHosts: readonly string[];
  /** The roles of the bottle's routes: which placeholder credentials the agent holds. */
  roles: readonly RouteRole[];
  superviseUrl?: string;
  model?: string;
}

/**
 * Environment the agent gets: proxies in both cases, the CA trio, and — only when a route
 * injects that credential — a placeholder token so the client sends requests at all.
 */
export function agentEnv(args: AgentEnvInput): string[] {
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
  if (args.roles.includes("claude_code_oauth")) env.CLAUDE_CODE_OAUTH_TOKEN = AGENT_PLACEHOLDER_TOKEN;
  if (args.roles.includes("anthropic_api_key")) env.ANTHROPIC_API_KEY = AGENT_PLACEHOLDER_TOKEN;
  // Telemetry, error reports and update checks are off in every bottle (required when a
  // route injects the Anthropic credential; elsewhere egress would only refuse them).
  env.DISABLE_TELEMETRY = "1";
  env.DISABLE_ERROR_REPORTING = "1";
  env.DISABLE_AUTOUPDATER = "1";
  env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1";
  if (args.superviseUrl) env.CLAUDE_BOTTLE_SUPERVISE_URL = args.superviseUrl;
  if (args.model) env.ANTHROPIC_MODEL = args.model;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
