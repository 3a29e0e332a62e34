// Big transfers without holding them: a request body of N repeated bytes streamed a MiB at a
// time (with back-pressure), and the sha256 of such a run, to check what arrived at the far end.
import crypto from "node:crypto";
import type { Writable } from "node:stream";

const MIB = 1 << 20;

/** Write `n` bytes of `fill` to `out` (honouring back-pressure), then end it. */
export function pumpBytes(out: Writable, n: number, fill: number | string): void {
  const chunk = Buffer.alloc(MIB, fill);
  let sent = 0;
  const pump = () => {
    while (sent < n) {
      const part = Math.min(chunk.length, n - sent);
      sent += part;
      if (!out.write(part === chunk.length ? chunk : chunk.subarray(0, part))) return void out.once("drain", pump);
    }
    out.end();
  };
  pump();
}

/** sha256 of `n` repetitions of one byte. */
export function sha256OfRun(n: number, fill: number | string): string {
  const h = crypto.createHash("sha256");
  const chunk = Buffer.alloc(MIB, fill);
  for (let left = n; left > 0; left -= chunk.length) h.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
  return h.digest("hex");
}
