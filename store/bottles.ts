// bottle.json, the record a Bottle writes at `pulumi up` into its state volume, and finding
// every bottle through the Docker API: the state containers (label dev.claude-bottle.role=state)
// on every engine the operator's docker CLI contexts or DOCKER_HOST reach, each read through its
// own state container (store/docker.ts).
import { z } from "zod";
import { LABEL_BOTTLE, LABEL_ROLE } from "../contracts/labels.ts";
import { parseWith } from "../contracts/validation.ts";
import { dockerIo, runDocker, type DockerEndpoint } from "./docker.ts";
import type { StateIo } from "./io.ts";
import { listProposals, type ProposalEntry } from "./proposals.ts";
import { stateLayout, type StateLayout } from "./layout.ts";

export const BottleRecordSchema = z.strictObject({
  version: z.literal(2),
  identity: z.string(),
  bottle: z.string(),
  agent: z.string(),
  stack: z.string(),
  project: z.string(),
  /** Directory of the Pulumi project, so approvals can persist into Pulumi.<stack>.yaml. */
  projectDir: z.string(),
  /** The bottle's directory on the machine that runs `pulumi up` (store/layout.ts hostLayout): where an approved capability Dockerfile goes. */
  hostDir: z.string(),
  /** role → container name (the state container included). */
  containers: z.record(z.string(), z.string()),
  /** proposal kind → the stack config key (without the `claude-bottle:` namespace) its approvals persist under (contracts/proposals.ts stackConfigKeys). */
  configKeys: z.record(z.string(), z.string()),
});

export type BottleRecord = z.output<typeof BottleRecordSchema>;

export function renderBottleRecord(record: BottleRecord): string {
  return JSON.stringify(parseWith(BottleRecordSchema, record, "bottle record"), null, 2) + "\n";
}

export function parseBottleRecord(text: string, where: string): BottleRecord {
  return parseWith(BottleRecordSchema, JSON.parse(text), where);
}

export interface FoundBottle {
  record: BottleRecord;
  /** Its state: through its state container, or (tests) a directory standing in for the volumes. */
  io: StateIo;
  layout: StateLayout;
  /** The engine it runs on, as this operator reaches it (its sidecars are reached there too). */
  endpoint: DockerEndpoint;
  /** Which host, for listings: the context (or DOCKER_HOST) it was found through, and the daemon's address. */
  host: { label: string; address: string };
}

/** Where bottles are found. */
export interface BottleSource {
  /** Every bottle there; an unreachable engine or an unreadable record is reported through onBad, not fatal. */
  bottles(onBad?: (msg: string) => void): Promise<FoundBottle[]>;
  /** Where it looks, for messages. */
  readonly where: string;
}

/** An engine the operator reaches: an endpoint, what to call it, and its daemon address. */
export interface OperatorEngine {
  endpoint: DockerEndpoint;
  label: string;
  address: string;
}

/** `docker context ls --format '{{json .}}'` lines → contexts (name, daemon address, current). */
export function parseContexts(output: string): { name: string; address: string; current: boolean; error: string }[] {
  const out: { name: string; address: string; current: boolean; error: string }[] = [];
  for (const line of output.split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    try {
      const c = JSON.parse(line) as Record<string, unknown>;
      if (typeof c.Name !== "string" || !c.Name) continue;
      out.push({ name: c.Name, address: String(c.DockerEndpoint ?? ""), current: c.Current === true || c.Current === "true", error: String(c.Error ?? "") });
    } catch {
      /* not a context line */
    }
  }
  return out;
}

/**
 * The engines the operator's docker CLI reaches: DOCKER_HOST when set, then every context
 * (`docker context ls`), the current one first. Two of them may be one engine; the bottles
 * found are told apart by their state container's id.
 */
export async function operatorEngines(env: NodeJS.ProcessEnv = process.env, bin = "docker"): Promise<OperatorEngine[]> {
  const out: OperatorEngine[] = [];
  if (env.DOCKER_HOST) {
    const certPath = env.DOCKER_TLS_VERIFY && env.DOCKER_CERT_PATH ? env.DOCKER_CERT_PATH : undefined;
    out.push({ endpoint: { host: env.DOCKER_HOST, ...(certPath ? { certPath } : {}) }, label: "DOCKER_HOST", address: env.DOCKER_HOST });
  }
  const r = await runDocker({}, ["context", "ls", "--format", "{{json .}}"], { bin, timeoutMs: 20_000 });
  const contexts = r.code === 0 ? parseContexts(r.stdout.toString()) : [];
  contexts.sort((a, b) => Number(b.current) - Number(a.current) || a.name.localeCompare(b.name));
  for (const c of contexts) if (!c.error) out.push({ endpoint: { context: c.name }, label: c.name, address: c.address });
  if (!out.length) out.push({ endpoint: { host: "unix:///var/run/docker.sock" }, label: "default", address: "unix:///var/run/docker.sock" });
  return out;
}

/** `docker ps` of the running state containers: id, name. */
export function parseStateContainers(output: string): { id: string; name: string }[] {
  return output
    .split("\n")
    .map((l) => l.trim().split("\t"))
    .filter((f) => f.length >= 2 && /^[0-9a-f]{12,64}$/.test(f[0]!))
    .map(([id, name]) => ({ id: id!, name: name! }));
}

/** Run `fn` over `items`, at most `n` at a time, results in order. */
async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

export interface DockerSourceOptions {
  /** The engines to look at; default operatorEngines(). */
  engines?: OperatorEngine[];
  /** Only state containers whose name starts with this (a test sharing an engine with others). */
  namePrefix?: string;
  /** The docker CLI; default `docker` on PATH. */
  bin?: string;
}

/** Every bottle on every engine the operator reaches: the state containers, their records read through them. */
export function dockerBottles(opts: DockerSourceOptions = {}): BottleSource {
  const bin = opts.bin ?? "docker";
  return {
    where: "the Docker engines of your docker contexts and DOCKER_HOST",
    async bottles(onBad) {
      const engines = opts.engines ?? (await operatorEngines(process.env, bin));
      const seen = new Set<string>();
      const found: { engine: OperatorEngine; name: string }[] = [];
      const listed = await Promise.all(
        engines.map(async (engine) => {
          const r = await runDocker(engine.endpoint, ["ps", "--no-trunc", "--filter", `label=${LABEL_ROLE}=state`, "--filter", `label=${LABEL_BOTTLE}`, "--format", "{{.ID}}\t{{.Names}}"], { bin, timeoutMs: 20_000 });
          if (r.code !== 0) onBad?.(`cannot list bottles on ${engine.label} (${engine.address}): ${r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`}`);
          return r.code === 0 ? parseStateContainers(r.stdout.toString()) : [];
        }),
      );
      engines.forEach((engine, i) => {
        for (const c of listed[i]!) {
          if (seen.has(c.id) || (opts.namePrefix && !c.name.startsWith(opts.namePrefix))) continue;
          seen.add(c.id);
          found.push({ engine, name: c.name });
        }
      });
      const layout = stateLayout();
      const out = await pool(found, 8, async ({ engine, name }): Promise<FoundBottle | undefined> => {
        const io = dockerIo(name, engine.endpoint, { bin });
        const where = `${name}:${layout.record} (${engine.label})`;
        try {
          const text = await io.read(layout.record);
          if (text === undefined) {
            onBad?.(`skipping ${name} on ${engine.label}: it holds no ${layout.record} yet`);
            return undefined;
          }
          return { record: parseBottleRecord(text, where), io, layout, endpoint: engine.endpoint, host: { label: engine.label, address: engine.address } };
        } catch (err) {
          onBad?.(`skipping ${where}: ${(err as Error).message}`);
          return undefined;
        }
      });
      return out.filter((b): b is FoundBottle => b !== undefined).sort((a, b) => a.record.identity.localeCompare(b.record.identity) || a.host.label.localeCompare(b.host.label));
    },
  };
}

export interface FoundProposal extends ProposalEntry {
  bottle: FoundBottle;
}

/** Every proposal of every bottle a source finds, with its decision if it has one. */
export async function allProposals(source: BottleSource, onBad?: (msg: string) => void, bottles?: FoundBottle[]): Promise<FoundProposal[]> {
  const out: FoundProposal[] = [];
  for (const bottle of bottles ?? (await source.bottles(onBad))) {
    for (const e of await listProposals(bottle.layout.superviseDir, bottle.io, (file, err) => onBad?.(`skipping ${file}: ${err.message}`))) out.push({ ...e, bottle });
  }
  return out;
}
