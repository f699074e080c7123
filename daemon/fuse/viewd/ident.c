/*
 * Acting as the caller. Calls that create or modify run with the caller's fsuid, fsgid and
 * supplementary groups, set on this thread only (raw system calls: glibc's setgroups would change
 * every thread). A fsuid other than 0 also drops CAP_FSETID, CAP_FOWNER, CAP_DAC_OVERRIDE and
 * CAP_MKNOD, so the lower file system applies the same rules it would to the caller directly.
 */
#include "viewd.h"

#include <sys/syscall.h>
#include <unistd.h>

#define MAX_GROUPS 256

static gid_t saved_groups[MAX_GROUPS];
static int nsaved;

void ident_init(void) {
  int n = getgroups(MAX_GROUPS, saved_groups);
  nsaved = n < 0 ? 0 : n;
}

void ident_enter(fuse_req_t req, struct ident *id) {
  id->switched = 0;
  if (!g.root) return; /* an ordinary user's server serves only that user */
  const struct fuse_ctx *c = fuse_req_ctx(req);
  if (c->uid == 0 && c->gid == 0) return;
  gid_t groups[MAX_GROUPS];
  int n = fuse_req_getgroups(req, MAX_GROUPS, groups);
  if (n < 0) n = 0;
  if (n > MAX_GROUPS) n = MAX_GROUPS;
  syscall(SYS_setgroups, n, groups);
  syscall(SYS_setfsgid, c->gid);
  syscall(SYS_setfsuid, c->uid);
  id->switched = 1;
}

void ident_leave(struct ident *id) {
  if (!id->switched) return;
  syscall(SYS_setfsuid, 0);
  syscall(SYS_setfsgid, getegid());
  syscall(SYS_setgroups, nsaved, saved_groups);
  id->switched = 0;
}
