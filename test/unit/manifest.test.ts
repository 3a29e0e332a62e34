// The manifest is the user's interface: every mistake must name the file, the key path
// and what was expected. Each case is one broken manifest.
import test from "ava";
import { HTTP_METHODS } from "../../contracts/routes.ts";
import fs from "node:fs";
import path from "node:path";
import { loadManifest, mergeExtraHosts, resolveBottle, DEFAULT_MANIFEST_FILE } from "../../components/manifest/load.ts";
import { pipelockConfigFor } from "../../contracts/policy.ts";
import { ConfigError } from "../../contracts/validation.ts";
import { HISTORY_DEFAULTS } from "../../contracts/git-gate.ts";
import { rawManifest, fixture, FULL_ENV } from "./helpers/fixtures.ts";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const route = (extra: string) => `bottles:\n  dev:\n    egress:\n      routes:\n        - host: a.example.com\n${extra}`;

interface Case {
  title: string;
  manifest?: string;
  agents?: Record<string, string>;
  env?: Record<string, string>;
  agent?: string;
  overrides?: { routes?: unknown; pipelockAllowlist?: unknown; serverTools?: unknown };
  /** Every string must appear in the error message. */
  expect: string[];
  /** What the message must name as the place: the manifest file (default), the agent file, or the stack config key. */
  at?: "agent" | "stack";
}

const cases: Case[] = [
  { title: "unknown bottle key with did-you-mean", manifest: "bottles:\n  dev:\n    egres: {}\n", expect: ["bottles.dev.egres", 'did you mean "egress"'] },
  { title: "unknown top-level key", manifest: "botles:\n  dev: {}\n", expect: ["botles", 'did you mean "bottles"'] },
  { title: "unknown route key", manifest: route("          path_allow: [/x]\n"), expect: ["bottles.dev.egress.routes[0].path_allow", 'did you mean "path_allowlist"'] },
  { title: "wrong auth scheme (the key path from the brief)", manifest: route("        - host: b.example.com\n        - host: c.example.com\n          auth: { scheme: bearr, token_ref: T }\n"), expect: ["bottles.dev.egress.routes[2].auth.scheme", '"bearer"', "header:<Header-Name>"] },
  { title: "route host with a scheme", manifest: "bottles:\n  dev:\n    egress:\n      routes:\n        - host: https://a.example.com\n", expect: ["bottles.dev.egress.routes[0].host", "bare host name", "no scheme"] },
  { title: "route host as an IP literal", manifest: "bottles:\n  dev:\n    egress:\n      routes:\n        - host: 10.0.0.1\n", expect: ["bottles.dev.egress.routes[0].host", "IP-like"] },
  { title: "route host with a port", manifest: "bottles:\n  dev:\n    egress:\n      routes:\n        - host: a.example.com:8443\n", expect: ["routes[0].host", "no scheme, port or path"] },
  { title: "bad wildcard", manifest: "bottles:\n  dev:\n    egress:\n      routes:\n        - host: a.*.example.com\n", expect: ["routes[0].host", "not a valid host name"] },
  { title: "missing route host", manifest: "bottles:\n  dev:\n    egress:\n      routes:\n        - methods: [GET]\n", expect: ["bottles.dev.egress.routes[0].host", "required string is missing"] },
  { title: "unknown HTTP method", manifest: route("          methods: [FETCH]\n"), expect: ["bottles.dev.egress.routes[0].methods[0]", '"GET"'] },
  { title: "path without leading slash", manifest: route("          path_allowlist: [repos/x]\n"), expect: ["bottles.dev.egress.routes[0].path_allowlist[0]", 'starting with "/"'] },
  { title: "empty method list", manifest: route("          methods: []\n"), expect: ["bottles.dev.egress.routes[0].methods", ">=1"] },
  { title: "token_ref that is not a variable name", manifest: route("          auth: { scheme: bearer, token_ref: my-token }\n"), expect: ["routes[0].auth.token_ref", "environment variable name"] },
  { title: "unknown server-tool switch", manifest: "bottles:\n  dev:\n    egress:\n      server_tools: { web_serch: false }\n", expect: ["bottles.dev.egress.server_tools.web_serch", 'did you mean "web_search"'] },
  { title: "server-tool switch that is not a boolean", manifest: "bottles:\n  dev:\n    egress:\n      server_tools: { code_execution: yes please }\n", expect: ["bottles.dev.egress.server_tools.code_execution", "expected boolean"] },
  { title: "server-tool switches from the stack config", manifest: "bottles:\n  dev: {}\n", overrides: { serverTools: '{"web_fetch": true}' }, expect: ["stack config claude-bottle:serverTools", 'unknown key "web_fetch"'], at: "stack" },
  { title: "role without auth", manifest: route("          role: claude_code_oauth\n"), expect: ["bottles.dev.egress.routes[0].auth", "needs auth"] },
  { title: "oauth role with the wrong scheme", manifest: route("          role: claude_code_oauth\n          auth: { scheme: token, token_ref: T }\n"), env: { T: "x" }, expect: ["routes[0].auth.scheme", 'expected scheme "bearer"'] },
  { title: "unknown role", manifest: route("          role: admin\n"), expect: ["routes[0].role", "claude_code_oauth"] },
  { title: "duplicate route hosts (case and trailing dot ignored)", manifest: route("        - host: A.example.com.\n"), expect: ["bottles.dev.egress.routes[1].host", "duplicate route", "routes[0]"] },
  { title: "token_ref whose environment variable is unset", manifest: route("          auth: { scheme: bearer, token_ref: ACME_TOKEN }\n"), env: {}, expect: ["bottles.dev.egress.routes[0].auth.token_ref", "ACME_TOKEN is not set", "export ACME_TOKEN="] },
  { title: "unknown runtime", manifest: "bottles:\n  dev:\n    runtime: kata\n", expect: ["bottles.dev.runtime", '"runsc"'] },
  { title: "supervise not a boolean", manifest: "bottles:\n  dev:\n    supervise: yes please\n", expect: ["bottles.dev.supervise", "expected boolean", '"yes please"'] },
  { title: "no bottles", manifest: "bottles: {}\n", expect: ["bottles", "at least one bottle"] },
  { title: "bottle name with capitals", manifest: "bottles:\n  Dev: {}\n", agents: { "a.md": "---\nbottle: Dev\n---\nx\n" }, expect: ["bottles", "lowercase"] },
  { title: "https git upstream", manifest: `bottles:\n  dev:\n    git:\n      upstreams:\n        - { name: app, url: "https://github.com/a/b", identity_file: k, known_host_key: ${KEY} }\n`, expect: ["bottles.dev.git.upstreams[0].url", "ssh upstream URL"] },
  { title: "known host key with a host name prefix", manifest: `bottles:\n  dev:\n    git:\n      upstreams:\n        - { name: app, url: "git@github.com:a/b.git", identity_file: k, known_host_key: "github.com ${KEY}" }\n`, expect: ["bottles.dev.git.upstreams[0].known_host_key", "ssh-keyscan"] },
  { title: "missing identity file", manifest: `bottles:\n  dev:\n    git:\n      upstreams:\n        - { name: app, url: "git@github.com:a/b.git", identity_file: nowhere/key, known_host_key: ${KEY} }\n`, expect: ["bottles.dev.git.upstreams[0].identity_file", "cannot read"] },
  { title: "extra host with a non-IP", manifest: "bottles:\n  dev:\n    extra_hosts: { api.github.com: github }\n", expect: ["bottles.dev.extra_hosts", "IPv4"] },
  { title: "bad SSRF CIDR", manifest: "bottles:\n  dev:\n    pipelock:\n      ssrf_ip_allowlist: [10.0.0.0]\n", expect: ["bottles.dev.pipelock.ssrf_ip_allowlist[0]", "CIDR"] },
  { title: "pipelock response cap out of range", manifest: "bottles:\n  dev:\n    pipelock:\n      max_response_mib: 0\n", expect: ["bottles.dev.pipelock.max_response_mib", ">=1"] },
  { title: "pipelock body cap not an integer", manifest: "bottles:\n  dev:\n    pipelock:\n      max_body_mib: 2.5\n", expect: ["bottles.dev.pipelock.max_body_mib", "int"] },
  { title: "pipelock allowlist with a URL", manifest: "bottles:\n  dev:\n    pipelock:\n      allowlist: [http://x.example.com]\n", expect: ["bottles.dev.pipelock.allowlist[0]", "bare host name"] },
  // Too broad: a wildcard must keep a registrable domain below a public suffix (issue 14, item 2).
  ...[
    ["*.com", "route"],
    ["*.co.uk", "route"],
    ["*.io", "route"],
    ["*.github.io", "route"],
    ["*.s3.amazonaws.com", "route"],
    ["*.com", "allowlist"],
    ["*.github.io", "allowlist"],
    ["*.co.uk", "allowlist"],
  ].map(([host, where]): Case => ({
    title: `too-broad wildcard ${host} as a ${where}`,
    manifest: where === "route" ? `bottles:\n  dev:\n    egress:\n      routes:\n        - host: "${host}"\n` : `bottles:\n  dev:\n    pipelock:\n      allowlist: ["${host}"]\n`,
    expect: [where === "route" ? "bottles.dev.egress.routes[0].host" : "bottles.dev.pipelock.allowlist[0]", `"${host}" is too broad`, "public suffix", "registrable domain"],
  })),
  // CIDRs pipelock itself refuses (config/validate.go validateSSRF) are refused at load (item 6).
  { title: "SSRF catch-all 0.0.0.0/0", manifest: "bottles:\n  dev:\n    pipelock:\n      ssrf_ip_allowlist: [0.0.0.0/0]\n", expect: ["bottles.dev.pipelock.ssrf_ip_allowlist[0]", "catch-all (/0)"] },
  { title: "SSRF catch-all ::/0", manifest: 'bottles:\n  dev:\n    pipelock:\n      ssrf_ip_allowlist: ["::/0"]\n', expect: ["bottles.dev.pipelock.ssrf_ip_allowlist[0]", "catch-all (/0)", "IPv4 only"] },
  { title: "SSRF CIDR with host bits set", manifest: "bottles:\n  dev:\n    pipelock:\n      ssrf_ip_allowlist: [10.20.0.0/16, 10.0.0.5/8]\n", expect: ["bottles.dev.pipelock.ssrf_ip_allowlist[1]", "host bits set", '"10.0.0.0/8"'] },
  { title: "SSRF CIDR with a leading zero (Go's ParseCIDR refuses it)", manifest: "bottles:\n  dev:\n    pipelock:\n      ssrf_ip_allowlist: [010.0.0.0/8]\n", expect: ["bottles.dev.pipelock.ssrf_ip_allowlist[0]", "not an IPv4 CIDR"] },
  { title: "git upstream protected_refs with a short branch name", manifest: `bottles:\n  dev:\n    git:\n      upstreams:\n        - { name: app, url: "git@github.com:a/b.git", identity_file: k, known_host_key: ${KEY}, protected_refs: [main] }\n`, expect: ["bottles.dev.git.upstreams[0].protected_refs[0]", "HEAD", "refs/heads/"] },
  { title: "git upstream allow_force_push not a boolean", manifest: `bottles:\n  dev:\n    git:\n      upstreams:\n        - { name: app, url: "git@github.com:a/b.git", identity_file: k, known_host_key: ${KEY}, allow_force_push: sometimes }\n`, expect: ["bottles.dev.git.upstreams[0].allow_force_push", "expected boolean"] },
  { title: "unknown image override", manifest: "bottles:\n  dev:\n    images: { node: x }\n", expect: ["bottles.dev.images.node", "unknown key"] },
  { title: "missing workspace directory", manifest: "bottles:\n  dev:\n    workspace: ./no-such-repo\n", expect: ["bottles.dev.workspace", "not a directory"] },
  { title: "extra CA file that is not a certificate", manifest: "bottles:\n  dev:\n    extra_ca_files: [claude-bottle.yaml]\n", expect: ["bottles.dev.extra_ca_files[0]", "no PEM certificate"] },
  { title: "YAML syntax error names the line", manifest: "bottles:\n  dev: [\n", expect: ["line 3"] },
  { title: "agent without front-matter", manifest: "bottles:\n  dev: {}\n", agents: { "a.md": "just a prompt\n" }, expect: ["a.md", "front-matter"], at: "agent" },
  { title: "agent naming an undeclared bottle", manifest: "bottles:\n  dev: {}\n", agents: { "a.md": "---\nbottle: dve\n---\nx\n" }, expect: ["a.md", '"dve" is not declared', 'did you mean "dev"'], at: "agent" },
  { title: "agent front-matter unknown key", manifest: "bottles:\n  dev: {}\n", agents: { "a.md": "---\nbottle: dev\nmodle: opus\n---\nx\n" }, expect: ["a.md", "modle", 'did you mean "model"'], at: "agent" },
  { title: "agent with an empty prompt", manifest: "bottles:\n  dev: {}\n", agents: { "a.md": "---\nbottle: dev\n---\n\n" }, expect: ["a.md", "prompt) is empty"], at: "agent" },
  { title: "agent file name that cannot name a container", manifest: "bottles:\n  dev: {}\n", agents: { "My Agent.md": "---\nbottle: dev\n---\nx\n" }, expect: ["My Agent.md", "lowercase"], at: "agent" },
  { title: "agent skill directory named unlike a skill (it becomes a path in the agent)", manifest: "bottles:\n  dev: {}\n", agents: { "a.md": "---\nbottle: dev\nskills: [skills/Re_view]\n---\nx\n" }, expect: ["a.md", "skills[0]", 'directory name "Re_view"', "lowercase letters, digits and dashes"], at: "agent" },
  { title: "agent skill directory without SKILL.md", manifest: "bottles:\n  dev: {}\n", agents: { "a.md": "---\nbottle: dev\nskills: [skills/review]\n---\nx\n" }, expect: ["a.md", "skills[0]", "SKILL.md cannot be read"], at: "agent" },
  { title: "stack config names an unknown agent", manifest: "bottles:\n  dev: {}\n", agent: "codr", expect: ["claude-bottle:agent", '"codr"', 'did you mean "coder"'], at: "stack" },
  { title: "invalid routes override in stack config", manifest: "bottles:\n  dev: {}\n", overrides: { routes: '{"version":1,"routes":[{"host":"a.example.com","method":["GET"]}]}' }, expect: ["stack config claude-bottle:routes", "routes[0].method", 'did you mean "methods"'], at: "stack" },
];

for (const c of cases) {
  test(`invalid manifest: ${c.title}`, (t) => {
    const file = rawManifest(c.manifest ?? "", c.agents);
    const err = t.throws(() => resolveBottle(loadManifest(file), { env: c.env ?? {}, agent: c.agent, overrides: c.overrides }), { instanceOf: ConfigError });
    const place = c.at === "stack" ? "stack config claude-bottle:" : c.at === "agent" ? path.join(path.dirname(file), "agents", Object.keys(c.agents!)[0]!) : file;
    t.true(err!.message.startsWith(place), `starts with ${place}: ${err!.message}`);
    for (const e of c.expect) t.true(err!.message.includes(e), `expected ${JSON.stringify(e)} in:\n${err!.message}`);
    t.false(/\n\s+at /.test(err!.message), "no stack trace in the message");
  });
}

test("there are at least 25 invalid-manifest cases", (t) => {
  t.true(cases.length >= 25);
});

test("the embedded default manifest is valid and resolves with a token in the env", (t) => {
  const spec = resolveBottle(loadManifest(DEFAULT_MANIFEST_FILE), { env: { CLAUDE_CODE_OAUTH_TOKEN: "t" } });
  t.is(spec.identity, "default-claude");
  t.deepEqual(spec.routes.routes.map((r) => r.host), ["api.anthropic.com"]);
  t.deepEqual(spec.tokens, { CLAUDE_CODE_OAUTH_TOKEN: "t" });
});

test("scp-style git URLs are normalised and identity keys read", (t) => {
  const spec = resolveBottle(loadManifest(fixture("full")), { env: FULL_ENV });
  t.is(spec.upstreams[0]!.url, "ssh://git@github.com/acme/app.git");
  t.regex(spec.upstreams[0]!.identityKey, /BEGIN OPENSSH PRIVATE KEY/);
  t.like(spec.upstreams[0], { ...HISTORY_DEFAULTS, protected_refs: ["HEAD", "refs/tags/*"] }, "history protected by default: no deletes, no rewrites, HEAD and tags protected");
  t.deepEqual(spec.policy, { version: 1, pipelock_allowlist: ["status.example.com"], ssrf_ip_allowlist: [] }, "the extras only: route hosts are derived, not stored");
  t.deepEqual(spec.gitGateHosts, [{ host: "github.com", ip: "10.213.0.20" }, { host: "api.github.com", ip: "10.213.0.10" }], "upstreams' hosts first, then the bottle's");
});

test("pipelock's size caps: set in the manifest, kept in the live policy (so approvals keep them), rendered in bytes", (t) => {
  const spec = resolveBottle(loadManifest(rawManifest("bottles:\n  dev:\n    pipelock:\n      allowlist: [files.example.com]\n      max_response_mib: 1024\n      max_body_mib: 100\n")), { env: {} });
  t.deepEqual(spec.policy, { version: 1, pipelock_allowlist: ["files.example.com"], ssrf_ip_allowlist: [], max_response_mib: 1024, max_body_mib: 100 });
  const cfg = pipelockConfigFor(spec.routes, spec.policy);
  t.is(cfg.tls_interception.max_response_bytes, 1024 * 1024 * 1024);
  t.is(cfg.request_body_scanning.max_body_bytes, 100 * 1024 * 1024);
  const unset = resolveBottle(loadManifest(rawManifest("bottles:\n  dev: {}\n")), { env: {} });
  t.false("max_response_mib" in unset.policy, "unset: the policy document stays as before (defaults are the renderer's)");
});

test("stack-config overrides replace the manifest's routes and allowlist", (t) => {
  const file = fixture("full");
  const spec = resolveBottle(loadManifest(file), {
    env: FULL_ENV,
    overrides: { routes: { version: 1, routes: [{ host: "api.anthropic.com", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" }, role: "claude_code_oauth" }, { host: "new.example.com" }] }, pipelockAllowlist: '["extra.example.com"]' },
  });
  t.deepEqual(spec.routes.routes.map((r) => r.host), ["api.anthropic.com", "new.example.com"]);
  t.deepEqual(spec.policy.pipelock_allowlist, ["extra.example.com"]);
  t.deepEqual(Object.keys(spec.tokens), ["CLAUDE_CODE_OAUTH_TOKEN"], "a token no route needs is not read");
  t.true(fs.existsSync(path.dirname(file)));
});

test("server-tool switches: manifest defaults keep WebSearch on and code execution off; the stack config's approved switches win over the manifest's and over any the approved routes carried", (t) => {
  const plain = resolveBottle(loadManifest(rawManifest("bottles:\n  dev: {}\n", { "a.md": "---\nbottle: dev\n---\nHi.\n" })), { env: {} });
  t.deepEqual(plain.routes.server_tools, { web_search: true, code_execution: false });
  const file = rawManifest("bottles:\n  dev:\n    egress:\n      server_tools: { web_search: false }\n", { "a.md": "---\nbottle: dev\n---\nHi.\n" });
  t.deepEqual(resolveBottle(loadManifest(file), { env: {} }).routes.server_tools, { web_search: false, code_execution: false });
  const spec = resolveBottle(loadManifest(file), {
    env: {},
    overrides: { routes: { version: 1, routes: [{ host: "x.example.com" }], server_tools: { web_search: true, code_execution: true } }, serverTools: '{"web_search": false, "code_execution": true}' },
  });
  t.deepEqual(spec.routes, { version: 1, routes: [{ host: "x.example.com", path_allowlist: ["/"], methods: [...HTTP_METHODS] }], server_tools: { web_search: false, code_execution: true } });
});

test("agent skills are read from directories next to the agent file", (t) => {
  const file = rawManifest("bottles:\n  dev: {}\n", { "a.md": "---\nbottle: dev\nskills: [skills/review]\n---\nReview.\n" });
  const dir = path.join(path.dirname(file), "agents", "skills", "review");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "SKILL.md"), "---\nname: review\n---\nHow to review.\n");
  const spec = resolveBottle(loadManifest(file), { env: {} });
  t.deepEqual(Object.keys(spec.agent.skills), ["review"]);
  t.regex(spec.agent.skills.review!, /How to review/);
});

test("git-gate hosts: upstreams' extra_hosts then the bottle's, merged; identical entries kept once", (t) => {
  const problems: string[] = [];
  const merged = mergeExtraHosts(
    [
      { name: "a", extra_hosts: { "git.corp.example": "10.0.0.5", "GitHub.com.": "140.82.112.3" } },
      { name: "b", extra_hosts: { "github.com": "140.82.112.3" } },
      { name: "c" },
    ],
    { "github.com": "140.82.112.3", "api.github.com": "140.82.112.6" },
    "bottles.dev",
    problems,
  );
  t.deepEqual(problems, []);
  t.deepEqual(merged, [
    { host: "git.corp.example", ip: "10.0.0.5" },
    { host: "github.com", ip: "140.82.112.3" },
    { host: "api.github.com", ip: "140.82.112.6" },
  ]);
});

test("git-gate hosts: one host at two IPs names both key paths (upstream against upstream, bottle against upstream)", (t) => {
  const problems: string[] = [];
  mergeExtraHosts(
    [
      { name: "api", extra_hosts: { "github.com": "140.82.112.3" } },
      { name: "web", extra_hosts: { "github.com": "140.82.112.4" } },
    ],
    { "github.com": "140.82.112.5" },
    "bottles.dev",
    problems,
  );
  t.is(problems.length, 2);
  t.regex(problems[0]!, /^bottles\.dev\.git\.upstreams\[1\]\.extra_hosts\.github\.com: upstream "web" maps github\.com to 140\.82\.112\.4/);
  t.regex(problems[0]!, /upstream "api" \(bottles\.dev\.git\.upstreams\[0\]\.extra_hosts\.github\.com\) maps it to 140\.82\.112\.3/);
  t.regex(problems[1]!, /^bottles\.dev\.extra_hosts\.github\.com: the bottle maps github\.com to 140\.82\.112\.5, but upstream "api"/);
});
