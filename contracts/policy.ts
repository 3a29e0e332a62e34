// The live policy document (policy.yaml, next to pipelock.yaml): what pipelock allows beyond
// the egress route hosts. It is the one home of the extra allowlist: the manifest (or the
// stack config, after an approval) sets it at `pulumi up`, `bottle approve` rewrites it, and
// pipelock.yaml is rendered from routes ∪ this document — never taken apart again, so a host
// listed here stays allowed whatever happens to a route of the same name.
import { z } from "zod";
import YAML from "yaml";
import { FILE_NAMES } from "./paths.ts";
import { renderPipelockConfig, type PipelockConfig } from "./pipelock.ts";
import { routeHosts, type RoutesDocument } from "./routes.ts";
import { seal, unseal } from "./seal.ts";
import { hostName, parseWith, parseYamlText } from "./validation.ts";

/** Hosts pipelock lets through besides the route hosts (bare names, `*.example.com` allowed). */
export const ExtraAllowlistSchema = z
  .array(hostName(true))
  .max(500, { message: "at most 500 hosts" })
  .transform((hosts) => [...new Set(hosts)].sort());

/**
 * Why pipelock would refuse `cidr` as an ssrf.ip_allowlist entry, or undefined: what it parses
 * (Go's net.ParseCIDR: canonical dotted quads, no leading zeros), no catch-all /0, no host bits
 * (pipelock's config/validate.go validateSSRF; mirrored by the stand-in's config/load.go). IPv6
 * entries are refused here too: the bottle's networks are IPv4 only.
 */
export function ssrfCidrProblem(cidr: string): string | undefined {
  if (cidr.includes(":")) return `"${cidr}" is an IPv6 CIDR${/\/0$/.test(cidr) ? ", and a catch-all (/0) that would disable SSRF protection" : ""}; the bottle's networks are IPv4 only: expected an IPv4 CIDR like 10.20.0.0/16`;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5) : [];
  if (!m || octets.some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith("0"))) || Number(m[5]) > 32 || (m[5]!.length > 1 && m[5]!.startsWith("0"))) {
    return `"${cidr}" is not an IPv4 CIDR: expected one like 10.20.0.0/16`;
  }
  const bits = Number(m[5]);
  if (bits === 0) return `"${cidr}" is a catch-all (/0) and would disable SSRF protection (pipelock refuses it)`;
  const addr = octets.reduce((a, o) => a * 256 + Number(o), 0);
  const network = addr - (addr % 2 ** (32 - bits));
  if (network !== addr) {
    const canon = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join(".");
    return `"${cidr}" has host bits set (pipelock refuses it): did you mean "${canon}/${bits}"?`;
  }
  return undefined;
}

/** CIDRs exempt from pipelock's SSRF guard (e.g. a corporate upstream on a private range). */
export const SsrfIpAllowlistSchema = z.array(
  z.string().superRefine((cidr, ctx) => {
    const problem = ssrfCidrProblem(cidr);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }),
);

/** pipelock's size caps for intercepted hosts, MiB (contracts/pipelock.ts DEFAULT_MAX_RESPONSE_MIB says why). */
export const MaxResponseMibSchema = z.number().int().min(1).max(4096).describe("the largest response pipelock passes from an intercepted host, in MiB (it holds the whole response in memory while scanning it)");
export const MaxBodyMibSchema = z.number().int().min(1).max(1024).describe("the largest request body pipelock passes to an intercepted host, in MiB");

export const LivePolicySchema = z.strictObject({
  version: z.literal(1),
  pipelock_allowlist: ExtraAllowlistSchema,
  ssrf_ip_allowlist: SsrfIpAllowlistSchema,
  /** Absent: pipelock's caps are our defaults. */
  max_response_mib: MaxResponseMibSchema.optional(),
  max_body_mib: MaxBodyMibSchema.optional(),
});

export type LivePolicy = z.output<typeof LivePolicySchema>;

/** What a bottle whose policy file does not exist (yet) allows beyond its routes: nothing. */
export const EMPTY_POLICY: LivePolicy = { version: 1, pipelock_allowlist: [], ssrf_ip_allowlist: [] };

export function renderPolicyYaml(policy: LivePolicy): string {
  return seal("# Rendered by claude-bottle; pipelock.yaml allows the route hosts and these.\n" + YAML.stringify(parseWith(LivePolicySchema, policy, "live policy")));
}

/** policy.yaml, sealed (contracts/seal.ts). */
export function parsePolicyYaml(text: string, where: string = FILE_NAMES.policy): LivePolicy {
  return parseWith(LivePolicySchema, parseYamlText(unseal(text, where), where), where);
}

/** Every host pipelock lets through: the route hosts and the extras. */
export function effectiveAllowlist(routes: RoutesDocument, policy: LivePolicy): string[] {
  return [...new Set([...routeHosts(routes), ...policy.pipelock_allowlist])].sort();
}

/** pipelock.yaml's content, derived from the two live documents that decide it. */
export function pipelockConfigFor(routes: RoutesDocument, policy: LivePolicy): PipelockConfig {
  return renderPipelockConfig({
    allowlist: effectiveAllowlist(routes, policy),
    ssrfIpAllowlist: policy.ssrf_ip_allowlist,
    maxResponseMib: policy.max_response_mib,
    maxBodyMib: policy.max_body_mib,
  });
}
