// `npm test`: every tier the machine can run, in order — unit, integration, e2e — each an
// ava run; then one closing line "N passed, N failed" over all tiers. TIERS=unit,e2e picks.
// The e2e tier itself says loudly when no Docker engine is reachable (and fails under CI).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { avaCounts, avaFailures } from "./helpers/ava-summary.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ALL = ["unit", "integration", "e2e"] as const;
const tiers = (process.env.TIERS?.split(",").map((s) => s.trim()).filter(Boolean) ?? [...ALL]) as string[];
for (const t of tiers) if (!(ALL as readonly string[]).includes(t)) throw new Error(`TIERS: unknown tier "${t}" (expected ${ALL.join(", ")})`);

function testFiles(dir: string): string[] {
  const abs = path.join(root, "test", dir);
  if (!fs.existsSync(abs)) return [];
  return fs
    .readdirSync(abs, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => path.join("test", dir, f))
    .sort();
}

interface TierResult { tier: string; passed: number; failed: number; skipped: number; code: number; seconds: number; failures: string[] }

/** A tier that runs longer than this is killed and counted failed (a hung worker must not eat CI's 90 minutes). */
const TIER_LIMIT_MIN: Record<string, number> = { unit: 10, integration: 20, e2e: 45 };

function runTier(tier: string): Promise<TierResult> {
  const files = testFiles(tier);
  const started = Date.now();
  if (!files.length) {
    console.log(`\n=== ${tier}: no test files ===`);
    return Promise.resolve({ tier, passed: 0, failed: 0, skipped: 0, code: 0, seconds: 0, failures: [] });
  }
  console.log(`\n=== ${tier}: ${files.length} files ===`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, "node_modules", "ava", "entrypoints", "cli.mjs"), ...files], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CLAUDE_BOTTLE_TEST_TIER: tier },
    });
    let out = "";
    const tee = (chunk: Buffer, to: NodeJS.WriteStream) => { out += chunk.toString(); to.write(chunk); };
    child.stdout.on("data", (c) => tee(c, process.stdout));
    child.stderr.on("data", (c) => tee(c, process.stderr));
    let timedOut = false;
    const limit = setTimeout(() => {
      timedOut = true;
      console.error(`\n!!! ${tier}: still running after ${TIER_LIMIT_MIN[tier]} minutes — killed; counted as failed`);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
    }, (TIER_LIMIT_MIN[tier] ?? 30) * 60_000);
    child.on("close", (code) => {
      clearTimeout(limit);
      const counts = avaCounts(out);
      resolve({
        tier,
        passed: counts.passed,
        failed: counts.failed || (code || timedOut ? 1 : 0),
        skipped: counts.skipped,
        code: timedOut ? 1 : code ?? 1,
        seconds: Math.round((Date.now() - started) / 100) / 10,
        failures: [...avaFailures(out), ...(timedOut ? [`killed after ${TIER_LIMIT_MIN[tier]} minutes`] : code && !counts.failed ? [`ava exited ${code}`] : [])],
      });
    });
  });
}

const results: TierResult[] = [];
for (const tier of tiers) results.push(await runTier(tier));

console.log("\n=== summary ===");
for (const r of results) {
  console.log(`${r.tier.padEnd(12)} ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped (${r.seconds}s)`);
  for (const f of r.failures) console.log(`  ${r.tier}: ${f}`);
}
const total = (k: "passed" | "failed" | "skipped") => results.reduce((n, r) => n + r[k], 0);
console.log(`${total("passed")} passed, ${total("failed")} failed` + (total("skipped") ? `, ${total("skipped")} skipped` : ""));
process.exit(results.some((r) => r.code !== 0 || r.failed > 0) ? 1 : 0);
