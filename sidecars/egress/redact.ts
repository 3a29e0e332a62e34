// Redaction of the credentials egress injects from the responses it relays. An upstream that
// reflects request headers — in an echo endpoint, an error page, a debug header — would hand the
// agent the very token egress keeps from it; so, on a response to a request egress injected a
// credential into, every exact spelling of that credential is replaced, in the headers and in
// the body, across chunk boundaries, and inside gzip / deflate / br content (decoded, then relayed
// without its content-encoding). What is not seen: the credential in any other encoding (base64
// of it, split by the upstream, inside an archive the body carries), and values under 8 bytes.
import { Readable, Transform, type TransformCallback } from "node:stream";
import zlib from "node:zlib";

/** What a redacted value becomes. */
export const REDACTED = "[claude-bottle: redacted credential]";
/** Shorter values are not redacted: replacing them everywhere would mangle ordinary content. */
export const MIN_REDACTED_BYTES = 8;
/** Content codings egress can look inside; a request on an injecting route asks for these only. */
export const DECODABLE_CODINGS = ["gzip", "x-gzip", "deflate", "br"] as const;

/** The spellings of an injected credential a reflecting upstream would send back. */
export function redactionValues(token: string, headerValue: string): string[] {
  const forms = [headerValue, token, encodeURIComponent(token), JSON.stringify(token).slice(1, -1)];
  const basic = /^Basic (\S+)$/.exec(headerValue);
  if (basic) forms.push(basic[1]!);
  return [...new Set(forms)].filter((v) => Buffer.byteLength(v) >= MIN_REDACTED_BYTES);
}

/**
 * Streaming, exact replacement of `values`. push() returns what is safe to emit now: bytes that
 * could still be the start of a value are held back until the next chunk (only those, so a
 * stream of events is not delayed when no value is being spelled).
 */
export class Redactor {
  private readonly needles: Buffer[];
  private readonly replacement = Buffer.from(REDACTED);
  private pending = Buffer.alloc(0);
  /** Values replaced so far. */
  count = 0;

  constructor(values: readonly string[]) {
    // Longest first: at one position the longest spelling wins ("Bearer t" before "t").
    this.needles = [...new Set(values)].map((v) => Buffer.from(v)).filter((b) => b.length > 0).sort((a, b) => b.length - a.length);
  }

  push(chunk: Buffer): Buffer {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let at = -1;
      let hit: Buffer | undefined;
      for (const n of this.needles) {
        const i = buf.indexOf(n, pos);
        if (i >= 0 && (at < 0 || i < at)) [at, hit] = [i, n];
      }
      if (!hit) break;
      out.push(buf.subarray(pos, at), this.replacement);
      pos = at + hit.length;
      this.count++;
    }
    const hold = this.heldBack(buf, pos);
    this.pending = hold ? Buffer.from(buf.subarray(buf.length - hold)) : Buffer.alloc(0);
    if (!out.length) return hold ? buf.subarray(pos, buf.length - hold) : buf; // the common case: nothing to copy
    out.push(buf.subarray(pos, buf.length - hold));
    return Buffer.concat(out);
  }

  end(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }

  /** Length of the longest suffix of buf[from..] that is a proper prefix of a value. */
  private heldBack(buf: Buffer, from: number): number {
    let best = 0;
    for (const n of this.needles) {
      for (let k = Math.min(n.length - 1, buf.length - from); k > best; k--) {
        if (buf.compare(n, 0, k, buf.length - k, buf.length) === 0) {
          best = k;
          break;
        }
      }
    }
    return best;
  }

  /** A header value with every value replaced. */
  static header(value: string, values: readonly string[]): string {
    const r = new Redactor(values);
    return Buffer.concat([r.push(Buffer.from(value, "latin1")), r.end()]).toString("latin1");
  }
}

function redactStream(values: readonly string[]): Transform {
  const r = new Redactor(values);
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      cb(null, r.push(chunk));
    },
    flush(cb: TransformCallback) {
      cb(null, r.end());
    },
  });
}

/** The Accept-Encoding to send upstream on an injecting route: the agent's, less what egress could not look inside. */
export function decodableAcceptEncoding(value: string | undefined): string {
  const wanted = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => {
      const coding = s.split(";")[0]!.trim().toLowerCase();
      return (DECODABLE_CODINGS as readonly string[]).includes(coding) || coding === "identity";
    });
  return wanted.length ? wanted.join(", ") : "identity";
}

export interface RelayedResponse {
  status: number;
  /** Raw header list (name, value, name, value, ...). */
  headers: string[];
  body: Readable;
}

/**
 * The response to relay for `upstream` (status, its hop-by-hop-free raw headers, its body), with
 * `values` redacted. A content coding egress cannot decode is not relayed at all: 502, and the
 * reason in the block-reason header (the request asked for decodable codings only).
 */
export function redactResponse(status: number, headers: string[], upstream: Readable, values: readonly string[], blockReasonHeader: string): RelayedResponse {
  const codings: string[] = [];
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    if (lower === "content-encoding") {
      codings.push(...headers[i + 1]!.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity"));
      continue;
    }
    // The body may change length, and a digest of it would no longer hold.
    if (lower === "content-length" || lower === "content-md5" || lower === "digest" || lower === "repr-digest" || lower === "content-digest") continue;
    out.push(headers[i]!, Redactor.header(headers[i + 1]!, values));
  }
  const unknown = codings.filter((c) => !(DECODABLE_CODINGS as readonly string[]).includes(c));
  if (unknown.length) {
    upstream.resume();
    const body = JSON.stringify({
      blocked: true,
      reason: "response_unreadable",
      message: `The upstream answered with content-encoding ${unknown.join(", ")}, which egress cannot look inside for the credential it injected; the response is not relayed.`,
    });
    return { status: 502, headers: ["content-type", "application/json", blockReasonHeader, "response_unreadable", "content-length", String(Buffer.byteLength(body))], body: Readable.from([Buffer.from(body)]) };
  }
  // Undo the codings in reverse order of application, then redact what the agent will read.
  let body: Readable = upstream;
  for (const c of [...codings].reverse()) {
    const decoder = c === "br" ? zlib.createBrotliDecompress() : c === "deflate" ? zlib.createInflate() : zlib.createGunzip();
    body.on("error", (e) => decoder.destroy(e));
    body = body.pipe(decoder);
  }
  const redacted = redactStream(values);
  body.on("error", (e) => redacted.destroy(e));
  return { status, headers: out, body: body.pipe(redacted) };
}
