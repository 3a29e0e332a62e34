// Functional checks on the same bring-up as the escape suite (registered by escape.test.ts
// before the attacks, so nothing has been killed or reloaded yet): the allowed path works end
// to end, supervise is connected, an operator approval is live without replacing a
// container, and git goes through git-gate.
import type { ExecutionContext } from "ava";
import path from "node:path";
import YAML from "yaml";
import os from "node:os";
import { E2E_RUNTIMES, inContainer, type BottleUnderTest, type Harness } from "./harness.ts";
import type { LogEntry } from "./fake-internet.ts";
import { docker, dockerOk, sleep } from "./lib/docker.ts";
import { main as bottleCli } from "../../cli/commands.ts";
import { allProposals } from "../../store/bottles.ts";
import { pulumiCli } from "./engine/stack.ts";
import { sha256OfRun } from "../helpers/bytes.ts";
import { REDACTED } from "../../sidecars/egress/redact.ts";
import { daemonFacts } from "../../components/runtime.ts";

export interface FunctionalContext {
  h: () => Harness | undefined;
  A: () => BottleUnderTest;
  bringUpError: () => Error | undefined;
}

/** Outcomes for docs/security.md's "functional checks" table. */
export const functionalResults: { title: string; result: "passed" | "FAILED" | "not run"; detail: string }[] = [];

type Check = (t: ExecutionContext, h: Harness, A: BottleUnderTest) => Promise<void>;

/** curl inside the agent: status + body (through egress, as the agent's env says). */
export async function agentCurl(A: BottleUnderTest, args: string) {
  const r = await inContainer(A.containers.agent!.name, `curl -sS -m 15 -o /tmp/fbody -D /tmp/fhdr -w '%{http_code}' ${args}; echo; cat /tmp/fhdr; echo '<<<BODY>>>'; cat /tmp/fbody; rm -f /tmp/fbody /tmp/fhdr`, 30);
  const [head = "", body = ""] = r.out.split("<<<BODY>>>");
  const status = Number(/^(\d{3})/.exec(head.trim())?.[1] ?? 0);
  const reason = /x-claude-bottle-block-reason:\s*(\S+)/i.exec(head)?.[1] ?? "";
  let json: any;
  try {
    json = JSON.parse(body.trim());
  } catch {
    /* not JSON */
  }
  return { status, reason, body: body.trim(), json, raw: r.out.slice(0, 500) };
}

async function containerIds(A: BottleUnderTest): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [role, c] of Object.entries(A.containers)) out[role] = await dockerOk(["inspect", "-f", "{{.Id}} started={{.State.StartedAt}}", c.name]);
  return out;
}

export function registerFunctional(test: any, ctx: FunctionalContext): void {
  const check = (title: string, fn: Check, needs: string[] = []) =>
    test.serial(`functional: ${title}`, async (t: ExecutionContext) => {
      t.timeout(180_000);
      const e = ctx.bringUpError();
      if (e) return t.fail(`bring-up failed: ${e.message}`);
      const h = ctx.h();
      if (!h) return t.fail("no harness");
      const A = ctx.A();
      const missing = needs.filter((r) => !A.containers[r]);
      if (missing.length) {
        const why = `needs ${missing.join(", ")} (not in the bottle)`;
        functionalResults.push({ title, result: "not run", detail: why });
        return t.fail(`NOT RUN: ${why}`);
      }
      try {
        await fn(t, h, A);
      } catch (err) {
        functionalResults.push({ title, result: "FAILED", detail: (err as Error).message.slice(0, 200) });
        throw err;
      }
      functionalResults.push({ title, result: t.passed ? "passed" : "FAILED", detail: t.passed ? "" : "see the test log" });
    });

  // issue 15: gVisor is required where the engine lists runsc, and always under CI (.ci/run's
  // ensure-engine.sh registers it); elsewhere this check is a recorded "not run".
  const runscListed = "runsc" in (daemonFacts()?.runtimes ?? {});
  const gvisorTitle = "the attacked bottle's agent runs under gVisor (`runtime: auto` → runsc: another kernel inside, ls/stat work), its sidecars and the second bottle under runc";
  if (E2E_RUNTIMES.e2e === "auto" && !runscListed && !process.env.CI) {
    functionalResults.push({ title: gvisorTitle, result: "not run", detail: "the Docker engine lists no runsc (README: gVisor); every check here ran under runc" });
    test.skip(`functional: ${gvisorTitle} — NOT RUN (no runsc on this engine)`, () => undefined);
  } else {
    check(gvisorTitle, async (t, h, A) => {
      const B = h.bottles[1]!;
      t.is(A.outputs.runtime, "runsc", "runtime auto resolved to runsc (the pulumi up log says why not)");
      t.is(A.containers.agent!.runtime, "runsc", "docker inspect: the agent's HostConfig.Runtime");
      for (const [role, c] of Object.entries(A.containers)) if (role !== "agent") t.is(c.runtime, "runc", `${role} stays on runc`);
      t.is(B.containers.agent!.runtime, "runc", "the second bottle's agent");
      // gVisor's sentry answers uname itself; under runc the host kernel shows through
      const kernel = async (b: BottleUnderTest) => (await inContainer(b.containers.agent!.name, "uname -r")).out;
      t.not(await kernel(A), os.release(), "another kernel inside the runsc agent");
      t.is(await kernel(B), os.release(), "the host kernel inside the runc agent");
      // coreutils under Debian's runsc need the image's statx shim (sidecars/agent/statx-automount.c)
      for (const b of [A, B]) {
        const r = await inContainer(b.containers.agent!.name, "ls -la /workspace/hello.txt && stat -c '%F' /workspace && cat /etc/ld.so.preload");
        t.is(r.code, 0, `${b.bottle}: ${r.out}`);
        t.regex(r.out, /hello\.txt\ndirectory\n\/usr\/local\/lib\/claude-bottle\/statx-automount\.so$/, b.bottle);
      }
    });
  }

  check("an allowed HTTPS call reaches the upstream through egress and the pipelock container with the injected credential; the agent never held it", async (t, h, A) => {
    const before = (await h.internet.log("web")).length;
    // A Messages API body: on the LLM route egress reads and checks it (#17) before it goes on.
    const message = '{"model":"e2e","max_tokens":1,"messages":[{"role":"user","content":"hello"}]}';
    const r = await agentCurl(A, `-X POST -H 'content-type: application/json' -d '${message}' https://api.anthropic.com/v1/messages`);
    t.log(`HTTP ${r.status}; the echo the agent reads shows authorization=${String(r.json?.headers?.authorization ?? "").slice(0, 40)}`);
    t.is(r.status, 200, r.raw);
    t.is(r.json?.server, "web", "answered by the fake upstream");
    t.is(r.json?.headers?.authorization, REDACTED, "the upstream's echo of the injected token reaches the agent redacted");
    const seen = (await h.internet.log("web")).slice(before);
    t.true(seen.some((e) => e.path === "/v1/messages" && e.headers?.authorization === `Bearer ${A.token}` && e.body === message), "the upstream's own log has the request, byte for byte, with the token");
    // the last hop really was the pipelock container (the stand-in logs each CONNECT)
    const pl = await docker(["logs", A.containers.pipelock!.name]);
    t.regex(pl.stdout + pl.stderr, /api\.anthropic\.com:443/, "the request went through the pipelock container");
    // the agent never held the real token: env (host-side check) and files (pattern on stdin)
    const env = (await docker(["exec", A.containers.agent!.name, "env"])).stdout;
    t.false(env.includes(A.token), "token in the agent's env");
    t.regex(env, /CLAUDE_CODE_OAUTH_TOKEN=/, "the agent has a placeholder token");
    const files = await docker(["exec", "-i", A.containers.agent!.name, "sh", "-c", "grep -rlsF -f /dev/stdin / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null | head -3"], { input: A.token + "\n", timeoutMs: 90_000 });
    t.is(files.stdout.trim(), "", "token in the agent's filesystem");
  });

  check("Claude Code itself (`claude -p`) reaches the Anthropic API upstream through egress, trusting the bottle CA, with the injected token", async (t, h, A) => {
    // The fake upstream answers Claude Code as a (scripted) Messages API: the real client's
    // requests pass egress's LLM guard, over TLS egress minted, carrying the real token egress
    // injected in place of the placeholder, and its answer streams back.
    const before = (await h.internet.log("web")).length;
    const r = await docker(["exec", A.containers.agent!.name, "timeout", "60", "claude", "-p", "say hi", "--max-turns", "1"], { timeoutMs: 75_000 });
    t.log(`claude exit ${r.code}: ${(r.stdout + r.stderr).trim().split("\n").slice(-2).join(" / ").slice(0, 200)}`);
    t.is(r.code, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /hi from the fake Messages API/, "the answer came back through egress");
    const seen = (await h.internet.log("web")).slice(before).filter((e) => String(e.path).startsWith("/v1/messages"));
    t.true(seen.length > 0, "claude's request reached the upstream");
    t.true(seen.every((e) => e.headers?.authorization === `Bearer ${A.token}`), "every request carried the injected token, none the placeholder");
    t.false(JSON.stringify(seen).includes("claude-bottle-placeholder"), "the placeholder never left the bottle");
  });

  check("Claude Code's WebSearch tool works through the LLM guard: its web_search sub-request (a server tool, on by default) reaches the API", async (t, h, A) => {
    const before = (await h.internet.log("web")).length;
    const r = await docker(["exec", A.containers.agent!.name, "timeout", "90", "claude", "-p", "E2E-WEBSEARCH: search the web for claude bottle", "--allowedTools", "WebSearch", "--max-turns", "5"], { timeoutMs: 105_000 });
    t.log(`claude exit ${r.code}: ${(r.stdout + r.stderr).trim().split("\n").slice(-2).join(" / ").slice(0, 200)}`);
    const seen = (await h.internet.log("web")).slice(before).filter((e) => String(e.path).startsWith("/v1/messages"));
    const tools = (e: LogEntry) => {
      try {
        return (JSON.parse(e.body ?? "").tools ?? []) as { type?: string; name?: string }[];
      } catch {
        return [];
      }
    };
    const sub = seen.filter((e) => tools(e).some((x) => String(x.type).startsWith("web_search_")));
    t.log(`requests: ${seen.length}; web_search sub-requests: ${sub.length} (${sub.flatMap(tools).map((x) => x.type).join(", ")})`);
    t.is(sub.length, 1, "the sub-request carrying the web_search server tool passed the guard and reached the upstream");
    t.true(seen.some((e) => /e2e search result/.test(e.body ?? "")), "its result went back into the conversation");
    t.is(r.code, 0, r.stdout + r.stderr);
  });

  check("`claude mcp list` in the agent shows supervise connected", async (t, _h, A) => {
    const r = await docker(["exec", A.containers.agent!.name, "timeout", "90", "claude", "mcp", "list"], { timeoutMs: 100_000 });
    const out = (r.stdout + r.stderr).trim();
    t.log(out.split("\n").slice(-3).join(" / "));
    t.regex(out, /supervise:\s*http:\/\/supervise:8080\/mcp.*Connected/i);
  }, ["supervise"]);

  check("the agent's workspace is the manifest's repo (uploads[].source + sourceHash)", async (t, _h, A) => {
    const r = await inContainer(A.containers.agent!.name, "cat /workspace/hello.txt && git -C /workspace log --format=%s -1");
    t.is(r.code, 0, r.out);
    t.regex(r.out, /from the host workspace\nhost commit/);
  });

  check("a route proposed through supervise and approved with `bottle approve` is live, no container replaced", async (t, _h, A) => {
    const agent = A.containers.agent!.name;
    const first = await agentCurl(A, "https://approved.example/before");
    t.is(first.status, 403, `before approval: ${first.raw}`);
    const idsBefore = await containerIds(A);
    // The full routes document the agent would send: the live one + approved.example.
    const live = YAML.parse((await A.state.read(A.layout.routesFile))!);
    const routes = { version: 1, routes: [...live.routes, { host: "approved.example", methods: ["GET"] }] };
    const call = {
      jsonrpc: "2.0", id: 1, method: "tools/call",
      params: { name: "propose_egress_routes", arguments: { routes, justification: "e2e: the task needs approved.example" } },
    };
    // A real MCP request from inside the agent (Streamable HTTP; the reply comes when the operator decides).
    const script = `fetch(process.argv[1], { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: process.argv[2] })
      .then(async (r) => console.log(r.status, await r.text())).catch((e) => { console.log("ERR", e.message); process.exit(1); });`;
    const pending = docker(["exec", agent, "node", "-e", script, "http://supervise:8080/mcp", JSON.stringify(call)], { timeoutMs: 150_000 });
    let id = "";
    for (let i = 0; i < 60 && !id; i++) {
      const p = (await allProposals(A.bottles)).find((f) => !f.decision && f.proposal.change.kind === "egress_routes");
      if (p) id = p.proposal.id;
      else await sleep(500);
    }
    t.truthy(id, "a pending proposal appeared in the bottle's state volume (read through its state container)");
    if (!id) return;
    // bottle.json names the stack's workspace as project dir: the approval is persisted into the
    // real stack through the Automation API and the real CLI (on PATH, with the stack's passphrase).
    const cli = await pulumiCli();
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(`ERR ${l}`) };
    const saved = { ...process.env };
    Object.assign(process.env, {
      PATH: `${path.dirname(cli.command)}${path.delimiter}${process.env.PATH}`,
      PULUMI_CONFIG_PASSPHRASE: A.stack.passphrase,
      PULUMI_HOME: path.join(A.stack.workDir, "pulumi-home"),
      PULUMI_SKIP_UPDATE_CHECK: "true",
    });
    let code: number;
    try {
      code = await bottleCli(["approve", id], { io, bottles: A.bottles, apply: { by: "e2e" } });
    } finally {
      for (const k of ["PATH", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_HOME", "PULUMI_SKIP_UPDATE_CHECK"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
    t.log(lines.join(" / "));
    t.is(code, 0, lines.join("\n"));
    // confirmed, not just signalled: each sidecar's log named the sha256 of the file written
    t.regex(lines.join("\n"), /reload: \S+-pipelock loaded pipelock\.yaml \(sha256 [0-9a-f]{12}…\)/);
    t.regex(lines.join("\n"), /reload: \S+-egress loaded routes\.yaml \(sha256 [0-9a-f]{12}…\)/);
    t.regex(lines.join("\n"), /persisted: set claude-bottle:routes on stack e2e \(pulumi config\)/, "persisted into the real stack through the Automation API");
    const reply = await pending;
    t.regex(reply.stdout, /approved/i, `the agent's tool call returned the approval: ${reply.stdout.slice(0, 300)}${reply.stderr}`);
    let retry = await agentCurl(A, "https://approved.example/after");
    for (let i = 0; i < 20 && retry.status !== 200; i++) {
      await sleep(500);
      retry = await agentCurl(A, "https://approved.example/after");
    }
    t.is(retry.status, 200, `the agent's retry after approval: ${retry.raw}`);
    t.is(retry.json?.server, "web");
    t.deepEqual(await containerIds(A), idsBefore, "no container was replaced or restarted");
  }, ["supervise"]);

  check("big transfers through an intercepted allowed host (api.github.com: pipelock decrypts, scans and caps it): 100 MB down and 20 MB up end to end, byte for byte", async (t, _h, A) => {
    t.timeout(15 * 60_000);
    const agent = A.containers.agent!.name;
    const url = "https://api.github.com/repos/octo/allowed";
    const DOWN = 100 * 1000 * 1000;
    const UP = 20 * 1000 * 1000;
    const down = await inContainer(agent, `s=$(date +%s%N); curl -sS -m 600 -D /tmp/bh ${url}/__bytes/${DOWN} | sha256sum; e=$(date +%s%N); head -1 /tmp/bh; echo "ms=$(( (e - s) / 1000000 ))"; rm -f /tmp/bh`, 620);
    const up = await inContainer(agent, `s=$(date +%s%N); head -c ${UP} /dev/zero | tr '\\0' b | curl -sS -m 600 -X POST -H 'content-type: application/octet-stream' --data-binary @- ${url}/__sha256; e=$(date +%s%N); echo; echo "ms=$(( (e - s) / 1000000 ))"`, 620);
    const ms = (out: string) => Number(/ms=(\d+)/.exec(out)?.[1] ?? 0);
    t.log(`100 MB down: ${(DOWN / 1e6 / (ms(down.out) / 1000)).toFixed(1)} MB/s (${ms(down.out)} ms); 20 MB up: ${(UP / 1e6 / (ms(up.out) / 1000)).toFixed(1)} MB/s (${ms(up.out)} ms)`);
    const mem = await dockerOk(["stats", "--no-stream", "--format", "{{.MemUsage}}", A.containers.pipelock!.name]);
    t.log(`pipelock memory after: ${mem}`);
    t.regex(down.out, /HTTP\/1\.1 200/, down.out);
    t.true(down.out.startsWith(sha256OfRun(DOWN, "a")), `the download arrived byte for byte: ${down.out.slice(0, 200)}`);
    const got = JSON.parse(up.out.split("\n")[0]!);
    t.deepEqual({ bytes: got.bytes, sha256: got.sha256 }, { bytes: UP, sha256: sha256OfRun(UP, "b") }, `the upload arrived byte for byte: ${up.out.slice(0, 200)}`);
  });

  check("git: clone of the upstream URL goes through git-gate and equals the upstream; a clean push lands upstream", async (t, h, A) => {
    const url = A.gitUpstream!.url;
    const agent = A.containers.agent!.name;
    const upstreamHead = await h.internet.gitUpstream("git rev-parse main");
    const c = await inContainer(agent, `cd /tmp && rm -rf fclone && git clone -q ${url} fclone 2>&1 && git -C fclone rev-parse HEAD && git -C fclone config --get remote.origin.url && cat fclone/README.md && git config --show-origin --get-regexp 'url\\..*insteadof'`, 90);
    t.log(c.out.replace(/\n/g, " / "));
    t.is(c.code, 0, c.out);
    t.true(c.out.includes(upstreamHead), "the clone's HEAD is the upstream's main");
    t.regex(c.out, /upstream seed/);
    t.regex(c.out, /git:\/\/git-gate/, "the agent's gitconfig rewrites the upstream URL to the gate");
    const p = await inContainer(agent, `cd /tmp/fclone && echo 'clean change' > clean.txt && git add clean.txt && git -c user.name=agent -c user.email=agent@example.invalid commit -q -m 'clean push' && git push origin HEAD:main 2>&1; echo rc=$?; git rev-parse HEAD`, 120);
    t.log(p.out.replace(/\n/g, " / "));
    t.regex(p.out, /rc=0/, p.out);
    const pushed = p.out.trim().split("\n").pop()!;
    t.is(await h.internet.gitUpstream("git rev-parse main"), pushed, "the clean push landed upstream");
    t.is(await h.internet.gitUpstream("git show main:clean.txt"), "clean change");
  }, ["git-gate"]);
}
