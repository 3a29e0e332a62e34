// git-gate end to end on this host: the gate's real entrypoint and hooks under a real
// git daemon, real gitleaks, and a real OpenSSH server as the upstream. The "agent" reaches
// the upstream only through the gate (insteadOf from agentGitConfig; its own ssh is `false`).
import test from "ava";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureGitleaks } from "./helpers/gitleaks.ts";
import { GATE_DIR, ensureGateTools, must, plainGitEnv, run, startGate, type Gate } from "./helpers/git-gate.ts";
import { freePort, startSshd, type Sshd } from "./helpers/sshd.ts";

let sshd: Sshd;
let gitleaks: string;
let root: string;
const cleanups: (() => Promise<void> | void)[] = [];

test.before(async () => {
  ensureGateTools();
  gitleaks = ensureGitleaks();
  sshd = await startSshd();
  root = fs.mkdtempSync(path.join(os.tmpdir(), "cb-gg-it-"));
  cleanups.push(() => sshd.stop(), () => fs.rmSync(sshd.dir, { recursive: true, force: true }), () => fs.rmSync(root, { recursive: true, force: true }));
});

test.after.always(async () => {
  for (const c of cleanups.reverse()) await c();
});

let seq = 0;
/** A bare upstream repo with two commits on `branch` (its default), served by `server`. */
async function makeUpstream(opts: { branch?: string; server?: Sshd } = {}) {
  const server = opts.server ?? sshd;
  const branch = opts.branch ?? "main";
  const dir = path.join(root, `up${++seq}`);
  fs.mkdirSync(dir);
  const env = plainGitEnv(dir);
  const bare = path.join(dir, "upstream.git");
  await must("git", ["init", "-q", "--bare", "-b", branch, bare], { env });
  const work = path.join(dir, "dev");
  await must("git", ["clone", "-q", bare, work], { env });
  const git = (...args: string[]) => must("git", args, { cwd: work, env });
  await git("checkout", "-q", "-b", branch);
  fs.writeFileSync(path.join(work, "README.md"), "# upstream\n");
  await git("add", ".");
  await git("commit", "-q", "-m", "initial");
  fs.writeFileSync(path.join(work, "app.py"), "print('hello')\n");
  await git("add", ".");
  await git("commit", "-q", "-m", "app");
  await git("tag", "v1");
  await git("push", "-q", "origin", branch, "v1");
  return {
    bare,
    url: server.url(bare),
    /** A commit made directly on the upstream, out of band of the gate. */
    async commitOutOfBand(file: string, content: string, message = `out-of-band ${file}`) {
      await git("fetch", "-q", "origin");
      await git("reset", "-q", "--hard", `origin/${branch}`);
      fs.writeFileSync(path.join(work, file), content);
      await git("add", ".");
      await git("commit", "-q", "-m", message);
      await git("push", "-q", "origin", branch);
      return (await git("rev-parse", "HEAD")).trim();
    },
    refs: async () => (await must("git", ["--git-dir", bare, "for-each-ref", "--format=%(objectname) %(refname)"], { env })).trim(),
    head: async (ref = branch) => (await must("git", ["--git-dir", bare, "rev-parse", ref], { env })).trim(),
  };
}

async function gateFor(upstreams: { name: string; url: string; known_host_key?: string; key?: string }[], env?: NodeJS.ProcessEnv): Promise<Gate> {
  const gate = await startGate({ upstreams: upstreams.map((u) => ({ key: sshd.clientKey, known_host_key: sshd.hostKey, ...u })), gitleaks, env });
  cleanups.push(() => gate.stop());
  return gate;
}

/** An AWS-access-key-shaped string gitleaks's default rules flag (random, never a real key). */
function fakeAwsKey(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let s = "AKIA";
  for (const b of crypto.randomBytes(16)) s += alphabet[b % 32];
  return s;
}

async function agentClone(gate: Gate, url: string, dir: string) {
  const r = await gate.agentGit(["clone", "-q", url, dir]);
  if (r.code !== 0) throw new Error(`agent clone failed: ${r.stderr}\n--- gate log ---\n${gate.log()}`);
  const git = (...args: string[]) => gate.agentGit(args, dir);
  return git;
}

test("clone through the gate equals the upstream (refs, tags, HEAD on the default branch)", async (t) => {
  const up = await makeUpstream();
  const upMaster = await makeUpstream({ branch: "master" });
  const gate = await gateFor([
    { name: "app", url: up.url },
    { name: "legacy", url: upMaster.url },
  ]);
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir); // the upstream's own URL: insteadOf sends it to the gate
  t.is((await git("config", "remote.origin.url")).stdout.trim(), up.url, "the agent keeps the upstream URL");
  t.is((await git("rev-parse", "HEAD")).stdout.trim(), await up.head());
  t.is((await git("rev-parse", "v1")).stdout.trim(), await up.head("v1"));
  t.is((await git("symbolic-ref", "refs/remotes/origin/HEAD")).stdout.trim(), "refs/remotes/origin/main");
  // Refs the gate advertises are exactly the upstream's.
  const lsGate = (await gate.agentGit(["ls-remote", up.url])).stdout.trim().split("\n").filter((l) => !l.endsWith("\tHEAD") && !l.endsWith("^{}"));
  t.deepEqual(lsGate.map((l) => l.replace("\t", " ")).sort(), (await up.refs()).split("\n").sort());
  // A master-default upstream: HEAD follows it.
  const git2 = await agentClone(gate, upMaster.url.replace(/\.git$/, ""), path.join(gate.dir, "agent", "legacy"));
  t.is((await git2("rev-parse", "--abbrev-ref", "HEAD")).stdout.trim(), "master");
  t.is((await git2("rev-parse", "HEAD")).stdout.trim(), await upMaster.head());
  // The image's HEALTHCHECK sees the listening daemon.
  const health = await run("bash", [path.join(GATE_DIR, "healthcheck.sh")], { env: { ...process.env, GIT_GATE_PORT: String(gate.port) } });
  t.is(health.code, 0);
});

test("an out-of-band upstream commit shows on the agent's next fetch, pull and ls-remote", async (t) => {
  const up = await makeUpstream();
  const gate = await gateFor([{ name: "app", url: up.url }]);
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir);
  const sha = await up.commitOutOfBand("NEWS.md", "news\n");
  t.true((await gate.agentGit(["ls-remote", up.url, "refs/heads/main"])).stdout.startsWith(sha));
  const fetched = await git("fetch", "origin");
  t.is(fetched.code, 0, fetched.stderr);
  t.is((await git("rev-parse", "origin/main")).stdout.trim(), sha);
  const sha2 = await up.commitOutOfBand("NEWS.md", "more news\n");
  t.is((await git("pull", "-q", "--ff-only")).code, 0);
  t.is((await git("rev-parse", "HEAD")).stdout.trim(), sha2);
});

test("a clean push lands upstream (branch, new branch, tag) and the mirror matches", async (t) => {
  const up = await makeUpstream();
  const gate = await gateFor([{ name: "app", url: up.url }]);
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir);
  fs.writeFileSync(path.join(dir, "app.py"), "print('hello, gate')\n");
  await git("commit", "-qam", "greet the gate");
  const pushed = await git("push", "origin", "main");
  t.is(pushed.code, 0, pushed.stderr + gate.log());
  t.regex(pushed.stderr, /gitleaks: 1 new commit\(s\) and 1 ref\(s\) scanned, no secrets found/);
  t.regex(pushed.stderr, /forwarded to upstream app: refs\/heads\/main/);
  const head = (await git("rev-parse", "HEAD")).stdout.trim();
  t.is(await up.head(), head);
  await git("checkout", "-qb", "feature");
  fs.writeFileSync(path.join(dir, "feature.txt"), "feature\n");
  await git("add", ".");
  await git("commit", "-qm", "feature");
  await git("tag", "-a", "v2", "-m", "v2");
  const r2 = await git("push", "origin", "feature", "v2");
  t.is(r2.code, 0, r2.stderr);
  t.is(await up.head("feature"), (await git("rev-parse", "feature")).stdout.trim());
  t.is(await up.head("v2"), (await git("rev-parse", "v2")).stdout.trim());
  t.is((await must("git", ["--git-dir", gate.mirror("app"), "rev-parse", "feature"])).trim(), await up.head("feature"));
  t.true(gate.audit().some((e) => e.event === "push-forwarded"));
});

test("a push adding an AWS-key-shaped string is rejected whole: rule and file:line shown, never the secret; upstream unchanged", async (t) => {
  const up = await makeUpstream();
  const gate = await gateFor([{ name: "app", url: up.url }]);
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir);
  const before = await up.refs();
  const secret = fakeAwsKey();
  // A clean branch and a dirty one in one push: nothing of it may land.
  await git("checkout", "-qb", "clean");
  fs.writeFileSync(path.join(dir, "clean.txt"), "nothing to see\n");
  await git("add", ".");
  await git("commit", "-qm", "clean");
  await git("checkout", "-q", "main");
  fs.writeFileSync(path.join(dir, "settings.py"), `DEBUG = True\nREGION = "eu-west-1"\nAWS_ACCESS_KEY_ID = "${secret}"  # gitleaks:allow\n`);
  await git("add", ".");
  await git("commit", "-qm", "add settings");
  // ... and a later commit that removes it again: the pushed history still holds the secret.
  fs.writeFileSync(path.join(dir, "settings.py"), `DEBUG = True\n`);
  await git("commit", "-qam", "oops, remove key");
  const dirtySha = (await git("rev-parse", "HEAD~1")).stdout.trim();
  const r = await git("push", "origin", "main", "clean");
  t.not(r.code, 0);
  t.regex(r.stderr, /push REJECTED: gitleaks found 1 possible secret/);
  t.regex(r.stderr, /aws-access-token\s+settings\.py:3\s/);
  t.true(r.stderr.includes(dirtySha.slice(0, 12)));
  t.regex(r.stderr, /nothing was forwarded to the upstream/);
  t.regex(r.stderr, /\[remote rejected\] main -> main/);
  t.regex(r.stderr, /\[remote rejected\] clean -> clean/);
  t.false(r.stderr.includes(secret), "the rejection must not echo the secret");
  t.false(r.stderr.includes(secret.slice(4)), "not even part of it");
  t.is(await up.refs(), before, "upstream unchanged");
  t.is((await run("git", ["--git-dir", gate.mirror("app"), "cat-file", "-e", dirtySha])).code === 0, false, "the mirror keeps no pushed objects");
  t.is((await run("git", ["--git-dir", gate.mirror("app"), "rev-parse", "--verify", "-q", "refs/heads/clean"])).code, 1);
  // The audit log records the rule and place, not the secret.
  const audit = fs.readFileSync(gate.auditLog, "utf8");
  t.regex(audit, /push-rejected/);
  t.false(audit.includes(secret));
});

test("a secret added by a merge commit itself (evil merge) is caught", async (t) => {
  const up = await makeUpstream();
  const gate = await gateFor([{ name: "app", url: up.url }]);
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir);
  await git("checkout", "-qb", "side");
  fs.writeFileSync(path.join(dir, "side.txt"), "side\n");
  await git("add", ".");
  await git("commit", "-qm", "side");
  await git("checkout", "-q", "main");
  fs.writeFileSync(path.join(dir, "main.txt"), "main\n");
  await git("add", ".");
  await git("commit", "-qm", "main");
  await git("merge", "-q", "--no-commit", "side");
  fs.writeFileSync(path.join(dir, "deploy.sh"), `export AWS_ACCESS_KEY_ID=${fakeAwsKey()}\n`);
  await git("add", ".");
  await git("commit", "-qm", "merge side");
  const r = await git("push", "origin", "main");
  t.not(r.code, 0);
  t.regex(r.stderr, /aws-access-token\s+deploy\.sh:1\s/);
});

test("only the pushed commits are scanned: a secret already upstream does not block a clean push", async (t) => {
  const up = await makeUpstream();
  await up.commitOutOfBand("legacy.env", `AWS_ACCESS_KEY_ID=${fakeAwsKey()}\n`);
  const gate = await gateFor([{ name: "app", url: up.url }]);
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir);
  fs.writeFileSync(path.join(dir, "ok.txt"), "fine\n");
  await git("add", ".");
  await git("commit", "-qm", "clean change");
  const r = await git("push", "origin", "main");
  t.is(r.code, 0, r.stderr);
  t.is(await up.head(), (await git("rev-parse", "HEAD")).stdout.trim());
});

test("two upstreams on one host:port each use their own identity (deploy keys), including reused connections", async (t) => {
  const a = await makeUpstream();
  const b = await makeUpstream();
  const gate = await gateFor([
    { name: "a", url: a.url, key: sshd.authorizeDeployKey(a.bare) },
    { name: "b", url: b.url, key: sshd.authorizeDeployKey(b.bare) },
  ]);
  for (const [name, up] of [["a", a], ["b", b], ["a", a]] as const) {
    const dir = path.join(gate.dir, "agent", `${name}-${crypto.randomUUID()}`);
    const git = await agentClone(gate, up.url, dir);
    fs.writeFileSync(path.join(dir, `${name}.txt`), `${name}\n`);
    await git("add", ".");
    await git("commit", "-qm", name);
    const r = await git("push", "origin", "main");
    t.is(r.code, 0, r.stderr);
    t.is(await up.head(), (await git("rev-parse", "HEAD")).stdout.trim());
  }
});

test("wrong pinned host key: the gate refuses to talk to the upstream (no TOFU)", async (t) => {
  const up = await makeUpstream();
  const other = path.join(root, "other_hostkey");
  await must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
  const wrongKey = fs.readFileSync(`${other}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
  const gate = await gateFor([{ name: "app", url: up.url, known_host_key: wrongKey }]);
  const r = await gate.agentGit(["clone", "-q", up.url, "app"]);
  t.not(r.code, 0);
  t.regex(r.stderr, /git-gate: cannot fetch upstream "app"/);
  t.regex(r.stderr, /Host key verification failed/);
  // Pushing is refused the same way (the access hook runs before receive-pack too).
  const work = path.join(gate.dir, "agent", "local");
  await must("git", ["init", "-q", work], { env: gate.agentEnv });
  await must("git", ["commit", "-q", "--allow-empty", "-m", "x"], { cwd: work, env: gate.agentEnv });
  const p = await gate.agentGit(["push", up.url, "HEAD:refs/heads/x"], work);
  t.not(p.code, 0);
  t.regex(p.stderr, /Host key verification failed/);
  t.is((await run("git", ["--git-dir", up.bare, "rev-parse", "--verify", "-q", "refs/heads/x"])).code, 1);
  const refused = gate.audit().filter((e) => e.event === "refused");
  t.deepEqual(refused.map((e) => e.service).sort(), ["receive-pack", "upload-pack"]);
});

test("no pinned host key: the gate does not start", async (t) => {
  const up = await makeUpstream();
  const err = await t.throwsAsync(startGate({ upstreams: [{ name: "app", url: up.url, key: sshd.clientKey }], gitleaks }));
  t.regex(err!.message, /known_host_key \(the gate never trusts on first use\)/);
});

test("unreachable upstream: fetch, clone and push fail instead of serving the stale mirror", async (t) => {
  const own = await startSshd();
  cleanups.push(() => own.stop(), () => fs.rmSync(own.dir, { recursive: true, force: true }));
  const up = await makeUpstream({ server: own });
  const gate = await startGate({ upstreams: [{ name: "app", url: up.url, key: own.clientKey, known_host_key: own.hostKey }], gitleaks });
  cleanups.push(() => gate.stop());
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir);
  await up.commitOutOfBand("late.txt", "late\n"); // the mirror has not seen this one
  await own.stop();
  const f = await git("fetch", "origin");
  t.not(f.code, 0);
  t.regex(f.stderr, /git-gate: cannot fetch upstream "app" .*refusing to serve a possibly stale mirror/);
  t.regex(f.stderr, /Connection refused|Connection closed|Broken pipe|connect to host/);
  const c = await gate.agentGit(["clone", "-q", up.url, "again"]);
  t.not(c.code, 0);
  fs.writeFileSync(path.join(dir, "x.txt"), "x\n");
  await git("add", ".");
  await git("commit", "-qm", "x");
  const p = await git("push", "origin", "main");
  t.not(p.code, 0);
  // And an upstream that was never reachable.
  const closed = await freePort();
  const gate2 = await gateFor([{ name: "gone", url: `ssh://${sshd.user}@127.0.0.1:${closed}/nowhere.git` }]);
  const r = await gate2.agentGit(["ls-remote", `ssh://${sshd.user}@127.0.0.1:${closed}/nowhere.git`]);
  t.not(r.code, 0);
  t.regex(r.stderr, /cannot fetch upstream "gone"/);
});

test("a push the upstream refuses fails, and the mirror keeps neither refs nor objects", async (t) => {
  const up = await makeUpstream();
  const hook = path.join(up.bare, "hooks", "pre-receive");
  fs.writeFileSync(hook, "#!/bin/sh\necho 'upstream policy: no pushes today' >&2\nexit 1\n", { mode: 0o755 });
  const gate = await gateFor([{ name: "app", url: up.url }]);
  const dir = path.join(gate.dir, "agent", "app");
  const git = await agentClone(gate, up.url, dir);
  const before = await up.refs();
  const mirrorBefore = await must("git", ["--git-dir", gate.mirror("app"), "for-each-ref"]);
  fs.writeFileSync(path.join(dir, "y.txt"), "y\n");
  await git("add", ".");
  await git("commit", "-qm", "y");
  const sha = (await git("rev-parse", "HEAD")).stdout.trim();
  const r = await git("push", "origin", "main");
  t.not(r.code, 0);
  t.regex(r.stderr, /push FAILED: the upstream "app" .* did not accept it/);
  t.regex(r.stderr, /upstream policy: no pushes today/);
  t.is(await up.refs(), before);
  t.is(await must("git", ["--git-dir", gate.mirror("app"), "for-each-ref"]), mirrorBefore);
  t.not((await run("git", ["--git-dir", gate.mirror("app"), "cat-file", "-e", sha])).code, 0);
  t.true(gate.audit().some((e) => e.event === "push-forward-failed"));
});

// ---------------------------------------------------------------------------------------------
// History protection (issue 14, item 1): delete, force-push, push --mirror and tag rewrites are
// refused by default with the reason and how the operator allows them; fast-forwards go through.

/** An upstream with main, a second branch `feature` and tag v1, cloned by the agent through the gate. */
async function historyWorld(policy: { protected_refs?: string[]; allow_force_push?: boolean; allow_delete?: boolean } = {}) {
  const up = await makeUpstream();
  await up.commitOutOfBand("f.txt", "feature\n");
  await must("git", ["--git-dir", up.bare, "branch", "feature", "main~1"]);
  const gate = await gateFor([{ name: "app", url: up.url, ...policy }]);
  const dir = path.join(gate.dir, "agent", `app-${crypto.randomUUID()}`);
  const git = await agentClone(gate, up.url, dir);
  return { up, gate, dir, git };
}

const HISTORY_CASES: { title: string; run: (w: Awaited<ReturnType<typeof historyWorld>>) => Promise<{ code: number | null; stderr: string }>; why: RegExp }[] = [
  { title: "deleting a branch (git push origin :feature)", run: ({ git }) => git("push", "origin", ":feature"), why: /refs\/heads\/feature: deleting it — refused: allow_delete is off for upstream "app"/ },
  { title: "deleting the default branch", run: ({ git }) => git("push", "origin", "--delete", "main"), why: /refs\/heads\/main: deleting it — refused: it matches protected_refs "HEAD \(refs\/heads\/main\)"/ },
  {
    title: "force-pushing a rewrite",
    run: async ({ git }) => {
      await git("commit", "-q", "--amend", "-m", "rewritten");
      return git("push", "-f", "origin", "main");
    },
    why: /refs\/heads\/main: a non-fast-forward update \(it rewrites history the upstream has\) — refused: it matches protected_refs "HEAD/,
  },
  {
    title: "force-pushing a rewrite of a non-default branch",
    run: async ({ git }) => {
      await git("checkout", "-q", "feature");
      await git("commit", "-q", "--amend", "-m", "rewritten feature");
      return git("push", "-f", "origin", "feature");
    },
    why: /refs\/heads\/feature: a non-fast-forward update .* — refused: allow_force_push is off/,
  },
  {
    title: "push --mirror from a bare repository (deletes what it lacks)",
    run: async ({ gate, up }) => {
      const bare = path.join(gate.dir, "agent", `mirror-${crypto.randomUUID()}.git`);
      await must("git", ["init", "-q", "--bare", bare], { env: gate.agentEnv });
      const work = path.join(gate.dir, "agent", `w-${crypto.randomUUID()}`);
      await must("git", ["init", "-q", work], { env: gate.agentEnv });
      await must("git", ["commit", "-q", "--allow-empty", "-m", "orphan"], { cwd: work, env: gate.agentEnv });
      await must("git", ["push", "-q", bare, "HEAD:refs/heads/other"], { cwd: work, env: gate.agentEnv });
      return gate.agentGit(["push", "--mirror", up.url], bare);
    },
    why: /refs\/heads\/feature: deleting it — refused/,
  },
  {
    title: "moving an existing tag (git tag -f v1; git push -f origin v1)",
    run: async ({ git }) => {
      await git("tag", "-f", "v1", "HEAD");
      return git("push", "-f", "origin", "v1");
    },
    why: /refs\/tags\/v1: moving an existing tag — refused: it matches protected_refs "refs\/tags\/\*"/,
  },
  { title: "deleting a tag", run: ({ git }) => git("push", "origin", ":refs/tags/v1"), why: /refs\/tags\/v1: deleting it — refused: it matches protected_refs "refs\/tags\/\*"/ },
];

for (const c of HISTORY_CASES) {
  test(`history is protected by default: ${c.title} is refused, the upstream unchanged`, async (t) => {
    const w = await historyWorld();
    const before = await w.up.refs();
    const r = await c.run(w);
    t.not(r.code, 0, r.stderr);
    t.regex(r.stderr, /push REJECTED: it would destroy history the upstream has, which the gate protects/);
    t.regex(r.stderr, c.why);
    t.regex(r.stderr, /Only the operator can allow this, in the bottle manifest, on git upstream "app": allow_delete: true/);
    t.regex(r.stderr, /No supervise tool can lift this\. To propose a rewrite, push it to a NEW branch/);
    t.is(await w.up.refs(), before, "upstream refs unchanged");
    t.true(w.gate.audit().some((e) => e.event === "push-rejected" && e.reason === "history"));
  });
}

test("history: a fast-forward, a new branch and a new tag are forwarded under the default policy", async (t) => {
  const { up, dir, git } = await historyWorld();
  fs.writeFileSync(path.join(dir, "ff.txt"), "ff\n");
  await git("add", ".");
  await git("commit", "-qm", "fast-forward");
  await git("tag", "v2");
  const r = await git("push", "origin", "main", "HEAD:refs/heads/main-rewrite", "v2");
  t.is(r.code, 0, r.stderr);
  const head = (await git("rev-parse", "HEAD")).stdout.trim();
  t.is(await up.head(), head);
  t.is(await up.head("main-rewrite"), head);
  t.is(await up.head("v2"), head);
});

test("history: the operator's allow_force_push / allow_delete apply to refs outside protected_refs only", async (t) => {
  const { up, git } = await historyWorld({ allow_force_push: true, allow_delete: true, protected_refs: ["HEAD", "refs/heads/release/*", "refs/tags/*"] });
  await must("git", ["--git-dir", up.bare, "branch", "release/1", "main"]);
  await git("fetch", "-q", "origin");
  // feature: rewritable and deletable now.
  await git("checkout", "-q", "feature");
  await git("commit", "-q", "--amend", "-m", "rewritten feature");
  const forced = await git("push", "-f", "origin", "feature");
  t.is(forced.code, 0, forced.stderr);
  t.is(await up.head("feature"), (await git("rev-parse", "HEAD")).stdout.trim());
  const deleted = await git("push", "origin", ":feature");
  t.is(deleted.code, 0, deleted.stderr);
  t.is((await run("git", ["--git-dir", up.bare, "rev-parse", "--verify", "-q", "refs/heads/feature"])).code, 1);
  // A pattern in protected_refs still holds: release/1 and main.
  const rel = await git("push", "origin", ":release/1");
  t.regex(rel.stderr, /refs\/heads\/release\/1: deleting it — refused: it matches protected_refs "refs\/heads\/release\/\*"/);
  // --force-with-lease keeps its meaning through the gate: a stale lease is refused, not clobbered.
  await git("checkout", "-q", "-b", "topic", "origin/main");
  const t1 = await git("push", "origin", "topic");
  t.is(t1.code, 0, t1.stderr);
  await must("git", ["--git-dir", up.bare, "update-ref", "refs/heads/topic", "main~1"]);
  await git("commit", "-q", "--allow-empty", "-m", "on top");
  const leased = await git("push", "--force-with-lease=topic:" + (await git("rev-parse", "origin/main")).stdout.trim(), "origin", "topic");
  t.not(leased.code, 0);
  t.regex(leased.stderr, /stale info/);
  t.is(await up.head("topic"), await up.head("main~1"));
});

// ---------------------------------------------------------------------------------------------
// The scan sees everything that leaves (issue 14, item 4): every path, file names, commit and
// tag messages, ref names, tags on commits the upstream already has.

const SCAN_CASES: { title: string; setup: (dir: string, git: (...a: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>, key: string) => Promise<string[]>; where: RegExp }[] = [
  { title: "a key under node_modules/", setup: async (dir, git, key) => (write(dir, "node_modules/pkg/creds.ini", `aws_access_key_id = ${key}\n`), await commitAll(git, "vendor"), ["origin", "main"]), where: /node_modules\/pkg\/creds\.ini:1/ },
  { title: "a key in package-lock.json", setup: async (dir, git, key) => (write(dir, "package-lock.json", `{"lockfileVersion": 3, "token": "${key}"}\n`), await commitAll(git, "lock"), ["origin", "main"]), where: /package-lock\.json:1/ },
  { title: "a key inside a binary *.png", setup: async (dir, git, key) => (write(dir, "logo.png", Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0"), Buffer.from(`\ntEXt aws_access_key_id=${key}\n`), Buffer.alloc(16)])), await commitAll(git, "logo"), ["origin", "main"]), where: /logo\.png:\d+/ },
  { title: "a key in go.sum", setup: async (dir, git, key) => (write(dir, "go.sum", `example.com/m v1.0.0 h1:${key}=\n`), await commitAll(git, "deps"), ["origin", "main"]), where: /go\.sum:1/ },
  { title: "a key as a file name", setup: async (dir, git, key) => (write(dir, `${key}.txt`, "harmless\n"), await commitAll(git, "notes"), ["origin", "main"]), where: /a file name changed by commit [0-9a-f]{12}/ },
  { title: "a key in a commit message", setup: async (_dir, git, key) => (await git("commit", "-q", "--allow-empty", "-m", `deploy with aws_access_key_id=${key}`), ["origin", "main"]), where: /commit [0-9a-f]{12} message, line 1/ },
  { title: "a key in an annotated tag message", setup: async (dir, git, key) => (write(dir, "x.txt", "x\n"), await commitAll(git, "x"), await git("tag", "-a", "v9", "-m", `release key ${key}`), ["origin", "main", "v9"]), where: /annotated tag [0-9a-f]{12} message, line 1/ },
  { title: "an annotated tag on a commit the upstream already has", setup: async (_dir, git, key) => (await git("tag", "-a", "old-tag", "HEAD~1", "-m", `aws_access_key_id=${key}`), ["origin", "old-tag"]), where: /annotated tag [0-9a-f]{12} message, line 1/ },
  { title: "a key as the name of a lightweight tag on an existing commit", setup: async (_dir, git, key) => (await git("tag", key, "HEAD"), ["origin", `refs/tags/${key}`]), where: /the name of pushed ref #1/ },
];

function write(dir: string, file: string, content: string | Buffer) {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), content);
}
async function commitAll(git: (...a: string[]) => Promise<unknown>, msg: string) {
  await git("add", "-A");
  await git("commit", "-qm", msg);
}

for (const c of SCAN_CASES) {
  test(`the push scan sees everything that leaves: ${c.title} is refused with rule and place, never the secret`, async (t) => {
    const up = await makeUpstream();
    const gate = await gateFor([{ name: "app", url: up.url }]);
    const dir = path.join(gate.dir, "agent", "app");
    const git = await agentClone(gate, up.url, dir);
    const key = fakeAwsKey();
    const before = await up.refs();
    const args = await c.setup(dir, git, key);
    const r = await git("push", ...args);
    t.not(r.code, 0, r.stderr);
    t.regex(r.stderr, /push REJECTED: gitleaks found \d+ possible secret/);
    t.regex(r.stderr, /aws-access-token  /);
    t.regex(r.stderr, c.where);
    const remote = r.stderr.split("\n").filter((l) => l.startsWith("remote:")).join("\n");
    t.false(remote.includes(key.slice(4)), `the gate's answer never holds the secret:\n${remote}`);
    t.is(await up.refs(), before, "upstream unchanged");
    const audit = fs.readFileSync(gate.auditLog, "utf8");
    t.regex(audit, /"reason":"gitleaks"/);
    t.false(audit.includes(key.slice(4)), "nor does the audit log");
  });
}
