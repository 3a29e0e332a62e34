// Big transfers through the chain (not a timed test): MB/s of one 100 MB download and one 20 MB
// upload on loopback, four paths, each hop its own process:
//   direct        client ──TLS──▶ upstream
//   egress        client ──CONNECT+TLS──▶ egress (MITM) ──TLS──▶ upstream
//   passthrough   client ──▶ egress ──CONNECT──▶ pipelock stand-in (spliced) ──TLS──▶ upstream
//   intercepted   client ──▶ egress ──CONNECT──▶ pipelock stand-in (MITM: buffers and scans) ──TLS──▶ upstream
// pipelock is the TEST-ONLY stand-in (test/e2e/pipelock-standin): it mirrors pipelock's source
// (an intercepted response is read whole up to max_response_bytes, then sent; a request body is
// read whole and scanned for secrets), but its speed is its own, not pipelock's.
//
//   node --import tsx bench/transfer-bench.ts [--down-mb 100] [--up-mb 20] [--write]
// --write replaces the transfer section of bench/RESULTS.md.
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { pumpBytes, sha256OfRun } from "../test/helpers/bytes.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const MB = 1000 * 1000;

// ------------------------------------------------------------------------------------------
// Roles in child processes: each prints one JSON line when ready.

async function roleUpstream(dir: string): Promise<void> {
  const { startTestUpstream } = await import("../test/integration/helpers/https-upstream.ts");
  const up = await startTestUpstream();
  fs.copyFileSync(up.caFile, path.join(dir, "upstream-ca.pem"));
  process.stdout.write(JSON.stringify({ port: up.port }) + "\n");
}

async function roleEgress(dir: string, mode: string, arg: string): Promise<void> {
  const { EgressProxy } = await import("../sidecars/egress/proxy.ts");
  const { parseRoutesDocument } = await import("../contracts/routes.ts");
  const { createTestCa } = await import("../test/integration/helpers/tls.ts");
  const ca = await createTestCa(`bench egress CA ${mode}`);
  fs.writeFileSync(path.join(dir, `egress-${mode}-ca.pem`), ca.certPem);
  const audit = fs.createWriteStream(path.join(dir, `egress-${mode}-audit.jsonl`), { flags: "a" });
  const trust = [fs.readFileSync(path.join(dir, "upstream-ca.pem"), "utf8"), ...(mode === "chain" ? [fs.readFileSync(path.join(dir, "pipelock-ca.pem"), "utf8")] : [])];
  const proxy = new EgressProxy({
    ca: { certPem: ca.certPem, keyPem: ca.keyPem },
    routes: parseRoutesDocument({ version: 1, routes: [{ host: "api.test.example" }, { host: "other.example" }] }),
    tokens: {},
    upstreamCa: trust,
    ...(mode === "chain" ? { upstreamProxy: arg } : { dial: () => ({ host: "127.0.0.1", port: Number(arg) }) }),
    audit: (e) => audit.write(JSON.stringify(e) + "\n"),
  });
  const addr = await proxy.listen(0, "127.0.0.1");
  process.stdout.write(JSON.stringify({ port: addr.port }) + "\n");
}

function child(args: string[]): { proc: ChildProcess; ready: Promise<any> } {
  const proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const ready = new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    proc.once("exit", (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
  return { proc, ready };
}

// ------------------------------------------------------------------------------------------
// The client: one TLS connection (direct, or a tunnel through a proxy), one request.

interface Path {
  name: string;
  host: string;
  caPem: string;
  /** Proxy port (CONNECT host:443) or, for direct, the upstream port. */
  port: number;
  direct?: boolean;
}

function open(p: Path): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(p.port, "127.0.0.1");
    const start = () => {
      const t = tls.connect({ socket: raw, servername: p.host, ca: p.caPem, ALPNProtocols: ["http/1.1"] });
      t.once("secureConnect", () => resolve(t));
      t.once("error", reject);
    };
    raw.once("error", reject);
    if (p.direct) return void raw.once("connect", start);
    raw.once("connect", () => raw.write(`CONNECT ${p.host}:443 HTTP/1.1\r\nHost: ${p.host}:443\r\n\r\n`));
    let head = "";
    const onData = (c: Buffer) => {
      head += c.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      if (!/^HTTP\/1\.[01] 200/.test(head)) return reject(new Error(`CONNECT: ${head.split("\r\n")[0]}`));
      start();
    };
    raw.on("data", onData);
  });
}

async function transfer(p: Path, method: "GET" | "POST", bytes: number): Promise<{ ms: number; sha256: string; status: number; body: string }> {
  const sock = await open(p);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { createConnection: () => sock, host: p.host, path: method === "GET" ? `/bytes/${bytes}` : "/sha256", method, headers: { host: p.host, ...(method === "POST" ? { "content-length": String(bytes) } : {}) } },
      (res) => {
        const h = crypto.createHash("sha256");
        let text = "";
        res.on("data", (c: Buffer) => {
          h.update(c);
          if (text.length < 2000) text += c.toString("utf8");
        });
        res.on("end", () => {
          sock.destroy();
          resolve({ ms: performance.now() - t0, sha256: h.digest("hex"), status: res.statusCode ?? 0, body: text.slice(0, 300) });
        });
      },
    );
    req.on("error", reject);
    if (method === "GET") req.end();
    else pumpBytes(req, bytes, 98);
  });
}


/** Peak resident memory of a process (VmHWM), MiB. */
function peakMib(pid: number | undefined): number | undefined {
  const m = pid ? /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8")) : null;
  return m ? Math.round(Number(m[1]) / 1024) : undefined;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : def);
  const down = opt("--down-mb", 100) * MB;
  const up = opt("--up-mb", 20) * MB;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-transfer-bench-"));
  const children: ChildProcess[] = [];
  const { buildStandIn, renderFor, standInEnv, standInWorkDir, StandInProcess } = await import("../test/integration/helpers/pipelock-standin.ts");
  let pl: InstanceType<typeof StandInProcess> | undefined;
  let bin = "";
  let workDir = "";
  try {
    const upstream = child(["upstream", dir]);
    children.push(upstream.proc);
    const upstreamPort = (await upstream.ready).port as number;
    const work = await standInWorkDir({ caFile: path.join(dir, "upstream-ca.pem") });
    workDir = work.dir;
    fs.copyFileSync(path.join(work.dir, "ca", "ca.pem"), path.join(dir, "pipelock-ca.pem"));
    const config = path.join(work.dir, "cfg", "pipelock.yaml");
    fs.mkdirSync(path.dirname(config));
    // the rendered config (default caps), other.example a passthrough domain
    fs.writeFileSync(config, renderFor(work.dir, ["api.test.example", "other.example"], (c) => c.tls_interception.passthrough_domains.push("other.example")));
    bin = await buildStandIn();
    const plPort = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    pl = new StandInProcess(bin, config, `127.0.0.1:${plPort}`, { ...standInEnv(work.dir), PIPELOCK_STANDIN_DIAL_PORTS: `443=${upstreamPort}` });
    await pl.start();
    const egressDirect = child(["egress", dir, "direct", String(upstreamPort)]);
    const egressChain = child(["egress", dir, "chain", `http://127.0.0.1:${plPort}`]);
    children.push(egressDirect.proc, egressChain.proc);
    const [ed, ec] = [(await egressDirect.ready).port as number, (await egressChain.ready).port as number];
    const upstreamCa = fs.readFileSync(path.join(dir, "upstream-ca.pem"), "utf8");
    const paths: Path[] = [
      { name: "direct", host: "api.test.example", caPem: upstreamCa, port: upstreamPort, direct: true },
      { name: "egress", host: "api.test.example", caPem: fs.readFileSync(path.join(dir, "egress-direct-ca.pem"), "utf8"), port: ed },
      { name: "egress → pipelock, passthrough", host: "other.example", caPem: fs.readFileSync(path.join(dir, "egress-chain-ca.pem"), "utf8"), port: ec },
      { name: "egress → pipelock, intercepted", host: "api.test.example", caPem: fs.readFileSync(path.join(dir, "egress-chain-ca.pem"), "utf8"), port: ec },
    ];
    const want = { down: sha256OfRun(down, 97), up: sha256OfRun(up, 98) };
    const rows: { name: string; downMBs: number; upMBs: number }[] = [];
    for (const p of paths) {
      const d = await transfer(p, "GET", down);
      if (d.status !== 200 || d.sha256 !== want.down) throw new Error(`${p.name}: download ${d.status} ${d.body}`);
      const u = await transfer(p, "POST", up);
      const echoed = u.status === 200 ? JSON.parse(u.body) : undefined;
      if (echoed?.sha256 !== want.up) throw new Error(`${p.name}: upload ${u.status} ${u.body}`);
      rows.push({ name: p.name, downMBs: down / MB / (d.ms / 1000), upMBs: up / MB / (u.ms / 1000) });
      process.stderr.write(`${p.name}: down ${(d.ms / 1000).toFixed(2)} s, up ${(u.ms / 1000).toFixed(2)} s\n`);
    }
    const peak = peakMib(pl.pid);
    const direct = rows[0]!;
    const f = (x: number) => (x >= 10 ? x.toFixed(0) : x.toFixed(1));
    const cpu = os.cpus();
    const section = [
      "<!-- transfer:begin -->",
      "## big transfers through the chain",
      "",
      `Command: \`node --import tsx bench/transfer-bench.ts --down-mb ${down / MB} --up-mb ${up / MB} --write\``,
      "",
      `Machine: ${cpu.length}× ${cpu[0]?.model.trim()}, node ${process.version}. One ${down / MB} MB download (GET) and one ${up / MB} MB upload (POST, ` +
        "application/octet-stream), each on a fresh connection, sha256 checked at the far end; every hop its own process on 127.0.0.1. " +
        "pipelock is the **TEST-ONLY stand-in** with the rendered config (caps 128 MiB / 32 MiB): it mirrors what pipelock's source does with a " +
        "transfer through an intercepted host (reads the whole response up to the cap, then sends it; reads the whole body and runs the core " +
        "DLP patterns over it before forwarding), but its speed is its own — the real pipelock was not measured. " +
        `Run on ${new Date().toISOString().slice(0, 10)}; 1-min load average at the end ${os.loadavg()[0]!.toFixed(1)} (a shared machine: read the ratios).`,
      "",
      "| path | download MB/s | × direct | upload MB/s | × direct |",
      "|---|---:|---:|---:|---:|",
      ...rows.map((r) => `| ${r.name} | ${f(r.downMBs)} | ${(r.downMBs / direct.downMBs).toFixed(2)} | ${f(r.upMBs)} | ${(r.upMBs / direct.upMBs).toFixed(3)} |`),
      "",
      `- the stand-in's peak resident memory over the run: ${peak ?? "?"} MiB (an intercepted response is held whole while it is scanned: the response cap bounds that per transfer).`,
      "- an upload through an intercepted host is bound by the body scan (CPU: core DLP patterns, case-insensitive, over several decodings of the text); a passthrough host is a byte splice.",
      "<!-- transfer:end -->",
    ].join("\n");
    process.stdout.write(section + "\n");
    if (argv.includes("--write")) {
      const file = path.join(here, "RESULTS.md");
      const old = fs.readFileSync(file, "utf8");
      const re = /<!-- transfer:begin -->[\s\S]*<!-- transfer:end -->/;
      fs.writeFileSync(file, re.test(old) ? old.replace(re, section) : old.replace("<!-- git-gate:begin -->", `${section}\n\n<!-- git-gate:begin -->`));
    }
  } finally {
    await pl?.stop();
    for (const c of children) c.kill();
    fs.rmSync(dir, { recursive: true, force: true });
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    if (bin) fs.rmSync(path.dirname(bin), { recursive: true, force: true });
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === "upstream") await roleUpstream(rest[0]!);
else if (role === "egress") await roleEgress(rest[0]!, rest[1]!, rest[2]!);
else await main();
