// The live configs the sidecars watch (pipelock.yaml, egress routes.yaml) are not container inputs:
// a LiveConfigFile resource writes them into the bottle's state volumes. These policies read its
// `content` with the very schemas the sidecars load it with (nothing is parsed two ways).
import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { FILE_NAMES } from "../contracts/paths.ts";
import { parsePipelockConfig } from "../contracts/pipelock.ts";
import { parseRoutesYaml } from "../contracts/routes.ts";
import { ConfigError, parseYamlText } from "../contracts/validation.ts";
import { findCredentials } from "./credential-patterns.ts";
import { isLiveConfigType, known, who } from "./resources.ts";

/** The YAML text of a live config of `kind`, or notApplicable. Unknown content at preview propagates (can't run). */
function contentOf(args: ResourceValidationArgs, kind: string): string {
  if (!isLiveConfigType(args.type) || known(() => args.props.kind) !== kind) args.notApplicable(`Policy only applies to live config files of kind ${kind}.`);
  const content = args.props.content;
  return typeof content === "string" ? content : "";
}

function problemsOf(e: unknown): string {
  if (e instanceof ConfigError) return e.problems.join("; ");
  return e instanceof Error ? e.message.split("\n")[0]! : String(e);
}

/** The document as plain data, parsed as the sidecar parses it; undefined (and reported) when it is not YAML. */
function yamlOf(text: string, where: string, report: (message: string) => void): unknown {
  try {
    return parseYamlText(text, where);
  } catch (e) {
    report(`${where} must be valid YAML (${problemsOf(e)}).`);
    return undefined;
  }
}

const get = (o: any, ...path: string[]): unknown => path.reduce((v, k) => (v && typeof v === "object" ? v[k] : undefined), o);

export const pipelockConfigStrict: ResourceValidationPolicy = {
  name: "pipelock-config-strict",
  description: "Pipelock's rendered config must be strict (mode strict, enforce on, forward proxy on, TLS interception on) with request body scanning set to block, and must match the pipelock contract schema.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    const text = contentOf(args, "pipelock-config");
    const where = `The pipelock config ${who(args.name)}`;
    const raw = yamlOf(text, where, report);
    if (raw === undefined) return;
    // Specific sentences for the properties that matter most; the schema below then checks the rest.
    if (get(raw, "mode") !== "strict") report(`${where} must set mode: strict (the allowlist is only enforced in strict mode).`);
    if (get(raw, "enforce") !== true) report(`${where} must set enforce: true (otherwise blocks are only logged).`);
    if (get(raw, "forward_proxy", "enabled") !== true) report(`${where} must enable forward_proxy (egress reaches the internet only through it).`);
    if (get(raw, "tls_interception", "enabled") !== true) report(`${where} must enable tls_interception (otherwise request bodies inside tunnels are never scanned).`);
    if (get(raw, "request_body_scanning", "enabled") !== true || get(raw, "request_body_scanning", "action") !== "block") {
      report(`${where} must scan request bodies with action: block.`);
    }
    // The contract also refuses wildcards over a public suffix ("*.com", "*.github.io") and an unsealed file.
    try {
      parsePipelockConfig(text, FILE_NAMES.pipelock);
    } catch (e) {
      report(`${where} must match the pipelock contract: ${problemsOf(e)}.`);
    }
  },
};

export const egressRoutesTlsOnly: ResourceValidationPolicy = {
  name: "egress-routes-tls-only",
  description: "Egress routes must match the routes contract (host names only: no scheme, port or plain-HTTP switch, so a credential is injected only inside TLS, which egress enforces) and must reference tokens by token_ref, never inline.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    const text = contentOf(args, "egress-routes");
    const where = `The egress routes ${who(args.name)}`;
    const inline = findCredentials(text);
    if (inline.length) report(`${where} must reference tokens by token_ref, not hold them (looks like: ${inline.join(", ")}).`);
    const raw = yamlOf(text, where, report);
    if (raw === undefined) return;
    // A route that spells a scheme or a port in its host, or any per-route switch such as
    // "scheme: http" / "insecure: true", is refused by the strict schema: there is no way to ask egress
    // to send an injected credential over cleartext (egress's decide() refuses it: cleartext_credential).
    const routes = get(raw, "routes");
    if (Array.isArray(routes)) {
      routes.forEach((r, i) => {
        const host = get(r, "host");
        if (get(r, "auth") !== undefined && typeof host === "string" && /^http:\/\//i.test(host.trim())) {
          report(`${where} must inject credentials only over TLS: routes[${i}] names a cleartext http:// host.`);
        }
      });
    }
    try {
      parseRoutesYaml(text, FILE_NAMES.routes);
    } catch (e) {
      report(`${where} must match the egress routes contract: ${problemsOf(e)}.`);
    }
  },
};

export const liveConfigPolicies = [pipelockConfigStrict, egressRoutesTlsOnly];
