import * as pulumi from "@pulumi/pulumi";
import type * as docker from "@pulumi/docker";
import fs from "node:fs";
import path from "node:path";
import { Agent, agentImage } from "./agent.ts";
import { CertificateAuthority } from "./ca.ts";
import { Egress } from "./egress.ts";
import { GIT_GATE_ALIAS, GitGate } from "./gitGate.ts";
import { baseImagesOf, sidecarImage } from "./images.ts";
import { LiveConfigFile } from "./liveConfig.ts";
import { BottleNetworks } from "./networks.ts";
import { Pipelock } from "./pipelock.ts";
import { BottleState } from "./state.ts";
import { SUPERVISE_ALIAS, Supervise } from "./supervise.ts";
import type { BottleSubnets } from "./subnets.ts";
import type { BottleSpec } from "./manifest/load.ts";
import { NOBODY_UID } from "../contracts/docker.ts";
import type { Role } from "../contracts/labels.ts";
import { routeRoles } from "../contracts/routes.ts";
import { stackConfigKeys, type ProposalKind } from "../contracts/proposals.ts";
import { STATE_VOLUME_NAMES, STATE_VOLUMES, type StateVolume } from "../contracts/state.ts";
import { renderBottleRecord } from "../store/bottles.ts";
import { dockerCommand } from "../store/docker.ts";
import { bottlesHome, hostLayout } from "../store/layout.ts";
import { workspaceSnapshot, workspaceSnapshotFile } from "../store/workspace.ts";

/** What every docker name of a bottle starts with unless the stack says otherwise. */
export const DEFAULT_NAME_PREFIX = "claude-bottle-";

export interface BottleArgs {
  /** The validated, resolved manifest entry (see resolveBottle). Plain: it decides which resources exist. */
  spec: BottleSpec;
  /**
   * Directory on the machine that runs `pulumi up` for what the build reads from there: the
   * workspace snapshot and approved capability Dockerfiles. The live files, proposals and audit
   * logs live in the bottle's state volumes, on its Docker host. Default: ~/.claude-bottle/<identity>.
   */
  stateDir?: string;
  /** The subnets of the bottle's three networks, e.g. from a SubnetPool. Default: Docker's default address pools (about 10 bottles per host). */
  subnets?: BottleSubnets;
  /** Prefix of every docker name (containers, networks, volume, images). Default "claude-bottle-". */
  namePrefix?: string;
  /** The agent's OCI runtime, already chosen (see resolveRuntime). Default runc. */
  runtime?: "runc" | "runsc";
  /** Per-bottle agent Dockerfile from an approved capability change (stack config `claude-bottle:capabilityDockerfile`). */
  capabilityDockerfile?: string;
  /** Platform every image is built for, e.g. "linux/amd64" (see daemonPlatform). Default: the docker provider's choice, with its warning. */
  platform?: string;
  /** Keep the agent's home (transcript) and workspace volumes and the state volumes (audit log, proposals) on `pulumi destroy`. Default true. */
  retainVolumes?: boolean;
  /** Written into bottle.json so the operator CLI can persist approvals into this stack's config. */
  stack?: { project: string; stack: string; projectDir: string };
  /**
   * Where approvals persist in the stack config: proposal kind → key (contracts/proposals.ts
   * stackConfigKeys). Default: the one-bottle keys (`claude-bottle:routes`, …); a program of many
   * bottles passes stackConfigKeys(<a name unique in the program>, e.g. the agent) and reads its
   * overrides from there.
   */
  configKeys?: Record<ProposalKind, string>;
}

/**
 * One bottle: networks, two CAs, its state (volumes and the state container), pipelock, egress,
 * supervise (optional) and the agent. Every docker resource goes to the docker provider the
 * Bottle is given (opts `provider` or `providers`, handed to every child through `parent`), so a
 * program can place bottles on several Docker hosts.
 */
export class Bottle extends pulumi.ComponentResource {
  readonly identity: string;
  readonly containerNames: pulumi.Output<Record<string, string>>;
  readonly networkNames: pulumi.Output<Record<string, string>>;
  readonly caFingerprints: pulumi.Output<{ egress: string; pipelock: string }>;
  /** `docker exec -it <agent> claude`, with what reaches the bottle's engine (`docker -H ssh://…`, `docker --context …`). */
  readonly attachCommand: pulumi.Output<string>;
  /** The docker command line that reaches the bottle's engine ("docker" for the local one). */
  readonly dockerCommand: pulumi.Output<string>;
  /** The agent's volumes: home (transcript) and workspace. */
  readonly agentVolumes: pulumi.Output<{ home: string; workspace: string }>;
  /** Names of the images this bottle built locally; `pulumi destroy` keeps them. */
  readonly images: pulumi.Output<string[]>;
  /** The bottle's directory on the machine that runs `pulumi up` (workspace snapshot, capability Dockerfiles). */
  readonly stateDir: string;
  /** The state container (every read and write of the state volumes outside the sidecars goes through it). */
  readonly stateContainer: pulumi.Output<string>;
  /** The state volumes by what they hold (contracts/state.ts). */
  readonly stateVolumes: pulumi.Output<Record<StateVolume, string>>;
  readonly runtime: string;

  constructor(name: string, args: BottleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:index:Bottle", name, {}, opts);
    const { spec } = args;
    const prefix = args.namePrefix ?? DEFAULT_NAME_PREFIX;
    const identity = spec.identity;
    const host = hostLayout(args.stateDir ?? path.join(bottlesHome(), identity));
    const legacy = host.legacy.filter((p) => fs.existsSync(p));
    if (legacy.length) {
      void pulumi.log.warn(
        `${host.root} holds state of a claude-bottle from before the state volumes (${legacy.map((p) => path.basename(p)).join(", ")}): it is no longer read or written. ` +
          "The live files come from the manifest and the stack config (approvals were persisted there); proposals and the audit log now live in the bottle's state volumes. " +
          "Keep the old audit log as long as you need it (`bottle audit --file <dir>/audit/supervise.jsonl` verifies it), then delete those entries (README, \"Upgrading\").",
        this,
      );
    }
    const child = { parent: this };
    const containerName = (role: Role) => `${prefix}${identity}-${role}`;
    const baseImages = baseImagesOf(spec.bottle.images);
    // Behind TLS inspection, the agent image's npm install needs the same extra CAs (build stage only).
    const buildArgs: Partial<Record<Role, Record<string, string>>> = spec.extraCaPems.length ? { agent: { BUILD_EXTRA_CA_PEM: spec.extraCaPems.join("\n") } } : {};
    // Every image this bottle builds: `pulumi destroy` leaves them (the docker provider never deletes an image).
    const builtImages: docker.Image[] = [];
    const built = (img: docker.Image) => (builtImages.includes(img) ? img : (builtImages.push(img), img));
    // The state image's mount points, owned by the uid every writer runs as (sidecars/state/Dockerfile).
    buildArgs.state = { STATE_DIRS: STATE_VOLUME_NAMES.map((v) => STATE_VOLUMES[v].path).join(" "), STATE_UID: String(NOBODY_UID) };
    const image = (role: Role) =>
      built(sidecarImage(`${name}-${role}-image`, { role, imageName: `${prefix}${role}:${identity}`, baseImages, extraArgs: buildArgs[role], platform: args.platform }, child));

    const names: Record<string, string> = {
      agent: containerName("agent"),
      egress: containerName("egress"),
      pipelock: containerName("pipelock"),
      ...(spec.bottle.supervise ? { supervise: containerName("supervise") } : {}),
      ...(spec.upstreams.length ? { "git-gate": containerName("git-gate") } : {}),
      state: containerName("state"),
    };
    const record = renderBottleRecord({
      version: 2,
      identity,
      bottle: spec.bottleName,
      agent: spec.agent.name,
      stack: args.stack?.stack ?? pulumi.getStack(),
      project: args.stack?.project ?? pulumi.getProject(),
      projectDir: args.stack?.projectDir ?? process.cwd(),
      hostDir: host.root,
      containers: names,
      configKeys: args.configKeys ?? stackConfigKeys(),
    });
    const state = new BottleState(
      `${name}-state`,
      { identity, namePrefix: prefix, containerName: names.state!, image: image("state").repoDigest, retainVolumes: args.retainVolumes },
      child,
    );
    // bottle.json is written first: every sidecar starts after the state container answers.
    const stateRecord = new LiveConfigFile(
      `${name}-record`,
      { path: state.layout.record, content: record, kind: "bottle-record", stateContainer: state.container.name, docker: state.endpoint },
      child,
    );
    const afterState = { parent: this, dependsOn: [stateRecord] };

    const networks = new BottleNetworks(`${name}-net`, { identity, namePrefix: prefix, subnets: args.subnets }, child);
    const egressCa = new CertificateAuthority(`${name}-egress-ca`, { commonName: `claude-bottle egress CA (${identity})` }, child);
    const pipelockCa = new CertificateAuthority(`${name}-pipelock-ca`, { commonName: `claude-bottle pipelock CA (${identity})` }, child);

    const pipelock = new Pipelock(
      `${name}-pipelock`,
      {
        identity,
        containerName: names.pipelock!,
        image: image("pipelock").repoDigest,
        linkNetwork: networks.link.name,
        outsideNetwork: networks.outside.name,
        caCertPem: pipelockCa.certPem,
        caKeyPem: pipelockCa.privateKeyPem,
        routes: spec.routes,
        policy: spec.policy,
        extraCaPems: spec.extraCaPems,
        hosts: Object.entries(spec.bottle.extra_hosts).map(([host, ip]) => ({ host, ip })),
        state,
      },
      afterState,
    );

    const egress = new Egress(
      `${name}-egress`,
      {
        identity,
        containerName: names.egress!,
        image: image("egress").repoDigest,
        internalNetwork: networks.internal.name,
        linkNetwork: networks.link.name,
        caCertPem: egressCa.certPem,
        caKeyPem: egressCa.privateKeyPem,
        upstreamCaPem: pipelockCa.certPem,
        extraCaPems: spec.extraCaPems,
        upstreamProxyUrl: pipelock.url,
        routes: spec.routes,
        tokens: spec.tokens,
        superviseEnabled: spec.bottle.supervise,
        state,
      },
      afterState,
    );

    const supervise = spec.bottle.supervise
      ? new Supervise(
          `${name}-supervise`,
          { identity, containerName: names.supervise!, image: image("supervise").repoDigest, internalNetwork: networks.internal.name, state },
          afterState,
        )
      : undefined;

    const gitGate = spec.upstreams.length
      ? new GitGate(
          `${name}-git-gate`,
          {
            identity,
            containerName: names["git-gate"]!,
            image: image("git-gate").repoDigest,
            internalNetwork: networks.internal.name,
            outsideNetwork: networks.outside.name,
            upstreams: spec.upstreams,
            hosts: spec.gitGateHosts,
          },
          afterState,
        )
      : undefined;

    const directHosts = [...(supervise ? [SUPERVISE_ALIAS] : []), ...(gitGate ? [GIT_GATE_ALIAS] : [])];
    const agent = new Agent(
      `${name}-agent`,
      {
        identity,
        containerName: names.agent!,
        image: built(
          agentImage(
            `${name}-agent-capability-image`,
            { standard: image("agent"), capabilityDockerfile: args.capabilityDockerfile, imageName: `${prefix}agent-capability:${identity}`, baseImages, platform: args.platform },
            child,
          ),
        ).repoDigest,
        internalNetwork: networks.internal.name,
        egressCaPem: egressCa.certPem,
        proxyUrl: egress.proxyUrl,
        directHosts,
        superviseUrl: supervise?.mcpUrl,
        gitConfig: gitGate?.agentGitConfig,
        prompt: spec.agent.prompt,
        model: spec.agent.model,
        skills: spec.agent.skills,
        roles: routeRoles(spec.routes),
        homeVolumeName: `${prefix}${identity}-home`,
        workspaceVolumeName: `${prefix}${identity}-workspace`,
        workspace: spec.workspace
          ? workspaceSnapshot(spec.workspace, workspaceSnapshotFile(host.agentDir, spec.workspace), { dryRun: pulumi.runtime.isDryRun() })
          : undefined,
        retainVolumes: args.retainVolumes,
        runtime: args.runtime ?? "runc",
      },
      { parent: this, dependsOn: [egress, ...(supervise ? [supervise] : []), ...(gitGate ? [gitGate] : [])] },
    );

    this.identity = identity;
    this.runtime = args.runtime ?? "runc";
    this.stateDir = host.root;
    this.stateContainer = state.container.name;
    this.stateVolumes = state.volumeNames();
    const containers: Record<string, pulumi.Output<string>> = {
      agent: agent.container.name,
      egress: egress.container.name,
      pipelock: pipelock.container.name,
      state: state.container.name,
    };
    if (supervise) containers.supervise = supervise.container.name;
    if (gitGate) containers["git-gate"] = gitGate.container.name;
    this.containerNames = pulumi.all(containers);
    this.networkNames = pulumi.all({ internal: networks.internal.name, link: networks.link.name, outside: networks.outside.name } as Record<string, pulumi.Output<string>>);
    this.caFingerprints = pulumi.output({ egress: egressCa.sha256Fingerprint, pipelock: pipelockCa.sha256Fingerprint });
    this.dockerCommand = state.endpoint.apply(dockerCommand);
    this.attachCommand = pulumi.interpolate`${this.dockerCommand} exec -it ${agent.container.name} claude`;
    this.agentVolumes = pulumi.all([agent.home.name, agent.workspace.name]).apply(([home, workspace]) => ({ home, workspace }));
    this.images = pulumi.all(builtImages.map((i) => i.imageName));
    this.registerOutputs({
      identity: this.identity,
      containerNames: this.containerNames,
      networkNames: this.networkNames,
      caFingerprints: this.caFingerprints,
      attachCommand: this.attachCommand,
      agentVolumes: this.agentVolumes,
      images: this.images,
      stateDir: this.stateDir,
      stateContainer: this.stateContainer,
      stateVolumes: this.stateVolumes,
      runtime: this.runtime,
    });
  }
}
