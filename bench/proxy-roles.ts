// Shared by the egress benches (egress-bench.ts, llm-guard-bench.ts): each server and the load
// generator run in a child process of the bench script (a "role"), which prints one JSON line
// when ready (or done); clients speak HTTP/1.1 by hand on one kept-alive TLS socket, through
// egress's CONNECT or straight to the upstream.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Run `script role args…` as a child; `first` is its first stdout line, parsed. */
export function spawnRole(script: string, args: string[]): { child: ChildProcess; first: Promise<any> } {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: repo, stdio: ["ignore", "pipe", "inherit"] });
  const first = new Promise<any>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    child.once("exit", (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
  return { child, first };
}

export function pct(xs: number[]): { n: number; p50: number; p99: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { n: s.length, p50: at(0.5), p99: at(0.99) };
}

/** Role: an HTTPS upstream on 127.0.0.1 with a leaf for `names`; its CA goes to `<dir>/upstream-ca.pem`. */
export async function upstreamRole(dir: string, names: string[], handler: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void): Promise<void> {
  const { createTestCa, createLeaf } = await import("../test/integration/helpers/tls.ts");
  const ca = await createTestCa("bench upstream CA");
  const leaf = await createLeaf(ca, names);
  fs.writeFileSync(path.join(dir, "upstream-ca.pem"), ca.certPem);
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, handler);
  server.keepAliveTimeout = 120_000;
  server.listen(0, "127.0.0.1", () => process.stdout.write(JSON.stringify({ port: (server.address() as net.AddressInfo).port }) + "\n"));
}

/** Role: the real EgressProxy in direct mode, every host dialled to the upstream; its CA goes to `<dir>/<caFile>`. */
export async function egressRole(dir: string, upstreamPort: number, routes: unknown, tokens: Record<string, string> = {}, caFile = "egress-ca.pem"): Promise<void> {
  const { EgressProxy } = await import("../sidecars/egress/proxy.ts");
  const { parseRoutesDocument } = await import("../contracts/routes.ts");
  const { createTestCa } = await import("../test/integration/helpers/tls.ts");
  const ca = await createTestCa("bench egress CA");
  fs.writeFileSync(path.join(dir, caFile), ca.certPem);
  const audit = fs.createWriteStream(path.join(dir, "egress-audit.jsonl"), { flags: "a" });
  const proxy = new EgressProxy({
    ca: { certPem: ca.certPem, keyPem: ca.keyPem },
    routes: parseRoutesDocument(routes),
    tokens,
    upstreamCa: [fs.readFileSync(path.join(dir, "upstream-ca.pem"), "utf8")],
    dial: () => ({ host: "127.0.0.1", port: upstreamPort }),
    audit: (e) => audit.write(JSON.stringify(e) + "\n"),
  });
  const addr = await proxy.listen(0, "127.0.0.1");
  process.stdout.write(JSON.stringify({ port: addr.port }) + "\n");
}

export interface Leg {
  /** TLS server name (the route host). */
  servername: string;
  upstreamPort: number;
  /** Through egress (or another proxy): its port and the CONNECT target; unset = straight to the upstream. */
  proxyPort?: number;
  connectTarget?: string;
}

/** One TLS socket to the upstream, through the proxy's CONNECT when the leg has one. */
export function openTls(leg: Leg, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const startTls = (raw?: net.Socket) => {
      const t = tls.connect(raw ? { socket: raw, servername: leg.servername, ca } : { host: "127.0.0.1", port: leg.upstreamPort, servername: leg.servername, ca });
      t.setNoDelay(true);
      t.once("secureConnect", () => resolve(t));
      t.once("error", reject);
    };
    if (!leg.proxyPort) return startTls();
    const raw = net.connect(leg.proxyPort, "127.0.0.1");
    raw.setNoDelay(true);
    raw.once("error", reject);
    raw.write(`CONNECT ${leg.connectTarget} HTTP/1.1\r\nHost: ${leg.connectTarget}\r\n\r\n`);
    let buf = "";
    const onData = (c: Buffer) => {
      buf += c.toString("latin1");
      if (!buf.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      if (!/^HTTP\/1\.[01] 200/.test(buf)) return reject(new Error(buf));
      startTls(raw);
    };
    raw.on("data", onData);
  });
}

/** Send one request on a kept-alive socket; resolves when the whole 200 response (content-length or chunked) is in. */
export function exchange(sock: tls.TLSSocket, request: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1");
      if (!head.startsWith("HTTP/1.1 200")) return done(new Error(`${head.split("\r\n")[0]} ${buf.subarray(end + 4, end + 300)}`));
      // chunked (e.g. a body egress relays decoded): complete at the last-chunk marker
      if (/transfer-encoding:\s*chunked/i.test(head)) {
        if (buf.length >= end + 9 && buf.subarray(buf.length - 5).toString("latin1") === "0\r\n\r\n") done();
        return;
      }
      const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
      if (Number.isNaN(len)) return done(new Error("no content-length"));
      if (buf.length - end - 4 >= len) done();
    };
    const done = (e?: Error) => {
      sock.off("data", onData);
      sock.off("error", done);
      e ? reject(e) : resolve();
    };
    sock.on("data", onData);
    sock.once("error", done);
    sock.write(request);
  });
}

/** Replace the `<!-- name:begin -->…<!-- name:end -->` section of bench/RESULTS.md (or add it after `after`'s, else at the end). */
export function writeResultsSection(name: string, section: string, after?: string): void {
  const file = path.join(repo, "bench", "RESULTS.md");
  const old = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "# Benchmarks\n";
  const re = new RegExp(`<!-- ${name}:begin -->[\\s\\S]*<!-- ${name}:end -->`);
  const anchor = after ? `<!-- ${after}:end -->` : undefined;
  const next = re.test(old) ? old.replace(re, section) : anchor && old.includes(anchor) ? old.replace(anchor, `${anchor}\n\n${section}`) : old.trimEnd() + "\n\n" + section + "\n";
  fs.writeFileSync(file, next);
}

/** A bench script's entry: run the role its argv names, else the orchestration; kill the children it started. */
export async function dispatch(roles: Record<string, (...args: string[]) => Promise<void>>, main: (children: ChildProcess[]) => Promise<void>): Promise<void> {
  const [role, ...rest] = process.argv.slice(2);
  const run = role ? roles[role] : undefined;
  if (run) return run(...rest);
  const children: ChildProcess[] = [];
  try {
    await main(children);
  } finally {
    for (const c of children) c.kill();
  }
}
