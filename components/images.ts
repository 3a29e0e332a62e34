import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Role } from "../contracts/labels.ts";
import { dockerCliEnv, type DockerEndpoint } from "../store/docker.ts";

export const SIDECARS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "sidecars");

export type BuildArgName = "BASE_IMAGE" | "PIPELOCK_IMAGE" | "GITLEAKS_IMAGE";

/**
 * Upstream base images, pinned by digest (components/upstream-images.json says where each
 * digest was seen). Every Dockerfile takes them as build args, so air-gapped users (and our
 * hermetic tests) pass local ones through the manifest's `images`.
 */
export const DEFAULT_IMAGES: Readonly<Record<BuildArgName, string>> = (() => {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "upstream-images.json");
  const pinned = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  const pick = (k: BuildArgName) => {
    const v = pinned[k];
    if (typeof v !== "string" || !v.includes("@sha256:")) throw new Error(`${file}: ${k} must be an image pinned by digest`);
    return v;
  };
  return Object.freeze({ BASE_IMAGE: pick("BASE_IMAGE"), PIPELOCK_IMAGE: pick("PIPELOCK_IMAGE"), GITLEAKS_IMAGE: pick("GITLEAKS_IMAGE") });
})();

/** The manifest's `images` over the pinned defaults. */
export function baseImagesOf(images: { base?: string; pipelock?: string; gitleaks?: string }): Record<BuildArgName, string> {
  return {
    BASE_IMAGE: images.base ?? DEFAULT_IMAGES.BASE_IMAGE,
    PIPELOCK_IMAGE: images.pipelock ?? DEFAULT_IMAGES.PIPELOCK_IMAGE,
    GITLEAKS_IMAGE: images.gitleaks ?? DEFAULT_IMAGES.GITLEAKS_IMAGE,
  };
}

/** Which build args each sidecar's Dockerfile takes. */
export const IMAGE_BUILD_ARGS: Record<Role, BuildArgName[]> = {
  agent: ["BASE_IMAGE"],
  egress: ["BASE_IMAGE"],
  pipelock: ["BASE_IMAGE", "PIPELOCK_IMAGE"],
  "git-gate": ["BASE_IMAGE", "GITLEAKS_IMAGE"],
  supervise: ["BASE_IMAGE"],
  state: ["BASE_IMAGE"],
};

export interface SidecarImageArgs {
  role: Role;
  /** docker image name (repo:tag) to give the local build. */
  imageName: string;
  baseImages: Record<BuildArgName, string>;
  /** Extra build args (e.g. the Claude Code version). */
  extraArgs?: Record<string, pulumi.Input<string>>;
  /** Build context; default sidecars/<role>. */
  context?: string;
  /** Dockerfile path; default <context>/Dockerfile. */
  dockerfile?: string;
  /** Target platform, e.g. "linux/amd64". Default: the docker provider picks its own (and warns). */
  platform?: string;
}

/** A local image built from sidecars/<role>/Dockerfile; never pushed. */
export function sidecarImage(name: string, args: SidecarImageArgs, opts: pulumi.CustomResourceOptions): docker.Image {
  const context = args.context ?? path.join(SIDECARS_DIR, args.role);
  const dockerfile = args.dockerfile ?? path.join(context, "Dockerfile");
  const needsBundle = fs.existsSync(path.join(SIDECARS_DIR, args.role, "main.ts"));
  if (needsBundle && !args.context && !fs.existsSync(path.join(context, "dist", "main.mjs"))) {
    throw new pulumi.RunError(`sidecars/${args.role}/dist/main.mjs is missing: run \`npm install\` (or \`npm run build:sidecars\`) in the claude-bottle project first`);
  }
  const buildArgs: Record<string, pulumi.Input<string>> = { ...args.extraArgs };
  for (const arg of IMAGE_BUILD_ARGS[args.role]) buildArgs[arg] = args.baseImages[arg];
  return new docker.Image(
    name,
    {
      imageName: args.imageName,
      skipPush: true,
      build: { context, dockerfile, args: buildArgs, ...(args.platform ? { platform: args.platform } : {}) },
    },
    opts,
  );
}

/**
 * The Docker daemon's platform ("linux/amd64"), or undefined when it cannot be asked. Images are
 * built for it: unset, the docker provider builds for the machine running Pulumi and warns on
 * every preview — wrong when DOCKER_HOST points at a host of another architecture.
 */
export function daemonPlatform(endpoint?: DockerEndpoint): string | undefined {
  try {
    const out = execFileSync("docker", ["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], { timeout: 10_000, stdio: ["ignore", "pipe", "ignore"], ...(endpoint ? { env: dockerCliEnv(endpoint) } : {}) });
    const platform = out.toString().trim();
    return /^[a-z0-9]+\/[a-z0-9]+$/.test(platform) ? platform : undefined;
  } catch {
    return undefined;
  }
}
