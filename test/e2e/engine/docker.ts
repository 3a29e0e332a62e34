// The docker provider double: Network, Volume, Image and Container as pulumi-docker 5.2.0 does
// them (the bridged terraform-provider-docker 4.x for the first three and Container, its native
// provider for Image), on the real Docker engine. Each behaviour names the real source it
// mirrors; the research notes behind it are summarised in test/e2e/README-engine.md.
// A field outside a double's `fields` is refused at check (see plugin.ts), and so is any
// behaviour a double does not implement (pulling images, pushing, other mount types…).
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { docker, sleep } from "../lib/docker.ts";
import { daemonError, engineApi, isNotFound } from "../lib/engine-api.ts";
import { tarFiles } from "../lib/tar.ts";
import type { DiffResult, ProviderConfigDouble, ResourceDouble } from "./plugin.ts";
import { DOCKER_TYPES } from "../../../contracts/docker.ts";

export { DOCKER_TYPES };

const TF = "terraform-provider-docker internal/provider/";
const labelsOf = (m: Record<string, string> | null | undefined) => Object.entries(m ?? {}).map(([label, value]) => ({ label, value }));
const labelMap = (l: { label: string; value: string }[] | undefined) => Object.fromEntries((l ?? []).map((x) => [x.label, x.value]));

/**
 * Comparison as the SDKv2 diff sees values: sets unordered (pulumi-docker lists backed by
 * schema.TypeSet), and an unset Optional equal to its zero value (false, "", 0, empty list/map).
 */
function canonical(v: unknown): unknown {
  if (v === undefined || v === null || v === false || v === "" || v === 0) return null;
  if (Array.isArray(v)) return v.length ? v.map(canonical).map((x) => JSON.stringify(x)).sort() : null;
  if (typeof v === "object") {
    const entries = Object.entries(v).map(([k, x]) => [k, canonical(x)] as const).filter(([, x]) => x !== null).sort(([a], [b]) => a.localeCompare(b));
    return entries.length ? Object.fromEntries(entries) : null;
  }
  return v;
}
const same = (a: unknown, b: unknown) => JSON.stringify(canonical(a ?? null)) === JSON.stringify(canonical(b ?? null));

interface DiffRules {
  /** Inputs whose change is applied in place (no ForceNew). Everything else replaces. */
  updatable?: string[];
  /** Optional+Computed: unset in the program means "whatever the engine reports". */
  computed?: string[];
  /** DiffSuppressFunc "new value empty" (user, working_dir). */
  suppressEmpty?: string[];
  deleteBeforeReplace?: boolean;
}

/** The bridge's diff over the top-level inputs a double knows (olds are the previous outputs). */
function diffInputs(keys: string[], olds: Record<string, any>, news: Record<string, any>, rules: DiffRules): DiffResult {
  const replaces: string[] = [];
  let changes = false;
  for (const k of keys) {
    const n = news[k];
    const o = olds[k];
    if (n === undefined || n === null || (rules.suppressEmpty?.includes(k) && n === "")) {
      if (rules.computed?.includes(k) || rules.suppressEmpty?.includes(k) || o === undefined || o === null) continue;
    }
    if (same(o, n)) continue;
    if (process.env.CBTEST_PLUGIN_DEBUG) fs.appendFileSync(process.env.CBTEST_PLUGIN_DEBUG, `diff ${k}: ${JSON.stringify(o)} -> ${JSON.stringify(n)}\n`);
    changes = true;
    if (!rules.updatable?.includes(k)) replaces.push(k);
  }
  return { changes, replaces, deleteBeforeReplace: rules.deleteBeforeReplace && replaces.length > 0 };
}
const topKeys = (fields: Record<string, string>, defaults: Record<string, unknown> = {}) => [...new Set([...Object.keys(fields).map((f) => f.split(/[.[]/)[0]!), ...Object.keys(defaults)])];

async function ok(r: Promise<{ status: number; json: any; text: string }>, what: string, expect = [200, 201, 204]) {
  const res = await r;
  if (!expect.includes(res.status)) throw new Error(`${what}: ${daemonError(res)}`);
  return res;
}

/** Retry `step` while its error message matches `retryOn` (TF StateChangeConf: timeout 30 s, min 5 s, delay 2 s). */
async function refreshLoop(step: () => Promise<boolean>, retryOn: RegExp, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await step()) return;
    } catch (e) {
      if (!retryOn.test((e as Error).message) || Date.now() > deadline) throw e;
    }
    if (Date.now() > deadline) throw new Error(`timeout while waiting for state to become 'removed' (last state: 'pending', timeout: ${timeoutMs / 1000}s)`);
    await sleep(1000);
  }
}

// ------------------------------------------------------------------------------------------
// Network
// ------------------------------------------------------------------------------------------

const NETWORK_FIELDS = {
  name: "`Name` of NetworkCreate (ForceNew)",
  driver: "`Driver`",
  internal: "`Internal`",
  ipv6: "`EnableIPv6`",
  options: "`Options` (free-form map)",
  labels: "`Labels` (`labels[*].label` → `labels[*].value`)",
  "ipamConfigs[*].subnet": "`IPAM.Config[*].Subnet`",
  "ipamConfigs[*].gateway": "`IPAM.Config[*].Gateway`",
};

async function readNetwork(id: string): Promise<Record<string, any> | undefined> {
  const r = await engineApi("GET", `/networks/${encodeURIComponent(id)}`);
  if (isNotFound(r)) return undefined;
  if (r.status !== 200) throw new Error(`Unable to inspect network: ${daemonError(r)}`);
  const n = r.json;
  // flattenIpamConfigSpec: one element per IPAM.Config entry, keys only when non-empty.
  const ipamConfigs = (n.IPAM?.Config ?? []).map((c: any) => Object.fromEntries(Object.entries({ subnet: c.Subnet, ipRange: c.IPRange, gateway: c.Gateway, auxAddress: c.AuxiliaryAddresses }).filter(([, v]) => v && (typeof v !== "object" || Object.keys(v).length))));
  return {
    name: n.Name,
    labels: labelsOf(n.Labels),
    driver: n.Driver,
    internal: Boolean(n.Internal),
    attachable: Boolean(n.Attachable),
    ingress: Boolean(n.Ingress),
    ipv6: Boolean(n.EnableIPv6),
    ipamDriver: n.IPAM?.Driver ?? "default",
    ...(n.IPAM?.Options && Object.keys(n.IPAM.Options).length ? { ipamOptions: n.IPAM.Options } : {}),
    scope: n.Scope,
    options: n.Options ?? {},
    ipamConfigs,
  };
}

export const networkDouble: ResourceDouble = {
  sources: { "": `${TF}resource_docker_network_funcs.go: resourceDockerNetworkCreate`, ipamConfigs: `${TF}resource_docker_network_structures.go: ipamConfigSetToIpamConfigs; flattenIpamConfigSpec (read)` },
  mirrors: `${TF}resource_docker_network.go (schema: no Update, every field ForceNew), resource_docker_network_funcs.go (Create, ReadRefreshFunc, RemoveRefreshFunc), resource_docker_network_structures.go (flattenIpamConfigSpec)`,
  fields: NETWORK_FIELDS,
  defaults: () => ({ ipamDriver: "default" }),
  diff: (olds, news) => diffInputs(topKeys(NETWORK_FIELDS, { ipamDriver: 1 }), olds, news, { computed: ["driver", "internal", "options", "ipamConfigs"] }),
  async create(_urn, i) {
    const ipam: any = { Driver: i.ipamDriver ?? "default" };
    if (i.ipamConfigs?.length) ipam.Config = i.ipamConfigs.map((c: any) => ({ Subnet: c.subnet, Gateway: c.gateway }));
    const body = { Name: i.name, CheckDuplicate: false, Driver: i.driver, Internal: Boolean(i.internal), EnableIPv6: Boolean(i.ipv6), Options: i.options, Labels: labelMap(i.labels), IPAM: ipam };
    const r = await engineApi("POST", "/networks/create", body);
    if (r.status !== 201) throw new Error(`Unable to create network: ${daemonError(r)}`);
    const outs = await readNetwork(r.json.Id);
    if (!outs) throw new Error(`network ${i.name} vanished right after create`);
    return { id: r.json.Id, outs: { ...i, ...outs } };
  },
  async read(id, props) {
    const outs = await readNetwork(id);
    return outs && { ...props, ...outs };
  },
  async delete(id) {
    await refreshLoop(async () => {
      const r = await engineApi("DELETE", `/networks/${encodeURIComponent(id)}`);
      if (r.status === 204 || isNotFound(r)) return true;
      throw new Error(`Error removing network ${id}: ${daemonError(r)}`);
    }, /has active endpoints/);
  },
};

// ------------------------------------------------------------------------------------------
// Volume
// ------------------------------------------------------------------------------------------

const VOLUME_FIELDS = {
  name: "`Name` of VolumeCreate; the resource id (ForceNew)",
  labels: "`Labels`",
};

async function readVolume(id: string): Promise<Record<string, any> | undefined> {
  const r = await engineApi("GET", `/volumes/${encodeURIComponent(id)}`);
  if (isNotFound(r)) return undefined;
  if (r.status !== 200) throw new Error(`Unable to inspect volume: ${daemonError(r)}`);
  const v = r.json;
  return { name: v.Name, labels: labelsOf(v.Labels), driver: v.Driver, driverOpts: v.Options ?? {}, mountpoint: v.Mountpoint };
}

export const volumeDouble: ResourceDouble = {
  sources: { "": `${TF}resource_docker_volume.go: resourceDockerVolumeCreate / Read` },
  mirrors: `${TF}resource_docker_volume.go (Create: id = name; Read; Delete: VolumeRemove force, retried while "volume is in use"); retainOnDelete is the engine's (Delete is never called)`,
  fields: VOLUME_FIELDS,
  diff: (olds, news) => diffInputs(topKeys(VOLUME_FIELDS), olds, news, { computed: ["name"] }),
  async create(_urn, i) {
    const r = await engineApi("POST", "/volumes/create", { Name: i.name, Labels: labelMap(i.labels) });
    if (r.status !== 201) throw new Error(`Unable to create volume: ${daemonError(r)}`);
    const outs = await readVolume(r.json.Name);
    return { id: r.json.Name, outs: { ...i, ...outs } };
  },
  async read(id, props) {
    const outs = await readVolume(id);
    return outs && { ...props, ...outs };
  },
  async delete(id) {
    await refreshLoop(async () => {
      const r = await engineApi("DELETE", `/volumes/${encodeURIComponent(id)}?force=true`);
      if (r.status === 204 || isNotFound(r)) return true;
      throw new Error(`Error removing volume ${id}: ${daemonError(r)}`);
    }, /volume is in use/);
  },
};

// ------------------------------------------------------------------------------------------
// Image (pulumi-docker's native resource)
// ------------------------------------------------------------------------------------------

const IMAGE_FIELDS = {
  imageName: "`-t imageName`; the resource id",
  skipPush: "must be true: the double never pushes (a push is refused)",
  buildOnPreview: "must be unset or false: the double builds at update only",
  "build.context": "build context directory (dockerignore honoured by the daemon)",
  "build.dockerfile": "`-f`",
  "build.args": "`--build-arg K=V` each",
  "build.platform": "`--platform`; Check sets linux/amd64 when unset, as the real provider sets its own GOARCH",
};

/** Check's `build.contextDigest`: a hash over the Dockerfile and every context file, so an edit is a diff. */
function contextDigest(context: string, dockerfile: string): string {
  const h = crypto.createHash("sha256");
  h.update("Dockerfile\0").update(fs.readFileSync(dockerfile));
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) h.update(path.relative(context, p)).update("\0").update(String(fs.statSync(p).mode)).update(crypto.createHash("sha256").update(fs.readFileSync(p)).digest());
    }
  };
  walk(context);
  return h.digest("hex");
}

async function buildImage(i: Record<string, any>): Promise<Record<string, any>> {
  const args = ["build", "--force-rm", "-t", i.imageName];
  if (i.build.dockerfile) args.push("-f", i.build.dockerfile);
  for (const [k, v] of Object.entries(i.build.args ?? {})) args.push("--build-arg", `${k}=${v}`);
  if (i.build.platform) args.push("--platform", i.build.platform);
  args.push(i.build.context);
  const r = await docker(args, { timeoutMs: 20 * 60_000 });
  if (r.code !== 0) throw new Error(`error reading build output: ${(r.stderr || r.stdout).trim().split("\n").slice(-8).join("\n")}`);
  const id = (await docker(["image", "inspect", "-f", "{{.Id}}", i.imageName])).stdout.trim();
  return {
    ...i,
    imageName: i.imageName,
    baseImageName: i.imageName,
    context: i.build.context,
    dockerfile: path.relative(i.build.context, i.build.dockerfile ?? path.join(i.build.context, "Dockerfile")),
    registryServer: "",
    repoDigest: id,
    platform: i.build.platform,
  };
}

export const imageDouble: ResourceDouble = {
  sources: { "": "pulumi-docker provider/provider.go: Check / Create", build: "pulumi-docker provider/image.go: dockerBuild (ImageBuild options)", "build.platform": "pulumi-docker provider/provider.go: Check (default platform)" },
  mirrors: "pulumi-docker provider/provider.go (Check: context digest, default platform; Diff: any change is an in-place update; Read: unchanged; Delete: no-op, the image stays) and provider/image.go (dockerBuild; repoDigest of an unpushed build = the local image id). Built with the legacy builder, where the real provider defaults to BuildKit",
  fields: IMAGE_FIELDS,
  validate(i) {
    const out: { property: string; reason: string }[] = [];
    if (i.skipPush !== true) out.push({ property: "skipPush", reason: "the docker provider double never pushes: skipPush must be true" });
    if (i.buildOnPreview) out.push({ property: "buildOnPreview", reason: "the docker provider double does not build on preview" });
    const df = i.build?.dockerfile ?? path.join(i.build?.context ?? ".", "Dockerfile");
    if (!fs.existsSync(df)) out.push({ property: "build.dockerfile", reason: path.isAbsolute(df) ? `expected a relative Dockerfile path; got "${df}" instead: no such file` : `could not open dockerfile at relative path "${df}"` });
    return out;
  },
  normalize(i) {
    const build = { ...i.build };
    build.dockerfile ??= path.join(build.context ?? ".", "Dockerfile");
    build.platform ??= "linux/amd64";
    if (fs.existsSync(build.dockerfile) && build.context) build.contextDigest = contextDigest(build.context, build.dockerfile);
    return { ...i, build, buildOnPreview: i.buildOnPreview ?? false };
  },
  diff(olds, news) {
    const changed = ["imageName", "skipPush", "build"].some((k) => !same(k === "build" ? { ...olds.build } : olds[k], news[k]));
    return { changes: changed, replaces: [] };
  },
  async create(_urn, i) {
    return { id: i.imageName, outs: await buildImage(i) };
  },
  async update(_id, _olds, news) {
    return buildImage(news);
  },
  async read(_id, props) {
    return props;
  },
  async delete() {},
};

// ------------------------------------------------------------------------------------------
// Container
// ------------------------------------------------------------------------------------------

const CONTAINER_FIELDS = {
  name: "`?name=` of ContainerCreate",
  image: "`Image`: must exist locally (the double never pulls)",
  command: "`Cmd`",
  envs: "`Env` (a set: order irrelevant; never read back)",
  user: "`User`",
  hostname: "`Hostname`",
  workingDir: "`WorkingDir`",
  labels: "`Labels` (never read back)",
  "healthcheck.tests": "`Healthcheck.Test`",
  "healthcheck.interval": "`Healthcheck.Interval` (Go duration)",
  "healthcheck.timeout": "`Healthcheck.Timeout`",
  "healthcheck.startPeriod": "`Healthcheck.StartPeriod`",
  "healthcheck.retries": "`Healthcheck.Retries`",
  readOnly: "`HostConfig.ReadonlyRootfs` (then every upload fails, as on the daemon)",
  privileged: "`HostConfig.Privileged`",
  restart: "`HostConfig.RestartPolicy.Name`; updated in place with ContainerUpdate",
  runtime: "`HostConfig.Runtime`",
  "capabilities.drops": "`HostConfig.CapDrop`",
  "capabilities.adds": "`HostConfig.CapAdd`",
  securityOpts: "`HostConfig.SecurityOpt`",
  logDriver: "`HostConfig.LogConfig.Type`",
  logOpts: "`HostConfig.LogConfig.Config`",
  tmpfs: "`HostConfig.Tmpfs` (an upload under a tmpfs path lands under the mount and is hidden at start)",
  "mounts[*].type": "`HostConfig.Mounts[*].Type`: bind or volume (tmpfs mounts are refused by the double)",
  "mounts[*].source": "`…Source`",
  "mounts[*].target": "`…Target`",
  "mounts[*].readOnly": "`…ReadOnly`",
  "mounts[*].volumeOptions.noCopy": "`…VolumeOptions.NoCopy` (volume mounts): the daemon does not copy the image's content and owner at the mount point into an empty volume; read back as `volumeOptions: {noCopy}`",
  "volumes[*].volumeName": "`HostConfig.Binds`: `volumeName:containerPath:rw|ro`",
  "volumes[*].hostPath": "`HostConfig.Binds`: `hostPath:containerPath:rw|ro`",
  "volumes[*].containerPath": "(see above)",
  "volumes[*].readOnly": "`:ro` instead of `:rw`",
  "hosts[*].host": "`HostConfig.ExtraHosts`: `host:ip`",
  "hosts[*].ip": "(see above)",
  "networksAdvanced[*].name": "created on `bridge` (NetworkMode stays \"bridge\"), disconnected from it, then NetworkConnect each in set order",
  "networksAdvanced[*].aliases": "`EndpointSettings.Aliases`",
  "uploads[*].file": "one CopyToContainer per upload at `/`: a tar entry with this absolute name, uid/gid 0",
  "uploads[*].content": "the entry's bytes",
  "uploads[*].source": "the entry's bytes, read from this host file",
  "uploads[*].sourceHash": "not checked against the file (only a change forces replacement), as the real provider",
  "uploads[*].permissions": "the entry's mode (`^0[0-7]{3}$`)",
  "uploads[*].owner": "copyUIDGID=true: the DAEMON then chowns to the container `user`'s host passwd entry (Docker 20.10)",
  "uploads[*].group": "(same: copyUIDGID=true)",
  networkMode: "`HostConfig.NetworkMode` (default `bridge`; `none`: no interface but loopback); with `networksAdvanced` the container still starts on it, see there",
  mustRun: "not checked at create (4.x); a stopped container reads back mustRun=false and the next up starts it",
  wait: "poll health every 1 s after start until healthy, else `container failed to be in healthy state`",
  waitTimeout: "seconds for `wait` (default 60)",
};

/** TF schema defaults (resource_docker_container.go) — they land in state and outputs. */
const CONTAINER_DEFAULTS = {
  restart: "no",
  mustRun: true,
  start: true,
  attach: false,
  logs: false,
  rm: false,
  wait: false,
  waitTimeout: 60,
  removeVolumes: true,
  readOnly: false,
  networkMode: "bridge",
};

/** Go duration ("5s", "1m30s", "250ms") → nanoseconds; a parse error gives 0, as time.ParseDuration's ignored error does. */
export function durationNs(d: string | undefined): number {
  if (!d) return 0;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let matched = "";
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * unit[m[2]!]!;
    matched += m[0];
  }
  return matched === d ? Math.round(total) : 0;
}

/** time.Duration.String() for what the daemon reports back ("5s", "1m30s", "0s"). */
function durationString(ns: number | undefined): string {
  if (!ns) return "0s";
  const s = ns / 1e9;
  if (s < 60) return `${+s.toFixed(9)}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = +(s % 60).toFixed(9);
  return `${h ? `${h}h` : ""}${m || h ? `${m}m` : ""}${rest}s`;
}

/** TF set iteration order (schema.Set hashes elements): deterministic, not the input order. */
const setOrder = <T>(xs: T[]) => [...xs].sort((a, b) => crypto.createHash("sha1").update(JSON.stringify(a)).digest("hex").localeCompare(crypto.createHash("sha1").update(JSON.stringify(b)).digest("hex")));

async function readContainer(id: string, props: Record<string, any>): Promise<Record<string, any> | undefined> {
  const r = await engineApi("GET", `/containers/${encodeURIComponent(id)}/json`);
  if (isNotFound(r)) return undefined;
  if (r.status !== 200) throw new Error(`Error inspecting container ${id}: ${daemonError(r)}`);
  const c = r.json;
  const hc = c.Config.Healthcheck;
  const running = Boolean(c.State?.Running);
  const out: Record<string, any> = {
    ...props,
    name: String(c.Name).replace(/^\//, ""),
    image: String(props.image ?? "").startsWith("sha256:") ? c.Image : c.Config.Image,
    rm: Boolean(c.HostConfig.AutoRemove),
    readOnly: Boolean(c.HostConfig.ReadonlyRootfs),
    hostname: c.Config.Hostname,
    command: c.Config.Cmd ?? [],
    entrypoints: c.Config.Entrypoint ?? [],
    user: c.Config.User,
    workingDir: c.Config.WorkingDir,
    securityOpts: c.HostConfig.SecurityOpt ?? [],
    restart: c.HostConfig.RestartPolicy?.Name || "no",
    maxRetryCount: c.HostConfig.RestartPolicy?.MaximumRetryCount ?? 0,
    runtime: c.HostConfig.Runtime,
    privileged: Boolean(c.HostConfig.Privileged),
    // getDockerContainerMounts: volume_options only when the daemon reports VolumeOptions (labels: none set)
    mounts: (c.HostConfig.Mounts ?? []).map((m: any) => ({ target: m.Target, source: m.Source, type: m.Type, readOnly: Boolean(m.ReadOnly), ...(m.VolumeOptions ? { volumeOptions: { noCopy: Boolean(m.VolumeOptions.NoCopy) } } : {}) })),
    tmpfs: c.HostConfig.Tmpfs ?? {},
    hosts: (c.HostConfig.ExtraHosts ?? []).map((h: string) => ({ host: h.slice(0, h.indexOf(":")), ip: h.slice(h.indexOf(":") + 1) })),
    logDriver: c.HostConfig.LogConfig?.Type,
    networkMode: c.HostConfig.NetworkMode,
    pidMode: c.HostConfig.PidMode,
    ipcMode: c.HostConfig.IpcMode,
    usernsMode: c.HostConfig.UsernsMode,
    shmSize: Math.round((c.HostConfig.ShmSize ?? 0) / 1048576),
    bridge: c.NetworkSettings?.Bridge ?? "",
    networkDatas: Object.entries(c.NetworkSettings?.Networks ?? {}).map(([name, n]: [string, any]) => ({
      networkName: name,
      ipAddress: n.IPAddress,
      ipPrefixLength: n.IPPrefixLen,
      gateway: n.Gateway,
      globalIpv6Address: n.GlobalIPv6Address,
      globalIpv6PrefixLength: n.GlobalIPv6PrefixLen,
      ipv6Gateway: n.IPv6Gateway,
      macAddress: n.MacAddress,
    })),
  };
  // log_opts only when configured (containerLogOptsForState); capabilities only when non-empty.
  if (props.logOpts !== undefined) out.logOpts = c.HostConfig.LogConfig?.Config ?? {};
  if ((c.HostConfig.CapAdd ?? []).length || (c.HostConfig.CapDrop ?? []).length) out.capabilities = { adds: c.HostConfig.CapAdd ?? [], drops: c.HostConfig.CapDrop ?? [] };
  if (hc) out.healthcheck = { tests: hc.Test ?? [], interval: durationString(hc.Interval), timeout: durationString(hc.Timeout), startPeriod: durationString(hc.StartPeriod), retries: hc.Retries ?? 0 };
  if (!running) {
    out.exitCode = c.State?.ExitCode;
    // "Container … is stopped but must_run is configured as true": drift, no error.
    if (props.mustRun) out.mustRun = false;
  }
  return out;
}

async function waitHealthy(id: string, timeoutS: number): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000;
  while (Date.now() < deadline) {
    const r = await engineApi("GET", `/containers/${encodeURIComponent(id)}/json`);
    if (r.json?.State?.Health?.Status === "healthy") return;
    await sleep(1000);
  }
  throw new Error("container failed to be in healthy state");
}

const FUNCS = `${TF}resource_docker_container_funcs.go`;
export const containerDouble: ResourceDouble = {
  sources: {
    "": `${FUNCS}: resourceDockerContainerCreate (container.Config)`,
    readOnly: `${FUNCS}: resourceDockerContainerCreate (HostConfig)`,
    privileged: `${FUNCS}: resourceDockerContainerCreate (HostConfig)`,
    restart: `${FUNCS}: Create (HostConfig.RestartPolicy), Update (ContainerUpdate)`,
    runtime: `${FUNCS}: resourceDockerContainerCreate (HostConfig)`,
    capabilities: `${FUNCS}: resourceDockerContainerCreate (HostConfig.CapAdd/CapDrop)`,
    securityOpts: `${FUNCS}: resourceDockerContainerCreate (HostConfig.SecurityOpt)`,
    logDriver: `${FUNCS}: resourceDockerContainerCreate (HostConfig.LogConfig)`,
    logOpts: `${FUNCS}: Create (HostConfig.LogConfig), containerLogOptsForState (read)`,
    tmpfs: `${FUNCS}: Create (HostConfig.Tmpfs); moby daemon setupMounts (not mounted during a copy)`,
    mounts: `${FUNCS}: Create (HostConfig.Mounts)`,
    "mounts[*].volumeOptions": `${FUNCS}: resourceDockerContainerCreate (mountType volume → mount.VolumeOptions.NoCopy), getDockerContainerMounts (read)`,
    networkMode: `${FUNCS}: resourceDockerContainerCreate (HostConfig.NetworkMode); Read (network_mode)`,
    volumes: `${TF}resource_docker_container_structures.go: volumeSetToDockerVolumes (Binds)`,
    hosts: `${FUNCS}: Create (HostConfig.ExtraHosts), flattenExtraHosts (read)`,
    networksAdvanced: `${FUNCS}: Create (NetworkDisconnect "bridge", NetworkConnect per element)`,
    uploads: `${FUNCS}: Create (one CopyToContainer per upload); moby daemon/archive.go containerExtractToDir`,
    "uploads[*].owner": "moby daemon/archive_tarcopyoptions_unix.go: tarCopyOptions (copyUIDGID → idtools.LookupUser on the host)",
    "uploads[*].group": "moby daemon/archive_tarcopyoptions_unix.go: tarCopyOptions",
    mustRun: `${FUNCS}: resourceDockerContainerRead (must_run drift), resourceDockerContainerUpdate (ContainerStart)`,
    wait: `${FUNCS}: resourceDockerContainerCreate (health poll)`,
    waitTimeout: `${FUNCS}: resourceDockerContainerCreate (health poll)`,
  },
  mirrors: `${TF}resource_docker_container.go (schema, defaults, ForceNew), resource_docker_container_funcs.go (Create: config mapping, bridge disconnect + NetworkConnect, one CopyToContainer per upload, start, wait; Read incl. must_run drift; Update: ContainerUpdate for restart, ContainerStart for must_run; Delete: stop t=0, force remove), and moby daemon/archive.go + archive_tarcopyoptions_unix.go for what the daemon does with copyUIDGID`,
  fields: CONTAINER_FIELDS,
  defaults: () => CONTAINER_DEFAULTS,
  validate(i) {
    const out: { property: string; reason: string }[] = [];
    if (!/^(no|on-failure|always|unless-stopped)$/.test(i.restart)) out.push({ property: "restart", reason: `expected restart to match ^(no|on-failure|always|unless-stopped)$, got ${i.restart}` });
    for (const [n, m] of (i.mounts ?? []).entries()) if (m.type !== "bind" && m.type !== "volume") out.push({ property: `mounts[${n}].type`, reason: `the docker provider double implements bind and volume mounts, not ${m.type}` });
    for (const [n, u] of (i.uploads ?? []).entries()) {
      const given = ["content", "contentBase64", "source"].filter((k) => u[k] !== undefined && u[k] !== "");
      if (given.length !== 1) out.push({ property: `uploads[${n}]`, reason: given.length ? "error with upload content: only one of 'content', 'content_base64', or 'source' can be set" : "error with upload content: one of 'content', 'content_base64', or 'source' must be set" });
      if (u.permissions !== undefined && !/^0[0-7]{3}$/.test(u.permissions)) out.push({ property: `uploads[${n}].permissions`, reason: `invalid value for permissions (${u.permissions})` });
    }
    for (const c of i.command ?? []) if (c === "") out.push({ property: "command", reason: "values for command may not be empty" });
    return out;
  },
  diff: (olds, news) =>
    diffInputs(topKeys(CONTAINER_FIELDS, CONTAINER_DEFAULTS), olds, news, {
      updatable: ["restart", "mustRun", "start", "attach", "logs", "rm", "wait", "waitTimeout", "removeVolumes", "healthcheck", "tmpfs"],
      computed: ["command", "envs", "hostname", "labels", "healthcheck", "runtime", "securityOpts", "logDriver"],
      suppressEmpty: ["user", "workingDir"],
      deleteBeforeReplace: true,
    }),
  async create(_urn, i) {
    const img = await engineApi("GET", `/images/${encodeURIComponent(i.image)}/json`);
    if (img.status !== 200) throw new Error(`Unable to create container with image ${i.image}: unable to pull image ${i.image}: the docker provider double never pulls (build or load it first)`);
    const hc = i.healthcheck;
    const binds = (i.volumes ?? []).map((v: any) => `${v.volumeName ?? v.hostPath}:${v.containerPath}:${v.readOnly ? "ro" : "rw"}`);
    const body = {
      Image: i.image,
      Hostname: i.hostname,
      Env: i.envs ?? [],
      Cmd: i.command,
      User: i.user ?? "",
      WorkingDir: i.workingDir ?? "",
      Labels: labelMap(i.labels),
      Healthcheck: hc ? { Test: hc.tests, Interval: durationNs(hc.interval), Timeout: durationNs(hc.timeout), StartPeriod: durationNs(hc.startPeriod), Retries: hc.retries ?? 0 } : undefined,
      HostConfig: {
        Privileged: Boolean(i.privileged),
        RestartPolicy: { Name: i.restart, MaximumRetryCount: 0 },
        Runtime: i.runtime,
        Mounts: (i.mounts ?? []).map((m: any) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: Boolean(m.readOnly), ...(m.type === "volume" && m.volumeOptions ? { VolumeOptions: { NoCopy: Boolean(m.volumeOptions.noCopy) } } : {}) })),
        AutoRemove: Boolean(i.rm),
        ReadonlyRootfs: Boolean(i.readOnly),
        LogConfig: i.logDriver ? { Type: i.logDriver, Config: i.logOpts ?? {} } : undefined,
        Tmpfs: i.tmpfs,
        ExtraHosts: (i.hosts ?? []).map((h: any) => `${h.host}:${h.ip}`),
        Binds: binds,
        CapAdd: i.capabilities?.adds,
        CapDrop: i.capabilities?.drops,
        SecurityOpt: i.securityOpts,
        NetworkMode: i.networkMode,
      },
      NetworkingConfig: {},
    };
    const created = await engineApi("POST", `/containers/create?name=${encodeURIComponent(i.name)}`, body);
    if (created.status !== 201) throw new Error(`Unable to create container: ${daemonError(created)}`);
    const id: string = created.json.Id;
    // From here a failure leaves the container behind (the real Create has no cleanup); Pulumi
    // records it with an initialization error (partial state), so `pulumi destroy` removes it.
    const fail = async (message: string) => {
      const props = (await readContainer(id, i).catch(() => undefined)) ?? i;
      throw Object.assign(new Error(message), { id, properties: props, reasons: [message] });
    };
    if (i.networksAdvanced?.length) {
      const d = await engineApi("POST", "/networks/bridge/disconnect", { Container: id, Force: false });
      if (d.status !== 200 && !/is not connected to the network bridge/.test(d.text)) await fail(`Unable to disconnect the default network: ${daemonError(d)}`);
      for (const n of setOrder<any>(i.networksAdvanced)) {
        const c = await engineApi("POST", `/networks/${encodeURIComponent(n.name)}/connect`, { Container: id, EndpointConfig: { Aliases: n.aliases ?? [] } });
        if (c.status !== 200) await fail(`Unable to connect to network '${n.name}': ${daemonError(c)}`);
      }
    }
    for (const u of i.uploads ?? []) {
      const content = u.content !== undefined ? u.content : u.contentBase64 !== undefined ? Buffer.from(u.contentBase64, "base64") : fs.readFileSync(u.source);
      const mode = u.permissions !== undefined ? parseInt(u.permissions, 8) : u.executable ? 0o744 : 0o644;
      const tar = tarFiles([{ path: u.file, content, mode, uid: 0, gid: 0 }]);
      const copyUIDGID = u.owner !== undefined || u.group !== undefined;
      const put = await engineApi("PUT", `/containers/${id}/archive?path=%2F${copyUIDGID ? "&copyUIDGID=true" : ""}`, undefined, { raw: tar });
      if (put.status !== 200) await fail(`Unable to upload volume content: ${daemonError(put)}`);
    }
    if (i.start !== false) {
      const s = await engineApi("POST", `/containers/${id}/start`);
      if (s.status !== 204 && s.status !== 304) await fail(`Unable to start container: ${daemonError(s)}`);
      if (i.wait) {
        try {
          await waitHealthy(id, i.waitTimeout ?? 60);
        } catch (e) {
          await fail((e as Error).message);
        }
      }
    }
    const outs = await readContainer(id, i);
    return { id, outs: outs ?? i };
  },
  async read(id, props) {
    return readContainer(id, props);
  },
  async update(id, olds, news) {
    if (news.mustRun && !olds.mustRun && news.start !== false) await ok(engineApi("POST", `/containers/${id}/start`), "Unable to start container", [204, 304]);
    if (news.restart !== olds.restart) await ok(engineApi("POST", `/containers/${id}/update`, { RestartPolicy: { Name: news.restart, MaximumRetryCount: 0 } }), "Unable to update a container");
    if (news.wait && news.start !== false) await waitHealthy(id, news.waitTimeout ?? 60);
    return (await readContainer(id, news)) ?? news;
  },
  async delete(id, props) {
    const stop = await engineApi("POST", `/containers/${id}/stop?t=0`);
    if (![204, 304, 404].includes(stop.status)) throw new Error(`Error stopping container ${id}: ${daemonError(stop)}`);
    const rm = await engineApi("DELETE", `/containers/${id}?force=true&v=${props.removeVolumes === false ? "false" : "true"}`);
    if (![204, 404].includes(rm.status) && !/is already in progress/.test(rm.text)) throw new Error(`Error deleting container ${id}: ${daemonError(rm)}`);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await engineApi("GET", `/containers/${id}/json`)).status !== 404) await sleep(200);
  },
};

// ------------------------------------------------------------------------------------------
// The provider's own settings (a docker.Provider's inputs, or `docker:*` stack config)
// ------------------------------------------------------------------------------------------

export const dockerProviderConfig: ProviderConfigDouble = {
  mirrors: "pulumi-docker provider/provider.go (Configure: the resolved `host` re-exported as DOCKER_HOST for the bridged resources) and terraform-provider-docker internal/provider/provider.go (host default: DOCKER_HOST, else unix:///var/run/docker.sock)",
  fields: {
    host: "every engine call of this provider process (Engine API over that socket, the docker CLI for builds) goes to it: DOCKER_HOST is set to it, as the real Configure does; `unix://` sockets only (ssh:// and tcp:// are refused)",
  },
  sources: { host: "pulumi-docker provider/provider.go: Configure (DOCKER_HOST); terraform-provider-docker internal/provider/provider.go: providerConfigure (host)" },
  configure(settings) {
    const host = settings.host;
    if (host === undefined) return; // the default: DOCKER_HOST as inherited, else the local socket
    if (typeof host !== "string" || !host.startsWith("unix://")) throw new Error(`the docker provider double reaches engines over unix:// sockets only, not ${JSON.stringify(host)}`);
    process.env.DOCKER_HOST = host;
  },
};

export const dockerDoubles: Record<string, ResourceDouble> = {
  [DOCKER_TYPES.network]: networkDouble,
  [DOCKER_TYPES.volume]: volumeDouble,
  [DOCKER_TYPES.image]: imageDouble,
  [DOCKER_TYPES.container]: containerDouble,
};
