// Per-host leaf certificates signed by the egress CA, minted once per host and cached.
//
// One ECDSA P-256 key pair serves every leaf (as mitmproxy does): minting is then a single
// signature, ~1 ms, instead of a key generation. The leaf's AKI is the CA's SKI (or the hash of
// the CA's public key when the CA has no SKI), so chain building works in every TLS stack.
// @peculiar/x509 (through tsyringe) needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
import crypto from "node:crypto";
import { isIP } from "node:net";
import tls from "node:tls";
import * as x509 from "@peculiar/x509";

// Node 18 (the image) has no global `crypto` for the library to find.
x509.cryptoProvider.set(crypto.webcrypto as unknown as Crypto);
const subtle = crypto.webcrypto.subtle as unknown as SubtleCrypto;

const LEAF_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

interface SigningCa {
  cert: x509.X509Certificate;
  certPem: string;
  key: CryptoKey;
  signingAlgorithm: Algorithm | EcdsaParams;
  akiKeyId: string;
}

/** Import a CA key in any PEM form @pulumi/tls or openssl writes (PKCS#8, PKCS#1 RSA, SEC1 EC). */
async function importCaKey(keyPem: string): Promise<{ key: CryptoKey; signingAlgorithm: Algorithm | EcdsaParams }> {
  const ko = crypto.createPrivateKey(keyPem);
  const der = ko.export({ format: "der", type: "pkcs8" });
  if (ko.asymmetricKeyType === "ec") {
    const curve = ko.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : curve === "secp521r1" ? "P-521" : undefined;
    if (!namedCurve) throw new Error(`egress CA key: unsupported EC curve ${curve}`);
    const hash = namedCurve === "P-256" ? "SHA-256" : namedCurve === "P-384" ? "SHA-384" : "SHA-512";
    const key = await subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve }, false, ["sign"]);
    return { key, signingAlgorithm: { name: "ECDSA", hash } as EcdsaParams };
  }
  if (ko.asymmetricKeyType === "rsa") {
    const key = await subtle.importKey("pkcs8", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
    return { key, signingAlgorithm: { name: "RSASSA-PKCS1-v1_5" } };
  }
  throw new Error(`egress CA key: unsupported key type ${ko.asymmetricKeyType}`);
}

export interface LeafCacheOptions {
  /** Leaf lifetime (default 7 days); re-minted when less than a day is left. */
  leafDays?: number;
  /** Most hosts kept (least recently used dropped first). */
  maxEntries?: number;
}

interface Entry {
  ctx: Promise<tls.SecureContext>;
  notAfter: number;
}

export class LeafCache {
  private ca: Promise<SigningCa>;
  private leafKeys: Promise<{ pair: CryptoKeyPair; keyPem: string }>;
  private entries = new Map<string, Entry>();
  private readonly leafDays: number;
  private readonly maxEntries: number;
  /** Leaves minted so far (for tests and the health endpoint). */
  minted = 0;

  constructor(ca: CaMaterial, opts: LeafCacheOptions = {}) {
    this.leafDays = opts.leafDays ?? 7;
    this.maxEntries = opts.maxEntries ?? 2000;
    this.ca = (async () => {
      const cert = new x509.X509Certificate(ca.certPem);
      const { key, signingAlgorithm } = await importCaKey(ca.keyPem);
      const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
      const akiKeyId = ski ? ski.keyId : (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey)).keyId;
      return { cert, certPem: cert.toString("pem"), key, signingAlgorithm, akiKeyId };
    })();
    this.leafKeys = (async () => {
      const pair = (await subtle.generateKey(LEAF_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
      const pkcs8 = Buffer.from(await subtle.exportKey("pkcs8", pair.privateKey));
      const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n?$/, "\n")}-----END PRIVATE KEY-----\n`;
      return { pair, keyPem };
    })();
  }

  /** Resolves once the CA is loaded (throws on a bad CA, so startup can fail loudly). */
  async ready(): Promise<void> {
    await this.ca;
    await this.leafKeys;
  }

  /** A TLS server context presenting a leaf for `host` (a DNS name or an IP). */
  secureContext(host: string, now = Date.now()): Promise<tls.SecureContext> {
    const hit = this.entries.get(host);
    if (hit && hit.notAfter - now > DAY) {
      // LRU: move to the end.
      this.entries.delete(host);
      this.entries.set(host, hit);
      return hit.ctx;
    }
    const notAfter = now + this.leafDays * DAY;
    const ctx = this.mint(host, now, notAfter);
    const entry = { ctx, notAfter };
    this.entries.set(host, entry);
    ctx.catch(() => {
      if (this.entries.get(host) === entry) this.entries.delete(host);
    });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return ctx;
  }

  /** The leaf certificate PEM for a host (tests). */
  async leafPem(host: string): Promise<string> {
    return (await this.mintCert(host, Date.now(), Date.now() + this.leafDays * DAY)).toString("pem");
  }

  private async mintCert(host: string, now: number, notAfter: number): Promise<x509.X509Certificate> {
    const ca = await this.ca;
    const { pair } = await this.leafKeys;
    const caNotAfter = ca.cert.notAfter.getTime();
    const san = isIP(host) ? { type: "ip" as const, value: host } : { type: "dns" as const, value: host };
    return x509.X509CertificateGenerator.create({
      serialNumber: "01" + crypto.randomBytes(15).toString("hex"),
      subject: [{ CN: [isIP(host) ? host : host.slice(0, 64)] }],
      issuer: ca.cert.subjectName,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(Math.min(notAfter, caNotAfter)),
      publicKey: pair.publicKey,
      signingKey: ca.key,
      signingAlgorithm: ca.signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([san]),
        new x509.AuthorityKeyIdentifierExtension(ca.akiKeyId),
        await x509.SubjectKeyIdentifierExtension.create(pair.publicKey),
      ],
    });
  }

  private async mint(host: string, now: number, notAfter: number): Promise<tls.SecureContext> {
    const cert = await this.mintCert(host, now, notAfter);
    const ca = await this.ca;
    const { keyPem } = await this.leafKeys;
    this.minted++;
    return tls.createSecureContext({ cert: cert.toString("pem") + "\n" + ca.certPem, key: keyPem, minVersion: "TLSv1.2" });
  }
}
