// The dashboard's pure parts: key decoding, key handling (selection, approve, reject with
// a reason prompt, diff view, quit), rendering, and the proposals-per-minute rate.
import test from "ava";
import { decodeKeys, handleKey, initialState, proposalsPerMinute, renderDashboard, withItems, type DashItem, type DashState } from "../../cli/dashboard.ts";

const now = Date.parse("2026-01-01T12:00:00Z");
const item = (id: string, over: Partial<DashItem> = {}): DashItem => ({
  id,
  bottle: "dev-coder",
  host: "box-a",
  kind: "egress_routes",
  createdAt: new Date(now - 90_000).toISOString(),
  count: 1,
  summary: `+ route ${id}.example.com`,
  ...over,
});
const three = () => withItems(initialState(), [item("p-00000001"), item("p-00000002", { count: 7 }), item("p-00000003", { kind: "capability" })], 12, 2);

function press(state: DashState, keys: string) {
  const actions = [];
  for (const k of decodeKeys(keys)) {
    const r = handleKey(state, k);
    state = r.state;
    if (r.action) actions.push(r.action);
  }
  return { state, actions };
}

test("decodeKeys: arrows, page keys, enter, escape, backspace, ctrl-c, characters", (t) => {
  t.deepEqual(decodeKeys("\u001b[A\u001b[B\u001bOA\u001b[5~\u001b[6~"), [{ name: "up" }, { name: "down" }, { name: "up" }, { name: "pageup" }, { name: "pagedown" }]);
  t.deepEqual(decodeKeys("jk\r\u007f\u0003"), [{ name: "char", ch: "j" }, { name: "char", ch: "k" }, { name: "enter" }, { name: "backspace" }, { name: "ctrl-c" }]);
  t.deepEqual(decodeKeys("\u001b"), [{ name: "escape" }]);
  t.deepEqual(decodeKeys("\u001b[1;5Cx"), [{ name: "char", ch: "x" }], "unknown sequences are swallowed");
});

test("selection: arrows and j/k move within bounds; approve acts on the selected proposal", (t) => {
  let { state, actions } = press(three(), "jj\u001b[B");
  t.is(state.selected, 2);
  ({ state, actions } = press(state, "k\u001b[A\u001b[Ak"));
  t.is(state.selected, 0);
  ({ state, actions } = press(state, "ja"));
  t.deepEqual(actions, [{ type: "approve", id: "p-00000002" }]);
});

test("reject asks for a reason; typing, backspace, empty reason refused, Esc cancels", (t) => {
  let { state, actions } = press(three(), "r");
  t.is(state.mode, "reason");
  ({ state, actions } = press(state, "\r"));
  t.deepEqual(actions, []);
  t.is(state.message, "a reason is required (Esc cancels)");
  ({ state, actions } = press(state, "too broadx\u007f\r"));
  t.deepEqual(actions, [{ type: "reject", id: "p-00000001", reason: "too broad" }]);
  t.is(state.mode, "list");
  ({ state, actions } = press(state, "rabc\u001b"));
  t.is(state.mode, "list");
  t.deepEqual(actions, []);
  t.is(state.message, "reject cancelled");
  // "q" inside the reason prompt is text, not quit.
  ({ state, actions } = press(state, "rq"));
  t.is(state.reason, "q");
  t.deepEqual(actions, []);
});

test("d opens the diff view (scrollable), q/Esc go back; q in the list quits; Ctrl-C always quits", (t) => {
  let { state, actions } = press(three(), "jd");
  t.deepEqual(actions, [{ type: "show", id: "p-00000002" }]);
  t.is(state.mode, "detail");
  state = { ...state, detail: Array.from({ length: 50 }, (_, i) => `line ${i}`) };
  ({ state } = press(state, "jjj\u001b[6~"));
  t.is(state.scroll, 13);
  ({ state, actions } = press(state, "q"));
  t.is(state.mode, "list");
  t.deepEqual(actions, []);
  ({ actions } = press(state, "q"));
  t.deepEqual(actions, [{ type: "quit" }]);
  ({ actions } = press({ ...state, mode: "reason" }, "\u0003"));
  t.deepEqual(actions, [{ type: "quit" }]);
});

test("refresh keeps the selection on the same proposal when new ones arrive", (t) => {
  let { state } = press(three(), "j");
  state = withItems(state, [item("p-00000000"), ...state.items], 13, 2);
  t.is(state.items[state.selected]!.id, "p-00000002");
  state = withItems(state, [item("p-00000000")], 13, 2);
  t.is(state.selected, 0);
});

test("render: header with counts and rate, rows with age and merge count, selection marker, status line", (t) => {
  const lines = renderDashboard(press(three(), "j").state, { width: 114, height: 10, now });
  t.is(lines.length, 10);
  t.is(lines[0], "claude-bottle supervise — 3 pending across 2 bottles — 12 proposals/min");
  t.is(lines[1], "↑/↓ j/k select · a approve · r reject · d diff · q quit");
  t.is(lines[3], "  p-00000001  dev-coder         box-a         egress_routes           1m     1×  + route p-00000001.example.com");
  t.is(lines[4], "› p-00000002  dev-coder         box-a         egress_routes           1m     7×  + route p-00000002.example.com");
  t.is(lines[5], "  p-00000003  dev-coder         box-a         capability              1m     1×  + route p-00000003.example.com");
  t.true(lines.every((l) => l.length <= 114));
  const narrow = renderDashboard(three(), { width: 30, height: 6, now });
  t.true(narrow.every((l) => l.length <= 30));
  const prompt = renderDashboard(press(three(), "rno").state, { width: 80, height: 6, now });
  t.is(prompt.at(-1), "reject p-00000001 — reason: no▏");
  t.is(renderDashboard(initialState(), { width: 80, height: 6, now })[3], "no pending proposals — waiting for the agents to ask");
  const colored = renderDashboard(three(), { width: 80, height: 8, now, color: true });
  t.true(colored[3]!.startsWith("\u001b[7m›"));
});

test("render: the selection scrolls into view in a long list", (t) => {
  let state = withItems(initialState(), Array.from({ length: 50 }, (_, i) => item(`p-${String(i).padStart(8, "0")}`)), 0, 1);
  state = { ...state, selected: 40 };
  const lines = renderDashboard(state, { width: 120, height: 12, now });
  t.true(lines.some((l) => l.startsWith("› p-00000040")));
});

test("proposals per minute counts the last 60 s only", (t) => {
  const ts = [now - 1_000, now - 59_000, now - 61_000, now + 5_000].map((x) => new Date(x).toISOString());
  t.is(proposalsPerMinute(ts, now), 2);
});

test("the detail view shows risk flags in bold on a colour terminal, plain otherwise", (t) => {
  const state: DashState = { ...initialState(), mode: "detail", detail: ["changes:", "  + route x.example.com", "!! CREDENTIAL TO A NEW HOST: …", "!! WILDCARD *.example.com: …"] };
  const bold = renderDashboard(state, { width: 100, height: 12, now: Date.now(), color: true });
  t.deepEqual(bold.filter((l) => l.startsWith("\u001b[1m")), ["\u001b[1m!! CREDENTIAL TO A NEW HOST: …\u001b[0m", "\u001b[1m!! WILDCARD *.example.com: …\u001b[0m"]);
  t.false(renderDashboard(state, { width: 100, height: 12, now: Date.now() }).some((l) => l.includes("\u001b")));
});
