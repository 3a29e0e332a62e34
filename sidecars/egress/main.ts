// Entry point of the egress sidecar (bundled to dist/main.mjs, run by node 18 in the image).
// Settings come from the environment (EgressSettingsSchema); tokens named by the routes'
// token_ref are read from the same environment and never logged.
//   SIGHUP  → reload the routes file (validated first; an invalid file keeps the old routes)
//   SIGTERM → stop accepting, finish in-flight requests (10 s grace), exit 0
// Logs are JSON lines on stderr; the audit log is JSON lines in EGRESS_AUDIT_LOG ("-" = stdout).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EGRESS_LOG, egressSettingsFromEnv, type EgressSettings } from "../../contracts/egress.ts";
import { SYSTEM_CA_BUNDLE } from "../../contracts/paths.ts";
import { TOOL_NAMES } from "../../contracts/proposals.ts";
import { tokenRefs } from "../../contracts/routes.ts";
import { parseListen } from "../../contracts/validation.ts";
import { EgressProxy, type AuditEntry, type LogFn } from "./proxy.ts";
import { loadRoutesFile, missingTokens, RoutesWatcher } from "./routes-file.ts";

export const log: LogFn = (level, msg, fields) => {
  process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }) + "\n");
};

function auditWriter(file: string): (e: AuditEntry) => void {
  if (file === "-") return (e) => process.stdout.write(JSON.stringify(e) + "\n");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const stream = fs.createWriteStream(file, { flags: "a" });
  stream.on("error", (err) => log("error", "audit log write failed", { file, error: String(err) }));
  return (e) => stream.write(JSON.stringify(e) + "\n");
}

/** Upstream trust: the system store plus EGRESS_UPSTREAM_CA_FILES (pipelock's CA, corporate CAs). */
export function upstreamCas(settings: EgressSettings, tlsRoots: readonly string[]): string[] | undefined {
  const files = (settings.EGRESS_UPSTREAM_CA_FILES ?? "").split(":").filter(Boolean);
  if (!files.length) return undefined;
  const pems = [...tlsRoots];
  if (fs.existsSync(SYSTEM_CA_BUNDLE)) pems.push(fs.readFileSync(SYSTEM_CA_BUNDLE, "utf8"));
  for (const f of files) pems.push(fs.readFileSync(f, "utf8"));
  return pems;
}

function warnMissing(env: NodeJS.ProcessEnv, doc: Parameters<typeof missingTokens>[0]): void {
  for (const m of missingTokens(doc, env)) {
    log("error", `ROUTE DISABLED: token ${m.token_ref} for ${m.host} is not set in the egress environment; requests to it are refused (token_missing)`, m);
  }
}

export async function start(env: NodeJS.ProcessEnv = process.env): Promise<{ proxy: EgressProxy; stop: () => Promise<void> }> {
  const settings = egressSettingsFromEnv(env);
  const tls = await import("node:tls");
  const initial = loadRoutesFile(settings.EGRESS_ROUTES_FILE);
  warnMissing(env, initial.doc);
  const { host, port } = parseListen(settings.EGRESS_LISTEN);

  const proxy = new EgressProxy({
    ca: { certPem: fs.readFileSync(settings.EGRESS_CA_CERT_FILE, "utf8"), keyPem: fs.readFileSync(settings.EGRESS_CA_KEY_FILE, "utf8") },
    routes: initial.doc,
    routesSha256: initial.hash,
    // Only the variables routes name are handed to the policy; re-read on each request so a
    // token the routes gain on reload is found when the container has it.
    tokens: new Proxy({} as Record<string, string | undefined>, { get: (_t, k) => (typeof k === "string" ? env[k] : undefined) }),
    upstreamProxy: settings.EGRESS_UPSTREAM_PROXY,
    upstreamCa: upstreamCas(settings, tls.rootCertificates),
    superviseTool: settings.EGRESS_SUPERVISE_TOOL,
    // supervise on: pipelock's allowlist refusals name the tool that widens it
    pipelockTool: settings.EGRESS_SUPERVISE_TOOL ? TOOL_NAMES.pipelock_allowlist : undefined,
    audit: auditWriter(settings.EGRESS_AUDIT_LOG),
    log,
  });
  const addr = await proxy.listen(port, host);
  log("info", EGRESS_LOG.listening, { address: `${addr.address}:${addr.port}`, routes: initial.doc.routes.length, sha256: initial.hash, upstream: settings.EGRESS_UPSTREAM_PROXY ?? "direct", tokens: tokenRefs(initial.doc) });

  const watcher = new RoutesWatcher({
    file: settings.EGRESS_ROUTES_FILE,
    log,
    initialHash: initial.hash,
    apply: (doc, hash) => {
      proxy.setRoutes(doc, hash);
      warnMissing(env, doc);
      log("info", EGRESS_LOG.reloaded, { routes: doc.routes.length, generation: proxy.generation, sha256: hash });
    },
  });
  watcher.start();
  const onHup = () => {
    log("info", "SIGHUP: reloading routes");
    watcher.reload(true);
  };
  process.on("SIGHUP", onHup);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.off("SIGHUP", onHup);
      watcher.stop();
      await proxy.close(10_000);
      log("info", "egress stopped");
    })());
  return { proxy, stop };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  start().then(
    ({ stop }) => {
      const onTerm = (sig: string) => {
        log("info", `${sig}: shutting down`);
        stop().then(() => process.exit(0));
      };
      process.once("SIGTERM", () => onTerm("SIGTERM"));
      process.once("SIGINT", () => onTerm("SIGINT"));
    },
    (err) => {
      log("error", "egress failed to start", { error: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    },
  );
}
