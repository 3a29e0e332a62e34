// The egress contract: the routes document (live, reloadable) and the static settings
// (container env). The Egress component renders both with these schemas; the sidecar
// loads both with the same schemas. Nothing is parsed two ways.
import { z } from "zod";
import YAML from "yaml";
import { envVarName, hostName, parseWith, settingsToEnv } from "./validation.ts";

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
      .optional(),
    methods: z
      .array(z.string().transform((m) => m.toUpperCase()).pipe(z.enum(HTTP_METHODS)))
      .min(1)
      .optional(),
    auth: RouteAuthSchema.optional(),
    role: z.enum(ROUTE_ROLES).optional(),
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

export function parseRoutesDocument(data: unknown, where = "routes.yaml"): RoutesDocument {
  return parseWith(RoutesDocumentSchema, data, where);
}

/** Token env var names a routes document needs (egress refuses to start a route whose token is missing). */
export function tokenRefs(doc: RoutesDocument): string[] {
  return [...new Set(doc.routes.flatMap((r) => (r.auth ? [r.auth.token_ref] : [])))].sort();
}

/** Static settings, passed as container env; parsed by the sidecar from process.env. */
export const EgressSettingsSchema = z.strictObject({
  EGRESS_LISTEN: z.string().default("0.0.0.0:3128"),
  EGRESS_ROUTES_FILE: z.string().default("/etc/claude-bottle/egress/routes.yaml"),
  EGRESS_CA_CERT_FILE: z.string().default("/etc/claude-bottle/egress-ca/ca.pem"),
  EGRESS_CA_KEY_FILE: z.string().default("/etc/claude-bottle/egress-ca/ca-key.pem"),
  /** http://host:port of pipelock; unset = connect directly (standalone use, tests). */
  EGRESS_UPSTREAM_PROXY: z.string().url().optional(),
  /** Colon-separated PEM files trusted for the upstream leg, in addition to the system store (pipelock's CA, corporate CAs). */
  EGRESS_UPSTREAM_CA_FILES: z.string().optional(),
  EGRESS_AUDIT_LOG: z.string().default("/var/log/claude-bottle/egress.jsonl"),
  /** Name of the supervise tool the 403 body points the agent to; unset = supervise is off. */
  EGRESS_SUPERVISE_TOOL: z.string().optional(),
});

export type EgressSettings = z.output<typeof EgressSettingsSchema>;

export const EGRESS_PORT = 3128;
/**
 * Health endpoint, answered on the proxy port itself when the request is not a proxy request
 * (origin-form). Container healthcheck:
 * `node -e "require('http').get('http://127.0.0.1:3128/__egress/health',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"`
 */
export const EGRESS_HEALTH_PATH = "/__egress/health";
export const PROPOSE_ROUTES_TOOL = "propose_egress_routes";

export function egressSettingsFromEnv(env: NodeJS.ProcessEnv): EgressSettings {
  const picked = Object.fromEntries(Object.keys(EgressSettingsSchema.shape).flatMap((k) => (env[k] !== undefined ? [[k, env[k]]] : [])));
  return parseWith(EgressSettingsSchema, picked, "egress environment");
}

export function egressSettingsToEnv(settings: z.input<typeof EgressSettingsSchema>): string[] {
  return settingsToEnv(EgressSettingsSchema, settings, "egress settings");
}
