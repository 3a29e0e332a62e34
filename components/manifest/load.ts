// Reading a manifest from disk and resolving one bottle + agent into the plain, fully
// validated BottleSpec the components take. Every user mistake becomes a ConfigError
// naming the file and the key path; nothing here creates resources.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { SKILL_NAME_RE } from "../../contracts/agent.ts";
import type { GateUpstream } from "../../contracts/git-gate.ts";
import { ExtraAllowlistSchema, type LivePolicy } from "../../contracts/policy.ts";
import { PROPOSAL_KINDS, STACK_CONFIG_NAMESPACE } from "../../contracts/proposals.ts";
import { RoutesDocumentSchema, parseRoutesDocument, tokenRefs, type RoutesDocument } from "../../contracts/routes.ts";
import { ServerToolsSchema } from "../../contracts/server-tools.ts";
import { ConfigError, didYouMean, parseWith, parseYamlText } from "../../contracts/validation.ts";
import {
  AgentFrontMatterSchema,
  ManifestSchema,
  NAME_RE,
  type AgentSpec,
  type BottleManifest,
  type Manifest,
} from "./schema.ts";

export const DEFAULT_MANIFEST_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "default", "claude-bottle.yaml");

export interface LoadedManifest {
  file: string;
  manifest: Manifest;
  agents: AgentSpec[];
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p;
}

function resolveFrom(baseDir: string, p: string): string {
  return path.resolve(baseDir, expandHome(p));
}

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [code === "ENOENT" ? `${what} not found` : `${what} cannot be read (${code})`]);
  }
}

/** Split `---\nfront matter\n---\nbody`. */
export function parseAgentMarkdown(text: string, file: string): AgentSpec {
  const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)([\s\S]*)$/.exec(text);
  if (!m) throw new ConfigError(file, ['expected YAML front-matter between "---" lines at the top, e.g.\n---\nbottle: dev\n---\n<the agent\'s prompt>']);
  const front = parseWith(AgentFrontMatterSchema, parseYamlText(m[1]!, file) ?? {}, file);
  const name = path.basename(file, ".md");
  if (!NAME_RE.test(name)) throw new ConfigError(file, [`agent file name "${name}" must be lowercase letters, digits and dashes (at most 31): it names containers`]);
  const prompt = m[2]!.trim();
  if (!prompt) throw new ConfigError(file, ["the body (the agent's prompt) is empty"]);
  const skills: Record<string, string> = {};
  front.skills.forEach((dir, i) => {
    const abs = resolveFrom(path.dirname(file), dir);
    const skill = path.basename(abs);
    if (!SKILL_NAME_RE.test(skill)) throw new ConfigError(file, [`skills[${i}]: directory name "${skill}" names the skill: lowercase letters, digits and dashes`]);
    if (skills[skill] !== undefined) throw new ConfigError(file, [`skills[${i}]: a second skill named "${skill}"`]);
    try {
      skills[skill] = fs.readFileSync(path.join(abs, "SKILL.md"), "utf8");
    } catch {
      throw new ConfigError(file, [`skills[${i}]: ${path.join(abs, "SKILL.md")} cannot be read (a skill is a directory holding SKILL.md)`]);
    }
  });
  return { bottle: front.bottle, description: front.description, model: front.model, skills, name, prompt, file };
}

export function loadManifest(file: string): LoadedManifest {
  const abs = path.resolve(expandHome(file));
  const manifest = parseWith(ManifestSchema, parseYamlText(readText(abs, "manifest"), abs) ?? {}, abs);
  const agentsDir = resolveFrom(path.dirname(abs), manifest.agents);
  let entries: string[];
  try {
    entries = fs.readdirSync(agentsDir).filter((f) => f.endsWith(".md")).sort();
  } catch {
    throw new ConfigError(abs, [`agents: directory "${agentsDir}" not found (agents are markdown files with YAML front-matter)`]);
  }
  const agents = entries.map((f) => parseAgentMarkdown(readText(path.join(agentsDir, f), "agent file"), path.join(agentsDir, f)));
  for (const agent of agents) {
    if (!(agent.bottle in manifest.bottles)) {
      const hint = didYouMean(agent.bottle, Object.keys(manifest.bottles));
      throw new ConfigError(agent.file, [`bottle: "${agent.bottle}" is not declared in ${abs}` + (hint ? ` — did you mean "${hint}"?` : ` (declared: ${Object.keys(manifest.bottles).join(", ")})`)]);
    }
  }
  return { file: abs, manifest, agents };
}

/** Values approved at run time (supervise) and persisted in the stack's config; they replace the manifest's. */
export interface StackOverrides {
  routes?: unknown;
  pipelockAllowlist?: unknown;
  serverTools?: unknown;
}

export interface GitUpstreamSpec extends Pick<GateUpstream, "protected_refs" | "allow_force_push" | "allow_delete"> {
  name: string;
  url: string;
  known_host_key: string;
  /** PEM/OpenSSH private key text (a secret: the component wraps it). */
  identityKey: string;
}

/** Everything a Bottle needs, validated and resolved; plain data (no Outputs). */
export interface BottleSpec {
  bottleName: string;
  identity: string;
  agent: AgentSpec;
  manifestFile: string;
  bottle: BottleManifest;
  routes: RoutesDocument;
  /** The live policy document: pipelock's extra allowlist and SSRF exemptions. */
  policy: LivePolicy;
  /** token_ref → token value, read from the environment of `pulumi up`. */
  tokens: Record<string, string>;
  upstreams: GitUpstreamSpec[];
  /** git-gate's /etc/hosts: every upstream's extra_hosts, then the bottle's, merged. */
  gitGateHosts: { host: string; ip: string }[];
  extraCaPems: string[];
  workspace?: string;
}

function parseOverride(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return YAML.parse(value);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface ResolveOptions {
  agent?: string;
  overrides?: StackOverrides;
  env?: NodeJS.ProcessEnv;
}

export function resolveBottle(loaded: LoadedManifest, opts: ResolveOptions = {}): BottleSpec {
  const env = opts.env ?? process.env;
  const { manifest, agents, file } = loaded;
  if (!agents.length) throw new ConfigError(file, ["no agents: add a markdown file to the agents directory"]);
  let agent: AgentSpec;
  if (opts.agent) {
    const found = agents.find((a) => a.name === opts.agent);
    if (!found) {
      const hint = didYouMean(opts.agent, agents.map((a) => a.name));
      throw new ConfigError("stack config claude-bottle:agent", [`no agent named "${opts.agent}"` + (hint ? ` — did you mean "${hint}"?` : ` (agents: ${agents.map((a) => a.name).join(", ")})`)]);
    }
    agent = found;
  } else agent = agents[0]!;

  const bottleName = agent.bottle;
  const bottle = manifest.bottles[bottleName]!;
  const base = path.dirname(file);
  const at = (...p: (string | number)[]) => ["bottles", bottleName, ...p];

  const stackConfig = (key: string) => `stack config ${STACK_CONFIG_NAMESPACE}:${key}`;
  // The routes and the server-tool switches are approved (and persisted) separately; routes.yaml carries both.
  const server_tools = opts.overrides?.serverTools !== undefined
    ? parseWith(ServerToolsSchema, parseOverride(opts.overrides.serverTools), stackConfig(PROPOSAL_KINDS.server_tools.configKey))
    : bottle.egress.server_tools;
  const routesOverride = opts.overrides?.routes !== undefined ? parseOverride(opts.overrides.routes) : undefined;
  const routes = routesOverride !== undefined
    ? parseRoutesDocument(isPlainObject(routesOverride) ? { ...routesOverride, server_tools } : routesOverride, stackConfig(PROPOSAL_KINDS.egress_routes.configKey))
    : parseWith(RoutesDocumentSchema, { version: 1, routes: bottle.egress.routes, server_tools }, file, ["bottles", bottleName, "egress"]);
  const policy: LivePolicy = {
    version: 1,
    pipelock_allowlist: opts.overrides?.pipelockAllowlist !== undefined
      ? parseWith(ExtraAllowlistSchema, parseOverride(opts.overrides.pipelockAllowlist), stackConfig(PROPOSAL_KINDS.pipelock_allowlist.configKey))
      : bottle.pipelock.allowlist,
    ssrf_ip_allowlist: bottle.pipelock.ssrf_ip_allowlist,
    ...(bottle.pipelock.max_response_mib !== undefined ? { max_response_mib: bottle.pipelock.max_response_mib } : {}),
    ...(bottle.pipelock.max_body_mib !== undefined ? { max_body_mib: bottle.pipelock.max_body_mib } : {}),
  };

  const problems: string[] = [];
  const tokens: Record<string, string> = {};
  for (const ref of tokenRefs(routes)) {
    const value = env[ref];
    const i = routes.routes.findIndex((r) => r.auth?.token_ref === ref);
    if (value === undefined || value === "") {
      problems.push(`bottles.${bottleName}.egress.routes[${i}].auth.token_ref: environment variable ${ref} is not set — export ${ref}=<token> before \`pulumi up\`/\`pulumi preview\` (it is stored only as a Pulumi secret)`);
    } else tokens[ref] = value;
  }

  const upstreams: GitUpstreamSpec[] = [];
  bottle.git.upstreams.forEach((u, i) => {
    const keyFile = resolveFrom(base, u.identity_file);
    let identityKey = "";
    try {
      identityKey = fs.readFileSync(keyFile, "utf8");
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(identityKey)) problems.push(`${at("git", "upstreams", i, "identity_file").join(".").replace(/\.(\d+)\./g, "[$1].")}: ${keyFile} is not a private key (PEM or OpenSSH)`);
    } catch {
      problems.push(`bottles.${bottleName}.git.upstreams[${i}].identity_file: cannot read ${keyFile}`);
    }
    upstreams.push({ name: u.name, url: u.url, known_host_key: u.known_host_key, protected_refs: u.protected_refs, allow_force_push: u.allow_force_push, allow_delete: u.allow_delete, identityKey });
  });
  const gitGateHosts = mergeExtraHosts(bottle.git.upstreams, bottle.extra_hosts, `bottles.${bottleName}`, problems);
  const names = new Map<string, number>();
  bottle.git.upstreams.forEach((u, i) => {
    if (names.has(u.name)) problems.push(`bottles.${bottleName}.git.upstreams[${i}].name: "${u.name}" is already used by upstreams[${names.get(u.name)}]`);
    names.set(u.name, i);
  });

  const extraCaPems: string[] = [];
  bottle.extra_ca_files.forEach((f, i) => {
    const abs = resolveFrom(base, f);
    try {
      const pem = fs.readFileSync(abs, "utf8");
      if (!pem.includes("-----BEGIN CERTIFICATE-----")) problems.push(`bottles.${bottleName}.extra_ca_files[${i}]: ${abs} holds no PEM certificate`);
      else extraCaPems.push(pem);
    } catch {
      problems.push(`bottles.${bottleName}.extra_ca_files[${i}]: cannot read ${abs}`);
    }
  });

  let workspace: string | undefined;
  if (bottle.workspace) {
    workspace = resolveFrom(base, bottle.workspace);
    if (!fs.existsSync(workspace) || !fs.statSync(workspace).isDirectory()) problems.push(`bottles.${bottleName}.workspace: ${workspace} is not a directory`);
  }

  if (problems.length) throw new ConfigError(file, problems);
  return {
    bottleName,
    identity: `${bottleName}-${agent.name}`,
    agent,
    manifestFile: file,
    bottle,
    routes,
    policy,
    tokens,
    upstreams,
    gitGateHosts,
    extraCaPems,
    workspace,
  };
}

/**
 * Merge every upstream's extra_hosts, then the bottle's, into one list for the gate container
 * (one /etc/hosts). The same host at the same IP is listed once; the same host at two IPs is
 * a problem naming both key paths (and both upstreams).
 */
export function mergeExtraHosts(
  upstreams: readonly { name: string; extra_hosts?: Record<string, string> | undefined }[],
  bottleHosts: Record<string, string>,
  at: string,
  problems: string[],
): { host: string; ip: string }[] {
  const seen = new Map<string, { ip: string; path: string; upstream?: string }>();
  const out: { host: string; ip: string }[] = [];
  const add = (rawHost: string, rawIp: string, path: string, upstream?: string) => {
    const host = rawHost.trim().toLowerCase().replace(/\.$/, "");
    const ip = rawIp.trim();
    const prev = seen.get(host);
    if (!prev) {
      seen.set(host, { ip, path, upstream });
      out.push({ host, ip });
    } else if (prev.ip !== ip) {
      const who = (u: string | undefined) => (u ? `upstream "${u}"` : "the bottle");
      problems.push(
        `${path}: ${who(upstream)} maps ${host} to ${ip}, but ${who(prev.upstream)} (${prev.path}) maps it to ${prev.ip}; ` +
          `the gate has one /etc/hosts, so they must agree on its address`,
      );
    }
  };
  upstreams.forEach((u, i) => {
    for (const [host, ip] of Object.entries(u.extra_hosts ?? {})) add(host, ip, `${at}.git.upstreams[${i}].extra_hosts.${host}`, u.name);
  });
  for (const [host, ip] of Object.entries(bottleHosts)) add(host, ip, `${at}.extra_hosts.${host}`);
  return out;
}
