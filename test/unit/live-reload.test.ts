// store/reload.ts: a live file is applied when the sidecar's log names its exact bytes; a refusal
// pipelock makes on reload only is passed by a restart (when the writer allows it); anything else
// puts the previous file back, so the sidecar runs it and later reloads are not refused too.
// The sidecar here is a scripted double speaking pipelock's log contract (test/helpers/
// fake-sidecar.ts); the real stand-in behind the same seam is test/integration/live-reload.test.ts.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sha256 } from "../../contracts/hash.ts";
import { readEgressLogLine } from "../../contracts/egress.ts";
import { isPipelockNoise, readPipelockLogLine } from "../../contracts/pipelock.ts";
import { dockerSidecar, stampedLines, writeConfirmed, SINCE_START, type LiveFile, type Sidecar } from "../../store/reload.ts";
import { FakeSidecar } from "../helpers/fake-sidecar.ts";

const FAST = { reloadMs: 400, restartMs: 400, pollMs: 10, quietMs: 150, graceMs: 60 };

/** A pipelock double over an in-memory file (test/helpers/fake-sidecar.ts). */
function pipelock(initial: string) {
  const mem = { text: initial };
  const p = new FakeSidecar("bottle-pipelock", () => mem.text);
  const liveFile = (content: string): LiveFile => ({ name: "pipelock.yaml", content, previous: mem.text, write: async (t) => void (mem.text = t) });
  return Object.assign(p, { mem, liveFile });
}

const target = (s: Sidecar, restartOnRefusal = false) => ({ sidecar: s, read: readPipelockLogLine, restartOnRefusal, interrupts: "TEST: the agent's connections through pipelock were cut" });

test("a reload the sidecar logs with the file's sha256 is confirmed", async (t) => {
  const p = pipelock("allow: [a]\n");
  const out = await writeConfirmed(target(p), p.liveFile("allow: [a, b]\n"), FAST);
  t.true(out.ok);
  t.is(out.status, "confirmed");
  t.is(p.runs, "allow: [a, b]\n");
  t.regex(out.detail, new RegExp(`bottle-pipelock loaded pipelock\\.yaml \\(sha256 ${sha256("allow: [a, b]\n").slice(0, 12)}`));
});

test("a sidecar that is not running gets the file and loads it at its start", async (t) => {
  const p = pipelock("v1\n");
  p.up = false;
  const out = await writeConfirmed(target(p), p.liveFile("v2\n"), FAST);
  t.true(out.ok);
  t.is(out.status, "not-running");
  t.is(p.mem.text, "v2\n");
});

test("strict mode's reload-only refusal: with restarts allowed, the sidecar is restarted and its start names the file", async (t) => {
  const p = pipelock("v1\n");
  const out = await writeConfirmed(target(p, true), p.liveFile("v2 downgrade\n"), FAST);
  t.true(out.ok, out.detail);
  t.is(out.status, "restarted");
  t.is(p.restarts, 1);
  t.is(p.runs, "v2 downgrade\n");
  t.regex(out.detail, /refused pipelock\.yaml: rejected: security downgrade from strict mode \(WARNING: config reload: ssrf\.ip_allowlist/);
  t.regex(out.detail, /was restarted \(same container\) and started with pipelock\.yaml/);
  t.regex(out.detail, /TEST: the agent's connections through pipelock were cut/, "the operator is told what the restart interrupted");
});

test("strict mode's refusal without restarts: not applied, the previous file is back, and the next reload is not refused", async (t) => {
  const p = pipelock("v1\n");
  const out = await writeConfirmed(target(p), p.liveFile("v2 downgrade\n"), FAST);
  t.false(out.ok);
  t.is(out.status, "refused");
  t.is(p.restarts, 0);
  t.is(p.mem.text, "v1\n", "the file pipelock runs is back on disk");
  t.regex(out.detail, /rejected: security downgrade from strict mode.*the previous pipelock\.yaml is back and bottle-pipelock runs it/);
  const next = await writeConfirmed(target(p), p.liveFile("v1 plus an allowlist entry\n"), FAST);
  t.true(next.ok, next.detail);
  t.is(next.status, "confirmed");
});

test("a file the sidecar cannot parse is never restarted into: refused with its reason, previous restored", async (t) => {
  const p = pipelock("v1\n");
  const out = await writeConfirmed(target(p, true), p.liveFile("broken\n"), FAST);
  t.false(out.ok);
  t.is(p.restarts, 0);
  t.is(p.mem.text, "v1\n");
  t.regex(out.detail, /refused pipelock\.yaml: config reload failed: invalid config: yaml: line 3/);
});

test("a sidecar that says nothing: not applied after the deadline, previous restored", async (t) => {
  const p = pipelock("v1\n");
  p.silent = true;
  const out = await writeConfirmed(target(p, true), p.liveFile("v2\n"), FAST);
  t.false(out.ok);
  t.is(out.status, "unconfirmed");
  t.is(p.mem.text, "v1\n");
  t.regex(out.detail, /did not confirm loading pipelock\.yaml \(sha256 [0-9a-f]{12}…\): nothing in its log within/);
});

test("a restart that does not come up: the previous file is restored and started again", async (t) => {
  const p = pipelock("v1\n");
  const out = await writeConfirmed(target(p, true), p.liveFile("downgrade nostart\n"), FAST);
  t.false(out.ok);
  t.is(p.restarts, 2, "once with the new file, once with the previous");
  t.is(p.runs, "v1\n");
  t.is(p.mem.text, "v1\n");
  t.regex(out.detail, /did not start: nothing in its log within \d+ s \(pipelock: invalid config: nostart is not a setting\); the previous pipelock\.yaml is back/);
});

test("bytes the sidecar already runs (a reload it skips silently) are confirmed from its log since start", async (t) => {
  const p = pipelock("v1\n");
  p.mem.text = "stale on disk\n"; // what a failed writer left behind
  const out = await writeConfirmed(target(p), { ...p.liveFile("v1\n"), previous: undefined }, FAST);
  t.true(out.ok, out.detail);
  t.is(out.status, "confirmed");
});

test("egress: a rejection of other bytes is not a refusal of ours; its own sha256 is", async (t) => {
  const mine = "version: 1\nroutes: []\n";
  const log: string[] = [];
  const egress: Sidecar = {
    name: "bottle-egress",
    running: async () => true,
    mark: async () => String(log.length),
    lines: async (m) => log.slice(m === SINCE_START ? 0 : Number(m)),
    hangUp: async () => {
      log.push(JSON.stringify({ ts: "x", level: "error", msg: "routes file NOT applied; the previous routes stay in force", error: "other", sha256: sha256("other") }));
      log.push(JSON.stringify({ ts: "x", level: "info", msg: "routes reloaded", routes: 0, generation: 2, sha256: sha256(mine) }));
    },
    restart: async () => t.fail("egress is never restarted"),
  };
  let file = "";
  const out = await writeConfirmed({ sidecar: egress, read: readEgressLogLine }, { name: "routes.yaml", content: mine, write: async (x) => void (file = x) }, FAST);
  t.true(out.ok, out.detail);
  t.is(file, mine);
  log.length = 0;
  egress.hangUp = async () => void log.push(JSON.stringify({ level: "error", msg: "routes file NOT applied; the previous routes stay in force", error: "routes.yaml: routes[0].host: bad", sha256: sha256("bad") }));
  const bad = await writeConfirmed({ sidecar: egress, read: readEgressLogLine }, { name: "routes.yaml", content: "bad", previous: mine, write: async (x) => void (file = x) }, FAST);
  t.false(bad.ok);
  t.regex(bad.detail, /bottle-egress refused routes\.yaml: routes\.yaml: routes\[0\]\.host: bad/);
  t.is(file, mine);
});

test("pipelock's log contract: what loads, what refuses (restartable or not), what is context", (t) => {
  const j = (o: object) => JSON.stringify(o);
  t.deepEqual(readPipelockLogLine(j({ level: "info", event: "startup", config_hash: "ab", message: "pipelock started" })), { kind: "loaded", sha256: "ab", at: "start" });
  t.deepEqual(readPipelockLogLine(j({ event: "config_reload", status: "success", config_hash: "cd" })), { kind: "loaded", sha256: "cd", at: "reload" });
  t.deepEqual(readPipelockLogLine(j({ event: "error", method: "CONFIG_RELOAD", error: "rejected: security downgrade from strict mode" })), { kind: "refused", reason: "rejected: security downgrade from strict mode", restartable: true });
  t.deepEqual(readPipelockLogLine(j({ event: "error", error: "rejected: forward proxy cannot be enabled via reload (requires restart)" }))?.kind, "refused");
  t.true((readPipelockLogLine(j({ event: "error", error: "rejected: forward proxy cannot be enabled via reload (requires restart)" })) as { restartable: boolean }).restartable);
  t.false((readPipelockLogLine(j({ event: "error", error: "rejected: implausibly empty config reload would weaken security posture: mode cleared" })) as { restartable: boolean }).restartable);
  t.deepEqual(readPipelockLogLine("pipelock: config reload failed: field bogus not found in type config.Config"), { kind: "refused", reason: "config reload failed: field bogus not found in type config.Config", restartable: false });
  t.deepEqual(readPipelockLogLine(j({ event: "error", method: "CONFIG_RELOAD", error: "TLS cert cache reload failed: x" })), { kind: "note", text: "TLS cert cache reload failed: x" });
  t.is(readPipelockLogLine(j({ event: "error", method: "CONNECT", error: "dial tcp: refused" })), undefined, "a request error is not about the config");
  t.is(readPipelockLogLine(j({ event: "config_reload", status: "success" })), undefined, "no hash, no proof");
});

test("the noise pipelock logs is recognised; what explains a refusal is not noise", (t) => {
  const j = (o: object) => JSON.stringify(o);
  t.true(isPipelockNoise(j({ level: "warn", event: "anomaly", url: "api.github.com:443", scanner: "tls_intercept", reason: "TLS MITM interception active", score: 0 })));
  t.true(isPipelockNoise(j({ level: "error", event: "error", method: "CONNECT", error: "read tcp 1.2.3.4:5->6.7.8.9:443: use of closed network connection" })));
  t.true(isPipelockNoise(j({ level: "warn", event: "anomaly", scanner: "config", reason: "/metrics and /stats exposed on 0.0.0.0:8888" })));
  t.true(isPipelockNoise("WARNING: telemetry is off"));
  t.false(isPipelockNoise("WARNING: config reload: ssrf.ip_allowlist - SSRF IP allowlist expanded"));
  t.false(isPipelockNoise(j({ level: "warn", event: "blocked", scanner: "body_dlp", reason: "request body contains secret: AWS Access ID" })));
  t.false(isPipelockNoise(j({ event: "error", method: "CONFIG_RELOAD", error: "rejected: security downgrade from strict mode" })));
});

test("docker logs --timestamps lines: the daemon's nanosecond stamps, in any fraction length", (t) => {
  const got = stampedLines("2026-11-29T15:00:23.553981491Z out1\n2026-11-29T15:00:24.5Z out2\r\n2026-11-29T15:00:25Z \nnot a log line\n");
  t.deepEqual(
    got.map((l) => [String(l.ns), l.text]),
    [
      ["1795964423553981491", "out1"],
      ["1795964424500000000", "out2"],
      ["1795964425000000000", ""],
    ],
  );
});

test("the docker CLI seam: log position from the last stamped line, --since strictly after it, SIGHUP by exec (not docker kill), restart in place", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-live-reload-"));
  const calls = path.join(dir, "calls");
  const docker = path.join(dir, "docker");
  // docker logs writes the container's stdout to stdout and its stderr to stderr
  fs.writeFileSync(
    docker,
    `#!/bin/sh
echo "$@" >> ${calls}
case "$1 $2" in
  "inspect -f") case "$3" in *Running*) echo true;; *StartedAt*) echo 2026-11-29T15:00:20.000000001Z;; esac;;
  "logs --timestamps")
    case "$3" in
      --tail) echo "2026-11-29T15:00:24.5Z last";;
      *) echo "2026-11-29T15:00:24.5Z last"; echo "2026-11-29T15:00:26.1Z {\\"event\\":\\"config_reload\\"}"; echo "2026-11-29T15:00:25.9Z WARNING: x" >&2;;
    esac;;
esac
`,
    { mode: 0o755 },
  );
  const s = dockerSidecar("bottle-pipelock", docker);
  t.true(await s.running());
  const mark = await s.mark();
  t.is(mark, "1795964424500000000");
  t.deepEqual(await s.lines(mark), ["WARNING: x", '{"event":"config_reload"}'], "after the mark only, stdout and stderr merged in time order");
  await s.lines(SINCE_START);
  await s.hangUp();
  await s.restart();
  const log = fs.readFileSync(calls, "utf8");
  t.true(log.includes("logs --timestamps --since 1795964424.500000000 bottle-pipelock"));
  t.true(log.includes("logs --timestamps --since 2026-11-29T15:00:20.000000001Z bottle-pipelock"));
  t.true(log.includes("exec bottle-pipelock sh -c kill -HUP 1"));
  t.true(log.includes("restart -t 10 bottle-pipelock"));
  t.false(log.includes("kill --signal"));
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a WARNING stamped after the refusal (docker stamps stdout and stderr apart) is still quoted with it", async (t) => {
  const p = pipelock("v1\n");
  p.downgrades = () => false;
  const hang = p.hangUp.bind(p);
  p.hangUp = async () => {
    if (p.mem.text.includes("late")) {
      p.log.push(JSON.stringify({ level: "error", event: "error", method: "CONFIG_RELOAD", error: "rejected: security downgrade from strict mode" }));
      p.log.push("WARNING: config reload: metrics_listen - metrics_listen changed — requires restart");
      return;
    }
    await hang();
  };
  const out = await writeConfirmed(target(p), p.liveFile("late\n"), FAST);
  t.false(out.ok);
  t.regex(out.detail, /rejected: security downgrade from strict mode \(WARNING: config reload: metrics_listen - metrics_listen changed/);
});

test("a refusal that names no file, followed by the wanted file loading (a file watch reloaded the previous write), is not taken for a refusal", async (t) => {
  const p = pipelock("v1\n");
  const hang = p.hangUp.bind(p);
  p.hangUp = async () => {
    // the watcher's reload of what was on disk a moment ago, refused; then ours
    p.log.push(JSON.stringify({ level: "error", event: "error", method: "CONFIG_RELOAD", error: "rejected: security downgrade from strict mode" }));
    await hang();
  };
  const out = await writeConfirmed(target(p), p.liveFile("v2\n"), FAST);
  t.true(out.ok, out.detail);
  t.is(out.status, "confirmed");
});

test("after a restart only its start counts: a refusal the stopping process logged is not the restart's", async (t) => {
  const p = pipelock("v1\n");
  const restart = p.restart.bind(p);
  p.restart = async () => {
    p.log.push(JSON.stringify({ level: "error", event: "error", method: "CONFIG_RELOAD", error: "rejected: security downgrade from strict mode" }));
    await restart();
  };
  const out = await writeConfirmed(target(p, true), p.liveFile("v2 downgrade\n"), FAST);
  t.true(out.ok, out.detail);
  t.is(out.status, "restarted");
});
