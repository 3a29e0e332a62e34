// The frame our provider plugins share: a Pulumi resource provider (pulumi.provider.main, the
// SDK's own gRPC server) over a table of resource doubles. Each double names the real provider
// source it mirrors; any input field not in its field map is refused in check() with a
// failure naming the field, so the real engine stops the deployment exactly there.
//
// Wire values: the SDK's provider server accepts secrets (Configure says so), so inputs arrive
// with secrets wrapped ({sig: secret, value}) and unknowns (preview) as a sentinel string; the
// engine copies no secretness to outputs for such a provider, so we do it as the Terraform
// bridge does for pulumi-docker/pulumi-tls: an output whose input was secret is secret
// (top-level property; pulumi-terraform-bridge, MakeTerraformOutputs).
import grpc from "@grpc/grpc-js";
import * as provider from "@pulumi/pulumi/provider/index.js";
import { leafPaths, unimplementedFields } from "./fields.ts";

export const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export const isSecret = (v: unknown): v is { value: unknown } => typeof v === "object" && v !== null && (v as any)[SIG_KEY] === SECRET_SIG;
export const secret = (value: unknown) => ({ [SIG_KEY]: SECRET_SIG, value });

export function reveal(v: any): any {
  if (isSecret(v)) return reveal(v.value);
  if (Array.isArray(v)) return v.map(reveal);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}

function containsSecret(v: unknown): boolean {
  if (isSecret(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecret);
  if (v && typeof v === "object") return Object.values(v).some(containsSecret);
  return false;
}

export function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
  return false;
}

/** Outputs with every top-level property secret whose input (or previous output) was. */
export function carrySecrets(outs: Record<string, any>, ...sources: Record<string, any>[]): Record<string, any> {
  const result: Record<string, any> = {};
  for (const [k, v] of Object.entries(outs)) {
    const wasSecret = sources.some((s) => s && containsSecret(s[k]));
    result[k] = wasSecret && !isSecret(v) && v !== undefined ? secret(v) : v;
  }
  return result;
}

export interface DiffResult {
  changes: boolean;
  replaces?: string[];
  deleteBeforeReplace?: boolean;
}

/** One resource type of a provider double; inputs and outputs here are revealed (no secret wrappers). */
export interface ResourceDouble {
  /** Where the behaviour comes from: the real provider's source files. */
  mirrors: string;
  /** input path → what the double does with it (rendered into README-engine.md). */
  fields: Record<string, string>;
  /** input path prefix → the real source (file: function) that handles it; the longest prefix wins. */
  sources: Record<string, string>;
  /** Defaults the real provider's schema fills in (they become inputs in state, as with the bridge). */
  defaults?(inputs: Record<string, any>): Record<string, any>;
  /** The real provider's own Check rewriting (e.g. computed digests); gets wire values, must keep secrets wrapped. */
  normalize?(inputs: Record<string, any>): Record<string, any>;
  /** Semantic checks the real provider makes at check time (returns failures). */
  validate?(inputs: Record<string, any>): { property: string; reason: string }[];
  diff(olds: Record<string, any>, news: Record<string, any>): DiffResult;
  create(urn: string, inputs: Record<string, any>): Promise<{ id: string; outs: Record<string, any> }>;
  /** undefined = gone (the engine drops it from state on refresh). */
  read(id: string, props: Record<string, any>): Promise<Record<string, any> | undefined>;
  update?(id: string, olds: Record<string, any>, news: Record<string, any>): Promise<Record<string, any>>;
  delete(id: string, props: Record<string, any>): Promise<void>;
}

export const typeOfUrn = (urn: string) => urn.split("::")[2]!.split("$").pop()!;
export const nameOfUrn = (urn: string) => urn.split("::")[3]!;

/** A Pulumi provider over resource doubles keyed by type token. */
export function providerOf(name: string, version: string, doubles: Record<string, ResourceDouble>): provider.Provider {
  const double = (urn: string) => {
    const type = typeOfUrn(urn);
    const d = doubles[type];
    if (!d) throw new Error(`${name} provider double: resource type ${type} is not implemented (${urn})`);
    return d;
  };
  return {
    version,
    async check(urn, olds, news) {
      const d = doubles[typeOfUrn(urn)];
      if (!d) return { inputs: news, failures: [{ property: "", reason: `${name} provider double: resource type ${typeOfUrn(urn)} is not implemented` }] };
      const plain = reveal(news);
      const failures = unimplementedFields(d.fields, plain).map((p) => ({
        property: p,
        reason: `the ${name} provider double does not implement input \`${p}\` of ${typeOfUrn(urn)} (test/e2e/README-engine.md)`,
      }));
      if (failures.length) return { inputs: news, failures };
      const defaults = d.defaults?.(plain) ?? {};
      let inputs: Record<string, any> = { ...defaults, ...news };
      for (const [k, v] of Object.entries(defaults)) if (news[k] === undefined) inputs[k] = v;
      if (d.normalize && !containsUnknown(plain)) inputs = d.normalize(inputs);
      const semantic = containsUnknown(plain) ? [] : d.validate?.(reveal(inputs)) ?? [];
      return { inputs, failures: semantic };
    },
    async diff(_id, urn, olds, news) {
      const o = reveal(olds);
      const n = reveal(news);
      if (containsUnknown(n)) {
        // Preview with values not known yet: changes where the real provider would see them.
        const d = double(urn).diff(o, n);
        return { changes: true, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
      }
      return double(urn).diff(o, n);
    },
    async create(urn, inputs) {
      const plain = reveal(inputs);
      const { id, outs } = await double(urn).create(urn, plain);
      return { id, outs: carrySecrets(outs, inputs) };
    },
    async read(id, urn, props) {
      const plain = reveal(props ?? {});
      const outs = await double(urn).read(id, plain);
      if (!outs) return { id: "", props: {} };
      return { id, props: carrySecrets(outs, props ?? {}), inputs: undefined };
    },
    async update(id, urn, olds, news) {
      const d = double(urn);
      if (!d.update) throw new Error(`${name} provider double: ${typeOfUrn(urn)} has no in-place update; its diff must replace`);
      const outs = await d.update(id, reveal(olds), reveal(news));
      return { outs: carrySecrets(outs, news) };
    },
    async delete(id, urn, props) {
      await double(urn).delete(id, reveal(props));
    },
  };
}

/** A provider double's own configuration (the provider resource's inputs, or `<pkg>:*` stack config). */
export interface ProviderConfigDouble {
  mirrors: string;
  /** config key → what the double does with it (README-engine.md); any other key set is refused at Configure. */
  fields: Record<string, string>;
  sources: Record<string, string>;
  /** Apply the (revealed) settings to this plugin process; throws to refuse them. */
  configure(settings: Record<string, unknown>): void;
}

/** Keys the engine itself puts into a provider's inputs (not the provider's own settings). */
const ENGINE_KEYS = new Set(["version", "pluginDownloadURL"]);

/** The provider's settings from a ConfigureRequest: its inputs (args), else the legacy `<pkg>:config:<key>` variables. */
function configureSettings(req: any, pkg: string): Record<string, unknown> {
  const args = req.getArgs?.()?.toJavaScript?.() as Record<string, unknown> | undefined;
  const fromVars = Object.fromEntries(
    [...(req.getVariablesMap?.()?.entries?.() ?? [])].map(([k, v]: [string, string]) => [k.replace(`${pkg}:config:`, ""), (() => { try { return JSON.parse(v); } catch { return v; } })()]),
  );
  const settings = reveal(args && Object.keys(args).length ? args : fromVars);
  return Object.fromEntries(Object.entries(settings).filter(([k, v]) => !ENGINE_KEYS.has(k) && !k.startsWith("__") && v !== undefined && v !== null && v !== ""));
}

/** A ConfigureRequest's settings applied to this plugin process; throws on any setting the double does not implement. */
export function applyProviderSettings(req: any, config: { pkg: string; double: ProviderConfigDouble }): void {
  const settings = configureSettings(req, config.pkg);
  const unknown = Object.keys(settings).filter((k) => !(k in config.double.fields));
  if (unknown.length) throw new Error(`the ${config.pkg} provider double does not implement provider setting ${unknown.map((k) => `\`${k}\``).join(", ")} (test/e2e/README-engine.md)`);
  config.double.configure(settings);
}

/**
 * The entry point of a plugin executable. The SDK's provider server answers Configure itself and
 * drops the provider's settings (@pulumi/pulumi provider/server.js `configure`); a double that has
 * settings (the docker provider's `host`) reads them from the request first, as the real
 * provider's Configure does. The engine starts one plugin process per provider resource, so the
 * settings are this process's.
 */
export function servePlugin(p: provider.Provider, config?: { pkg: string; double: ProviderConfigDouble }): void {
  if (config) {
    const addService = grpc.Server.prototype.addService;
    grpc.Server.prototype.addService = function (this: grpc.Server, service: any, impl: any) {
      if (typeof impl?.configure === "function") {
        const inner = impl.configure.bind(impl);
        impl.configure = (call: any, callback: any) => {
          try {
            applyProviderSettings(call.request, config);
          } catch (e) {
            callback({ code: grpc.status.INVALID_ARGUMENT, details: (e as Error).message });
            return;
          }
          inner(call, callback);
        };
      }
      return addService.call(this, service, impl);
    };
  }
  provider.main(p, process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

export { leafPaths };
