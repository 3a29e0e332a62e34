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
import { hostName, parseWith, parseYamlText } from "./validation.ts";

/** Hosts pipelock lets through besides the route hosts (bare names, `*.example.com` allowed). */
export const ExtraAllowlistSchema = z
  .array(hostName(true))
  .max(500, { message: "at most 500 hosts" })
  .transform((hosts) => [...new Set(hosts)].sort());

/** CIDRs exempt from pipelock's SSRF guard (e.g. a corporate upstream on a private range). */
export const SsrfIpAllowlistSchema = z.array(z.cidrv4({ message: "expected an IPv4 CIDR like 10.20.0.0/16" }));

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
  return "# Rendered by claude-bottle; pipelock.yaml allows the route hosts and these.\n" + YAML.stringify(parseWith(LivePolicySchema, policy, "live policy"));
}

export function parsePolicyYaml(text: string, where: string = FILE_NAMES.policy): LivePolicy {
  return parseWith(LivePolicySchema, parseYamlText(text, where), where);
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
