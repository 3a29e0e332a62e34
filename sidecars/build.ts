// Bundles each TypeScript sidecar (sidecars/<name>/main.ts) into sidecars/<name>/dist/main.mjs,
// the one file its Dockerfile copies. Runs on `npm install` (prepare) and before image builds.
import { build } from "esbuild";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export async function buildSidecars(names?: string[]): Promise<string[]> {
  const all = fs
    .readdirSync(here, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(here, d.name, "main.ts")))
    .map((d) => d.name);
  const chosen = names ?? all;
  for (const name of chosen) {
    await build({
      entryPoints: [path.join(here, name, "main.ts")],
      outfile: path.join(here, name, "dist", "main.mjs"),
      bundle: true,
      platform: "node",
      // Sidecar images run Debian bookworm's nodejs (18.x).
      target: "node18",
      format: "esm",
      legalComments: "none",
      logLevel: "warning",
      // Some CommonJS dependencies call require(); give the ESM bundle one.
      banner: { js: "import { createRequire as __cbRequire } from 'node:module'; const require = __cbRequire(import.meta.url);" },
    });
  }
  return chosen;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const built = await buildSidecars(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
  console.log(`sidecars bundled: ${built.join(", ") || "(none yet)"}`);
}
