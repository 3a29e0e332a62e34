import test from "ava";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigError } from "../../contracts/validation.ts";
import { agentGitConfig, knownHostsLine, mergeExtraHosts, upstreamSpellings } from "../../contracts/git-gate-agent.ts";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

test("mergeExtraHosts merges hosts across upstreams and keeps identical entries once", (t) => {
  const merged = mergeExtraHosts([
    { name: "a", extra_hosts: { "git.corp.example": "10.0.0.5", "GitHub.com.": "140.82.112.3" } },
    { name: "b", extra_hosts: { "github.com": "140.82.112.3" } },
    { name: "c" },
  ]);
  t.deepEqual(merged, [
    { host: "git.corp.example", ip: "10.0.0.5" },
    { host: "github.com", ip: "140.82.112.3" },
  ]);
});

test("mergeExtraHosts: one host at two IPs names both upstreams and both key paths", (t) => {
  const err = t.throws(
    () =>
      mergeExtraHosts(
        [
          { name: "api", extra_hosts: { "github.com": "140.82.112.3" } },
          { name: "web", extra_hosts: { "github.com": "140.82.112.4" } },
        ],
        "bottles.dev.git.upstreams",
        "bottle.yaml",
      ),
    { instanceOf: ConfigError },
  );
  t.regex(err.message, /^bottle\.yaml: bottles\.dev\.git\.upstreams\[1\]\.extra_hosts\.github\.com: /);
  t.regex(err.message, /upstream "web" maps github\.com to 140\.82\.112\.4/);
  t.regex(err.message, /upstream "api" \(bottles\.dev\.git\.upstreams\[0\]\.extra_hosts\.github\.com\) maps it to 140\.82\.112\.3/);
});

test("knownHostsLine: bare host on port 22, [host]:port otherwise", (t) => {
  t.is(knownHostsLine({ url: "ssh://git@GitHub.com/org/repo.git", known_host_key: KEY }), `github.com ${KEY}`);
  t.is(knownHostsLine({ url: "ssh://git@git.corp.example:2222/org/repo.git", known_host_key: ` ${KEY} comment` }), `[git.corp.example]:2222 ${KEY}`);
});

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

test("lib.sh gate_host_port parses ssh URLs like sshHostPort", (t) => {
  const lib = path.resolve("sidecars/git-gate/lib.sh");
  const hp = (url: string) => execFileSync("bash", ["-c", `. "$0"; gate_host_port "$1"`, lib, url], { encoding: "utf8" }).trim();
  t.is(hp("ssh://git@GitHub.com/org/repo.git"), "github.com 22");
  t.is(hp("ssh://h.example:2222/x/y"), "h.example 2222");
  t.is(hp("ssh://u@127.0.0.1:40000/tmp/a@b/up.git"), "127.0.0.1 40000");
});
