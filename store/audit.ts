// Tamper-evident JSON-lines audit log of proposals and decisions. Each line carries the
// hash of the previous line and its own hash over (prev + canonical entry), so editing,
// deleting or reordering any line breaks the chain from there on. Two writers append to
// the same file (supervise in its container, the operator CLI on the host); a mkdir lock
// next to the file serialises them (mkdir is atomic on every filesystem, bind mounts too).
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { canonicalJson, sha256 } from "../contracts/proposals.ts";

export const AUDIT_FILE_NAME = "supervise.jsonl";
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

const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepBuf, 0, 0, ms);
}

function withLock<T>(file: string, fn: () => T): T {
  const lock = `${file}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      try {
        // A writer that died holding the lock: take over after 30 s.
        if (Date.now() - fs.statSync(lock).mtimeMs > 30_000) fs.rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > deadline) throw new Error(`audit log ${file} is locked (remove ${lock} if no writer is running)`);
      sleepSync(5);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function lastLine(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    let chunk = 64 * 1024;
    for (;;) {
      const start = Math.max(0, size - chunk);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      const lines = buf.toString("utf8").split("\n").filter((l) => l.trim());
      if (lines.length > 1 || start === 0) return lines.at(-1);
      chunk *= 4;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function hashLine(prev: string, body: Record<string, unknown>): string {
  return sha256(prev + "\n" + canonicalJson(body));
}

/** Append one event, chained to the last line. Returns the written line. */
export function appendAudit(file: string, event: AuditEvent): AuditLine {
  AuditEventSchema.parse(event);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return withLock(file, () => {
    const last = lastLine(file);
    let prev = GENESIS_HASH;
    let seq = 0;
    if (last) {
      const parsed = JSON.parse(last) as AuditLine;
      prev = parsed.hash;
      seq = parsed.seq + 1;
    }
    const body = { ...event, seq, at: new Date().toISOString(), prev };
    const line = { ...body, hash: hashLine(prev, body) } as AuditLine;
    const fd = fs.openSync(file, "a", 0o644);
    try {
      fs.writeSync(fd, JSON.stringify(line) + "\n");
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
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

export function readAudit(file: string): AuditVerification {
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  return verifyAudit(text);
}
