// Persist an approved change into the stack's configuration so the next `pulumi up`
// keeps it (and `pulumi preview` shows no diff). With a `pulumi` binary on PATH this goes
// through the Automation API (values are JSON strings); otherwise it edits
// <projectDir>/Pulumi.<stack>.yaml with the yaml Document API, keeping comments and every
// other key. The Bottle program reads either form (JSON string or YAML object).
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { PROPOSAL_KIND_NAMES, STACK_CONFIG_NAMESPACE, stackConfigKeys, type ProposalKind } from "../contracts/proposals.ts";
import { writeFileAtomic } from "../store/io.ts";
import { onPath } from "./which.ts";

/** The full stack config key each proposal kind persists under in a one-bottle stack (`claude-bottle:<configKey>`). */
export const CONFIG_KEYS = Object.fromEntries(PROPOSAL_KIND_NAMES.map((k) => [k, `${STACK_CONFIG_NAMESPACE}:${stackConfigKeys()[k]}`])) as Record<ProposalKind, string>;

export interface StackTarget {
  projectDir: string;
  stack: string;
}

export interface PersistResult {
  how: "automation-api" | "stack-file";
  detail: string;
}

export function stackConfigFile(target: StackTarget): string {
  // A fully qualified DIY stack name (org/project/stack) keeps its last segment in the file name.
  const short = target.stack.split("/").at(-1)!;
  return path.join(target.projectDir, `Pulumi.${short}.yaml`);
}

/** Set `config.<key>` = value in the stack file, preserving comments and other keys. Returns whether the file changed. */
export function setStackFileConfig(target: StackTarget, values: Record<string, unknown>): { file: string; changed: boolean } {
  const file = stackConfigFile(target);
  let original = "";
  try {
    original = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const doc = YAML.parseDocument(original);
  if (doc.errors.length) throw new Error(`${file}: not valid YAML (${doc.errors[0]!.message}); fix it, then approve again`);
  if (doc.contents === null || doc.contents === undefined) doc.contents = doc.createNode({}) as any;
  if (!YAML.isMap(doc.contents)) throw new Error(`${file}: expected a YAML mapping at the top level`);
  const config = doc.get("config");
  if (config !== undefined && config !== null && !YAML.isMap(config)) throw new Error(`${file}: "config" is not a mapping`);
  for (const [key, value] of Object.entries(values)) {
    const current = doc.getIn(["config", key]);
    const currentJs = YAML.isNode(current) ? current.toJSON() : current;
    if (JSON.stringify(currentJs) === JSON.stringify(value)) continue;
    doc.setIn(["config", key], doc.createNode(value));
  }
  const text = doc.toString();
  if (text === original) return { file, changed: false };
  writeFileAtomic(file, text, 0o644);
  return { file, changed: true };
}

/** Read a config value back the way the Bottle program does: a JSON string or a YAML object. */
export function readStackFileConfig(target: StackTarget, key: string): unknown {
  const file = stackConfigFile(target);
  if (!fs.existsSync(file)) return undefined;
  const data = YAML.parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const value = data?.config?.[key];
  if (typeof value === "string") {
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }
  return value;
}

async function setViaAutomationApi(target: StackTarget, values: Record<string, unknown>): Promise<void> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation/index.js");
  const stack = await LocalWorkspace.selectStack({ stackName: target.stack, workDir: target.projectDir });
  for (const [key, value] of Object.entries(values)) {
    await stack.setConfig(key, { value: typeof value === "string" ? value : JSON.stringify(value) });
  }
}

export interface PersistOptions {
  /** Override detection of the pulumi binary (tests). */
  usePulumi?: boolean;
}

export async function persistStackConfig(target: StackTarget, values: Record<string, unknown>, opts: PersistOptions = {}): Promise<PersistResult> {
  const keys = Object.keys(values).join(", ");
  // bottle.json names the directory on the machine that runs `pulumi up`; the operator may be elsewhere
  if (!fs.existsSync(target.projectDir)) throw new Error(`the stack's project directory ${target.projectDir} is not on this machine: approve from the machine that runs \`pulumi up\` for stack ${target.stack}, or set ${keys} there by hand`);
  const usePulumi = opts.usePulumi ?? onPath("pulumi") !== undefined;
  if (usePulumi) {
    try {
      await setViaAutomationApi(target, values);
      return { how: "automation-api", detail: `set ${keys} on stack ${target.stack} (pulumi config)` };
    } catch (err) {
      // Fall through to the file edit: it is what `pulumi config set` does for plain values.
      const { file } = setStackFileConfig(target, values);
      return { how: "stack-file", detail: `pulumi config set failed (${firstLine((err as Error).message)}); wrote ${keys} into ${file} instead` };
    }
  }
  const { file, changed } = setStackFileConfig(target, values);
  return { how: "stack-file", detail: changed ? `wrote ${keys} into ${file}` : `${file} already had ${keys}` };
}

function firstLine(s: string): string {
  if (/code: -2\b|ENOENT/.test(s)) return "the pulumi binary could not be run";
  return s.split("\n").find((l) => l.trim())?.trim() ?? s;
}
