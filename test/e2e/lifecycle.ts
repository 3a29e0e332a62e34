// The stack's life under the REAL Pulumi engine, on the bottles the escape suite brought up
// (registered last, after the attacks): what a second preview and a refresh say, a live route
// change through `pulumi up`, what the state file holds, the policy pack over what the engine
// reports, an approval persisted through the real CLI, and what `pulumi destroy` leaves.
import type { ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import type { BottleUnderTest, Harness } from "./harness.ts";
import { agentCurl } from "./functional.ts";
import { docker, dockerOk, sleep } from "./lib/docker.ts";
import { waitHealthy } from "./engine/double.ts";
import { sha256 } from "../../contracts/hash.ts";
import { pulumiCli } from "./engine/stack.ts";
import { describe as describeViolations, mandatory, runPolicies } from "../unit/helpers/run-pack.ts";

export interface LifecycleContext {
  h: () => Harness | undefined;
  A: () => BottleUnderTest;
  B: () => BottleUnderTest;
  bringUpError: () => Error | undefined;
}

export const lifecycleResults: { title: string; result: "passed" | "FAILED" | "not run"; detail: string }[] = [];

type Check = (t: ExecutionContext, h: Harness, A: BottleUnderTest, B: BottleUnderTest) => Promise<void>;

async function containerIds(b: BottleUnderTest): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [role, c] of Object.entries(b.containers)) out[role] = await dockerOk(["inspect", "-f", "{{.Id}} started={{.State.StartedAt}}", c.name]);
  return out;
}

/** `pulumi stack export --show-secrets`: the state as the engine keeps it, secrets decrypted. */
export async function exportWithSecrets(b: BottleUnderTest): Promise<any> {
  const cli = await pulumiCli();
  const out = execFileSync(cli.command, ["stack", "export", "--show-secrets", "--stack", b.bottle], {
    cwd: b.stack.workDir,
    env: { ...process.env, PULUMI_CONFIG_PASSPHRASE: b.stack.passphrase, PULUMI_HOME: path.join(b.stack.workDir, "pulumi-home"), PULUMI_SKIP_UPDATE_CHECK: "true" },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out);
}

/** Secret values in a `--show-secrets` export are {sig, plaintext: <JSON>}: the plain values, as the policy analyzer sees them. */
function plainOf(v: any): any {
  if (v && typeof v === "object" && typeof v.plaintext === "string" && Object.keys(v).length === 2) return plainOf(JSON.parse(v.plaintext));
  if (Array.isArray(v)) return v.map(plainOf);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainOf(x)]));
  return v;
}

function stateFiles(b: BottleUnderTest): string[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.json(\.bak|\.gz)?$|\.json\.\d+/.test(e.name) || e.name.endsWith(".bak")) files.push(p);
    }
  };
  walk(b.stack.backendDir);
  return files;
}

const onlySame = (summary: Record<string, number> | undefined) => Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && n > 0);

export function registerLifecycle(test: any, ctx: LifecycleContext): void {
  const check = (title: string, fn: Check) =>
    test.serial(`lifecycle: ${title}`, async (t: ExecutionContext) => {
      t.timeout(15 * 60_000);
      const e = ctx.bringUpError();
      if (e) return t.fail(`bring-up failed: ${e.message}`);
      const h = ctx.h();
      if (!h) return t.fail("no harness");
      try {
        await fn(t, h, ctx.A(), ctx.B());
      } catch (err) {
        lifecycleResults.push({ title, result: "FAILED", detail: (err as Error).message.slice(0, 200) });
        throw err;
      }
      lifecycleResults.push({ title, result: t.passed ? "passed" : "FAILED", detail: t.passed ? "" : "see the test log" });
    });

  check("a second `pulumi preview` of an unchanged bottle shows no change", async (t, _h, _A, B) => {
    const pv = await B.stack.stack.preview();
    t.log(JSON.stringify(pv.changeSummary));
    t.deepEqual(onlySame(pv.changeSummary), [], `preview wants changes: ${JSON.stringify(pv.changeSummary)}`);
  });

  check("`pulumi refresh` reads every resource back unchanged (the doubles' reads agree with their creates), and a preview after it shows no change", async (t, _h, _A, B) => {
    const rf = await B.stack.stack.refresh({ onOutput: () => undefined });
    t.log(JSON.stringify(rf.summary.resourceChanges));
    t.deepEqual(onlySame(rf.summary.resourceChanges as Record<string, number>), [], `refresh changed: ${JSON.stringify(rf.summary.resourceChanges)}`);
    const pv = await B.stack.stack.preview();
    t.deepEqual(onlySame(pv.changeSummary), [], `preview after refresh wants changes: ${JSON.stringify(pv.changeSummary)}`);
  });

  check("the state holds no secret in plaintext: not the token, not a CA private key (ciphertext only)", async (t, _h, A) => {
    const exported = await exportWithSecrets(A);
    const keys = exported.deployment.resources
      .filter((r: any) => r.type === "tls:index/privateKey:PrivateKey")
      .map((r: any) => String(plainOf(r.outputs.privateKeyPem)).split("\n")[1] ?? "")
      .filter((l: string) => l.length > 20);
    t.is(keys.length, 2, "both CA keys are in the (decrypted) export");
    const files = stateFiles(A);
    t.true(files.length > 0, "state files found");
    let ciphertexts = 0;
    for (const f of files) {
      const text = fs.readFileSync(f).toString("latin1");
      t.false(text.includes(A.token), `${path.basename(f)} holds the token in plaintext`);
      for (const k of keys) t.false(text.includes(k), `${path.basename(f)} holds a CA private key in plaintext`);
      ciphertexts += (text.match(/"ciphertext"/g) ?? []).length;
    }
    t.log(`${files.length} state files, ${ciphertexts} ciphertext fields`);
    t.true(ciphertexts > 0);
  });

  check("the policy pack passes over what the engine reports (the provider's outputs, as at `pulumi up`), and still refuses a broken bottle", async (t, _h, A) => {
    const exported = await exportWithSecrets(A);
    const resources = exported.deployment.resources
      .filter((r: any) => r.custom && !r.type.startsWith("pulumi:providers:"))
      .map((r: any) => ({ type: r.type, name: String(r.urn).split("::").pop(), inputs: plainOf(r.outputs ?? {}) }));
    const nets = resources.filter((r: any) => r.type === "docker:index/network:Network");
    t.true(nets.every((n: any) => n.inputs.ipamConfigs?.[0]?.gateway), "the engine reports an IPAM gateway for every network (inhibit_ipv4 or not)");
    const violations = mandatory(runPolicies(resources));
    t.deepEqual(violations, [], describeViolations(violations));
    // the same outputs with the agent on the outside network must fail
    const broken = structuredClone(resources);
    const agent = broken.find((r: any) => r.type === "docker:index/container:Container" && r.inputs.name?.endsWith("-agent"));
    agent.inputs.networksAdvanced.push({ name: A.networks.outside });
    t.true(mandatory(runPolicies(broken)).length > 0, "a broken bottle is refused on engine outputs too");
  });

  check("an approval persisted by `bottle approve` (real CLI) survives `pulumi up`: the config holds it, no container is replaced, the approved route stays served", async (t, _h, A) => {
    const routes = await A.stack.stack.getConfig("claude-bottle:routes");
    t.regex(routes.value, /approved\.example/, "the stack config holds the approved route");
    const before = await containerIds(A);
    const ops: string[] = [];
    await A.stack.stack.up({
      onOutput: () => undefined,
      onEvent: (e) => {
        const m = e.resourcePreEvent?.metadata;
        if (m && m.op !== "same") ops.push(`${m.op} ${m.type} ${m.urn.split("::").pop()}`);
      },
    });
    t.log(ops.join("; ") || "no change");
    // The dynamic provider host takes the whole stack config as its inputs, so a changed config
    // key also "updates" it (a no-op for it): the real engine's bookkeeping, not a resource change.
    t.true(ops.every((o) => o.startsWith("update pulumi-nodejs:dynamic:Resource") || o.startsWith("update pulumi:providers:pulumi-nodejs")), `only live config files may change: ${ops.join("; ")}`);
    t.deepEqual(await containerIds(A), before, "no container was replaced or restarted");
    const r = await agentCurl(A, "https://approved.example/after-up");
    t.is(r.status, 200, r.raw);
  });

  check("a change pipelock refuses live (strict mode: ssrf.ip_allowlist widened in the manifest) makes `pulumi up` restart pipelock: same container, started with exactly the new pipelock.yaml, the operator told what it cut", async (t, _h, _A, B) => {
    const pl = B.containers.pipelock!.name;
    const inspect = () => dockerOk(["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", pl]);
    const [id0, started0] = (await inspect()).split(" ");
    const others = Object.fromEntries(await Promise.all(Object.entries(B.containers).filter(([r]) => r !== "pipelock").map(async ([r, c]) => [r, await dockerOk(["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", c.name])])));
    // the operator widens the SSRF exemptions (TEST-NET-1: no address of this run lies there)
    B.vars = { ...B.vars, SSRF_ALLOW: [...(B.vars.SSRF_ALLOW as string[]), "192.0.2.0/24"] };
    B.setManifest(B.render({ ...B.vars }));
    let out = "";
    const ops: string[] = [];
    const res = await B.stack.stack.up({
      onOutput: (o) => (out += o),
      onEvent: (e) => {
        const m = e.resourcePreEvent?.metadata;
        if (m && m.op !== "same") ops.push(`${m.op} ${m.type} ${m.urn.split("::").pop()}`);
      },
    });
    t.log(ops.join("; "));
    t.log(out.split("\n").filter((l) => /claude-bottle|restart|refused/.test(l)).join("\n").slice(0, 1500));
    t.deepEqual(onlySame(res.summary.resourceChanges as Record<string, number>).map(([op]) => op), ["update"], `only in-place updates: ${JSON.stringify(res.summary.resourceChanges)}`);
    const [id1, started1] = (await inspect()).split(" ");
    t.is(id1, id0, "the pipelock container was not replaced");
    t.not(started1, started0, "it was restarted");
    for (const [r, c] of Object.entries(B.containers)) if (r !== "pipelock") t.is(await dockerOk(["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", c.name]), others[r], `${r} untouched`);
    const file = (await B.state.read(B.layout.pipelockFile))!;
    t.true(file.includes("192.0.2.0/24"));
    // the last start it logged (not --since StartedAt: a process can log before the daemon records its start)
    const starts = (await docker(["logs", pl])).stdout.split("\n").filter((l) => l.includes('"event":"startup"'));
    t.true(starts.length >= 2, "started twice: at bring-up and by the restart");
    t.true(starts.at(-1)!.includes(sha256(file)), `its start names exactly the new file (config_hash): ${starts.at(-1)}`);
    t.regex(out, /refused pipelock\.yaml: rejected: security downgrade from strict mode/, "the operator reads pipelock's refusal");
    t.regex(out, /was restarted \(same container\)[^\n]*in flight through it/, "and what the restart cut");
    const state = await exportWithSecrets(B);
    const live = state.deployment.resources.find((r: any) => r.type === "pulumi-nodejs:dynamic:Resource" && r.outputs?.kind === "pipelock-config");
    t.regex(String(live?.outputs?.reload ?? ""), /was restarted/, "the state keeps what the update did");
    await waitHealthy(pl, { timeoutS: 60 });
  });

  check("a live route change through `pulumi up` updates only the live config files: no container, image or network is replaced; the new route is served", async (t, _h, _A, B) => {
    const before = await containerIds(B);
    const blocked = await agentCurl(B, "https://approved.example/lifecycle");
    t.is(blocked.status, 403, blocked.raw);
    // the operator adds a route to the manifest
    const manifest = B.render({ ...B.vars });
    const doc = YAML.parse(fs.readFileSync(manifest, "utf8"));
    doc.bottles[B.bottle].egress.routes.push({ host: "approved.example", methods: ["GET"] });
    fs.writeFileSync(manifest, YAML.stringify(doc));
    B.setManifest(manifest);
    const ops: string[] = [];
    const res = await B.stack.stack.up({
      onOutput: () => undefined,
      onEvent: (e) => {
        const m = e.resourcePreEvent?.metadata;
        if (m && m.op !== "same") ops.push(`${m.op} ${m.type} ${m.urn.split("::").pop()}`);
      },
    });
    t.log(ops.join("; "));
    const changes = onlySame(res.summary.resourceChanges as Record<string, number>);
    t.deepEqual(changes.map(([op]) => op), ["update"], `only in-place updates: ${JSON.stringify(res.summary.resourceChanges)}`);
    t.true(ops.every((o) => o.startsWith("update pulumi-nodejs:dynamic:Resource")), `only live config files changed: ${ops.join("; ")}`);
    t.deepEqual(await containerIds(B), before, "no container was replaced or restarted");
    let after = await agentCurl(B, "https://approved.example/lifecycle");
    for (let i = 0; i < 20 && after.status !== 200; i++) {
      await sleep(500);
      after = await agentCurl(B, "https://approved.example/lifecycle");
    }
    t.is(after.status, 200, after.raw);
  });

  check("`pulumi destroy` leaves only what the README says: the agent's home and workspace volumes, the state volumes and the locally built images", async (t, h, _A, B) => {
    const left = await h.destroyBottle(B);
    t.log(JSON.stringify(left));
    t.deepEqual(left.containers, [], "no container left");
    t.deepEqual(left.networks, [], "no network left");
    const kept = [`${B.identity}-home`, `${B.identity}-workspace`, ...["audit", "egress", "pipelock", "record", "supervise"].map((v) => `${B.identity}-state-${v}`)];
    t.deepEqual(left.volumes.sort(), kept.map((v) => `${h.prefix}${v}`).sort(), "the agent's volumes and the state volumes are kept (retainOnDelete)");
    t.true(left.images.length >= 4, `the built images stay (the docker provider never deletes an image): ${left.images.join(", ")}`);
  });
}
