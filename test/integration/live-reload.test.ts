// The writers' reload confirmation (store/reload.ts, as the LiveConfigFile provider and `bottle
// approve` call it: liveTarget("pipelock", …)) against the TEST-ONLY pipelock stand-in running on
// loopback: a plain change confirmed by config_hash; pipelock's strict-mode refusal of a reload
// (a wider ssrf.ip_allowlist, a new passthrough domain) reproduced, then passed by a restart whose
// startup event names the file, after which reloads work again; a file it cannot load refused
// and the previous one put back.
import test from "ava";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { sha256 } from "../../contracts/hash.ts";
import { writeFileAtomic } from "../../store/io.ts";
import { liveTarget, writeConfirmed, type LiveFile } from "../../store/reload.ts";
import { startTestUpstream, type TestUpstream } from "./helpers/https-upstream.ts";
import { rawRequest } from "./helpers/egress-harness.ts";
import { freePort } from "./helpers/sshd.ts";
import { buildStandIn, renderFor, standInEnv, standInWorkDir, StandInProcess } from "./helpers/pipelock-standin.ts";

let bin = "";
let upstream: TestUpstream | undefined;
const cleanup: (() => Promise<void> | void)[] = [];

test.before(async () => {
  bin = await buildStandIn();
  upstream = await startTestUpstream();
});

test.after.always(async () => {
  for (const c of cleanup.reverse()) await c();
  await upstream?.close();
  if (bin) fs.rmSync(path.dirname(bin), { recursive: true, force: true });
});

/** A stand-in running `first`, and a LiveFile writer of its config file. */
async function running(first: (dir: string) => string) {
  const { dir } = await standInWorkDir(upstream!);
  const file = path.join(dir, "cfg", "pipelock.yaml");
  writeFileAtomic(file, first(dir));
  const port = await freePort();
  const p = new StandInProcess(bin, file, `127.0.0.1:${port}`, standInEnv(dir));
  await p.start();
  cleanup.push(async () => {
    await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const live = (content: string): LiveFile => ({ name: "pipelock.yaml", content, previous: fs.readFileSync(file, "utf8"), write: async (t) => writeFileAtomic(file, t) });
  const connect = async (host: string) => {
    const sock = net.connect(port, "127.0.0.1");
    try {
      return await rawRequest(sock, `CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
    } finally {
      sock.destroy();
    }
  };
  return { dir, file, p, live, connect };
}

test("an allowlist change: the stand-in's config_reload names the file's sha256, so it is confirmed", async (t) => {
  const s = await running((dir) => renderFor(dir, ["api.test.example"]));
  t.is((await s.connect("other.example")).status, 403);
  const next = renderFor(s.dir, ["api.test.example", "other.example"]);
  const out = await writeConfirmed(liveTarget("pipelock", s.p), s.live(next));
  t.true(out.ok, out.detail);
  t.is(out.status, "confirmed");
  t.is(s.p.restarts, 0);
  t.true(s.p.log.some((l) => l.includes('"event":"config_reload"') && l.includes(sha256(next))));
  t.not((await s.connect("other.example")).status, 403, "the new allowlist is enforced");
});

test("a wider ssrf.ip_allowlist: refused live by strict mode (reproduced), passed by a restart whose startup names the file; later reloads are confirmed again", async (t) => {
  const s = await running((dir) => renderFor(dir, ["api.test.example"]));
  const wider = renderFor(s.dir, ["api.test.example", "other.example"], () => {}, { ssrfIpAllowlist: ["127.0.0.1/32", "192.0.2.0/24"] });
  const out = await writeConfirmed(liveTarget("pipelock", s.p), s.live(wider));
  t.true(out.ok, out.detail);
  t.is(out.status, "restarted");
  t.is(s.p.restarts, 1);
  t.regex(out.detail, /refused pipelock\.yaml: rejected: security downgrade from strict mode \(.*WARNING: config reload: ssrf\.ip_allowlist - SSRF IP allowlist expanded: 192\.0\.2\.0\/24/);
  t.regex(out.detail, /requests in flight through it/);
  t.true(s.p.log.some((l) => l.includes('"event":"startup"') && l.includes(sha256(wider))), "the restarted stand-in started with exactly that file");
  t.not((await s.connect("other.example")).status, 403, "the allowlist change that rode along is live");
  // not wedged: the next plain change reloads live
  const next = renderFor(s.dir, ["api.test.example"], () => {}, { ssrfIpAllowlist: ["127.0.0.1/32", "192.0.2.0/24"] });
  const again = await writeConfirmed(liveTarget("pipelock", s.p), s.live(next));
  t.is(again.status, "confirmed", again.detail);
  t.is((await s.connect("other.example")).status, 403);
});

test("a new passthrough domain with restarts off: refused with pipelock's reason, the previous file put back, and the stand-in keeps reloading", async (t) => {
  const s = await running((dir) => renderFor(dir, ["api.test.example"]));
  const before = fs.readFileSync(s.file, "utf8");
  const more = renderFor(s.dir, ["api.test.example", "other.example"], (c) => c.tls_interception.passthrough_domains.push("api.test.example"));
  const out = await writeConfirmed({ ...liveTarget("pipelock", s.p), restartOnRefusal: false }, s.live(more));
  t.false(out.ok);
  t.is(out.status, "refused");
  t.regex(out.detail, /rejected: security downgrade from strict mode \(.*WARNING: config reload: tls_interception\.passthrough_domains - passthrough domains added: api\.test\.example/);
  t.regex(out.detail, /the previous pipelock\.yaml is back and pipelock-standin runs it/);
  t.is(fs.readFileSync(s.file, "utf8"), before);
  t.is((await s.connect("other.example")).status, 403, "nothing of the refused file is live");
  const ok = await writeConfirmed(liveTarget("pipelock", s.p), s.live(renderFor(s.dir, ["api.test.example", "other.example"])));
  t.is(ok.status, "confirmed", ok.detail);
});

test("a file the stand-in cannot load (an unknown key) is refused and never restarted into", async (t) => {
  const s = await running((dir) => renderFor(dir, ["api.test.example"]));
  const before = fs.readFileSync(s.file, "utf8");
  const out = await writeConfirmed(liveTarget("pipelock", s.p), s.live(before + "bogus_field: 1\n"));
  t.false(out.ok);
  t.is(s.p.restarts, 0);
  t.regex(out.detail, /refused pipelock\.yaml: config reload failed: .*field bogus_field not found in type config\.Config/);
  t.is(fs.readFileSync(s.file, "utf8"), before);
  t.true(await s.p.running());
});
