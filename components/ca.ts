import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import crypto from "node:crypto";

export interface CertificateAuthorityArgs {
  /** Subject common name, e.g. "claude-bottle egress CA (dev-claude)". */
  commonName: pulumi.Input<string>;
  /** Validity in hours. Renewal replaces every container that trusts the CA. Default 5 years. */
  validityHours?: number;
}

/**
 * A per-bottle CA: ECDSA P-256 key (SEC1 "EC PRIVATE KEY" PEM, what pipelock requires),
 * self-signed CA certificate with subject key id = hash of the public key.
 */
export class CertificateAuthority extends pulumi.ComponentResource {
  readonly certPem: pulumi.Output<string>;
  /** Secret. */
  readonly privateKeyPem: pulumi.Output<string>;
  /** SHA-256 fingerprint of the certificate (DER), colon-separated hex. */
  readonly sha256Fingerprint: pulumi.Output<string>;

  constructor(name: string, args: CertificateAuthorityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("claude-bottle:pki:CertificateAuthority", name, {}, opts);
    const key = new tls.PrivateKey(`${name}-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent: this });
    const cert = new tls.SelfSignedCert(
      `${name}-cert`,
      {
        privateKeyPem: key.privateKeyPem,
        isCaCertificate: true,
        setSubjectKeyId: true,
        // No maxPathLength: the provider sets Go's MaxPathLen without MaxPathLenZero, so 0 would
        // silently mean "no limit" (terraform-provider-tls common_cert.go).
        validityPeriodHours: args.validityHours ?? 5 * 365 * 24,
        // Terraform's snake_case names; the provider refuses any other spelling.
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        subject: { commonName: args.commonName, organization: "claude-bottle" },
      },
      { parent: this },
    );
    this.certPem = cert.certPem;
    this.privateKeyPem = pulumi.secret(key.privateKeyPem);
    this.sha256Fingerprint = cert.certPem.apply(fingerprint);
    this.registerOutputs({ certPem: this.certPem, sha256Fingerprint: this.sha256Fingerprint });
  }
}

export function fingerprint(pem: string): string {
  if (!pem) return "";
  return new crypto.X509Certificate(pem).fingerprint256;
}
