// Runs the git-gate's own scripts (sidecars/git-gate/entrypoint.sh + hooks) on this host:
// real git daemon on a random 127.0.0.1 port, real gitleaks, upstreams reached over real SSH.
// Also: an "agent" git environment whose only route to the upstreams is the gate's insteadOf.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { agentGitConfig, HISTORY_DEFAULTS } from "../../../contracts/git-gate.ts";
import { aptEnsure, freePort, killOnExit, waitForPort } from "./sshd.ts";

/** What the gate's scripts need on the host (the image installs the same). */
export function ensureGateTools(): void {
  aptEnsure("git", "git");
  aptEnsure("jq", "jq");
  aptEnsure("ssh", "openssh-client");
  aptEnsure("flock", "util-linux");
}

export const GATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../sidecars/git-gate");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a command, never throwing; killed after timeoutMs. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout!.on("data", (d) => (stdout += d));
    p.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 60_000} ms]`;
      p.kill("SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    p.on("error", (e) => (stderr += String(e)));
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
    if (p.stdin) {
      p.stdin.on("error", () => {}); // the command may exit before reading its input
      p.stdin.end(opts.input);
    }
  });
}

/** Like run, but throws with the output when the command fails. */
export async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A plain git environment for the test's own direct work on upstream repos (no gate). */
export function plainGitEnv(dir: string): NodeJS.ProcessEnv {
  const cfg = path.join(dir, "plain.gitconfig");
  if (!fs.existsSync(cfg)) fs.writeFileSync(cfg, "[user]\n\tname = Upstream Dev\n\temail = dev@example.test\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n");
  return { ...process.env, GIT_CONFIG_GLOBAL: cfg, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" };
}

export interface GateUpstreamSpec {
  name: string;
  url: string;
  /** Omit to write a config with no known_host_key (the gate must refuse to start). */
  known_host_key?: string;
  /** Path of the identity's private key; copied into the keys dir as <name>. */
  key: string;
  /** History policy; the contract's defaults (HISTORY_DEFAULTS) when left out. */
  protected_refs?: string[];
  allow_force_push?: boolean;
  allow_delete?: boolean;
}

export interface Gate {
  port: number;
  dir: string;
  base: string;
  state: string;
  auditLog: string;
  log(): string;
  /** The bare mirror of one upstream. */
  mirror(name: string): string;
  /** Env for an "agent" git: insteadOf to this gate, and no working ssh of its own. */
  agentEnv: NodeJS.ProcessEnv;
  agentGit(args: string[], cwd?: string): Promise<RunResult>;
  audit(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startGate(opts: { upstreams: GateUpstreamSpec[]; gitleaks: string; env?: NodeJS.ProcessEnv }): Promise<Gate> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-git-gate-"));
  const keys = path.join(dir, "keys");
  fs.mkdirSync(keys);
  for (const u of opts.upstreams) fs.copyFileSync(u.key, path.join(keys, u.name));
  const config = {
    version: 1,
    upstreams: opts.upstreams.map(({ name, url, known_host_key, protected_refs, allow_force_push, allow_delete }) => ({
      name,
      url,
      known_host_key,
      protected_refs: protected_refs ?? [...HISTORY_DEFAULTS.protected_refs],
      allow_force_push: allow_force_push ?? HISTORY_DEFAULTS.allow_force_push,
      allow_delete: allow_delete ?? HISTORY_DEFAULTS.allow_delete,
    })),
  };
  fs.writeFileSync(path.join(dir, "upstreams.json"), JSON.stringify(config, null, 2));
  const base = path.join(dir, "srv");
  const state = path.join(dir, "state");
  const auditLog = path.join(dir, "audit.jsonl");
  const logFile = path.join(dir, "daemon.log");
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");
  // freePort releases the port it found: a gate started concurrently (ava runs a file's tests at
  // once) may take it first. Then our daemon cannot bind and exits, while the port answers —
  // someone else's gate. So: up = OUR entrypoint said "serving", the port answers, and our daemon
  // is still running a moment later; a lost race is retried on another port.
  let port = 0;
  let proc!: ChildProcess;
  let exited: Promise<number | null> = Promise.resolve(null);
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      GIT_GATE_CONFIG: path.join(dir, "upstreams.json"),
      GIT_GATE_KEYS_DIR: keys,
      GIT_GATE_BASE: base,
      GIT_GATE_STATE: state,
      GIT_GATE_GITLEAKS: opts.gitleaks,
      GIT_GATE_AUDIT_LOG: auditLog,
      GIT_GATE_LISTEN: "127.0.0.1",
      GIT_GATE_PORT: String(port),
      GIT_GATE_TIMEOUT: "30",
      ...opts.env,
    };
    fs.writeFileSync(logFile, "");
    const out = fs.openSync(logFile, "a");
    const p: ChildProcess = spawn("bash", [path.join(GATE_DIR, "entrypoint.sh")], { env, stdio: ["ignore", out, out] });
    fs.closeSync(out);
    killOnExit(p);
    const gone = new Promise<number | null>((resolve) => p.once("exit", (code) => resolve(code)));
    const serving = (async () => {
      for (let i = 0; i < 200 && !/git-gate: serving /.test(log()); i++) await new Promise((r) => setTimeout(r, 50));
      await waitForPort(port, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      return "up" as const;
    })();
    const started = await Promise.race([serving, gone]);
    if (started === "up" && p.exitCode === null && p.signalCode === null) {
      [proc, exited] = [p, gone];
      break;
    }
    const text = log();
    if (attempt < 3 && /Address already in use|unable to allocate any listen sockets/.test(text)) continue;
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`git-gate exited ${started === "up" ? p.exitCode : started} before listening:\n${text}`);
  }

  const agentCfg = path.join(dir, "agent.gitconfig");
  fs.writeFileSync(
    agentCfg,
    "[user]\n\tname = Agent\n\temail = agent@example.test\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n\n" +
      agentGitConfig(opts.upstreams, "127.0.0.1", port),
  );
  // The agent has no ssh route of its own: anything not rewritten to the gate fails.
  const agentEnv: NodeJS.ProcessEnv = { ...process.env, GIT_CONFIG_GLOBAL: agentCfg, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0", GIT_SSH_COMMAND: "false" };
  const agentHome = path.join(dir, "agent");
  fs.mkdirSync(agentHome);
  let stopped = false;
  return {
    port,
    dir,
    base,
    state,
    auditLog,
    log,
    mirror: (name) => path.join(base, `${name}.git`),
    agentEnv,
    agentGit: (args, cwd = agentHome) => run("git", args, { cwd, env: agentEnv, timeoutMs: 60_000 }),
    audit: () =>
      fs.existsSync(auditLog)
        ? fs
            .readFileSync(auditLog, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l))
        : [],
    async stop() {
      if (stopped) return;
      stopped = true;
      proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      // Close the gate's multiplexed upstream connections (ControlPersist masters).
      if (fs.existsSync(state)) {
        for (const f of fs.readdirSync(state).filter((f) => f.startsWith("cm-"))) {
          await run("ssh", ["-F", "/dev/null", "-o", `ControlPath=${path.join(state, f)}`, "-O", "exit", "gate-upstream"], { timeoutMs: 5000 });
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
