// Reaching a bottle's engine (store/docker.ts) and finding bottles through the Docker API
// (store/bottles.ts), without an engine: the docker CLI's environment per endpoint, the command
// lines told to the operator, the parsing of `docker context ls` and `docker ps`, and discovery
// over several engines with a stand-in `docker` that answers as the real CLI does (dedupe by
// state container id, the name-prefix scope, an unreachable engine and a bad record reported).
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultEndpoint, dockerCliEnv, dockerCommand, endpointLabel } from "../../store/docker.ts";
import { dockerBottles, operatorEngines, parseContexts, parseStateContainers, renderBottleRecord } from "../../store/bottles.ts";
import { stackConfigKeys } from "../../contracts/proposals.ts";

test("dockerCliEnv: exactly one of DOCKER_CONTEXT and DOCKER_HOST (the CLI refuses both), TLS from certPath", (t) => {
  const env = { PATH: "/bin", DOCKER_HOST: "tcp://old:2376", DOCKER_CONTEXT: "old", DOCKER_CERT_PATH: "/old", DOCKER_TLS_VERIFY: "1" };
  t.deepEqual(dockerCliEnv({ host: "ssh://me@box" }, env), { PATH: "/bin", DOCKER_HOST: "ssh://me@box" });
  t.deepEqual(dockerCliEnv({ context: "box" }, env), { PATH: "/bin", DOCKER_CONTEXT: "box" });
  t.deepEqual(dockerCliEnv({ host: "tcp://box:2376", certPath: "/certs/box" }, env), { PATH: "/bin", DOCKER_HOST: "tcp://box:2376", DOCKER_CERT_PATH: "/certs/box", DOCKER_TLS_VERIFY: "1" });
  t.deepEqual(dockerCliEnv({}, env), { PATH: "/bin" }, "nothing set: the CLI's own default");
});

test("defaultEndpoint: what the docker provider does when told nothing (DOCKER_CONTEXT, else DOCKER_HOST, else the local socket; never the CLI's current context)", (t) => {
  t.deepEqual(defaultEndpoint({}), { host: "unix:///var/run/docker.sock" });
  t.deepEqual(defaultEndpoint({ DOCKER_HOST: "ssh://me@box" }), { host: "ssh://me@box" });
  t.deepEqual(defaultEndpoint({ DOCKER_HOST: "tcp://box:2376", DOCKER_CERT_PATH: "/c", DOCKER_TLS_VERIFY: "1" }), { host: "tcp://box:2376", certPath: "/c" });
  t.deepEqual(defaultEndpoint({ DOCKER_CONTEXT: "box", DOCKER_HOST: "ssh://x" }), { context: "box" });
});

test("dockerCommand and endpointLabel: what the operator is told to run", (t) => {
  t.is(dockerCommand({ host: "unix:///var/run/docker.sock" }), "docker");
  t.is(dockerCommand({}), "docker");
  t.is(dockerCommand({ host: "ssh://me@box" }), "docker -H ssh://me@box");
  t.is(dockerCommand({ context: "my box" }), "docker --context 'my box'");
  t.is(dockerCommand({ host: "tcp://box:2376", certPath: "/certs/box" }), "DOCKER_CERT_PATH=/certs/box DOCKER_TLS_VERIFY=1 docker -H tcp://box:2376");
  t.is(endpointLabel({ context: "box" }), "context box");
  t.is(endpointLabel({ host: "ssh://me@box" }), "ssh://me@box");
});

test("parseContexts and parseStateContainers read the CLI's own output", (t) => {
  const ls = [
    '{"Current":true,"Description":"Current DOCKER_HOST based configuration","DockerEndpoint":"unix:///var/run/docker.sock","Error":"","Name":"default"}',
    '{"Current":false,"Description":"","DockerEndpoint":"ssh://me@box","Error":"","Name":"box"}',
    "WARNING: something the CLI says",
  ].join("\n");
  t.deepEqual(parseContexts(ls), [
    { name: "default", address: "unix:///var/run/docker.sock", current: true, error: "" },
    { name: "box", address: "ssh://me@box", current: false, error: "" },
  ]);
  const id = "a".repeat(64);
  t.deepEqual(parseStateContainers(`${id}\tcb-dev-coder-state\n\nnot a line\n`), [{ id, name: "cb-dev-coder-state" }]);
});

/** A `docker` that answers as the real CLI for two engines: `context ls`, `ps` and `exec … cat bottle.json`. */
function fakeDocker(dir: string, records: Record<string, string>): string {
  const bin = path.join(dir, "docker");
  const rec = (name: string) => path.join(dir, `${name}.json`);
  for (const [name, text] of Object.entries(records)) fs.writeFileSync(rec(name), text);
  const [idA, idB, idShared] = ["a".repeat(64), "b".repeat(64), "c".repeat(64)];
  fs.writeFileSync(
    bin,
    `#!/bin/sh
engine="\${DOCKER_CONTEXT:-$DOCKER_HOST}"
case "$1" in
  context) printf '%s\\n' '{"Current":true,"DockerEndpoint":"unix:///var/run/docker.sock","Error":"","Name":"default"}' '{"Current":false,"DockerEndpoint":"ssh://me@box","Error":"","Name":"box"}' '{"Current":false,"DockerEndpoint":"ssh://gone","Error":"","Name":"gone"}' '{"Current":false,"DockerEndpoint":"","Error":"bad meta","Name":"broken"}'; exit 0 ;;
  ps)
    case "$engine" in
      default) printf '%s\\t%s\\n' ${idA} cb-dev-coder-state ${idShared} cb-shared-state ;;
      box) printf '%s\\t%s\\n' ${idB} cb-dev-tester-state ${idShared} cb-shared-state ${"d".repeat(64)} cb-bad-state ;;
      gone) echo "error during connect: ssh: connect to host gone: Connection refused" >&2; exit 1 ;;
    esac; exit 0 ;;
  exec)
    # exec <container> sh -c <script> sh <file>
    f="${dir}/$2.json"; [ -f "$f" ] || exit 66; cat "$f"; exit 0 ;;
esac
echo "unexpected: $*" >&2; exit 1
`,
    { mode: 0o755 },
  );
  return bin;
}

const record = (identity: string, state: string) =>
  renderBottleRecord({ version: 2, identity, bottle: identity.split("-")[0]!, agent: identity.split("-")[1]!, stack: "s", project: "p", projectDir: "/p", hostDir: "/h", containers: { state }, configKeys: stackConfigKeys() });

test("dockerBottles: every context the operator has (the current one first), one bottle per state container (a container reached twice is one), an unreachable engine and a bad record reported, never fatal", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-discovery-"));
  const bin = fakeDocker(dir, {
    "cb-dev-coder-state": record("dev-coder", "cb-dev-coder-state"),
    "cb-dev-tester-state": record("dev-tester", "cb-dev-tester-state"),
    "cb-shared-state": record("dev-shared", "cb-shared-state"),
    "cb-bad-state": "{ not json",
  });
  const saved = { DOCKER_HOST: process.env.DOCKER_HOST, DOCKER_CONTEXT: process.env.DOCKER_CONTEXT };
  delete process.env.DOCKER_HOST;
  delete process.env.DOCKER_CONTEXT;
  try {
    const engines = await operatorEngines(process.env, bin);
    t.deepEqual(engines.map((e) => e.label), ["default", "box", "gone"], "contexts with an error are left out; the current one first");
    const bad: string[] = [];
    const found = await dockerBottles({ bin }).bottles((m) => bad.push(m));
    t.deepEqual(found.map((b) => `${b.record.identity}@${b.host.label}`), ["dev-coder@default", "dev-shared@default", "dev-tester@box"]);
    t.deepEqual(found.find((b) => b.record.identity === "dev-tester")!.endpoint, { context: "box" });
    t.is(found.find((b) => b.record.identity === "dev-tester")!.host.address, "ssh://me@box");
    t.true(bad.some((m) => /^cannot list bottles on gone \(ssh:\/\/gone\): error during connect/.test(m)), bad.join("\n"));
    t.true(bad.some((m) => /^skipping cb-bad-state:\/var\/lib\/claude-bottle\/bottle\/bottle\.json \(box\):/.test(m)), bad.join("\n"));
    const scoped = await dockerBottles({ bin, namePrefix: "cb-dev-" }).bottles();
    t.deepEqual(scoped.map((b) => b.record.identity), ["dev-coder", "dev-tester"], "a name prefix scopes the search (tests sharing an engine)");
    const viaHost = await dockerBottles({ bin, engines: [{ endpoint: { context: "box" }, label: "box", address: "ssh://me@box" }] }).bottles();
    t.deepEqual(viaHost.map((b) => b.record.identity), ["dev-shared", "dev-tester"]);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
