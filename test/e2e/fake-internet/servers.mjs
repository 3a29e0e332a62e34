// Fake internet servers (node 18+, no dependencies). One program, two personalities:
//   node servers.mjs web  — HTTPS echo on 443 (cert for the names in /srv/tls/web.pem), HTTP echo on 80;
//                           …/__bytes/<N> streams N bytes, …/__sha256 answers the body's size and sha256
//                           (the request's credential reflected in x-echo-authorization; the
//                           echo compressed when the request says x-echo-encoding: gzip|deflate|br)
//                           Claude Code itself (user-agent claude-cli/…) POSTing to /v1/messages gets
//                           a scripted Messages API answer instead (messagesApi below)
//   node servers.mjs sink — records every TCP connection / UDP datagram on many ports
// Everything received is appended as JSON lines to /srv/log/<name>.jsonl (read by the suite
// with `docker exec cat`).
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import dgram from "node:dgram";
import https from "node:https";
import http from "node:http";
import zlib from "node:zlib";

const mode = process.argv[2];
const name = process.argv[3] || mode;
fs.mkdirSync("/srv/log", { recursive: true });
const logFile = `/srv/log/${name}.jsonl`;
const record = (o) => fs.appendFileSync(logFile, JSON.stringify({ t: new Date().toISOString(), ...o }) + "\n");

/** GET …/__bytes/<N>: N bytes of "a", streamed (big downloads; never buffered here). */
function bytes(proto, req, res, n) {
  record({ proto, method: req.method, path: req.url, headers: req.headers, bytes: n, from: req.socket.remoteAddress });
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(n) });
  const chunk = Buffer.alloc(1 << 20, 97);
  let left = n;
  const pump = () => {
    while (left > 0) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= part.length;
      if (!res.write(part)) return void res.once("drain", pump);
    }
    res.end();
  };
  pump();
}

/** …/__sha256: the body's size and sha256, streamed (big uploads; the body is not logged). */
function digest(proto, req, res) {
  const h = crypto.createHash("sha256");
  let n = 0;
  req.on("data", (c) => (h.update(c), (n += c.length)));
  req.on("end", () => {
    const out = { bytes: n, sha256: h.digest("hex") };
    record({ proto, method: req.method, path: req.url, headers: req.headers, ...out, from: req.socket.remoteAddress });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ server: name, ...out }));
  });
}

/**
 * A scripted stand-in for the Messages API, just enough for `claude -p` to finish a turn and
 * for its WebSearch tool to run: a request whose tools hold a web_search server tool (Claude
 * Code's WebSearch sub-request) gets a text answer; a conversation that asks for
 * "E2E-WEBSEARCH" gets a WebSearch tool call (after a ToolSearch call loading it, when Claude
 * Code defers it), once; everything else gets "hi". Answers stream (SSE) when asked to, as
 * the API's streaming events (message_start … message_stop).
 */
function messagesApi(body, res) {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const convo = JSON.stringify(body.messages ?? []);
  const has = (n) => tools.some((t) => t.name === n);
  let blocks = [{ type: "text", text: "hi from the fake Messages API" }];
  let stop = "end_turn";
  if (tools.some((t) => String(t.type ?? "").startsWith("web_search_"))) blocks = [{ type: "text", text: "e2e search result: nothing found" }];
  else if (convo.includes("E2E-WEBSEARCH") && !convo.includes("toolu_e2e_ws")) {
    if (has("WebSearch") && (!has("ToolSearch") || convo.includes("toolu_e2e_ts"))) blocks = [{ type: "tool_use", id: "toolu_e2e_ws", name: "WebSearch", input: { query: "claude bottle e2e" } }];
    else if (has("ToolSearch") && !convo.includes("toolu_e2e_ts")) blocks = [{ type: "tool_use", id: "toolu_e2e_ts", name: "ToolSearch", input: { query: "select:WebSearch", max_results: 1 } }];
    if (blocks[0].type === "tool_use") stop = "tool_use";
  }
  const message = { id: `msg_e2e_${Date.now()}`, type: "message", role: "assistant", model: body.model ?? "e2e", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } };
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ ...message, content: blocks, stop_reason: stop }));
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  ev("message_start", { message });
  blocks.forEach((b, index) => {
    if (b.type === "text") {
      ev("content_block_start", { index, content_block: { type: "text", text: "" } });
      ev("content_block_delta", { index, delta: { type: "text_delta", text: b.text } });
    } else {
      ev("content_block_start", { index, content_block: { ...b, input: {} } });
      ev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: JSON.stringify(b.input) } });
    }
    ev("content_block_stop", { index });
  });
  ev("message_delta", { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 1 } });
  ev("message_stop", {});
  res.end();
}

function echo(proto) {
  return (req, res) => {
    const big = /\/__bytes\/(\d+)$/.exec(req.url.split("?")[0]);
    if (big) return bytes(proto, req, res, Number(big[1]));
    if (/\/__sha256$/.test(req.url.split("?")[0])) return digest(proto, req, res);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const sni = req.socket.servername;
      const entry = { proto, method: req.method, path: req.url, headers: req.headers, body, sni, from: req.socket.remoteAddress };
      record(entry);
      if (req.method === "POST" && (req.url ?? "").startsWith("/v1/messages") && String(req.headers["user-agent"] ?? "").startsWith("claude-cli/")) {
        try {
          return messagesApi(JSON.parse(body), res);
        } catch {
          /* not JSON: echo it */
        }
      }
      // Like many real upstreams, also reflect the credential in a response header, and compress
      // the echo when asked (x-echo-encoding: gzip | deflate | br), so egress's redaction is tested
      // on what such upstreams send.
      const text = Buffer.from(JSON.stringify({ echo: true, server: name, ...entry }));
      const coding = String(req.headers["x-echo-encoding"] || "");
      const zipped = coding === "gzip" ? zlib.gzipSync(text) : coding === "deflate" ? zlib.deflateSync(text) : coding === "br" ? zlib.brotliCompressSync(text) : undefined;
      const reflected = String(req.headers.authorization || req.headers["x-api-key"] || "");
      res.writeHead(200, { "content-type": "application/json", "x-echo-authorization": reflected, ...(zipped ? { "content-encoding": coding } : {}) });
      res.end(zipped || text);
    });
  };
}

if (mode === "web") {
  const pem = fs.readFileSync("/srv/tls/web.pem", "utf8");
  https.createServer({ key: pem, cert: pem }, echo("https")).listen(443, "0.0.0.0");
  http.createServer(echo("http")).listen(80, "0.0.0.0");
  console.log("web up");
} else if (mode === "sink") {
  const tcpPorts = [21, 22, 25, 53, 80, 443, 2375, 3128, 8080, 8443, 8888, 9418];
  for (const port of tcpPorts) {
    net
      .createServer((sock) => {
        const from = `${sock.remoteAddress}:${sock.remotePort}`;
        let got = Buffer.alloc(0);
        record({ proto: "tcp", event: "connect", port, from });
        sock.on("data", (d) => {
          got = Buffer.concat([got, d]).subarray(0, 65536);
          record({ proto: "tcp", event: "data", port, from, bytes: d.length, text: d.toString("latin1").slice(0, 2000) });
        });
        sock.on("error", () => undefined);
        // answer like an HTTP server so clients finish quickly
        setTimeout(() => sock.end("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nsink\n"), 300);
      })
      .listen(port, "0.0.0.0");
  }
  for (const port of [53, 123, 443]) {
    const s = dgram.createSocket("udp4");
    s.on("message", (msg, rinfo) => {
      record({ proto: "udp", event: "datagram", port, from: `${rinfo.address}:${rinfo.port}`, bytes: msg.length, hex: msg.toString("hex").slice(0, 512) });
    });
    s.bind(port, "0.0.0.0");
  }
  console.log("sink up");
} else {
  console.error("usage: servers.mjs web|sink [name]");
  process.exit(2);
}
