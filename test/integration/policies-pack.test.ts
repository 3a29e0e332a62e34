// The policy pack under the runtime the Pulumi CLI uses: policies/ started through its own
// @pulumi/pulumi/cmd/run-policy-pack (what the CLI's analyzer plugin runs), then driven over gRPC
// like the engine does. Proves run.cjs → tsx → index.ts loads and serves every policy.
// Needs `npm install` inside policies/ (skipped with a message otherwise).
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { ALL_POLICIES } from "../../policies/all.ts";
import { LABEL_ROLE } from "../../contracts/labels.ts";

const PACK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "policies");
const RUNNER = path.join(PACK, "node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack");
const installed = fs.existsSync(RUNNER);
const maybe = installed ? test : test.skip;
if (!installed) console.log(`policies-pack: skipped, run \`npm install\` in ${PACK} first`);

let child: ChildProcess | undefined;
let client: any;
let pb: any;
let structPb: any;

test.before(async () => {
  if (!installed) return;
  const req = createRequire(path.join(PACK, "package.json"));
  const grpc = req("@grpc/grpc-js");
  const rpc = req("@pulumi/pulumi/proto/analyzer_grpc_pb");
  pb = req("@pulumi/pulumi/proto/analyzer_pb");
  structPb = req("google-protobuf/google/protobuf/struct_pb");
  // The engine address is only used for logging; nothing listens there in this test.
  child = spawn(process.execPath, [RUNNER, "127.0.0.1:1", "."], { cwd: PACK, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`pack did not print its port in 60 s; stderr:\n${stderr}`)), 60_000);
    child!.stdout!.on("data", (d) => {
      out += d;
      const m = /^(\d+)\s*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child!.on("exit", (code) => reject(new Error(`pack exited with ${code}; stderr:\n${stderr}`)));
  });
  client = new rpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

test.after.always(() => {
  client?.close?.();
  if (child && child.exitCode === null) child.kill("SIGTERM");
});

const call = <T>(method: string, request: unknown): Promise<T> =>
  new Promise((resolve, reject) => client[method](request, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));

async function analyze(type: string, name: string, props: Record<string, unknown>) {
  const r = new pb.AnalyzeRequest();
  r.setType(type);
  r.setName(name);
  r.setUrn(`urn:pulumi:test::claude-bottle::${type}::${name}`);
  r.setProperties(structPb.Struct.fromJavaScript(props));
  const opts = new pb.AnalyzerResourceOptions();
  opts.setCustomtimeouts(new pb.AnalyzerResourceOptions.CustomTimeouts());
  r.setOptions(opts);
  const res: any = await call("analyze", r);
  return res.getDiagnosticsList().map((d: any) => ({ policy: d.getPolicyname(), message: d.getMessage() }));
}

const agent = (extra: Record<string, unknown> = {}) => ({
  image: "sha256:" + "b".repeat(64),
  labels: [{ label: LABEL_ROLE, value: "agent" }],
  capabilities: { drops: ["ALL"] },
  securityOpts: ["no-new-privileges:true"],
  networksAdvanced: [{ name: "cb-internal" }],
  ...extra,
});

maybe("the pack loads under the CLI's policy runner and serves every policy", async (t) => {
  const { Empty } = createRequire(path.join(PACK, "package.json"))("google-protobuf/google/protobuf/empty_pb");
  const info: any = await call("getAnalyzerInfo", new Empty());
  t.is(info.getName(), "claude-bottle");
  t.deepEqual(info.getPoliciesList().map((p: any) => p.getName()).sort(), ALL_POLICIES.map((p) => p.name).sort());
});

maybe("a compliant agent container gets no diagnostics", async (t) => {
  t.deepEqual(await analyze("docker:index/container:Container", "agent", agent()), []);
});

maybe("a privileged agent on the host network is reported", async (t) => {
  const ds = await analyze("docker:index/container:Container", "agent", agent({ privileged: true, networkMode: "host" }));
  t.true(ds.some((d: any) => d.policy === "agent-not-privileged"), JSON.stringify(ds));
  t.true(ds.some((d: any) => d.policy === "agent-no-host-namespaces"), JSON.stringify(ds));
});
