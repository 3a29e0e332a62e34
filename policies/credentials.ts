// What the agent is handed must not be a secret: env, command line, labels and uploaded files are
// scanned with the shared credential pattern set (the placeholder egress swaps is the one allowed
// credential-shaped value), and no private key (the CAs' in particular) is uploaded or mounted.
// Messages name the field and the pattern, never the value (policies see secrets in plaintext).
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { findCredentials, PLACEHOLDER } from "./credential-patterns.ts";
import { items, skipUnlessAgent, known, who } from "./resources.ts";

/** Env names that announce a secret: their value must be empty or the placeholder. */
const SECRET_NAME_RE = /(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|PASS|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?|AUTH)$/i;

function uploadText(u: any): string | undefined {
  const content = known(() => u.content);
  if (typeof content === "string") return content;
  const b64 = known(() => u.contentBase64);
  if (typeof b64 === "string") return Buffer.from(b64, "base64").toString("utf8");
  return undefined;
}

export const agentNoCredentials: ResourceValidationPolicy = {
  name: "agent-no-credentials",
  description: "No value handed to the agent container (env, command, labels, uploaded files) may look like a credential; the egress placeholder is the only token it may hold.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    const p = args.props;
    for (const e of items(p, "envs")) {
      if (typeof e !== "string") continue;
      const eq = e.indexOf("=");
      const name = eq < 0 ? e : e.slice(0, eq);
      const value = eq < 0 ? "" : e.slice(eq + 1);
      const hits = findCredentials(e);
      if (hits.length) report(`The agent container ${who(args.name)} must not get a credential in env ${name} (looks like: ${hits.join(", ")}).`);
      else if (SECRET_NAME_RE.test(name) && value.trim() !== "" && !value.includes(PLACEHOLDER)) {
        report(`The agent container ${who(args.name)} must not get a secret in env ${name}: only the placeholder "${PLACEHOLDER}" is allowed (egress injects the real credential).`);
      }
    }
    for (const field of ["command", "entrypoints"] as const) {
      const hits = [...new Set(items(p, field).flatMap((a) => (typeof a === "string" ? findCredentials(a) : [])))];
      if (hits.length) report(`The agent container ${who(args.name)} must not get a credential in ${field} (looks like: ${hits.join(", ")}).`);
    }
    for (const l of items(p, "labels")) {
      const value = known(() => l.value);
      const hits = typeof value === "string" ? findCredentials(value) : [];
      if (hits.length) report(`The agent container ${who(args.name)} must not carry a credential in label ${known(() => l.label)} (looks like: ${hits.join(", ")}).`);
    }
    for (const u of items(p, "uploads")) {
      const text = uploadText(u);
      const hits = text === undefined ? [] : findCredentials(text);
      if (hits.length) report(`The agent container ${who(args.name)} must not be uploaded a credential at ${known(() => u.file) ?? "(unknown path)"} (looks like: ${hits.join(", ")}).`);
    }
  },
};

const KEY_FILE_RE = /(?:^|[/_.-])(?:ca-)?key\.pem$|\.key$|(?:^|\/)id_(?:rsa|ecdsa|ed25519|dsa)$/i;
const PRIVATE_KEY_RE = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;

export const agentNoPrivateKeys: ResourceValidationPolicy = {
  name: "agent-no-ca-private-key",
  description: "No private key (the egress and pipelock CA keys in particular) may be uploaded or bind-mounted into the agent container; it gets CA certificates only.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    skipUnlessAgent(args);
    const p = args.props;
    for (const u of items(p, "uploads")) {
      const file = known(() => u.file);
      const source = known(() => u.source);
      const text = uploadText(u);
      if ((typeof file === "string" && KEY_FILE_RE.test(file)) || (typeof source === "string" && KEY_FILE_RE.test(source))) {
        report(`The agent container ${who(args.name)} must not be uploaded a private key file (${file ?? source}).`);
      } else if (text !== undefined && PRIVATE_KEY_RE.test(text)) {
        report(`The agent container ${who(args.name)} must not be uploaded a private key (PEM at ${file ?? "(unknown path)"}).`);
      }
    }
    const mounted = [
      ...items(p, "volumes").map((v) => known(() => v.hostPath)),
      ...items(p, "mounts").map((m) => (known(() => m.type) === "bind" ? known(() => m.source) : undefined)),
    ];
    for (const src of mounted) {
      if (typeof src === "string" && KEY_FILE_RE.test(src)) report(`The agent container ${who(args.name)} must not bind-mount a private key file.`);
    }
  },
};

export const credentialPolicies = [agentNoCredentials, agentNoPrivateKeys];
