// Builds the agent image (sidecars/agent/Dockerfile) on the local engine from a local base,
// cached by a hash of its inputs: `cbtest-agent-img:<hash12>`. Reusable by the harness.
//
// npm inside the build reaches the registry through the build's network. Where a
// TLS-inspecting proxy sits in between (this CI's machines), the host's locally added CAs
// (/usr/local/share/ca-certificates/*.crt, or the file named by CBTEST_BUILD_CA_FILE) are
// passed as the build-stage-only arg BUILD_EXTRA_CA_PEM; they never reach the runtime image.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { docker, dockerOk } from "./lib/docker.ts";
import { SIDECARS_DIR } from "../../components/images.ts";

export const AGENT_CONTEXT = path.join(SIDECARS_DIR, "agent");

export function buildCaPem(): string {
  const file = process.env.CBTEST_BUILD_CA_FILE;
  if (file) return fs.readFileSync(file, "utf8");
  const dir = "/usr/local/share/ca-certificates";
  if (!fs.existsSync(dir)) return "";
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".crt"))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f), "utf8").trim())
    .join("\n");
}

export interface AgentImage {
  image: string;
  built: boolean;
  seconds?: number;
  sizeBytes: number;
}

export async function ensureAgentImage(baseImage: string, log: (s: string) => void = () => undefined): Promise<AgentImage> {
  const baseId = await dockerOk(["image", "inspect", "--format", "{{.Id}}", baseImage]);
  const h = crypto.createHash("sha256").update(baseId);
  for (const f of fs.readdirSync(AGENT_CONTEXT).filter((f) => !f.endsWith(".ts") && !f.endsWith(".md")).sort()) {
    h.update(f).update(fs.readFileSync(path.join(AGENT_CONTEXT, f)));
  }
  const image = `cbtest-agent-img:${h.digest("hex").slice(0, 12)}`;
  const size = async () => Number(await dockerOk(["image", "inspect", "--format", "{{.Size}}", image]));
  if ((await docker(["image", "inspect", image])).code === 0) return { image, built: false, sizeBytes: await size() };
  log(`building ${image} FROM ${baseImage} (npm installs Claude Code; a few minutes)`);
  const start = Date.now();
  const args = ["build", "--force-rm", "--build-arg", `BASE_IMAGE=${baseImage}`, "-t", image];
  const ca = buildCaPem();
  if (ca) args.push("--build-arg", `BUILD_EXTRA_CA_PEM=${ca}`);
  const r = await docker([...args, AGENT_CONTEXT], { timeoutMs: 20 * 60_000 });
  if (r.code !== 0) throw new Error(`agent image build failed (exit ${r.code}):\n${(r.stdout + r.stderr).split("\n").slice(-30).join("\n")}`);
  const seconds = (Date.now() - start) / 1000;
  log(`built ${image} in ${seconds.toFixed(1)} s`);
  return { image, built: true, seconds, sizeBytes: await size() };
}
