// Content identity: equal values hash equally, whatever their key order. Proposal merge keys,
// the audit chain and the live files' confirmation hashes all use these two.
import crypto from "node:crypto";

/** Canonical JSON: sorted keys, undefined members left out. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (value && typeof value === "object") {
    return "{" + Object.keys(value).sort().filter((k) => (value as any)[k] !== undefined).map((k) => JSON.stringify(k) + ":" + canonicalJson((value as any)[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

export function sha256(text: string | Uint8Array): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}
