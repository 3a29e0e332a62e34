import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures");

/**
 * Copy a fixture manifest directory to a temp dir (so tests can edit it), generate the
 * SSH identity it references, and optionally transform the parsed manifest.
 */
export function fixture(name: string, edit?: (manifest: any) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cb-fixture-${name}-`));
  fs.cpSync(path.join(FIXTURES, name), dir, { recursive: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path.join(dir, "deploy_key")]);
  const file = path.join(dir, "claude-bottle.yaml");
  if (edit) {
    const manifest = YAML.parse(fs.readFileSync(file, "utf8"));
    edit(manifest);
    fs.writeFileSync(file, YAML.stringify(manifest));
  }
  return file;
}

/** Write a raw manifest text (and optional agents) into a temp dir; returns the manifest path. */
export function rawManifest(text: string, agents: Record<string, string> = { "coder.md": "---\nbottle: dev\n---\nDo the work.\n" }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-raw-"));
  fs.mkdirSync(path.join(dir, "agents"));
  for (const [f, body] of Object.entries(agents)) fs.writeFileSync(path.join(dir, "agents", f), body);
  const file = path.join(dir, "claude-bottle.yaml");
  fs.writeFileSync(file, text);
  return file;
}

export const FULL_ENV = {
  CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-REAL-SECRET-TOKEN-VALUE-0123456789",
  GITHUB_TOKEN: "ghp_REALGITHUBTOKENVALUE0123456789abcdefAB",
};
