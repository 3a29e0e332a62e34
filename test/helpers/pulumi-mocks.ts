// Pulumi mocks that behave like the providers where our code or tests read outputs:
// docker names and image digests, and tls keys/certificates from the tls provider double
// (test/e2e/engine/tls.ts: real crypto, the formats terraform-provider-tls writes).
import * as pulumi from "@pulumi/pulumi";
import crypto from "node:crypto";
import { privateKeyOutputs, selfSignedCertOutputs } from "../e2e/engine/tls.ts";

export interface Registration {
  type: string;
  name: string;
  /** Inputs with secrets revealed. */
  inputs: Record<string, any>;
  /** Inputs as the engine got them: secrets still wrapped (see isSecretValue). */
  rawInputs: Record<string, any>;
  outputs: Record<string, any>;
  id: string;
  /** The provider reference ("<provider urn>::<id>") the resource was registered with; undefined: the default provider. */
  provider?: string;
}

// Wire format of a secret value (runtime/rpc.js specialSigKey / specialSecretSig).
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const secret = (value: unknown) => ({ [SIG_KEY]: SECRET_SIG, value });

export function isSecretValue(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as any)[SIG_KEY] === SECRET_SIG;
}

/** Replace every wire-format secret with its value. */
export function reveal(v: any): any {
  if (isSecretValue(v)) return reveal(v.value);
  if (Array.isArray(v)) return v.map(reveal);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}

let subnetCursor = 0;

function digest(s: string): string {
  return "sha256:" + crypto.createHash("sha256").update(s).digest("hex");
}

/** Outputs the real providers compute, keyed by type token. */
async function computed(type: string, name: string, inputs: Record<string, any>): Promise<Record<string, any>> {
  switch (type) {
    case "docker:index/network:Network": {
      // What the provider reads back (test/e2e/engine/docker.ts readNetwork): Docker's IPAM always
      // reports a subnet and a gateway, also with inhibit_ipv4.
      const n = subnetCursor++ % 250;
      return {
        name: inputs.name ?? `${name}-${crypto.randomBytes(3).toString("hex")}`,
        driver: inputs.driver ?? "bridge",
        internal: Boolean(inputs.internal),
        ipv6: Boolean(inputs.ipv6),
        options: inputs.options ?? {},
        ipamDriver: "default",
        ipamConfigs: [{ subnet: `172.29.${n}.0/24`, gateway: `172.29.${n}.1` }],
        scope: "local",
        attachable: false,
        ingress: false,
      };
    }
    case "docker:index/volume:Volume":
      return { name: inputs.name ?? `${name}-${crypto.randomBytes(3).toString("hex")}`, driver: "local", mountpoint: `/var/lib/docker/volumes/${inputs.name}/_data` };
    case "docker:index/container:Container":
      // Schema defaults and what the provider reads back (readContainer): NetworkMode stays "bridge".
      // (only what the program did not set: the inputs themselves stay as sent, secrets wrapped)
      return {
        ...Object.fromEntries(Object.entries({ restart: "no", mustRun: true, start: true, rm: false, networkMode: "bridge", ipcMode: "private", pidMode: "", usernsMode: "" }).filter(([k]) => inputs[k] === undefined)),
        name: inputs.name ?? name,
        networkDatas: [],
      };
    case "docker:index/image:Image":
      return { imageName: inputs.imageName, repoDigest: digest(JSON.stringify(inputs.build ?? {}) + inputs.imageName), baseImageName: inputs.imageName };
    case "tls:index/privateKey:PrivateKey": {
      // the tls provider double's outputs (test/e2e/engine/tls.ts); the SDK marks the private ones secret
      const outs = privateKeyOutputs({ ecdsaCurve: "P224", ...inputs });
      for (const k of ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"]) outs[k] = secret(outs[k]);
      return outs;
    }
    case "tls:index/selfSignedCert:SelfSignedCert":
      return selfSignedCertOutputs(inputs);
    case "pulumi-nodejs:dynamic:Resource":
      return { sha256: crypto.createHash("sha256").update(String(inputs.content ?? "")).digest("hex") };
    default:
      return {};
  }
}

export interface BottleMocks {
  registrations: Registration[];
}

/** Install mocks for this process. Call before any component module registers a resource. */
export async function installMocks(opts: { preview?: boolean; config?: Record<string, string> } = {}): Promise<BottleMocks> {
  const registrations: Registration[] = [];
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const inputs = reveal(args.inputs);
        const outputs = { ...args.inputs, ...(await computed(args.type, args.name, inputs)) };
        const id = args.type.startsWith("claude-bottle:") ? "" : `${args.name}-id`;
        registrations.push({ type: args.type, name: args.name, inputs, rawInputs: args.inputs, outputs, id, provider: args.provider });
        return { id, state: outputs };
      },
      call(args) {
        throw new Error(`unexpected invoke ${args.token} in a bottle program`);
      },
    },
    "claude-bottle",
    "test",
    opts.preview ?? false,
  );
  if (opts.config) pulumi.runtime.setAllConfig(opts.config);
  return { registrations };
}

/** Resolve any Input, secret or not. */
export function unwrap<T>(o: pulumi.Input<T>): Promise<pulumi.Unwrap<T>> {
  return new Promise((resolve) => pulumi.output(o).apply((v) => { resolve(v as pulumi.Unwrap<T>); return v; }));
}

/** Wait until no new registration arrived for `quietMs`. */
export async function settle(registrations: Registration[], quietMs = 300, maxMs = 15_000): Promise<void> {
  const start = Date.now();
  let last = -1;
  while (Date.now() - start < maxMs) {
    if (registrations.length === last) return;
    last = registrations.length;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}
