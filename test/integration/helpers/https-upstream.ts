// Generic test upstream (not egress-specific): an HTTPS (and optional cleartext) server on
// 127.0.0.1 with its own CA that
//   - echoes the request (method, url, raw headers, TLS SNI, body size and SHA-256) as JSON on any path,
//     under /reflect/<coding> also in a response header and content-encoded (gzip, deflate, br)
//     — what an upstream that reflects request headers looks like,
//   - serves git smart-HTTP (git http-backend as CGI, push enabled) under /git/,
//   - serves N bytes at /bytes/<N> and hashes what is sent to /sha256 (big transfers),
//   - records every request it saw, so a test can prove a request never arrived.
import crypto from "node:crypto";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, execFileSync } from "node:child_process";
import zlib from "node:zlib";
import { createLeaf, createTestCa, type TestCa } from "./tls.ts";

export interface SeenRequest {
  method: string;
  url: string;
  host: string | undefined;
  sni: string | undefined;
  /** The request headers as they arrived (what egress injected, for one). */
  headers: http.IncomingHttpHeaders;
}

export interface TestUpstream {
  ca: TestCa;
  caFile: string;
  port: number;
  httpPort: number;
  seen: SeenRequest[];
  gitRoot: string;
  /** Create a bare repo with one commit at /git/<name>.git (push enabled). */
  makeRepo(name: string): string;
  close(): Promise<void>;
}

export const UPSTREAM_NAMES = ["api.test.example", "*.test.example", "*.wild.test.example", "git.test.example", "other.example", "localhost", "127.0.0.1"];

function gitCgi(req: http.IncomingMessage, res: http.ServerResponse, root: string): void {
  const url = new URL(req.url ?? "/", "http://x");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: "1",
    PATH_INFO: url.pathname.slice("/git".length),
    QUERY_STRING: url.search.slice(1),
    REQUEST_METHOD: req.method,
    CONTENT_TYPE: req.headers["content-type"] ?? "",
    REMOTE_USER: "tester",
    REMOTE_ADDR: "127.0.0.1",
    HTTP_CONTENT_ENCODING: req.headers["content-encoding"] ?? "",
    GIT_PROTOCOL: (req.headers["git-protocol"] as string | undefined) ?? "",
  };
  if (req.headers["content-length"]) env.CONTENT_LENGTH = req.headers["content-length"];
  const child = spawn("git", ["http-backend"], { env });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headerDone = false;
  child.stdout.on("data", (chunk: Buffer) => {
    if (headerDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const sep = head.indexOf("\r\n\r\n") >= 0 ? "\r\n\r\n" : "\n\n";
    const end = head.indexOf(sep);
    if (end < 0) return;
    headerDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString().split(/\r?\n/)) {
      const i = line.indexOf(":");
      if (i < 0) continue;
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
      else res.setHeader(k, v);
    }
    res.writeHead(status);
    res.write(head.subarray(end + sep.length));
  });
  child.stdout.on("end", () => res.end());
  child.stderr.resume();
}

export async function startTestUpstream(): Promise<TestUpstream> {
  const ca = await createTestCa("test upstream CA");
  const leaf = await createLeaf(ca, UPSTREAM_NAMES);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-upstream-"));
  const caFile = path.join(dir, "upstream-ca.pem");
  fs.writeFileSync(caFile, ca.certPem);
  const gitRoot = path.join(dir, "git");
  fs.mkdirSync(gitRoot);
  const seen: SeenRequest[] = [];

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const sni = (req.socket as any).servername || undefined;
    seen.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host, sni, headers: req.headers });
    if ((req.url ?? "").startsWith("/git/")) return gitCgi(req, res, gitRoot);
    if ((req.url ?? "").startsWith("/stream")) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let n = 0;
      const iv = setInterval(() => {
        res.write(`data: ${n}\n\n`);
        if (++n === 5) {
          clearInterval(iv);
          res.end();
        }
      }, 20);
      return;
    }
    const m = /^\/bytes\/(\d+)/.exec(req.url ?? "");
    if (m) {
      const body = Buffer.alloc(Number(m[1]), 97);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
      return void res.end(body);
    }
    if ((req.url ?? "").startsWith("/sha256")) {
      const h = crypto.createHash("sha256");
      let bytes = 0;
      req.on("data", (c: Buffer) => (h.update(c), (bytes += c.length)));
      req.on("end", () => {
        const body = JSON.stringify({ bytes, sha256: h.digest("hex") });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const reflect = /^\/reflect\/(identity|gzip|deflate|br)/.exec(req.url ?? "");
    if (reflect) {
      const coding = reflect[1]!;
      const plainBody = Buffer.from(JSON.stringify({ headers: req.headers, note: "reflected" }));
      const body = coding === "gzip" ? zlib.gzipSync(plainBody) : coding === "deflate" ? zlib.deflateSync(plainBody) : coding === "br" ? zlib.brotliCompressSync(plainBody) : plainBody;
      const auth = String(req.headers.authorization ?? req.headers["x-api-key"] ?? "");
      res.writeHead(200, { "content-type": "application/json", "content-length": body.length, "x-reflect-authorization": auth, ...(coding === "identity" ? {} : { "content-encoding": coding }) });
      return void res.end(body);
    }
    let size = 0;
    const hash = crypto.createHash("sha256");
    req.on("data", (c: Buffer) => ((size += c.length), hash.update(c)));
    req.on("end", () => {
      const body = JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, headers: req.headers, sni, bodyBytes: size, bodySha256: hash.digest("hex") });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-upstream": "yes" });
      res.end(body);
    });
  };
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, handler);
  server.keepAliveTimeout = 60_000;
  const plain = http.createServer(handler);
  plain.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
  const sockets = new Set<net.Socket>();
  for (const s of [server, plain]) s.on("connection", (c: net.Socket) => (sockets.add(c), c.on("close", () => sockets.delete(c))));

  return {
    ca,
    caFile,
    port: (server.address() as net.AddressInfo).port,
    httpPort: (plain.address() as net.AddressInfo).port,
    seen,
    gitRoot,
    makeRepo(name: string) {
      const bare = path.join(gitRoot, `${name}.git`);
      const work = path.join(dir, `work-${name}`);
      const git = (args: string[], cwd?: string) => execFileSync("git", args, { cwd, stdio: "pipe", env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });
      git(["init", "-q", "--bare", "-b", "main", bare]);
      git(["config", "http.receivepack", "true"], bare);
      git(["init", "-q", "-b", "main", work]);
      fs.writeFileSync(path.join(work, "README"), "hello\n");
      git(["add", "README"], work);
      git(["commit", "-q", "-m", "init"], work);
      git(["push", "-q", bare, "main"], work);
      return bare;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => plain.close(r))]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
