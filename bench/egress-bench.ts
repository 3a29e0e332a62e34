// Egress benchmark (not a timed test). One run, one loopback HTTPS upstream, three paths:
//   direct      client ──TLS──▶ upstream
//   egress      client ──CONNECT+TLS──▶ egress (MITM, decide, audit) ──TLS──▶ upstream
//   mitmproxy   client ──CONNECT+TLS──▶ mitmdump --mode regular ──TLS──▶ upstream
// Measures keep-alive throughput (many connections), single-connection latency p50/p99 and
// the cost of a new connection (CONNECT + TLS handshake + one request; egress's leaf is cached).
// Each server and the load generator run in their own process.
//
//   node --import tsx bench/egress-bench.ts [--seconds 8] [--conns 32] [--write]
// --write replaces the egress section of bench/RESULTS.md.
//   node --import tsx bench/egress-bench.ts --redaction [--seconds 8] [--conns 32] [--write]
// measures instead what redacting the injected credential from responses costs: egress on a
// plain route vs on a route that injects (and so redacts), for a 1 KiB identity body and a
// 16 KiB gzip body (passed through compressed on the plain route, decoded and redacted on the
// other); --write replaces the egress-redaction section.
import { spawn, type ChildProcess } from "node:child_process";
import { egressRole, exchange, openTls, pct, spawnRole, upstreamRole } from "./proxy-roles.ts";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const BODY_BYTES = 1024;
const GZ_TEXT_BYTES = 16 * 1024;
const HOST = "localhost";
const BENCH_TOKEN = "sk-ant-oat01-bench-0123456789abcdef0123456789abcdef";

// ------------------------------------------------------------------------------------------
// Roles run in child processes.

async function roleUpstream(dir: string): Promise<void> {
  const body = Buffer.alloc(BODY_BYTES, 97);
  // Text that compresses like JSON does (about 4:1), gzip'd once.
  const words = ["route", "egress", "token", "value", "host", "path", "method", "allow", "bottle", "agent"];
  let text = "";
  for (let i = 0; text.length < GZ_TEXT_BYTES; i++) text += `{"id":${i},"k":"${words[i % 10]}-${(i * 7919) % 10007}"},`;
  const gz = (await import("node:zlib")).gzipSync(Buffer.from(text.slice(0, GZ_TEXT_BYTES)));
  await upstreamRole(dir, [HOST, "127.0.0.1"], (req, res) => {
    req.resume();
    const gzipped = req.url === "/bench-gz";
    res.writeHead(200, { "content-type": gzipped ? "application/json" : "application/octet-stream", "content-length": (gzipped ? gz : body).length, ...(gzipped ? { "content-encoding": "gzip" } : {}) });
    res.end(gzipped ? gz : body);
  });
}

function roleEgress(dir: string, upstreamPort: number, inject = false): Promise<void> {
  const route = { host: HOST, ...(inject ? { auth: { scheme: "bearer", token_ref: "BENCH_TOKEN" } } : {}) };
  return egressRole(dir, upstreamPort, { version: 1, routes: [route] }, inject ? { BENCH_TOKEN } : {}, inject ? "egress-inject-ca.pem" : "egress-ca.pem");
}

interface ClientArgs {
  kind: "throughput" | "latency" | "newconn";
  proxyPort?: number;
  connectTarget: string;
  upstreamPort: number;
  caFile: string;
  conns: number;
  seconds: number;
  iterations: number;
  /** Request path; default /bench (the 1 KiB body), /bench-gz the gzip body. */
  path?: string;
}

function openConn(a: ClientArgs, ca: string): Promise<tls.TLSSocket> {
  return openTls({ servername: HOST, upstreamPort: a.upstreamPort, proxyPort: a.proxyPort, connectTarget: a.connectTarget }, ca);
}

/** One GET on a kept-alive socket; resolves when the whole body is in. */
const get = (sock: tls.TLSSocket, target = "/bench") => exchange(sock, `GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\nAccept-Encoding: gzip\r\n\r\n`);

async function roleClient(a: ClientArgs): Promise<void> {
  const ca = fs.readFileSync(a.caFile, "utf8");
  const lat: number[] = [];
  let count = 0;
  if (a.kind === "newconn") {
    for (let i = 0; i < a.iterations + 20; i++) {
      const t0 = process.hrtime.bigint();
      const s = await openConn(a, ca);
      await get(s, a.path);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      s.destroy();
      if (i >= 20) lat.push(ms);
    }
  } else {
    const socks = await Promise.all(Array.from({ length: a.conns }, () => openConn(a, ca)));
    // Warm up every connection.
    for (let i = 0; i < 50; i++) await Promise.all(socks.map((s) => get(s, a.path)));
    const deadline = Date.now() + a.seconds * 1000;
    const started = process.hrtime.bigint();
    await Promise.all(
      socks.map(async (s) => {
        while (Date.now() < deadline) {
          const t0 = process.hrtime.bigint();
          await get(s, a.path);
          lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
          count++;
        }
      }),
    );
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    for (const s of socks) s.destroy();
    process.stdout.write(JSON.stringify({ rps: count / secs, ...pct(lat) }) + "\n");
    return;
  }
  process.stdout.write(JSON.stringify(pct(lat)) + "\n");
}


// ------------------------------------------------------------------------------------------
// Orchestration.

const role$ = (args: string[]) => spawnRole(fileURLToPath(import.meta.url), args);

async function client(a: ClientArgs): Promise<any> {
  const { child, first } = role$(["client", JSON.stringify(a)]);
  const r = await first;
  child.kill();
  return r;
}

async function startMitm(dir: string, upstreamCa: string): Promise<{ child: ChildProcess; port: number; caFile: string }> {
  const port = await new Promise<number>((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
  const confdir = path.join(dir, "mitm");
  fs.mkdirSync(confdir);
  const child = spawn("mitmdump", ["--mode", "regular", "--listen-host", "127.0.0.1", "--listen-port", String(port), "--set", `confdir=${confdir}`, "--set", `ssl_verify_upstream_trusted_ca=${upstreamCa}`, "-q"], { stdio: ["ignore", "ignore", "inherit"] });
  const caFile = path.join(confdir, "mitmproxy-ca-cert.pem");
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), r(true)));
      s.on("error", () => r(false));
    });
    if (up && fs.existsSync(caFile)) return { child, port, caFile };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("mitmdump did not start");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: number) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const seconds = opt("seconds", 8);
  const conns = opt("conns", 32);
  const iterations = opt("newconn", 300);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-egress-bench-"));
  const children: ChildProcess[] = [];
  if (argv.includes("--redaction")) {
    try {
      await redactionBench(dir, children, { seconds, conns, write: argv.includes("--write") });
    } finally {
      for (const c of children) c.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  try {
    const up = role$(["upstream", dir]);
    children.push(up.child);
    const upstreamPort = (await up.first).port as number;
    const upstreamCa = path.join(dir, "upstream-ca.pem");
    const eg = role$(["egress", dir, String(upstreamPort)]);
    children.push(eg.child);
    const egressPort = (await eg.first).port as number;
    const mitm = await startMitm(dir, upstreamCa);
    children.push(mitm.child);

    const paths = {
      direct: { upstreamPort, connectTarget: "", caFile: upstreamCa },
      egress: { upstreamPort, proxyPort: egressPort, connectTarget: `${HOST}:443`, caFile: path.join(dir, "egress-ca.pem") },
      mitmproxy: { upstreamPort, proxyPort: mitm.port, connectTarget: `${HOST}:${upstreamPort}`, caFile: mitm.caFile },
    } as const;
    const results: Record<string, { tput: any; lat: any; newc: any }> = {};
    for (const [name, p] of Object.entries(paths)) {
      const base = { ...p, conns, seconds, iterations };
      const tput = await client({ ...base, kind: "throughput" });
      const lat = await client({ ...base, kind: "latency", conns: 1 });
      const newc = await client({ ...base, kind: "newconn" });
      results[name] = { tput, lat, newc };
      process.stderr.write(`${name}: ${JSON.stringify(results[name])}\n`);
    }
    const f = (x: number, d = 2) => x.toFixed(d);
    const d = results.direct!;
    const e = results.egress!;
    const m = results.mitmproxy!;
    const cpu = os.cpus();
    const table = [
      `| path | keep-alive req/s (${conns} conns) | p50 / p99 ms at ${conns} conns | p50 / p99 ms, 1 conn | new connection p50 / p99 ms |`,
      "|---|---:|---:|---:|---:|",
      ...Object.entries(results).map(([n, r]) => `| ${n} | ${f(r.tput.rps, 0)} | ${f(r.tput.p50)} / ${f(r.tput.p99)} | ${f(r.lat.p50, 3)} / ${f(r.lat.p99, 3)} | ${f(r.newc.p50)} / ${f(r.newc.p99)} |`),
    ].join("\n");
    const verdict = [
      `- egress / mitmproxy throughput: **${f(e.tput.rps / m.tput.rps, 1)}×** (target ≥ 3×)`,
      `- egress p50 added over direct, 1 connection: **${f(e.lat.p50 - d.lat.p50, 3)} ms** (target ≤ 1 ms)`,
      `- new connection through egress with a cached leaf: p50 ${f(e.newc.p50)} ms vs direct ${f(d.newc.p50)} ms vs mitmproxy ${f(m.newc.p50)} ms`,
    ].join("\n");
    const section = [
      "<!-- egress:begin -->",
      "## egress",
      "",
      `Command: \`node --import tsx bench/egress-bench.ts --seconds ${seconds} --conns ${conns} --newconn ${iterations} --write\``,
      "",
      `Machine: ${cpu.length}× ${cpu[0]?.model.trim()}, node ${process.version}, ${fs.existsSync("/usr/bin/mitmdump") ? "Debian mitmproxy (mitmdump --mode regular -q)" : "mitmdump"}; ` +
        `upstream: node https on 127.0.0.1, ${BODY_BYTES}-byte body; every process (client, egress, mitmdump, upstream) on the same machine. ` +
        `Egress runs the real EgressProxy (decide, header rewrite, JSON-lines audit to a file) in direct mode. Run on ${new Date().toISOString().slice(0, 10)}; ` +
        `1-min load average at the end ${os.loadavg()[0]!.toFixed(1)} (a shared machine: absolute numbers are noisy, the ratios are what to read).`,
      "",
      table,
      "",
      verdict,
      "<!-- egress:end -->",
    ].join("\n");
    process.stdout.write(section + "\n");
    if (argv.includes("--write")) {
      const file = path.join(here, "RESULTS.md");
      const old = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "# Benchmarks\n";
      const next = /<!-- egress:begin -->[\s\S]*<!-- egress:end -->/.test(old) ? old.replace(/<!-- egress:begin -->[\s\S]*<!-- egress:end -->/, section) : old.trimEnd() + "\n\n" + section + "\n";
      fs.writeFileSync(file, next);
    }
  } finally {
    for (const c of children) c.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What redaction costs: the same egress, a plain route vs an injecting one, two kinds of body. */
async function redactionBench(dir: string, children: ChildProcess[], o: { seconds: number; conns: number; write: boolean }): Promise<void> {
  const up = role$(["upstream", dir]);
  children.push(up.child);
  const upstreamPort = (await up.first).port as number;
  const plain = role$(["egress", dir, String(upstreamPort)]);
  const inject = role$(["egress", dir, String(upstreamPort), "inject"]);
  children.push(plain.child, inject.child);
  const via = (port: number, ca: string) => ({ upstreamPort, proxyPort: port, connectTarget: `${HOST}:443`, caFile: path.join(dir, ca) });
  const plainPath = via((await plain.first).port, "egress-ca.pem");
  const injectPath = via((await inject.first).port, "egress-inject-ca.pem");
  const rows: [string, typeof plainPath, string][] = [
    ["plain route, 1 KiB identity body", plainPath, "/bench"],
    ["injecting route (redacts), 1 KiB identity body", injectPath, "/bench"],
    ["plain route, 16 KiB JSON gzip'd (relayed compressed)", plainPath, "/bench-gz"],
    ["injecting route (decodes, redacts), 16 KiB JSON gzip'd", injectPath, "/bench-gz"],
  ];
  const results: { name: string; tput: any; lat: any }[] = [];
  // Interleaved, twice, best of the two per row: the machine is shared.
  for (let round = 0; round < 2; round++) {
    for (const [name, p, target] of rows) {
      const base = { ...p, conns: o.conns, seconds: o.seconds, iterations: 0, path: target };
      const tput = await client({ ...base, kind: "throughput" });
      const lat = await client({ ...base, kind: "latency", conns: 1, seconds: Math.max(2, o.seconds / 2) });
      const prev = results.find((r) => r.name === name);
      if (!prev) results.push({ name, tput, lat });
      else if (tput.rps > prev.tput.rps) Object.assign(prev, { tput, lat });
      process.stderr.write(`${name}: ${JSON.stringify({ tput, lat })}\n`);
    }
  }
  const f = (x: number, d = 2) => x.toFixed(d);
  const r = (i: number) => results[i]!;
  const cost = (a: number, b: number) => `${f(100 * (1 - r(b).tput.rps / r(a).tput.rps), 1)} % throughput, +${f(r(b).lat.p50 - r(a).lat.p50, 3)} ms p50 on one connection`;
  const section = [
    "<!-- egress-redaction:begin -->",
    "## egress: redacting the injected credential from responses",
    "",
    `Command: \`node --import tsx bench/egress-bench.ts --redaction --seconds ${o.seconds} --conns ${o.conns} --write\``,
    "",
    `Same machine and setup as the egress section (direct mode, real EgressProxy); two egress processes, one with a plain route, one whose route injects a bearer token (so every response on it is scanned for the token's spellings). ` +
      `Rows interleaved, two rounds, the better round kept. Run on ${new Date().toISOString().slice(0, 10)}; 1-min load average at the end ${os.loadavg()[0]!.toFixed(1)}.`,
    "",
    `| path | keep-alive req/s (${o.conns} conns) | p50 / p99 ms at ${o.conns} conns | p50 / p99 ms, 1 conn |`,
    "|---|---:|---:|---:|",
    ...results.map((x) => `| ${x.name} | ${f(x.tput.rps, 0)} | ${f(x.tput.p50)} / ${f(x.tput.p99)} | ${f(x.lat.p50, 3)} / ${f(x.lat.p99, 3)} |`),
    "",
    `- redaction on a 1 KiB identity body: **${cost(0, 1)}**`,
    `- decoding + redaction on a 16 KiB gzip'd body (relayed decoded): **${cost(2, 3)}**`,
    "<!-- egress-redaction:end -->",
  ].join("\n");
  process.stdout.write(section + "\n");
  if (o.write) {
    const file = path.join(here, "RESULTS.md");
    const old = fs.readFileSync(file, "utf8");
    const re = /<!-- egress-redaction:begin -->[\s\S]*<!-- egress-redaction:end -->/;
    fs.writeFileSync(file, re.test(old) ? old.replace(re, section) : old.replace("<!-- egress:end -->", "<!-- egress:end -->\n\n" + section));
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === "upstream") await roleUpstream(rest[0]!);
else if (role === "egress") await roleEgress(rest[0]!, Number(rest[1]), rest[2] === "inject");
else if (role === "client") await roleClient(JSON.parse(rest[0]!) as ClientArgs);
else await main();
