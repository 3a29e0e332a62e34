// Editing a route or an allowlist host and running `pulumi up` must rewrite only the live
// config files (and reload), never replace a container: every container input, image and
// network must be identical between the two programs.
import test from "ava";
import { captureBottle, TYPES, type Capture } from "./helpers/capture.ts";
import { fixture, FULL_ENV } from "./helpers/fixtures.ts";

const stable = (cap: Capture) =>
  cap.registrations
    .filter((r) => r.type.startsWith("docker:") || r.type.startsWith("tls:"))
    .map((r) => ({ type: r.type, name: r.name, inputs: JSON.stringify(r.inputs, (k, v) => (k === "privateKeyPem" || k === "certPem" || k === "content" && typeof v === "string" && v.includes("BEGIN") ? "<pem>" : v)) }))
    .sort((a, b) => (a.type + a.name).localeCompare(b.type + b.name));

const stateDir = "/tmp/cb-unit-live-changes";
const live = (cap: Capture) => Object.fromEntries(cap.byType(TYPES.dynamic).map((r) => [r.inputs.kind, r.inputs.content]));

test("a route edit changes the routes file only, also when it moves or adds a role", async (t) => {
  const a = await captureBottle({ manifest: fixture("full"), env: FULL_ENV, stateDir });
  const b = await captureBottle({
    manifest: fixture("full", (m) => {
      m.bottles.dev.egress.routes[1].path_allowlist = ["/repos/acme/", "/orgs/acme/"];
      m.bottles.dev.egress.routes[1].methods = ["GET", "HEAD", "POST"];
      m.bottles.dev.egress.routes.push({ host: "pypi.example.org", methods: ["GET"] });
      // Roles: the Anthropic route loses its role to a second route carrying the same credential.
      delete m.bottles.dev.egress.routes[0].role;
      m.bottles.dev.egress.routes.push({ host: "claude.ai", auth: { scheme: "bearer", token_ref: "CLAUDE_CODE_OAUTH_TOKEN" }, role: "claude_code_oauth" });
    }),
    env: FULL_ENV,
    stateDir,
  });
  t.deepEqual(stable(b), stable(a), "no container, image, network, volume or CA input changed");
  t.regex(live(b)["egress-routes"], /role: claude_code_oauth/);
  t.not(live(b)["egress-routes"], live(a)["egress-routes"]);
  t.not(live(b)["pipelock-config"], live(a)["pipelock-config"], "the new host is allowed by pipelock too");
  t.regex(live(b)["pipelock-config"], /pypi\.example\.org/);
});

test("an allowlist edit changes the pipelock config only", async (t) => {
  const a = await captureBottle({ manifest: fixture("full"), env: FULL_ENV, stateDir });
  const b = await captureBottle({ manifest: fixture("full", (m) => m.bottles.dev.pipelock.allowlist.push("cdn.example.net")), env: FULL_ENV, stateDir });
  t.deepEqual(stable(b), stable(a));
  t.is(live(b)["egress-routes"], live(a)["egress-routes"]);
  t.regex(live(b)["pipelock-config"], /cdn\.example\.net/);
});

test("an extra allowlist host that is also a route host survives removal of the route (no subtraction)", async (t) => {
  // *.docs.example.com is both a route host and, here, an extra: the operator allowed it outright.
  const withExtra = (m: any) => m.bottles.dev.pipelock.allowlist.push("*.docs.example.com");
  const a = await captureBottle({ manifest: fixture("full", withExtra), env: FULL_ENV, stateDir });
  const b = await captureBottle({
    manifest: fixture("full", (m) => {
      withExtra(m);
      m.bottles.dev.egress.routes.splice(2, 1);
    }),
    env: FULL_ENV,
    stateDir,
  });
  t.notRegex(live(b)["egress-routes"], /docs\.example\.com/);
  t.regex(live(b)["pipelock-config"], /- "\*\.docs\.example\.com"/);
  t.is(live(b)["pipelock-config"], live(a)["pipelock-config"], "pipelock's config does not change at all");
  t.is(live(b)["live-policy"], live(a)["live-policy"]);
  t.deepEqual(stable(b), stable(a));
});

test("the live files signal the container that watches them", async (t) => {
  const cap = await captureBottle({ manifest: fixture("full"), env: FULL_ENV, stateDir });
  const files = cap.byType(TYPES.dynamic);
  t.is(files.find((f) => f.inputs.kind === "egress-routes")!.inputs.reloadContainer, cap.container("egress").inputs.name);
  t.is(files.find((f) => f.inputs.kind === "pipelock-config")!.inputs.reloadContainer, cap.container("pipelock").inputs.name);
  const record = JSON.parse(files.find((f) => f.inputs.kind === "bottle-record")!.inputs.content);
  t.is(record.identity, "dev-coder");
  t.is(record.containers.egress, cap.container("egress").inputs.name);
});

test("a token value change replaces only egress (the only holder of tokens)", async (t) => {
  const a = await captureBottle({ manifest: fixture("full"), env: FULL_ENV, stateDir });
  const b = await captureBottle({ manifest: fixture("full"), env: { ...FULL_ENV, GITHUB_TOKEN: "ghp_ROTATEDTOKENVALUE0123456789abcdefABCD" }, stateDir });
  const changed = stable(a).filter((r, i) => r.inputs !== stable(b)[i]!.inputs).map((r) => r.name);
  t.deepEqual(changed, ["dev-coder-egress"]);
});
