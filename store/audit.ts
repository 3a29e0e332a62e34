// Tamper-evident JSON-lines audit log of proposals and decisions. Each line carries the
// hash of the previous line and its own hash over (prev + canonical entry), so editing,
// deleting or reordering any line breaks the chain from there on. Two writers append to
// the same file (supervise in its container, the operator CLI on the host); the store's
// lock next to the file serialises them.
import { z } from "zod";
import { canonicalJson, sha256 } from "../contracts/hash.ts";
import { localIo, type StateIo } from "./io.ts";

export const GENESIS_HASH = "0".repeat(64);

export const AuditEventSchema = z.looseObject({
  type: z.enum(["proposed", "merged", "approved", "rejected", "invalid", "apply-failed"]),
  bottle: z.string(),
  id: z.string().optional(),
  kind: z.string().optional(),
  actor: z.string(),
});

export type AuditEvent = z.input<typeof AuditEventSchema> & Record<string, unknown>;

export interface AuditLine extends Record<string, unknown> {
  seq: number;
  at: string;
  prev: string;
  hash: string;
}

export function hashLine(prev: string, body: Record<string, unknown>): string {
  return sha256(prev + "\n" + canonicalJson(body));
}

async function lastLine(file: string, io: StateIo): Promise<string | undefined> {
  for (let bytes = 64 * 1024; ; bytes *= 4) {
    const text = await io.tail(file, bytes);
    if (text === undefined) return undefined;
    const lines = text.split("\n").filter((l) => l.trim());
    // The first line of a partial tail may be cut; one more line behind it proves the last is whole.
    if (lines.length > 1 || Buffer.byteLength(text) < bytes) return lines.at(-1);
  }
}

/** Append one event, chained to the last line. Returns the written line. */
export async function appendAudit(file: string, event: AuditEvent, io: StateIo = localIo): Promise<AuditLine> {
  AuditEventSchema.parse(event);
  return io.lock(`${file}.lock`, async () => {
    const last = await lastLine(file, io);
    let prev = GENESIS_HASH;
    let seq = 0;
    if (last) {
      const parsed = JSON.parse(last) as AuditLine;
      prev = parsed.hash;
      seq = parsed.seq + 1;
    }
    const body = { ...event, seq, at: new Date().toISOString(), prev };
    const line = { ...body, hash: hashLine(prev, body) } as AuditLine;
    await io.append(file, JSON.stringify(line) + "\n");
    return line;
  });
}

export interface AuditVerification {
  ok: boolean;
  lines: AuditLine[];
  /** 1-based line number of the first broken line. */
  brokenAt?: number;
  problem?: string;
}

export function verifyAudit(text: string): AuditVerification {
  const lines: AuditLine[] = [];
  let prev = GENESIS_HASH;
  const raw = text.split("\n");
  for (let i = 0; i < raw.length; i++) {
    const l = raw[i]!;
    if (!l.trim()) continue;
    const fail = (problem: string): AuditVerification => ({ ok: false, lines, brokenAt: i + 1, problem });
    let parsed: AuditLine;
    try {
      parsed = JSON.parse(l);
    } catch {
      return fail("not valid JSON");
    }
    const { hash, ...body } = parsed;
    if (parsed.prev !== prev) return fail("does not chain to the previous line (a line was removed, reordered or edited)");
    if (parsed.seq !== lines.length) return fail(`sequence number ${parsed.seq}, expected ${lines.length}`);
    if (hashLine(prev, body) !== hash) return fail("content does not match its hash (the line was edited)");
    lines.push(parsed);
    prev = hash;
  }
  return { ok: true, lines };
}

export async function readAudit(file: string, io: StateIo = localIo): Promise<AuditVerification> {
  return verifyAudit((await io.read(file)) ?? "");
}
