// The egress server: the I/O around decide(). A forward proxy for CONNECT (TLS terminated with
// a per-host leaf from the egress CA) and for absolute-URI cleartext requests. Every request
// is decided by the pure policy; allowed ones go upstream through pipelock (CONNECT, SNI = the
// route host) or, with no upstream proxy configured, directly.
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { performance } from "node:perf_hooks";
import { EGRESS_HEALTH_PATH } from "../../contracts/egress.ts";
import type { Route, RoutesDocument } from "../../contracts/routes.ts";
import { BLOCK_REASON_HEADER, decide, decideConnect, denyBody, pipelockBlock, pipelockRefusal, type Allow, type Deny, type EgressRequest, type PipelockBlock, type Scheme } from "./decide.ts";
import { LeafCache, type CaMaterial } from "./certs.ts";
import { decodableAcceptEncoding, redactResponse } from "./redact.ts";
import type { ServerTools } from "../../contracts/server-tools.ts";
import { LLM_BODY_CAP, readCapped } from "./llm-body.ts";
import { bodyDeny, guardBody, llmErrorBody, llmGate, type LlmGate, type LlmVerdict } from "./llm-guard.ts";

export interface AuditEntry {
  ts: string;
  decision: "allow" | "deny" | "error";
  reason: string;
  scheme: Scheme;
  host: string;
  method: string;
  /** Path only: the query string is never logged (it can hold secrets). */
  path: string;
  route?: number;
  injected: boolean;
  stripped?: string[];
  status: number;
  bytes: number;
  ms: number;
  /** Set when the refusal was pipelock's, not egress's (decision "deny", reason "pipelock_blocked"). */
  layer?: "pipelock";
  /** pipelock's X-Pipelock-Block-Reason code. */
  pipelock_reason?: string;
  /** pipelock's own words (its refusal's first line), or what the LLM guard's refusal named (a tool type, a field, a host). */
  detail?: string;
}

export type LogFn = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export interface EgressProxyOptions {
  ca: CaMaterial;
  routes: RoutesDocument;
  /** sha256 of the routes file's bytes (reported by the health endpoint, as the reload log lines do). */
  routesSha256?: string;
  /** Where token_refs are looked up (main passes process.env). */
  tokens: Readonly<Record<string, string | undefined>>;
  /** http://host:port of pipelock; unset = connect directly. */
  upstreamProxy?: string;
  /** CA certificates (PEM) trusted on the upstream leg; unset = node's default roots. */
  upstreamCa?: string[];
  superviseTool?: string;
  /** The supervise tool that widens pipelock's allowlist (named in the answer to pipelock's allowlist refusals). */
  pipelockTool?: string;
  audit?: (entry: AuditEntry) => void;
  log?: LogFn;
  /** Direct mode only: where to dial for host:port (tests map names to 127.0.0.1). */
  dial?: (host: string, port: number) => { host: string; port: number };
  /** Timeout for establishing the upstream leg (ms). */
  connectTimeoutMs?: number;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

interface Tunnel {
  host: string;
  port: number;
}

interface ConnState {
  active: number;
}

/** Headers of every refusal egress sends: a JSON body the agent reads, the reason code in BLOCK_REASON_HEADER. */
function refusalHeaders(reason: string, body: string): Record<string, string | number> {
  return { "content-type": "application/json", [BLOCK_REASON_HEADER]: reason, "content-length": Buffer.byteLength(body), "cache-control": "no-store" };
}

/** Refuse on a response; returns the body's size (for the audit log). */
function refuse(res: http.ServerResponse, status: number, reason: string, body: Record<string, unknown>): number {
  const text = JSON.stringify(body);
  res.writeHead(status, refusalHeaders(reason, text));
  res.end(text);
  return Buffer.byteLength(text);
}

/** Refuse on a raw socket (CONNECT, upgrades: no response object), then close it. */
function refuseSocket(socket: net.Socket, status: number, reason: string, body: Record<string, unknown>): number {
  const text = JSON.stringify(body);
  const head = Object.entries({ ...refusalHeaders(reason, text), connection: "close" }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${head}\r\n${text}`);
  return Buffer.byteLength(text);
}

class UpstreamRefused extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    /** The CONNECT answer's headers, lower-case names (pipelock's block-reason set). */
    readonly headers: Record<string, string> = {},
  ) {
    super(`upstream proxy answered ${status}`);
  }
}

/** The largest refusal body read from pipelock (its bodies are one line). */
const PIPELOCK_BODY_MAX = 8192;

export class EgressProxy {
  readonly leaves: LeafCache;
  private routes: readonly Route[];
  private routesSha256: string | undefined;
  private serverTools: ServerTools;
  generation = 1;
  private readonly outer: http.Server;
  private readonly inner: http.Server;
  private readonly tunnels = new WeakMap<net.Socket, Tunnel>();
  private readonly conns = new Map<net.Socket, ConnState>();
  private readonly agents = new Map<string, http.Agent>();
  private readonly upstreamCtx: tls.SecureContext | undefined;
  private readonly proxyUrl: URL | undefined;
  private closing = false;
  private readonly log: LogFn;

  constructor(private readonly opts: EgressProxyOptions) {
    this.leaves = new LeafCache(opts.ca);
    this.routes = opts.routes.routes;
    this.routesSha256 = opts.routesSha256;
    this.serverTools = opts.routes.server_tools;
    this.log = opts.log ?? (() => {});
    this.upstreamCtx = opts.upstreamCa ? tls.createSecureContext({ ca: opts.upstreamCa }) : undefined;
    this.proxyUrl = opts.upstreamProxy ? new URL(opts.upstreamProxy) : undefined;
    if (this.proxyUrl && this.proxyUrl.protocol !== "http:") throw new Error(`EGRESS_UPSTREAM_PROXY must be http://host:port, got ${opts.upstreamProxy}`);

    const tune = (s: http.Server) => {
      s.keepAliveTimeout = 65_000;
      s.headersTimeout = 70_000;
      s.requestTimeout = 0; // long uploads and streams are fine; idle sockets time out below
    };
    this.outer = http.createServer();
    this.inner = http.createServer();
    tune(this.outer);
    tune(this.inner);
    this.outer.on("connection", (s: net.Socket) => this.track(s));
    this.outer.on("request", (req, res) => this.onOuterRequest(req, res));
    this.outer.on("connect", (req, socket: net.Socket, head) => this.onConnect(req, socket, head));
    this.outer.on("upgrade", (req, socket: net.Socket) => this.onUpgrade(req, socket, "http"));
    this.inner.on("request", (req, res) => this.onTunnelRequest(req, res));
    this.inner.on("upgrade", (req, socket: net.Socket) => this.onUpgrade(req, socket, "https"));
    this.inner.on("clientError", (_err, socket: net.Socket) => socket.destroy());
    this.outer.on("clientError", (_err, socket: net.Socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      else socket.destroy();
    });
  }

  /** Swap the route table; requests already decided keep going. */
  setRoutes(doc: RoutesDocument, sha256?: string): void {
    this.routes = doc.routes;
    this.routesSha256 = sha256;
    this.serverTools = doc.server_tools;
    this.generation++;
  }

  get routeCount(): number {
    return this.routes.length;
  }

  async listen(port: number, host = "0.0.0.0"): Promise<net.AddressInfo> {
    await this.leaves.ready();
    await new Promise<void>((resolve, reject) => {
      this.outer.once("error", reject);
      this.outer.listen(port, host, () => {
        this.outer.off("error", reject);
        resolve();
      });
    });
    return this.outer.address() as net.AddressInfo;
  }

  /** Stop accepting; let in-flight requests finish (up to graceMs), then close everything. */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.outer.close(() => resolve()));
    for (const [s, st] of this.conns) if (st.active === 0) s.destroy();
    const deadline = Date.now() + graceMs;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    for (const s of this.conns.keys()) s.destroy();
    for (const a of this.agents.values()) a.destroy();
    await closed;
  }

  // -------------------------------------------------------------------------------------------
  // Connection bookkeeping (for a clean shutdown).

  private track(s: net.Socket): void {
    this.conns.set(s, { active: 0 });
    s.once("close", () => this.conns.delete(s));
    s.on("error", () => {});
  }

  private begin(s: net.Socket): void {
    const st = this.conns.get(s);
    if (st) st.active++;
  }

  private end(s: net.Socket, res: http.ServerResponse): void {
    const st = this.conns.get(s);
    if (!st) return;
    st.active--;
    if (this.closing && st.active <= 0) {
      if (res.writableFinished) s.end();
      else s.destroy();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Entry points.

  private onOuterRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? "";
    if (url.startsWith("/")) {
      // Not a proxy request: only the health endpoint answers.
      if ((req.method === "GET" || req.method === "HEAD") && url === EGRESS_HEALTH_PATH) {
        const body = JSON.stringify({ ok: !this.closing, routes: this.routes.length, routes_sha256: this.routesSha256, generation: this.generation, leaves: this.leaves.minted });
        res.writeHead(this.closing ? 503 : 200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      refuse(res, 400, "not_a_proxy_request", { blocked: true, reason: "not_a_proxy_request", message: "This is the egress proxy: send absolute-URI requests (http://host/path) or CONNECT host:443." });
      return;
    }
    this.handle(req, res, { scheme: "http" });
  }

  private onTunnelRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const sock = req.socket as tls.TLSSocket;
    const t = this.tunnels.get(sock);
    if (!t) {
      res.destroy();
      return;
    }
    const sni = typeof sock.servername === "string" && sock.servername ? sock.servername : undefined;
    this.handle(req, res, { scheme: "https", connectHost: t.host, connectPort: t.port, sni });
  }

  private onConnect(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const started = performance.now();
    const d = decideConnect(req.url ?? "", { superviseTool: this.opts.superviseTool });
    if (d.action === "deny") {
      const bytes = refuseSocket(socket, d.status, d.reason, denyBody(d));
      this.audit({ decision: "deny", reason: d.reason, scheme: "https", host: d.host, method: "CONNECT", path: "", injected: false, status: d.status, bytes, ms: performance.now() - started });
      return;
    }
    // The raw socket now belongs to the tunnel; the TLS socket on top is tracked instead.
    this.conns.delete(socket);
    socket.pause();
    this.leaves.secureContext(d.host).then(
      (secureContext) => {
        if (socket.destroyed) return;
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (head.length) socket.unshift(head);
        const tlsSock = new tls.TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ["http/1.1"] });
        tlsSock.on("error", () => tlsSock.destroy());
        socket.on("error", () => tlsSock.destroy());
        this.tunnels.set(tlsSock, { host: d.host, port: d.port });
        this.track(tlsSock);
        this.inner.emit("connection", tlsSock);
        socket.resume();
      },
      (err) => {
        this.log("error", "leaf certificate minting failed", { host: d.host, error: String(err) });
        socket.end("HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      },
    );
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, scheme: Scheme): void {
    const t = scheme === "https" ? this.tunnels.get(socket) : undefined;
    const d = decide(this.requestOf(req, { scheme, connectHost: t?.host, connectPort: t?.port }), this.routes, this.ctx());
    const deny = d.action === "deny" ? d : ({ action: "deny", status: 403, reason: "upgrade_not_supported", message: "Protocol upgrades are not proxied.", host: d.host, method: req.method ?? "", path: d.path } as Deny);
    const bytes = refuseSocket(socket, deny.status, deny.reason, denyBody(deny));
    this.audit({ decision: "deny", reason: deny.reason, scheme, host: deny.host, method: deny.method, path: deny.path, injected: false, status: deny.status, bytes, ms: 0 });
  }

  // -------------------------------------------------------------------------------------------
  // One request.

  private ctx() {
    return { tokens: this.opts.tokens, superviseTool: this.opts.superviseTool, pipelockTool: this.opts.pipelockTool };
  }

  private requestOf(req: http.IncomingMessage, where: Pick<EgressRequest, "scheme" | "connectHost" | "connectPort" | "sni">): EgressRequest {
    return { ...where, method: req.method ?? "", target: req.url ?? "", headers: req.headersDistinct as EgressRequest["headers"] };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, where: Pick<EgressRequest, "scheme" | "connectHost" | "connectPort" | "sni">): void {
    const started = performance.now();
    const sock = req.socket;
    this.begin(sock);
    res.once("close", () => this.end(sock, res));
    if (this.closing) res.shouldKeepAlive = false;
    const d = decide(this.requestOf(req, where), this.routes, this.ctx());
    if (d.action === "deny") {
      const bytes = refuse(res, d.status, d.reason, denyBody(d));
      req.resume();
      this.audit({ decision: "deny", reason: d.reason, scheme: where.scheme, host: d.host, method: d.method, path: d.path, route: d.routeIndex, injected: false, status: d.status, bytes, ms: performance.now() - started });
      return;
    }
    // The LLM channel (#17): a Messages API body on an LLM route is read, decoded and checked first.
    const gate = llmGate(d.route, d.host, d.path, req.headersDistinct as EgressRequest["headers"]);
    if (gate !== "pass") return void this.guardThenForward(req, res, d, where.scheme, started, gate);
    this.forward(req, res, d, where.scheme, started, false);
  }

  /** Read the body (capped), run the LLM guard, then forward the very bytes read, or refuse in the API's error shape. */
  private async guardThenForward(req: http.IncomingMessage, res: http.ServerResponse, d: Allow, scheme: Scheme, started: number, gate: Exclude<LlmGate, "pass">): Promise<void> {
    let verdict: LlmVerdict = gate.action === "deny" ? gate : { action: "allow" };
    let body: Buffer | undefined;
    if (gate.action === "read") {
      const read = await readCapped(req, LLM_BODY_CAP).catch(() => undefined);
      if (!read) return void res.destroy();
      body = "body" in read ? read.body : undefined;
      const headers = req.headersDistinct as EgressRequest["headers"];
      verdict = body
        ? guardBody(gate.endpoint, headers, body, { routes: this.routes, serverTools: this.serverTools, superviseTool: this.opts.superviseTool })
        : bodyDeny({ kind: "too_large", detail: `the body is over ${LLM_BODY_CAP} bytes` });
    }
    if (verdict.action === "allow") return this.forward(req, res, d, scheme, started, false, body);
    if (!req.readableEnded) res.shouldKeepAlive = false;
    const bytes = refuse(res, verdict.status, verdict.reason, llmErrorBody(verdict));
    req.resume();
    this.audit({ decision: "deny", reason: verdict.reason, scheme, host: d.host, method: req.method ?? "", path: d.path, route: d.routeIndex, injected: false, status: verdict.status, bytes, ms: performance.now() - started, detail: verdict.subject });
  }

  private outgoingHeaders(req: http.IncomingMessage, d: Allow): string[] {
    const raw = req.rawHeaders;
    const connectionTokens = new Set<string>();
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.toLowerCase() === "connection") for (const tok of raw[i + 1]!.split(",")) connectionTokens.add(tok.trim().toLowerCase());
    }
    const strip = new Set(d.strip);
    const out: string[] = ["Host", d.host];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower) || strip.has(lower) || connectionTokens.has(lower)) continue;
      if ((d.inject && lower === d.inject.name.toLowerCase()) || (d.redact && lower === "accept-encoding")) continue;
      out.push(name, raw[i + 1]!);
    }
    if (d.inject) out.push(d.inject.name, d.inject.value);
    // A response egress redacts must come in a coding it can look inside.
    if (d.redact) out.push("Accept-Encoding", decodableAcceptEncoding(req.headers["accept-encoding"]));
    return out;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, d: Allow, scheme: Scheme, started: number, retried: boolean, body?: Buffer): void {
    const headers = this.outgoingHeaders(req, d);
    const viaProxyCleartext = scheme === "http" && this.proxyUrl;
    const options: http.RequestOptions = viaProxyCleartext
      ? { host: this.proxyUrl!.hostname, port: Number(this.proxyUrl!.port || 80), path: `http://${d.host}${d.upstreamTarget}`, agent: this.agentFor("proxy", "", 0) }
      : { host: d.host, port: d.port, path: d.upstreamTarget, agent: this.agentFor(scheme, d.host, d.port) };
    options.method = req.method;
    options.headers = headers as unknown as http.OutgoingHttpHeaders;
    options.setHost = false;

    let bytes = 0;
    let done = false;
    const finish = (decision: AuditEntry["decision"], reason: string, status: number, extra: Partial<AuditEntry> = {}) => {
      if (done) return;
      done = true;
      this.audit({ decision, reason, scheme, host: d.host, method: req.method ?? "", path: d.path, route: d.routeIndex, injected: !!d.inject, stripped: d.strip.length ? d.strip : undefined, status, bytes, ms: performance.now() - started, ...extra });
    };
    /** pipelock refused it: the agent reads which layer and what would help; the audit says pipelock denied it. */
    const refusedByPipelock = (b: PipelockBlock) => {
      const r = pipelockRefusal(b, { host: d.host, method: (req.method ?? "").toUpperCase(), path: d.path }, this.ctx());
      bytes = refuse(res, r.status, r.reason, r.body);
      req.resume();
      finish("deny", r.reason, r.status, { layer: "pipelock", pipelock_reason: b.code, detail: b.detail });
    };

    const upReq = http.request(options);
    const bodyless = req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS" || req.method === "DELETE";
    upReq.on("response", (upRes) => {
      if (pipelockBlock(upRes.statusCode ?? 0, upRes.headers, "")) {
        // pipelock's refusal inside an intercepted tunnel, or of a cleartext request: read its one-line body, answer in our words
        let text = "";
        upRes.setEncoding("utf8");
        upRes.on("data", (c: string) => {
          text += c;
          if (text.length > PIPELOCK_BODY_MAX) upRes.destroy();
        });
        let answered = false;
        const answer = () => {
          if (answered) return;
          answered = true;
          refusedByPipelock(pipelockBlock(upRes.statusCode ?? 0, upRes.headers, text)!);
        };
        upRes.once("end", answer);
        upRes.once("close", answer);
        return;
      }
      const out: string[] = [];
      const raw = upRes.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const lower = raw[i]!.toLowerCase();
        if (lower === "connection" || lower === "keep-alive" || lower === "transfer-encoding" || lower === "proxy-connection" || lower === "proxy-authenticate") continue;
        out.push(raw[i]!, raw[i + 1]!);
      }
      upRes.on("data", (c: Buffer) => (bytes += c.length));
      upRes.on("error", () => res.destroy());
      const relay = d.redact ? redactResponse(upRes.statusCode ?? 502, out, upRes, d.redact, BLOCK_REASON_HEADER) : undefined;
      res.writeHead(relay?.status ?? upRes.statusCode ?? 502, relay && relay.status !== upRes.statusCode ? http.STATUS_CODES[relay.status] : upRes.statusMessage, (relay?.headers ?? out) as unknown as http.OutgoingHttpHeaders);
      const body = relay?.body ?? upRes;
      body.on("error", () => res.destroy());
      body.pipe(res);
      res.once("close", () => {
        if (!res.writableFinished) upRes.destroy();
        finish("allow", "route", upRes.statusCode ?? 0);
      });
    });
    upReq.on("error", (err: NodeJS.ErrnoException) => {
      // A kept-alive upstream socket closed under us (pipelock caps tunnel lifetimes): retry once
      // when nothing of the request body has been consumed.
      if (!retried && (upReq as any).reusedSocket && bodyless && (err.code === "ECONNRESET" || err.code === "EPIPE") && !res.headersSent) {
        this.forward(req, res, d, scheme, started, true);
        return;
      }
      if (res.headersSent) {
        res.destroy();
        finish("error", "upstream_aborted", 0);
        return;
      }
      const blocked = err instanceof UpstreamRefused ? pipelockBlock(err.status, err.headers, err.detail) : undefined;
      if (blocked) {
        refusedByPipelock(blocked);
        return;
      }
      const refused = err instanceof UpstreamRefused;
      const status = refused ? err.status : 502;
      const reason = refused ? "upstream_refused" : err.code === "ETIMEDOUT" ? "upstream_timeout" : err.code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE/.test(err.code) ? "upstream_tls_error" : "upstream_unreachable";
      const message = refused
        ? `The upstream proxy (pipelock) refused ${d.host}: ${err.status} ${err.detail}`.trim()
        : `Could not reach ${d.host}: ${err.code ?? ""} ${err.message}`.trim();
      refuse(res, status, reason, { blocked: refused, reason, message, host: d.host, method: req.method, path: d.path });
      req.resume();
      finish(refused ? "deny" : "error", reason, status);
    });
    res.once("close", () => {
      if (!res.writableFinished) upReq.destroy();
    });
    if (body) upReq.end(body);
    else if (bodyless && retried) upReq.end();
    else req.pipe(upReq);
  }

  private agentFor(kind: string, host: string, port: number): http.Agent {
    const key = `${kind}|${host}|${port}`;
    let a = this.agents.get(key);
    if (a) return a;
    a = new http.Agent({ keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 256, maxFreeSockets: 64, timeout: 30_000, scheduling: "lifo" });
    if (kind === "https") {
      (a as any).createConnection = (_o: unknown, cb: (err: Error | null, s?: net.Socket) => void) => {
        this.openUpstream(host, port).then(
          (s) => cb(null, s),
          (e) => cb(e),
        );
        return undefined;
      };
    } else if (kind === "http" && this.opts.dial) {
      const target = this.opts.dial(host, port);
      (a as any).createConnection = () => net.connect(target.port, target.host);
    }
    this.agents.set(key, a);
    return a;
  }

  /** A TLS connection to host:port, through pipelock's CONNECT when configured. SNI = host. */
  private openUpstream(host: string, port: number): Promise<tls.TLSSocket> {
    const timeout = this.opts.connectTimeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: Error, s?: net.Socket) => {
        if (settled) return;
        settled = true;
        s?.destroy();
        reject(e);
      };
      const startTls = (raw: net.Socket) => {
        const t = tls.connect({ socket: raw, servername: host, secureContext: this.upstreamCtx, ALPNProtocols: ["http/1.1"] });
        t.setTimeout(timeout, () => fail(Object.assign(new Error("TLS handshake timed out"), { code: "ETIMEDOUT" }), t));
        t.once("secureConnect", () => {
          t.setTimeout(0);
          if (settled) {
            t.destroy();
            return;
          }
          settled = true;
          resolve(t);
        });
        t.once("error", (e) => fail(e, t));
      };
      if (!this.proxyUrl) {
        const target = this.opts.dial ? this.opts.dial(host, port) : { host, port };
        const raw = net.connect(target.port, target.host);
        raw.setNoDelay(true);
        raw.once("error", (e) => fail(e, raw));
        raw.once("connect", () => startTls(raw));
        return;
      }
      const raw = net.connect(Number(this.proxyUrl.port || 80), this.proxyUrl.hostname);
      raw.setNoDelay(true);
      raw.setTimeout(timeout, () => fail(Object.assign(new Error("upstream proxy CONNECT timed out"), { code: "ETIMEDOUT" }), raw));
      raw.once("error", (e) => fail(e, raw));
      raw.once("connect", () => raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`));
      let buf = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) {
          if (buf.length > 16_384) fail(new Error("upstream proxy sent an oversized response head"), raw);
          return;
        }
        raw.off("data", onData);
        const head = buf.subarray(0, end).toString("latin1");
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
        if (status !== 200) {
          const headers: Record<string, string> = {};
          for (const line of head.split("\r\n").slice(1)) {
            const colon = line.indexOf(":");
            if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
          }
          const detail = buf.subarray(end + 4, end + 4 + 300).toString("utf8").trim();
          fail(new UpstreamRefused(status || 502, detail || head.split("\r\n")[0]!, headers), raw);
          return;
        }
        raw.setTimeout(0);
        raw.pause();
        // Nothing may follow the 200 before our ClientHello; pipelock waits for it.
        startTls(raw);
      };
      raw.on("data", onData);
    });
  }

  private audit(e: Omit<AuditEntry, "ts">): void {
    if (!this.opts.audit) return;
    const entry: AuditEntry = { ts: new Date().toISOString(), ...e, ms: Math.round(e.ms * 100) / 100 };
    if (entry.route === undefined) delete entry.route;
    if (entry.stripped === undefined) delete entry.stripped;
    for (const k of ["layer", "pipelock_reason", "detail"] as const) if (entry[k] === undefined) delete entry[k];
    this.opts.audit(entry);
  }
}
