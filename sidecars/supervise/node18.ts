// Sidecar images run Debian bookworm's Node 18, which has no global `crypto` (the MCP SDK
// calls crypto.randomUUID()). Import this first in a sidecar entry point.
import { webcrypto } from "node:crypto";

if (!(globalThis as { crypto?: unknown }).crypto) {
  Object.defineProperty(globalThis, "crypto", { value: webcrypto, configurable: true, writable: true });
}
