// Shared vocabulary of the pack: how a bottle resource is recognised (by its type token and the
// labels the components set, both from contracts/), and helpers that read props safely. Policies
// compare type tokens as strings, so the pack needs no provider SDK.
import { UnknownValueError, type ResourceValidationArgs } from "@pulumi/policy";
import { DOCKER_TYPES as TYPES, INHIBIT_IPV4 } from "../contracts/docker.ts";
import { LABEL_BOTTLE, LABEL_ROLE, NETWORK_ROLES } from "../contracts/labels.ts";

export { INHIBIT_IPV4, TYPES };

/**
 * A live config file: our dynamic resource (components/liveConfig.ts). Its token is
 * "pulumi-nodejs:dynamic[/<module>]:<type>" under the engine ("pulumi-nodejs:dynamic/claude-bottle:Resource"
 * today) or "claude-bottle:index:LiveConfigFile" if it becomes a registered type; match them all.
 */
export const LIVE_CONFIG_TYPES = ["claude-bottle:index:LiveConfigFile", "pulumi-nodejs:dynamic:Resource"] as const;
export function isLiveConfigType(type: string): boolean {
  return (LIVE_CONFIG_TYPES as readonly string[]).includes(type) || /^pulumi-nodejs:dynamic(?:\/[^:]+)?:[^:]+$/.test(type);
}

export { LABEL_BOTTLE, LABEL_ROLE };

type Props = Record<string, any>;

/**
 * True for the SDK's "unknown during preview" error. Duck-typed as well as instanceof: a second copy of
 * @pulumi/policy (the repo root's, in unit tests) throws its own class.
 */
export function isUnknownValueError(e: unknown): e is UnknownValueError {
  return e instanceof UnknownValueError || (e instanceof Error && e.constructor?.name === "UnknownValueError" && Array.isArray((e as any).props));
}

/** Run `read`; an unknown (preview) value gives `undefined` instead of aborting the whole policy. */
export function known<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (isUnknownValueError(e)) return undefined;
    throw e;
  }
}

export const UNKNOWN: unique symbol = Symbol("unknown during preview");

/** Like `known`, but tells "unknown at preview" (UNKNOWN) apart from "absent" (undefined). */
export function peek<T>(read: () => T): T | typeof UNKNOWN {
  try {
    return read();
  } catch (e) {
    if (isUnknownValueError(e)) return UNKNOWN;
    throw e;
  }
}

/**
 * The elements of an array prop, skipping elements that are unknown at preview. If the array itself
 * is unknown the error propagates (the engine then reports "can't run during preview").
 */
export function items(props: Props, key: string): any[] {
  const list = props[key];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) return [];
  const out: any[] = [];
  for (let i = 0; i < list.length; i++) {
    const item = known(() => list[i]);
    if (item !== undefined) out.push(item);
  }
  return out;
}

/** Value of a docker label (`labels: [{label, value}]`) or undefined. */
export function labelValue(props: Props, label: string): string | undefined {
  for (const l of items(props, "labels")) {
    if (known(() => l.label) === label) return known(() => l.value);
  }
  return undefined;
}

export const roleOf = (props: Props): string | undefined => labelValue(props, LABEL_ROLE);
export const identityOf = (props: Props): string | undefined => labelValue(props, LABEL_BOTTLE);

export function isAgentContainer(type: string, props: Props): boolean {
  return type === TYPES.container && roleOf(props) === "agent";
}

/** Stop a resource policy here unless it is looking at the agent container. */
export function skipUnlessAgent(args: ResourceValidationArgs): void {
  if (!isAgentContainer(args.type, args.props)) args.notApplicable("Policy only applies to the agent container (label dev.claude-bottle.role=agent).");
}

/** A network the components created for a bottle (carries a bottle network role). */
export function isBottleNetwork(type: string, props: Props): boolean {
  return type === TYPES.network && (NETWORK_ROLES as readonly string[]).includes(roleOf(props) ?? "");
}

export function isTrue(v: unknown): boolean {
  return v === true || v === "true";
}

/** Docker capability names are accepted with or without the CAP_ prefix, in any case. */
export function capName(c: string): string {
  return c.toUpperCase().replace(/^CAP_/, "");
}

/** Readable resource reference for messages: the logical name only (never a prop value). */
export function who(name: string): string {
  return `"${name}"`;
}
