// `bottle approve` reports a change applied only when the sidecars that load the rewritten files
// confirm the exact bytes (store/reload.ts). A refusal puts every file back and leaves the
// proposal pending; pipelock's strict-mode refusal of a reload is passed by a restart, told to
// the operator. The sidecars are scripted doubles reading the files on disk
// (test/helpers/fake-sidecar.ts); test/integration/live-reload.test.ts runs the pipelock stand-in.
import test from "ava";
import { seal, withoutSeal } from "../../contracts/seal.ts";
import fs from "node:fs";
import path from "node:path";
import { sha256 } from "../../contracts/hash.ts";
import { main } from "../../cli/commands.ts";
import { Supervisor } from "../../sidecars/supervise/supervisor.ts";
import { parseRoutesDocument } from "../../contracts/routes.ts";
import { isDecided } from "../../store/proposals.ts";
import { FakeSidecar } from "../helpers/fake-sidecar.ts";
import { capture, dirBottles, INITIAL_ROUTES, makeBottle, makeHome } from "../integration/supervise-fixture.ts";

const FAST = { reloadMs: 400, restartMs: 400, pollMs: 10, quietMs: 150, graceMs: 60 };
const supervisors: Supervisor[] = [];
test.after.always(() => supervisors.forEach((s) => s.close()));

async function world() {
  const home = makeHome();
  const fx = makeBottle(home, "dev");
  const sup = await Supervisor.open(fx.settings);
  supervisors.push(sup);
  const read = (f: string) => () => fs.readFileSync(f, "utf8");
  const pipelock = new FakeSidecar(fx.record.containers.pipelock!, read(fx.layout.pipelockFile));
  const egress = new FakeSidecar(fx.record.containers.egress!, read(fx.layout.routesFile), "egress");
  const sidecars: Record<string, FakeSidecar> = { [pipelock.name]: pipelock, [egress.name]: egress };
  const snapshot = () => [fx.layout.routesFile, fx.layout.policyFile, fx.layout.pipelockFile].map((f) => fs.readFileSync(f, "utf8"));
  const stackFile = path.join(fx.projectDir, "Pulumi.dev.yaml");
  const approve = async (id: string) => {
    const c = capture();
    const code = await main(["approve", id], { io: c.io, bottles: dirBottles(home), apply: { usePulumi: false, by: "alice", sidecar: (n) => sidecars[n]!, timing: FAST } });
    return { code, out: c.out, err: c.err };
  };
  return { home, fx, sup, pipelock, egress, snapshot, stackFile, approve };
}

const newRoute = () => parseRoutesDocument({ version: 1, routes: [...INITIAL_ROUTES.routes, { host: "pypi.example.org", methods: ["GET"] }] });

test("a route approval is applied once pipelock and egress each log the sha256 of the file written", async (t) => {
  const w = await world();
  const { proposal } = await w.sup.propose({ kind: "egress_routes", routes: newRoute(), base: INITIAL_ROUTES }, "pip install");
  const r = await w.approve(proposal.id);
  t.is(r.code, 0, r.err.join("\n"));
  const pl = fs.readFileSync(w.fx.layout.pipelockFile, "utf8");
  const routes = fs.readFileSync(w.fx.layout.routesFile, "utf8");
  t.is(w.pipelock.runs, pl, "pipelock runs the new pipelock.yaml");
  t.is(w.egress.runs, routes, "egress runs the new routes.yaml");
  t.true(r.out.includes(`reload: cb-dev-pipelock loaded pipelock.yaml (sha256 ${sha256(pl).slice(0, 12)}…) in ${/in (\d+\.\d s)/.exec(r.out.find((l) => l.includes("cb-dev-pipelock loaded"))!)![1]}`));
  t.true(r.out.some((l) => l.startsWith(`reload: cb-dev-egress loaded routes.yaml (sha256 ${sha256(routes).slice(0, 12)}…)`)));
  t.true(await isDecided(w.fx.layout.superviseDir, proposal.id));
});

test("egress refuses the routes: not applied, pipelock.yaml and policy.yaml put back (and confirmed), the proposal stays pending, nothing persisted", async (t) => {
  const w = await world();
  const before = w.snapshot();
  const stackBefore = fs.readFileSync(w.stackFile, "utf8");
  const { proposal } = await w.sup.propose({ kind: "egress_routes", routes: newRoute(), base: INITIAL_ROUTES }, "pip install");
  // egress refuses any file holding "pypi" (as it refuses one that does not validate)
  const hang = w.egress.hangUp.bind(w.egress);
  w.egress.hangUp = async () => {
    const text = fs.readFileSync(w.fx.layout.routesFile, "utf8");
    if (text.includes("pypi")) w.egress.log.push(JSON.stringify({ level: "error", msg: "routes file NOT applied; the previous routes stay in force", error: "routes.yaml: routes[2]: TEST refusal", sha256: sha256(text) }));
    else await hang();
  };
  const r = await w.approve(proposal.id);
  t.is(r.code, 1);
  const err = r.err.join("\n");
  t.regex(err, /^bottle: not applied: cb-dev-egress refused routes\.yaml: routes\.yaml: routes\[2\]: TEST refusal; the previous routes\.yaml is back/);
  t.regex(err, /pipelock\.yaml restored \(cb-dev-pipelock loaded pipelock\.yaml/);
  t.regex(err, /The proposal stays pending/);
  t.deepEqual(w.snapshot(), before, "every live file is as before");
  t.is(w.pipelock.runs, before[2], "pipelock runs the previous config again");
  t.is(fs.readFileSync(w.stackFile, "utf8"), stackBefore, "nothing persisted into the stack config");
  t.false(await isDecided(w.fx.layout.superviseDir, proposal.id));
});

test("pipelock refuses a file it cannot load: not applied, never restarted into it", async (t) => {
  const w = await world();
  const before = w.snapshot();
  const { proposal } = await w.sup.propose({ kind: "pipelock_allowlist", allowlist: ["broken.example.com", "extra.example.org"], base: ["extra.example.org"] }, "x");
  const r = await w.approve(proposal.id);
  t.is(r.code, 1);
  t.regex(r.err.join("\n"), /not applied: cb-dev-pipelock refused pipelock\.yaml: config reload failed: invalid config/);
  t.is(w.pipelock.restarts, 0);
  t.deepEqual(w.snapshot(), before);
  t.false(await isDecided(w.fx.layout.superviseDir, proposal.id));
});

test("pipelock refuses on reload only (strict mode, a downgrade the operator made): restarted, confirmed at its start, the operator told what it cut", async (t) => {
  const w = await world();
  // the operator widened ssrf_ip_allowlist (the live policy) and the running pipelock predates it
  // (a hand edit, sealed as `bottle seal` does)
  const policy = seal(withoutSeal(fs.readFileSync(w.fx.layout.policyFile, "utf8")).replace("ssrf_ip_allowlist: []", "ssrf_ip_allowlist:\n  - 192.0.2.0/24"));
  t.not(policy, fs.readFileSync(w.fx.layout.policyFile, "utf8"));
  fs.writeFileSync(w.fx.layout.policyFile, policy);
  w.pipelock.downgrades = (file, runs) => file.includes("192.0.2.0/24") && !runs.includes("192.0.2.0/24");
  const { proposal } = await w.sup.propose({ kind: "pipelock_allowlist", allowlist: ["docs.example.net", "extra.example.org"], base: ["extra.example.org"] }, "docs");
  const r = await w.approve(proposal.id);
  t.is(r.code, 0, r.err.join("\n"));
  t.is(w.pipelock.restarts, 1);
  t.is(w.pipelock.runs, fs.readFileSync(w.fx.layout.pipelockFile, "utf8"));
  const line = r.out.find((l) => l.startsWith("reload: cb-dev-pipelock refused pipelock.yaml"))!;
  t.regex(line, /rejected: security downgrade from strict mode/);
  t.regex(line, /cb-dev-pipelock was restarted \(same container\) and started with pipelock\.yaml/);
  t.regex(line, /requests in flight through it .* were cut/);
});

test("without a docker CLI the approval cannot be confirmed: refused before anything is written", async (t) => {
  const w = await world();
  const before = w.snapshot();
  const { proposal } = await w.sup.propose({ kind: "pipelock_allowlist", allowlist: ["docs.example.net", "extra.example.org"], base: ["extra.example.org"] }, "docs");
  const c = capture();
  const saved = process.env.PATH;
  process.env.PATH = "/nonexistent";
  let code: number;
  try {
    code = await main(["approve", proposal.id], { io: c.io, bottles: dirBottles(w.home), apply: { usePulumi: false, by: "alice" } });
  } finally {
    process.env.PATH = saved;
  }
  t.is(code, 1);
  t.regex(c.err.join("\n"), /no docker CLI on PATH.*nothing was changed/);
  t.deepEqual(w.snapshot(), before);
});
