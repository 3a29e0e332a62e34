import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { hardened } from "./container.ts";
import { sidecarImage, type BuildArgName } from "./images.ts";
import { labels } from "../contracts/labels.ts";
import { AGENT_PLACEHOLDER_TOKEN, type RoutesDocument } from "../contracts/egress.ts";
import type { WorkspaceTar } from "../store/workspace.ts";

export const AGENT_HOME = "/home/agent";
/** The agent's copy of the manifest's workspace; a volume of its own. */
export const AGENT_WORKSPACE = "/workspace";
export const AGENT_CA_FILE = "/etc/claude-bottle/ca/egress-ca.pem";
/** Where the agent image's entrypoint finds what the bottle gives it. */
export const AGENT_PATHS = {
  prompt: "/etc/claude-bottle/agent/prompt.md",
  gitconfig: "/etc/claude-bottle/agent/gitconfig",
  settings: "/etc/claude-bottle/agent/agent.json",
  /** The one-time workspace copy (a tar the entrypoint extracts into an empty volume). */
  workspaceTar: "/etc/claude-bottle/agent/workspace.tar",
  /** skills/<name>/SKILL.md, copied into ~/.claude/skills/<name>/ at start. */
  skillsDir: "/etc/claude-bottle/agent/skills",
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
  /** Volume for /workspace; default <homeVolumeName minus "-home">-workspace. */
  workspaceVolumeName?: string;
  /** The workspace snapshot to seed /workspace with at first start (see workspaceSnapshot). */
  workspace?: WorkspaceTar;
  /** Claude Code skills: name → SKILL.md text. */
  skills?: Record<string, string>;
  /** Keep the home and workspace volumes on `pulumi destroy` (default true). */
  retainVolumes?: boolean;
  runtime?: string;
}

const SKILL_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Files the bottle hands the agent; the image's entrypoint consumes them. */
export function agentUploads(
  args: Pick<AgentArgs, "egressCaPem" | "prompt" | "gitConfig" | "superviseUrl" | "model" | "workspace" | "skills" | "containerName">,
): docker.types.input.ContainerUpload[] {
  const uploads: docker.types.input.ContainerUpload[] = [
    { file: AGENT_CA_FILE, content: args.egressCaPem, permissions: "0644" },
    { file: AGENT_PATHS.prompt, content: args.prompt, permissions: "0644" },
  ];
  if (args.gitConfig) uploads.push({ file: AGENT_PATHS.gitconfig, content: args.gitConfig, permissions: "0644" });
  uploads.push({
    file: AGENT_PATHS.settings,
    content:
      JSON.stringify(
        { superviseUrl: args.superviseUrl ?? null, model: args.model ?? null, containerName: args.containerName, workspace: AGENT_WORKSPACE },
        null,
        2,
      ) + "\n",
    permissions: "0644",
  });
  for (const [name, text] of Object.entries(args.skills ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!SKILL_NAME_RE.test(name)) throw new pulumi.RunError(`agent skill name ${JSON.stringify(name)}: expected lowercase letters, digits, ".", "_" or "-"`);
    uploads.push({ file: `${AGENT_PATHS.skillsDir}/${name}/SKILL.md`, content: text, permissions: "0644" });
  }
  if (args.workspace) {
    // By path + hash: a big repo never lands in the Pulumi state; same bytes, same hash, no diff.
    uploads.push({ file: AGENT_PATHS.workspaceTar, source: args.workspace.file, sourceHash: args.workspace.sha256, permissions: "0644" });
  }
  return uploads;
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
  const roles = new Set(args.routes.routes.flatMap((r) => (r.role ? [r.role] : [])));
  if (roles.has("claude_code_oauth")) env.CLAUDE_CODE_OAUTH_TOKEN = AGENT_PLACEHOLDER_TOKEN;
  if (roles.has("anthropic_api_key")) env.ANTHROPIC_API_KEY = AGENT_PLACEHOLDER_TOKEN;
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

export interface AgentImageArgs {
  /** The bottle's standard agent image (built from sidecars/agent/Dockerfile). */
  standard: docker.Image;
  /**
   * Host path of the per-bottle Dockerfile from an approved capability change (stack
   * config `claude-bottle:capabilityDockerfile`, written by `bottle approve`). Unset: the
   * standard image.
   */
  capabilityDockerfile?: string;
  /** docker image name (repo:tag) for the capability build. */
  imageName: string;
  baseImages: Record<BuildArgName, string>;
}

/**
 * The image the agent runs. After an approved capability change it is built from the
 * per-bottle Dockerfile, with the directory holding it as build context and two build
 * args: AGENT_IMAGE (the standard agent image, by tag; the recommended `FROM`, which keeps
 * Claude Code, the entrypoint and the `agent` user) and BASE_IMAGE. AGENT_IMAGE_ID (the
 * standard image's id) is passed too, so a rebuilt standard image rebuilds this one.
 * Only the agent container depends on it: the one `pulumi up` replaces the agent
 * container, keeps its volumes, and leaves every sidecar alone.
 */
export function agentImage(name: string, args: AgentImageArgs, opts: pulumi.CustomResourceOptions): docker.Image {
  if (!args.capabilityDockerfile) return args.standard;
  const file = path.resolve(args.capabilityDockerfile);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new pulumi.RunError(
      `claude-bottle:capabilityDockerfile names ${file}, which does not exist. Restore it from the bottle's state directory ` +
        "(capability/<proposal id>.Dockerfile), or go back to the standard agent image: `pulumi config rm claude-bottle:capabilityDockerfile`",
    );
  }
  return sidecarImage(
    name,
    {
      role: "agent",
      imageName: args.imageName,
      baseImages: args.baseImages,
      context: path.dirname(file),
      dockerfile: file,
      extraArgs: { AGENT_IMAGE: args.standard.imageName, AGENT_IMAGE_ID: args.standard.repoDigest },
    },
    { ...opts, dependsOn: [args.standard] },
  );
}

/** Where a bottle keeps the snapshot of its workspace (one per source directory). */
export function workspaceSnapshotFile(stateDir: string, workspaceDir: string): string {
  const key = crypto.createHash("sha256").update(path.resolve(workspaceDir)).digest("hex").slice(0, 12);
  return path.join(stateDir, "agent", `workspace-${key}.tar`);
}

/** The agent: Claude Code on the internal network only, holding no credential. */
export class Agent extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly home: docker.Volume;
  readonly workspace: docker.Volume;
  readonly attachCommand: pulumi.Output<string>;

  constructor(name: string, args: AgentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:agent:Agent", name, {}, opts);
    const retain = args.retainVolumes ?? true;
    // The transcript (~/.claude, ~/.claude.json) lives here; it survives replacement and,
    // unless the operator asked to purge, `pulumi destroy`.
    this.home = new docker.Volume(
      `${name}-home`,
      { name: args.homeVolumeName, labels: labels(args.identity, "agent") },
      { parent: this, retainOnDelete: retain },
    );
    // The agent's copy of the workspace: seeded once, then the agent's own.
    this.workspace = new docker.Volume(
      `${name}-workspace`,
      { name: args.workspaceVolumeName ?? `${args.homeVolumeName.replace(/-home$/, "")}-workspace`, labels: labels(args.identity, "agent") },
      { parent: this, retainOnDelete: retain },
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
        uploads: agentUploads(args),
        volumes: [
          { volumeName: this.home.name, containerPath: AGENT_HOME },
          { volumeName: this.workspace.name, containerPath: AGENT_WORKSPACE },
        ],
        mustRun: true,
      },
      { parent: this },
    );
    this.attachCommand = this.container.name.apply((n) => `docker exec -it ${n} claude`);
    this.registerOutputs({
      containerName: this.container.name,
      attachCommand: this.attachCommand,
      volumes: { home: this.home.name, workspace: this.workspace.name },
    });
  }
}
