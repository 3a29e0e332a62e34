import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { hardened } from "./container.ts";
import { DOCKER_TYPES, NOBODY_UID } from "../contracts/docker.ts";
import { labels, type Role } from "../contracts/labels.ts";
import { STATE_COMMAND, STATE_VOLUMES, STATE_VOLUME_NAMES, stateMountsOf, type StateVolume } from "../contracts/state.ts";
import { defaultEndpoint, type DockerEndpoint } from "../store/docker.ts";
import { stateLayout, type StateLayout } from "../store/layout.ts";

/**
 * The Docker engine a resource's docker provider targets, in the provider's own settings: the
 * explicit provider the resource got (opts `provider`/`providers`, inherited through `parent`) —
 * a DockerHost's plain settings, or a plain docker.Provider's read back as outputs — else the
 * default provider's stack config (`docker:host`, `docker:context`, `docker:certPath`), else what
 * that provider falls back to (defaultEndpoint). TLS material given inline
 * (caMaterial/certMaterial/keyMaterial) is refused: the docker CLI, which reaches the state
 * container and the sidecars' logs, takes it only as files (certPath).
 */
export function dockerEndpointOf(resource: pulumi.Resource, env: NodeJS.ProcessEnv = process.env): pulumi.Output<DockerEndpoint> {
  const inline = (has: boolean) => {
    if (has) throw new pulumi.RunError("claude-bottle reaches the Docker engine with the docker CLI as well, which takes TLS material as files: set the docker provider's `certPath` (a directory with ca.pem, cert.pem and key.pem) instead of caMaterial/certMaterial/keyMaterial");
  };
  const settled = (ep: DockerEndpoint): DockerEndpoint => {
    const clean: DockerEndpoint = Object.fromEntries(Object.entries(ep).filter(([, v]) => typeof v === "string" && v !== "")) as DockerEndpoint;
    return clean.host || clean.context ? clean : { ...defaultEndpoint(env), ...clean };
  };
  const provider = resource.getProvider(DOCKER_TYPES.container) as (docker.Provider & { claudeBottleEndpoint?: DockerEndpoint }) | undefined;
  if (provider?.claudeBottleEndpoint) return pulumi.output(settled(provider.claudeBottleEndpoint));
  if (!provider) {
    const config = new pulumi.Config("docker");
    inline(Boolean(config.get("caMaterial") || config.get("certMaterial")));
    return pulumi.output(settled({ host: config.get("host"), context: config.get("context"), certPath: config.get("certPath") }));
  }
  return pulumi.all([provider.host, provider.context, provider.certPath, provider.caMaterial, provider.certMaterial]).apply(([host, context, certPath, ca, cert]) => {
    inline(Boolean(ca || cert));
    return settled({ host, context, certPath });
  });
}

export interface BottleStateArgs {
  identity: string;
  /** Prefix of every docker name (the volumes are `<prefix><identity>-state-<volume>`). */
  namePrefix: string;
  containerName: string;
  /** The state image (sidecars/state/Dockerfile: its mount points owned by NOBODY_UID). */
  image: pulumi.Input<string>;
  /** Keep the state volumes (audit log, proposals, live files) on `pulumi destroy`. Default true. */
  retainVolumes?: boolean;
}

/**
 * The bottle's state: one named volume per directory the layout separates, and a container that
 * mounts them all read-write and does nothing else — no network at all, read-only root, no
 * capabilities, uid nobody. Every reader and writer outside the sidecars (`pulumi up`'s live
 * files, the operator CLI) goes through it with `docker exec` (store/docker.ts), so the bottle
 * needs no shared filesystem with the machine that runs `pulumi up` or the operator's.
 */
export class BottleState extends pulumi.ComponentResource {
  readonly volumes: Record<StateVolume, docker.Volume>;
  readonly container: docker.Container;
  /** Where the files are inside the state container (and each sidecar: the same mount paths). */
  readonly layout: StateLayout = stateLayout();
  /** The engine the bottle's docker provider targets: where its state container is reached. */
  readonly endpoint: pulumi.Output<DockerEndpoint>;

  constructor(name: string, args: BottleStateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:state:BottleState", name, {}, opts);
    const retain = args.retainVolumes ?? true;
    this.volumes = Object.fromEntries(
      STATE_VOLUME_NAMES.map((v) => [
        v,
        new docker.Volume(`${name}-${v}`, { name: `${args.namePrefix}${args.identity}-state-${v}`, labels: labels(args.identity, "state") }, { parent: this, retainOnDelete: retain }),
      ]),
    ) as Record<StateVolume, docker.Volume>;
    this.container = new docker.Container(
      name,
      {
        ...hardened(args.identity, "state"),
        name: args.containerName,
        image: args.image,
        user: String(NOBODY_UID),
        readOnly: true,
        networkMode: "none",
        command: STATE_COMMAND,
        // No noCopy here: the first mount of an empty volume copies the image's mount point
        // (owned by NOBODY_UID) into it, which makes a fresh volume writable for every writer.
        mounts: STATE_VOLUME_NAMES.map((v) => ({ type: "volume", source: this.volumes[v].name, target: STATE_VOLUMES[v].path, readOnly: false })),
      },
      { parent: this },
    );
    this.endpoint = dockerEndpointOf(this);
    this.registerOutputs({ container: this.container.name, volumes: this.volumeNames() });
  }

  /**
   * The state volumes `role` mounts (contracts/state.ts), read-only where it does not write. Never
   * copied into from the role's image (noCopy): the state container set the volume's owner, and an
   * image's own mount point (egress's /var/log/claude-bottle, owned by its build user) must not
   * take it back while the volume is still empty.
   */
  mountsFor(role: Role): docker.types.input.ContainerMount[] {
    return stateMountsOf(role).map((m) => ({ type: "volume", source: this.volumes[m.volume].name, target: m.path, readOnly: m.readOnly, volumeOptions: { noCopy: true } }));
  }

  volumeNames(): pulumi.Output<Record<StateVolume, string>> {
    const names: Record<string, pulumi.Output<string>> = Object.fromEntries(STATE_VOLUME_NAMES.map((v) => [v, this.volumes[v].name]));
    return pulumi.all(names) as pulumi.Output<Record<StateVolume, string>>;
  }
}
