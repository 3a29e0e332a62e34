// egress in front of the TEST-ONLY pipelock stand-in (test/e2e/pipelock-standin) on loopback, in
// front of the test upstream: the chain a bottle runs, with pipelock's behaviour as its source
// has it. pipelock's refusals (at CONNECT, inside an intercepted tunnel) reach the agent as
// pipelock's, in words naming the layer and, where supervise can widen it, the tool; the audit
// log records them as denied by pipelock. Big transfers pass with the rendered caps, and a cap
// lowered live (a reload confirmed by config_hash) is what refuses the next one.
import test from "ava";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { TOOL_NAMES } from "../../contracts/proposals.ts";
import { MIB } from "../../contracts/pipelock.ts";
import { writeFileAtomic } from "../../store/io.ts";
import { liveTarget, writeConfirmed } from "../../store/reload.ts";
import { startTestUpstream, type TestUpstream } from "./helpers/https-upstream.ts";
import { agentRequest, proxiedAgent, startEgress, type Harness } from "./helpers/egress-harness.ts";
import { freePort } from "./helpers/sshd.ts";
import { pumpBytes, sha256OfRun } from "../helpers/bytes.ts";
import { buildStandIn, renderFor, standInEnv, standInWorkDir, StandInProcess } from "./helpers/pipelock-standin.ts";

const ROUTES = { version: 1, routes: [{ host: "api.test.example" }, { host: "other.example" }, { host: "x.wild.test.example" }] };
/** other.example is an egress route pipelock refuses; x.wild.test.example is first used after a reload. */
const PIPELOCK_ALLOWS = ["api.test.example", "x.wild.test.example"];

let up: TestUpstream;
let pl: StandInProcess;
let eg: Harness;
let dir = "";
let configFile = "";
let bin = "";
let agent: http.Agent;

test.before(async () => {
  bin = await buildStandIn();
  up = await startTestUpstream();
  const work = await standInWorkDir(up);
  dir = work.dir;
  configFile = path.join(dir, "cfg", "pipelock.yaml");
  writeFileAtomic(configFile, renderFor(dir, PIPELOCK_ALLOWS));
  const port = await freePort();
  pl = new StandInProcess(bin, configFile, `127.0.0.1:${port}`, { ...standInEnv(dir), PIPELOCK_STANDIN_DIAL_PORTS: `443=${up.port},80=${up.httpPort}` });
  await pl.start();
  if (!(await pl.running())) throw new Error(`stand-in did not start:\n${pl.log.join("\n")}`);
  eg = await startEgress(up, ROUTES, {
    upstreamProxy: `http://127.0.0.1:${port}`,
    upstreamCa: [work.ca.certPem],
    dial: undefined,
    superviseTool: TOOL_NAMES.egress_routes,
    pipelockTool: TOOL_NAMES.pipelock_allowlist,
  });
  agent = proxiedAgent(eg.port, eg.ca.certPem, 4);
});

test.after.always(async () => {
  agent?.destroy();
  await eg?.close();
  await pl?.stop();
  await up?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  if (bin) fs.rmSync(path.dirname(bin), { recursive: true, force: true });
});

const lastAudit = () => eg.audit[eg.audit.length - 1]!;

test.serial("an allowed request goes agent → egress → pipelock (intercepted with its CA) → upstream", async (t) => {
  const r = await agentRequest(agent, "api.test.example", "/hello");
  t.is(r.status, 200, r.body);
  t.is(JSON.parse(r.body).url, "/hello");
  t.like(lastAudit(), { decision: "allow", reason: "route", host: "api.test.example", status: 200 });
  t.true(pl.log.some((l) => l.includes('"scanner":"tls_intercept"')), "pipelock intercepted the tunnel");
});

test.serial("pipelock's allowlist refusal at CONNECT: the agent reads that pipelock refused it and which tool asks for it; audited as pipelock's deny", async (t) => {
  const r = await agentRequest(agent, "other.example", "/x");
  t.is(r.status, 403);
  t.is(r.headers["x-claude-bottle-block-reason"], "pipelock_blocked");
  const body = JSON.parse(r.body);
  t.like(body, { blocked: true, layer: "pipelock", reason: "pipelock_blocked", pipelock_reason: "parse_error", host: "other.example" });
  t.regex(body.message, /^pipelock, the bottle's outbound firewall behind egress, refused this request: CONNECT blocked: domain not in allowlist: other\.example\. other\.example is not on pipelock's allowlist\. Ask the operator with the propose_pipelock_allowlist tool/);
  t.deepEqual(body.how_to_ask.tool, TOOL_NAMES.pipelock_allowlist);
  t.is(body.how_to_ask.add_to_allowlist, "other.example");
  t.like(lastAudit(), { decision: "deny", reason: "pipelock_blocked", layer: "pipelock", pipelock_reason: "parse_error", detail: "CONNECT blocked: domain not in allowlist: other.example", status: 403 });
});

test.serial("pipelock's DLP refusal inside the intercepted tunnel: not relayed as an upstream 403 and never audited as allowed", async (t) => {
  const seen = up.seen.length;
  const r = await agentRequest(agent, "api.test.example", "/upload", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ note: "AKIAIOSFODNN7EXAMPLE" }) });
  t.is(r.status, 403);
  const body = JSON.parse(r.body);
  t.like(body, { layer: "pipelock", pipelock_reason: "dlp_match" });
  t.regex(body.message, /request body contains secret: AWS Access ID\. pipelock found what looks like a secret/);
  t.is(body.how_to_ask, undefined, "no proposal widens DLP");
  t.like(lastAudit(), { decision: "deny", layer: "pipelock", pipelock_reason: "dlp_match", detail: "blocked: request body contains secret: AWS Access ID" });
  t.false(eg.audit.some((a) => a.decision === "allow" && a.status === 403), "no pipelock refusal is recorded as allowed");
  t.is(up.seen.length, seen, "the upstream never saw it");
});

/** Stream `bytes` bytes up, or read a response down, through the chain; sha256 on both ends. */
async function transfer(method: "GET" | "POST", pathname: string, bytes: number, host = "api.test.example"): Promise<{ status: number; body: string; sha256: string; received: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host, port: 443, path: pathname, method, headers: { host, ...(method === "POST" ? { "content-type": "application/octet-stream", "content-length": String(bytes) } : {}) } }, (res) => {
      const h = crypto.createHash("sha256");
      let received = 0;
      const keep: Buffer[] = [];
      res.on("data", (c: Buffer) => {
        h.update(c);
        received += c.length;
        if (received <= 64 * 1024) keep.push(c);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(keep).toString("utf8").slice(0, 2000), sha256: h.digest("hex"), received, ms: performance.now() - t0 }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (method === "POST") pumpBytes(req, bytes, 98);
    else req.end();
  });
}


// Bodies are scanned for secrets before they pass, which costs the stand-in (it mirrors pipelock's
// body scan) about 2 s per MB here; the e2e tier sends the full 20 MB, this sends more than
// pipelock's own 5 MiB default.
const UPLOAD = 6 * 1000 * 1000;

test.serial("big transfers with the rendered caps: 100 MB down and 6 MB up through egress and pipelock's interception, byte for byte", async (t) => {
  t.timeout(300_000);
  const down = await transfer("GET", `/bytes/${100 * 1000 * 1000}`, 0);
  t.is(down.status, 200, down.body);
  t.is(down.received, 100 * 1000 * 1000);
  t.is(down.sha256, sha256OfRun(100 * 1000 * 1000, 97));
  const upload = await transfer("POST", "/sha256", UPLOAD);
  t.is(upload.status, 200, upload.body);
  t.deepEqual(JSON.parse(upload.body), { bytes: UPLOAD, sha256: sha256OfRun(UPLOAD, 98) });
  t.log(`100 MB down in ${(down.ms / 1000).toFixed(1)} s, ${UPLOAD / 1e6} MB up in ${(upload.ms / 1000).toFixed(1)} s (loopback, not a benchmark)`);
});

test.serial("a cap lowered live (the reload confirmed by config_hash) refuses the next big response and body, in pipelock's words, with the manifest key that raises it", async (t) => {
  const small = renderFor(dir, PIPELOCK_ALLOWS, (c) => {
    c.tls_interception.max_response_bytes = MIB;
    c.request_body_scanning.max_body_bytes = MIB;
  });
  const out = await writeConfirmed(liveTarget("pipelock", pl), { name: "pipelock.yaml", content: small, previous: fs.readFileSync(configFile, "utf8"), write: async (x) => writeFileAtomic(configFile, x) });
  t.is(out.status, "confirmed", out.detail);
  // pipelock applies the config a tunnel was opened with to the whole tunnel (forward.go captures
  // it at CONNECT), and egress keeps its tunnel to api.test.example alive: a host not used yet
  // opens a tunnel under the new caps
  const down = await transfer("GET", `/bytes/${2 * MIB}`, 0, "x.wild.test.example");
  t.is(down.status, 403);
  const body = JSON.parse(down.body);
  t.like(body, { layer: "pipelock", pipelock_reason: "data_budget" });
  t.regex(body.message, /response too large for scanning\. The transfer is larger than what pipelock scans .*pipelock\.max_response_mib/);
  const upload = await transfer("POST", "/sha256", 2 * MIB, "x.wild.test.example");
  t.is(upload.status, 403);
  t.regex(JSON.parse(upload.body).message, /request body exceeds max_body_bytes \(1048576\)\. The transfer is larger than what pipelock scans/);
  t.like(lastAudit(), { decision: "deny", layer: "pipelock", detail: "blocked: request body exceeds max_body_bytes (1048576)" });
});
