// A second Docker daemon on this machine, standing in for a remote Docker host: its own socket,
// data root, exec root, pidfile, bridge and address pools, in its own network namespace (so its
// iptables rules live there and never meet the shared daemon's). A veth pair links the namespace
// to this machine (host A, 10.x.y.1) and gives it (host B, 10.x.y.2) a default route back, as a
// remote host has a network path to the operator's; nothing on this machine's side is changed
// beyond that link: no iptables rule, no route, no daemon config. Everything is named
// cbtest-<id>… and removed by stop(). Needs root (ip netns, dockerd).
//
// The daemon reaches no registry (no NAT out of its namespace): images come from this machine's
// engine through the API (`docker save | docker -H <b> load`), build caches included
// (seedImages: the whole chain of a legacy build, parent links kept), so a bottle on B builds
// from cache exactly as a warm remote host would.
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { docker, dockerEnv, run, sleep } from "./docker.ts";

export interface SecondDaemon {
  id: string;
  /** unix:///run/cbtest-<id>/docker.sock */
  host: string;
  netns: string;
  /** This machine's address on the link (host A, as host B sees it). */
  hostAddress: string;
  /** The namespace's address on the link (host B itself). */
  nsAddress: string;
  /** B's default address pool (its networks' subnets when none is given). */
  pool: string;
  /** The docker CLI against B. */
  docker(args: string[], opts?: { input?: string | Buffer; timeoutMs?: number }): ReturnType<typeof run>;
  /** Run a command inside B's network namespace (a listener standing for a service of host B). */
  inNetns(cmd: string, args: string[]): ChildProcess;
  /** Stop the daemon, remove its namespace, link, data and sockets. Idempotent. */
  stop(): Promise<string[]>;
}

export async function isRoot(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "not root (ip netns and a second dockerd need it)";
  for (const bin of ["ip", "nsenter", "dockerd"]) if ((await run("sh", ["-c", `command -v ${bin}`])).code !== 0) return `no ${bin} on PATH`;
  return undefined;
}

const must = async (cmd: string, args: string[]) => {
  const r = await run(cmd, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
};

/** A 10.<a>.<b>.0/30 no interface or route of this machine uses. */
async function freeLink(): Promise<{ host: string; ns: string; net: string }> {
  const used = (await must("ip", ["-4", "route", "show", "table", "all"])) + (await must("ip", ["-4", "addr"]));
  for (let i = 0; i < 200; i++) {
    const b = crypto.randomInt(256);
    const c = crypto.randomInt(64) * 4;
    const net = `10.250.${b}.`;
    if (!used.includes(`${net}${c}`) && !used.includes(`${net}${c + 1}`) && !used.includes(`${net}${c + 2}`)) return { host: `${net}${c + 1}`, ns: `${net}${c + 2}`, net: `${net}${c}/30` };
  }
  throw new Error("no free 10.250.x.y/30 for the second daemon's link");
}

/** Start a second dockerd in its own network namespace. `log` gets its progress. */
export async function startSecondDaemon(opts: { log?: (s: string) => void } = {}): Promise<SecondDaemon> {
  const log = opts.log ?? (() => {});
  const id = crypto.randomBytes(3).toString("hex");
  const name = `cbtest-${id}`;
  const runDir = path.join("/run", name);
  const dataRoot = path.join(os.tmpdir(), `${name}-dockerd-data`);
  const hostIf = `${name}h`;
  const nsIf = `${name}n`;
  const link = await freeLink();
  // B's own pools, apart from the shared daemon's (172.17/12, 192.168/16) and this run's link
  const pool = `10.251.${crypto.randomInt(200)}.0/24`;
  const bip = `10.252.${crypto.randomInt(200)}.1/24`;
  const undo: (() => Promise<unknown>)[] = [];
  let daemon: ChildProcess | undefined;
  const problems: string[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return problems;
    stopped = true;
    if (daemon && daemon.exitCode === null) {
      daemon.kill("SIGTERM");
      for (let i = 0; i < 150 && daemon.exitCode === null; i++) await sleep(200);
      if (daemon.exitCode === null) {
        problems.push("dockerd did not stop in 30 s: killed");
        daemon.kill("SIGKILL");
      }
    }
    for (const u of undo.reverse()) await u().catch((e) => problems.push(String(e)));
    return problems;
  };
  try {
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    undo.push(async () => fs.rmSync(runDir, { recursive: true, force: true }));
    fs.mkdirSync(dataRoot, { recursive: true, mode: 0o700 });
    undo.push(async () => fs.rmSync(dataRoot, { recursive: true, force: true }));
    await must("ip", ["netns", "add", name]);
    undo.push(() => must("ip", ["netns", "del", name]));
    await must("ip", ["-n", name, "link", "set", "lo", "up"]);
    await must("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
    undo.push(() => run("ip", ["link", "del", hostIf])); // gone with the namespace already, usually
    await must("ip", ["link", "set", nsIf, "netns", name]);
    await must("ip", ["addr", "add", `${link.host}/30`, "dev", hostIf]);
    await must("ip", ["link", "set", hostIf, "up"]);
    await must("ip", ["-n", name, "addr", "add", `${link.ns}/30`, "dev", nsIf]);
    await must("ip", ["-n", name, "link", "set", nsIf, "up"]);
    await must("ip", ["-n", name, "route", "add", "default", "via", link.host]);
    const config = path.join(runDir, "daemon.json");
    fs.writeFileSync(config, "{}\n"); // never the shared /etc/docker/daemon.json
    const socket = path.join(runDir, "docker.sock");
    const logFile = path.join(runDir, "dockerd.log");
    const out = fs.openSync(logFile, "a");
    // nsenter --net, not `ip netns exec`: that also remounts /sys for the namespace, which hides
    // the cgroup hierarchy dockerd needs (cgroup v1: "Devices cgroup isn't mounted")
    daemon = spawn(
      "nsenter",
      [
        `--net=/run/netns/${name}`, "dockerd",
        "--host", `unix://${socket}`,
        "--data-root", dataRoot,
        "--exec-root", path.join(runDir, "exec"),
        "--pidfile", path.join(runDir, "docker.pid"),
        "--config-file", config,
        "--bip", bip,
        "--default-address-pool", `base=${pool},size=27`,
        "--cgroup-parent", `/${name}`,
      ],
      { stdio: ["ignore", out, out] },
    );
    fs.closeSync(out);
    const host = `unix://${socket}`;
    const against = (args: string[], o: { input?: string | Buffer; timeoutMs?: number } = {}) => run("docker", args, { env: { ...dockerEnv(), DOCKER_HOST: host }, ...o });
    for (let i = 0; ; i++) {
      if (daemon.exitCode !== null) throw new Error(`dockerd exited ${daemon.exitCode}: ${fs.readFileSync(logFile, "utf8").slice(-1500)}`);
      if (fs.existsSync(socket) && (await against(["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 10_000 })).code === 0) break;
      if (i > 150) throw new Error(`dockerd did not answer on ${socket} in 30 s: ${fs.readFileSync(logFile, "utf8").slice(-1500)}`);
      await sleep(200);
    }
    log(`second dockerd ${name}: ${host}, netns ${name} (${link.ns}, this machine ${link.host}), pool ${pool}, data ${dataRoot}`);
    return {
      id,
      host,
      netns: name,
      hostAddress: link.host,
      nsAddress: link.ns,
      pool,
      docker: against,
      inNetns: (cmd, args) => spawn("ip", ["netns", "exec", name, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The named stages of multi-stage builds, each built here with `--target` and the build's own
 * inputs and tagged `<tagPrefix><n>`: a stage's chain is not in the final image's history, and B
 * needs it cached too. Same inputs, same steps: these are cache hits on this engine.
 */
export async function stageImages(builds: { dockerfile: string; context: string; args?: Record<string, string>; platform?: string }[], tagPrefix: string): Promise<string[]> {
  const tags: string[] = [];
  for (const b of builds) {
    const stages = [...fs.readFileSync(b.dockerfile, "utf8").matchAll(/^FROM\s+\S+\s+AS\s+([A-Za-z0-9_.-]+)\s*$/gim)].map((m) => m[1]!);
    for (const stage of stages) {
      const tag = `${tagPrefix}${tags.length}`;
      const args = ["build", "--force-rm", "-q", "--target", stage, "-t", tag, "-f", b.dockerfile, ...Object.entries(b.args ?? {}).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]), ...(b.platform ? ["--platform", b.platform] : []), b.context];
      const r = await docker(args, { timeoutMs: 30 * 60_000 });
      if (r.code !== 0) throw new Error(`docker build --target ${stage} (${b.dockerfile}): ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" ")}`);
      tags.push(tag);
    }
  }
  return tags;
}

/** The local images of a legacy build chain: the image and every ancestor this engine has an id for. */
async function chain(image: string): Promise<string[]> {
  const r = await docker(["history", "-q", "--no-trunc", image]);
  if (r.code !== 0) throw new Error(`docker history ${image}: ${r.stderr.trim()}`);
  return r.stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("sha256:"));
}

/**
 * Copy images from this machine's engine into B through the API: `refs` by name (B's builds say
 * FROM them), and for each of `caches` its whole build chain by id, so B's legacy builder finds
 * every step in its cache (moby image/tarexport: `save` records parent links among the saved
 * images, `load` restores them). Returns the bytes moved.
 */
export async function seedImages(b: SecondDaemon, opts: { refs: string[]; caches?: string[] }): Promise<number> {
  const ids = new Set<string>();
  for (const c of opts.caches ?? []) for (const id of await chain(c)) ids.add(id);
  const args = ["save", ...opts.refs, ...ids];
  const save = spawn("docker", args, { env: dockerEnv(), stdio: ["ignore", "pipe", "pipe"] });
  const load = spawn("docker", ["load", "-q"], { env: { ...dockerEnv(), DOCKER_HOST: b.host }, stdio: ["pipe", "pipe", "pipe"] });
  let bytes = 0;
  let err = "";
  save.stdout!.on("data", (d: Buffer) => (bytes += d.length));
  save.stderr!.on("data", (d: Buffer) => (err += d));
  load.stderr!.on("data", (d: Buffer) => (err += d));
  save.stdout!.pipe(load.stdin!);
  const done = (p: ChildProcess) => new Promise<number>((resolve) => p.on("close", (code) => resolve(code ?? 1)));
  const [s, l] = await Promise.all([done(save), done(load)]);
  if (s !== 0 || l !== 0) throw new Error(`docker save | docker -H ${b.host} load: ${err.trim()}`);
  return bytes;
}
