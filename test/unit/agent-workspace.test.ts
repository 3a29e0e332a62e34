// The workspace tar: hash-stable, readable by GNU tar (the agent image's extractor),
// .git included; the snapshot is taken once and a preview never writes it.
import test from "ava";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { workspaceSnapshot, writeWorkspaceTar } from "../../store/workspace.ts";

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
const LONG = "a-directory-name-that-is-quite-long/" + "b".repeat(90) + "/file-with-a-long-name.txt";

function repo(): string {
  const dir = tmp("cb-ws-src-");
  execFileSync("git", ["init", "-q", "-b", "main", dir]);
  fs.writeFileSync(path.join(dir, "README.md"), "hello\n");
  fs.writeFileSync(path.join(dir, "run.sh"), "#!/bin/sh\necho run\n", { mode: 0o755 });
  fs.mkdirSync(path.dirname(path.join(dir, LONG)), { recursive: true });
  fs.writeFileSync(path.join(dir, LONG), "deep\n");
  fs.symlinkSync("README.md", path.join(dir, "link-to-readme"));
  fs.mkdirSync(path.join(dir, "empty-dir"));
  execFileSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A"]);
  execFileSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init"]);
  return dir;
}

test("same tree → same bytes; mtimes do not matter; content does", (t) => {
  const src = repo();
  const out = tmp("cb-ws-out-");
  const a = writeWorkspaceTar(src, path.join(out, "a.tar"));
  const future = new Date(Date.now() + 3600_000);
  fs.utimesSync(path.join(src, "README.md"), future, future);
  const b = writeWorkspaceTar(src, path.join(out, "b.tar"));
  t.is(a.sha256, b.sha256);
  t.deepEqual(fs.readFileSync(a.file), fs.readFileSync(b.file));
  fs.writeFileSync(path.join(src, "README.md"), "changed\n");
  t.not(writeWorkspaceTar(src, path.join(out, "c.tar")).sha256, a.sha256);
});

test("GNU tar extracts it: .git, long names (PAX), symlinks, exec bits, empty dirs", (t) => {
  const src = repo();
  const out = tmp("cb-ws-out-");
  const { file } = writeWorkspaceTar(src, path.join(out, "ws.tar"));
  const dest = tmp("cb-ws-dest-");
  execFileSync("tar", ["-xf", file, "-C", dest, "--no-same-owner"]);
  t.is(fs.readFileSync(path.join(dest, LONG), "utf8"), "deep\n");
  t.is(fs.readlinkSync(path.join(dest, "link-to-readme")), "README.md");
  t.truthy(fs.statSync(path.join(dest, "run.sh")).mode & 0o100);
  t.falsy(fs.statSync(path.join(dest, "README.md")).mode & 0o111);
  t.true(fs.statSync(path.join(dest, "empty-dir")).isDirectory());
  // The copy is a working repository with the same history and a clean tree.
  t.is(execFileSync("git", ["-C", dest, "log", "--format=%s"]).toString().trim(), "init");
  t.is(execFileSync("git", ["-C", dest, "status", "--porcelain"]).toString(), "");
  // and tar's own listing agrees on every entry
  const listed = execFileSync("tar", ["-tf", file]).toString().trim().split("\n");
  t.true(listed.includes(LONG));
  t.true(listed.includes(".git/HEAD"));
});

test("snapshot: taken once, reused afterwards; a preview writes nothing into the state dir", (t) => {
  const src = repo();
  const state = tmp("cb-ws-state-");
  const snap = path.join(state, "agent", "workspace-x.tar");
  const preview = workspaceSnapshot(src, snap, { dryRun: true });
  t.false(fs.existsSync(snap));
  t.not(path.dirname(preview.file), path.dirname(snap));
  const first = workspaceSnapshot(src, snap);
  t.is(first.file, snap);
  t.is(first.sha256, preview.sha256);
  fs.writeFileSync(path.join(src, "README.md"), "changed later\n");
  const again = workspaceSnapshot(src, snap);
  t.is(again.sha256, first.sha256);
});
