// Shared by the supervise and CLI tests: one bottle's state volumes stood in for by a directory
// under a temp home (laid out as the state container mounts them: store/layout.ts), with the
// live files `pulumi up` writes (routes, live policy, pipelock config rendered from both), its
// bottle.json, a stack config file, and a host directory. The CLI finds them through
// test/helpers/dir-bottles.ts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pipelockConfigToYaml } from "../../contracts/pipelock.ts";
import { pipelockConfigFor, renderPolicyYaml, type LivePolicy } from "../../contracts/policy.ts";
import { parseRoutesDocument, renderRoutesYaml, type RoutesDocument } from "../../contracts/routes.ts";
import { stackConfigKeys } from "../../contracts/proposals.ts";
import { superviseSettingsFromEnv, type SuperviseSettings } from "../../contracts/supervise.ts";
import { renderBottleRecord, type BottleRecord } from "../../store/bottles.ts";
import { hostLayout, stateLayout } from "../../store/layout.ts";
import { dirBottles } from "../helpers/dir-bottles.ts";

export { dirBottles };

export const INITIAL_ROUTES: RoutesDocument = parseRoutesDocument({
  version: 1,
  routes: [
    { host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" }, role: "claude_code_oauth" },
    { host: "github.com", methods: ["GET"], path_allowlist: ["/acme/"] },
  ],
});
export const INITIAL_EXTRA = ["extra.example.org"];
export const INITIAL_POLICY: LivePolicy = { version: 1, pipelock_allowlist: INITIAL_EXTRA, ssrf_ip_allowlist: [] };

export const STACK_FILE = `# stack config of the dev bottle — keep this comment
encryptionsalt: v1:abc:def
config:
  claude-bottle:agent: coder # the agent
  aws:region: us-east-1
`;

export interface Fixture {
  home: string;
  /** The directory standing in for the bottle's state volumes. */
  stateDir: string;
  projectDir: string;
  record: BottleRecord;
  layout: ReturnType<typeof stateLayout>;
  /** The bottle's directory on the machine that runs `pulumi up`. */
  host: ReturnType<typeof hostLayout>;
  settings: SuperviseSettings;
}

export function makeHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "cb-supervise-"));
}

export function makeBottle(home: string, name = "dev", extra: Partial<Record<string, string>> = {}): Fixture {
  const stateDir = path.join(home, name);
  const layout = stateLayout(stateDir);
  const host = hostLayout(path.join(home, `host-${name}`));
  const projectDir = path.join(home, `project-${name}`);
  for (const d of [layout.egressConfigDir, layout.pipelockConfigDir, layout.superviseDir, layout.auditDir, layout.recordDir, projectDir]) fs.mkdirSync(d, { recursive: true });
  const record: BottleRecord = {
    version: 2,
    identity: `${name}-coder`,
    bottle: name,
    agent: "coder",
    stack: name,
    project: "claude-bottle",
    projectDir,
    hostDir: host.root,
    containers: { agent: `cb-${name}-agent`, egress: `cb-${name}-egress`, pipelock: `cb-${name}-pipelock`, supervise: `cb-${name}-supervise`, state: `cb-${name}-state` },
    configKeys: stackConfigKeys(),
  };
  fs.writeFileSync(layout.record, renderBottleRecord(record));
  fs.writeFileSync(layout.routesFile, renderRoutesYaml(INITIAL_ROUTES));
  fs.writeFileSync(layout.policyFile, renderPolicyYaml(INITIAL_POLICY));
  fs.writeFileSync(layout.pipelockFile, pipelockConfigToYaml(pipelockConfigFor(INITIAL_ROUTES, INITIAL_POLICY)));
  fs.writeFileSync(path.join(projectDir, `Pulumi.${name}.yaml`), STACK_FILE);
  const settings = superviseSettingsFromEnv({
    SUPERVISE_LISTEN: "127.0.0.1:0",
    SUPERVISE_BOTTLE: record.identity,
    SUPERVISE_STATE_DIR: layout.superviseDir,
    SUPERVISE_EGRESS_CONFIG_DIR: layout.egressConfigDir,
    SUPERVISE_PIPELOCK_CONFIG_DIR: layout.pipelockConfigDir,
    SUPERVISE_AUDIT_LOG: layout.auditFile,
    SUPERVISE_KEEPALIVE_MS: "100",
    SUPERVISE_POLL_MS: "50",
    ...extra,
  });
  return { home, stateDir, projectDir, record, layout, host, settings };
}

export function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(...l.split("\n")), err: (l: string) => err.push(...l.split("\n")) }, out, err };
}

export async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
