// Redaction of injected credentials from relayed responses (sidecars/egress/redact.ts): the
// exact spellings, across every chunk boundary, in headers and in gzip/deflate/br bodies.
import test from "ava";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { parseRoutesDocument } from "../../contracts/routes.ts";
import { BLOCK_REASON_HEADER, decide } from "../../sidecars/egress/decide.ts";
import { decodableAcceptEncoding, redactionValues, redactResponse, Redactor, REDACTED } from "../../sidecars/egress/redact.ts";

const TOKEN = "sk-ant-oat01-SECRET/value+x=";

test("redactionValues: the header value, the token, its URL- and JSON-escaped forms, a basic credential's base64; short values left out", (t) => {
  t.deepEqual(redactionValues(TOKEN, `Bearer ${TOKEN}`), [`Bearer ${TOKEN}`, TOKEN, encodeURIComponent(TOKEN), "sk-ant-oat01-SECRET\\/value+x=".replace("\\/", "/")].filter((v, i, a) => a.indexOf(v) === i));
  const b64 = Buffer.from("user:passw0rd!").toString("base64");
  t.deepEqual(redactionValues("user:passw0rd!", `Basic ${b64}`), [`Basic ${b64}`, "user:passw0rd!", encodeURIComponent("user:passw0rd!"), b64]);
  t.deepEqual(redactionValues("tiny", "tiny"), [], "under 8 bytes: not redacted");
  t.deepEqual(redactionValues('quo"te-token', 'quo"te-token'), ['quo"te-token', "quo%22te-token", 'quo\\"te-token']);
});

test("Redactor: every split of the stream into two chunks gives the same redacted text", (t) => {
  const values = redactionValues(TOKEN, `Bearer ${TOKEN}`);
  const cases: [string, string][] = [
    [`{"authorization":"Bearer ${TOKEN}"}`, `{"authorization":"${REDACTED}"}`],
    [`${TOKEN}${TOKEN}`, `${REDACTED}${REDACTED}`],
    [`x=${encodeURIComponent(TOKEN)}&y=1`, `x=${REDACTED}&y=1`],
    ["nothing secret here, sk-ant-oat01- alone is not the token", "nothing secret here, sk-ant-oat01- alone is not the token"],
    [`sk-ant-oat01-SECRET/valu${TOKEN}`, `sk-ant-oat01-SECRET/valu${REDACTED}`],
  ];
  for (const [input, want] of cases) {
    const bytes = Buffer.from(input);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = new Redactor(values);
      const got = Buffer.concat([r.push(bytes.subarray(0, cut)), r.push(bytes.subarray(cut)), r.end()]).toString();
      t.is(got, want, `${input} split at ${cut}`);
    }
  }
});

test("Redactor: only bytes that could start a value are held back (a server-sent event is not delayed)", (t) => {
  const r = new Redactor([TOKEN]);
  t.is(r.push(Buffer.from("data: {\"x\":1}\n\n")).toString(), "data: {\"x\":1}\n\n");
  t.is(r.push(Buffer.from("data: sk-ant")).toString(), "data: ", "a possible start is held");
  t.is(r.push(Buffer.from("-other\n\n")).toString(), "sk-ant-other\n\n", "and released once it cannot be one");
  t.is(r.count, 0);
  t.is(Redactor.header(`x ${TOKEN} y`, [TOKEN]), `x ${REDACTED} y`);
});

async function relay(status: number, headers: string[], body: Buffer) {
  const r = redactResponse(status, headers, Readable.from([body.subarray(0, 7), body.subarray(7)]), redactionValues(TOKEN, `Bearer ${TOKEN}`), BLOCK_REASON_HEADER);
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return { ...r, text: Buffer.concat(chunks).toString() };
}

test("redactResponse: headers and bodies, plain and gzip / deflate / br / stacked codings, relayed decoded", async (t) => {
  const echo = Buffer.from(JSON.stringify({ headers: { authorization: `Bearer ${TOKEN}` }, note: "ok" }));
  const want = JSON.stringify({ headers: { authorization: REDACTED }, note: "ok" });
  const encoders: [string, (b: Buffer) => Buffer][] = [
    ["", (b) => b],
    ["identity", (b) => b],
    ["gzip", zlib.gzipSync],
    ["x-gzip", zlib.gzipSync],
    ["deflate", zlib.deflateSync],
    ["br", zlib.brotliCompressSync],
    ["gzip, br", (b) => zlib.brotliCompressSync(zlib.gzipSync(b))],
  ];
  for (const [coding, encode] of encoders) {
    const body = encode(echo);
    const headers = ["Content-Type", "application/json", "Content-Length", String(body.length), "X-Echo-Authorization", `Bearer ${TOKEN}`, ...(coding ? ["Content-Encoding", coding] : [])];
    const r = await relay(200, headers, body);
    t.is(r.status, 200, coding);
    t.is(r.text, want, `body, content-encoding "${coding}"`);
    t.deepEqual(r.headers, ["Content-Type", "application/json", "X-Echo-Authorization", REDACTED], `headers, "${coding}": no stale length or coding`);
  }
});

test("redactResponse: a coding egress cannot look inside is not relayed (502, response_unreadable)", async (t) => {
  const r = await relay(200, ["Content-Encoding", "zstd"], Buffer.from(`zstd-framed ${TOKEN}`));
  t.is(r.status, 502);
  t.true(r.headers.includes("response_unreadable"));
  t.false(r.text.includes(TOKEN));
  t.regex(r.text, /content-encoding zstd, which egress cannot look inside/);
});

test("decodableAcceptEncoding keeps only codings egress decodes", (t) => {
  const table: [string | undefined, string][] = [
    ["gzip, deflate, br, zstd", "gzip, deflate, br"],
    ["zstd", "identity"],
    [undefined, "identity"],
    ["br;q=1.0, compress;q=0.5", "br;q=1.0"],
  ];
  for (const [input, want] of table) t.is(decodableAcceptEncoding(input), want, String(input));
});

test("decide: an injecting route's Allow carries the values to redact; other routes none", (t) => {
  const { routes } = parseRoutesDocument({ version: 1, routes: [{ host: "api.example.com", auth: { scheme: "bearer", token_ref: "T" } }, { host: "plain.example.com" }] });
  const req = (host: string) => ({ scheme: "https" as const, connectHost: host, connectPort: 443, sni: host, method: "GET", target: "/", headers: { host } });
  const d = decide(req("api.example.com"), routes, { tokens: { T: TOKEN } });
  t.is(d.action, "allow");
  t.deepEqual(d.action === "allow" ? d.redact : undefined, redactionValues(TOKEN, `Bearer ${TOKEN}`));
  const p = decide(req("plain.example.com"), routes, { tokens: { T: TOKEN } });
  t.is(p.action === "allow" ? p.redact : "deny", undefined);
});
