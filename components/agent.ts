import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import fs from "node:fs";
import path from "node:path";
import { hardened } from "./container.ts";
import { sidecarImage, type BuildArgName } from "./images.ts";
import { AGENT_CA_FILE, AGENT_HOME, AGENT_PATHS, AGENT_WORKSPACE, agentEnv, renderAgentSettings } from "../contracts/agent.ts";
import { labels } from "../contracts/labels.ts";
import type { RouteRole } from "../contracts/routes.ts";
import type { WorkspaceTar } from "../store/workspace.ts";

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
  /**
   * The roles of the bottle's routes (routeRoles): which placeholder credentials the agent
   * holds. Only the set matters, so route edits that keep it leave the container alone.
   */
  roles: RouteRole[];
  homeVolumeName: string;
  /** Volume for /workspace; default <homeVolumeName minus "-home">-workspace. */
  workspaceVolumeName?: string;
  /** The workspace snapshot to seed /workspace with at first start (see workspaceSnapshot). */
  workspace?: WorkspaceTar;
  /** Claude Code skills: name (SKILL_NAME_RE, checked by the manifest loader) → SKILL.md text. */
  skills?: Record<string, string>;
  /** Keep the home and workspace volumes on `pulumi destroy` (default true). */
  retainVolumes?: boolean;
  runtime?: string;
}

/** Files the bottle hands the agent; the image's entrypoint consumes them. */
export function agentUploads(
  args: Pick<AgentArgs, "egressCaPem" | "prompt" | "gitConfig" | "superviseUrl" | "workspace" | "skills" | "containerName">,
): docker.types.input.ContainerUpload[] {
  const uploads: docker.types.input.ContainerUpload[] = [
    { file: AGENT_CA_FILE, content: args.egressCaPem, permissions: "0644" },
    { file: AGENT_PATHS.prompt, content: args.prompt, permissions: "0644" },
  ];
  if (args.gitConfig) uploads.push({ file: AGENT_PATHS.gitconfig, content: args.gitConfig, permissions: "0644" });
  uploads.push({ file: AGENT_PATHS.settings, content: renderAgentSettings(args), permissions: "0644" });
  for (const [name, text] of Object.entries(args.skills ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    uploads.push({ file: `${AGENT_PATHS.skillsDir}/${name}/SKILL.md`, content: text, permissions: "0644" });
  }
  if (args.workspace) {
    // By path + hash: a big repo never lands in the Pulumi state; same bytes, same hash, no diff.
    uploads.push({ file: AGENT_PATHS.workspaceTar, source: args.workspace.file, sourceHash: args.workspace.sha256, permissions: "0644" });
  }
  return uploads;
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
  /** Target platform of the build (see daemonPlatform). Default: the provider's choice. */
  platform?: string;
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
      `claude-bottle:capabilityDockerfile names ${file}, which does not exist. Restore it from the bottle's host directory ` +
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
      platform: args.platform,
    },
    { ...opts, dependsOn: [args.standard] },
  );
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
