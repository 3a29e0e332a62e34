// The live files carry proof of completeness (contracts/seal.ts): no prefix, half-rewrite or
// unsealed hand edit of routes.yaml or policy.yaml is ever read as a document; pipelock.yaml,
// which pipelock parses itself, is laid out so that any prefix is refused by pipelock's own
// strict-mode rule or allows a subset of the hosts (issue 14, item 3).
import test from "ava";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { pipelockConfigToYaml, renderPipelockConfig, parsePipelockConfig } from "../../contracts/pipelock.ts";
import { parsePolicyYaml, renderPolicyYaml } from "../../contracts/policy.ts";
import { HTTP_METHODS, parseRoutesDocument, parseRoutesYaml, renderRoutesYaml } from "../../contracts/routes.ts";
import { seal, unseal, withoutSeal, SEAL_PREFIX } from "../../contracts/seal.ts";
import { sha256 } from "../../contracts/hash.ts";

const ROUTES = parseRoutesDocument({
  version: 1,
  routes: [
    { host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "T" }, role: "claude_code_oauth" },
    { host: "api.github.com", path_allowlist: ["/repos/octo/allowed"], methods: ["GET", "HEAD"] },
    { host: "*.example.com" },
  ],
});
const routesText = renderRoutesYaml(ROUTES);

test("seal: the completeness line is the sha256 of every byte above it; unseal gives the body back", (t) => {
  const sealed = seal("a: 1\n");
  t.is(sealed, `a: 1\n${SEAL_PREFIX}${sha256("a: 1\n")}\n`);
  t.is(seal("a: 1"), sealed, "a body without a final newline gets one");
  t.is(unseal(sealed, "f"), "a: 1\n");
  t.is(unseal(sealed.slice(0, -1), "f"), "a: 1\n", "the trailer's own final newline is optional");
  t.is(withoutSeal(sealed), "a: 1\n");
  t.is(withoutSeal("a: 1\n# claude-bottle-sha256: 12ab\n"), "a: 1\n", "a broken trailer is taken off too");
  t.is(unseal(seal(""), "f"), "\n");
});

test("seal: what a reader refuses — every proper prefix, a new prefix over an old tail, an edit, text after the trailer", (t) => {
  const refused = (text: string, why: RegExp, what: string) => t.throws(() => unseal(text, "routes.yaml"), { message: why }, what);
  for (let cut = 0; cut < routesText.length - 1; cut++) refused(routesText.slice(0, cut), /^routes\.yaml: not applied: /, `prefix of ${cut} bytes`);
  const old = renderRoutesYaml(parseRoutesDocument({ version: 1, routes: [{ host: "old.example.org" }, { host: "older.example.org" }, { host: "oldest.example.org" }] }));
  const next = renderRoutesYaml(parseRoutesDocument({ version: 1, routes: [{ host: "new.example.org" }] }));
  // An in-place rewrite without truncation: the new bytes over the start of the old file.
  const at = next.indexOf("methods");
  refused(next.slice(0, at) + old.slice(at), /content above it hashes to/, "new prefix over the old tail");
  refused(routesText.replace("/repos/octo/allowed", "/"), /content above it hashes to/, "a hand edit without re-sealing");
  refused(routesText + "extra: 1\n", /does not end with its completeness line/, "text after the trailer");
});

test("routes.yaml: sealed and explicit; every prefix is refused; the manifest shorthand is spelled out", (t) => {
  t.deepEqual(parseRoutesYaml(routesText), ROUTES);
  const any = ROUTES.routes[2]!;
  t.deepEqual(any.path_allowlist, ["/"], "shorthand: no path_allowlist = every path, written out");
  t.deepEqual(any.methods, [...HTTP_METHODS], "shorthand: no methods = every method, written out");
  t.true(routesText.includes("host: api.github.com\n    path_allowlist:\n      - /repos/octo/allowed\n    methods:\n      - GET\n      - HEAD\n"));
  for (let cut = 0; cut < routesText.length - 1; cut++) t.throws(() => parseRoutesYaml(routesText.slice(0, cut)), undefined, `prefix of ${cut} bytes`);
  // Even a correctly sealed document must say what each route allows.
  t.throws(() => parseRoutesYaml(seal("version: 1\nroutes:\n  - host: a.example.com\n")), { message: /routes\[0\]\.path_allowlist: required array is missing/ });
  t.throws(() => parseRoutesYaml(seal("version: 1\nroutes:\n  - host: a.example.com\n    path_allowlist: [/]\n")), { message: /routes\[0\]\.methods: required array is missing/ });
  t.throws(() => parseRoutesYaml(seal("routes: []\n")), { message: /version: Invalid input: expected 1/ });
});

test("policy.yaml: sealed; every prefix is refused", (t) => {
  const policy = { version: 1 as const, pipelock_allowlist: ["a.example.com", "b.example.com"], ssrf_ip_allowlist: ["10.20.0.0/16"] };
  const text = renderPolicyYaml(policy);
  t.deepEqual(parsePolicyYaml(text), policy);
  for (let cut = 0; cut < text.length - 1; cut++) t.throws(() => parsePolicyYaml(text.slice(0, cut)), { message: /not applied/ }, `prefix of ${cut} bytes`);
});

/**
 * What a strict pipelock makes of a reloaded file (config/load.go, validate.go and the reload
 * downgrade check, as the stand-in mirrors them in config/load.go and config/reloadwarn.go): a
 * YAML error refuses it; no `mode` is balanced mode, a downgrade strict mode refuses; strict
 * mode without an allowlist is invalid.
 */
function pipelockReloads(text: string): { refused: true } | { refused: false; config: Record<string, unknown> } {
  let doc: unknown;
  try {
    const parsed = YAML.parseDocument(text, { uniqueKeys: true });
    if (parsed.errors.length) return { refused: true };
    doc = parsed.toJS();
  } catch {
    return { refused: true };
  }
  if (!doc || typeof doc !== "object") return { refused: true };
  const config = doc as Record<string, unknown>;
  const allow = config.api_allowlist;
  if ((config.mode ?? "balanced") !== "strict") return { refused: true };
  if (!Array.isArray(allow) || allow.length === 0) return { refused: true };
  return { refused: false, config };
}

test("pipelock.yaml: mode first, api_allowlist last, every string quoted: a reloaded prefix is refused or allows a subset", (t) => {
  const config = renderPipelockConfig({ allowlist: ["api.anthropic.com", "api.github.com", "*.example.com", "internal.example"], ssrfIpAllowlist: ["10.20.0.0/16"] });
  const text = pipelockConfigToYaml(config);
  t.deepEqual(parsePipelockConfig(text), config);
  t.deepEqual(Object.keys(YAML.parse(text)).at(0), "mode");
  t.deepEqual(Object.keys(YAML.parse(text)).at(-1), "api_allowlist");
  const { api_allowlist: full, ...rest } = config;
  let narrower = 0;
  for (let cut = 0; cut <= text.length; cut++) {
    const r = pipelockReloads(text.slice(0, cut));
    if (r.refused) continue;
    const { api_allowlist, ...others } = r.config as { api_allowlist: (string | null)[] };
    t.deepEqual(others, rest, `prefix of ${cut} bytes: every other key complete`);
    // A cut right after "- " is a null entry: an empty pattern, which matches no host
    // (scanner.MatchDomain compares a non-wildcard pattern for equality).
    const hosts = api_allowlist.filter((h) => h !== null && h !== "");
    t.true(hosts.every((h) => full.includes(h!)), `prefix of ${cut} bytes allows only listed hosts: ${hosts.join(", ")}`);
    if (hosts.length < full.length) narrower++;
  }
  t.true(narrower > 0, "prefixes ending between entries exist, and they are narrower");
  // And our own readers check the seal on top.
  t.throws(() => parsePipelockConfig(withoutSeal(text)), { message: /not applied/ });
});

test("pipelock's entrypoint (sidecars/pipelock/start.sh) starts it only on a sealed config; other commands pass through", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-pipelock-start-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = fs.readFileSync(path.resolve("sidecars/pipelock/start.sh"), "utf8");
  t.true(script.includes(`PREFIX='${SEAL_PREFIX}'`), "the script's trailer is the contract's");
  // The same script, with `echo` standing in for the pipelock binary.
  fs.writeFileSync(path.join(dir, "start.sh"), script.replace(/^PIPELOCK=.*$/m, "PIPELOCK=echo"));
  const text = pipelockConfigToYaml(renderPipelockConfig({ allowlist: ["api.github.com"] }));
  const start = (content: string | undefined, ...args: string[]) => {
    const file = path.join(dir, "pipelock.yaml");
    fs.rmSync(file, { force: true });
    if (content !== undefined) fs.writeFileSync(file, content);
    return spawnSync("sh", [path.join(dir, "start.sh"), ...(args.length ? args : ["run", "--config", file])], { encoding: "utf8" });
  };
  t.is(start(text).status, 0);
  t.is(start(text).stdout.trim(), `run --config ${path.join(dir, "pipelock.yaml")}`);
  for (const [what, content] of [["empty", ""], ["a prefix", text.slice(0, text.indexOf("api_allowlist"))], ["unsealed", withoutSeal(text)], ["edited", text.replace("api.github.com", "evil.example")], ["missing", undefined]] as const) {
    const r = start(content);
    t.is(r.status, 78, what);
    t.regex(r.stderr, /pipelock not started: .* does not end with a matching completeness line/, what);
    t.is(r.stdout, "", `${what}: pipelock was not run`);
  }
  t.is(start(undefined, "healthcheck", "--addr", "127.0.0.1:8888").stdout.trim(), "healthcheck --addr 127.0.0.1:8888");
});
