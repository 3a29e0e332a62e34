// The TEST-ONLY pipelock stand-in (test/e2e/pipelock-standin, Go) on loopback: building it, a work
// directory holding what the Pipelock component uploads (the CA, SEC1 key 0600), a hosts file and
// a trust directory, configs from the product's renderer with this directory's CA paths, and the
// running binary behind store/reload.ts's Sidecar seam (a restart is a new process on the same
// port, as `docker restart` keeps the container).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pipelockConfigToYaml, renderPipelockConfig, type PipelockConfig, type PipelockConfigInput } from "../../../contracts/pipelock.ts";
import { SINCE_START, type Sidecar } from "../../../store/reload.ts";
import type { TestUpstream } from "./https-upstream.ts";
import { createTestCa, type TestCa } from "./tls.ts";

export const STANDIN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../e2e/pipelock-standin");
export const GO_ENV = { ...process.env, CGO_ENABLED: "0" };
const exec = promisify(execFile);

/** go build the stand-in into a temp dir; returns the binary's path. */
export async function buildStandIn(): Promise<string> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "cb-pl-standin-bin-"));
  const bin = path.join(out, "pipelock");
  await exec("go", ["build", "-trimpath", "-o", bin, "."], { cwd: STANDIN_DIR, env: GO_ENV, timeout: 600_000 });
  return bin;
}

/** A work dir with the pipelock CA (SEC1 key, 0600, as the component uploads it), hosts file and trust dir. */
export async function standInWorkDir(upstream: Pick<TestUpstream, "caFile">, keyMode = 0o600): Promise<{ dir: string; ca: TestCa }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-pl-standin-"));
  const ca = await createTestCa("pipelock stand-in test CA");
  fs.mkdirSync(path.join(dir, "ca"));
  fs.writeFileSync(path.join(dir, "ca", "ca.pem"), ca.certPem);
  const sec1 = crypto.createPrivateKey(ca.keyPem).export({ format: "pem", type: "sec1" }) as string;
  fs.writeFileSync(path.join(dir, "ca", "ca-key.pem"), sec1, { mode: keyMode });
  fs.chmodSync(path.join(dir, "ca", "ca-key.pem"), keyMode);
  fs.writeFileSync(path.join(dir, "hosts"), "127.0.0.1 api.test.example other.example x.wild.test.example evil.example\n");
  fs.mkdirSync(path.join(dir, "trust"));
  fs.copyFileSync(upstream.caFile, path.join(dir, "trust", "upstream.pem"));
  return { dir, ca };
}

/** The rendered config with the CA paths of this work dir (the renderer pins the container paths) and a free metrics port. */
export function renderFor(dir: string, allowlist: string[], edit: (c: PipelockConfig) => void = () => {}, input: Partial<PipelockConfigInput> = {}): string {
  const c = renderPipelockConfig({ allowlist, ssrfIpAllowlist: ["127.0.0.1/32"], ...input });
  c.tls_interception.ca_cert = path.join(dir, "ca", "ca.pem");
  c.tls_interception.ca_key = path.join(dir, "ca", "ca-key.pem");
  // tests run several stand-ins on this machine's loopback at once (in a container it is its own)
  c.metrics_listen = "127.0.0.1:0";
  edit(c);
  return pipelockConfigToYaml(c);
}

/** The environment the stand-in runs with here: hosts file and trust dir of the work dir. */
export function standInEnv(dir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    PIPELOCK_STANDIN_HOSTS_FILE: path.join(dir, "hosts"),
    // as components/pipelock.ts: the system store plus a directory of extra CAs (here: the test upstream's)
    SSL_CERT_DIR: `/etc/ssl/certs:${path.join(dir, "trust")}`,
  };
}

/** The stand-in as a process behind the Sidecar seam; `listen` is fixed so a restart keeps the port. */
export class StandInProcess implements Sidecar {
  readonly name = "pipelock-standin";
  private child: ChildProcess | undefined;
  private exited = true;
  private all: string[] = [];
  private startAt = 0;
  restarts = 0;

  constructor(
    private readonly bin: string,
    private readonly configFile: string,
    private readonly listen: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Start, and wait for its startup event (or its exit). */
  async start(): Promise<void> {
    this.startAt = this.all.length;
    const child = spawn(this.bin, ["run", "--config", this.configFile, "--listen", this.listen], { env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.exited = false;
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = "";
      stream.on("data", (c: Buffer) => {
        const parts = (partial + c.toString()).split("\n");
        partial = parts.pop()!;
        this.all.push(...parts);
      });
    }
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.once("exit", () => (this.exited = true));
    const deadline = Date.now() + 20_000;
    while (!this.exited && Date.now() < deadline && !this.all.slice(this.startAt).some((l) => l.includes('"event":"startup"'))) await new Promise((r) => setTimeout(r, 20));
    if (this.exited) await gone;
  }

  /** Its process id (while it runs). */
  get pid(): number | undefined {
    return this.exited ? undefined : this.child?.pid;
  }

  /** Every line it logged since it (last) started. */
  get log(): string[] {
    return this.all.slice(this.startAt);
  }

  async running() {
    return !this.exited;
  }
  async mark() {
    return String(this.all.length);
  }
  async lines(mark: string) {
    return this.all.slice(mark === SINCE_START ? this.startAt : Number(mark));
  }
  async hangUp() {
    this.child?.kill("SIGHUP");
  }
  async restart() {
    this.restarts++;
    await this.stop();
    await this.start();
  }
  async stop() {
    if (!this.child || this.exited) return;
    const gone = new Promise((r) => this.child!.once("exit", r));
    this.child.kill("SIGTERM");
    await gone;
  }
}
