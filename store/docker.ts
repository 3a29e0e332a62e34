// The bottle's state through the Docker API: every read and write of its volumes goes through
// `docker exec` into the bottle's state container (components/state.ts), on whichever engine the
// bottle runs — this machine's, or one the docker CLI reaches over ssh:// or tcp:// with TLS. The
// LiveConfigFile provider (at `pulumi up`) and the operator CLI use it; the supervise sidecar
// keeps localIo over the volumes it mounts itself.
//
// The guarantees are store/io.ts's: a write is a temp file in the same directory of the volume,
// synced, then renamed over the target; create-once links a complete temp file to the final
// name (which fails if it exists); locks are directories (mkdir is atomic), so the supervise
// container's localIo and this serialise on the same lock. Each operation is one short POSIX
// shell script run by the state image's own sh and coreutils, its arguments passed as "$1"…
// (never spliced into the script), content on stdin.
//
// Built-in modules are imported whole: the LiveConfigFile provider's code (which calls this) is
// serialized by Pulumi, which can capture a module but not a function picked out of one.
import childProcess from "node:child_process";
import { LOCK_HEARTBEAT_MS, LOCK_STALE_MS, LockBusyError, type StateIo } from "./io.ts";

/**
 * Which Docker engine, in the docker provider's own terms (its `host`, `context` and `certPath`
 * settings). Nothing set: the provider's default, which `defaultEndpoint` spells out.
 */
export interface DockerEndpoint {
  /** Daemon address: unix:///var/run/docker.sock, ssh://user@box, tcp://box:2376. */
  host?: string;
  /** A docker CLI context (`docker context ls`); wins over `host`, as in the provider. */
  context?: string;
  /** Directory holding ca.pem, cert.pem and key.pem for tcp:// with TLS. */
  certPath?: string;
}

/** Where the docker provider goes when it is told nothing: DOCKER_CONTEXT, else DOCKER_HOST, else the local socket (never the CLI's current context, which the provider does not read). */
export function defaultEndpoint(env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  if (env.DOCKER_CONTEXT) return { context: env.DOCKER_CONTEXT };
  return { host: env.DOCKER_HOST || "unix:///var/run/docker.sock", ...(env.DOCKER_CERT_PATH && env.DOCKER_TLS_VERIFY ? { certPath: env.DOCKER_CERT_PATH } : {}) };
}

/** The docker CLI's environment for an endpoint: exactly one of DOCKER_CONTEXT and DOCKER_HOST (the CLI refuses both). */
export function dockerCliEnv(endpoint: DockerEndpoint, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const k of ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"]) delete out[k];
  if (endpoint.context) out.DOCKER_CONTEXT = endpoint.context;
  else if (endpoint.host) out.DOCKER_HOST = endpoint.host;
  if (endpoint.certPath) {
    out.DOCKER_CERT_PATH = endpoint.certPath;
    out.DOCKER_TLS_VERIFY = "1";
  }
  return out;
}

/** `s` as one word of a POSIX shell command line. */
export const shellWord = (s: string) => (/^[A-Za-z0-9_./:@=+,-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

/** The docker command line that reaches an endpoint, for commands told to the operator (`<this> exec -it … claude`). */
export function dockerCommand(endpoint: DockerEndpoint): string {
  if (endpoint.context) return `docker --context ${shellWord(endpoint.context)}`;
  const tls = endpoint.certPath ? `DOCKER_CERT_PATH=${shellWord(endpoint.certPath)} DOCKER_TLS_VERIFY=1 ` : "";
  if (!endpoint.host || (endpoint.host === "unix:///var/run/docker.sock" && !tls)) return "docker";
  return `${tls}docker -H ${shellWord(endpoint.host)}`;
}

/** An endpoint for messages: the context's name, or the daemon address. */
export function endpointLabel(endpoint: DockerEndpoint): string {
  return endpoint.context ? `context ${endpoint.context}` : endpoint.host ?? "the default Docker engine";
}

export interface DockerRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run the docker CLI against an endpoint; never throws for a non-zero exit (the caller reads `code`). */
export function runDocker(endpoint: DockerEndpoint, args: string[], opts: { input?: string; bin?: string; timeoutMs?: number } = {}): Promise<DockerRun> {
  return new Promise((resolve) => {
    const child = childProcess.spawn(opts.bin ?? "docker", args, { env: dockerCliEnv(endpoint), stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout: Buffer.alloc(0), stderr: `cannot run ${opts.bin ?? "docker"}: ${e.message}` });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    if (child.stdin) {
      child.stdin.on("error", () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

/** Exit codes of the scripts below (outside what sh, coreutils and `docker exec` use). */
const NOT_FOUND = 66;
const EXISTS = 67;
const BUSY = 68;

/** The scripts: $1 is always the path inside the state container. */
const SCRIPTS = {
  read: `[ -f "$1" ] || exit ${NOT_FOUND}; exec cat -- "$1"`,
  tail: `[ -f "$1" ] || exit ${NOT_FOUND}; exec tail -c "$2" -- "$1"`,
  // stdin → temp file next to $1, mode $2, synced, renamed over $1, directory synced
  write: `set -e; d=$(dirname -- "$1"); mkdir -p -- "$d"; t="$d/.$(basename -- "$1").$$.tmp"; trap 'rm -f -- "$t"' EXIT
cat > "$t"; chmod "$2" "$t"; sync -- "$t"; mv -f -- "$t" "$1"; sync -- "$d"`,
  // stdin → complete temp file, hard-linked to $1 only if $1 does not exist yet
  create: `set -e; d=$(dirname -- "$1"); mkdir -p -- "$d"; t="$d/.$(basename -- "$1").$$.tmp"; trap 'rm -f -- "$t"' EXIT
cat > "$t"; chmod 0644 "$t"; sync -- "$t"
if ln -- "$t" "$1" 2>/dev/null; then sync -- "$d"; exit 0; fi
[ -e "$1" ] && exit ${EXISTS}; ln -- "$t" "$1"`,
  append: `set -e; mkdir -p -- "$(dirname -- "$1")"; cat >> "$1"; sync -- "$1"`,
  list: `cd -- "$1" 2>/dev/null || exit ${NOT_FOUND}
for f in * .*; do case "$f" in .|..) continue;; esac; { [ -e "$f" ] || [ -h "$f" ]; } || continue; printf '%s\\0' "$f"; done`,
  // name NUL base64(content) NUL per regular file; each file opened once (a rename meanwhile is seen whole or not at all)
  readAll: `cd -- "$1" 2>/dev/null || exit ${NOT_FOUND}
for f in * .*; do [ -f "$f" ] || continue; b=$(base64 -w0 < "$f" 2>/dev/null) || continue; printf '%s\\0%s\\0' "$f" "$b"; done`,
  stamp: `[ -e "$1" ] || exit ${NOT_FOUND}; exec stat -c '%i:%s:%y' -- "$1"`,
  // one attempt: take the lock, or take over one untouched for $2 seconds (its holder died)
  lock: `mkdir -p -- "$(dirname -- "$1")"; mkdir -- "$1" 2>/dev/null && exit 0
m=$(stat -c %Y -- "$1" 2>/dev/null) || exit ${BUSY}
[ $(( $(date +%s) - m )) -gt "$2" ] || exit ${BUSY}
rm -rf -- "$1"; mkdir -- "$1" 2>/dev/null && exit 0; exit ${BUSY}`,
  touch: `touch -c -- "$1"`,
  unlock: `rm -rf -- "$1"`,
} as const;

/**
 * The bottle's state through `docker exec` into its state container on `endpoint` (paths are
 * the container's: store/layout.ts stateLayout()). `watch` cannot see the volume from here and
 * reports nothing: callers poll, as they must anyway.
 */
export function dockerIo(container: string, endpoint: DockerEndpoint = {}, opts: { bin?: string } = {}): StateIo {
  const exec = async (op: keyof typeof SCRIPTS, args: string[], input?: string): Promise<DockerRun> =>
    runDocker(endpoint, ["exec", ...(input === undefined ? [] : ["-i"]), container, "sh", "-c", SCRIPTS[op], "sh", ...args], { input, bin: opts.bin });
  const fail = (op: string, file: string, r: DockerRun): never => {
    const why = r.stderr.trim().split("\n").filter(Boolean).pop() ?? `exit ${r.code}`;
    throw new Error(`${op} ${file} in ${container} (${endpointLabel(endpoint)}): ${why}`);
  };
  const text = async (op: "read" | "tail" | "stamp", file: string, args: string[] = []) => {
    const r = await exec(op, [file, ...args]);
    if (r.code === NOT_FOUND) return undefined;
    if (r.code !== 0) fail(op, file, r);
    return r.stdout.toString("utf8");
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return {
    read: (file) => text("read", file),
    tail: (file, bytes) => text("tail", file, [String(Math.max(1, Math.floor(bytes)))]),
    async write(file, content, mode = 0o644) {
      const r = await exec("write", [file, mode.toString(8).padStart(4, "0")], content);
      if (r.code !== 0) fail("write", file, r);
    },
    async create(file, content) {
      const r = await exec("create", [file], content);
      if (r.code === EXISTS) return false;
      if (r.code !== 0) fail("create", file, r);
      return true;
    },
    async append(file, content) {
      const r = await exec("append", [file], content);
      if (r.code !== 0) fail("append", file, r);
    },
    async list(dir) {
      const r = await exec("list", [dir]);
      if (r.code === NOT_FOUND) return [];
      if (r.code !== 0) fail("list", dir, r);
      return r.stdout.toString("utf8").split("\0").filter(Boolean);
    },
    async readAll(dir) {
      const r = await exec("readAll", [dir]);
      if (r.code === NOT_FOUND) return {};
      if (r.code !== 0) fail("readAll", dir, r);
      const parts = r.stdout.toString("utf8").split("\0");
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i]!] = Buffer.from(parts[i + 1]!, "base64").toString("utf8");
      return out;
    },
    async stamp(file) {
      return (await text("stamp", file))?.trim();
    },
    async lock(lock, fn, lockOpts = {}) {
      const deadline = Date.now() + (lockOpts.waitMs ?? 10_000);
      for (;;) {
        const r = await exec("lock", [lock, String(Math.round(LOCK_STALE_MS / 1000))]);
        if (r.code === 0) break;
        if (r.code !== BUSY) fail("lock", lock, r);
        if (Date.now() >= deadline) throw new LockBusyError(lock);
        await sleep(50 + Math.random() * 100);
      }
      const heartbeat = setInterval(() => void exec("touch", [lock]), LOCK_HEARTBEAT_MS);
      heartbeat.unref();
      try {
        return await fn();
      } finally {
        clearInterval(heartbeat);
        await exec("unlock", [lock]);
      }
    },
    watch: () => () => {},
  };
}
