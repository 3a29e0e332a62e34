// Runs the claude-bottle policy pack over resources captured in the unit tier (mock registrations),
// the way the policy analyzer does: every resource policy over every resource, then every stack
// policy over all of them. With `preview: true` props are wrapped in unknownCheckingProxy and an
// UnknownValueError becomes an advisory "can't run during preview", exactly like the real server.
import { unknownCheckingProxy } from "@pulumi/policy";
import type { EnforcementLevel, Policies, PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { ALL_POLICIES } from "../../../policies/all.ts";
import { isUnknownValueError } from "../../../policies/resources.ts";

export interface CapturedResource {
  type: string;
  name: string;
  inputs: Record<string, any>;
}

export interface Violation {
  policy: string;
  enforcementLevel: EnforcementLevel;
  /** Logical name of the resource the violation is about (for stack policies: the reported urn's name, else "(stack)"). */
  resource: string;
  type: string;
  message: string;
}

export interface RunOptions {
  /** Mimic `pulumi preview`: unknown values throw, and the policy is reported as advisory "can't run". */
  preview?: boolean;
  /** Per-policy config, as `--policy-pack-config` would give it. */
  config?: Record<string, Record<string, unknown>>;
  policies?: Policies;
}

class NotApplicable extends Error {}
const notApplicable = (reason?: string): never => {
  throw new NotApplicable(reason);
};

export const urnOf = (r: { type: string; name: string }): string => `urn:pulumi:test::claude-bottle::${r.type}::${r.name}`;

const emptyOpts = { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] };

function isStackPolicy(p: Policies[number]): p is StackValidationPolicy {
  return typeof (p as StackValidationPolicy).validateStack === "function";
}

/** Default config values from a policy's configSchema, overlaid with `given`. */
function configFor(p: Policies[number], given: Record<string, unknown> | undefined): Record<string, unknown> {
  const defaults = Object.fromEntries(Object.entries(p.configSchema?.properties ?? {}).flatMap(([k, s]) => ((s as any).default !== undefined ? [[k, (s as any).default]] : [])));
  return { ...defaults, ...given };
}

export function runPolicies(resources: CapturedResource[], options: RunOptions = {}): Violation[] {
  const policies = options.policies ?? ALL_POLICIES;
  const out: Violation[] = [];
  const byUrn = new Map(resources.map((r) => [urnOf(r), r]));
  const wrap = (props: Record<string, any>) => (options.preview ? unknownCheckingProxy(props) : props);

  const guard = (p: Policies[number], resource: string, type: string, run: () => void | Promise<void>): void => {
    try {
      const r = run();
      if (r && typeof (r as Promise<void>).then === "function") throw new Error(`policy ${p.name} is async; runPolicies runs synchronous policies only`);
    } catch (e) {
      if (e instanceof NotApplicable) return;
      if (isUnknownValueError(e)) {
        out.push({ policy: p.name, enforcementLevel: "advisory", resource, type, message: `can't run policy '${p.name}' during preview: ${e.message}` });
        return;
      }
      throw e;
    }
  };

  for (const p of policies) {
    const level: EnforcementLevel = p.enforcementLevel ?? "advisory";
    if (level === "disabled") continue;
    const config = configFor(p, options.config?.[p.name]);
    if (isStackPolicy(p)) {
      const report: ReportViolation = (message, urn) => {
        const r = urn ? byUrn.get(urn) : undefined;
        out.push({ policy: p.name, enforcementLevel: level, resource: r?.name ?? "(stack)", type: r?.type ?? "", message });
      };
      const policyResources: PolicyResource[] = resources.map((r) => {
        const props = wrap(r.inputs);
        return {
          type: r.type,
          name: r.name,
          urn: urnOf(r),
          props,
          opts: emptyOpts,
          dependencies: [],
          propertyDependencies: {},
          isType: (cls: any) => cls?.__pulumiType === r.type,
          asType: ((cls: any) => (cls?.__pulumiType === r.type ? props : undefined)) as PolicyResource["asType"],
        };
      });
      const args: StackValidationArgs = { resources: policyResources, stackTags: new Map(), getConfig: <T extends object>() => config as T, notApplicable };
      guard(p, "(stack)", "", () => p.validateStack(args, report));
      continue;
    }
    const rp = p as ResourceValidationPolicy;
    const validations = rp.validateResource === undefined ? [] : Array.isArray(rp.validateResource) ? rp.validateResource : [rp.validateResource];
    for (const r of resources) {
      const report: ReportViolation = (message) => out.push({ policy: p.name, enforcementLevel: level, resource: r.name, type: r.type, message });
      for (const validate of validations) {
        const props = wrap(r.inputs);
        const args: ResourceValidationArgs = {
          type: r.type,
          name: r.name,
          urn: urnOf(r),
          props,
          opts: emptyOpts,
          stackTags: new Map(),
          isType: (cls: any) => cls?.__pulumiType === r.type,
          asType: ((cls: any) => (cls?.__pulumiType === r.type ? props : undefined)) as ResourceValidationArgs["asType"],
          getConfig: <T extends object>() => config as T,
          notApplicable,
        };
        guard(p, r.name, r.type, () => validate(args, report));
      }
    }
  }
  return out;
}

export const mandatory = (vs: Violation[]): Violation[] => vs.filter((v) => v.enforcementLevel === "mandatory");

/** One line per violation, for assertion messages. */
export const describe = (vs: Violation[]): string => vs.map((v) => `[${v.enforcementLevel}] ${v.policy} @ ${v.resource}: ${v.message}`).join("\n");
