// Probes run INSIDE a container with its own node (`docker exec -i CTR node - <json>`): raw
// TCP/UDP/DNS attempts whose failure mode is classified, so "connection refused" (the
// address answered!) is never mistaken for "blocked".
import { docker, dockerEnv } from "./lib/docker.ts";

const PROBE = String.raw`
const net = require("net"), dgram = require("dgram"), dns = require("dns");
const req = JSON.parse(process.argv[process.argv.length - 1]);
const tcp = (host, port, ms) => new Promise((res) => {
  const s = net.connect({ host, port, family: host.includes(":") ? 6 : 4 });
  const t = setTimeout(() => { s.destroy(); res("timeout"); }, ms);
  s.on("connect", () => { clearTimeout(t); s.write(req.payload || "PROBE\r\n\r\n"); setTimeout(() => { s.destroy(); res("connected"); }, 200); });
  s.on("error", (e) => { clearTimeout(t); res(e.code === "ECONNREFUSED" ? "refused" : e.code === "ENOTFOUND" || e.code === "EAI_AGAIN" ? "dns" : e.code === "EHOSTUNREACH" || e.code === "ENETUNREACH" ? "unreachable" : "error:" + e.code); });
});
const udp = (host, port) => new Promise((res) => {
  const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  s.on("error", (e) => { res("error:" + e.code); try { s.close(); } catch {} });
  s.send(Buffer.from(req.payload || "PROBE"), port, host, (e) => { setTimeout(() => { try { s.close(); } catch {} res(e ? "error:" + e.code : "sent"); }, 300); });
});
const resolve = (server, name) => new Promise((res) => {
  const r = new dns.Resolver({ timeout: 1500, tries: 1 });
  if (server) r.setServers([server]);
  r.resolve4(name, (e, a) => res(e ? "dns:" + e.code : "resolved:" + a.join(",")));
});
(async () => {
  // all at once: a blocked probe costs its timeout, so a sequence would add them up
  const out = await Promise.all(req.probes.map((p) =>
    p.kind === "tcp" ? tcp(p.host, p.port, p.ms || 2500) : p.kind === "udp" ? udp(p.host, p.port) : resolve(p.server, p.name)));
  console.log(JSON.stringify(out));
})();
`;

export type Probe = { kind: "tcp"; host: string; port: number; ms?: number; payload?: string } | { kind: "udp"; host: string; port: number; payload?: string } | { kind: "dns"; server?: string; name: string };

/** Runs the probes in the container (on the engine at `dockerHost`, default the local one); one outcome string per probe. */
export async function probe(container: string, probes: Probe[], dockerHost?: string): Promise<string[]> {
  const r = await docker(["exec", "-i", container, "node", "-", JSON.stringify({ probes })], { input: PROBE, timeoutMs: 30_000, ...(dockerHost ? { env: { ...dockerEnv(), DOCKER_HOST: dockerHost } } : {}) });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`probe failed in ${container}: ${r.stdout}${r.stderr}`);
  }
}

/** Outcomes that mean the packet got an answer from the target or could be sent. */
export const reached = (o: string) => o === "connected" || o === "refused" || o.startsWith("resolved:");
