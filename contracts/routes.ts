// The egress routes document: what the agent may reach over HTTP(S), and which credential
// egress injects where. Egress loads it (routes.yaml, live); the Egress component renders it
// at `pulumi up`; supervise and `bottle approve` propose and rewrite it; the policy pack checks
// it. All with these schemas: nothing is parsed two ways.
import { z } from "zod";
import YAML from "yaml";
import { envVarName, hostName, parseWith, parseYamlText } from "./validation.ts";
import { FILE_NAMES } from "./paths.ts";
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

export const RouteSchema = z
  .strictObject({
    host: hostName(true).describe('exact host or "*.example.com" (any depth of subdomain, not the apex)'),
    path_allowlist: z
      .array(z.string().regex(/^\/[^\s?#]*$/, { message: 'expected a path prefix starting with "/" (no query or fragment)' }))
      .min(1)
      .optional()
      .describe("path prefixes (segment-aware) the route allows; unset = every path"),
    methods: z
      .array(z.string().transform((m) => m.toUpperCase()).pipe(z.enum(HTTP_METHODS)))
      .min(1)
      .optional()
      .describe(`HTTP methods the route allows (${HTTP_METHODS.join(", ")}); unset = all of them`),
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

export type Route = z.output<typeof RouteSchema>;

export const RoutesDocumentSchema = z
  .strictObject({
    version: z.literal(1).default(1),
    routes: z.array(RouteSchema),
    /** What requests on LLM routes may switch on at Anthropic's end (contracts/server-tools.ts). */
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

export type RoutesDocument = z.output<typeof RoutesDocumentSchema>;

/** The routes file's exact bytes: the component renders it at `pulumi up`, `bottle approve` rewrites it; equal input → equal bytes (no drift). */
export function renderRoutesYaml(doc: RoutesDocument): string {
  return "# Rendered by claude-bottle; approvals through supervise rewrite it.\n" + YAML.stringify(doc);
}

export function parseRoutesDocument(data: unknown, where: string = FILE_NAMES.routes): RoutesDocument {
  return parseWith(RoutesDocumentSchema, data, where);
}

/** routes.yaml as written by renderRoutesYaml (or by hand). */
export function parseRoutesYaml(text: string, where: string = FILE_NAMES.routes): RoutesDocument {
  return parseRoutesDocument(parseYamlText(text, where) ?? {}, where);
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
