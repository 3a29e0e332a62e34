// Proof of completeness for the live files (routes.yaml, policy.yaml, pipelock.yaml): their
// last line is `# claude-bottle-sha256: <sha256 of every byte above it>`. A file that is still
// being written, was cut short, or is a new prefix over an old tail cannot carry a matching
// line, so a reader never applies part of a document — and a YAML prefix is itself valid YAML,
// which is why parsing alone cannot tell. The renderers seal; every reader unseals first.
import { sha256 } from "./hash.ts";
import { ConfigError } from "./validation.ts";

export const SEAL_PREFIX = "# claude-bottle-sha256: ";
const SEAL_RE = /(^|\n)# claude-bottle-sha256: ([0-9a-f]{64})\n?$/;

/** `body` (newline-terminated) followed by its completeness line. */
export function seal(body: string): string {
  const text = body.endsWith("\n") ? body : body + "\n";
  return `${text}${SEAL_PREFIX}${sha256(text)}\n`;
}

/** The body of a sealed file; a ConfigError (the file is not applied) when the seal is missing or does not match. */
export function unseal(text: string, where: string): string {
  const m = SEAL_RE.exec(text);
  const how = "a file being written, cut short or edited by hand has no matching one; after a hand edit, re-seal the file with `bottle seal <file>`";
  if (!m) throw new ConfigError(where, [`not applied: the file does not end with its completeness line ("${SEAL_PREFIX}<sha256 of everything above it>"): ${how}`]);
  const body = text.slice(0, m.index + m[1]!.length);
  const actual = sha256(body);
  if (actual !== m[2]) {
    throw new ConfigError(where, [`not applied: the completeness line says sha256 ${m[2]!.slice(0, 12)}…, the content above it hashes to ${actual.slice(0, 12)}…: ${how}`]);
  }
  return body;
}

/** `text` with a trailing completeness line (valid or not) taken off: what `bottle seal` re-seals. */
export function withoutSeal(text: string): string {
  return text.replace(/(^|\n)# claude-bottle-sha256: [0-9a-f]*\n?$/, "$1");
}
