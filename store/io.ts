// The one seam between the bottle's state and the storage it lives on. Everything in store/
// reads and writes through a StateIo: `localIo` is a directory on this machine's filesystem
// (the volumes as the supervise container mounts them; a test's temp directory), `dockerIo`
// (store/docker.ts) the same volumes through the bottle's state container, on whichever
// Docker engine it runs. The methods are few and async so their callers never know which.
//
// Three guarantees every implementation keeps: `write` replaces a file so no reader ever sees
// half of it, `create` writes a file once (the second writer learns it lost), and `lock`
// admits one holder at a time across every process sharing the state.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export interface StateIo {
  /** The file's text; undefined when it does not exist. */
  read(file: string): Promise<string | undefined>;
  /** The last `bytes` bytes of a file (all of it when shorter); undefined when it does not exist. */
  tail(file: string, bytes: number): Promise<string | undefined>;
  /** Replace the file atomically (parent directories are created). */
  write(file: string, content: string, mode?: number): Promise<void>;
  /** Create the file, complete, only if it does not exist yet. False when it already existed. */
  create(file: string, content: string): Promise<boolean>;
  /** Append text durably (the file and its directory are created when missing). */
  append(file: string, text: string): Promise<void>;
  /** Entry names in a directory; [] when it does not exist. */
  list(dir: string): Promise<string[]>;
  /** Every regular file directly in `dir`: name → text, each read whole at one moment; {} when `dir` does not exist. */
  readAll(dir: string): Promise<Record<string, string>>;
  /** A token that changes whenever the file changes; undefined when it does not exist. */
  stamp(file: string): Promise<string | undefined>;
  /** Run `fn` as the only holder of `lock`; waits up to waitMs (default 10 s), then throws LockBusyError. */
  lock<T>(lock: string, fn: () => Promise<T>, opts?: { waitMs?: number }): Promise<T>;
  /** Call `onChange` with an entry name when something in `dir` changes, where the storage can tell; callers poll as well. */
  watch(dir: string, onChange: (name: string) => void): () => void;
}

export class LockBusyError extends Error {
  constructor(readonly lock: string) {
    super(`${lock} is held by another writer (remove it if no claude-bottle process is running)`);
    this.name = "LockBusyError";
  }
}

/** A lock not touched for this long belongs to a writer that died; the next taker removes it. */
export const LOCK_STALE_MS = 30_000;
/** Holders touch their lock this often, so a long hold is never mistaken for a dead one. */
export const LOCK_HEARTBEAT_MS = 5_000;

type Content = string | Uint8Array | ((write: (chunk: Uint8Array) => void) => void);

/** A fully written, fsynced temp file next to `file` (rename and link are atomic only within one filesystem). */
function writeTemp(file: string, content: Content, mode: number): string {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`);
  const fd = fs.openSync(tmp, "wx", mode);
  try {
    const write = (chunk: Uint8Array) => {
      for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off);
    };
    if (typeof content === "function") content(write);
    else write(typeof content === "string" ? Buffer.from(content) : content);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.chmodSync(tmp, mode); // the umask must not loosen or tighten what was asked for
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return tmp;
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Directory fsync is best effort (not supported on every filesystem).
  }
}

/**
 * Replace `file` so no reader ever sees half of it: temp file in the same directory, fsync,
 * rename. `content` may be a function that streams the bytes through `write`.
 */
export function writeFileAtomic(file: string, content: Content, mode = 0o644): void {
  const tmp = writeTemp(file, content, mode);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(path.dirname(file));
}

/** Create `file` once: a complete temp file linked to the final name, which fails if it exists. */
function createFileExclusive(file: string, content: string): boolean {
  const tmp = writeTemp(file, content, 0o644);
  try {
    fs.linkSync(tmp, file);
    syncDir(path.dirname(file));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function ifExists<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mkdir is atomic on every filesystem, volumes included: the directory is the lock (store/docker.ts takes the same one through the state container). */
async function withLock<T>(lock: string, fn: () => Promise<T>, opts: { waitMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? 10_000);
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const age = ifExists(() => Date.now() - fs.statSync(lock).mtimeMs);
      if (age !== undefined && age > LOCK_STALE_MS) {
        fs.rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() >= deadline) throw new LockBusyError(lock);
      await sleep(5 + Math.random() * 10);
    }
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    ifExists(() => fs.utimesSync(lock, now, now));
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** The bottle's state on this machine's filesystem. */
export const localIo: StateIo = {
  read: async (file) => ifExists(() => fs.readFileSync(file, "utf8")),
  tail: async (file, bytes) =>
    ifExists(() => {
      const fd = fs.openSync(file, "r");
      try {
        const size = fs.fstatSync(fd).size;
        const start = Math.max(0, size - bytes);
        const buf = Buffer.alloc(size - start);
        fs.readSync(fd, buf, 0, buf.length, start);
        return buf.toString("utf8");
      } finally {
        fs.closeSync(fd);
      }
    }),
  write: async (file, content, mode) => writeFileAtomic(file, content, mode),
  create: async (file, content) => createFileExclusive(file, content),
  append: async (file, text) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(file, "a", 0o644);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  list: async (dir) => ifExists(() => fs.readdirSync(dir)) ?? [],
  readAll: async (dir) => {
    const out: Record<string, string> = {};
    for (const e of ifExists(() => fs.readdirSync(dir, { withFileTypes: true })) ?? []) {
      if (!e.isFile()) continue;
      const text = ifExists(() => fs.readFileSync(path.join(dir, e.name), "utf8"));
      if (text !== undefined) out[e.name] = text;
    }
    return out;
  },
  stamp: async (file) =>
    ifExists(() => {
      const st = fs.statSync(file);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    }),
  lock: withLock,
  watch: (dir, onChange) => {
    try {
      const watcher = fs.watch(dir, (_event, name) => {
        if (name) onChange(name.toString());
      });
      watcher.on("error", () => {});
      watcher.unref?.();
      return () => watcher.close();
    } catch {
      return () => {};
    }
  },
};
