// The workspace copy: a host directory (usually a git repo, .git included) packed into a
// tar that the agent's entrypoint extracts once into its empty workspace volume.
//
// The tar is hash-stable: entries sorted by name, fixed mtime, uid/gid 0, no user names,
// modes normalised (0755 for directories and executables, 0644 for other files), so
// the same tree always gives the same bytes and the same sha256 (the upload's
// sourceHash), and re-running `pulumi up` without changes is a no-op. Symlinks are kept
// as symlinks; sockets, FIFOs and devices are skipped. Names or link targets longer than
// ustar allows get a PAX extended header.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic } from "./io.ts";

/** 2000-01-01T00:00:00Z: a fixed, plausible mtime for every entry. */
export const FIXED_MTIME = 946684800;
const BLOCK = 512;

export interface WorkspaceTar {
  /** The tar file on the host. */
  file: string;
  sha256: string;
  bytes: number;
  entries: number;
}

interface Entry {
  name: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  size: number;
  abs: string;
  linkname?: string;
}

function collect(root: string): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    const names = fs.readdirSync(abs).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) out.push({ name: r, type: "symlink", mode: 0o777, size: 0, abs: p, linkname: fs.readlinkSync(p) });
      else if (st.isDirectory()) {
        out.push({ name: `${r}/`, type: "dir", mode: 0o755, size: 0, abs: p });
        walk(r);
      } else if (st.isFile()) out.push({ name: r, type: "file", mode: st.mode & 0o111 ? 0o755 : 0o644, size: st.size, abs: p });
    }
  };
  walk("");
  return out;
}

function octal(n: number, width: number): string {
  const s = n.toString(8);
  if (s.length > width - 1) throw new Error(`tar: value ${n} does not fit a ${width}-byte field`);
  return s.padStart(width - 1, "0") + "\0";
}

function header(fields: { name: string; mode: number; size: number; type: string; linkname?: string }): Buffer {
  const h = Buffer.alloc(BLOCK);
  const put = (s: string, off: number, len: number) => {
    const b = Buffer.from(s, "utf8");
    b.copy(h, off, 0, Math.min(len, b.length));
  };
  put(fields.name, 0, 100);
  put(octal(fields.mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(fields.size, 12), 124, 12);
  put(octal(FIXED_MTIME, 12), 136, 12);
  h.fill(0x20, 148, 156);
  put(fields.type, 156, 1);
  if (fields.linkname) put(fields.linkname, 157, 100);
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
  return h;
}

function paxRecord(key: string, value: string): string {
  // "<len> key=value\n" where <len> counts its own digits too.
  const body = ` ${key}=${value}\n`;
  const b = Buffer.byteLength(body);
  let len = b + 1;
  while (String(len).length + b !== len) len = String(len).length + b;
  return `${len}${body}`;
}

const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

/** Write a hash-stable tar of `dir` to `file` (atomically); returns its sha256. */
export function writeWorkspaceTar(dir: string, file: string): WorkspaceTar {
  const entries = collect(dir);
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  writeFileAtomic(
    file,
    (sink) => {
      const write = (b: Buffer) => {
        sink(b);
        hash.update(b);
        bytes += b.length;
      };
      for (const e of entries) {
        const long = Buffer.byteLength(e.name) > 100 || (e.linkname !== undefined && Buffer.byteLength(e.linkname) > 100);
        if (long) {
          let pax = paxRecord("path", e.name);
          if (e.linkname !== undefined) pax += paxRecord("linkpath", e.linkname);
          const body = Buffer.from(pax, "utf8");
          write(header({ name: "PaxHeader", mode: 0o644, size: body.length, type: "x" }));
          write(body);
          write(Buffer.alloc(pad(body.length)));
        }
        const type = e.type === "file" ? "0" : e.type === "dir" ? "5" : "2";
        write(header({ name: e.name, mode: e.mode, size: e.size, type, linkname: e.linkname }));
        if (e.type === "file") {
          const src = fs.openSync(e.abs, "r");
          try {
            const chunk = Buffer.alloc(1 << 20);
            let left = e.size;
            while (left > 0) {
              const n = fs.readSync(src, chunk, 0, Math.min(chunk.length, left), null);
              if (n <= 0) throw new Error(`tar: ${e.abs} shrank while it was being read`);
              write(chunk.subarray(0, n));
              left -= n;
            }
          } finally {
            fs.closeSync(src);
          }
          write(Buffer.alloc(pad(e.size)));
        }
      }
      write(Buffer.alloc(BLOCK * 2));
    },
    0o600,
  );
  return { file, sha256: hash.digest("hex"), bytes, entries: entries.length };
}

export function sha256File(file: string): string {
  const hash = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const chunk = Buffer.alloc(1 << 20);
    let n: number;
    while ((n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/**
 * The workspace snapshot for one bottle: taken once (the first `pulumi up`) and kept in
 * the bottle's host directory, so later `up`s upload the same bytes (no diff, no
 * container replacement) whatever happened to the host directory since. A preview
 * (`dryRun`) never writes into the host directory: it packs into a temp file.
 * Delete the snapshot file (and the workspace volume) to take a fresh copy.
 */
export function workspaceSnapshot(dir: string, snapshotFile: string, opts: { dryRun?: boolean } = {}): WorkspaceTar {
  if (fs.existsSync(snapshotFile)) {
    const st = fs.statSync(snapshotFile);
    return { file: snapshotFile, sha256: sha256File(snapshotFile), bytes: st.size, entries: -1 };
  }
  if (opts.dryRun) return writeWorkspaceTar(dir, path.join(fs.mkdtempSync(path.join(os.tmpdir(), "cb-workspace-")), path.basename(snapshotFile)));
  return writeWorkspaceTar(dir, snapshotFile);
}

/** Where a bottle keeps the snapshot of a workspace directory (one per source directory). */
export function workspaceSnapshotFile(agentDir: string, workspaceDir: string): string {
  const key = crypto.createHash("sha256").update(path.resolve(workspaceDir)).digest("hex").slice(0, 12);
  return path.join(agentDir, `workspace-${key}.tar`);
}
