// Shared by every contract schema: parse plain data with zod and turn failures into
// errors that name the file, the key path and what was expected — never a stack trace.
import { parse as parseDomain } from "tldts";
import { z } from "zod";
import YAML from "yaml";

export class ConfigError extends Error {
  constructor(
    readonly where: string,
    readonly problems: string[],
  ) {
    super(`${where}: ${problems.length === 1 ? problems[0] : "\n  - " + problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/** `bottles.dev.egress.routes[2].auth.scheme` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const key = String(part);
      const plain = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key);
      out += plain ? (out ? "." : "") + key : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const prefixed = candidates.find((c) => lower.length >= 3 && (c.toLowerCase().startsWith(lower) || lower.startsWith(c.toLowerCase())));
  if (prefixed) return prefixed;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

type AnySchema = z.core.$ZodType;

function unwrap(s: AnySchema): AnySchema {
  const def = (s as any)._zod.def;
  switch (def.type) {
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "readonly":
    case "catch":
      return unwrap(def.innerType);
    case "pipe":
      return unwrap(def.in);
    case "lazy":
      return unwrap(def.getter());
    default:
      return s;
  }
}

/** Follow a data path through a schema to the schema at its end (for did-you-mean); a union tries each option. */
function schemaAt(schema: AnySchema, path: readonly PropertyKey[]): AnySchema | undefined {
  const node = unwrap(schema);
  if (!path.length) return node;
  const [part, ...rest] = path;
  const def = (node as any)._zod.def;
  if (def.type === "union") {
    for (const option of def.options as AnySchema[]) {
      const found = schemaAt(option, path);
      if (found) return found;
    }
    return undefined;
  }
  const next = def.type === "object" ? def.shape[part as string] : def.type === "array" ? def.element : def.type === "record" ? def.valueType : undefined;
  return next ? schemaAt(next, rest) : undefined;
}

function describeIssue(schema: AnySchema, issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): string[] {
  const full = [...prefix, ...issue.path];
  const at = formatPath(full) || "(top level)";
  if (issue.code === "unrecognized_keys") {
    const holder = schemaAt(schema, issue.path);
    const known = holder && (holder as any)._zod.def.type === "object" ? Object.keys((holder as any)._zod.def.shape) : [];
    return issue.keys.map((key) => {
      const suggestion = didYouMean(key, known);
      const keyPath = formatPath([...full, key]);
      return `${keyPath}: unknown key "${key}"` + (suggestion ? ` — did you mean "${suggestion}"?` : known.length ? ` (expected one of: ${known.join(", ")})` : "");
    });
  }
  if (issue.code === "invalid_union" && issue.message && issue.message !== "Invalid input") {
    return [`${at}: ${issue.message}`];
  }
  if (issue.code === "invalid_union" && issue.errors.length) {
    // Report the branch that got furthest into the data (deepest issue path), then the one
    // with the fewest problems, rather than "invalid input".
    const depth = (errs: z.core.$ZodIssue[]) => Math.max(...errs.map((e) => e.path.length));
    const best = [...issue.errors].sort((a, b) => depth(b) - depth(a) || a.length - b.length)[0]!;
    return best.flatMap((e) => describeIssue(schema, { ...e, path: [...issue.path, ...e.path] } as z.core.$ZodIssue, prefix));
  }
  if (issue.code === "invalid_key") {
    return [`${at}: invalid name: ${issue.issues.map((i) => i.message).join("; ")}`];
  }
  if (issue.code === "invalid_type") {
    const input = (issue as any).input;
    if (input === undefined) return [`${at}: required ${issue.expected} is missing`];
    const shown = typeof input === "string" ? JSON.stringify(input.length > 40 ? input.slice(0, 40) + "…" : input) : Array.isArray(input) ? "a list" : input === null ? "null" : typeof input === "object" ? "a mapping" : String(input);
    return [`${at}: expected ${issue.expected}, got ${shown}`];
  }
  return [`${at}: ${issue.message}`];
}

/**
 * Validate `data` against `schema`. On failure throw a ConfigError whose lines read
 * `<path>: <what was wrong and what was expected>`; `where` names the file.
 */
export function parseWith<S extends AnySchema>(schema: S, data: unknown, where: string, prefix: readonly PropertyKey[] = []): z.output<S> {
  const result = z.safeParse(schema, data, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => describeIssue(schema, issue, prefix));
  throw new ConfigError(where, [...new Set(problems)]);
}

/** A host name (no scheme, port or path); `*.` prefix for wildcard when allowed. */
export const HOSTNAME_RE = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const IPV4_LIKE_RE = /^[0-9.]+$|^0x/i;

export const hostName = (wildcard: boolean) =>
  z
    .string()
    .transform((s) => s.trim().toLowerCase().replace(/\.$/, ""))
    .superRefine((host, ctx) => {
      const name = wildcard && host.startsWith("*.") ? host.slice(2) : host;
      if (host.includes("://") || host.includes("/") || host.includes(":")) {
        ctx.addIssue({ code: "custom", message: `expected a bare host name like "api.example.com", got "${host}" (no scheme, port or path)` });
      } else if (IPV4_LIKE_RE.test(name) || host.includes("[")) {
        ctx.addIssue({ code: "custom", message: `expected a host name, got the IP-like "${host}": routes and allowlists match names only` });
      } else if (!HOSTNAME_RE.test(name)) {
        ctx.addIssue({ code: "custom", message: `"${host}" is not a valid host name` + (wildcard ? ` (a wildcard must be "*.example.com")` : "") });
      } else if (name !== host) {
        const broad = tooBroadWildcard(host);
        if (broad) ctx.addIssue({ code: "custom", message: broad });
      }
    });

// The Public Suffix List's private section counts too: "*.github.io" is every GitHub Pages site.
const PSL = { allowPrivateDomains: true } as const;

/**
 * Why a `*.name` wildcard is too broad, or undefined: it must leave at least a registrable
 * domain below a public suffix ("*.example.co.uk" yes; "*.co.uk", "*.com", "*.github.io" no).
 * Names under an unknown top-level label count as under a one-label public suffix.
 */
export function tooBroadWildcard(host: string): string | undefined {
  if (!host.startsWith("*.")) return undefined;
  const name = host.slice(2);
  const parsed = parseDomain(name, PSL);
  if (parsed.domain !== null) return undefined;
  const listed = parsed.isIcann || parsed.isPrivate ? "on the Public Suffix List" : "an unknown top-level domain, which counts as one";
  return `"${host}" is too broad: "${name}" is a public suffix (${listed}), so the wildcard matches every site registered under it; a wildcard must keep a registrable domain, like "*.example.${name}", or list the exact hosts`;
}

export const envVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "expected an environment variable name like GITHUB_TOKEN" });

/** YAML text as plain data; a syntax error (or a duplicate key) is a ConfigError with line numbers. */
export function parseYamlText(text: string, where: string): unknown {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(where, doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? "?"}: not valid YAML: ${e.message.split("\n")[0]}`));
  }
  return doc.toJS();
}

/** A listen address: `host:port`, `[v6]:port`, or `:port` (all interfaces). */
export const ListenSchema = z.string().regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^:[\]]*):\d{1,5}$/, { message: 'expected "host:port"' });

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, "$1") || "0.0.0.0", port: Number(listen.slice(i + 1)) };
}

type EnvSchema = z.ZodObject<z.ZodRawShape>;

/** A sidecar's settings from its environment: only the schema's own keys are read. */
export function settingsFromEnv<S extends EnvSchema>(schema: S, env: NodeJS.ProcessEnv, where: string): z.output<S> {
  const picked = Object.fromEntries(Object.keys(schema.shape).flatMap((k) => (env[k] !== undefined ? [[k, env[k]]] : [])));
  return parseWith(schema, picked, where);
}

/** Validated settings as sorted `KEY=value` env lines (unset keys left out). */
export function settingsToEnv<S extends EnvSchema>(schema: S, settings: z.input<S>, where: string): string[] {
  const parsed = parseWith(schema, settings, where) as Record<string, unknown>;
  return Object.entries(parsed)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
}
