// Bodies of requests on LLM routes, as the guard (llm-guard.ts) reads them: read whole up to a
// cap, the Content-Encoding undone, then parsed as strict JSON. Only LLM routes' Messages API
// requests come here; every other body streams through untouched (proxy.ts).
//
// "Strict" means egress and the API cannot read the document two ways: bytes that are not UTF-8
// (a BOM included) or not JSON are refused, and so is an object holding the same key twice
// (after \u-escapes are decoded): parsers disagree on which one wins, so neither wins here.
import type { Readable } from "node:stream";
import zlib from "node:zlib";

/**
 * The most egress reads of one LLM request, before and after decoding: the Messages API's own
 * request limit (32 MB; the Batches API allows more, egress does not). Measured: Claude Code
 * 2.1.330 sends ~49 KB for a session's first turn (growing with the conversation), ~0.9 KB for
 * a WebSearch sub-request, ~625 KB with an image its Read tool returned (re-encoded as JPEG),
 * and ~10.7 MB with an 8 MB PDF (base64 inline).
 */
export const LLM_BODY_CAP = 32 * 1024 * 1024;

export type BodyProblem =
  | { kind: "too_large"; detail: string }
  | { kind: "encoding"; detail: string }
  | { kind: "invalid"; detail: string }
  | { kind: "ambiguous"; detail: string };

/** Read the whole body, or stop at `cap` bytes (a Content-Length above the cap is refused unread). */
export function readCapped(req: Readable & { headers: Record<string, unknown> }, cap: number): Promise<{ body: Buffer } | { tooLarge: number }> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > cap) return resolve({ tooLarge: declared });
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > cap) {
        done = true;
        req.off("data", onData);
        resolve({ tooLarge: size });
        return;
      }
      chunks.push(c);
    };
    req.on("data", onData);
    req.once("end", () => {
      if (done) return;
      done = true;
      resolve({ body: Buffer.concat(chunks, size) });
    });
    req.once("error", (e) => !done && ((done = true), reject(e)));
    req.once("close", () => !done && ((done = true), reject(new Error("the client closed the request before its body was complete"))));
  });
}

const DECODERS: Record<string, (b: Buffer, o: zlib.ZlibOptions & zlib.BrotliOptions) => Buffer> = {
  gzip: zlib.gunzipSync,
  "x-gzip": zlib.gunzipSync,
  deflate: zlib.inflateSync,
  br: zlib.brotliDecompressSync,
};

/**
 * Undo Content-Encoding (codings listed in the order they were applied; `identity` is none).
 * A coding egress cannot undo (zstd, compress, …) is refused: the body is never passed unchecked.
 */
export function decodeBody(raw: Buffer, contentEncoding: readonly string[] | undefined, cap: number): { ok: true; body: Buffer } | { ok: false; problem: BodyProblem } {
  const codings = (contentEncoding ?? []).join(",").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  let body = raw;
  for (const coding of codings.reverse()) {
    const decode = DECODERS[coding];
    if (!decode) return { ok: false, problem: { kind: "encoding", detail: `the body is encoded with "${coding}", which egress cannot decode to check (gzip, deflate and br can be)` } };
    try {
      body = decode(body, { maxOutputLength: cap });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === "ERR_BUFFER_TOO_LARGE") return { ok: false, problem: { kind: "too_large", detail: `the body decodes (${coding}) to more than ${cap} bytes` } };
      return { ok: false, problem: { kind: "encoding", detail: `the body is not valid ${coding} data (${err.code ?? err.message})` } };
    }
  }
  return { ok: true, body };
}

/** Parse a body as strict JSON: UTF-8 without BOM, one value, no key twice in an object. */
export function parseStrictJson(body: Buffer): { ok: true; value: unknown } | { ok: false; problem: BodyProblem } {
  let text: string;
  try {
    // ignoreBOM keeps a BOM as U+FEFF, which JSON.parse then refuses.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    return { ok: false, problem: { kind: "invalid", detail: "the body is not UTF-8" } };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: { kind: "invalid", detail: `the body is not JSON (${(e as Error).message.slice(0, 120)})` } };
  }
  const dup = duplicateKey(text);
  if (dup) return { ok: false, problem: { kind: "ambiguous", detail: `the key ${JSON.stringify(dup.key)} appears twice in one object (at character ${dup.at})` } };
  return { ok: true, value };
}

/**
 * The first key repeated within one object, keys compared after JSON unescaping. Runs on text
 * JSON.parse has accepted, so it only tracks containers and keys; string bodies are skipped
 * with indexOf (base64 images are one long string).
 */
export function duplicateKey(text: string): { key: string; at: number } | undefined {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      for (;;) {
        let backslashes = 0;
        for (let k = end - 1; text.charCodeAt(k) === 0x5c; k--) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (expectKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const keys = stack[stack.length - 1]!;
        if (keys.has(key)) return { key, at: i };
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] !== null;
    }
  }
  return undefined;
}
