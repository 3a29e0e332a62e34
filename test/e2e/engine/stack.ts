// Drives the REAL Pulumi engine: the `pulumi` CLI (built once per machine by ensure-pulumi.sh)
// runs a stack whose program is an inline Automation API program in this process, so no
// language host is needed (the CLI connects back to us). The `docker` and `tls` packages are
// served by our provider plugins (./plugins/*), registered as project plugins at exactly the
// versions the installed SDKs request; the dynamic provider host (pulumi-resource-pulumi-nodejs)
// is the one @pulumi/pulumi ships. Everything else is the engine's own: config validation,
// secrets, ordering, parallelism, diff, replace/update/delete, refresh, outputs.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation/index.js";
import { PROJECT_DIR, sdkPluginVersion } from "./versions.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PLUGINS_DIR = path.join(HERE, "plugins");

let cliOnce: Promise<PulumiCommand> | undefined;
/** The cached CLI (built on first use: ~4–10 min once per machine). */
export function pulumiCli(log: (s: string) => void = () => {}): Promise<PulumiCommand> {
  cliOnce ??= (async () => {
    const out = execFileSync("bash", [path.join(HERE, "ensure-pulumi.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30 * 60_000 });
    const bin = out.trim().split("\n").pop()!;
    log(`pulumi CLI: ${bin}`);
    return PulumiCommand.get({ root: path.dirname(path.dirname(bin)) });
  })();
  return cliOnce;
}

export interface RealStackOptions {
  /** Unique per test run; labels what the provider plugins create (see plugins/README). */
  runId: string;
  stackName: string;
  /** The inline program (the stack program, e.g. () => bottleProgram({...})). */
  program: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Where the workspace, the local backend and PULUMI_HOME live; removed by `remove()`. */
  workDir: string;
  /** Extra env for the CLI and the plugins it starts. */
  env?: Record<string, string>;
  log?: (s: string) => void;
}

export interface RealStack {
  stack: Stack;
  workDir: string;
  backendDir: string;
  passphrase: string;
  /** Remove the workspace (state included): call after `destroy`. */
  remove(): void;
}

/**
 * A stack of the claude-bottle project on a local file backend. The project settings are the
 * real Pulumi.yaml's (name, runtime, config declarations: the CLI validates stack config
 * against them exactly as for a user), plus the backend and the plugin registrations.
 */
export async function realStack(opts: RealStackOptions): Promise<RealStack> {
  const log = opts.log ?? (() => {});
  const pulumiCommand = await pulumiCli(log);
  const project = YAML.parse(fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), "utf8"));
  fs.mkdirSync(opts.workDir, { recursive: true });
  const backendDir = path.join(opts.workDir, "backend");
  fs.mkdirSync(backendDir, { recursive: true });
  // The dynamic provider host @pulumi/pulumi ships resolves its entry point from its working
  // directory (the project's), as it does in a user's project: give the workspace the project's modules.
  const modules = path.join(opts.workDir, "node_modules");
  if (!fs.existsSync(modules)) fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), modules);
  const passphrase = crypto.randomBytes(18).toString("base64url");
  // `main` names the file a language host would run; an inline program has none (the CLI
  // refuses a `main` that does not exist in the workspace).
  const { main: _main, ...settings } = project;
  const projectSettings = {
    ...settings,
    backend: { url: `file://${backendDir}` },
    plugins: {
      providers: [
        { name: "docker", version: sdkPluginVersion("docker"), path: path.join(PLUGINS_DIR, "docker") },
        { name: "tls", version: sdkPluginVersion("tls"), path: path.join(PLUGINS_DIR, "tls") },
        // What the Pulumi distribution ships next to the CLI.
        { name: "pulumi-nodejs", path: path.join(PROJECT_DIR, "node_modules", "@pulumi", "pulumi") },
      ],
    },
  };
  const envVars: Record<string, string> = {
    PULUMI_CONFIG_PASSPHRASE: passphrase,
    PULUMI_HOME: path.join(opts.workDir, "pulumi-home"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    CBTEST_RUN_ID: opts.runId,
    ...opts.env,
  };
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: opts.stackName, projectName: project.name, program: async () => opts.program() },
    { workDir: opts.workDir, projectSettings: projectSettings as any, envVars, pulumiCommand },
  );
  return {
    stack,
    workDir: opts.workDir,
    backendDir,
    passphrase,
    remove: () => fs.rmSync(opts.workDir, { recursive: true, force: true }),
  };
}
