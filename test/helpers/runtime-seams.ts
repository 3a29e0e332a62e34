// A daemon for the runtime choice without Docker: what `docker info` would list, what a probe
// container under runsc would do, an in-memory probe cache — and a record of what was asked.
import type { DaemonFacts, ProbeResult, RuntimeSeams } from "../../components/runtime.ts";

export interface FakeDaemon extends RuntimeSeams {
  calls: { info: number; probes: { runtime: string; image: string; namePrefix: string }[] };
  cached: Set<string>;
}

export function fakeDaemon(
  runtimes: string[] | Record<string, unknown> | undefined,
  opts: { operatingSystem?: string; probe?: ProbeResult; kernel?: string; cached?: Set<string> } = {},
): FakeDaemon {
  const entries = Array.isArray(runtimes) ? Object.fromEntries(runtimes.map((r) => [r, { path: r }])) : runtimes;
  const facts: DaemonFacts | undefined = entries && { runtimes: entries, operatingSystem: opts.operatingSystem ?? "Debian GNU/Linux 12 (bookworm)", id: "TEST:DAEMON", kernel: opts.kernel ?? "6.18.0", serverVersion: "20.10.24" };
  const cached = opts.cached ?? new Set<string>();
  const calls: FakeDaemon["calls"] = { info: 0, probes: [] };
  return {
    calls,
    cached,
    info: () => (calls.info++, facts),
    probe: (runtime, image, namePrefix) => (calls.probes.push({ runtime, image, namePrefix }), opts.probe ?? { ok: true }),
    cache: { has: (k) => cached.has(k), add: (k) => void cached.add(k) },
  };
}
