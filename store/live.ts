// The live documents of a bottle — routes, the live policy, pipelock's config (rendered from
// those two) and the approved capability Dockerfile — read as one LiveState and written back
// file by file, only where the rendered bytes differ. Used by the supervise server (the
// agent's view, a proposal's base), the operator CLI (show, approve) and, through the same
// renderers, the components at `pulumi up`.
import path from "node:path";
import { FILE_NAMES } from "../contracts/paths.ts";
import { pipelockConfigToYaml } from "../contracts/pipelock.ts";
import { EMPTY_POLICY, parsePolicyYaml, pipelockConfigFor, renderPolicyYaml } from "../contracts/policy.ts";
import type { LiveState } from "../contracts/proposals.ts";
import { parseRoutesDocument, parseRoutesYaml, renderRoutesYaml } from "../contracts/routes.ts";
import type { Role } from "../contracts/labels.ts";
import { localIo, type StateIo } from "./io.ts";
import type { HostLayout, LivePaths, StateLayout } from "./layout.ts";
import { proposalPaths } from "./proposals.ts";

export interface CurrentConfig extends LiveState {
  /** Problems reading the live files (reported, not fatal: the defaults stand in). */
  problems: string[];
}

/** The files LiveState is kept in, in the order an approval writes them: pipelock allows a host before egress routes to it. */
const LIVE_FILES = [
  { name: FILE_NAMES.policy, path: (p: LivePaths) => p.policyFile, render: (s: LiveState) => renderPolicyYaml(s.policy) },
  { name: FILE_NAMES.pipelock, path: (p: LivePaths) => p.pipelockFile, render: (s: LiveState) => pipelockConfigToYaml(pipelockConfigFor(s.routes, s.policy)), reload: "pipelock" as Role },
  { name: FILE_NAMES.routes, path: (p: LivePaths) => p.routesFile, render: (s: LiveState) => renderRoutesYaml(s.routes), reload: "egress" as Role },
];

/** The live documents; a missing file reads as its empty default, a broken one too (and is reported). */
export async function readLive(paths: LivePaths, io: StateIo = localIo): Promise<CurrentConfig> {
  const problems: string[] = [];
  const read = async <T>(file: string, parse: (text: string) => T, fallback: T): Promise<T> => {
    try {
      const text = await io.read(file);
      return text === undefined ? fallback : parse(text);
    } catch (err) {
      problems.push((err as Error).message);
      return fallback;
    }
  };
  const routes = await read(paths.routesFile, (t) => parseRoutesYaml(t, paths.routesFile), parseRoutesDocument({ routes: [] }));
  const policy = await read(paths.policyFile, (t) => parsePolicyYaml(t, paths.policyFile), EMPTY_POLICY);
  if ((await io.stamp(paths.policyFile)) === undefined && (await io.stamp(paths.pipelockFile)) !== undefined) {
    problems.push(`${paths.policyFile} does not exist (the bottle was brought up by an older claude-bottle): run \`pulumi up\` once to write it`);
  }
  const dockerfile = await read(proposalPaths(paths.superviseDir).approvedDockerfile, (t): string | null => t, null);
  return { routes, policy, dockerfile, problems };
}

/** A stamp of every live file: it changes whenever readLive's answer may. */
export async function liveStamp(paths: LivePaths, io: StateIo = localIo): Promise<string> {
  const files = [paths.routesFile, paths.policyFile, proposalPaths(paths.superviseDir).approvedDockerfile];
  return (await Promise.all(files.map((f) => io.stamp(f)))).map((s) => s ?? "-").join("|");
}

export interface FileChange {
  /** Name of the live file (routes.yaml, policy.yaml, pipelock.yaml, Dockerfile). */
  name: string;
  before: string;
  after: string;
}

/** The live files whose bytes differ between two states: what an approval rewrites. */
export function fileChanges(before: LiveState, after: LiveState): FileChange[] {
  const changes: FileChange[] = LIVE_FILES.map((f) => ({ name: f.name, before: f.render(before), after: f.render(after) })).filter((c) => c.before !== c.after);
  if (after.dockerfile !== null && after.dockerfile !== before.dockerfile) changes.push({ name: "Dockerfile", before: before.dockerfile ?? "", after: after.dockerfile });
  return changes;
}

/** One live file an approval rewrites: its bytes before and after, and the sidecar that loads it. */
export interface LiveWrite {
  /** Name of the live file (routes.yaml, policy.yaml, pipelock.yaml). */
  name: string;
  /** Its path in the state volumes. */
  file: string;
  /** What is on disk now; undefined when the file does not exist. */
  before: string | undefined;
  after: string;
  /** The sidecar that loads it (to be made to reload, and to confirm it). */
  reload?: Role;
}

/**
 * The live files whose bytes on disk differ from what `next` renders to, in the order an
 * approval writes them (pipelock allows a host before egress routes to it). Comparing with the
 * disk, not with the state the plan started from, also undoes a hand edit of a rendered file,
 * as `pulumi up` would.
 */
export async function liveWrites(paths: LivePaths, next: LiveState, io: StateIo = localIo): Promise<LiveWrite[]> {
  const out: LiveWrite[] = [];
  for (const f of LIVE_FILES) {
    const file = f.path(paths);
    const after = f.render(next);
    const before = await io.read(file);
    if (before !== after) out.push({ name: f.name, file, before, after, ...(f.reload ? { reload: f.reload } : {}) });
  }
  return out;
}

/**
 * Keep an approved Dockerfile three times: the one `pulumi up` builds from and a copy named after
 * the proposal (history), both in the bottle's directory on the machine that runs `pulumi up`,
 * and supervise's view of it in the state volume. Returns the host paths `pulumi up` reads.
 */
export async function writeApprovedDockerfile(state: { io: StateIo; layout: StateLayout }, host: HostLayout, before: LiveState, next: LiveState, opts: { proposalId: string }): Promise<string[]> {
  if (next.dockerfile === null || next.dockerfile === before.dockerfile) return [];
  await localIo.write(path.join(host.capabilityDir, `${opts.proposalId}.Dockerfile`), next.dockerfile);
  await state.io.write(proposalPaths(state.layout.superviseDir).approvedDockerfile, next.dockerfile);
  await localIo.write(host.capabilityDockerfile, next.dockerfile);
  return [host.capabilityDockerfile];
}
