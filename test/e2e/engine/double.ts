// The mock path: what the stack program registered under Pulumi mocks, applied to a real Docker
// engine by the same resource doubles the provider plugins serve (./docker.ts), one resource at
// a time in data-dependency order. The e2e tier runs through the REAL Pulumi engine instead
// (./stack.ts); this path stays for the benchmark that compares the two and for quick probes
// of single resources. Unlike `pulumi up` (which does not wait: no `wait` input), it waits for
// each container with a healthcheck to be healthy before the next one.
import path from "node:path";
import { docker, dockerOk, sleep } from "../lib/docker.ts";
import type { Registration } from "../../helpers/pulumi-mocks.ts";
import { reloadCommand } from "../../../contracts/docker.ts";
import { dockerIo } from "../../../store/docker.ts";
import { DOCKER_TYPES, dockerDoubles } from "./docker.ts";
import { UnimplementedFieldError, unimplementedFields } from "./fields.ts";
import { tlsDoubles, TLS_TYPES } from "./tls.ts";

export const T = { ...DOCKER_TYPES, ...TLS_TYPES } as const;
const DYNAMIC = new Set(["pulumi-nodejs:dynamic:Resource", "pulumi-nodejs:dynamic/claude-bottle:Resource"]);
export const isDynamic = (type: string) => DYNAMIC.has(type);

/** What the mock path does with a LiveConfigFile (the dynamic provider's own code runs under the real engine). */
export const LIVE_CONFIG_FIELDS: Record<string, string> = {
  path: "the file's path in the state container, written atomically with `mode` through it (store/docker.ts dockerIo, as the provider does)",
  content: "its content; `updateLiveConfig()` rewrites it and runs `reloadCommand(reloadContainer)`",
  kind: "recorded only",
  mode: "file mode (octal string)",
  stateContainer: "the container written through; it comes first (a dependency of the file)",
  docker: "the endpoint dockerIo reaches the state container on",
  reloadContainer: "container signalled after an update (`docker exec C sh -c 'kill -HUP 1'`)",
  __provider: "ignored: the serialized provider (the real engine runs it)",
  sha256: "an output placeholder",
};

const fieldsOf = (type: string) => (isDynamic(type) ? LIVE_CONFIG_FIELDS : (dockerDoubles[type] ?? tlsDoubles[type])?.fields);

/** Throws on the first input field no double implements. */
export function checkFields(reg: Registration): void {
  const fields = fieldsOf(reg.type);
  if (!fields) throw new UnimplementedFieldError(`engine double: resource type ${reg.type} (${reg.name}) is not implemented`);
  const missing = unimplementedFields(fields, reg.inputs);
  if (missing.length) throw new UnimplementedFieldError(`engine double: ${reg.type} "${reg.name}" sets input \`${missing[0]}\`, which the double does not implement (see test/e2e/README-engine.md)`);
}

const KIND_ORDER = (type: string) =>
  type === T.network ? 1 : type === T.volume ? 2 : type === T.image ? 3 : type === T.container ? 4 : isDynamic(type) ? 4.5 : 5;

function strings(v: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof v === "string") out.add(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => strings(x, out));
  return out;
}

function referenceKeys(reg: Registration): string[] {
  if (reg.type === T.image) return [reg.outputs.repoDigest, reg.outputs.imageName].filter(Boolean);
  if (reg.type === T.network || reg.type === T.volume || reg.type === T.container) return [reg.outputs.name].filter(Boolean);
  return [];
}

/** Engine resources in an order where every data dependency comes first. */
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
      // a live file is written through its state container; everything else by reference
      if (isDynamic(r.type)) {
        if (s.type === T.container && s.outputs.name === r.inputs.stateContainer) d.add(s);
        continue;
      }
      if (referenceKeys(s).some((k) => mine.has(k))) d.add(s);
      // a sidecar starts on the live files in the volumes it mounts (the program's dependsOn)
      if (isDynamic(s.type) && r.type === T.container && r.outputs.name !== s.inputs.stateContainer) {
        if ((r.inputs.mounts ?? []).some((m: any) => m.target === path.posix.dirname(s.inputs.path))) d.add(s);
      }
    }
    deps.set(r, d);
  }
  const done = new Set<Registration>();
  const out: Registration[] = [];
  const idx = (r: Registration) => registrations.indexOf(r);
  while (out.length < engine.length) {
    const ready = engine.filter((r) => !done.has(r) && [...deps.get(r)!].every((d) => done.has(d))).sort((a, b) => KIND_ORDER(a.type) - KIND_ORDER(b.type) || idx(a) - idx(b));
    if (!ready.length) throw new Error(`engine double: dependency cycle among ${engine.filter((r) => !done.has(r)).map((r) => r.name).join(", ")}`);
    done.add(ready[0]!);
    out.push(ready[0]!);
  }
  return out;
}

export interface Substitute {
  image: string;
  reason: string;
}

export interface EngineOptions {
  runId: string;
  log?: (line: string) => void;
  /** Use an existing image instead of building one (bench: a prebuilt agent image). Reported. */
  substitute?: (role: string, reg: Registration) => Substitute | undefined;
  healthTimeoutS?: number;
  /** An explicit subnet per network (ipamConfigs), e.g. for a fleet beyond Docker's default pools. */
  networkSubnet?: (name: string) => Promise<string | undefined>;
}

export interface CreatedContainer {
  reg: Registration;
  name: string;
  id: string;
  role?: string;
  identity?: string;
}

export class EngineDouble {
  readonly containers: CreatedContainer[] = [];
  readonly networks: string[] = [];
  readonly volumes: string[] = [];
  readonly images: string[] = [];
  readonly files: string[] = [];
  /** mock output value → real value (image repoDigest → image id). */
  readonly realOf = new Map<string, string>();
  private networkInputs = new Map<string, string>();
  private dynamicState = new Map<string, Registration>();
  private log: (l: string) => void;

  constructor(readonly opts: EngineOptions) {
    this.log = opts.log ?? ((l) => console.log(`[engine] ${l}`));
  }

  async apply(registrations: Registration[]): Promise<void> {
    for (const reg of plan(registrations)) {
      const t0 = Date.now();
      if (isDynamic(reg.type)) await this.liveConfig(reg);
      else if (reg.type === T.network) await this.network(reg);
      else if (reg.type === T.volume) await this.volume(reg);
      else if (reg.type === T.image) await this.image(reg);
      else if (reg.type === T.container) await this.container(reg);
      this.log(`${reg.type.split(":").pop()} ${reg.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }

  /** Networks only (phase 1 of a two-phase apply). */
  async applyNetworks(registrations: Registration[]): Promise<void> {
    for (const reg of plan(registrations).filter((r) => r.type === T.network)) await this.network(reg);
  }

  private async liveConfig(reg: Registration, update = false): Promise<void> {
    const i = reg.inputs;
    await dockerIo(i.stateContainer, i.docker).write(i.path, i.content, parseInt(i.mode ?? "0644", 8));
    this.files.push(`${i.stateContainer}:${i.path}`);
    this.dynamicState.set(`${i.stateContainer}:${i.path}`, reg);
    if (update && i.reloadContainer) await docker(reloadCommand(i.reloadContainer));
  }

  /** The dynamic provider's update(): rewrite a live config file (`<state container>:<path>`) and signal its container. */
  async updateLiveConfig(file: string, content: string): Promise<void> {
    const prev = this.dynamicState.get(file);
    if (!prev) throw new Error(`engine double: no live config at ${file}`);
    if (prev.inputs.content === content) return;
    await this.liveConfig({ ...prev, inputs: { ...prev.inputs, content } }, true);
  }

  private async network(reg: Registration): Promise<void> {
    const key = JSON.stringify(reg.inputs);
    const existing = this.networkInputs.get(reg.inputs.name);
    if (existing !== undefined) {
      if (existing !== key) throw new Error(`engine double: network ${reg.inputs.name} already created with different inputs`);
      return; // unchanged on a second apply: a no-op, as `pulumi up` leaves it
    }
    const subnet = await this.opts.networkSubnet?.(reg.inputs.name);
    const inputs = { ...dockerDoubles[T.network]!.defaults?.(reg.inputs), ...reg.inputs, ...(subnet ? { ipamConfigs: [{ subnet }] } : {}) };
    await dockerDoubles[T.network]!.create(reg.name, inputs);
    this.networks.push(reg.inputs.name);
    this.networkInputs.set(reg.inputs.name, key);
  }

  private async volume(reg: Registration): Promise<void> {
    if (this.volumes.includes(reg.inputs.name)) return;
    await dockerDoubles[T.volume]!.create(reg.name, reg.inputs);
    this.volumes.push(reg.inputs.name);
  }

  private async image(reg: Registration): Promise<void> {
    const role = path.basename(reg.inputs.build.context);
    const sub = this.opts.substitute?.(role, reg);
    if (sub) {
      this.realOf.set(reg.outputs.repoDigest, await dockerOk(["image", "inspect", "-f", "{{.Id}}", sub.image]));
      this.log(`SUBSTITUTE: image ${reg.inputs.imageName} (${role}) → ${sub.image}: ${sub.reason}`);
      return;
    }
    const d = dockerDoubles[T.image]!;
    const { outs } = await d.create(reg.name, d.normalize!({ ...reg.inputs }));
    this.images.push(reg.inputs.imageName);
    this.realOf.set(reg.outputs.repoDigest, outs.repoDigest);
  }

  private async container(reg: Registration): Promise<void> {
    const d = dockerDoubles[T.container]!;
    const inputs = { ...d.defaults?.(reg.inputs), ...reg.inputs, image: this.realOf.get(reg.inputs.image) ?? reg.inputs.image };
    const { id } = await d.create(reg.name, inputs);
    const labels = Object.fromEntries((reg.inputs.labels ?? []).map((l: any) => [l.label, l.value]));
    this.containers.push({ reg, name: reg.inputs.name, id, role: labels["dev.claude-bottle.role"], identity: labels["dev.claude-bottle.identity"] });
    if (reg.inputs.healthcheck) await waitHealthy(reg.inputs.name, { timeoutS: this.opts.healthTimeoutS });
  }

  /** Remove everything this double created (containers, networks, volumes, image tags). */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    const tryDo = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    for (const c of [...this.containers].reverse()) await tryDo(`container ${c.name}`, () => dockerDoubles[T.container]!.delete(c.id, { removeVolumes: true }));
    this.containers.length = 0;
    for (const n of [...this.networks].reverse()) await tryDo(`network ${n}`, () => dockerDoubles[T.network]!.delete(n, {}));
    this.networks.length = 0;
    for (const v of this.volumes) await tryDo(`volume ${v}`, () => dockerDoubles[T.volume]!.delete(v, {}));
    this.volumes.length = 0;
    for (const img of this.images) await docker(["rmi", img]);
    this.images.length = 0;
    this.networkInputs.clear();
    return problems;
  }
}

export async function logsOf(name: string): Promise<string> {
  const r = await docker(["logs", "--tail", "40", name]);
  return (r.stdout + r.stderr).trim();
}

/** Wait for a container's healthcheck to say healthy (or fail with its health log and logs). */
export async function waitHealthy(name: string, opts: { timeoutS?: number; tolerateExit?: boolean } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutS ?? 90) * 1000;
  let status = "";
  while (Date.now() < deadline) {
    status = (await docker(["inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{.State.Status}}", name])).stdout.trim();
    if (status.startsWith("healthy|")) return;
    if (!opts.tolerateExit && (status.endsWith("|exited") || status.endsWith("|dead"))) break;
    await sleep(500);
  }
  const health = (await docker(["inspect", "-f", "{{json .State.Health}}", name])).stdout.trim().slice(-1500);
  throw new Error(`container ${name} did not become healthy (${status})\nhealth: ${health}\nlogs:\n${await logsOf(name)}`);
}

/**
 * Remove anything named with this run's prefix (leftovers of a crash) — never anything else, never
 * a prune. The run's images (`pulumi destroy` keeps them: the docker provider never deletes one)
 * first get a cache tag per role, so their layers stay for the next run's builds.
 */
export async function sweep(prefix: string): Promise<void> {
  const list = async (args: string[]) => (await docker(args)).stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  const ctrs = (await list(["ps", "-a", "--format", "{{.Names}}", "--filter", `name=^${prefix}`])).filter((n) => n.startsWith(prefix));
  if (ctrs.length) await docker(["rm", "-f", "-v", ...ctrs]);
  for (const n of (await list(["network", "ls", "--format", "{{.Name}}", "--filter", `name=^${prefix}`])).filter((n) => n.startsWith(prefix))) await docker(["network", "rm", n]);
  const vols = (await list(["volume", "ls", "-q", "--filter", `name=${prefix}`])).filter((n) => n.startsWith(prefix));
  if (vols.length) await docker(["volume", "rm", "-f", ...vols]);
  for (const img of (await list(["images", "--format", "{{.Repository}}:{{.Tag}}"])).filter((n) => n.startsWith(prefix))) {
    await docker(["tag", img, `cbtest/e2e-cache-${img.slice(prefix.length).split(":")[0]}:latest`]);
    await docker(["rmi", img]);
  }
}
