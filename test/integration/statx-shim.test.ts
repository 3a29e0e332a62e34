// The agent image's statx shim (sidecars/agent/statx-automount.c) as a real preloaded library
// under this host's coreutils, in front of a double of the sentry's statx that Debian's runsc
// (gVisor release-20221219) runs: pkg/sentry/syscalls/linux/vfs2/stat.go `Statx` answers EINVAL
// to any flag outside AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW|AT_STATX_SYNC_TYPE, to two sync types
// at once, and to STATX__RESERVED in the mask; everything else goes to the real call. The e2e
// tier runs the image itself under runsc.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SIDECARS_DIR } from "../../components/images.ts";

const AGENT = path.join(SIDECARS_DIR, "agent");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-statx-"));
const SHIM = path.join(dir, "statx-automount.so");
const DOUBLE = path.join(dir, "gvisor-20221219-statx.so");
const PROBE = path.join(dir, "statx-probe");

const GVISOR_STATX_DOUBLE = String.raw`
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
typedef int (*statx_fn)(int, const char *, int, unsigned int, struct statx *);
int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  unsigned sync = flags & AT_STATX_SYNC_TYPE;
  if ((flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_TYPE)) || (sync & (sync - 1)) || (mask & STATX__RESERVED)) {
    errno = EINVAL;
    return -1;
  }
  return ((statx_fn)dlsym(RTLD_NEXT, "statx"))(dirfd, path, flags, mask, buf);
}
`;

// statx(AT_FDCWD, argv[1], flags from argv[2]) → "ok" or the errno's name
const STATX_PROBE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
  struct statx st;
  int r = statx(AT_FDCWD, argv[1], (int)strtol(argv[2], 0, 0), STATX_BASIC_STATS, &st);
  printf("%s\n", r == 0 ? "ok" : strerrorname_np(errno));
  return 0;
}
`;

let gccProblem: string | undefined;
test.before(() => {
  // the image's own compile line, with host paths
  const line = /^RUN gcc (.+) -o \/statx-automount\.so \/src\/statx-automount\.c$/m.exec(fs.readFileSync(path.join(AGENT, "Dockerfile"), "utf8"));
  if (!line) throw new Error("sidecars/agent/Dockerfile: no `RUN gcc … -o /statx-automount.so /src/statx-automount.c` line");
  const gcc = (args: string[]) => execFileSync("gcc", args, { stdio: "pipe" });
  try {
    gcc([...line[1]!.split(/\s+/), "-o", SHIM, path.join(AGENT, "statx-automount.c")]);
  } catch (e) {
    gccProblem = `gcc (with libc6-dev) is needed to build the shim as the image does: ${(e as Error).message.split("\n")[0]}`;
    return;
  }
  fs.writeFileSync(path.join(dir, "double.c"), GVISOR_STATX_DOUBLE);
  gcc(["-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", DOUBLE, path.join(dir, "double.c")]);
  fs.writeFileSync(path.join(dir, "probe.c"), STATX_PROBE);
  gcc(["-O2", "-Wall", "-Werror", "-o", PROBE, path.join(dir, "probe.c")]);
  fs.mkdirSync(path.join(dir, "tree"));
  fs.writeFileSync(path.join(dir, "tree", "a.txt"), "a\n");
  fs.writeFileSync(path.join(dir, "tree", ".hidden"), "h\n");
});

const run = (cmd: string, args: string[], preload: string[]) => {
  const r = spawnSync(cmd, args, { env: { ...process.env, LC_ALL: "C", LD_PRELOAD: preload.join(":") }, encoding: "utf8" });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
};

test.serial("the double reproduces runsc 2022's failure: coreutils ls and stat fail on every path", (t) => {
  if (gccProblem) return t.fail(gccProblem);
  const ls = run("ls", ["-la", path.join(dir, "tree")], [DOUBLE]);
  t.not(ls.code, 0);
  t.regex(ls.err, /cannot (access|open directory) .*Invalid argument/);
  const st = run("stat", [path.join(dir, "tree", "a.txt")], [DOUBLE]);
  t.regex(st.err, /cannot statx .*Invalid argument/);
});

test.serial("with the shim in front of it, ls and stat answer exactly as without either", (t) => {
  if (gccProblem) return t.fail(gccProblem);
  for (const [cmd, args] of [["ls", ["-la", "--time-style=+%s", path.join(dir, "tree")]], ["stat", ["-c", "%n %s %F %i", path.join(dir, "tree", "a.txt"), path.join(dir, "tree")]]] as const) {
    const plain = run(cmd, [...args], []);
    t.is(plain.code, 0, plain.err);
    t.deepEqual(run(cmd, [...args], [SHIM, DOUBLE]), plain, `${cmd} behind the double`);
    t.deepEqual(run(cmd, [...args], [SHIM]), plain, `${cmd} on this kernel (as under runc)`);
  }
});

test.serial("errors the flag did not cause stay errors: a missing path, two sync types", (t) => {
  if (gccProblem) return t.fail(gccProblem);
  const missing = run("ls", [path.join(dir, "nope")], [SHIM, DOUBLE]);
  t.is(missing.code, 2);
  t.regex(missing.err, /No such file or directory/);
  const AT_NO_AUTOMOUNT = 0x800;
  const BOTH_SYNC = 0x2000 | 0x4000;
  t.is(run(PROBE, [path.join(dir, "tree"), String(AT_NO_AUTOMOUNT)], [DOUBLE]).out, "EINVAL", "the double refuses the flag");
  t.is(run(PROBE, [path.join(dir, "tree"), String(AT_NO_AUTOMOUNT)], [SHIM, DOUBLE]).out, "ok");
  t.is(run(PROBE, [path.join(dir, "nope"), String(AT_NO_AUTOMOUNT)], [SHIM, DOUBLE]).out, "ENOENT");
  t.is(run(PROBE, [path.join(dir, "tree"), String(AT_NO_AUTOMOUNT | BOTH_SYNC)], [SHIM, DOUBLE]).out, "EINVAL");
  t.is(run(PROBE, [path.join(dir, "tree"), String(AT_NO_AUTOMOUNT | BOTH_SYNC)], [SHIM]).out, "EINVAL", "the kernel's own EINVAL");
});

test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));
