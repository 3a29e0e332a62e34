// `bottle dashboard` for real, in a tmux pane: it shows pending proposals, refreshes as
// new ones arrive, rejects with a typed reason, approves, and quits on q.
import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Supervisor } from "../../sidecars/supervise/supervisor.ts";
import { proposalPaths, readDecision } from "../../store/proposals.ts";
import { makeBottle, makeHome, until } from "./supervise-fixture.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

(hasTmux ? test : test.skip)("dashboard under tmux: refresh, reject with a reason, approve, quit", async (t) => {
  t.timeout(120_000);
  const home = makeHome();
  const fx = makeBottle(home, "dev");
  const sup = await Supervisor.open(fx.settings);
  const session = `cb-dash-${process.pid}`;
  const socket = path.join(home, "tmux.sock");
  const tmux = (...args: string[]) => execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8" });
  t.teardown(() => {
    sup.close();
    try {
      tmux("kill-server");
    } catch {
      /* already gone */
    }
  });
  const first = (await sup.propose({ kind: "pipelock_allowlist", allowlist: ["paste.example.net"], base: [] }, "share a log")).proposal;
  // the real dashboard in a real terminal, its bottles found in the fixture's directory (no engine)
  tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "30", `cd ${root} && CBTEST_BOTTLES_DIR=${home} PATH=/usr/bin:/bin:${path.dirname(process.execPath)} node --import tsx test/integration/helpers/dir-cli.ts dashboard; echo EXITED:$?; sleep 30`);
  const screen = () => tmux("capture-pane", "-p", "-t", session);
  await until(() => screen().includes(first.id), 30_000, "the dashboard to show the first proposal");
  t.regex(screen(), /1 pending across 1 bottle/);

  // A new proposal appears without a key press.
  const second = (await sup.propose({ kind: "pipelock_allowlist", allowlist: ["docs.example.net"], base: [] }, "read docs")).proposal;
  await until(() => screen().includes(second.id), 15_000, "refresh to show the second proposal");
  t.regex(screen(), /2 pending across 1 bottle — 2 proposals\/min/);

  // Reject the first (selected) with a reason typed at the prompt.
  tmux("send-keys", "-t", session, "r");
  await until(() => screen().includes("reason:"), 10_000, "the reason prompt");
  tmux("send-keys", "-t", session, "-l", "no paste sites");
  tmux("send-keys", "-t", session, "Enter");
  const layout = proposalPaths(fx.layout.superviseDir);
  await until(() => fs.existsSync(layout.decisionFile(first.id)), 20_000, "the reject decision");
  t.like(await readDecision(fx.layout.superviseDir, first.id), { decision: "rejected", reason: "no paste sites" });
  const listed = (id: string) => screen().split("\n").some((l) => l.startsWith(`› ${id}`) || l.startsWith(`  ${id}`));
  await until(() => !listed(first.id), 10_000, "the rejected proposal to leave the list");
  t.true(listed(second.id));

  // Approve the remaining one.
  tmux("send-keys", "-t", session, "a");
  await until(() => fs.existsSync(layout.decisionFile(second.id)), 30_000, "the approve decision");
  t.is((await readDecision(fx.layout.superviseDir, second.id))?.decision, "approved");
  await until(() => screen().includes("approved " + second.id), 15_000, "the approval message");
  t.true(fs.readFileSync(fx.layout.pipelockFile, "utf8").includes("docs.example.net"));

  tmux("send-keys", "-t", session, "q");
  await until(() => screen().includes("EXITED:0"), 10_000, "the dashboard to quit cleanly");
});
