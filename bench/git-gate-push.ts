// Push (and no-op fetch) latency: straight to an SSH upstream vs through the git-gate.
//
//   node --import tsx bench/git-gate-push.ts [pushes=15]
//
// Upstream: a bare repo behind a real OpenSSH server on 127.0.0.1 (test/integration/helpers/
// sshd.ts). Direct: the client's own ssh with the same key and pinned host key. Gate: the
// gate's real scripts under git daemon on 127.0.0.1 (test/integration/helpers/git-gate.ts):
// every push = access-hook fetch from the upstream + gitleaks over the pushed commit +
// forward over SSH. Measured with and without the gate's ssh connection reuse
// (GIT_GATE_SSH_PERSIST). Each push is one new commit touching one small file.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureGitleaks } from "../test/integration/helpers/gitleaks.ts";
import { ensureGateTools, must, plainGitEnv, run, startGate } from "../test/integration/helpers/git-gate.ts";
import { startSshd } from "../test/integration/helpers/sshd.ts";
import { GITLEAKS_VERSION } from "../contracts/git-gate.ts";

const N = Number(process.argv[2] ?? 15);

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { median: q(0.5), p90: q(0.9), min: s[0]!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function main() {
  ensureGateTools();
  const gitleaks = ensureGitleaks();
  const sshd = await startSshd();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "cb-bench-gg-"));
  const stops: (() => Promise<void>)[] = [];
  try {
    const env = plainGitEnv(root);
    const bare = path.join(root, "upstream.git");
    await must("git", ["init", "-q", "--bare", "-b", "main", bare], { env });
    const seed = path.join(root, "seed");
    await must("git", ["clone", "-q", bare, seed], { env });
    for (let i = 0; i < 20; i++) {
      fs.writeFileSync(path.join(seed, `f${i}.txt`), `file ${i}\n`.repeat(50));
      await must("git", ["add", "."], { cwd: seed, env });
      await must("git", ["commit", "-q", "-m", `seed ${i}`], { cwd: seed, env });
    }
    await must("git", ["push", "-q", "origin", "main"], { cwd: seed, env });
    const url = sshd.url(bare);

    const known = path.join(root, "known_hosts");
    fs.writeFileSync(known, `[127.0.0.1]:${sshd.port} ${sshd.hostKey}\n`);
    const directEnv = {
      ...env,
      GIT_SSH_COMMAND: `ssh -F /dev/null -i '${sshd.clientKey}' -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='${known}' -o BatchMode=yes`,
    };

    type Case = { label: string; env: NodeJS.ProcessEnv };
    const cases: Case[] = [{ label: "direct (ssh to upstream)", env: directEnv }];
    for (const persist of ["60", "0"]) {
      const gate = await startGate({ upstreams: [{ name: "app", url, key: sshd.clientKey, known_host_key: sshd.hostKey }], gitleaks, env: { GIT_GATE_SSH_PERSIST: persist } });
      stops.push(() => gate.stop());
      cases.push({ label: persist === "0" ? "through git-gate, no ssh reuse (GIT_GATE_SSH_PERSIST=0)" : "through git-gate (default: ssh ControlPersist=60)", env: gate.agentEnv });
    }

    const rows: string[] = [];
    // Interleave the cases round by round so background load hits them alike.
    const work: Record<string, { dir: string; push: number[]; fetch: number[] }> = {};
    for (const c of cases) {
      const dir = path.join(root, `w-${cases.indexOf(c)}`);
      await must("git", ["clone", "-q", url, dir], { env: c.env });
      work[c.label] = { dir, push: [], fetch: [] };
    }
    for (let i = 0; i < N + 1; i++) {
      for (const c of cases) {
        const w = work[c.label]!;
        await must("git", ["pull", "-q", "--rebase", "origin", "main"], { cwd: w.dir, env: c.env });
        fs.writeFileSync(path.join(w.dir, `bench-${cases.indexOf(c)}.txt`), `push ${i}\n`);
        await must("git", ["add", "."], { cwd: w.dir, env: c.env });
        await must("git", ["commit", "-q", "-m", `bench ${i}`], { cwd: w.dir, env: c.env });
        const p = await run("git", ["push", "-q", "origin", "HEAD:main"], { cwd: w.dir, env: c.env, timeoutMs: 60_000 });
        if (p.code !== 0) throw new Error(`${c.label}: push failed: ${p.stderr}`);
        const f = await run("git", ["fetch", "-q", "origin"], { cwd: w.dir, env: c.env });
        if (f.code !== 0) throw new Error(`${c.label}: fetch failed: ${f.stderr}`);
        if (i > 0) {
          // round 0 is warm-up
          w.push.push(p.ms);
          w.fetch.push(f.ms);
        }
      }
    }
    const fmt = (n: number) => `${Math.round(n)}`;
    rows.push("| path | push median ms | push p90 | push min | no-op fetch median ms |", "| --- | --- | --- | --- | --- |");
    for (const c of cases) {
      const w = work[c.label]!;
      const ps = stats(w.push);
      rows.push(`| ${c.label} | ${fmt(ps.median)} | ${fmt(ps.p90)} | ${fmt(ps.min)} | ${fmt(stats(w.fetch).median)} |`);
    }
    const [l1, l5] = os.loadavg();
    console.log(rows.join("\n"));
    console.log(
      `\n${N} pushes per path (after 1 warm-up), interleaved; ${os.cpus().length} CPUs, load average ${l1!.toFixed(1)}/${l5!.toFixed(1)} (1/5 min); ` +
        `git ${(await must("git", ["--version"])).trim().replace("git version ", "")}, gitleaks ${GITLEAKS_VERSION}, ${(await run("ssh", ["-V"])).stderr.trim()}.`,
    );
  } finally {
    for (const s of stops) await s();
    await sshd.stop();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(sshd.dir, { recursive: true, force: true });
  }
}

await main();
