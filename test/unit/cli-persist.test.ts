// Stack-config persistence (no pulumi binary here: the stack-file path) and atomic
// writes of the live config: a reader never sees a partial file, even when the writer
// is killed mid-write.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { parseRoutesDocument, renderRoutesYaml } from "../../contracts/routes.ts";
import { CONFIG_KEYS, persistStackConfig, readStackFileConfig, setStackFileConfig, stackConfigFile } from "../../cli/persist.ts";
import { onPath } from "../../cli/which.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "cb-persist-"));
const here = path.dirname(fileURLToPath(import.meta.url));

const STACK = `# my dev stack — hand-written comment
encryptionsalt: v1:salt:abc
config:
  # which agent
  claude-bottle:agent: coder
  other:key: "keep me"
  claude-bottle:routes: '{"version":1,"routes":[{"host":"old.example.com"}]}'
`;

const routes = parseRoutesDocument({ version: 1, routes: [{ host: "api.example.com", methods: ["GET"], path_allowlist: ["/v1/"] }, { host: "*.cdn.example.com" }] });

test("stack file: values written with the Document API, comments and other keys preserved, read back equal", (t) => {
  const projectDir = tmp();
  const target = { projectDir, stack: "dev" };
  fs.writeFileSync(stackConfigFile(target), STACK);
  const r = setStackFileConfig(target, { [CONFIG_KEYS.egress_routes]: routes, [CONFIG_KEYS.pipelock_allowlist]: ["b.example.com", "a.example.com"] });
  t.true(r.changed);
  const text = fs.readFileSync(r.file, "utf8");
  t.true(text.startsWith("# my dev stack — hand-written comment\n"));
  t.true(text.includes("  # which agent\n  claude-bottle:agent: coder\n"));
  t.true(text.includes('other:key: "keep me"'));
  t.true(text.includes("encryptionsalt: v1:salt:abc"));
  t.deepEqual(parseRoutesDocument(readStackFileConfig(target, CONFIG_KEYS.egress_routes)), routes);
  t.deepEqual(readStackFileConfig(target, CONFIG_KEYS.pipelock_allowlist), ["b.example.com", "a.example.com"]);
  // What the Bottle program renders from the persisted value is the live file, byte for byte.
  t.is(renderRoutesYaml(parseRoutesDocument(readStackFileConfig(target, CONFIG_KEYS.egress_routes))), renderRoutesYaml(routes));
  // Idempotent: persisting the same values again changes nothing (the next preview has no diff).
  t.false(setStackFileConfig(target, { [CONFIG_KEYS.egress_routes]: routes }).changed);
  t.is(fs.readFileSync(r.file, "utf8"), text);
  t.deepEqual(Object.keys(YAML.parse(text).config), ["claude-bottle:agent", "other:key", "claude-bottle:routes", "claude-bottle:pipelockAllowlist"]);
});

test("stack file: JSON-string values (as `pulumi config set` writes them) are read back too", (t) => {
  const projectDir = tmp();
  fs.writeFileSync(path.join(projectDir, "Pulumi.dev.yaml"), STACK);
  t.deepEqual(readStackFileConfig({ projectDir, stack: "dev" }, CONFIG_KEYS.egress_routes), { version: 1, routes: [{ host: "old.example.com" }] });
});

test("stack file: created when missing; a qualified stack name uses its last segment", async (t) => {
  const projectDir = tmp();
  const target = { projectDir, stack: "organization/claude-bottle/dev" };
  t.is(stackConfigFile(target), path.join(projectDir, "Pulumi.dev.yaml"));
  const r = await persistStackConfig(target, { [CONFIG_KEYS.capability]: "/state/capability/Dockerfile" }, { usePulumi: false });
  t.is(r.how, "stack-file");
  t.is(r.detail, `wrote claude-bottle:capabilityDockerfile into ${path.join(projectDir, "Pulumi.dev.yaml")}`);
  t.is(fs.readFileSync(path.join(projectDir, "Pulumi.dev.yaml"), "utf8"), "config:\n  claude-bottle:capabilityDockerfile: /state/capability/Dockerfile\n");
  const again = await persistStackConfig(target, { [CONFIG_KEYS.capability]: "/state/capability/Dockerfile" }, { usePulumi: false });
  t.regex(again.detail, /already had/);
});

test("stack file: a broken file is reported, not overwritten", async (t) => {
  const projectDir = tmp();
  const file = path.join(projectDir, "Pulumi.dev.yaml");
  fs.writeFileSync(file, "config: [unclosed\n");
  await t.throwsAsync(persistStackConfig({ projectDir, stack: "dev" }, { [CONFIG_KEYS.egress_routes]: routes }, { usePulumi: false }), { message: /not valid YAML/ });
  t.is(fs.readFileSync(file, "utf8"), "config: [unclosed\n");
});

test("no pulumi binary on this host: detection says so; the Automation API path falls back to the file", async (t) => {
  t.is(onPath("pulumi", { PATH: tmp() }), undefined);
  const bin = tmp();
  fs.writeFileSync(path.join(bin, "pulumi"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
  t.is(onPath("pulumi", { PATH: bin }), path.join(bin, "pulumi"));
  const projectDir = tmp();
  const r = await persistStackConfig({ projectDir, stack: "dev" }, { [CONFIG_KEYS.pipelock_allowlist]: ["a.example.com"] }, { usePulumi: true });
  t.is(r.how, "stack-file");
  t.regex(r.detail, /^pulumi config set failed \(.+\); wrote claude-bottle:pipelockAllowlist into /);
  t.deepEqual(readStackFileConfig({ projectDir, stack: "dev" }, CONFIG_KEYS.pipelock_allowlist), ["a.example.com"]);
});

test("atomic writes: a reader never sees a partial file, even when the writer is killed mid-write", async (t) => {
  const dir = tmp();
  const file = path.join(dir, "routes.yaml");
  // Two large, different, complete documents; the writer alternates between them.
  const big = (tag: string) => renderRoutesYaml(parseRoutesDocument({ version: 1, routes: Array.from({ length: 3000 }, (_, i) => ({ host: `${tag}${i}.example.com`, methods: ["GET"] })) }));
  const A = big("a"), B = big("b");
  fs.writeFileSync(file, A);
  const atomicModule = path.resolve(here, "../../store/io.ts");
  const script = `import { writeFileAtomic } from ${JSON.stringify(atomicModule)};
import fs from "node:fs";
const [file, a, b] = process.argv.slice(1);
const A = fs.readFileSync(a, "utf8"), B = fs.readFileSync(b, "utf8");
process.stdout.write("ready\\n");
for (let i = 0; ; i++) writeFileAtomic(file, i % 2 ? A : B);`;
  fs.writeFileSync(path.join(dir, "A"), A);
  fs.writeFileSync(path.join(dir, "B"), B);
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, file, path.join(dir, "A"), path.join(dir, "B")], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
  let reads = 0;
  const seen = new Set<string>();
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline) {
    const text = fs.readFileSync(file, "utf8");
    reads++;
    if (text !== A && text !== B) t.fail(`read ${reads} saw a partial file (${text.length} bytes)`);
    seen.add(text === A ? "A" : "B");
    if (reads % 20 === 0) await new Promise((r) => setImmediate(r));
  }
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  const final = fs.readFileSync(file, "utf8");
  t.true(final === A || final === B, "after a crash the file is one complete version");
  t.true(reads > 10);
  t.is(seen.size, 2, "the reader saw both versions, so it really raced the writer");
  // parse the survivor with the sidecar's own parser
  t.notThrows(() => parseRoutesDocument(YAML.parse(final)));
});

test("an operator away from the stack's project directory (a bottle on another host, approved from a laptop): nothing is written there, the reason says where to approve", async (t) => {
  const missing = path.join(tmp(), "not-here", "project");
  await t.throwsAsync(persistStackConfig({ projectDir: missing, stack: "fleet" }, { "claude-bottle:routes.coder": routes }, { usePulumi: false }), {
    message: /project directory .*not-here\/project is not on this machine: approve from the machine that runs `pulumi up` for stack fleet/,
  });
  t.false(fs.existsSync(path.dirname(missing)), "no directory or stack file was made up");
});
