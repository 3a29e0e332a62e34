// TEST-ONLY pipelock STAND-IN. pipelock cannot be obtained on this machine (the Go module
// proxy answers 403 for the module; no image registry), so the e2e tier runs this in the
// pipelock container instead: a plain forwarding proxy on :8888 (CONNECT tunnels and
// absolute-URI HTTP) that ENFORCES NOTHING — no allowlist, no SSRF guard, no DLP, no TLS
// interception. It exists only so the chain agent → egress → "pipelock" → fake upstream
// carries traffic; the attacks that test pipelock's own checks are reported "not run".
//
//   pipelock run --config FILE          serve (the component's command; FILE is ignored)
//   pipelock healthcheck --addr H:P     exit 0 when H:P accepts a TCP connection
import fs from "node:fs";
import http from "node:http";
import net from "node:net";

const [cmd, ...rest] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = rest.indexOf(name);
  return i >= 0 && rest[i + 1] ? rest[i + 1] : dflt;
};
const log = (o) => console.log(JSON.stringify({ t: new Date().toISOString(), standin: "pipelock", ...o }));

// Test-traffic safety, not policy: the stand-in dials only the fake-internet names the
// suite put in this container's /etc/hosts (its extra_hosts), never DNS or an IP literal,
// so nothing it forwards can leave the containers the suite created.
function fakeInternet() {
  const map = new Map();
  for (const line of fs.readFileSync("/etc/hosts", "utf8").split("\n")) {
    const [ip, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!ip || !/^\d+\.\d+\.\d+\.\d+$/.test(ip) || ip.startsWith("127.")) continue;
    for (const n of names) map.set(n.toLowerCase(), ip);
  }
  return map;
}
const resolveFake = (host) => fakeInternet().get(String(host).toLowerCase().replace(/\.$/, ""));

if (cmd === "healthcheck") {
  const [host, port] = opt("--addr", "127.0.0.1:8888").split(":");
  const s = net.connect({ host, port: Number(port) });
  const t = setTimeout(() => process.exit(1), 3000);
  s.on("connect", () => { clearTimeout(t); s.destroy(); process.exit(0); });
  s.on("error", () => process.exit(1));
} else if (cmd === "run") {
  const config = opt("--config", "");
  log({ event: "start", note: "TEST STAND-IN: forwards everything, enforces nothing", configPresent: config ? fs.existsSync(config) : false });
  const server = http.createServer((req, res) => {
    let url;
    try { url = new URL(req.url); } catch { res.writeHead(400).end("stand-in: absolute-URI requests only\n"); return; }
    const ip = resolveFake(url.hostname);
    if (!ip) { res.writeHead(403).end("stand-in: not a fake-internet host\n"); return; }
    log({ event: "http", method: req.method, host: url.host });
    const up = http.request({ host: ip, port: url.port || 80, method: req.method, path: url.pathname + url.search, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", (e) => { if (!res.headersSent) res.writeHead(502); res.end(`stand-in: upstream error ${e.code}\n`); });
    req.pipe(up);
  });
  server.on("connect", (req, client, head) => {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? "");
    if (!m) { client.end("HTTP/1.1 400 Bad Request\r\n\r\n"); return; }
    const ip = resolveFake(m[1]);
    if (!ip) { client.end("HTTP/1.1 403 Forbidden\r\n\r\nstand-in: not a fake-internet host\n"); return; }
    log({ event: "connect", target: req.url });
    const up = net.connect({ host: ip, port: Number(m[2]) }, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head?.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    up.on("error", (e) => { try { client.end(`HTTP/1.1 502 Bad Gateway\r\n\r\nstand-in: ${e.code}\n`); } catch {} });
    client.on("error", () => up.destroy());
  });
  server.listen(8888, "0.0.0.0", () => log({ event: "listening", port: 8888 }));
  process.on("SIGHUP", () => log({ event: "reload-signal", note: "nothing to reload" }));
  process.on("SIGTERM", () => process.exit(0));
} else {
  console.error(`pipelock STAND-IN (test-only): "${[cmd, ...rest].join(" ")}" is not implemented; only "run" and "healthcheck"`);
  process.exit(2);
}
