// The agent image's pieces that gVisor made matter: the entrypoint's emptiness check (a
// failing listing must never read as "empty") and the statx shim's wiring into the image.
import test from "ava";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SIDECARS_DIR } from "../../components/images.ts";

const read = (f: string) => fs.readFileSync(path.join(SIDECARS_DIR, "agent", f), "utf8");
const ENTRYPOINT = read("entrypoint.sh");
const DOCKERFILE = read("Dockerfile");

/** The entrypoint's own count_entries, run by bash. */
function countEntries(dir: string): string {
  const fn = /^count_entries\(\) \{\n[\s\S]*?\n\}$/m.exec(ENTRYPOINT)?.[0];
  if (!fn) throw new Error("entrypoint.sh: no count_entries() function");
  return execFileSync("bash", ["-c", `set -u; ${fn}\ncount_entries "$1"`, "bash", dir]).toString();
}

test("workspace emptiness: entries counted by globbing (dotfiles too); an unreadable or missing directory is 'cannot tell', never empty", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-entries-"));
  t.is(countEntries(dir), "0\n");
  fs.writeFileSync(path.join(dir, ".git"), "");
  t.is(countEntries(dir), "1\n");
  fs.mkdirSync(path.join(dir, "src"));
  fs.writeFileSync(path.join(dir, "a b.txt"), "");
  t.is(countEntries(dir), "3\n");
  t.is(countEntries(path.join(dir, "missing")), "");
  t.is(countEntries(path.join(dir, "a b.txt")), "", "a file is not a directory");
  // the step extracts only on an explicit 0, and says so when it cannot tell
  t.regex(ENTRYPOINT, /elif \[ -z "\$entries" \]; then\n\s+log "workspace: cannot read/);
  t.regex(ENTRYPOINT, /elif \[ "\$entries" -gt 0 \]; then\n\s+log "workspace: \$WORKSPACE is not empty/);
  t.notRegex(ENTRYPOINT, /\$\(ls /, "no decision rests on ls");
});

test("the statx shim: compiled in a build stage from the committed source, preloaded for every process, no compiler in the image", (t) => {
  t.true(fs.existsSync(path.join(SIDECARS_DIR, "agent", "statx-automount.c")));
  const stages = DOCKERFILE.split(/^(?=FROM )/m).slice(1);
  const shim = stages.find((s) => /^FROM \$\{BASE_IMAGE\} AS statx-shim$/m.test(s));
  t.truthy(shim, "a statx-shim build stage FROM the base image");
  t.regex(shim!, /^COPY statx-automount\.c \/src\/$/m);
  t.regex(shim!, /^RUN gcc .* -o \/statx-automount\.so \/src\/statx-automount\.c$/m);
  const runtime = stages.at(-1)!;
  t.regex(runtime, /^COPY --from=statx-shim \/statx-automount\.so \$\{STATX_SHIM\}$/m);
  t.regex(runtime, /echo "\$STATX_SHIM" > \/etc\/ld\.so\.preload/);
  t.regex(runtime, /grep -qF "\$STATX_SHIM" \/proc\/self\/maps/, "the build proves the preload is loaded");
  t.true(runtime.indexOf("ld.so.preload") < runtime.indexOf("USER agent"), "written as root");
  t.notRegex(runtime, /\bgcc\b|libc6-dev/);
});
