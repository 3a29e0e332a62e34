// `npm start` / `npm run down`: the main job on a fresh machine. Checks what is missing
// (Pulumi CLI, Docker engine, the token) and says exactly how to fix it; logs in to a
// local file backend when none is set; selects or creates the stack; runs pulumi.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_MANIFEST_FILE, loadManifest, resolveBottle } from "../components/manifest/load.ts";
import { ConfigError } from "../contracts/validation.ts";
import { bottlesHome } from "../store/layout.ts";

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface Problem { what: string; fix: string }

type Runner = (cmd: string, args: string[], opts?: SpawnSyncOptions) => { status: number | null; stdout: string; stderr: string; error?: Error };

const run: Runner = (cmd, args, opts) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000, ...opts });
  return { status: r.status, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? ""), error: r.error };
};

/** Everything that would stop `pulumi up`, each with its fix. */
export function preflight(env: NodeJS.ProcessEnv, runner: Runner = run, manifestFile = DEFAULT_MANIFEST_FILE): Problem[] {
  const problems: Problem[] = [];
  const pulumi = runner("pulumi", ["version"], { env });
  if (pulumi.error || pulumi.status !== 0) {
    problems.push({
      what: "the Pulumi CLI is not installed (no `pulumi` on PATH)",
      fix: "install it: `curl -fsSL https://get.pulumi.com | sh` (or `brew install pulumi`), open a new shell, then run `npm start` again",
    });
  }
  const docker = runner("docker", ["info", "--format", "{{.ServerVersion}}"], { env });
  if (docker.error) {
    problems.push({ what: "the Docker CLI is not installed", fix: "install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop, start it, then run `npm start` again" });
  } else if (docker.status !== 0) {
    problems.push({
      what: `no Docker engine answers (${docker.stderr.trim().split("\n")[0] || "docker info failed"})`,
      fix: "start it (`sudo systemctl start docker`, or open Docker Desktop); if it runs, make sure your user may use it (`sudo usermod -aG docker $USER`, then log in again)",
    });
  }
  try {
    resolveBottle(loadManifest(manifestFile), { env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.problems) {
      const variable = /environment variable (\w+) is not set/.exec(line)?.[1];
      problems.push(
        variable
          ? { what: `${variable} is not set`, fix: `export ${variable}=<token> (for Claude Code: run \`claude setup-token\` on a machine with a browser and copy the token); it is stored only as a Pulumi secret and only egress ever holds it` }
          : { what: `${err.where}: ${line}`, fix: "correct the manifest" },
      );
    }
  }
  return problems;
}

function say(msg: string) {
  process.stdout.write(msg + "\n");
}

function pulumiStep(args: string[], env: NodeJS.ProcessEnv): void {
  say(`\n$ pulumi ${args.join(" ")}`);
  const r = spawnSync("pulumi", args, { cwd: projectDir, env, stdio: "inherit" });
  if (r.status !== 0) {
    say(`\n\`pulumi ${args[0]}\` failed (exit ${r.status}). The output above says why; fix it and run this again.`);
    process.exit(r.status ?? 1);
  }
}

/** A local backend and passphrase so a fresh machine needs no Pulumi account. */
function localBackendEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const next = { ...env };
  const whoami = run("pulumi", ["whoami"], { env, cwd: projectDir });
  if (!env.PULUMI_BACKEND_URL && whoami.status !== 0) {
    next.PULUMI_BACKEND_URL = "file://~";
    say("No Pulumi backend is set: using the local file backend (state under ~/.pulumi). Set PULUMI_BACKEND_URL to use another.");
  }
  if (!env.PULUMI_CONFIG_PASSPHRASE && !env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    const file = path.join(bottlesHome(env), "pulumi-passphrase");
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, crypto.randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
      say(`Generated a passphrase for the stack's secrets in ${file} (keep it: it decrypts your token in the state).`);
    }
    next.PULUMI_CONFIG_PASSPHRASE_FILE = file;
  }
  return next;
}

const USAGE = "usage: npm start [-- <stack>]   |   npm run down [-- <stack>] [-- --purge-images]";

/** The images a stack built (stack output `images`), or [] when it has none or cannot be read. */
function builtImages(stack: string, env: NodeJS.ProcessEnv, runner: Runner = run): string[] {
  const r = runner("pulumi", ["stack", "output", "images", "--json", "--stack", stack], { env, cwd: projectDir });
  if (r.status !== 0) return [];
  try {
    const names = JSON.parse(r.stdout) as unknown;
    return Array.isArray(names) ? names.filter((n): n is string => typeof n === "string") : [];
  } catch {
    return [];
  }
}

export function main(argv: string[], env: NodeJS.ProcessEnv = process.env): number {
  const flags = argv.filter((a) => a.startsWith("--"));
  const [command = "up", stackArg] = argv.filter((a) => !a.startsWith("--"));
  const stack = stackArg ?? env.CLAUDE_BOTTLE_STACK ?? "dev";
  const unknown = flags.filter((f) => f !== "--purge-images" || command !== "down");
  if ((command !== "up" && command !== "down") || unknown.length) {
    say(`${USAGE}\n${unknown.length ? `unknown option ${unknown.join(" ")}` : `unknown command "${command}"`}`);
    return 2;
  }
  const problems = command === "up" ? preflight(env) : preflight(env).filter((p) => !/is not set/.test(p.what));
  if (problems.length) {
    say(`Cannot ${command === "up" ? "launch the bottle" : "tear the bottle down"} yet:\n`);
    for (const p of problems) say(`  ✗ ${p.what}\n    → ${p.fix}\n`);
    return 1;
  }
  const penv = localBackendEnv(env);
  if (command === "up") {
    pulumiStep(["stack", "select", "--create", stack], penv);
    pulumiStep(["up", "--yes", "--stack", stack], penv);
    say(`\nThe bottle is up. Attach with the command in the \`attach\` output (\`pulumi stack output attach --stack ${stack}\`), then \`claude\` (or \`claude --continue\` to resume).`);
    say("Watch what the agent asks for with `npx bottle pending` / `npx bottle dashboard`.");
  } else {
    // Read before destroy: the outputs go with the resources.
    const images = builtImages(stack, penv);
    pulumiStep(["destroy", "--yes", "--stack", stack], penv);
    say(`\nThe bottle is down. The agent's home and workspace volumes (its transcript and work) are kept; remove them with \`docker volume rm\` if you want them gone.`);
    if (flags.includes("--purge-images")) {
      for (const image of images) {
        const r = run("docker", ["image", "rm", image], { env });
        say(r.status === 0 ? `removed image ${image}` : `could not remove image ${image}: ${r.stderr.trim().split("\n")[0]}`);
      }
    } else if (images.length) {
      say(`The images it built stay, so the next \`npm start\` is fast (${images.join(", ")}); \`npm run down -- --purge-images\` removes them too.`);
    }
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.exitCode = main(process.argv.slice(2));
}
