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
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type tls from "node:tls";
import { fileURLToPath } from "node:url";
import { dispatch, egressRole, exchange, openTls, pct, spawnRole as spawnRoleOf, upstreamRole, writeResultsSection } from "./proxy-roles.ts";

const BODY_BYTES = 1024;
const HOST = "localhost";

// ------------------------------------------------------------------------------------------
// Roles run in child processes.

async function roleUpstream(dir: string): Promise<void> {
  const body = Buffer.alloc(BODY_BYTES, 97);
  await upstreamRole(dir, [HOST, "127.0.0.1"], (req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    res.end(body);
  });
}

async function roleEgress(dir: string, upstreamPort: string): Promise<void> {
  await egressRole(dir, Number(upstreamPort), { version: 1, routes: [{ host: HOST }] });
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
}

const openConn = (a: ClientArgs, ca: string) => openTls({ ...a, servername: HOST }, ca);
const get = (sock: tls.TLSSocket) => exchange(sock, `GET /bench HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);

async function roleClient(json: string): Promise<void> {
  const a = JSON.parse(json) as ClientArgs;
  const ca = fs.readFileSync(a.caFile, "utf8");
  const lat: number[] = [];
  let count = 0;
  if (a.kind === "newconn") {
    for (let i = 0; i < a.iterations + 20; i++) {
      const t0 = process.hrtime.bigint();
      const s = await openConn(a, ca);
      await get(s);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      s.destroy();
      if (i >= 20) lat.push(ms);
    }
  } else {
    const socks = await Promise.all(Array.from({ length: a.conns }, () => openConn(a, ca)));
    // Warm up every connection.
    for (let i = 0; i < 50; i++) await Promise.all(socks.map(get));
    const deadline = Date.now() + a.seconds * 1000;
    const started = process.hrtime.bigint();
    await Promise.all(
      socks.map(async (s) => {
        while (Date.now() < deadline) {
          const t0 = process.hrtime.bigint();
          await get(s);
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

const spawnRole = (args: string[]) => spawnRoleOf(fileURLToPath(import.meta.url), args);

async function client(a: ClientArgs): Promise<any> {
  const { child, first } = spawnRole(["client", JSON.stringify(a)]);
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

async function main(children: ChildProcess[]): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: number) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const seconds = opt("seconds", 8);
  const conns = opt("conns", 32);
  const iterations = opt("newconn", 300);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-egress-bench-"));
  try {
    const up = spawnRole(["upstream", dir]);
    children.push(up.child);
    const upstreamPort = (await up.first).port as number;
    const upstreamCa = path.join(dir, "upstream-ca.pem");
    const eg = spawnRole(["egress", dir, String(upstreamPort)]);
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
    if (argv.includes("--write")) writeResultsSection("egress", section);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await dispatch({ upstream: roleUpstream, egress: roleEgress, client: roleClient }, main);
