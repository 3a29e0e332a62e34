// The docker CLI, called with argument arrays only (never a shell string).
import { spawn } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, opts.timeoutMs)
      : undefined;
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const stderr = Buffer.concat(err).toString() + (timedOut ? `\n[killed after ${opts.timeoutMs} ms]` : "");
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

/** Legacy builder: the 28.x CLI has no buildx here, and the daemon's BuildKit is not needed. */
export const dockerEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DOCKER_BUILDKIT: "0" });

export function docker(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run("docker", args, { env: dockerEnv(), ...opts });
}

export class DockerError extends Error {
  readonly code: number;
  constructor(args: string[], result: RunResult) {
    const tail = (result.stderr || result.stdout).trim().split("\n").slice(-12).join("\n");
    super(`docker ${args.map((a) => (a.length > 120 ? a.slice(0, 117) + "..." : a)).join(" ")} failed (exit ${result.code})\n${tail}`);
    this.code = result.code;
  }
}

export async function dockerOk(args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await docker(args, opts);
  if (r.code !== 0) throw new DockerError(args, r);
  return r.stdout.trim();
}

/** Is a Docker engine reachable? Returns a reason when not. */
export async function engineProblem(): Promise<string | undefined> {
  try {
    const r = await docker(["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 15_000 });
    if (r.code === 0 && r.stdout.trim()) return undefined;
    return (r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ") || `docker info exited ${r.code}`;
  } catch (e) {
    return `docker CLI not runnable: ${(e as Error).message}`;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
