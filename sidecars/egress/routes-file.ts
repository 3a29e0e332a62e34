// Loading and live-reloading the routes file. A new file is validated with the contract schema
// before it replaces anything — sealed (contracts/seal.ts: a half-written file is never a
// prefix egress applies) and every route explicit; an invalid one keeps the old routes and says why.
import fs from "node:fs";
import path from "node:path";
import { sha256 } from "../../contracts/hash.ts";
import { EGRESS_LOG } from "../../contracts/egress.ts";
import { parseRoutesYaml, type RoutesDocument } from "../../contracts/routes.ts";
import type { LogFn } from "./proxy.ts";

/** A routes file that failed validation, with the hash of the bytes that were refused. */
export class RoutesFileRejected extends Error {
  constructor(
    message: string,
    readonly hash: string | undefined,
  ) {
    super(message);
  }
}

export function loadRoutesFile(file: string): { doc: RoutesDocument; hash: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new RoutesFileRejected((err as Error).message, undefined);
  }
  const hash = sha256(text);
  try {
    return { doc: parseRoutesYaml(text, file), hash };
  } catch (err) {
    throw new RoutesFileRejected((err as Error).message, hash);
  }
}

/** Routes whose token is not in the environment: they will be refused, so say it loudly. */
export function missingTokens(doc: RoutesDocument, env: Readonly<Record<string, string | undefined>>): { host: string; token_ref: string }[] {
  return doc.routes.flatMap((r) => (r.auth && !env[r.auth.token_ref] ? [{ host: r.host, token_ref: r.auth.token_ref }] : []));
}

export interface RoutesWatcherOptions {
  file: string;
  log: LogFn;
  /** Called with each valid new document (content changed, or forced by SIGHUP). */
  apply: (doc: RoutesDocument, hash: string) => void;
  initialHash?: string;
  debounceMs?: number;
  /** Stat-polling interval as a backstop where file events don't arrive (Docker Desktop); 0 = off. */
  pollMs?: number;
}

/**
 * Watches the routes file's DIRECTORY (a file replaced by rename is invisible through a watch
 * on the old inode), debounces, and reloads. `reload(true)` is what SIGHUP calls.
 */
export class RoutesWatcher {
  private hash: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: fs.FSWatcher | undefined;
  private readonly debounceMs: number;
  private readonly pollMs: number;
  private readonly onPoll = () => this.schedule();

  constructor(private readonly opts: RoutesWatcherOptions) {
    this.hash = opts.initialHash;
    this.debounceMs = opts.debounceMs ?? 100;
    this.pollMs = opts.pollMs ?? 2000;
  }

  start(): void {
    const dir = path.dirname(this.opts.file);
    const base = path.basename(this.opts.file);
    try {
      this.watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (!name || name.toString() === base) this.schedule();
      });
      this.watcher.on("error", (err) => this.opts.log("warn", "routes directory watch failed; SIGHUP still reloads", { dir, error: String(err) }));
    } catch (err) {
      this.opts.log("warn", "cannot watch the routes directory; SIGHUP still reloads", { dir, error: String(err) });
    }
    if (this.pollMs > 0) fs.watchFile(this.opts.file, { persistent: false, interval: this.pollMs }, this.onPoll);
  }

  stop(): void {
    this.watcher?.close();
    fs.unwatchFile(this.opts.file, this.onPoll);
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload(false);
    }, this.debounceMs);
  }

  /** Reload now. Returns true when new routes were applied. */
  reload(force: boolean): boolean {
    let loaded: { doc: RoutesDocument; hash: string };
    try {
      loaded = loadRoutesFile(this.opts.file);
    } catch (err) {
      this.opts.log("error", EGRESS_LOG.rejected, { file: this.opts.file, error: (err as Error).message, ...(err instanceof RoutesFileRejected && err.hash ? { sha256: err.hash } : {}) });
      return false;
    }
    if (!force && loaded.hash === this.hash) return false;
    this.hash = loaded.hash;
    this.opts.apply(loaded.doc, loaded.hash);
    return true;
  }
}
