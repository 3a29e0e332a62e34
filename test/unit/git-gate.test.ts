import test from "ava";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { agentGitConfig, upstreamSpellings } from "../../contracts/git-gate.ts";

test("upstreamSpellings covers ssh:// and scp-like forms, with and without .git", (t) => {
  t.deepEqual(upstreamSpellings("ssh://git@github.com/org/repo.git").sort(), [
    "git@github.com:org/repo",
    "git@github.com:org/repo.git",
    "ssh://git@github.com/org/repo",
    "ssh://git@github.com/org/repo.git",
  ]);
  // No scp-like form when a port is needed.
  t.deepEqual(upstreamSpellings("ssh://git@h.example:2222/r").sort(), ["ssh://git@h.example:2222/r", "ssh://git@h.example:2222/r.git"]);
});

test("agentGitConfig rewrites every spelling to the gate, and real git applies it", (t) => {
  const text = agentGitConfig(
    [
      { name: "app", url: "ssh://git@github.com/org/app.git" },
      { name: "app-lib", url: "ssh://git@github.com/org/app-lib.git" },
      { name: "corp", url: "ssh://git@git.corp.example:2222/team/corp" },
    ],
    "git-gate",
  );
  t.true(text.includes('[url "git://git-gate:9418/app.git"]'));
  t.true(text.includes('\tinsteadOf = "git@github.com:org/app.git"'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gg-unit-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, "gitconfig"), text);
  const env = { ...process.env, GIT_CONFIG_GLOBAL: path.join(dir, "gitconfig"), GIT_CONFIG_NOSYSTEM: "1" };
  const resolve = (url: string) => execFileSync("git", ["ls-remote", "--get-url", url], { env, cwd: dir, encoding: "utf8" }).trim();
  t.is(resolve("git@github.com:org/app.git"), "git://git-gate:9418/app.git");
  t.is(resolve("git@github.com:org/app"), "git://git-gate:9418/app.git");
  t.is(resolve("ssh://git@github.com/org/app.git"), "git://git-gate:9418/app.git");
  t.is(resolve("ssh://git@github.com/org/app-lib.git"), "git://git-gate:9418/app-lib.git");
  t.is(resolve("ssh://git@git.corp.example:2222/team/corp.git"), "git://git-gate:9418/corp.git");
  t.is(resolve("git@github.com:org/other.git"), "git@github.com:org/other.git");
});

test("lib.sh gate_host_port parses ssh URLs: host lower-cased, port 22 by default", (t) => {
  const lib = path.resolve("sidecars/git-gate/lib.sh");
  const hp = (url: string) => execFileSync("bash", ["-c", `. "$0"; gate_host_port "$1"`, lib, url], { encoding: "utf8" }).trim();
  t.is(hp("ssh://git@GitHub.com/org/repo.git"), "github.com 22");
  t.is(hp("ssh://h.example:2222/x/y"), "h.example 2222");
  t.is(hp("ssh://u@127.0.0.1:40000/tmp/a@b/up.git"), "127.0.0.1 40000");
});
