/*
 * Dropping the kernel's caches for paths after a switch changed what they
 * show. Runs on a napi worker thread (invalidate() in addon.c). Holds
 * fuse_lock for reading, so the loop thread cannot destroy the fuse object
 * underneath; stops early once an unmount began.
 */
#include "strata_fuse.h"

#include <fuse.h>
#include <fuse_lowlevel.h>

#include <string.h>

/* Returns how many paths something was dropped for. */
int64_t invalidate_paths(mount_ctx *ctx, char **paths, uint32_t n) {
  int64_t count = 0;
  pthread_rwlock_rdlock(&ctx->fuse_lock);
  for (uint32_t i = 0; i < n && ctx->fuse; i++) {
    pthread_mutex_lock(&ctx->mu);
    int stop = ctx->unmount_started || ctx->loop_done;
    pthread_mutex_unlock(&ctx->mu);
    if (stop) break;
    const char *p = paths[i];
    int ok = fuse_invalidate_path(ctx->fuse, p) == 0;
    /* fuse_invalidate_path only drops an inode's attributes and pages, never a
       directory entry, so a name cached as missing (or as another type) would
       outlive a switch. Entries of the root can be dropped by name: the kernel
       then prunes every unused dentry below, negative ones included. */
    if (p[0] == '/' && p[1] != '\0' && strchr(p + 1, '/') == NULL && ctx->se) {
      if (fuse_lowlevel_notify_inval_entry(ctx->se, FUSE_ROOT_ID, p + 1, strlen(p + 1)) == 0) ok = 1;
    }
    if (ok) count++;
  }
  pthread_rwlock_unlock(&ctx->fuse_lock);
  return count;
}
