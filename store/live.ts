// Reading the live config of a bottle and computing what approving a proposal would
// make of it. Pure apart from reading files; used by the supervise server (the agent's
// current-config view, a proposal's base) and by the operator CLI (show, approve).
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { parseRoutesDocument, type Route, type RoutesDocument, renderRoutesYaml } from "../contracts/egress.ts";
import { parsePipelockConfig, pipelockConfigToYaml, renderPipelockConfig, PipelockConfigSchema, type PipelockConfig } from "../contracts/pipelock.ts";
import { ConfigError, parseWith } from "../contracts/validation.ts";
import { canonicalJson, routeHosts, superviseLayout, type Proposal } from "../contracts/proposals.ts";

export const ROUTES_FILE_NAME = "routes.yaml";
export const PIPELOCK_FILE_NAME = "pipelock.yaml";

export interface ConfigDirs {
  egressConfigDir: string;
  pipelockConfigDir: string;
  superviseDir: string;
}

export interface CurrentConfig {
  routes: RoutesDocument;
  /** The live pipelock config; undefined when the file does not exist (yet). */
  pipelock?: PipelockConfig;
  /** Hosts pipelock allows beyond the egress route hosts. */
  extraAllowlist: string[];
  /** The last approved capability Dockerfile (null: the image's own). */
  dockerfile: string | null;
  /** Problems reading the live files (reported, not fatal). */
  problems: string[];
}

/** The one rendering of routes.yaml (egress parses it with parseRoutesDocument). */
export { renderRoutesYaml };

/** A live file's text, or undefined when it does not exist (yet). */
function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export function readRoutesFile(file: string): RoutesDocument | undefined {
  const text = readIfExists(file);
  if (text === undefined) return undefined;
  let data: unknown;
  try {
    data = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML: ${(err as Error).message}`]);
  }
  return parseRoutesDocument(data, file);
}

export function readPipelockFile(file: string): PipelockConfig | undefined {
  const text = readIfExists(file);
  return text === undefined ? undefined : parsePipelockConfig(text, file);
}

export function extraAllowlist(pipelock: PipelockConfig | undefined, routes: RoutesDocument): string[] {
  if (!pipelock) return [];
  const fromRoutes = new Set(routeHosts(routes));
  return pipelock.api_allowlist.filter((h) => !fromRoutes.has(h)).sort();
}

export function readCurrentConfig(dirs: ConfigDirs): CurrentConfig {
  const problems: string[] = [];
  let routes: RoutesDocument = { version: 1, routes: [] };
  let pipelock: PipelockConfig | undefined;
  try {
    routes = readRoutesFile(path.join(dirs.egressConfigDir, ROUTES_FILE_NAME)) ?? routes;
  } catch (err) {
    problems.push((err as Error).message);
  }
  try {
    pipelock = readPipelockFile(path.join(dirs.pipelockConfigDir, PIPELOCK_FILE_NAME));
  } catch (err) {
    problems.push((err as Error).message);
  }
  let dockerfile: string | null = null;
  try {
    dockerfile = fs.readFileSync(superviseLayout(dirs.superviseDir).approvedDockerfile, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") problems.push((err as Error).message);
  }
  return { routes, pipelock, extraAllowlist: extraAllowlist(pipelock, routes), dockerfile, problems };
}

export interface FileChange {
  /** Name of the live file (routes.yaml, pipelock.yaml, Dockerfile). */
  name: string;
  before: string;
  after: string;
}

export interface PlannedChange {
  summary: string[];
  /** Places where the live config moved since the proposal and the proposal touches the same entry. */
  conflicts: string[];
  files: FileChange[];
  routes?: RoutesDocument;
  pipelock?: PipelockConfig;
  extraAllowlist?: string[];
  dockerfile?: string;
}

function describeRoute(r: Route): string {
  const parts = [r.host];
  if (r.methods) parts.push(r.methods.join(","));
  if (r.path_allowlist) parts.push(r.path_allowlist.join(" "));
  if (r.auth) parts.push(`auth ${r.auth.scheme} from $${r.auth.token_ref}`);
  return parts.join(" ");
}

/** Apply base → proposed onto live, route by route (routes are keyed by host). */
export function rebaseRoutes(base: RoutesDocument, proposed: RoutesDocument, live: RoutesDocument) {
  const index = (d: RoutesDocument) => new Map(d.routes.map((r) => [r.host, r]));
  const B = index(base);
  const P = index(proposed);
  const L = index(live);
  const same = (a?: Route, b?: Route) => canonicalJson(a ?? null) === canonicalJson(b ?? null);
  const conflicts: string[] = [];
  const summary: string[] = [];
  const result = new Map<string, Route | undefined>();
  const hosts = [...new Set([...P.keys(), ...L.keys(), ...B.keys()])];
  for (const h of hosts) {
    const b = B.get(h), p = P.get(h), l = L.get(h);
    if (same(b, p)) {
      result.set(h, l);
      continue;
    }
    if (!same(l, b) && !same(l, p)) conflicts.push(`route ${h} changed since the proposal was made (live: ${l ? describeRoute(l) : "absent"})`);
    result.set(h, p);
    if (same(l, p)) continue;
    if (!l && p) summary.push(`+ route ${describeRoute(p)}`);
    else if (l && !p) summary.push(`- route ${describeRoute(l)}`);
    else if (l && p) summary.push(`~ route ${describeRoute(l)}  →  ${describeRoute(p)}`);
  }
  const order = [...P.keys(), ...live.routes.map((r) => r.host).filter((h) => !P.has(h))];
  const routes = order.flatMap((h) => (result.get(h) ? [result.get(h)!] : []));
  return { routes: parseRoutesDocument({ version: 1, routes }, "resulting routes document"), conflicts, summary };
}

function withAllowlist(live: PipelockConfig | undefined, allowlist: string[]): PipelockConfig {
  const sorted = [...new Set(allowlist)].sort();
  if (!live) return renderPipelockConfig({ allowlist: sorted });
  return parseWith(PipelockConfigSchema, { ...live, api_allowlist: sorted }, "resulting pipelock config");
}

/** What approving `proposal` would do to `current`. Throws ConfigError if the result is invalid. */
export function planChange(proposal: Proposal, current: CurrentConfig): PlannedChange {
  const change = proposal.change;
  const pipelockBefore = current.pipelock ? pipelockConfigToYaml(current.pipelock) : "";
  if (change.kind === "egress_routes") {
    const { routes, conflicts, summary } = rebaseRoutes(change.base, change.routes, current.routes);
    const pipelock = withAllowlist(current.pipelock, [...routeHosts(routes), ...current.extraAllowlist]);
    const files: FileChange[] = [{ name: ROUTES_FILE_NAME, before: renderRoutesYaml(current.routes), after: renderRoutesYaml(routes) }];
    const pipelockAfter = pipelockConfigToYaml(pipelock);
    if (pipelockAfter !== pipelockBefore) files.push({ name: PIPELOCK_FILE_NAME, before: pipelockBefore, after: pipelockAfter });
    return { summary: summary.length ? summary : ["no change: the live routes already match"], conflicts, files, routes, pipelock, extraAllowlist: current.extraAllowlist };
  }
  if (change.kind === "pipelock_allowlist") {
    const added = change.allowlist.filter((h) => !change.base.includes(h));
    const removed = change.base.filter((h) => !change.allowlist.includes(h));
    const conflicts = [...added, ...removed].filter((h) => change.base.includes(h) !== current.extraAllowlist.includes(h)).map((h) => `allowlist entry ${h} changed since the proposal was made`);
    const extra = [...new Set([...current.extraAllowlist.filter((h) => !removed.includes(h)), ...added])].sort();
    const pipelock = withAllowlist(current.pipelock, [...routeHosts(current.routes), ...extra]);
    const summary = [
      ...added.filter((h) => !current.extraAllowlist.includes(h)).map((h) => `+ pipelock allowlist ${h}`),
      ...removed.filter((h) => current.extraAllowlist.includes(h)).map((h) => `- pipelock allowlist ${h}`),
    ];
    return {
      summary: summary.length ? summary : ["no change: the live allowlist already matches"],
      conflicts,
      files: [{ name: PIPELOCK_FILE_NAME, before: pipelockBefore, after: pipelockConfigToYaml(pipelock) }],
      pipelock,
      extraAllowlist: extra,
    };
  }
  const conflicts = (change.base ?? null) !== current.dockerfile ? ["another capability change was approved since the proposal was made"] : [];
  return {
    summary: [current.dockerfile === change.dockerfile ? "no change: this Dockerfile is already approved" : "~ agent Dockerfile replaced (the agent image must be rebuilt)"],
    conflicts,
    files: [{ name: "Dockerfile", before: current.dockerfile ?? "", after: change.dockerfile }],
    dockerfile: change.dockerfile,
  };
}
