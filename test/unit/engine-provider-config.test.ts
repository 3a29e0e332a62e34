// The e2e tier's docker provider double at Configure: what it takes from the engine's request and
// what it refuses (test/e2e/engine/plugin.ts applyProviderSettings, docker.ts dockerProviderConfig).
import test from "ava";
import { applyProviderSettings } from "../e2e/engine/plugin.ts";
import { dockerProviderConfig } from "../e2e/engine/docker.ts";

const config = { pkg: "docker", double: dockerProviderConfig };
/** A ConfigureRequest as the SDK's provider server receives it: args (a Struct) or the legacy variables map. */
const request = (args: Record<string, unknown>, vars: Record<string, string> = {}) => ({
  getArgs: () => ({ toJavaScript: () => args }),
  getVariablesMap: () => new Map(Object.entries(vars)),
});

function withDockerHost(fn: () => void): string | undefined {
  const saved = process.env.DOCKER_HOST;
  try {
    delete process.env.DOCKER_HOST;
    fn();
    return process.env.DOCKER_HOST;
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
}

test.serial("a unix:// host becomes this plugin process's DOCKER_HOST, from args or from the legacy variables", (t) => {
  t.is(withDockerHost(() => applyProviderSettings(request({ host: "unix:///run/b/docker.sock", version: "4.0.0" }), config)), "unix:///run/b/docker.sock");
  t.is(withDockerHost(() => applyProviderSettings(request({}, { "docker:config:host": "unix:///run/c.sock" }), config)), "unix:///run/c.sock");
  t.is(withDockerHost(() => applyProviderSettings(request({ version: "4.0.0" }), config)), undefined, "no host: the inherited default");
});

test.serial("settings the double does not implement are refused by name, and ssh:// or tcp:// hosts too", (t) => {
  const e1 = t.throws(() => withDockerHost(() => applyProviderSettings(request({ host: "unix:///x.sock", sshOpts: ["-p", "22"], certPath: "/c" }), config)));
  t.regex(e1!.message, /does not implement provider setting `sshOpts`, `certPath`/);
  const e2 = t.throws(() => withDockerHost(() => applyProviderSettings(request({ host: "ssh://me@box" }), config)));
  t.regex(e2!.message, /unix:\/\/ sockets only, not "ssh:\/\/me@box"/);
  t.is(withDockerHost(() => t.throws(() => applyProviderSettings(request({ host: "tcp://box:2376" }), config))), undefined, "refused: DOCKER_HOST untouched");
});
