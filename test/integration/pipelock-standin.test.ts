// The TEST-ONLY pipelock stand-in (test/e2e/pipelock-standin, Go): its own `go test` suite, then the
// built binary on loopback with a config from the product's renderer, checked end to end: an
// allowlisted CONNECT intercepted with the configured CA, a refused host, a DLP body refusal with
// pipelock's block headers, a hot reload confirmed by config_hash, and a strict-mode downgrade
// refused on reload while the old allowlist stays enforced.
import test from "ava";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { writeFileAtomic } from "../../store/io.ts";
import { startTestUpstream, type TestUpstream } from "./helpers/https-upstream.ts";
import { connectThrough, rawRequest } from "./helpers/egress-harness.ts";
import { type TestCa } from "./helpers/tls.ts";
import { buildStandIn, GO_ENV, renderFor, standInEnv, standInWorkDir, STANDIN_DIR } from "./helpers/pipelock-standin.ts";

const exec = promisify(execFile);

const sha256 = (s: string) => crypto.createHash("sha256").update(s).digest("hex");

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Running {
  child: ChildProcess;
  port: number;
  dir: string;
  configFile: string;
  upstream: TestUpstream;
  ca: TestCa;
  /** stdout JSON lines so far */
  events: () => Record<string, unknown>[];
  stderr: () => string;
}

let bin = "";
let run: Running | undefined;

/** Start the binary; resolves on its startup event, or with its exit if it refuses to start. */
function start(dir: string, configFile: string): Promise<{ child: ChildProcess; port?: number; code?: number | null; out: () => string; err: () => string }> {
  let out = "";
  let err = "";
  const child = spawn(bin, ["run", "--config", configFile, "--listen", "127.0.0.1:0"], {
    env: standInEnv(dir),
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve({ child, code, out: () => out, err: () => err }));
    const iv = setInterval(() => {
      const m = /"event":"startup","listen":"127\.0\.0\.1:(\d+)"/.exec(out);
      if (m) {
        clearInterval(iv);
        resolve({ child, port: Number(m[1]), out: () => out, err: () => err });
      }
    }, 20);
    child.once("exit", () => clearInterval(iv));
  });
}

test.before(async () => {
  bin = await buildStandIn();
  const upstream = await startTestUpstream();
  const { dir, ca } = await standInWorkDir(upstream);
  const configFile = path.join(dir, "cfg", "pipelock.yaml");
  writeFileAtomic(configFile, renderFor(dir, ["api.test.example", "*.wild.test.example"]));
  const s = await start(dir, configFile);
  if (!s.port) throw new Error(`stand-in did not start (exit ${s.code}):\n${s.err()}`);
  run = {
    child: s.child,
    port: s.port,
    dir,
    configFile,
    upstream,
    ca,
    events: () => s.out().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    stderr: s.err,
  };
});

test.after.always(async () => {
  if (run) {
    run.child.kill("SIGTERM");
    await run.upstream.close();
    fs.rmSync(run.dir, { recursive: true, force: true });
  }
  if (bin) fs.rmSync(path.dirname(bin), { recursive: true, force: true });
});

/** One request inside a CONNECT tunnel to host:upstreamPort; the client trusts only pipelock's CA. */
async function inTunnel(host: string, request: (hostHeader: string) => string) {
  const r = run!;
  const sock = await connectThrough(r.port, host, r.ca.certPem, { connectTarget: `${host}:${r.upstream.port}` });
  try {
    const issuer = sock.getPeerCertificate().issuer?.CN;
    const res = await rawRequest(sock, request(`${host}:${r.upstream.port}`));
    return { ...res, issuer };
  } finally {
    sock.destroy();
  }
}

async function rawConnect(target: string) {
  const sock = net.connect(run!.port, "127.0.0.1");
  try {
    return await rawRequest(sock, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  } finally {
    sock.destroy();
  }
}

test.serial("go test ./... in the stand-in passes (config refusal, downgrades, allowlist, DLP, SSRF, block shape)", async (t) => {
  const r = await exec("go", ["test", "-count=1", "./..."], { cwd: STANDIN_DIR, env: GO_ENV, timeout: 600_000 }).catch((e: { stdout?: string; stderr?: string; code?: number }) => e);
  t.log((r.stdout ?? "") + (r.stderr ?? ""));
  t.false("code" in r && r.code !== 0, "go test failed");
  t.regex(r.stdout ?? "", /^ok\s+claude-bottle\.test\/pipelock-standin\s/m);
  t.regex(r.stdout ?? "", /^ok\s+claude-bottle\.test\/pipelock-standin\/config\s/m);
});

test.serial("pipelock.yaml as rendered: every prefix reloaded over it is refused, or the same config with fewer allowlisted hosts", async (t) => {
  // The layout contracts/pipelock.ts promises (mode first, api_allowlist last, strings quoted),
  // checked with the stand-in's Go mirror of pipelock's loader and reload path (config/prefix_test.go).
  const file = path.join(run!.dir, "prefix-check", "pipelock.yaml");
  writeFileAtomic(file, renderFor(run!.dir, ["api.test.example", "*.wild.test.example", "other.example", "evil.example"]));
  const r = await exec("go", ["test", "-count=1", "-v", "-run", "^TestRenderedConfigPrefixes$", "./config"], { cwd: STANDIN_DIR, env: { ...GO_ENV, CBTEST_RENDERED_PIPELOCK: file }, timeout: 600_000 }).catch(
    (e: { stdout?: string; stderr?: string; code?: number }) => e,
  );
  t.log((r.stdout ?? "").split("\n").filter((l) => /prefixes|PASS|FAIL/.test(l)).join(" / "));
  t.regex(r.stdout ?? "", /--- PASS: TestRenderedConfigPrefixes/, (r.stdout ?? "") + (r.stderr ?? ""));
  t.regex(r.stdout ?? "", /\d+ prefixes: \d+ accepted, [1-9]\d* of them with a shorter allowlist/);
});

test.serial("start: banner, startup event with config_hash = sha256 of the file, version says TEST-ONLY", async (t) => {
  const startup = run!.events().find((e) => e.event === "startup");
  t.is(startup?.config_hash, sha256(fs.readFileSync(run!.configFile, "utf8")));
  t.is(startup?.mode, "strict");
  t.regex(run!.stderr(), /pipelock TEST-ONLY STAND-IN/);
  const v = await exec(bin, ["version"]);
  t.regex(v.stdout, /TEST-ONLY STAND-IN/);
  const hc = await exec(bin, ["healthcheck", "--addr", `127.0.0.1:${run!.port}`]).then(() => 0, (e: { code: number }) => e.code);
  t.is(hc, 0);
});

test.serial("an allowlisted CONNECT is intercepted with the configured CA and reaches the upstream", async (t) => {
  const before = run!.upstream.seen.length;
  const res = await inTunnel("api.test.example", (h) => `GET /hello HTTP/1.1\r\nHost: ${h}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n`);
  t.is(res.status, 200, res.body);
  t.is(res.issuer, "pipelock stand-in test CA", "the client must see a leaf minted by pipelock's CA");
  const echo = JSON.parse(res.body) as { url: string; sni: string; headers: Record<string, string | undefined> };
  t.is(echo.url, "/hello");
  t.is(echo.sni, "api.test.example", "upstream TLS carries the host's SNI");
  t.is(echo.headers["accept-encoding"], undefined, "Accept-Encoding is stripped so the response can be scanned");
  t.is(run!.upstream.seen.length, before + 1);
  t.true(run!.events().some((e) => e.event === "anomaly" && e.scanner === "tls_intercept"));
});

test.serial("a host outside the allowlist: CONNECT 403 with pipelock's body and block headers", async (t) => {
  const res = await rawConnect("evil.example:443");
  t.is(res.status, 403);
  t.is(res.body, "CONNECT blocked: domain not in allowlist: evil.example\n");
  t.is(res.headers["content-type"], "text/plain; charset=utf-8");
  t.is(res.headers["x-pipelock-block-reason"], "parse_error");
  t.is(res.headers["x-pipelock-block-reason-version"], "1");
  t.is(res.headers["x-pipelock-block-reason-layer"], "allowlist");
  t.is(res.headers["x-pipelock-hint"], "Domain not on the allowlist. In strict mode, only allowlisted domains are reachable.");
});

test.serial("DLP: a body carrying AKIAIOSFODNN7EXAMPLE is refused inside the tunnel and never reaches the upstream", async (t) => {
  const body = JSON.stringify({ note: "AKIAIOSFODNN7EXAMPLE" });
  const before = run!.upstream.seen.length;
  const res = await inTunnel("api.test.example", (h) =>
    `POST /upload HTTP/1.1\r\nHost: ${h}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
  t.is(res.status, 403);
  t.is(res.body, "blocked: request body contains secret: AWS Access ID\n");
  t.is(res.headers["x-pipelock-block-reason"], "dlp_match");
  t.is(res.headers["x-pipelock-block-reason-severity"], "critical");
  t.is(res.headers["x-pipelock-block-reason-layer"], "body_dlp");
  t.is(run!.upstream.seen.length, before, "the refused request must not reach the upstream");
});

test.serial("reload: a plain allowlist change hot-reloads, confirmed by config_hash = sha256 of the file", async (t) => {
  t.is((await rawConnect("other.example:443")).status, 403);
  const text = renderFor(run!.dir, ["api.test.example", "*.wild.test.example", "other.example"]);
  writeFileAtomic(run!.configFile, text);
  const ev = await until("config_reload", () => run!.events().find((e) => e.event === "config_reload" && e.config_hash === sha256(text)));
  t.is(ev.status, "success");
  t.is(ev.detail, "mode=strict");
  const res = await inTunnel("other.example", (h) => `GET /now-allowed HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`);
  t.is(res.status, 200, res.body);
});

test.serial("reload: a strict-mode downgrade is refused, keeps being refused, and the old allowlist stays enforced", async (t) => {
  const rejections = () => run!.events().filter((e) => e.event === "error" && e.error === "rejected: security downgrade from strict mode").length;
  const n0 = rejections();
  // adds a passthrough domain AND drops other.example from the allowlist
  const downgrade = renderFor(run!.dir, ["api.test.example", "*.wild.test.example"], (c) => c.tls_interception.passthrough_domains.push("api.test.example"));
  writeFileAtomic(run!.configFile, downgrade);
  await until("rejection", () => (rejections() > n0 ? true : undefined));
  t.regex(run!.stderr(), /WARNING: config reload: tls_interception\.passthrough_domains - passthrough domains added: api\.test\.example/);
  // the allowlist change rode along with the downgrade, so it did not apply: other.example still answers
  t.is((await inTunnel("other.example", (h) => `GET /still HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`)).status, 200);
  // and api.test.example is still intercepted (the passthrough was not applied)
  t.is((await inTunnel("api.test.example", (h) => `GET / HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`)).issuer, "pipelock stand-in test CA");
  // every later reload of that file is refused too (compared with the running config)
  run!.child.kill("SIGHUP");
  await until("second rejection", () => (rejections() > n0 + 1 ? true : undefined));
  t.false(run!.events().some((e) => e.event === "config_reload" && e.config_hash === sha256(downgrade)));
  // a file without the downgrade applies, and only then is other.example refused
  const fixed = renderFor(run!.dir, ["api.test.example", "*.wild.test.example"]);
  writeFileAtomic(run!.configFile, fixed);
  await until("fixed reload", () => run!.events().find((e) => e.event === "config_reload" && e.config_hash === sha256(fixed)));
  t.is((await rawConnect("other.example:443")).status, 403);
});

test.serial("start refusals: an unknown field and a CA key looser than 0600/0640 exit non-zero with pipelock's message", async (t) => {
  const cases = [
    { name: "unknown field", keyMode: 0o600, extra: "bogus_field: 1\n", want: /field bogus_field not found in type config\.Config/ },
    { name: "key 0644", keyMode: 0o644, extra: "", want: /CA key \S+ca-key\.pem is too permissive \(mode 0644\): restrict to 0600 or 0640/ },
  ];
  for (const c of cases) {
    const { dir } = await standInWorkDir(run!.upstream, c.keyMode);
    const file = path.join(dir, "pipelock.yaml");
    fs.writeFileSync(file, renderFor(dir, ["api.test.example"]) + c.extra);
    const s = await start(dir, file);
    t.is(s.port, undefined, `${c.name}: must not start`);
    t.not(s.code, 0, c.name);
    t.regex(s.err(), c.want, c.name);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
