// The egress routes document: what the agent may reach over HTTP(S), and which credential
// egress injects where. Egress loads it (routes.yaml, live); the Egress component renders it
// at `pulumi up`; supervise and `bottle approve` propose and rewrite it; the policy pack checks
// it. All with these schemas: nothing is parsed two ways.
import { z } from "zod";
import YAML from "yaml";
import { envVarName, hostName, parseWith, parseYamlText } from "./validation.ts";
import { FILE_NAMES } from "./paths.ts";
import { seal, unseal } from "./seal.ts";
import { ServerToolsSchema } from "./server-tools.ts";

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** bearer → `Authorization: Bearer t`, token → `Authorization: token t`, basic → `Authorization: Basic base64(t)` (t = "user:password"), header:<name> → `<name>: t`. */
export const AuthSchemeSchema = z
  .string()
  .refine((s) => ["bearer", "token", "basic"].includes(s) || /^header:[A-Za-z0-9-]+$/.test(s), {
    message: 'expected "bearer", "token", "basic" or "header:<Header-Name>"',
  });

/**
 * Roles tell the agent component which placeholder to hand the agent so the client
 * sends a request at all; egress swaps the placeholder for the real credential.
 */
export const ROUTE_ROLES = ["claude_code_oauth", "anthropic_api_key"] as const;
export type RouteRole = (typeof ROUTE_ROLES)[number];

/** The only "credential" the agent ever holds. Not a secret; egress replaces it. */
export const AGENT_PLACEHOLDER_TOKEN = "claude-bottle-placeholder";

export const RouteAuthSchema = z.strictObject({
  scheme: AuthSchemeSchema,
  token_ref: envVarName.describe("environment variable holding the token (read at pulumi up; egress gets it as env)"),
});

/** Every path: the live document's explicit spelling of "any path". */
export const ANY_PATH = ["/"] as const;

const PathAllowlistSchema = z
  .array(z.string().regex(/^\/[^\s?#]*$/, { message: 'expected a path prefix starting with "/" (no query or fragment)' }))
  .min(1);
const MethodsSchema = z.array(z.string().transform((m) => m.toUpperCase()).pipe(z.enum(HTTP_METHODS))).min(1);

/**
 * A route. `explicit` (the live routes.yaml) requires path_allowlist and methods; otherwise
 * (manifest, proposals, stack config) leaving one out means "any" and parsing writes it out:
 * ["/"] and every method. So the live document always says what it allows, and a route cut off
 * before its restrictions is an invalid route, never an open one.
 */
function routeSchema(explicit: boolean) {
  const any = (what: string) => (explicit ? `; required here (${what} = any)` : `; unset = any (${what})`);
  return z
    .strictObject({
      host: hostName(true).describe('exact host or "*.example.com" (any depth of subdomain, not the apex)'),
      path_allowlist: (explicit ? PathAllowlistSchema : PathAllowlistSchema.default([...ANY_PATH])).describe(`path prefixes (segment-aware) the route allows${any('["/"]')}`),
      methods: (explicit ? MethodsSchema : MethodsSchema.default([...HTTP_METHODS])).describe(`HTTP methods the route allows (${HTTP_METHODS.join(", ")})${any("all of them")}`),
      auth: RouteAuthSchema.optional().describe("the credential egress injects (the agent never holds it)"),
      role: z.enum(ROUTE_ROLES).optional().describe("which placeholder the agent holds so its client sends requests to this route"),
    })
    .superRefine((route, ctx) => {
      if (route.role && !route.auth) {
        ctx.addIssue({ code: "custom", path: ["auth"], message: `role "${route.role}" needs auth {scheme, token_ref}: the role says which credential egress injects` });
      }
      if (route.role === "claude_code_oauth" && route.auth && route.auth.scheme !== "bearer") {
        ctx.addIssue({ code: "custom", path: ["auth", "scheme"], message: 'role claude_code_oauth sends "Authorization: Bearer"; expected scheme "bearer"' });
      }
      if (route.role === "anthropic_api_key" && route.auth && route.auth.scheme.toLowerCase() !== "header:x-api-key") {
        ctx.addIssue({ code: "custom", path: ["auth", "scheme"], message: 'role anthropic_api_key sends "x-api-key"; expected scheme "header:x-api-key"' });
      }
    });
}

function routesDocumentSchema(route: ReturnType<typeof routeSchema>, explicit: boolean) {
  return z
    .strictObject({
      version: explicit ? z.literal(1) : z.literal(1).default(1),
      routes: z.array(route),
      /** What requests on LLM routes may switch on at Anthropic's end (contracts/server-tools.ts); unset = its safe defaults. */
      server_tools: ServerToolsSchema.prefault({}),
    })
    .superRefine((doc, ctx) => {
      const seen = new Map<string, number>();
      doc.routes.forEach((r, i) => {
        const prev = seen.get(r.host);
        if (prev !== undefined) ctx.addIssue({ code: "custom", path: ["routes", i, "host"], message: `duplicate route for "${r.host}" (already routes[${prev}]); merge them` });
        else seen.set(r.host, i);
      });
    });
}

/** A route as the manifest, a proposal or the stack config writes it (shorthand allowed). */
export const RouteSchema = routeSchema(false);
/** A route of the live routes.yaml: everything it allows spelled out. */
export const LiveRouteSchema = routeSchema(true);

export type Route = z.output<typeof RouteSchema>;

export const RoutesDocumentSchema = routesDocumentSchema(RouteSchema, false);
/** routes.yaml as egress loads it. */
export const LiveRoutesDocumentSchema = routesDocumentSchema(LiveRouteSchema, true);

export type RoutesDocument = z.output<typeof RoutesDocumentSchema>;

/** The route allows every path / every method (what the manifest's shorthand leaves out). */
export const allowsAnyPath = (r: Route) => r.path_allowlist.includes("/");
export const allowsAnyMethod = (r: Route) => HTTP_METHODS.every((m) => r.methods.includes(m));

/** The routes file's exact bytes: the component renders it at `pulumi up`, `bottle approve` rewrites it; equal input → equal bytes (no drift). */
export function renderRoutesYaml(doc: RoutesDocument): string {
  return seal("# Rendered by claude-bottle; approvals through supervise rewrite it.\n" + YAML.stringify(parseWith(LiveRoutesDocumentSchema, doc, "rendered routes document")));
}

export function parseRoutesDocument(data: unknown, where: string = FILE_NAMES.routes): RoutesDocument {
  return parseWith(RoutesDocumentSchema, data, where);
}

/** routes.yaml as written by renderRoutesYaml (or by hand, then `bottle seal`): sealed, every route explicit. */
export function parseRoutesYaml(text: string, where: string = FILE_NAMES.routes): RoutesDocument {
  return parseWith(LiveRoutesDocumentSchema, parseYamlText(unseal(text, where), where) ?? {}, where);
}

/** Token env var names a routes document needs (egress refuses to start a route whose token is missing). */
export function tokenRefs(doc: RoutesDocument): string[] {
  return [...new Set(doc.routes.flatMap((r) => (r.auth ? [r.auth.token_ref] : [])))].sort();
}

/** Hosts of a routes document (pipelock must let these through). */
export function routeHosts(doc: RoutesDocument): string[] {
  return [...new Set(doc.routes.map((r) => r.host))].sort();
}

/** The roles a routes document's routes carry: all the agent container depends on. */
export function routeRoles(doc: RoutesDocument): RouteRole[] {
  return [...new Set(doc.routes.flatMap((r) => (r.role ? [r.role] : [])))].sort();
}
