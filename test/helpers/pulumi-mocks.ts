// Pulumi mocks that behave like the providers where our code or tests read outputs:
// docker names and image digests, and tls keys/certificates made with real crypto
// (so fingerprints, chains and key formats can be checked, and the e2e tier can run them).
import * as pulumi from "@pulumi/pulumi";
import crypto from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto.webcrypto as unknown as Crypto);

export interface Registration {
  type: string;
  name: string;
  /** Inputs with secrets revealed. */
  inputs: Record<string, any>;
  /** Inputs as the engine got them: secrets still wrapped (see isSecretValue). */
  rawInputs: Record<string, any>;
  outputs: Record<string, any>;
  id: string;
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

const keys = new Map<string, crypto.KeyObject>();

function privateKey(inputs: Record<string, any>) {
  if (inputs.algorithm !== "ECDSA") throw new Error(`mock supports ECDSA keys only, got ${inputs.algorithm}`);
  const namedCurve = { P256: "prime256v1", P384: "secp384r1" }[inputs.ecdsaCurve as string];
  if (!namedCurve) throw new Error(`mock supports P256/P384, got ${inputs.ecdsaCurve}`);
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve });
  const privateKeyPem = privateKey.export({ format: "pem", type: "sec1" }).toString();
  keys.set(privateKeyPem, privateKey);
  return {
    privateKeyPem: secret(privateKeyPem),
    privateKeyPemPkcs8: secret(privateKey.export({ format: "pem", type: "pkcs8" }).toString()),
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
  };
}

async function selfSignedCert(inputs: Record<string, any>) {
  const pem: string = inputs.privateKeyPem;
  const keyObject = keys.get(pem) ?? crypto.createPrivateKey(pem);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
  const privateKey = await crypto.webcrypto.subtle.importKey("pkcs8", keyObject.export({ format: "der", type: "pkcs8" }), alg, false, ["sign"]);
  const publicKey = await crypto.webcrypto.subtle.importKey("spki", crypto.createPublicKey(keyObject).export({ format: "der", type: "spki" }), alg, true, ["verify"]);
  const uses: string[] = inputs.allowedUses ?? [];
  let usage = 0;
  if (uses.includes("cert_signing")) usage |= x509.KeyUsageFlags.keyCertSign;
  if (uses.includes("crl_signing")) usage |= x509.KeyUsageFlags.cRLSign;
  if (uses.includes("digital_signature")) usage |= x509.KeyUsageFlags.digitalSignature;
  const cn = inputs.subject?.commonName ?? "mock";
  const o = inputs.subject?.organization;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(8).toString("hex"),
    name: `CN=${cn}` + (o ? `, O=${o}` : ""),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + Number(inputs.validityPeriodHours ?? 24) * 3600_000),
    keys: { privateKey, publicKey },
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(Boolean(inputs.isCaCertificate), inputs.isCaCertificate ? inputs.maxPathLength ?? undefined : undefined, true),
      new x509.KeyUsagesExtension(usage, true),
      ...(inputs.setSubjectKeyId ? [await x509.SubjectKeyIdentifierExtension.create(publicKey)] : []),
    ],
  });
  return { certPem: cert.toString("pem") + "\n" };
}

function digest(s: string): string {
  return "sha256:" + crypto.createHash("sha256").update(s).digest("hex");
}

/** Outputs the real providers compute, keyed by type token. */
async function computed(type: string, name: string, inputs: Record<string, any>): Promise<Record<string, any>> {
  switch (type) {
    case "docker:index/network:Network":
    case "docker:index/volume:Volume":
      return { name: inputs.name ?? `${name}-${crypto.randomBytes(3).toString("hex")}` };
    case "docker:index/container:Container":
      return { name: inputs.name ?? name, networkDatas: [] };
    case "docker:index/image:Image":
      return { imageName: inputs.imageName, repoDigest: digest(JSON.stringify(inputs.build ?? {}) + inputs.imageName), baseImageName: inputs.imageName };
    case "tls:index/privateKey:PrivateKey":
      return privateKey(inputs);
    case "tls:index/selfSignedCert:SelfSignedCert":
      return selfSignedCert(inputs);
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
        registrations.push({ type: args.type, name: args.name, inputs, rawInputs: args.inputs, outputs, id });
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
