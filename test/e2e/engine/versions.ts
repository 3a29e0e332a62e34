import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const PROJECT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The provider version an installed SDK package asks the engine for (package.json `pulumi.version`). */
export function sdkPluginVersion(pkg: "docker" | "tls"): string {
  const json = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "node_modules", "@pulumi", pkg, "package.json"), "utf8"));
  return String(json.pulumi?.version ?? json.version).replace(/^v/, "");
}
