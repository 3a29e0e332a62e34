// Egress-specific test harness: an EgressProxy on 127.0.0.1 in front of the test upstream, a
// stand-in for pipelock (a CONNECT-only forward proxy that records its tunnels), and clients
// that go through the proxy: node's own fetch (its bundled undici Agent with a connector that
// CONNECTs through egress) and raw request helpers.
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { EgressProxy, type AuditEntry, type EgressProxyOptions } from "../../../sidecars/egress/proxy.ts";
import { parseRoutesDocument } from "../../../contracts/routes.ts";
import { createTestCa, type TestCa } from "./tls.ts";
import type { TestUpstream } from "./https-upstream.ts";

export interface Harness {
  proxy: EgressProxy;
  port: number;
  ca: TestCa;
  caFile: string;
  audit: AuditEntry[];
  logs: string[];
  close(): Promise<void>;
}

export async function startEgress(upstream: TestUpstream, routes: unknown, extra: Partial<EgressProxyOptions> = {}, ca?: TestCa): Promise<Harness> {
  ca ??= await createTestCa("egress test CA");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-egress-"));
  const caFile = path.join(dir, "egress-ca.pem");
  fs.writeFileSync(caFile, ca.certPem);
  const audit: AuditEntry[] = [];
  const logs: string[] = [];
  const proxy = new EgressProxy({
    ca: { certPem: ca.certPem, keyPem: ca.keyPem },
    routes: parseRoutesDocument(routes),
    tokens: {},
    upstreamCa: [upstream.ca.certPem],
    dial: (_host, port) => ({ host: "127.0.0.1", port: port === 443 ? upstream.port : upstream.httpPort }),
    audit: (e) => audit.push(e),
    log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
    ...extra,
  });
  const addr = await proxy.listen(0, "127.0.0.1");
  return {
    proxy,
    port: addr.port,
    ca,
    caFile,
    audit,
    logs,
    async close() {
      await proxy.close(1000);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A pipelock stand-in: CONNECT only, records the targets and the SNI-bearing first bytes' arrival; refuses hosts in `deny`. */
export async function startFakePipelock(upstream: TestUpstream, deny: string[] = []): Promise<{ url: string; connects: string[]; close(): Promise<void> }> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(405);
    res.end("only CONNECT");
  });
  server.on("connection", (s: net.Socket) => (sockets.add(s), s.on("close", () => sockets.delete(s))));
  server.on("connect", (req, socket: net.Socket, head: Buffer) => {
    connects.push(req.url ?? "");
    const host = (req.url ?? "").split(":")[0]!;
    if (deny.includes(host)) {
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${`CONNECT blocked: domain not in allowlist: ${host}\n`.length}\r\n\r\nCONNECT blocked: domain not in allowlist: ${host}\n`);
      return;
    }
    const up = net.connect(upstream.port, "127.0.0.1", () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) up.write(head);
      socket.pipe(up).pipe(socket);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connects,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Open a TLS connection to `host` through the proxy's CONNECT (what a client library does). */
export function connectThrough(proxyPort: number, host: string, caPem: string, opts: { connectTarget?: string; sni?: string } = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(proxyPort, "127.0.0.1");
    raw.once("error", reject);
    const target = opts.connectTarget ?? `${host}:443`;
    raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    let buf = "";
    const onData = (c: Buffer) => {
      buf += c.toString("latin1");
      if (!buf.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      if (!/^HTTP\/1\.1 200/.test(buf)) return reject(new Error(`CONNECT refused: ${buf}`));
      const t = tls.connect({ socket: raw, servername: opts.sni ?? host, ca: caPem, ALPNProtocols: ["http/1.1"], ...(opts.sni ? { checkServerIdentity: () => undefined } : {}) });
      t.once("secureConnect", () => resolve(t));
      t.once("error", reject);
    };
    raw.on("data", onData);
  });
}

let undiciAgent: any;
/** Node's global fetch through the proxy: its bundled undici Agent, connecting via CONNECT. */
export async function proxiedFetch(proxyPort: number, caPem: string, url: string, init: RequestInit = {}): Promise<Response> {
  if (!undiciAgent) {
    await fetch("data:,init");
    const Agent = (globalThis as any)[Symbol.for("undici.globalDispatcher.1")].constructor;
    undiciAgent = (port: number, ca: string) =>
      new Agent({
        connect: (o: { hostname: string; port: string; servername?: string }, cb: (e: Error | null, s?: tls.TLSSocket) => void) => {
          connectThrough(port, o.hostname, ca, {}).then((s) => cb(null, s), (e) => cb(e));
        },
      });
  }
  const dispatcher = undiciAgent(proxyPort, caPem);
  try {
    return await fetch(url, { ...init, dispatcher } as RequestInit);
  } finally {
    // close after the body is read by the caller: undici keeps the socket until then
    setTimeout(() => dispatcher.close().catch(() => {}), 5_000).unref();
  }
}

/** One raw HTTP/1.1 request on an open socket; returns status, headers and body text. */
export function rawRequest(sock: net.Socket, request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of head.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers["content-length"] ?? -1);
      const body = buf.subarray(end + 4);
      if (len >= 0 && body.length < len) return;
      sock.off("data", onData);
      resolve({ status: Number(head[0]!.split(" ")[1]), headers, body: body.toString("utf8") });
    };
    sock.on("data", onData);
    sock.once("error", reject);
    sock.write(request);
  });
}

/** A keep-alive agent whose connections are TLS tunnels through the proxy (for load tests). */
export function proxiedAgent(proxyPort: number, caPem: string, maxSockets = 16): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  (agent as any).createConnection = (o: { host: string }, cb: (e: Error | null, s?: tls.TLSSocket) => void) => {
    connectThrough(proxyPort, o.host, caPem).then((s) => cb(null, s), (e) => cb(e));
    return undefined;
  };
  return agent;
}

/** GET/POST through a proxiedAgent; resolves with status, headers and body text. */
export function agentRequest(agent: http.Agent, host: string, pathname: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host, port: 443, path: pathname, method: opts.method ?? "GET", headers: { host, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}
