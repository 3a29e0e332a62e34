/* statx(2) without AT_NO_AUTOMOUNT where the kernel in front of us refuses that flag.

   gVisor release-20221219 (Debian bookworm's runsc) answers EINVAL to any statx flag outside
   AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_TYPE (its
   pkg/sentry/syscalls/linux/vfs2/stat.go of that release; later releases mask the flag).
   coreutils >= 9.1 passes AT_NO_AUTOMOUNT on every call, so `ls` and `stat` fail on every path
   under it: "ls: cannot access '/': Invalid argument".

   The agent image preloads this into every process (/etc/ld.so.preload). glibc's statx runs as
   before; only when it fails with EINVAL while AT_NO_AUTOMOUNT was set is it called once more
   without the flag. A container has no automount points, so the answer is the one the flag
   asked for. Under runc, or a runsc that accepts the flag, the first call succeeds and this
   adds one branch. Drop it when the oldest runsc we support is a 2023 release or newer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

typedef int (*statx_fn)(int, const char *, int, unsigned int, struct statx *);
static statx_fn next_statx;

__attribute__((constructor)) static void find_next_statx(void) {
  next_statx = (statx_fn)dlsym(RTLD_NEXT, "statx");
}

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  if (!next_statx) {
    errno = ENOSYS;
    return -1;
  }
  int r = next_statx(dirfd, path, flags, mask, buf);
  if (r == -1 && errno == EINVAL && (flags & AT_NO_AUTOMOUNT))
    r = next_statx(dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
  return r;
}
