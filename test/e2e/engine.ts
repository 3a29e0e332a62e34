// The engine double: takes what the stack program registered under Pulumi mocks and creates
// exactly those networks, volumes, images and containers on a real Docker engine, in
// dependency order. Every input field it understands is listed in FIELD_MAP (rendered into
// README-engine.md); any other field makes it THROW, naming the resource and the field, so a
// component can never rely on a setting this tier silently ignores.
//
// Containers are created through the Engine API (POST /containers/create over the daemon's
// unix socket) because the docker CLI cannot express an exec-form healthcheck; everything
// else goes through the docker CLI with argument arrays.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { docker, dockerOk, sleep, DockerError } from "./lib/docker.ts";
import { tarFiles, type TarFile } from "./lib/tar.ts";
import type { Registration } from "../helpers/pulumi-mocks.ts";
import { reloadCommand } from "../../contracts/docker.ts";

export const T = {
  container: "docker:index/container:Container",
  network: "docker:index/network:Network",
  image: "docker:index/image:Image",
  volume: "docker:index/volume:Volume",
  privateKey: "tls:index/privateKey:PrivateKey",
  selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
} as const;
const DYNAMIC = new Set(["pulumi-nodejs:dynamic:Resource", "pulumi-nodejs:dynamic/claude-bottle:Resource"]);
export const isDynamic = (type: string) => DYNAMIC.has(type);

/** Label the double adds to everything it creates, so teardown can find leftovers of a run. */
export const RUN_LABEL = "dev.claude-bottle.e2e-run";

// ------------------------------------------------------------------------------------------
// Field mapping: input path → what the double does. A field not listed here → error.
// `*` marks a list element / map entry. Rendered into test/e2e/README-engine.md.
// ------------------------------------------------------------------------------------------
export const FIELD_MAP: Record<string, Record<string, string>> = {
  [T.network]: {
    name: "`docker network create NAME`",
    driver: "`--driver`",
    internal: "`--internal` when true",
    ipv6: "`--ipv6` only when true",
    options: "`-o key=value` each",
    labels: "`--label label=value` each (`labels[*].label`, `labels[*].value`)",
  },
  [T.volume]: {
    name: "`docker volume create NAME`",
    labels: "`--label label=value` each",
  },
  [T.image]: {
    imageName: "`docker build -t imageName` (+ a stable cache tag, see below)",
    "build.context": "build context (last argument)",
    "build.dockerfile": "`-f`",
    "build.args": "`--build-arg K=V` each",
    skipPush: "must be true (nothing is pushed)",
    buildOnPreview: "ignored (no preview here)",
  },
  [T.container]: {
    name: "`?name=` of POST /containers/create",
    image: "`Image`; a mock `repoDigest` is replaced by the id of the image the double built",
    command: "`Cmd`",
    envs: "`Env`",
    user: "`User`",
    hostname: "`Hostname`",
    workingDir: "`WorkingDir`",
    labels: "`Labels` (`labels[*].label` → `labels[*].value`)",
    healthcheck: "`Healthcheck`: `tests`→`Test`, `interval`/`timeout`/`startPeriod` (Go durations)→ns, `retries`→`Retries`; the double waits for `healthy` after start",
    readOnly: "`HostConfig.ReadonlyRootfs`",
    privileged: "`HostConfig.Privileged`",
    restart: "`HostConfig.RestartPolicy.Name`",
    runtime: "`HostConfig.Runtime`",
    "capabilities.drops": "`HostConfig.CapDrop`",
    "capabilities.adds": "`HostConfig.CapAdd`",
    securityOpts: "`HostConfig.SecurityOpt`",
    logDriver: "`HostConfig.LogConfig.Type`",
    logOpts: "`HostConfig.LogConfig.Config`",
    tmpfs: "`HostConfig.Tmpfs` (path → options)",
    "mounts[*].type": "`HostConfig.Mounts[*].Type`: only `bind` and `volume`",
    "mounts[*].source": "`…Source` (bind: must exist on the host)",
    "mounts[*].target": "`…Target`",
    "mounts[*].readOnly": "`…ReadOnly`",
    "volumes[*].volumeName": "`HostConfig.Binds`: `volumeName:containerPath[:ro]`",
    "volumes[*].hostPath": "`HostConfig.Binds`: `hostPath:containerPath[:ro]`",
    "volumes[*].containerPath": "(see above)",
    "volumes[*].readOnly": "`:ro` suffix",
    "hosts[*].host": "`HostConfig.ExtraHosts`: `host:ip`",
    "hosts[*].ip": "(see above)",
    "networksAdvanced[*].name": "first: `HostConfig.NetworkMode` + `NetworkingConfig`; others: `docker network connect` before start",
    "networksAdvanced[*].aliases": "`Aliases` / `docker network connect --alias`",
    "uploads[*].file": "a tar entry at this absolute path, piped to `docker cp - CTR:/` before start",
    "uploads[*].content": "the entry's bytes",
    "uploads[*].source": "the entry's bytes, read from this host file (no `content`)",
    "uploads[*].sourceHash": "must equal the sha256 (hex) of `source`'s bytes, else error (a stale snapshot never lands)",
    "uploads[*].permissions": "the entry's mode (octal string)",
    "uploads[*].owner": "the entry's uid (numeric)",
    "uploads[*].group": "the entry's gid (numeric)",
    mustRun: "after start (and health): `State.Running` must be true, else error with the container's log",
  },
  dynamic: {
    path: "file written atomically (temp file + rename) with `mode`",
    content: "its content; on `update()` with changed content: rewrite, then `reloadCommand(reloadContainer)` (`docker exec C sh -c 'kill -HUP 1'`)",
    kind: "recorded only",
    mode: "file mode (octal string)",
    reloadContainer: "container signalled with SIGHUP (`docker exec`, as the provider) after an update",
    ensureDirs: "`mkdir -p` each before anything that mounts them",
    __provider: "ignored: the serialized provider; the double performs create/update itself",
    sha256: "an output placeholder (must be unset)",
  },
  [T.privateKey]: {
    algorithm: "nothing on the engine: the mock made the key with real crypto",
    ecdsaCurve: "(same)",
  },
  [T.selfSignedCert]: {
    privateKeyPem: "nothing on the engine: the mock signed with real crypto",
    isCaCertificate: "(same)",
    setSubjectKeyId: "(same)",
    maxPathLength: "(same)",
    validityPeriodHours: "(same)",
    allowedUses: "(same)",
    "subject.commonName": "(same)",
    "subject.organization": "(same)",
  },
};

/** Paths under these prefixes are checked as a whole (their values are free-form). */
const OPAQUE = ["build.args", "options", "logOpts", "tmpfs", "envs", "command", "labels", "healthcheck.tests", "ensureDirs", "allowedUses", "capabilities.drops", "capabilities.adds", "securityOpts", "networksAdvanced[*].aliases"];
const HEALTH_FIELDS = ["tests", "interval", "timeout", "startPeriod", "retries"];

export class UnimplementedFieldError extends Error {}

function fieldMapKey(type: string): string {
  return isDynamic(type) ? "dynamic" : type;
}

/** Every leaf path of `inputs` that is set, with list indices replaced by `*`. */
function leafPaths(v: unknown, prefix = ""): string[] {
  if (v === undefined || v === null) return [];
  if (OPAQUE.includes(prefix)) return [prefix];
  if (Array.isArray(v)) return v.flatMap((x) => leafPaths(x, `${prefix}[*]`));
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    if (!entries.length) return prefix ? [prefix] : [];
    return entries.flatMap(([k, x]) => leafPaths(x, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}

/** Throws on the first input field the double does not implement. */
export function checkFields(reg: Registration): void {
  const map = FIELD_MAP[fieldMapKey(reg.type)];
  if (!map) throw new UnimplementedFieldError(`engine double: resource type ${reg.type} (${reg.name}) is not implemented`);
  for (const p of leafPaths(reg.inputs)) {
    if (reg.type === T.container && p.startsWith("healthcheck.")) {
      if (HEALTH_FIELDS.includes(p.slice("healthcheck.".length))) continue;
    }
    if (p === "labels[*].label" || p === "labels[*].value" || p === "labels") continue;
    if (p in map) continue;
    // a parent key listed (e.g. "capabilities.drops" covers itself; "subject.commonName" etc.)
    throw new UnimplementedFieldError(`engine double: ${reg.type} "${reg.name}" sets input \`${p}\`, which the double does not implement (see test/e2e/README-engine.md)`);
  }
  if (isDynamic(reg.type) && reg.inputs.sha256 !== undefined && reg.inputs.sha256 !== null) {
    throw new UnimplementedFieldError(`engine double: dynamic "${reg.name}" sets output field sha256 as an input`);
  }
}

export function fieldTable(): string {
  const lines: string[] = [];
  for (const [type, fields] of Object.entries(FIELD_MAP)) {
    lines.push(`### \`${type === "dynamic" ? "pulumi-nodejs:dynamic:Resource (LiveConfigFile)" : type}\``, "", "| input | engine double |", "| --- | --- |");
    for (const [f, what] of Object.entries(fields)) lines.push(`| \`${f}\` | ${what} |`);
    lines.push("");
  }
  return lines.join("\n");
}

// ------------------------------------------------------------------------------------------
// Ordering
// ------------------------------------------------------------------------------------------

const KIND_ORDER = (type: string) =>
  isDynamic(type) ? 0 : type === T.network ? 1 : type === T.volume ? 2 : type === T.image ? 3 : type === T.container ? 4 : 5;

function strings(v: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof v === "string") out.add(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => strings(x, out));
  return out;
}

/** The output values by which other resources refer to this one. */
function referenceKeys(reg: Registration): string[] {
  switch (reg.type) {
    case T.network:
    case T.volume:
      return [reg.outputs.name].filter(Boolean);
    case T.image:
      return [reg.outputs.repoDigest, reg.outputs.imageName].filter(Boolean);
    case T.container:
      return [reg.outputs.name].filter(Boolean);
    default:
      return [];
  }
}

/** Engine-relevant resources in an order where every data dependency comes first. */
export function plan(registrations: Registration[]): Registration[] {
  const relevant = registrations.filter((r) => !r.type.startsWith("claude-bottle:"));
  for (const r of relevant) checkFields(r);
  const engine = relevant.filter((r) => KIND_ORDER(r.type) < 5);
  const deps = new Map<Registration, Set<Registration>>();
  for (const r of engine) {
    const mine = strings(r.inputs);
    const d = new Set<Registration>();
    for (const s of engine) {
      if (s === r) continue;
      // reloadContainer names a container that may not exist yet: not an ordering edge.
      if (isDynamic(r.type)) continue;
      if (referenceKeys(s).some((k) => mine.has(k))) d.add(s);
      if (isDynamic(s.type) && r.type === T.container) {
        const dirs = [...(s.inputs.ensureDirs ?? []), path.dirname(s.inputs.path)];
        const sources = (r.inputs.mounts ?? []).map((m: any) => m.source);
        if (sources.some((src: string) => dirs.includes(src))) d.add(s);
      }
    }
    deps.set(r, d);
  }
  const done = new Set<Registration>();
  const out: Registration[] = [];
  const idx = (r: Registration) => registrations.indexOf(r);
  while (out.length < engine.length) {
    const ready = engine
      .filter((r) => !done.has(r) && [...deps.get(r)!].every((d) => done.has(d)))
      .sort((a, b) => KIND_ORDER(a.type) - KIND_ORDER(b.type) || idx(a) - idx(b));
    if (!ready.length) {
      const stuck = engine.filter((r) => !done.has(r)).map((r) => r.name);
      throw new Error(`engine double: dependency cycle among ${stuck.join(", ")}`);
    }
    done.add(ready[0]!);
    out.push(ready[0]!);
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Engine API over the unix socket (only for container create)
// ------------------------------------------------------------------------------------------

function socketPath(): string {
  const host = process.env.DOCKER_HOST;
  if (host && !host.startsWith("unix://")) throw new Error(`engine double: DOCKER_HOST=${host} is not a unix socket; only unix sockets are supported`);
  return host ? host.slice("unix://".length) : "/var/run/docker.sock";
}

function api(method: string, pathname: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      { socketPath: socketPath(), method, path: `/v1.41${pathname}`, headers: data ? { "content-type": "application/json", "content-length": data.length } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json: any = text;
          try {
            json = text ? JSON.parse(text) : {};
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

/** Go duration ("5s", "1m30s", "250ms") → nanoseconds. */
export function durationNs(d: string | undefined): number | undefined {
  if (d === undefined || d === "") return undefined;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let matched = "";
  for (const m of d.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]!]!;
    matched += m[0];
  }
  if (matched !== d) throw new UnimplementedFieldError(`engine double: cannot parse duration "${d}"`);
  return Math.round(total);
}

// ------------------------------------------------------------------------------------------
// The double
// ------------------------------------------------------------------------------------------

export interface Substitute {
  image: string;
  reason: string;
  /** The stand-in honours the container's command and healthcheck: wait for `healthy` as for the real image. */
  awaitHealth?: boolean;
}

export interface EngineOptions {
  /** Unique prefix of this run; everything created carries RUN_LABEL=<runId>. */
  runId: string;
  log?: (line: string) => void;
  /**
   * Use an existing image instead of building one. Called for each Image resource with the
   * sidecar role (build context's folder name). Stand-ins are reported, never silent.
   */
  substitute?: (role: string, reg: Registration) => Substitute | undefined;
  /** Called when a build fails; a Substitute lets the run go on with a stand-in (reported). */
  onBuildFailure?: (role: string, error: Error) => Substitute | undefined;
  /**
   * Deprecated, ignored (kept so existing callers compile). Uploads into a read-only rootfs
   * now always fail as on the real engine (Docker refuses CopyToContainer there); the
   * components no longer combine the two.
   */
  readOnlyUploads?: "fail" | "volume";
  /** Seconds to wait for `healthy`. */
  healthTimeoutS?: number;
  /**
   * An explicit subnet for a network (not an input of the component: Docker's default pools
   * hold ~31 networks, so a fleet of bottles needs its own; see bench/bottle-bench.ts).
   */
  networkSubnet?: (name: string) => Promise<string | undefined>;
}

export interface CreatedContainer {
  reg: Registration;
  name: string;
  id: string;
  role?: string;
  identity?: string;
  substitute?: Substitute;
}

export class EngineDouble {
  readonly containers: CreatedContainer[] = [];
  readonly networks: string[] = [];
  readonly volumes: string[] = [];
  readonly images: string[] = [];
  readonly files: string[] = [];
  /** mock output value → real value (image repoDigest → image id). */
  readonly realOf = new Map<string, string>();
  readonly substitutes = new Map<string, Substitute>(); // repoDigest → substitute
  /** Places where the real engine would have failed and an accommodation was applied (none are made any more: always empty). */
  readonly findings: string[] = [];
  /** network name → the inputs it was created with (a later capture may adopt it). */
  private networkInputs = new Map<string, string>();
  private dynamicState = new Map<string, Registration>();
  /** build key → stand-in chosen after a failed build (the same build is not retried in a run). */
  private failedBuilds = new Map<string, Substitute>();
  private log: (l: string) => void;

  constructor(readonly opts: EngineOptions) {
    this.log = opts.log ?? ((l) => console.log(`[engine] ${l}`));
  }

  async apply(registrations: Registration[], hooks: { afterNetworks?: () => Promise<void> } = {}): Promise<void> {
    const steps = plan(registrations);
    let networksDone = false;
    for (const reg of steps) {
      if (!networksDone && reg.type !== T.network && !isDynamic(reg.type) && hooks.afterNetworks) {
        networksDone = true;
        await hooks.afterNetworks();
      }
      const t0 = Date.now();
      if (isDynamic(reg.type)) await this.liveConfig(reg);
      else if (reg.type === T.network) await this.network(reg);
      else if (reg.type === T.volume) await this.volume(reg);
      else if (reg.type === T.image) await this.image(reg);
      else if (reg.type === T.container) await this.container(reg);
      this.log(`${reg.type.split(":").pop()} ${reg.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
    if (!networksDone && hooks.afterNetworks) await hooks.afterNetworks();
  }

  /** Networks only (phase 1 of a two-phase apply). */
  async applyNetworks(registrations: Registration[]): Promise<void> {
    for (const reg of plan(registrations).filter((r) => r.type === T.network)) await this.network(reg);
  }

  private async liveConfig(reg: Registration, update = false): Promise<void> {
    const i = reg.inputs;
    for (const d of i.ensureDirs ?? []) fs.mkdirSync(d, { recursive: true });
    const dir = path.dirname(i.path);
    fs.mkdirSync(dir, { recursive: true });
    const mode = parseInt(i.mode ?? "0644", 8);
    const tmp = path.join(dir, `.${path.basename(i.path)}.${crypto.randomBytes(4).toString("hex")}.tmp`);
    fs.writeFileSync(tmp, i.content, { mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, i.path);
    this.files.push(i.path);
    this.dynamicState.set(i.path, reg);
    // As the dynamic provider: `docker exec C sh -c 'kill -HUP 1'` (a `docker kill` would mark
    // the container manually stopped on Docker 20.10 and disable its crash restarts).
    if (update && i.reloadContainer) await docker(reloadCommand(i.reloadContainer));
  }

  /** The dynamic provider's update(): rewrite a live config file and SIGHUP its container. */
  async updateLiveConfig(filePath: string, content: string): Promise<void> {
    const prev = this.dynamicState.get(filePath);
    if (!prev) throw new Error(`engine double: no live config at ${filePath}`);
    if (prev.inputs.content === content) return;
    await this.liveConfig({ ...prev, inputs: { ...prev.inputs, content } }, true);
  }

  private async network(reg: Registration): Promise<void> {
    const i = reg.inputs;
    const key = JSON.stringify(i);
    const existing = this.networkInputs.get(i.name);
    if (existing !== undefined) {
      if (existing !== key) throw new Error(`engine double: network ${i.name} already created with different inputs`);
      return; // an unchanged resource on a second apply: no-op, as `pulumi up` would do
    }
    const args = ["network", "create", "--label", `${RUN_LABEL}=${this.opts.runId}`];
    const subnet = await this.opts.networkSubnet?.(i.name);
    if (subnet) args.push("--subnet", subnet);
    if (i.driver) args.push("--driver", i.driver);
    if (i.internal) args.push("--internal");
    if (i.ipv6 === true) args.push("--ipv6");
    for (const [k, v] of Object.entries(i.options ?? {})) args.push("-o", `${k}=${v}`);
    for (const l of i.labels ?? []) args.push("--label", `${l.label}=${l.value}`);
    args.push(i.name);
    await dockerOk(args);
    this.networks.push(i.name);
    this.networkInputs.set(i.name, key);
  }

  private async volume(reg: Registration): Promise<void> {
    const i = reg.inputs;
    if (this.volumes.includes(i.name)) return;
    const args = ["volume", "create", "--label", `${RUN_LABEL}=${this.opts.runId}`];
    for (const l of i.labels ?? []) args.push("--label", `${l.label}=${l.value}`);
    args.push(i.name);
    await dockerOk(args);
    this.volumes.push(i.name);
  }

  private async image(reg: Registration): Promise<void> {
    const i = reg.inputs;
    if (i.skipPush !== true) throw new UnimplementedFieldError(`engine double: image ${reg.name} would be pushed (skipPush is not true)`);
    const role = path.basename(i.build.context);
    const buildKey = JSON.stringify(i.build);
    let sub = this.opts.substitute?.(role, reg) ?? this.failedBuilds.get(buildKey);
    let built = false;
    if (!sub) {
      const cacheTag = `cbtest/e2e-cache-${role}:latest`;
      const args = ["build", "--force-rm", "-t", i.imageName, "-t", cacheTag, "--label", `${RUN_LABEL}=cache`];
      if (i.build.dockerfile) args.push("-f", i.build.dockerfile);
      for (const [k, v] of Object.entries(i.build.args ?? {})) args.push("--build-arg", `${k}=${v}`);
      args.push(i.build.context);
      const r = await docker(args, { timeoutMs: 15 * 60_000 });
      if (r.code !== 0) {
        const err = new DockerError(args, r);
        sub = this.opts.onBuildFailure?.(role, err);
        if (!sub) throw err;
        this.failedBuilds.set(buildKey, sub);
      } else built = true;
    }
    if (sub) {
      const id = await dockerOk(["image", "inspect", "-f", "{{.Id}}", sub.image]);
      this.realOf.set(reg.outputs.repoDigest, id);
      this.substitutes.set(reg.outputs.repoDigest, sub);
      this.log(`STAND-IN: image ${i.imageName} (${role}) → ${sub.image}: ${sub.reason}`);
      return;
    }
    if (!built) throw new Error("unreachable");
    const id = await dockerOk(["image", "inspect", "-f", "{{.Id}}", i.imageName]);
    this.images.push(i.imageName);
    this.realOf.set(reg.outputs.repoDigest, id);
  }

  private async container(reg: Registration): Promise<void> {
    const i = reg.inputs;
    const sub = this.substitutes.get(i.image);
    const image = this.realOf.get(i.image) ?? i.image;
    const labels: Record<string, string> = { [RUN_LABEL]: this.opts.runId };
    for (const l of i.labels ?? []) labels[l.label] = l.value;
    const nets: { name: string; aliases?: string[] }[] = i.networksAdvanced ?? [];
    const binds: string[] = (i.volumes ?? []).map((v: any) => {
      const src = v.volumeName ?? v.hostPath;
      if (!src || !v.containerPath) throw new UnimplementedFieldError(`engine double: container ${reg.name} volume entry needs volumeName/hostPath and containerPath`);
      return `${src}:${v.containerPath}${v.readOnly ? ":ro" : ""}`;
    });
    const mounts = (i.mounts ?? []).map((m: any) => {
      if (m.type !== "bind" && m.type !== "volume") throw new UnimplementedFieldError(`engine double: container ${reg.name} mount type ${m.type} is not implemented`);
      if (m.type === "bind" && !fs.existsSync(m.source)) throw new Error(`engine double: bind source ${m.source} of ${reg.name} does not exist (a LiveConfigFile should have created it)`);
      return { Type: m.type, Source: m.source, Target: m.target, ReadOnly: Boolean(m.readOnly) };
    });
    const hc = i.healthcheck;
    const uploads: any[] = i.uploads ?? [];
    const body: any = {
      Image: image,
      Cmd: i.command,
      Env: i.envs ?? [],
      User: i.user ?? "",
      Hostname: i.hostname,
      WorkingDir: i.workingDir,
      Labels: labels,
      Healthcheck: hc
        ? { Test: hc.tests, Interval: durationNs(hc.interval), Timeout: durationNs(hc.timeout), StartPeriod: durationNs(hc.startPeriod), Retries: hc.retries }
        : undefined,
      HostConfig: {
        ReadonlyRootfs: Boolean(i.readOnly),
        Privileged: Boolean(i.privileged),
        RestartPolicy: i.restart ? { Name: i.restart } : undefined,
        Runtime: i.runtime,
        CapDrop: i.capabilities?.drops,
        CapAdd: i.capabilities?.adds,
        SecurityOpt: i.securityOpts,
        LogConfig: i.logDriver ? { Type: i.logDriver, Config: i.logOpts ?? {} } : undefined,
        Tmpfs: i.tmpfs,
        Mounts: mounts,
        Binds: binds,
        ExtraHosts: (i.hosts ?? []).map((h: any) => `${h.host}:${h.ip}`),
        NetworkMode: nets[0]?.name,
      },
      NetworkingConfig: nets[0] ? { EndpointsConfig: { [nets[0].name]: { Aliases: nets[0].aliases ?? [] } } } : undefined,
    };
    const res = await api("POST", `/containers/create?name=${encodeURIComponent(i.name)}`, body);
    if (res.status !== 201) throw new Error(`engine double: create container ${i.name}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
    const id: string = res.json.Id;
    const role = labels["dev.claude-bottle.role"];
    const created: CreatedContainer = { reg, name: i.name, id, role, identity: labels["dev.claude-bottle.identity"], substitute: sub };
    this.containers.push(created);
    for (const n of nets.slice(1)) {
      const args = ["network", "connect"];
      for (const a of n.aliases ?? []) args.push("--alias", a);
      args.push(n.name, i.name);
      await dockerOk(args);
    }
    if (uploads.length) {
      const files: TarFile[] = uploads.map((u: any) => {
        let content: string | Buffer;
        if (u.content !== undefined && u.source !== undefined) throw new UnimplementedFieldError(`engine double: upload ${u.file} of ${reg.name} sets both content and source`);
        if (u.content !== undefined) content = u.content;
        else if (u.source !== undefined) {
          content = fs.readFileSync(u.source);
          const sha = crypto.createHash("sha256").update(content).digest("hex");
          if (u.sourceHash !== undefined && u.sourceHash !== sha) throw new Error(`engine double: upload ${u.file} of ${reg.name}: sourceHash ${u.sourceHash} != sha256 of ${u.source} (${sha})`);
        } else throw new UnimplementedFieldError(`engine double: upload ${u.file} of ${reg.name} has neither content nor source (contentBase64 is not implemented)`);
        return { path: u.file, content, mode: parseInt(u.permissions ?? "0644", 8), uid: Number(u.owner ?? 0), gid: Number(u.group ?? 0) };
      });
      for (const f of files) if (!Number.isInteger(f.uid) || !Number.isInteger(f.gid)) throw new UnimplementedFieldError(`engine double: upload ${f.path} of ${reg.name}: owner/group must be numeric`);
      // Docker itself refuses this into a read-only rootfs ("container rootfs is marked read-only"), as under `pulumi up`.
      await dockerOk(["cp", "-", `${i.name}:/`], { input: tarFiles(files) });
    }
    await dockerOk(["start", i.name]);
    if (hc && (!sub || sub.awaitHealth)) await this.waitHealthy(i.name);
    if (i.mustRun) {
      await sleep(300);
      const running = await dockerOk(["inspect", "-f", "{{.State.Running}}", i.name]);
      if (running !== "true") throw new Error(`engine double: container ${i.name} must run but is not running\n${await this.logsOf(i.name)}`);
    }
  }

  async logsOf(name: string): Promise<string> {
    const r = await docker(["logs", "--tail", "40", name]);
    return (r.stdout + r.stderr).trim();
  }

  async waitHealthy(name: string, opts: { tolerateExit?: boolean } = {}): Promise<void> {
    const deadline = Date.now() + (this.opts.healthTimeoutS ?? 90) * 1000;
    let status = "";
    while (Date.now() < deadline) {
      status = (await docker(["inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{.State.Status}}", name])).stdout.trim();
      if (status.startsWith("healthy|")) return;
      if (!opts.tolerateExit && (status.endsWith("|exited") || status.endsWith("|dead"))) break;
      await sleep(500);
    }
    const health = (await docker(["inspect", "-f", "{{json .State.Health}}", name])).stdout.trim().slice(-1500);
    throw new Error(`engine double: container ${name} did not become healthy (${status})\nhealth: ${health}\nlogs:\n${await this.logsOf(name)}`);
  }

  /** Remove everything this double created (containers, networks, volumes, image tags). */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    const tryDo = async (args: string[]) => {
      const r = await docker(args);
      if (r.code !== 0 && !/No such|not found/i.test(r.stderr)) problems.push(`docker ${args.join(" ")}: ${r.stderr.trim()}`);
    };
    for (const c of [...this.containers].reverse()) await tryDo(["rm", "-f", "-v", c.name]);
    this.containers.length = 0;
    for (const n of [...this.networks].reverse()) await tryDo(["network", "rm", n]);
    this.networks.length = 0;
    for (const v of this.volumes) await tryDo(["volume", "rm", "-f", v]);
    this.volumes.length = 0;
    // Per-run tags only; the layers stay reachable through the cbtest/e2e-cache-* tag.
    for (const img of this.images) await tryDo(["rmi", img]);
    this.images.length = 0;
    this.networkInputs.clear();
    return problems;
  }
}

/** Remove anything labelled with this run id or named with this prefix (leftovers of a crash). */
export async function sweep(runId: string, prefix: string): Promise<void> {
  const list = async (args: string[]) => (await docker(args)).stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  const ctrs = new Set([
    ...(await list(["ps", "-aq", "--filter", `label=${RUN_LABEL}=${runId}`])),
    ...(await list(["ps", "-aq", "--filter", `name=^${prefix}`])),
  ]);
  if (ctrs.size) await docker(["rm", "-f", "-v", ...ctrs]);
  const nets = new Set([
    ...(await list(["network", "ls", "-q", "--filter", `label=${RUN_LABEL}=${runId}`])),
    ...(await list(["network", "ls", "--format", "{{.Name}}", "--filter", `name=^${prefix}`])).filter((n) => n.startsWith(prefix)),
  ]);
  for (const n of nets) await docker(["network", "rm", n]);
  const vols = new Set([
    ...(await list(["volume", "ls", "-q", "--filter", `label=${RUN_LABEL}=${runId}`])),
    ...(await list(["volume", "ls", "-q", "--filter", `name=${prefix}`])).filter((n) => n.startsWith(prefix)),
  ]);
  if (vols.size) await docker(["volume", "rm", "-f", ...vols]);
  const imgs = (await list(["images", "--format", "{{.Repository}}:{{.Tag}}"])).filter((n) => n.startsWith(prefix));
  for (const img of imgs) await docker(["rmi", img]);
}
