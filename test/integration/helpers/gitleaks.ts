// The real gitleaks binary for tests, at the version the gate pins: built once with
// `go install` into ~/.cache/claude-bottle/bin/gitleaks-<version>/ (CLAUDE_BOTTLE_CACHE moves
// the cache; GITLEAKS_BIN points at a prebuilt binary instead).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { GITLEAKS_MODULE, GITLEAKS_VERSION } from "../../../contracts/git-gate.ts";

function findGo(): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/local/go/bin", path.join(os.homedir(), "go", "bin")]) {
    const p = path.join(dir, "go");
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

export function gitleaksPath(): string {
  const cache = process.env.CLAUDE_BOTTLE_CACHE || path.join(os.homedir(), ".cache", "claude-bottle");
  return path.join(cache, "bin", `gitleaks-${GITLEAKS_VERSION}`, "gitleaks");
}

export function ensureGitleaks(): string {
  if (process.env.GITLEAKS_BIN) return process.env.GITLEAKS_BIN;
  const bin = gitleaksPath();
  if (fs.existsSync(bin)) return bin;
  const go = findGo();
  if (!go) throw new Error(`gitleaks ${GITLEAKS_VERSION} is not cached at ${bin} and no Go toolchain was found: install Go >= 1.24 (gitleaks ${GITLEAKS_VERSION} needs it), or set GITLEAKS_BIN to a gitleaks ${GITLEAKS_VERSION} binary`);
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const gobin = fs.mkdtempSync(path.join(path.dirname(bin), ".tmp-"));
  try {
    const ldflags = `-s -w -X ${GITLEAKS_MODULE}/version.Version=${GITLEAKS_VERSION.replace(/^v/, "")}`;
    const r = spawnSync(go, ["install", "-trimpath", `-ldflags=${ldflags}`, `${GITLEAKS_MODULE}@${GITLEAKS_VERSION}`], {
      encoding: "utf8",
      cwd: os.tmpdir(),
      env: { ...process.env, GOBIN: gobin, CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" },
      timeout: 15 * 60_000,
    });
    if (r.status !== 0) throw new Error(`go install ${GITLEAKS_MODULE}@${GITLEAKS_VERSION} failed: ${(r.stderr || String(r.error)).trim().slice(-800)}`);
    fs.renameSync(path.join(gobin, "gitleaks"), bin); // atomic: concurrent installers race harmlessly
  } finally {
    fs.rmSync(gobin, { recursive: true, force: true });
  }
  return bin;
}
