// The credential pattern set: what "looks like a credential" to claude-bottle. The policy pack checks
// the agent's env and uploads with it; tests of the DLP path (egress, pipelock) may reuse it so every
// layer agrees on what a secret looks like. It mirrors the families pipelock's DLP ships with (its
// immutable "core" set plus the LLM-provider keys: pipelock's internal/scanner/scanner.go and text_dlp.go).
//
// Only the pattern NAME is ever reported, never the matched text.
import { AGENT_PLACEHOLDER_TOKEN } from "../contracts/routes.ts";

export interface CredentialPattern {
  /** Human name, reported in violations (never the value). */
  readonly name: string;
  /** Non-global, so `.test()` carries no lastIndex state between calls. */
  readonly regex: RegExp;
}

export const CREDENTIAL_PATTERNS: readonly CredentialPattern[] = [
  { name: "AWS Access Key ID", regex: /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/ },
  { name: "AWS Secret Access Key", regex: /aws.{0,20}?(?:secret|private).{0,20}?[=:"'\s]\s*["']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/i },
  { name: "GitHub Token", regex: /\bgh[pousr]_[A-Za-z0-9]{36,}/ },
  { name: "GitHub Fine-Grained PAT", regex: /\bgithub_pat_[A-Za-z0-9_]{22,}/ },
  { name: "GitLab PAT", regex: /\bglpat-[A-Za-z0-9_-]{20,}/ },
  { name: "Slack Token", regex: /\bxox[baprs]-[A-Za-z0-9-]{10,}/ },
  { name: "Anthropic API Key", regex: /\bsk-ant-[A-Za-z0-9_-]{20,}/ },
  { name: "OpenAI API Key", regex: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/ },
  { name: "Google API Key", regex: /\bAIza[0-9A-Za-z_-]{35}/ },
  { name: "GCP Service Account Key", regex: /"type"\s*:\s*"service_account"/ },
  { name: "Private Key", regex: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----/ },
  { name: "JSON Web Token", regex: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { name: "Stripe Secret Key", regex: /\b[rs]k_live_[A-Za-z0-9]{20,}/ },
  { name: "Hugging Face Token", regex: /\bhf_[A-Za-z0-9]{30,}/ },
];

/** The one credential-shaped value the agent may hold: egress swaps it for the real token. */
export const PLACEHOLDER = AGENT_PLACEHOLDER_TOKEN;

/**
 * The names of the patterns `text` matches (empty = looks clean). Occurrences of the placeholder are
 * removed first, so "sk-ant-claude-bottle-placeholder" is allowed but a real key next to it is not.
 */
export function findCredentials(text: string, patterns: readonly CredentialPattern[] = CREDENTIAL_PATTERNS): string[] {
  const scrubbed = text.split(PLACEHOLDER).join(" ");
  return patterns.filter((p) => p.regex.test(scrubbed)).map((p) => p.name);
}

export function looksLikeCredential(text: string): boolean {
  return findCredentials(text).length > 0;
}
