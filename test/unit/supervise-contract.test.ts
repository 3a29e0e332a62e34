// The supervise contract: proposal/decision schemas, dedupe keys, settings, planning
// (rebase of a proposal onto a live config that moved), exclusive decisions, audit chain.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseRoutesDocument } from "../../contracts/egress.ts";
import { renderPipelockConfig } from "../../contracts/pipelock.ts";
import { ConfigError } from "../../contracts/validation.ts";
import { superviseSettingsFromEnv, superviseSettingsToEnv } from "../../contracts/supervise.ts";
import { planChange, rebaseRoutes, type CurrentConfig } from "../../store/live.ts";
import { appendAudit, readAudit, verifyAudit } from "../../store/audit.ts";
import {
  parseProposedAllowlist,
  parseProposedDockerfile,
  parseProposedRoutes,
  proposalKey,
  ProposalSchema,
  readDecision,
  superviseLayout,
  writeDecisionExclusive,
  type Proposal,
} from "../../contracts/proposals.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "cb-supervise-unit-"));

const doc = (routes: unknown[]) => parseRoutesDocument({ version: 1, routes });

test("settings: defaults are the container paths; env round-trips", (t) => {
  const s = superviseSettingsFromEnv({ SUPERVISE_BOTTLE: "dev-coder", PATH: "/bin" });
  t.is(s.SUPERVISE_LISTEN, "0.0.0.0:8080");
  t.is(s.SUPERVISE_STATE_DIR, "/var/lib/claude-bottle/supervise");
  t.is(s.SUPERVISE_EGRESS_CONFIG_DIR, "/etc/claude-bottle/egress");
  t.is(s.SUPERVISE_PIPELOCK_CONFIG_DIR, "/etc/claude-bottle/pipelock");
  t.is(s.SUPERVISE_AUDIT_LOG, "/var/log/claude-bottle/supervise.jsonl");
  t.is(s.SUPERVISE_KEEPALIVE_MS, 15_000);
  const env = superviseSettingsToEnv({ SUPERVISE_BOTTLE: "dev-coder" });
  t.true(env.includes("SUPERVISE_BOTTLE=dev-coder"));
  t.deepEqual(superviseSettingsFromEnv(Object.fromEntries(env.map((e) => e.split("=", 2) as [string, string]))), s);
  const err = t.throws(() => superviseSettingsFromEnv({ SUPERVISE_LISTEN: "8080" }), { instanceOf: ConfigError });
  t.regex(err!.message, /SUPERVISE_LISTEN: expected "host:port"/);
  t.regex(err!.message, /SUPERVISE_BOTTLE: required string is missing/);
});

test("proposal inputs are validated with the sidecars' own schemas", (t) => {
  t.deepEqual(parseProposedRoutes([{ host: "Example.COM." }]), { version: 1, routes: [{ host: "example.com" }] });
  t.throws(() => parseProposedRoutes({ version: 2, routes: [] }), { message: /version/ });
  t.deepEqual(parseProposedAllowlist(["b.example.com", "A.example.com", "b.example.com"]), ["a.example.com", "b.example.com"]);
  t.throws(() => parseProposedAllowlist("a.example.com"), { message: /expected array/ });
  t.is(parseProposedDockerfile("# comment\nARG X=1\nFROM debian\n"), "# comment\nARG X=1\nFROM debian\n");
  t.throws(() => parseProposedDockerfile("ARG X\nRUN true\nFROM debian"), { message: /first instruction/ });
  t.throws(() => parseProposedDockerfile("FROM a\n" + "#".repeat(70_000)), { message: /under 65536 bytes/ });
});

test("dedupe key: same end state = same key, whatever the spelling; justification does not count", (t) => {
  const base = doc([]);
  const a = proposalKey({ kind: "egress_routes", routes: parseProposedRoutes([{ host: "A.example.com", methods: ["get"] }]), base });
  const b = proposalKey({ kind: "egress_routes", routes: parseProposedRoutes({ routes: [{ methods: ["GET"], host: "a.example.com" }] }), base: doc([{ host: "x.example.com" }]) });
  t.is(a, b);
  const c = proposalKey({ kind: "egress_routes", routes: parseProposedRoutes([{ host: "a.example.com", methods: ["POST"] }]), base });
  t.not(a, c);
  t.is(
    proposalKey({ kind: "pipelock_allowlist", allowlist: parseProposedAllowlist(["b.example.com", "a.example.com"]), base: [] }),
    proposalKey({ kind: "pipelock_allowlist", allowlist: parseProposedAllowlist(["a.example.com", "b.example.com"]), base: ["z.example.com"] }),
  );
});

test("rebase: a route proposal applies its own change onto a live document that moved", (t) => {
  const base = doc([{ host: "a.example.com" }, { host: "b.example.com" }]);
  const proposed = doc([{ host: "a.example.com" }, { host: "b.example.com" }, { host: "new.example.com" }]);
  const live = doc([{ host: "a.example.com", methods: ["GET"] }, { host: "b.example.com" }, { host: "other.example.com" }]);
  const r = rebaseRoutes(base, proposed, live);
  t.deepEqual(r.routes.routes.map((x) => x.host), ["a.example.com", "b.example.com", "new.example.com", "other.example.com"]);
  t.deepEqual(r.routes.routes[0], { host: "a.example.com", methods: ["GET"] }, "a change made meanwhile is kept");
  t.deepEqual(r.conflicts, []);
  t.deepEqual(r.summary, ["+ route new.example.com"]);
  // Proposal and live both changed the same route: a conflict.
  const r2 = rebaseRoutes(base, doc([{ host: "a.example.com", methods: ["POST"] }, { host: "b.example.com" }]), live);
  t.is(r2.conflicts.length, 1);
  t.regex(r2.conflicts[0]!, /route a.example.com changed since the proposal/);
  // Removal.
  t.deepEqual(rebaseRoutes(base, doc([{ host: "a.example.com" }]), base).summary, ["- route b.example.com"]);
});

function proposal(change: Proposal["change"]): Proposal {
  return ProposalSchema.parse({ version: 1, id: "p-0123abcd", bottle: "dev", key: proposalKey(change), createdAt: new Date().toISOString(), count: 1, requests: [{ at: new Date().toISOString(), justification: "x" }], change });
}

test("plan: an allowlist change re-renders pipelock keeping the rest of the live file", (t) => {
  const routes = doc([{ host: "github.com" }]);
  const live = { ...renderPipelockConfig({ allowlist: ["github.com", "old.example.com"], ssrfIpAllowlist: ["10.9.0.0/16"] }), explain_blocks: false };
  const current: CurrentConfig = { routes, pipelock: live, extraAllowlist: ["old.example.com"], dockerfile: null, problems: [] };
  const plan = planChange(proposal({ kind: "pipelock_allowlist", allowlist: ["new.example.com"], base: ["old.example.com"] }), current);
  t.deepEqual(plan.pipelock!.api_allowlist, ["github.com", "new.example.com"]);
  t.deepEqual(plan.pipelock!.ssrf, { ip_allowlist: ["10.9.0.0/16"] });
  t.is(plan.pipelock!.explain_blocks, false, "operator edits elsewhere in the file survive");
  t.deepEqual(plan.extraAllowlist, ["new.example.com"]);
  t.deepEqual(plan.summary, ["+ pipelock allowlist new.example.com", "- pipelock allowlist old.example.com"]);
  t.deepEqual(plan.conflicts, []);
});

test("decisions are written once; the second writer is told", (t) => {
  const dir = tmp();
  const d = { version: 1 as const, id: "p-0123abcd", decision: "rejected" as const, at: new Date().toISOString(), by: "op", reason: "no" };
  t.true(writeDecisionExclusive(dir, d));
  t.false(writeDecisionExclusive(dir, { ...d, decision: "approved", reason: undefined }));
  t.is(readDecision(superviseLayout(dir).decisionFile("p-0123abcd")).decision, "rejected");
  t.deepEqual(fs.readdirSync(superviseLayout(dir).decisionsDir), ["p-0123abcd.json"], "no temp files left");
});

test("audit log: hash chain verifies, and any edit, deletion or reorder is detected", (t) => {
  const file = path.join(tmp(), "supervise.jsonl");
  for (let i = 0; i < 5; i++) appendAudit(file, { type: "proposed", bottle: "dev", id: `p-0000000${i}`, actor: "agent", justification: `j${i}` });
  const good = readAudit(file);
  t.true(good.ok);
  t.is(good.lines.length, 5);
  t.deepEqual(good.lines.map((l) => l.seq), [0, 1, 2, 3, 4]);
  const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
  const edited = [...lines];
  edited[2] = edited[2]!.replace('"j2"', '"approved by nobody"');
  t.like(verifyAudit(edited.join("\n")), { ok: false, brokenAt: 3 });
  t.regex(verifyAudit(edited.join("\n")).problem!, /edited/);
  t.like(verifyAudit([lines[0], lines[1], lines[3], lines[4]].join("\n")), { ok: false, brokenAt: 3 });
  t.like(verifyAudit([lines[1], lines[0], ...lines.slice(2)].join("\n")), { ok: false, brokenAt: 1 });
  t.like(verifyAudit(lines.slice(0, 4).join("\n")), { ok: true }, "truncation at the end is only visible against the head hash, which `bottle audit` prints");
});

test("audit log: two processes appending at once keep one unbroken chain", async (t) => {
  const file = path.join(tmp(), "supervise.jsonl");
  const auditModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../store/audit.ts");
  const script = `import { appendAudit } from ${JSON.stringify(auditModule)};
for (let i = 0; i < 100; i++) appendAudit(process.argv[1], { type: "merged", bottle: "dev", actor: process.argv[2] });`;
  const run = (who: string) =>
    new Promise<number>((resolve) => spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, file, who], { stdio: "inherit" }).on("exit", (c) => resolve(c ?? 1)));
  t.deepEqual(await Promise.all([run("a"), run("b")]), [0, 0]);
  const v = readAudit(file);
  t.true(v.ok, v.problem);
  t.is(v.lines.length, 200);
  t.is(v.lines.filter((l) => l.actor === "a").length, 100);
});
