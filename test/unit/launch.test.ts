// `npm start` on a fresh machine: every missing piece is reported with its fix, never a stack trace.
import test from "ava";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { preflight } from "../../cli/launch.ts";

const ok = () => ({ status: 0, stdout: "", stderr: "" });
const missing = () => ({ status: null, stdout: "", stderr: "", error: new Error("ENOENT") });

test("a machine with everything passes preflight", (t) => {
  t.deepEqual(preflight({ CLAUDE_CODE_OAUTH_TOKEN: "x" }, ok), []);
});

test("missing Pulumi CLI, Docker engine and token are each reported with a fix", (t) => {
  const runner = (cmd: string) => (cmd === "pulumi" ? missing() : { status: 1, stdout: "", stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" });
  const problems = preflight({}, runner);
  t.is(problems.length, 3);
  t.regex(problems[0]!.what, /Pulumi CLI is not installed/);
  t.regex(problems[0]!.fix, /get\.pulumi\.com/);
  t.regex(problems[1]!.what, /no Docker engine answers \(Cannot connect/);
  t.regex(problems[1]!.fix, /systemctl start docker/);
  t.regex(problems[2]!.what, /CLAUDE_CODE_OAUTH_TOKEN is not set/);
  t.regex(problems[2]!.fix, /claude setup-token/);
});

test("npm start without pulumi on PATH exits 1 with instructions, no stack trace", (t) => {
  const root = path.resolve(import.meta.dirname, "..", "..");
  const r = spawnSync(process.execPath, ["--import", "tsx", "cli/launch.ts", "up"], {
    cwd: root,
    encoding: "utf8",
    env: { PATH: path.dirname(process.execPath), HOME: "/tmp/cb-launch-home" },
  });
  t.is(r.status, 1);
  t.regex(r.stdout, /Cannot launch the bottle yet/);
  t.regex(r.stdout, /Pulumi CLI is not installed/);
  t.notRegex(r.stdout + r.stderr, /\n\s+at .*\.ts:\d+/);
});

test("an unknown option is refused with the usage, before anything runs", async (t) => {
  const { main } = await import("../../cli/launch.ts");
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  (process.stdout as any).write = (s: string) => (out.push(String(s)), true);
  try {
    t.is(main(["down", "--purge-everything"], {}), 2);
    t.is(main(["up", "--purge-images"], {}), 2);
  } finally {
    (process.stdout as any).write = write;
  }
  t.regex(out.join(""), /unknown option --purge-everything/);
  t.regex(out.join(""), /--purge-images/);
});
