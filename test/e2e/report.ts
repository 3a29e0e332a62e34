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
    standIns: Record<string, string>;
    findings: string[];
    seconds: number;
    timings: string;
    pipelockUnavailable?: string;
    functional?: { title: string; result: string; detail: string }[];
  },
): void {
  if (!results.length) return;
  const n = (r: AttackResult["result"]) => results.filter((x) => x.result === r).length;
  const lines = [
    "# Security: what the e2e escape suite proved",
    "",
    "Written by `test/e2e/escape.test.ts` (`npm run test:e2e`) from the results of a run against a real Docker",
    "engine — do not edit by hand. Every attack runs inside the agent container of a bottle built by the engine",
    "double from the stack program's own resources; each asserts it was blocked AND that the fake internet's",
    "exfil sink (and the intranet stand-in) received nothing. See test/e2e/README-engine.md for how.",
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
  if (Object.keys(meta.standIns).length) {
    lines.push("**Stand-in images in this run** (the attacks that need the real image are marked *not run*):", "");
    for (const [role, why] of Object.entries(meta.standIns)) lines.push(`- \`${role}\`: ${cell(why)}`);
    lines.push("");
  }
  if (meta.findings.length) {
    lines.push("**Engine findings** (the real engine refuses these inputs; the double accommodated them so the run could go on):", "");
    for (const f of meta.findings) lines.push(`- ${cell(f)}`);
    lines.push("");
  }
  if (meta.functional?.length) {
    lines.push("**Functional checks** on the same bottles (the allowed paths work, so the blocks above are not an artefact of a broken bottle):", "", "| check | result |", "| --- | --- |");
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
