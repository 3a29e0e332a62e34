// docs/security.md is written by the escape suite from what actually happened in the run.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface AttackResult {
  id: string;
  attack: string;
  expected: string;
  result: "blocked" | "NOT BLOCKED" | "not run";
  layer: string;
  evidence: string;
}

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "docs", "security.md");
const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ").slice(0, 300);

export function writeSecurityReport(
  results: AttackResult[],
  meta: {
    seconds: number;
    timings: string;
    pipelockUnavailable?: string;
    functional?: { title: string; result: string; detail: string }[];
    /** Which OCI runtime each bottle's containers ran under (docker inspect HostConfig.Runtime). */
    runtimes?: { bottle: string; role: string; requested: string; containers: Record<string, string> }[];
  },
): void {
  if (!results.length) return;
  const n = (r: AttackResult["result"]) => results.filter((x) => x.result === r).length;
  const lines = [
    "# Security: what the e2e escape suite proved",
    "",
    "Written by `test/e2e/escape.test.ts` (`npm run test:e2e`) from the results of a run against a real Docker",
    "engine — do not edit by hand. Every attack runs inside the agent container of a bottle that the real Pulumi",
    "engine brought up from the stack program (`pulumi up` through the Automation API; the docker and tls",
    "providers are our doubles, see test/e2e/README-engine.md); each asserts it was blocked AND that the fake",
    "internet's exfil sink (and the intranet stand-in) received nothing.",
    "",
    `Run: ${new Date().toISOString()} — ${results.length} attacks: **${n("blocked")} blocked**, **${n("NOT BLOCKED")} not blocked**, ${n("not run")} not run. Wall time ${meta.seconds.toFixed(0)} s (${meta.timings}).`,
    "",
  ];
  if (meta.pipelockUnavailable) {
    lines.push(
      "> **pipelock was NOT exercised in this run.** pipelock cannot be obtained on the machine that ran it",
      `> (${cell(meta.pipelockUnavailable)}). The bottle's pipelock container ran a **TEST-ONLY forwarding stand-in**`,
      "> (`test/e2e/pipelock-standin/`: CONNECT/absolute-URI forwarder on :8888 that enforces nothing) so that the",
      "> chain agent → egress → pipelock container → fake upstream carries traffic. pipelock-layer checks — **DLP**",
      "> (secrets in bodies, query strings, headers), the **SSRF guard** (allowed names resolving to internal or metadata",
      "> addresses) and the **strict allowlist** — were therefore NOT tested: those attacks are listed below as",
      "> *not run (pipelock unavailable)*, and no result here says anything about pipelock itself. Everything else in",
      "> this table ran against the real sidecar images.",
      "",
    );
  }
  if (meta.runtimes?.length) {
    lines.push("**Runtimes** in this run (`docker inspect` of each container; the attacks ran in the first bottle's agent):", "", "| bottle | used for | manifest `runtime` | agent ran under | sidecars ran under |", "| --- | --- | --- | --- | --- |");
    for (const b of meta.runtimes) {
      const { agent = "?", ...sidecars } = b.containers;
      const side = Object.entries(sidecars).map(([role, rt]) => `${role} ${rt}`).join(", ");
      lines.push(`| ${cell(b.bottle)} | ${cell(b.role)} | ${cell(b.requested)} | **${cell(agent === "runsc" ? "runsc (gVisor)" : agent)}** | ${cell(side)} |`);
    }
    lines.push("");
  }
  if (meta.functional?.length) {
    lines.push("**Functional and lifecycle checks** on the same bottles (the allowed paths work, so the blocks above are not an artefact of a broken bottle; the stack behaves under `pulumi up`/`refresh`/`destroy`):", "", "| check | result |", "| --- | --- |");
    for (const f of meta.functional) lines.push(`| ${cell(f.title)} | ${f.result === "passed" ? "passed" : `**${f.result}**${f.detail ? `: ${cell(f.detail)}` : ""}`} |`);
    lines.push("");
  }
  lines.push("| # | attack | expected | result | blocked by | evidence |", "| --- | --- | --- | --- | --- | --- |");
  for (const r of results) lines.push(`| ${r.id} | ${cell(r.attack)} | ${cell(r.expected)} | ${r.result === "NOT BLOCKED" ? "**NOT BLOCKED**" : r.result} | ${cell(r.layer)} | ${cell(r.evidence)} |`);
  lines.push(
    "",
    "Layers: **network** = Docker topology (the agent sits only on an `--internal` network whose bridge has no host",
    "address, `inhibit_ipv4`), **container** = the agent container's own settings (no socket, no secrets, no",
    "capabilities), **egress** = our MITM proxy's routes/method/path rules (403 with `x-claude-bottle-block-reason`),",
    "**pipelock** = the last hop's allowlist/SSRF/DLP (`upstream_refused`), **git-gate** = gitleaks pre-receive.",
    "",
  );
  fs.mkdirSync(path.dirname(DOC), { recursive: true });
  fs.writeFileSync(DOC, lines.join("\n"));
}
