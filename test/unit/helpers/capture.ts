// Run the stack program under mocks and capture what it registers. One program at a
// time per process (a mutex), so tests in one file may call it concurrently.
import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { installMocks, settle, unwrap, type Registration } from "../../helpers/pulumi-mocks.ts";
import { fakeDaemon } from "../../helpers/runtime-seams.ts";

import { DOCKER_TYPES } from "../../../contracts/docker.ts";
import { buildSidecars } from "../../../sidecars/build.ts";

// Image resources check that each TypeScript sidecar is bundled, as `npm install` does.
await buildSidecars();
const mocks = await installMocks();
const { bottleProgram } = await import("../../../components/program.ts");

export type { Registration };
export { unwrap };

export interface Capture {
  registrations: Registration[];
  outputs: Record<string, unknown>;
  stateDir: string;
  byType(type: string): Registration[];
  container(role: string): Registration;
}

export const TYPES = {
  ...DOCKER_TYPES,
  privateKey: "tls:index/privateKey:PrivateKey",
  selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
  dynamic: "pulumi-nodejs:dynamic:Resource",
} as const;

let queue: Promise<unknown> = Promise.resolve();

export const TEST_ENV = { CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-REAL-SECRET-TOKEN-VALUE-0123456789" };

export interface CaptureOptions {
  manifest?: string;
  agent?: string;
  env?: NodeJS.ProcessEnv;
  daemonRuntimes?: string[];
  namePrefix?: string;
  stateDir?: string;
  /** Further bottleProgram options (capabilityDockerfile, purgeOnDestroy, ...); they win. */
  program?: Record<string, unknown>;
}

export function captureBottle(opts: CaptureOptions = {}): Promise<Capture> {
  const run = queue.then(async () => {
    const start = mocks.registrations.length;
    const stateDir = opts.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "cb-unit-state-"));
    const program = bottleProgram({
      manifest: opts.manifest,
      agent: opts.agent,
      env: opts.env ?? TEST_ENV,
      stateDir,
      namePrefix: opts.namePrefix,
      runtimeSeams: fakeDaemon(opts.daemonRuntimes ?? ["runc"]),
      daemonPlatform: "linux/amd64",
      ...opts.program,
    });
    const outputs = (await unwrap(program as any)) as Record<string, unknown>;
    await settle(mocks.registrations);
    const registrations = mocks.registrations.slice(start);
    const byType = (type: string) => registrations.filter((r) => r.type === type);
    return {
      registrations,
      outputs,
      stateDir,
      byType,
      container(role: string) {
        const found = byType(TYPES.container).find((c) => c.inputs.labels?.some((l: any) => l.label === "dev.claude-bottle.role" && l.value === role));
        if (!found) throw new Error(`no ${role} container registered`);
        return found;
      },
    };
  });
  queue = run.catch(() => undefined);
  return run;
}
