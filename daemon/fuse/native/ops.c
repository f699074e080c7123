/*
 * The libfuse high-level operations that are answered by JavaScript: each
 * builds a request (request.c), waits for the reply and copies the result out.
 * Directory handles are ours (nullpath_ok leaves readdir without a path).
 * Ends with init() and the operations table; read/write/fsync live in
 * fastpath.c because they never reach JS.
 */
#include "strata_fuse.h"

#include <fuse.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static mount_ctx *cur_ctx(void) {
  struct fuse_context *fc = fuse_get_context();
  return fc ? (mount_ctx *)fc->private_data : NULL;
}

/* Convenience: build, call, drop. For ops that only return an errno. */
static int simple_call(int op, const char *p1, const char *p2, int64_t a0, int64_t a1,
                       int64_t a2, int64_t a3, int64_t a4, int64_t a5) {
  mount_ctx *ctx = cur_ctx();
  if (!ctx) return -EIO;
  sreq *r = req_new(op, p1, p2);
  if (!r) return -ENOMEM;
  r->a[0] = a0; r->a[1] = a1; r->a[2] = a2; r->a[3] = a3; r->a[4] = a4; r->a[5] = a5;
  int res = req_call(ctx, r);
  req_unref(r);
  return res;
}

/* fi->fh is an fd that JS gave us, except for directory handles (ours are
   tagged; the kernel may hand libfuse's own pointer), which must never reach JS
   as an fd: only values below the fd limit pass. */
static int64_t fi_fd(struct fuse_file_info *fi) {
  return fi && fi->fh < g_fd_limit ? (int64_t)fi->fh : -1;
}

static int op_getattr(const char *path, struct stat *stbuf, struct fuse_file_info *fi) {
  mount_ctx *ctx = cur_ctx();
  if (!ctx) return -EIO;
  sreq *r = req_new(OP_GETATTR, path, NULL);
  if (!r) return -ENOMEM;
  r->a[0] = fi_fd(fi);
  int res = req_call(ctx, r);
  if (res == 0) *stbuf = r->st;
  req_unref(r);
  return res;
}

static int op_access(const char *path, int mask) {
  return simple_call(OP_ACCESS, path, NULL, mask, 0, 0, 0, 0, 0);
}

/* Tag directory handles with the top bit so fi_fd() can never take one for an fd. */
#define DIRH_TAG (1ULL << 63)
static dirh *fh_dirh(uint64_t fh) { return (fh & DIRH_TAG) ? (dirh *)(uintptr_t)(fh & ~DIRH_TAG) : NULL; }

static int op_opendir(const char *path, struct fuse_file_info *fi) {
  mount_ctx *ctx = cur_ctx();
  const char *p = path ? path : "/";
  dirh *d = malloc(sizeof *d + strlen(p) + 1);
  if (!ctx || !d) { free(d); return -ENOMEM; }
  strcpy(d->path, p);
  pthread_mutex_lock(&ctx->mu);
  d->prev = NULL;
  d->next = ctx->dirs;
  if (ctx->dirs) ctx->dirs->prev = d;
  ctx->dirs = d;
  pthread_mutex_unlock(&ctx->mu);
  fi->fh = (uint64_t)(uintptr_t)d | DIRH_TAG;
  return 0;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  mount_ctx *ctx = cur_ctx();
  dirh *d = fh_dirh(fi->fh);
  if (!ctx || !d) return 0;
  pthread_mutex_lock(&ctx->mu);
  if (d->prev) d->prev->next = d->next; else ctx->dirs = d->next;
  if (d->next) d->next->prev = d->prev;
  pthread_mutex_unlock(&ctx->mu);
  free(d);
  fi->fh = 0;
  return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off; (void)flags;
  mount_ctx *ctx = cur_ctx();
  if (!ctx) return -EIO;
  if (!path && fi && fh_dirh(fi->fh)) path = fh_dirh(fi->fh)->path;
  if (!path) return -EIO;
  sreq *r = req_new(OP_READDIR, path, NULL);
  if (!r) return -ENOMEM;
  int res = req_call(ctx, r);
  if (res == 0) {
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = 0xffffffffu; /* FUSE_UNKNOWN_INO */
    st.st_mode = S_IFDIR;
    filler(buf, ".", &st, 0, 0);
    filler(buf, "..", &st, 0, 0);
    for (uint32_t i = 0; i < r->n_names; i++) {
      st.st_mode = r->modes ? r->modes[i] & S_IFMT : 0;
      if (filler(buf, r->names[i], &st, 0, 0)) break;
    }
  }
  req_unref(r);
  return res;
}

static void apply_open_flags(mount_ctx *ctx, struct fuse_file_info *fi, int64_t fd) {
  fi->fh = (uint64_t)fd;
  if (ctx->kernel_cache) fi->keep_cache = 1;
}

static int op_open(const char *path, struct fuse_file_info *fi) {
  mount_ctx *ctx = cur_ctx();
  if (!ctx) return -EIO;
  sreq *r = req_new(OP_OPEN, path, NULL);
  if (!r) return -ENOMEM;
  r->a[0] = fi->flags;
  r->a[1] = fuse_get_context()->pid;
  int res = req_call(ctx, r);
  if (res == 0) apply_open_flags(ctx, fi, r->fd);
  req_unref(r);
  return res;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  mount_ctx *ctx = cur_ctx();
  if (!ctx) return -EIO;
  sreq *r = req_new(OP_CREATE, path, NULL);
  if (!r) return -ENOMEM;
  r->a[0] = mode;
  r->a[1] = fi->flags;
  r->a[2] = fuse_get_context()->pid;
  int res = req_call(ctx, r);
  if (res == 0) apply_open_flags(ctx, fi, r->fd);
  req_unref(r);
  return res;
}

static int op_release(const char *path, struct fuse_file_info *fi) {
  return simple_call(OP_RELEASE, path, NULL, fi_fd(fi), 0, 0, 0, 0, 0);
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  return simple_call(OP_TRUNCATE, path, NULL, size, fi_fd(fi), 0, 0, 0, 0);
}

static int op_unlink(const char *path) { return simple_call(OP_UNLINK, path, NULL, 0, 0, 0, 0, 0, 0); }
static int op_rmdir(const char *path) { return simple_call(OP_RMDIR, path, NULL, 0, 0, 0, 0, 0, 0); }
static int op_mkdir(const char *path, mode_t mode) {
  return simple_call(OP_MKDIR, path, NULL, mode, 0, 0, 0, 0, 0);
}
static int op_rename(const char *from, const char *to, unsigned int flags) {
  return simple_call(OP_RENAME, from, to, flags, 0, 0, 0, 0, 0);
}
static int op_symlink(const char *target, const char *path) {
  return simple_call(OP_SYMLINK, target, path, 0, 0, 0, 0, 0, 0);
}
static int op_link(const char *from, const char *to) {
  return simple_call(OP_LINK, from, to, 0, 0, 0, 0, 0, 0);
}
static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  return simple_call(OP_CHMOD, path, NULL, mode, fi_fd(fi), 0, 0, 0, 0);
}
static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  return simple_call(OP_CHOWN, path, NULL, uid == (uid_t)-1 ? -1 : (int64_t)uid,
                     gid == (gid_t)-1 ? -1 : (int64_t)gid, fi_fd(fi), 0, 0, 0);
}
static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  int64_t as = 0, an = UTIME_NOW, ms = 0, mn = UTIME_NOW;
  if (tv) { as = tv[0].tv_sec; an = tv[0].tv_nsec; ms = tv[1].tv_sec; mn = tv[1].tv_nsec; }
  return simple_call(OP_UTIMENS, path, NULL, as, an, ms, mn, fi_fd(fi), 0);
}

static int op_readlink(const char *path, char *buf, size_t size) {
  mount_ctx *ctx = cur_ctx();
  if (!ctx) return -EIO;
  if (size == 0) return -EINVAL;
  sreq *r = req_new(OP_READLINK, path, NULL);
  if (!r) return -ENOMEM;
  int res = req_call(ctx, r);
  if (res == 0) {
    size_t n = r->str ? strlen(r->str) : 0;
    if (n >= size) n = size - 1;
    if (n) memcpy(buf, r->str, n);
    buf[n] = 0;
  }
  req_unref(r);
  return res;
}

static int op_statfs(const char *path, struct statvfs *sv) {
  mount_ctx *ctx = cur_ctx();
  if (!ctx) return -EIO;
  sreq *r = req_new(OP_STATFS, path, NULL);
  if (!r) return -ENOMEM;
  int res = req_call(ctx, r);
  if (res == 0) *sv = r->sv;
  req_unref(r);
  return res;
}

/* Once the connection is up: mount()'s options become libfuse's config. */
static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  mount_ctx *ctx = fuse_get_context()->private_data;
  cfg->entry_timeout = ctx->entry_timeout;
  cfg->attr_timeout = ctx->attr_timeout;
  cfg->negative_timeout = ctx->negative_timeout;
  cfg->use_ino = ctx->use_ino;
  cfg->hard_remove = 1;
  cfg->nullpath_ok = 1;
  cfg->kernel_cache = ctx->kernel_cache;
  cfg->auto_cache = ctx->auto_cache;
  if (conn->max_write < (1u << 20)) conn->max_write = 1u << 20; /* libfuse clamps to its buffer */
  /* read_buf hands libfuse the fd: let it splice file -> pipe -> /dev/fuse (about 2x faster reads) */
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  return ctx;
}

const struct fuse_operations strata_ops = {
  .getattr = op_getattr,
  .readlink = op_readlink,
  .mkdir = op_mkdir,
  .unlink = op_unlink,
  .rmdir = op_rmdir,
  .symlink = op_symlink,
  .rename = op_rename,
  .link = op_link,
  .chmod = op_chmod,
  .chown = op_chown,
  .truncate = op_truncate,
  .open = op_open,
  .statfs = op_statfs,
  .flush = op_flush,
  .release = op_release,
  .fsync = op_fsync,
  .opendir = op_opendir,
  .readdir = op_readdir,
  .releasedir = op_releasedir,
  .fsyncdir = op_fsyncdir,
  .init = op_init,
  .access = op_access,
  .create = op_create,
  .utimens = op_utimens,
  .write_buf = op_write_buf,
  .read_buf = op_read_buf,
};
