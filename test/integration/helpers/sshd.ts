// A real OpenSSH server (Debian's openssh-server) on 127.0.0.1 for tests: its own host key,
// one dedicated authorized client key, a temp sshd_config, running as the current user.
// Used as the "real upstream" of git-gate integration tests and benchmarks.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const SSHD = "/usr/sbin/sshd";

function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || String(r.error ?? "")).trim().slice(-800)}`);
  return r.stdout;
}

/** Make sure `binary` exists, installing Debian package `pkg` with apt-get (as root) if not. */
export function aptEnsure(binary: string, pkg: string): string {
  const found = binary.startsWith("/") ? (fs.existsSync(binary) ? binary : undefined) : (process.env.PATH ?? "").split(":").map((d) => path.join(d, binary)).find((p) => fs.existsSync(p));
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new Error(`${binary} is missing: install Debian's ${pkg} (sudo apt-get install -y ${pkg}) to run the git-gate tests`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", "--no-install-recommends", pkg], { encoding: "utf8", env, timeout: 600_000 });
  let r = install();
  if (r.status !== 0) {
    sh("apt-get", ["-o", "DPkg::Lock::Timeout=300", "update", "-q"], { env, timeoutMs: 600_000 });
    r = install();
  }
  if (r.status !== 0) throw new Error(`apt-get install ${pkg} failed: ${(r.stderr || r.stdout).trim().slice(-800)}`);
  return aptEnsure(binary, pkg);
}

/** Install openssh-server when missing (as root, via apt-get), or explain what to install. */
export function ensureSshd(): string {
  aptEnsure("ssh-keygen", "openssh-client");
  return aptEnsure(SSHD, "openssh-server");
}

const live = new Set<ChildProcess>();
let exitHook = false;
/** If the test process dies without teardown (uncaught exception), don't leave `proc` behind. */
export function killOnExit(proc: ChildProcess): void {
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => live.forEach((p) => p.kill("SIGKILL")));
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolve once `port` answers with `expect` as its first bytes (or at all, when omitted). */
export async function waitForPort(port: number, timeoutMs = 10_000, expect?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1");
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1000, () => done(false));
      sock.on("error", () => done(false));
      if (expect) sock.once("data", (d) => done(d.toString().startsWith(expect)));
      else sock.on("connect", () => done(true));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Sshd {
  host: "127.0.0.1";
  port: number;
  user: string;
  /** "ssh-ed25519 AAAA…" — the server's host key, as a KnownHostKey. */
  hostKey: string;
  /** Private key authorized to log in (mode 0600). */
  clientKey: string;
  dir: string;
  /** ssh://user@127.0.0.1:port<absPath> */
  url(absPath: string): string;
  /**
   * A new client key that may only reach the repo at `repoPath` (a forced command, like a
   * forge's per-repository deploy key). Returns the private key path.
   */
  authorizeDeployKey(repoPath: string): string;
  /** Stop the server and drop every open session (so multiplexed connections die too). */
  stop(): Promise<void>;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Start sshd on a free 127.0.0.1 port with a fresh host key and client key under a temp dir. */
export async function startSshd(): Promise<Sshd> {
  ensureSshd();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-sshd-"));
  const hostKeyFile = path.join(dir, "host_ed25519");
  const clientKey = path.join(dir, "client_ed25519");
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cb-test-host", "-f", hostKeyFile]);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cb-test-client", "-f", clientKey]);
  const clientPub = fs.readFileSync(`${clientKey}.pub`, "utf8").trim();
  fs.writeFileSync(path.join(dir, "authorized_keys"), `restrict ${clientPub}\n`, { mode: 0o600 });
  const user = os.userInfo().username;
  if (process.getuid?.() === 0) fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege-separation dir
  const port = await freePort();
  const config = [
    `ListenAddress 127.0.0.1`,
    `Port ${port}`,
    `HostKey ${hostKeyFile}`,
    `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
    `AllowUsers ${user}`,
    `StrictModes no`,
    `UsePAM no`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `PermitRootLogin prohibit-password`,
    `PidFile ${path.join(dir, "sshd.pid")}`,
    `MaxStartups 100:30:200`,
    `MaxSessions 50`,
    `LogLevel VERBOSE`,
  ].join("\n");
  const configFile = path.join(dir, "sshd_config");
  fs.writeFileSync(configFile, config + "\n");
  sh(SSHD, ["-t", "-f", configFile]);
  const log = fs.openSync(path.join(dir, "sshd.log"), "a");
  const proc: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", configFile], { stdio: ["ignore", log, log] });
  fs.closeSync(log);
  killOnExit(proc);
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  try {
    await waitForPort(port, 10_000, "SSH-");
  } catch (e) {
    proc.kill("SIGKILL");
    throw new Error(`sshd did not start: ${(e as Error).message}\n${fs.readFileSync(path.join(dir, "sshd.log"), "utf8").slice(-1500)}`);
  }
  const hostKey = fs.readFileSync(`${hostKeyFile}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  let stopped = false;
  let deployKeys = 0;
  return {
    host: "127.0.0.1",
    port,
    user,
    hostKey,
    clientKey,
    dir,
    url: (absPath) => `ssh://${user}@127.0.0.1:${port}${absPath}`,
    authorizeDeployKey(repoPath) {
      const key = path.join(dir, `deploy_${++deployKeys}`);
      sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `cb-test-deploy-${deployKeys}`, "-f", key]);
      const gate = path.join(dir, `deploy_${deployKeys}.sh`);
      // Allow only git-upload-pack / git-receive-pack of exactly this repo.
      fs.writeFileSync(
        gate,
        `#!/bin/sh\ncase "$SSH_ORIGINAL_COMMAND" in\n  "git-upload-pack '${repoPath}'"|"git-receive-pack '${repoPath}'") exec git-shell -c "$SSH_ORIGINAL_COMMAND" ;;\n  *) echo "deploy key ${deployKeys} is not valid for: $SSH_ORIGINAL_COMMAND" >&2; exit 1 ;;\nesac\n`,
        { mode: 0o755 },
      );
      fs.appendFileSync(path.join(dir, "authorized_keys"), `restrict,command="${gate}" ${fs.readFileSync(`${key}.pub`, "utf8").trim()}\n`);
      return key;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // Per-connection sshd processes outlive the listener (re-parented to init): collect the
      // whole tree first, then end it, so open sessions drop too.
      const tree: number[] = [];
      const walk = (p: number) => childrenOf(p).forEach((c) => (tree.push(c), walk(c)));
      walk(proc.pid!);
      proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      for (const child of tree) {
        try {
          process.kill(child, "SIGTERM");
        } catch {
          /* gone */
        }
      }
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    },
  };
}
