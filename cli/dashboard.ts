// `bottle dashboard`: an interactive terminal view of pending proposals. The rendering
// and the key handling are pure functions (tested as such); runDashboard wires them to a
// raw-mode TTY, refreshing as proposals arrive.
import { allProposals } from "../store/bottles.ts";
import { findProposal } from "./bottles.ts";
import { cmdApprove, cmdReject, pendingRows, showLines, sourceOf, type CommandContext, type Io } from "./commands.ts";
import { age, emphasize, oneLine } from "./text.ts";

export interface DashItem {
  id: string;
  bottle: string;
  /** The host it runs on (the docker context it was found through). */
  host?: string;
  kind: string;
  createdAt: string;
  count: number;
  summary: string;
}

export interface DashState {
  items: DashItem[];
  selected: number;
  mode: "list" | "detail" | "reason";
  reason: string;
  detail: string[];
  scroll: number;
  message: string;
  /** Proposals (merged duplicates included) per minute, over the last minute. */
  rate: number;
  bottles: number;
}

export type Key = { name: "up" | "down" | "pageup" | "pagedown" | "enter" | "escape" | "backspace" | "ctrl-c" } | { name: "char"; ch: string };

export type Action = { type: "approve"; id: string } | { type: "reject"; id: string; reason: string } | { type: "show"; id: string } | { type: "quit" };

export function initialState(): DashState {
  return { items: [], selected: 0, mode: "list", reason: "", detail: [], scroll: 0, message: "", rate: 0, bottles: 0 };
}

/** Replace the item list, keeping the selection on the same proposal when it is still there. */
export function withItems(state: DashState, items: DashItem[], rate: number, bottles: number): DashState {
  const current = state.items[state.selected]?.id;
  const idx = current ? items.findIndex((i) => i.id === current) : -1;
  const selected = idx >= 0 ? idx : Math.min(state.selected, Math.max(0, items.length - 1));
  return { ...state, items, rate, bottles, selected };
}

export function decodeKeys(data: string): Key[] {
  const keys: Key[] = [];
  let i = 0;
  while (i < data.length) {
    const rest = data.slice(i);
    const seq = ([
      ["\u001b[A", "up"], ["\u001bOA", "up"], ["\u001b[B", "down"], ["\u001bOB", "down"],
      ["\u001b[5~", "pageup"], ["\u001b[6~", "pagedown"],
    ] as const).find(([s]) => rest.startsWith(s));
    if (seq) {
      keys.push({ name: seq[1] });
      i += seq[0].length;
      continue;
    }
    const c = data[i]!;
    i++;
    if (c === "\u0003") keys.push({ name: "ctrl-c" });
    else if (c === "\r" || c === "\n") keys.push({ name: "enter" });
    else if (c === "\u001b") {
      // A lone ESC, or an unknown escape sequence: swallow its tail.
      const m = /^\[[0-9;]*[A-Za-z~]/.exec(data.slice(i));
      if (m) i += m[0].length;
      else keys.push({ name: "escape" });
    } else if (c === "\u007f" || c === "\b") keys.push({ name: "backspace" });
    else if (c >= " ") keys.push({ name: "char", ch: c });
  }
  return keys;
}

export function handleKey(state: DashState, key: Key): { state: DashState; action?: Action } {
  if (key.name === "ctrl-c") return { state, action: { type: "quit" } };
  const sel = state.items[state.selected];
  if (state.mode === "reason") {
    if (key.name === "escape") return { state: { ...state, mode: "list", reason: "", message: "reject cancelled" } };
    if (key.name === "backspace") return { state: { ...state, reason: state.reason.slice(0, -1) } };
    if (key.name === "enter") {
      if (!state.reason.trim()) return { state: { ...state, message: "a reason is required (Esc cancels)" } };
      if (!sel) return { state: { ...state, mode: "list", reason: "" } };
      return { state: { ...state, mode: "list", reason: "" }, action: { type: "reject", id: sel.id, reason: state.reason.trim() } };
    }
    if (key.name === "char") return { state: { ...state, reason: (state.reason + key.ch).slice(0, 500) } };
    return { state };
  }
  if (state.mode === "detail") {
    if (key.name === "escape" || key.name === "enter" || (key.name === "char" && (key.ch === "q" || key.ch === "d"))) return { state: { ...state, mode: "list", detail: [], scroll: 0 } };
    const max = Math.max(0, state.detail.length - 1);
    if (key.name === "up" || (key.name === "char" && key.ch === "k")) return { state: { ...state, scroll: Math.max(0, state.scroll - 1) } };
    if (key.name === "down" || (key.name === "char" && key.ch === "j")) return { state: { ...state, scroll: Math.min(max, state.scroll + 1) } };
    if (key.name === "pageup") return { state: { ...state, scroll: Math.max(0, state.scroll - 10) } };
    if (key.name === "pagedown") return { state: { ...state, scroll: Math.min(max, state.scroll + 10) } };
    if (key.name === "char" && key.ch === "a" && sel) return { state: { ...state, mode: "list", detail: [], scroll: 0 }, action: { type: "approve", id: sel.id } };
    if (key.name === "char" && key.ch === "r" && sel) return { state: { ...state, mode: "reason", reason: "", detail: [], scroll: 0, message: "" } };
    return { state };
  }
  const last = Math.max(0, state.items.length - 1);
  if (key.name === "up" || (key.name === "char" && key.ch === "k")) return { state: { ...state, selected: Math.max(0, state.selected - 1) } };
  if (key.name === "down" || (key.name === "char" && key.ch === "j")) return { state: { ...state, selected: Math.min(last, state.selected + 1) } };
  if (key.name === "pageup") return { state: { ...state, selected: Math.max(0, state.selected - 10) } };
  if (key.name === "pagedown") return { state: { ...state, selected: Math.min(last, state.selected + 10) } };
  if (key.name === "char" && key.ch === "q") return { state, action: { type: "quit" } };
  if (key.name === "escape") return { state: { ...state, message: "" } };
  if (!sel) return { state: key.name === "char" && "ard".includes(key.ch) ? { ...state, message: "nothing pending" } : state };
  if (key.name === "char" && key.ch === "a") return { state, action: { type: "approve", id: sel.id } };
  if (key.name === "char" && key.ch === "r") return { state: { ...state, mode: "reason", reason: "", message: "" } };
  if (key.name === "enter" || (key.name === "char" && key.ch === "d")) return { state: { ...state, mode: "detail", scroll: 0 }, action: { type: "show", id: sel.id } };
  return { state };
}

function fit(s: string, width: number): string {
  return s.length > width ? s.slice(0, Math.max(0, width - 1)) + "…" : s;
}

const INVERSE = "\u001b[7m";
const RESET = "\u001b[0m";

/** The screen as lines (no cursor movement); `color` adds the selection highlight. */
export function renderDashboard(state: DashState, opts: { width: number; height: number; now: number; color?: boolean }): string[] {
  const { width, height, now } = opts;
  const lines: string[] = [];
  lines.push(fit(`claude-bottle supervise — ${state.items.length} pending across ${state.bottles} bottle${state.bottles === 1 ? "" : "s"} — ${state.rate} proposal${state.rate === 1 ? "" : "s"}/min`, width));
  const help =
    state.mode === "reason" ? "type the reason the agent will read · Enter reject · Esc cancel" : state.mode === "detail" ? "↑/↓ scroll · a approve · r reject · Esc/q back" : "↑/↓ j/k select · a approve · r reject · d diff · q quit";
  lines.push(fit(help, width));
  lines.push("─".repeat(Math.max(0, Math.min(width, 200))));
  const body = Math.max(1, height - lines.length - 2);
  if (state.mode === "detail") {
    for (const l of state.detail.slice(state.scroll, state.scroll + body)) lines.push(emphasize(fit(l, width), opts.color));
  } else if (!state.items.length) {
    lines.push("no pending proposals — waiting for the agents to ask");
  } else {
    const start = Math.min(Math.max(0, state.selected - body + 1), Math.max(0, state.items.length - body));
    state.items.slice(start, start + body).forEach((it, k) => {
      const i = start + k;
      const row = `${i === state.selected ? "›" : " "} ${it.id}  ${fit(it.bottle, 16).padEnd(16)}  ${fit(it.host ?? "", 12).padEnd(12)}  ${it.kind.padEnd(18)}  ${age(it.createdAt, now).padStart(6)}  ${`${it.count}×`.padStart(5)}  ${oneLine(it.summary, 200)}`;
      const line = fit(row, width);
      lines.push(i === state.selected && opts.color ? INVERSE + line + RESET : line);
    });
  }
  while (lines.length < height - 1) lines.push("");
  lines.length = Math.max(1, height - 1);
  lines.push(fit(state.mode === "reason" ? `reject ${state.items[state.selected]?.id ?? ""} — reason: ${state.reason}▏` : state.message, width));
  return lines;
}

export function proposalsPerMinute(timestamps: readonly string[], now: number): number {
  return timestamps.filter((t) => {
    const d = now - Date.parse(t);
    return d >= 0 && d < 60_000;
  }).length;
}

/** Current items and rate, read from disk. */
export async function loadDashboard(ctx: CommandContext, now = Date.now()): Promise<{ items: DashItem[]; rate: number; bottles: number }> {
  const quiet: CommandContext = { ...ctx, io: { out: () => {}, err: () => {} } };
  const source = sourceOf(ctx);
  const bottles = await source.bottles();
  const all = await allProposals(source, undefined, bottles);
  const rate = proposalsPerMinute(all.flatMap((p) => p.proposal.requests.map((r) => r.at)), now);
  const items = (await pendingRows(quiet, all)).map(({ found, summary }) => ({
    id: found.proposal.id,
    bottle: found.bottle.record.identity,
    host: found.bottle.host.label,
    kind: found.proposal.change.kind,
    createdAt: found.proposal.createdAt,
    count: found.proposal.count,
    summary,
  }));
  return { items, rate, bottles: bottles.length };
}

export interface TtyIn extends NodeJS.EventEmitter {
  setRawMode?(raw: boolean): unknown;
  resume(): unknown;
  pause(): unknown;
  setEncoding(enc: BufferEncoding): unknown;
  isTTY?: boolean;
}
export interface TtyOut {
  write(s: string): unknown;
  columns?: number;
  rows?: number;
  isTTY?: boolean;
}

/** Run the interactive dashboard until q / Ctrl-C. */
export async function runDashboard(ctx: CommandContext, input: TtyIn, output: TtyOut, refreshMs = 1000): Promise<number> {
  if (!input.isTTY || !output.isTTY || !input.setRawMode) {
    ctx.io.err("bottle: the dashboard needs an interactive terminal; use `bottle pending` / `bottle approve` in scripts");
    return 1;
  }
  let state = initialState();
  let busy = false;
  const draw = () => {
    const lines = renderDashboard(state, { width: output.columns ?? 100, height: output.rows ?? 30, now: Date.now(), color: true });
    output.write("\u001b[H" + lines.map((l) => l + "\u001b[K").join("\r\n") + "\u001b[J");
  };
  // one refresh at a time: through a remote engine a round can take longer than the interval
  let refreshing: Promise<void> | undefined;
  const refresh = () =>
    (refreshing ??= (async () => {
      try {
        const { items, rate, bottles } = await loadDashboard(ctx);
        state = withItems(state, items, rate, bottles);
      } catch (err) {
        state = { ...state, message: `refresh failed: ${(err as Error).message}` };
      }
      draw();
    })().finally(() => (refreshing = undefined)));
  const captured = (): { io: Io; text: () => string } => {
    const lines: string[] = [];
    return { io: { out: (l) => lines.push(l), err: (l) => lines.push(l) }, text: () => lines.join(" · ").replace(/\s+/g, " ") };
  };
  return new Promise<number>((resolve) => {
    output.write("\u001b[?1049h\u001b[?25l");
    input.setRawMode!(true);
    input.setEncoding("utf8");
    input.resume();
    const timer = setInterval(() => void refresh(), refreshMs);
    const quit = () => {
      clearInterval(timer);
      input.off("data", onData);
      input.setRawMode!(false);
      input.pause();
      output.write("\u001b[?25h\u001b[?1049l");
      resolve(0);
    };
    const perform = async (action: Action) => {
      if (action.type === "quit") return quit();
      if (action.type === "show") {
        try {
          state = { ...state, detail: await showLines(await findProposal(action.id, sourceOf(ctx))) };
        } catch (err) {
          state = { ...state, mode: "list", message: (err as Error).message };
        }
        return;
      }
      busy = true;
      state = { ...state, message: `${action.type === "approve" ? "approving" : "rejecting"} ${action.id}…` };
      draw();
      const c = captured();
      try {
        if (action.type === "approve") await cmdApprove({ ...ctx, io: c.io }, action.id);
        else await cmdReject({ ...ctx, io: c.io }, action.id, action.reason);
        state = { ...state, message: c.text() };
      } catch (err) {
        state = { ...state, message: `${action.type} failed: ${(err as Error).message.replace(/\s+/g, " ")}` };
      } finally {
        busy = false;
      }
      await refresh();
    };
    const onData = (data: string) => {
      for (const key of decodeKeys(String(data))) {
        if (busy && key.name !== "ctrl-c") continue;
        const r = handleKey(state, key);
        state = r.state;
        if (r.action) {
          void perform(r.action).then(draw);
          if (r.action.type === "quit") return;
        }
      }
      draw();
    };
    input.on("data", onData);
    void refresh();
  });
}
