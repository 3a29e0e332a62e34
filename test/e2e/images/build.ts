/**
 * Hermetic images for the e2e tier (no image registry needed).
 *
 *   BASE_IMAGE      cbtest/base:bookworm-<hash>          mmdebstrap minbase bookworm + ca-certificates, docker-imported
 *   PIPELOCK_IMAGE  CBTEST_PIPELOCK_IMAGE / CBTEST_PIPELOCK_BINARY (the real pipelock, when the operator has one), else
 *                   cbtest/pipelock-standin:<hash>       FROM scratch, /pipelock = the TEST-ONLY stand-in (../pipelock-standin, Go)
 *   GITLEAKS_IMAGE  cbtest/gitleaks-bin:<ver>-<hash>     FROM scratch, only /usr/bin/gitleaks (static, CGO_ENABLED=0)
 *
 * <hash> is the first 12 hex chars of sha256 over every input of the recipe (this file's recipe constants, the apt
 * mirror lines, the Go module versions). A warm run is one `docker image inspect` call.
 *
 * Library:  import { ensureTestImages } from "../images/build.ts";  const imgs = await ensureTestImages();
 * CLI:      node --import tsx test/e2e/images/build.ts [--verify] [--json] [--clean] [--quiet]
 *
 * See test/e2e/README.md for details, measured times and what is (not) available here.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
// The release the gate is pinned to (the newest v8 the Go module proxy served on 2026-11-22).
import { GITLEAKS_MODULE, GITLEAKS_VERSION } from "../../../contracts/git-gate.ts";

// ---------------------------------------------------------------------------------------------------------------
// Recipe (changing anything here changes the hash, hence the tag, hence a rebuild)
// ---------------------------------------------------------------------------------------------------------------

/** bump to force a rebuild of one image kind */
const BASE_RECIPE = 2;
const GO_RECIPE = 1;
const SUITE = "bookworm";

/** dpkg path filters: also land in /etc/dpkg/dpkg.cfg.d/99mmdebstrap, so derived images inherit them. */
const DPKG_OPTS = [
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/locale/*",
  "path-include=/usr/share/locale/locale.alias",
  "path-exclude=/usr/share/doc/*",
  "path-include=/usr/share/doc/*/copyright",
  "path-exclude=/usr/share/info/*",
];

/** The apt config the official debian images carry (mmdebstrap images have none). */
const APT_CONF: Record<string, string> = {
  "docker-clean": [
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
    'Dir::Cache::pkgcache "";',
    'Dir::Cache::srcpkgcache "";',
    "",
  ].join("\n"),
  "docker-no-languages": 'Acquire::Languages "none";\n',
  "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n',
  "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
};

/**
 * pipelock is never fetched from a registry (its binary and module are not obtainable here, and the
 * project does not build third-party code it cannot get). The real binary comes only from the
 * operator (CBTEST_PIPELOCK_IMAGE / CBTEST_PIPELOCK_BINARY); otherwise the TEST-ONLY stand-in.
 */
const STANDIN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "pipelock-standin");


// ---------------------------------------------------------------------------------------------------------------

export interface TestImages {
  /** build-arg name -> local image ref */
  BASE_IMAGE: string;
  /** the real pipelock when the operator gave one, else the TEST-ONLY stand-in (`pipelockStandIn` says why) */
  PIPELOCK_IMAGE: string;
  GITLEAKS_IMAGE: string;
  /** set when PIPELOCK_IMAGE is the stand-in: why the real pipelock is not in this run */
  pipelockStandIn?: string;
}

export interface EnsureOptions {
  /** print progress (default: true) */
  log?: (line: string) => void;
  /** also build a throw-away image FROM base + apt-get install nodejs npm git, report its time, remove it */
  verify?: boolean;
}

export function cacheDir(): string {
  const root = process.env.CLAUDE_BOTTLE_CACHE || path.join(os.homedir(), ".cache", "claude-bottle");
  return path.join(root, "cbtest-images");
}

// ---------------------------------------------------------------------------------------------------------------
// process helpers (argument arrays only, never a shell string)
// ---------------------------------------------------------------------------------------------------------------

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number; logFile?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (child.stdin) {
      child.stdin.on("error", () => {}); // child may exit before reading its input (EPIPE)
      child.stdin.end(opts.input);
    }
    let stdout = "";
    let stderr = "";
    const log = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: "a" }) : undefined;
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      log?.write(d);
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      log?.write(d);
    });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          child.kill("SIGTERM");
        }, opts.timeoutMs)
      : undefined;
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      log?.end();
      reject(e);
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      log?.end();
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const tail = (r.stderr || r.stdout).trim().split("\n").slice(-15).join("\n");
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code})${opts.logFile ? ` [log: ${opts.logFile}]` : ""}\n${tail}`);
  }
  return r;
}

const dockerEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DOCKER_BUILDKIT: "0" });

function sha(...parts: (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(typeof p === "string" ? p : p);
    h.update("\0");
  }
  return h.digest("hex").slice(0, 12);
}

function secs(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

async function imagesPresent(refs: string[]): Promise<Set<string>> {
  if (refs.length === 0) return new Set();
  // one call for all; exit 1 when any is missing, but stdout still lists the found ones
  const r = await run("docker", ["image", "inspect", "--format", "{{json .RepoTags}}", ...refs], { env: dockerEnv() });
  const found = new Set<string>();
  for (const line of r.stdout.split("\n")) {
    if (!line.trim()) continue;
    try {
      for (const t of JSON.parse(line) as string[]) found.add(t);
    } catch {
      /* ignore */
    }
  }
  return new Set(refs.filter((x) => found.has(x)));
}

// ---------------------------------------------------------------------------------------------------------------
// apt mirror lines, read from the host at run time (never hard-coded)
// ---------------------------------------------------------------------------------------------------------------

export function hostAptLines(suite = SUITE): string[] {
  const wanted = new Set([suite, `${suite}-updates`, `${suite}-security`]);
  const entries: { uri: string; suite: string }[] = [];
  const add = (uri: string, s: string) => {
    uri = uri.replace(/\/+$/, "");
    if (wanted.has(s) && !entries.some((e) => e.uri === uri && e.suite === s)) entries.push({ uri, suite: s });
  };
  const dir = "/etc/apt/sources.list.d";
  const files: string[] = [];
  if (fs.existsSync("/etc/apt/sources.list")) files.push("/etc/apt/sources.list");
  if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir).sort()) files.push(path.join(dir, f));
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    if (f.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (k: string) =>
          stanza
            .split("\n")
            .find((l) => l.toLowerCase().startsWith(k.toLowerCase() + ":"))
            ?.slice(k.length + 1)
            .trim();
        if (!/(^|\s)deb(\s|$)/.test(field("Types") ?? "")) continue;
        if ((field("Enabled") ?? "yes").toLowerCase() === "no") continue;
        for (const uri of (field("URIs") ?? "").split(/\s+/).filter(Boolean))
          for (const s of (field("Suites") ?? "").split(/\s+/).filter(Boolean)) add(uri, s);
      }
    } else if (f.endsWith(".list")) {
      for (const raw of text.split("\n")) {
        const line = raw.replace(/#.*/, "").trim();
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m) add(m[1]!, m[2]!);
      }
    }
  }
  if (!entries.some((e) => e.suite === suite))
    throw new Error(`no apt source for suite '${suite}' found in /etc/apt/sources.list(.d); cannot run mmdebstrap`);
  const order = (s: string) => (s === suite ? 0 : s.endsWith("-updates") ? 1 : 2);
  entries.sort((a, b) => order(a.suite) - order(b.suite));
  return entries.map((e) => `deb ${e.uri} ${e.suite} main`);
}

// ---------------------------------------------------------------------------------------------------------------
// a. base image
// ---------------------------------------------------------------------------------------------------------------

function baseRecipe() {
  const aptLines = hostAptLines();
  const hash = sha(JSON.stringify({ BASE_RECIPE, SUITE, DPKG_OPTS, APT_CONF, aptLines, include: ["ca-certificates"] }));
  return { aptLines, hash, ref: `cbtest/base:${SUITE}-${hash}` };
}

async function buildBase(r: ReturnType<typeof baseRecipe>, log: (s: string) => void): Promise<void> {
  const dir = cacheDir();
  fs.mkdirSync(dir, { recursive: true });
  const tar = path.join(dir, `base-${SUITE}-${r.hash}.tar`);
  if (!fs.existsSync(tar)) {
    const which = await run("sh", ["-c", "command -v mmdebstrap"]);
    if (which.code !== 0) throw new Error("mmdebstrap not installed (run test/e2e/images/ensure-engine.sh, or apt-get install mmdebstrap)");
    const t0 = Date.now();
    log(`base: mmdebstrap ${SUITE} minbase -> ${tar} (cold, ~25 s)`);
    const conf = fs.mkdtempSync(path.join(os.tmpdir(), "cbtest-aptconf-"));
    try {
      for (const [name, body] of Object.entries(APT_CONF)) fs.writeFileSync(path.join(conf, name), body);
      const partial = `${tar}.partial`;
      fs.rmSync(partial, { force: true });
      const args = [
        "--variant=minbase",
        "--include=ca-certificates",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        ...DPKG_OPTS.map((o) => `--dpkgopt=${o}`),
        `--customize-hook=copy-in ${Object.keys(APT_CONF)
          .map((n) => path.join(conf, n))
          .join(" ")} /etc/apt/apt.conf.d/`,
        // with docker-clean's `Dir::Cache::pkgcache ""` in place, mmdebstrap's final `apt-get clean` no longer
        // finds the *.bin caches (74 MB) that its own apt runs left, so delete them here
        '--customize-hook=rm -f "$1"/var/cache/apt/*.bin',
        "--format=tar",
        SUITE,
        partial,
        ...r.aptLines,
      ];
      await must("mmdebstrap", args, { logFile: path.join(dir, "mmdebstrap.log"), timeoutMs: 15 * 60_000 });
      fs.renameSync(partial, tar);
    } finally {
      fs.rmSync(conf, { recursive: true, force: true });
    }
    log(`base: mmdebstrap done in ${secs(t0)} (${(fs.statSync(tar).size / 1e6).toFixed(1)} MB tar)`);
  } else {
    log(`base: reusing cached tar ${tar}`);
  }
  const t1 = Date.now();
  await must(
    "docker",
    ["import", "-c", 'CMD ["bash"]', "-c", `LABEL cbtest.hash=${r.hash}`, "-c", "ENV LANG=C.UTF-8", tar, r.ref],
    { env: dockerEnv() },
  );
  log(`base: docker import -> ${r.ref} in ${secs(t1)}`);
}

async function verifyBase(baseRef: string, log: (s: string) => void): Promise<number> {
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), "cbtest-verify-"));
  const tag = `cbtest/verify-apt:${baseRef.split(":").pop()}`;
  fs.writeFileSync(
    path.join(ctx, "Dockerfile"),
    [
      "ARG BASE_IMAGE",
      "FROM ${BASE_IMAGE}",
      "ENV DEBIAN_FRONTEND=noninteractive",
      "RUN apt-get update \\",
      " && apt-get install -y --no-install-recommends nodejs npm git \\",
      " && rm -rf /var/lib/apt/lists/*",
      "RUN node --version && npm --version && git --version && ls /var/cache/apt/archives/*.deb 2>/dev/null | wc -l",
      "",
    ].join("\n"),
  );
  const t0 = Date.now();
  log(`verify: docker build FROM ${baseRef} + apt-get install nodejs npm git ...`);
  try {
    const r = await must("docker", ["build", "--rm", "--force-rm", "--build-arg", `BASE_IMAGE=${baseRef}`, "-t", tag, ctx], {
      env: dockerEnv(),
      logFile: path.join(cacheDir(), "verify-build.log"),
      timeoutMs: 15 * 60_000,
    });
    const ms = Date.now() - t0;
    const size = (await must("docker", ["image", "inspect", "-f", "{{.Size}}", tag], { env: dockerEnv() })).stdout.trim();
    const versions = r.stdout
      .split("\n")
      .filter((l) => /^v\d|^\d+\.\d+\.\d+$|^git version|^\d+$/.test(l.trim()))
      .join(", ");
    log(`verify: OK in ${(ms / 1000).toFixed(1)} s, image ${(Number(size) / 1e6).toFixed(0)} MB (${versions}; leftover .debs last)`);
    return ms;
  } finally {
    await run("docker", ["rmi", "-f", tag], { env: dockerEnv() });
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// b/c. static Go binaries in FROM-scratch images
// ---------------------------------------------------------------------------------------------------------------

async function goInstallStatic(pkg: string, version: string, ldflags: string, binName: string): Promise<string> {
  const gobin = fs.mkdtempSync(path.join(os.tmpdir(), "cbtest-gobin-"));
  await must("go", ["install", "-trimpath", `-ldflags=-s -w ${ldflags}`.trim(), `${pkg}@${version}`], {
    env: { ...process.env, GOBIN: gobin, CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" },
    cwd: os.tmpdir(),
    logFile: path.join(cacheDir(), `go-install-${binName}.log`),
    timeoutMs: 20 * 60_000,
  });
  const bin = path.join(gobin, binName);
  if (!fs.existsSync(bin)) throw new Error(`go install ${pkg}@${version} produced no ${binName}`);
  return bin;
}

/** docker build FROM scratch with exactly one file at `dest`. */
async function scratchImage(bin: string, dest: string, ref: string, hash: string, entrypoint: boolean, standIn?: string): Promise<void> {
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), "cbtest-scratch-"));
  try {
    fs.copyFileSync(bin, path.join(ctx, "bin"));
    fs.chmodSync(path.join(ctx, "bin"), 0o755);
    const lines = ["FROM scratch", `COPY bin ${dest}`, `LABEL cbtest.hash=${hash}`];
    if (entrypoint) lines.push(`ENTRYPOINT ["${dest}"]`);
    if (standIn) lines.push(`LABEL dev.claude-bottle.e2e-standin=${JSON.stringify(standIn)}`);
    fs.writeFileSync(path.join(ctx, "Dockerfile"), lines.join("\n") + "\n");
    await must("docker", ["build", "--rm", "--force-rm", "-t", ref, ctx], { env: dockerEnv() });
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

function gitleaksRecipe() {
  const ldflags = `-X ${GITLEAKS_MODULE}/version.Version=${GITLEAKS_VERSION.replace(/^v/, "")}`;
  const hash = sha(JSON.stringify({ GO_RECIPE, GITLEAKS_MODULE, GITLEAKS_VERSION, ldflags }));
  return { ldflags, hash, ref: `cbtest/gitleaks-bin:${GITLEAKS_VERSION}-${hash}` };
}

async function buildGitleaks(r: ReturnType<typeof gitleaksRecipe>, log: (s: string) => void): Promise<void> {
  const t0 = Date.now();
  log(`gitleaks: go install ${GITLEAKS_MODULE}@${GITLEAKS_VERSION} (CGO_ENABLED=0; cold ~1-2 min) ...`);
  const bin = await goInstallStatic(GITLEAKS_MODULE, GITLEAKS_VERSION, r.ldflags, "gitleaks");
  try {
    log(`gitleaks: built in ${secs(t0)}; docker build FROM scratch -> ${r.ref}`);
    await scratchImage(bin, "/usr/bin/gitleaks", r.ref, r.hash, true);
    const v = await must("docker", ["run", "--rm", "--network", "none", r.ref, "version"], { env: dockerEnv() });
    log(`gitleaks: ${r.ref} ready in ${secs(t0)} ('gitleaks version' -> ${v.stdout.trim()})`);
  } finally {
    fs.rmSync(path.dirname(bin), { recursive: true, force: true });
  }
}

type PipelockResult = { ref: string; standIn?: string };

/** Only the pipelock part of ensureTestImages (cheap when warm). */
export function pipelockImage(log: (s: string) => void = () => undefined): Promise<PipelockResult> {
  return ensurePipelock(log);
}

const NO_PIPELOCK =
  "the real pipelock cannot be obtained on this machine (no registry serves its binary or image); set CBTEST_PIPELOCK_IMAGE=<local image with /pipelock> or CBTEST_PIPELOCK_BINARY=<static binary> to run it";

/** The stand-in's image tag: a hash of the sources that make its binary (every package, not its tests). */
function standInRecipe() {
  // every source file of the module (the config/ package included), not its tests
  const files = (fs.readdirSync(STANDIN_DIR, { recursive: true, encoding: "utf8" }) as string[])
    .filter((f) => (f.endsWith(".go") && !f.endsWith("_test.go")) || f === "go.mod" || f === "go.sum")
    .sort();
  const hash = sha(String(GO_RECIPE), ...files.flatMap((f) => [f, fs.readFileSync(path.join(STANDIN_DIR, f))]));
  return { files, hash, ref: `cbtest/pipelock-standin:${hash}` };
}

/**
 * Pipelock: CBTEST_PIPELOCK_IMAGE (a local image), CBTEST_PIPELOCK_BINARY (a local static binary), else the
 * TEST-ONLY stand-in built from ../pipelock-standin (go build, CGO_ENABLED=0; seconds when the module cache is warm).
 */
async function ensurePipelock(log: (s: string) => void): Promise<PipelockResult> {
  const override = process.env.CBTEST_PIPELOCK_IMAGE;
  if (override) {
    if ((await imagesPresent([override])).has(override)) return { ref: override };
    throw new Error(`CBTEST_PIPELOCK_IMAGE=${override} is not a local image`);
  }
  const localBin = process.env.CBTEST_PIPELOCK_BINARY;
  if (localBin) {
    const hash = sha(fs.readFileSync(localBin), String(GO_RECIPE));
    const ref = `cbtest/pipelock-bin:local-${hash}`;
    if (!(await imagesPresent([ref])).has(ref)) {
      log(`pipelock: building ${ref} from CBTEST_PIPELOCK_BINARY=${localBin}`);
      await scratchImage(localBin, "/pipelock", ref, hash, true);
    }
    return { ref };
  }
  const r = standInRecipe();
  if (!(await imagesPresent([r.ref])).has(r.ref)) {
    const t0 = Date.now();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "cbtest-standin-"));
    try {
      const bin = path.join(out, "pipelock");
      await must("go", ["build", "-trimpath", "-ldflags=-s -w", "-o", bin, "."], {
        cwd: STANDIN_DIR,
        env: { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false -mod=mod" },
        timeoutMs: 10 * 60_000,
      });
      await scratchImage(bin, "/pipelock", r.ref, r.hash, true, "pipelock: TEST-ONLY stand-in (claude-bottle e2e), not the real pipelock");
      log(`pipelock: stand-in ${r.ref} built in ${secs(t0)}`);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  return { ref: r.ref, standIn: NO_PIPELOCK };
}

// ---------------------------------------------------------------------------------------------------------------
// lock (several ava workers may call ensureTestImages at once)
// ---------------------------------------------------------------------------------------------------------------

async function withLock<T>(fn: () => Promise<T>, log: (s: string) => void): Promise<T> {
  const dir = cacheDir();
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, "build.lock");
  const deadline = Date.now() + 30 * 60_000;
  let said = false;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch {
      let holder = NaN;
      try {
        holder = Number(fs.readFileSync(lock, "utf8"));
      } catch {
        continue;
      }
      let alive = false;
      try {
        process.kill(holder, 0);
        alive = true;
      } catch {
        /* dead */
      }
      if (!alive) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (held by pid ${holder})`);
      if (!said) log(`waiting for another image build (pid ${holder}) ...`);
      said = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------

export async function ensureTestImages(opts: EnsureOptions = {}): Promise<TestImages> {
  const log = opts.log ?? ((s: string) => console.log(`[cbtest-images] ${s}`));
  const t0 = Date.now();
  const base = baseRecipe();
  const gl = gitleaksRecipe();
  // Fast path: one docker call for everything.
  const present = await imagesPresent([base.ref, gl.ref]);
  const assemble = (pl: PipelockResult): TestImages => ({
    BASE_IMAGE: base.ref,
    PIPELOCK_IMAGE: pl.ref,
    GITLEAKS_IMAGE: gl.ref,
    ...(pl.standIn ? { pipelockStandIn: pl.standIn } : {}),
  });
  let result: TestImages;
  if (present.has(base.ref) && present.has(gl.ref) && !opts.verify) {
    result = assemble(await ensurePipelock(log));
  } else {
    result = await withLock(async () => {
      const again = await imagesPresent([base.ref, gl.ref]);
      const jobs: Promise<void>[] = [];
      // base (network/dpkg bound) and gitleaks (CPU bound) in parallel
      if (!again.has(base.ref)) jobs.push(buildBase(base, log));
      else log(`base: ${base.ref} present`);
      if (!again.has(gl.ref)) jobs.push(buildGitleaks(gl, log));
      else log(`gitleaks: ${gl.ref} present`);
      const settled = await Promise.allSettled(jobs);
      const failed = settled.filter((x): x is PromiseRejectedResult => x.status === "rejected");
      if (failed.length) throw new Error(failed.map((f) => String(f.reason?.message ?? f.reason)).join("\n---\n"));
      const pl = await ensurePipelock(log);
      if (opts.verify) await verifyBase(base.ref, log);
      return assemble(pl);
    }, log);
  }
  if (result.pipelockStandIn) log(`PIPELOCK_IMAGE is the TEST-ONLY stand-in: ${result.pipelockStandIn}`);
  log(`done in ${secs(t0)}`);
  return result;
}

/** Remove every cbtest/{base,pipelock-bin,gitleaks-bin,verify-apt} image (only ours). The tar cache stays. */
export async function removeTestImages(log: (s: string) => void = console.log): Promise<void> {
  const r = await must("docker", ["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], { env: dockerEnv() });
  const ours = r.stdout
    .split("\n")
    .filter((l) => /^cbtest\/(base|pipelock-bin|pipelock-standin|gitleaks-bin|verify-apt):/.test(l));
  for (const ref of ours) {
    await run("docker", ["rmi", ref], { env: dockerEnv() });
    log(`removed ${ref}`);
  }
}

const isMain = process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (isMain) {
  const argv = new Set(process.argv.slice(2));
  const quiet = argv.has("--quiet") || argv.has("--json");
  const log = quiet ? (s: string) => console.error(`[cbtest-images] ${s}`) : undefined;
  (async () => {
    if (argv.has("--clean")) {
      await removeTestImages();
      return;
    }
    const imgs = await ensureTestImages({ verify: argv.has("--verify"), log });
    if (argv.has("--json")) console.log(JSON.stringify(imgs, null, 2));
    else for (const [k, v] of Object.entries(imgs)) console.log(`${k}=${v}`);
  })().catch((e: unknown) => {
    console.error(`[cbtest-images] FAILED: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
