// The tls provider double: real crypto, the outputs terraform-provider-tls computes (pulumi-tls
// bridges it). Used by the provider plugin (plugins/tls) under the real engine and by the Pulumi
// mocks of the unit tier (test/helpers/pulumi-mocks.ts), so both see the same key formats.
import crypto from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { ResourceDouble } from "./plugin.ts";

x509.cryptoProvider.set(crypto.webcrypto as unknown as Crypto);

export const TLS_TYPES = {
  privateKey: "tls:index/privateKey:PrivateKey",
  selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
} as const;

const CURVES: Record<string, { node: string; webcrypto: string; ssh: string; hash: string }> = {
  P256: { node: "prime256v1", webcrypto: "P-256", ssh: "nistp256", hash: "SHA-256" },
  P384: { node: "secp384r1", webcrypto: "P-384", ssh: "nistp384", hash: "SHA-384" },
};

/** An SSH wire "string" (RFC 4251 §5): uint32 length + bytes. */
function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === "string" ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}
const uint32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** OpenSSH public key blob and line for an EC key: "ecdsa-sha2-nistpNNN <base64>\n" (RFC 5656 §3.1). */
function sshEcPublicKey(key: crypto.KeyObject, curve: string): { line: string; blob: Buffer; point: Buffer } {
  const jwk = (key.type === "public" ? key : crypto.createPublicKey(key)).export({ format: "jwk" });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
  const name = `ecdsa-sha2-${curve}`;
  const blob = Buffer.concat([sshString(name), sshString(curve), sshString(point)]);
  return { line: `${name} ${blob.toString("base64")}\n`, blob, point };
}

/** "OPENSSH PRIVATE KEY" (openssh-key-v1, unencrypted), as golang.org/x/crypto/ssh MarshalPrivateKey writes it. */
function sshEcPrivateKey(key: crypto.KeyObject, curve: string): string {
  const { blob, point } = sshEcPublicKey(key, curve);
  const d = Buffer.from(key.export({ format: "jwk" }).d!, "base64url");
  const mpint = d[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), d]) : d;
  const check = crypto.randomBytes(4).readUInt32BE();
  let priv = Buffer.concat([uint32(check), uint32(check), sshString(`ecdsa-sha2-${curve}`), sshString(curve), sshString(point), sshString(mpint), sshString("")]);
  for (let i = 1; priv.length % 8 !== 0; i++) priv = Buffer.concat([priv, Buffer.from([i])]);
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), uint32(1), sshString(blob), sshString(priv)]);
  const b64 = body.toString("base64").match(/.{1,70}/g)!.join("\n");
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

const KEYS = new Map<string, crypto.KeyObject>();

export function privateKeyOutputs(inputs: Record<string, any>): Record<string, any> {
  if (inputs.algorithm !== "ECDSA") throw new Error(`tls double: algorithm ${inputs.algorithm} is not implemented (ECDSA only)`);
  const curve = CURVES[inputs.ecdsaCurve ?? "P224"];
  if (!curve) throw new Error(`tls double: ecdsaCurve ${inputs.ecdsaCurve} is not implemented (P256, P384)`);
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: curve.node });
  // x509.MarshalECPrivateKey → "EC PRIVATE KEY" (SEC1): what pipelock requires.
  const privateKeyPem = privateKey.export({ format: "pem", type: "sec1" }).toString();
  KEYS.set(privateKeyPem, privateKey);
  const publicKeyPem = publicKey.export({ format: "pem", type: "spki" }).toString();
  const ssh = sshEcPublicKey(publicKey, curve.ssh);
  const md5 = crypto.createHash("md5").update(ssh.blob).digest("hex").match(/../g)!.join(":");
  const sha256 = "SHA256:" + crypto.createHash("sha256").update(ssh.blob).digest("base64").replace(/=+$/, "");
  return {
    ...inputs,
    ecdsaCurve: inputs.ecdsaCurve ?? "P224",
    rsaBits: inputs.rsaBits ?? 2048,
    privateKeyPem,
    privateKeyPemPkcs8: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    privateKeyOpenssh: sshEcPrivateKey(privateKey, curve.ssh),
    publicKeyPem,
    publicKeyOpenssh: ssh.line,
    publicKeyFingerprintMd5: md5,
    publicKeyFingerprintSha256: sha256,
  };
}

export async function selfSignedCertOutputs(inputs: Record<string, any>, now = Date.now()): Promise<Record<string, any>> {
  const pem: string = inputs.privateKeyPem;
  const keyObject = KEYS.get(pem) ?? crypto.createPrivateKey(pem);
  const namedCurve = (keyObject.asymmetricKeyDetails?.namedCurve ?? "prime256v1") === "secp384r1" ? CURVES.P384! : CURVES.P256!;
  const alg = { name: "ECDSA", namedCurve: namedCurve.webcrypto, hash: namedCurve.hash } as const;
  const privateKey = await crypto.webcrypto.subtle.importKey("pkcs8", keyObject.export({ format: "der", type: "pkcs8" }), alg, false, ["sign"]);
  const publicKey = await crypto.webcrypto.subtle.importKey("spki", crypto.createPublicKey(keyObject).export({ format: "der", type: "spki" }), alg, true, ["verify"]);
  const uses: string[] = inputs.allowedUses ?? [];
  const known: Record<string, number> = {
    cert_signing: x509.KeyUsageFlags.keyCertSign,
    crl_signing: x509.KeyUsageFlags.cRLSign,
    digital_signature: x509.KeyUsageFlags.digitalSignature,
    key_encipherment: x509.KeyUsageFlags.keyEncipherment,
  };
  let usage = 0;
  for (const u of uses) {
    if (!(u in known)) throw new Error(`tls double: allowed use "${u}" is not implemented (the real provider refuses any name outside its snake_case list)`);
    usage |= known[u]!;
  }
  const cn = inputs.subject?.commonName;
  const o = inputs.subject?.organization;
  const hours = Number(inputs.validityPeriodHours);
  const serial = BigInt("0x" + crypto.randomBytes(16).toString("hex")) >> 1n;
  const notBefore = new Date(Math.floor(now / 1000) * 1000);
  const notAfter = new Date(notBefore.getTime() + hours * 3600_000);
  const isCa = Boolean(inputs.isCaCertificate);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString(16).padStart(2, "0"),
    name: [cn ? `CN=${cn}` : "", o ? `O=${o}` : ""].filter(Boolean).join(", "),
    notBefore,
    notAfter,
    keys: { privateKey, publicKey },
    signingAlgorithm: alg,
    extensions: [
      new x509.KeyUsagesExtension(usage, true),
      // common_cert.go sets MaxPathLen but never MaxPathLenZero: Go's x509 reads 0 (and -1) as
      // "no limit", so maxPathLength: 0 yields CA:TRUE without a pathlen.
      new x509.BasicConstraintsExtension(isCa, isCa && Number(inputs.maxPathLength ?? -1) > 0 ? Number(inputs.maxPathLength) : undefined, true),
      // a CA always gets a subject key id (SHA-1 of the public key), with or without setSubjectKeyId
      ...(inputs.setSubjectKeyId || isCa ? [await x509.SubjectKeyIdentifierExtension.create(publicKey)] : []),
    ],
  });
  const early = Number(inputs.earlyRenewalHours ?? 0);
  return {
    ...inputs,
    earlyRenewalHours: early,
    setAuthorityKeyId: inputs.setAuthorityKeyId ?? false,
    setSubjectKeyId: inputs.setSubjectKeyId ?? false,
    isCaCertificate: isCa,
    certPem: cert.toString("pem") + "\n",
    keyAlgorithm: "ECDSA",
    validityStartTime: notBefore.toISOString().replace(/\.\d{3}Z$/, "Z"),
    validityEndTime: notAfter.toISOString().replace(/\.\d{3}Z$/, "Z"),
    readyForRenewal: now >= notAfter.getTime() - early * 3600_000,
    id: serial.toString(10),
  };
}

const replaceOn = (keys: string[]) => (olds: Record<string, any>, news: Record<string, any>) => {
  const changed = keys.filter((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
  return { changes: changed.length > 0, replaces: changed };
};

export const privateKeyDouble: ResourceDouble = {
  sources: { "": "terraform-provider-tls internal/provider/resource_private_key.go: Create; common_key.go (encodings)" },
  mirrors: "terraform-provider-tls internal/provider/resource_private_key.go (schema, createResourcePrivateKey), common_key.go (PEM/OpenSSH encodings)",
  fields: {
    algorithm: "ECDSA only (RSA/ED25519 are refused)",
    ecdsaCurve: "P256 or P384; the key is made with node:crypto",
  },
  // schema defaults (resource_private_key.go): ecdsa_curve "P224", rsa_bits 2048
  defaults: () => ({ ecdsaCurve: "P224", rsaBits: 2048 }),
  diff: replaceOn(["algorithm", "ecdsaCurve", "rsaBits"]),
  async create(_urn, inputs) {
    const outs = privateKeyOutputs(inputs);
    return { id: crypto.createHash("sha1").update(outs.publicKeyPem).digest("hex"), outs };
  },
  async read(_id, props) {
    return props;
  },
  async delete() {},
};

export const selfSignedCertDouble: ResourceDouble = {
  sources: { "": "terraform-provider-tls internal/provider/common_cert.go: createCertificate", allowedUses: "terraform-provider-tls internal/provider/common_cert.go: allowed uses → KeyUsage/ExtKeyUsage (OneOf validator)" },
  mirrors: "terraform-provider-tls internal/provider/resource_self_signed_cert.go, common_cert.go (createCertificate, allowed uses → key usages)",
  fields: {
    privateKeyPem: "the signing key (SEC1 or PKCS#8 PEM)",
    isCaCertificate: "BasicConstraints cA",
    setSubjectKeyId: "SubjectKeyIdentifier = hash of the public key",
    maxPathLength: "BasicConstraints pathLen (CA only, and only when > 0: see below)",
    validityPeriodHours: "notAfter = notBefore + hours",
    allowedUses: "key usages: cert_signing, crl_signing, digital_signature, key_encipherment (others refused)",
    "subject.commonName": "CN",
    "subject.organization": "O",
  },
  // schema defaults (resource_self_signed_cert.go, common_cert.go)
  defaults: () => ({ earlyRenewalHours: 0, isCaCertificate: false, setSubjectKeyId: false, setAuthorityKeyId: false, maxPathLength: -1 }),
  diff(olds, news) {
    const r = replaceOn(["privateKeyPem", "isCaCertificate", "setSubjectKeyId", "maxPathLength", "validityPeriodHours", "allowedUses", "subject"])(olds, news);
    const early = (olds.earlyRenewalHours ?? 0) !== (news.earlyRenewalHours ?? 0);
    return { changes: r.changes || early, replaces: r.replaces };
  },
  async create(_urn, inputs) {
    const outs = await selfSignedCertOutputs(inputs);
    return { id: outs.id, outs };
  },
  async read(_id, props) {
    const end = Date.parse(props.validityEndTime);
    return { ...props, readyForRenewal: Date.now() >= end - Number(props.earlyRenewalHours ?? 0) * 3600_000 };
  },
  async delete() {},
};

export const tlsDoubles: Record<string, ResourceDouble> = {
  [TLS_TYPES.privateKey]: privateKeyDouble,
  [TLS_TYPES.selfSignedCert]: selfSignedCertDouble,
};
