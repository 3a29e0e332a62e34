// Leaf minting (sidecars/egress/certs.ts) and routes-file loading (sidecars/egress/routes-file.ts).
import test from "ava";
import { seal } from "../../contracts/seal.ts";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LeafCache } from "../../sidecars/egress/certs.ts";
import { loadRoutesFile, missingTokens, RoutesWatcher } from "../../sidecars/egress/routes-file.ts";
import { createTestCa } from "../integration/helpers/tls.ts";

test("leaf: SAN = host, issued by the CA, AKI = CA SKI, verifies against the CA", async (t) => {
  const ca = await createTestCa("unit CA");
  const cache = new LeafCache({ certPem: ca.certPem, keyPem: ca.keyPem });
  const leaf = new crypto.X509Certificate(await cache.leafPem("api.example.com"));
  const caCert = new crypto.X509Certificate(ca.certPem);
  t.true(leaf.verify(caCert.publicKey));
  t.true(leaf.checkIssued(caCert));
  t.is(leaf.checkHost("api.example.com"), "api.example.com");
  t.is(leaf.checkHost("other.example.com"), undefined);
  t.false(leaf.ca);
  t.true(new Date(leaf.validTo).getTime() <= new Date(caCert.validTo).getTime());
  const ipLeaf = new crypto.X509Certificate(await cache.leafPem("127.0.0.1"));
  t.is(ipLeaf.checkIP("127.0.0.1"), "127.0.0.1");
});

test("leaf: CA keys in SEC1 (EC PRIVATE KEY) and PKCS#1 (RSA PRIVATE KEY) PEM are accepted", async (t) => {
  for (const rsa of [false, true]) {
    const ca = await createTestCa("unit CA", { rsa });
    const legacy = crypto.createPrivateKey(ca.keyPem).export({ format: "pem", type: rsa ? "pkcs1" : "sec1" }) as string;
    t.regex(legacy, rsa ? /BEGIN RSA PRIVATE KEY/ : /BEGIN EC PRIVATE KEY/);
    const cache = new LeafCache({ certPem: ca.certPem, keyPem: legacy });
    const leaf = new crypto.X509Certificate(await cache.leafPem("x.example.com"));
    t.true(leaf.verify(new crypto.X509Certificate(ca.certPem).publicKey));
  }
});

test("leaf cache: one mint per host, concurrent callers share it; renewed near expiry", async (t) => {
  const ca = await createTestCa("unit CA");
  const cache = new LeafCache({ certPem: ca.certPem, keyPem: ca.keyPem }, { leafDays: 2 });
  const now = Date.now();
  const [a, b] = await Promise.all([cache.secureContext("a.example.com", now), cache.secureContext("a.example.com", now)]);
  t.is(a, b);
  t.is(cache.minted, 1);
  await cache.secureContext("a.example.com", now + 1000);
  t.is(cache.minted, 1);
  await cache.secureContext("a.example.com", now + 1.5 * 86_400_000); // < 1 day left → re-mint
  t.is(cache.minted, 2);
});

test("leaf cache: a bad CA fails ready() loudly", async (t) => {
  const cache = new LeafCache({ certPem: "not a cert", keyPem: "not a key" });
  await t.throwsAsync(cache.ready());
});

test("routes file: YAML is validated with the contract schema; errors name the key path", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-routes-"));
  const file = path.join(dir, "routes.yaml");
  const ANY = "    path_allowlist: [/]\n    methods: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]\n";
  fs.writeFileSync(file, seal("version: 1\nroutes:\n  - host: API.Example.com\n" + ANY + "    auth: {scheme: bearer, token_ref: TOK}\n"));
  const { doc, hash } = loadRoutesFile(file);
  t.is(doc.routes[0]!.host, "api.example.com");
  t.regex(hash, /^[0-9a-f]{64}$/);
  t.deepEqual(missingTokens(doc, {}), [{ host: "api.example.com", token_ref: "TOK" }]);
  t.deepEqual(missingTokens(doc, { TOK: "x" }), []);
  fs.writeFileSync(file, seal("version: 1\nroutes:\n  - host: a.example.com\n    path_allowlist: [/]\n    methodz: [GET]\n"));
  t.throws(() => loadRoutesFile(file), { message: /routes\[0\]\.methodz.*did you mean "methods"/ });
  fs.writeFileSync(file, seal("version: 1\nroutes: [\n"));
  t.throws(() => loadRoutesFile(file), { message: /not valid YAML/ });
  // The live document is explicit: a route without path_allowlist or methods is refused, not "any".
  fs.writeFileSync(file, seal("version: 1\nroutes:\n  - host: a.example.com\n    methods: [GET]\n"));
  t.throws(() => loadRoutesFile(file), { message: /routes\[0\]\.path_allowlist: required array is missing/ });
  fs.writeFileSync(file, seal("version: 1\nroutes:\n  - host: a.example.com\n    path_allowlist: [/x]\n"));
  t.throws(() => loadRoutesFile(file), { message: /routes\[0\]\.methods: required array is missing/ });
  // Unsealed (a hand edit, a writer still at work): refused whatever the content.
  fs.writeFileSync(file, "version: 1\nroutes: []\n");
  t.throws(() => loadRoutesFile(file), { message: /not applied: the file does not end with its completeness line/ });
  fs.rmSync(dir, { recursive: true });
});

test("routes watcher: applies valid changes once, keeps old routes on an invalid file", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-routes-"));
  const file = path.join(dir, "routes.yaml");
  const route = (host: string) => seal(`version: 1\nroutes: [{host: ${host}, path_allowlist: [/], methods: [GET]}]\n`);
  fs.writeFileSync(file, route("a.example.com"));
  const applied: string[][] = [];
  const logs: string[] = [];
  const w = new RoutesWatcher({ file, log: (_l, m, f) => logs.push(m + JSON.stringify(f)), apply: (doc) => applied.push(doc.routes.map((r) => r.host)), initialHash: loadRoutesFile(file).hash });
  t.false(w.reload(false), "unchanged content is not re-applied");
  t.true(w.reload(true), "SIGHUP forces");
  fs.writeFileSync(file, route("'not a host'"));
  t.false(w.reload(false));
  t.regex(logs.join("\n"), /routes file NOT applied; the previous routes stay in force.*not a valid host name/);
  // A half-written file (every proper prefix of the next document): never applied.
  const next = route("b.example.com");
  for (let cut = 0; cut < next.length - 1; cut += 7) {
    fs.writeFileSync(file, next.slice(0, cut));
    t.false(w.reload(false), `prefix of ${cut} bytes`);
  }
  fs.writeFileSync(file, next);
  t.true(w.reload(false));
  t.deepEqual(applied, [["a.example.com"], ["b.example.com"]]);
  fs.rmSync(dir, { recursive: true });
});
