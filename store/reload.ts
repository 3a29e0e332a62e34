// Writing a live file that a running sidecar loads, and knowing that it took. Both writers of
// the live files use this: the LiveConfigFile provider at `pulumi up` and `bottle approve`.
// A change is applied when the sidecar's own log names the exact bytes written (the sha256 of
// the file: pipelock's `config_hash`, egress's `sha256`), and only then. Otherwise:
//   - a refusal a restart gets past (pipelock in strict mode refuses every "downgrade" on reload,
//     and from then on every reload of a file that still holds it): when the writer allows it,
//     the sidecar is restarted and must log its start with exactly that file;
//   - anything else (a refusal, no answer before the deadline, a restart that does not come up):
//     the previous file is written back and the sidecar made to run it again, so the next
//     reload is not refused too, and the change is reported as not applied, with the reason.
// The sidecar is reached through the Sidecar seam: the docker CLI for real bottles (on the
// engine the bottle runs on: its logs and signals go through the Docker API, wherever that is),
// a child process in the integration tests.
import { reloadCommand } from "../contracts/docker.ts";
import { readEgressLogLine } from "../contracts/egress.ts";
import { sha256 } from "../contracts/hash.ts";
import { PIPELOCK_RESTART_INTERRUPTS, readPipelockLogLine } from "../contracts/pipelock.ts";
import type { LogReader } from "../contracts/reload.ts";
import { runDocker, type DockerEndpoint } from "./docker.ts";

/** A running sidecar as a writer of its live file sees it. */
export interface Sidecar {
  /** Its name, for messages (the container name). */
  readonly name: string;
  running(): Promise<boolean>;
  /** A position in its log: `lines(mark)` returns what was logged after it. */
  mark(): Promise<string>;
  /** Log lines (stdout and stderr) after `mark`, oldest first; SINCE_START: since the process started. */
  lines(mark: string): Promise<string[]>;
  /** Ask it to reload now (it also watches its config directory). */
  hangUp(): Promise<void>;
  /** Stop and start the same process again (same container: nothing is replaced). */
  restart(): Promise<void>;
}

export const SINCE_START = "start";

export interface LiveTarget {
  sidecar: Sidecar;
  /** The sidecar's log contract (contracts/pipelock.ts readPipelockLogLine, contracts/egress.ts readEgressLogLine). */
  read: LogReader;
  /** Restart the sidecar when it refuses the file on reload only. Default: no (report the refusal). */
  restartOnRefusal?: boolean;
  /** What a restart interrupts, said to the operator when it happens. */
  interrupts?: string;
}

/** The sidecars that load a live file. */
export type LoadingSidecar = "egress" | "pipelock";

/**
 * How each sidecar's live file is confirmed, for both writers alike. pipelock is restarted when it
 * refuses a file on reload only: in strict mode that is any "downgrade", and only the operator
 * makes one (a manifest change at `pulumi up`: the agent's proposals only add or drop allowlist
 * hosts and routes, which pipelock reloads live), so the restart applies the operator's own
 * decision, told what it interrupts. egress is never restarted: a file it refuses would not
 * start it either.
 */
export function liveTarget(role: LoadingSidecar, sidecar: Sidecar): LiveTarget {
  return role === "pipelock" ? { sidecar, read: readPipelockLogLine, restartOnRefusal: true, interrupts: PIPELOCK_RESTART_INTERRUPTS } : { sidecar, read: readEgressLogLine };
}

export interface LiveFile {
  /** File name for messages (pipelock.yaml). */
  name: string;
  content: string;
  /** What the file held before (and the sidecar ran): written back when the change does not take. */
  previous?: string;
  write(text: string): Promise<void>;
}

export interface Outcome {
  ok: boolean;
  /** confirmed: reloaded; restarted: loaded by a restart; not-running: loads it at its next start. */
  status: "confirmed" | "restarted" | "not-running" | "refused" | "unconfirmed";
  /** One line for the operator: what happened, and when not ok, why and what was restored. */
  detail: string;
}

export interface Timing {
  /** How long a reload may take to show in the log. */
  reloadMs: number;
  /** How long a restart may take to log its start. */
  restartMs: number;
  pollMs: number;
  /** With nothing logged this long, check whether the sidecar already runs the file (an identical reload pipelock skips). */
  quietMs: number;
  /** How long a refusal that names no file waits for the wanted file to load after all (see waitLoaded). */
  graceMs: number;
}

export const DEFAULT_TIMING: Timing = { reloadMs: 20_000, restartMs: 60_000, pollMs: 200, quietMs: 3_000, graceMs: 1_500 };

type Wait = { result: "loaded" } | { result: "refused"; reason: string; restartable: boolean; notes: string[] } | { result: "timeout"; notes: string[] };

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const short = (hash: string) => `sha256 ${hash.slice(0, 12)}…`;
const withNotes = (notes: string[]) => (notes.length ? ` (${[...new Set(notes)].slice(-3).join("; ")})` : "");

/** The hash the sidecar's log says it runs now (the last start or successful reload since it started). */
async function runningHash(t: LiveTarget): Promise<string | undefined> {
  let last: string | undefined;
  for (const line of await t.sidecar.lines(SINCE_START)) {
    const e = t.read(line);
    if (e?.kind === "loaded") last = e.sha256;
  }
  return last;
}

/**
 * Read the log after `mark` until it says the sidecar loaded `want`, refused it, or `ms` passed.
 * A refusal that does not name the file it refused (pipelock's) may be of the previous write: a
 * file watch fires on its own (pipelock: fsnotify, 100 ms debounce) and can reload the bytes a
 * writer is just replacing. Such a refusal is final only when `want` is not loaded within
 * `graceMs` after it. After a restart refusals are not read at all (they come from the process
 * being stopped); only a start with `want` counts.
 */
async function waitLoaded(t: LiveTarget, mark: string, want: string, ms: number, timing: Timing, how: "reload" | "restart"): Promise<Wait> {
  const started = Date.now();
  let checked = false;
  let refusedAt: number | undefined;
  for (;;) {
    const notes: string[] = [];
    let refusal: Extract<Wait, { result: "refused" }> | undefined;
    let lines: string[];
    try {
      lines = await t.sidecar.lines(mark);
    } catch (err) {
      return { result: "timeout", notes: [(err as Error).message] };
    }
    for (let i = 0; i < lines.length; i++) {
      const e = t.read(lines[i]!);
      if (!e) continue;
      if (e.kind === "note") notes.push(e.text);
      else if (e.kind === "loaded" && e.sha256 === want && (how === "reload" || e.at === "start")) return { result: "loaded" };
      else if (e.kind === "refused" && how === "reload" && (e.sha256 === undefined || e.sha256 === want)) {
        // a multi-line message (yaml's "unmarshal errors:" list) continues on indented lines
        const more = lines.slice(i + 1, i + 6).filter((l, k, all) => /^\s/.test(l) && all.slice(0, k).every((x) => /^\s/.test(x)));
        const r = { result: "refused" as const, reason: [e.reason, ...more.map((l) => l.trim())].join(" "), restartable: e.restartable, notes };
        if (e.sha256 === want) return r;
        refusal ??= r;
      }
    }
    if (refusal) {
      refusedAt ??= Date.now();
      // docker stamps stdout and stderr apart: a WARNING printed just before the refusal can come after it
      if (Date.now() - refusedAt >= timing.graceMs) return { ...refusal, notes };
    }
    const waited = Date.now() - started;
    // pipelock skips a reload of the bytes it already runs (within 2 s of loading them) and logs nothing
    if (how === "reload" && !refusal && !checked && waited >= timing.quietMs) {
      checked = true;
      if ((await runningHash(t)) === want) return { result: "loaded" };
    }
    if (waited >= ms) return refusal ? { ...refusal, notes } : { result: "timeout", notes };
    await pause(timing.pollMs);
  }
}

/** Write `text` and make the sidecar run it: by a reload, or by a restart. */
async function load(t: LiveTarget, f: LiveFile, text: string, how: "reload" | "restart", timing: Timing): Promise<Wait> {
  const mark = await t.sidecar.mark();
  await f.write(text);
  if (how === "restart") {
    try {
      await t.sidecar.restart();
    } catch (err) {
      return { result: "refused", reason: (err as Error).message, restartable: false, notes: [] };
    }
  } else await t.sidecar.hangUp();
  return waitLoaded(t, mark, sha256(text), how === "restart" ? timing.restartMs : timing.reloadMs, timing, how);
}

function why(w: Exclude<Wait, { result: "loaded" }>, ms: number): string {
  return w.result === "refused" ? `${w.reason}${withNotes(w.notes)}` : `nothing in its log within ${Math.round(ms / 1000)} s${withNotes(w.notes)}`;
}

/** Put the previous file back and make the sidecar run it again; says how that went. */
async function restore(t: LiveTarget, f: LiveFile, how: "reload" | "restart", timing: Timing): Promise<string> {
  if (f.previous === undefined) return `there was no previous ${f.name} to restore`;
  const back = await load(t, f, f.previous, how, timing);
  return back.result === "loaded"
    ? `the previous ${f.name} is back and ${t.sidecar.name} runs it (${short(sha256(f.previous))})`
    : `the previous ${f.name} was written back, but ${t.sidecar.name} did not confirm it: ${why(back, how === "restart" ? timing.restartMs : timing.reloadMs)}`;
}

/** Write a live file and confirm the sidecar loaded exactly it (see the header for what else can happen). */
export async function writeConfirmed(t: LiveTarget, f: LiveFile, timing: Partial<Timing> = {}): Promise<Outcome> {
  const tm = { ...DEFAULT_TIMING, ...timing };
  const name = t.sidecar.name;
  const want = sha256(f.content);
  if (!(await t.sidecar.running())) {
    await f.write(f.content);
    return { ok: true, status: "not-running", detail: `${name} is not running; it loads ${f.name} (${short(want)}) when it starts` };
  }
  if (f.previous === f.content && (await runningHash(t).catch(() => undefined)) === want) {
    await f.write(f.content);
    return { ok: true, status: "confirmed", detail: `${name} already runs ${f.name} (${short(want)})` };
  }
  const t0 = Date.now();
  const got = await load(t, f, f.content, "reload", tm);
  if (got.result === "loaded") return { ok: true, status: "confirmed", detail: `${name} loaded ${f.name} (${short(want)}) in ${seconds(t0)}` };
  const failed = got.result === "refused" ? `${name} refused ${f.name}: ${why(got, tm.reloadMs)}` : `${name} did not confirm loading ${f.name} (${short(want)}): ${why(got, tm.reloadMs)}`;
  if (got.result === "refused" && got.restartable && t.restartOnRefusal) {
    const t1 = Date.now();
    const started = await load(t, f, f.content, "restart", tm);
    if (started.result === "loaded") {
      return {
        ok: true,
        status: "restarted",
        detail: `${failed}. It refuses that on reload only, so ${name} was restarted (same container) and started with ${f.name} (${short(want)}) in ${seconds(t1)}; ${t.interrupts ?? "what was in flight through it was cut"}`,
      };
    }
    return { ok: false, status: "refused", detail: `${failed}. Restarted with it, ${name} did not start: ${why(started, tm.restartMs)}; ${await restore(t, f, "restart", tm)}` };
  }
  return { ok: false, status: got.result === "refused" ? "refused" : "unconfirmed", detail: `${failed}; ${await restore(t, f, "reload", tm)}` };
}

// ---------------------------------------------------------------------------------------------
// The docker CLI as the Sidecar seam. Log positions are the daemon's own timestamps
// (`docker logs --timestamps`), as nanoseconds: the host clock never enters.

interface Stamped {
  ns: bigint;
  text: string;
}

/** `docker logs --timestamps` lines: "<RFC 3339, up to 9 fraction digits> <line>". */
export function stampedLines(output: string): Stamped[] {
  const out: Stamped[] = [];
  for (const line of output.split("\n")) {
    const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2}) ?(.*)$/.exec(line.replace(/\r$/, ""));
    if (!m) continue;
    const ms = Date.parse(m[1]! + m[3]!);
    if (Number.isNaN(ms)) continue;
    out.push({ ns: BigInt(ms) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0")), text: m[4]! });
  }
  return out;
}

export function dockerSidecar(container: string, bin = "docker", endpoint: DockerEndpoint = {}): Sidecar {
  const run = async (args: string[], timeoutMs = 30_000) => {
    const r = await runDocker(endpoint, args, { bin, timeoutMs });
    return { ok: r.code === 0, out: r.stdout.toString(), err: r.stderr || (r.code ? `exit ${r.code}` : "") };
  };
  const logs = async (since?: string) => {
    const r = await run(["logs", "--timestamps", ...(since ? ["--since", since] : []), container]);
    if (!r.ok && !r.out) throw new Error(`cannot read the log of ${container}: ${r.err.trim().split("\n")[0]}`);
    return [...stampedLines(r.out), ...stampedLines(r.err)].sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  };
  return {
    name: container,
    async running() {
      const r = await run(["inspect", "-f", "{{.State.Running}}", container]);
      return r.ok && r.out.trim() === "true";
    },
    async mark() {
      const r = await run(["logs", "--timestamps", "--tail", "1", container]);
      const ns = [...stampedLines(r.out), ...stampedLines(r.err)].map((l) => l.ns);
      return ns.length ? String(ns.reduce((a, b) => (a > b ? a : b))) : "0";
    },
    async lines(mark) {
      if (mark === SINCE_START) {
        const started = (await run(["inspect", "-f", "{{.State.StartedAt}}", container])).out.trim();
        return (await logs(started || undefined)).map((l) => l.text);
      }
      const after = BigInt(mark);
      // --since is inclusive; lines stamped at the mark itself were there before
      const since = after > 0n ? `${after / 1_000_000_000n}.${String(after % 1_000_000_000n).padStart(9, "0")}` : undefined;
      return (await logs(since)).filter((l) => l.ns > after).map((l) => l.text);
    },
    async hangUp() {
      await run(reloadCommand(container));
    },
    async restart() {
      const r = await run(["restart", "-t", "10", container], 90_000);
      if (!r.ok) throw new Error(`docker restart ${container} failed: ${r.err.trim().split("\n")[0]}`);
    },
  };
}
