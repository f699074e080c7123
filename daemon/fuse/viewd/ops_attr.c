/* Attributes: getattr, setattr (as the caller, after copy-up), access, readlink, statfs, xattrs. */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(struct stat *st) {
  if (!(st->st_ino >> 63)) st->st_ino = shown_ino(st->st_dev, st->st_ino);
}

/* The node's file now: its path resolved, or an open handle when it has no name left. */
static int stat_node(const struct table *t, struct node *n, struct stat *st) {
  char path[VPATH_MAX];
  struct found f;
  int plen = node_path(n, path, sizeof path);
  if (plen == -ESTALE) {
    int fd = node_any_fd(n);
    if (fd < 0) return -ESTALE;
    int r = fstat(fd, st) ? -errno : 0;
    close(fd);
    return r;
  }
  if (plen < 0) return plen;
  int r = find_path(t, path, (size_t)plen, &f);
  if (r == 0) *st = f.st;
  return r;
}

/* The attributes, shown as the view shows them, or the error r (negative). */
static void reply_attr(fuse_req_t req, int r, struct stat *st) {
  if (r) {
    fuse_reply_err(req, -r);
    return;
  }
  show(st);
  fuse_reply_attr(req, st, g.timeout);
}

static void vd_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct stat st;
  int r;
  int fd = fh_fd(fi);
  if (fd >= 0) {
    r = fstat(fd, &st) ? -errno : 0;
  } else {
    struct table *t = table_get();
    struct node *n = node_use(ino);
    r = stat_node(t, n, &st);
    node_unuse(n);
    table_put(t);
  }
  reply_attr(req, r, &st);
}

static int apply(fuse_req_t req, struct node *n, int fd, const struct found *f, struct stat *attr, int valid) {
  struct ident id;
  int r = 0;
  if (valid & FUSE_SET_ATTR_MODE) {
    /* With the server's credentials: the kernel checked it (default_permissions), and clearing
       set-id bits before another user's write must work for a file that user does not own. */
    mode_t m = mode_allowed(n, attr->st_mode & 07777);
    if (fd >= 0) r = fchmod(fd, m);
    else if (!S_ISLNK(f->st.st_mode)) r = fchmodat(f->dirfd, f->rel, m, 0); /* Linux keeps no symlink modes */
    if (r) return -errno;
  }
  ident_enter(req, &id);
  if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    uid_t u = valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
    gid_t gr = valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;
    r = fd >= 0 ? fchown(fd, u, gr) : fchownat(f->dirfd, f->rel, u, gr, AT_SYMLINK_NOFOLLOW);
    if (r) goto fail;
  }
  if (valid & FUSE_SET_ATTR_SIZE) {
    if (fd >= 0) {
      r = ftruncate(fd, attr->st_size);
    } else {
      int tfd = openat(f->dirfd, f->rel, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      r = tfd < 0 ? -1 : ftruncate(tfd, attr->st_size);
      if (tfd >= 0) {
        int e = errno;
        close(tfd);
        errno = e;
      }
    }
    if (r) goto fail;
  }
  if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
    struct timespec ts[2];
    ts[0].tv_sec = 0;
    ts[1].tv_sec = 0;
    ts[0].tv_nsec = valid & FUSE_SET_ATTR_ATIME_NOW ? UTIME_NOW : UTIME_OMIT;
    ts[1].tv_nsec = valid & FUSE_SET_ATTR_MTIME_NOW ? UTIME_NOW : UTIME_OMIT;
    if ((valid & FUSE_SET_ATTR_ATIME) && !(valid & FUSE_SET_ATTR_ATIME_NOW)) ts[0] = attr->st_atim;
    if ((valid & FUSE_SET_ATTR_MTIME) && !(valid & FUSE_SET_ATTR_MTIME_NOW)) ts[1] = attr->st_mtim;
    r = fd >= 0 ? futimens(fd, ts) : utimensat(f->dirfd, f->rel, ts, AT_SYMLINK_NOFOLLOW);
    if (r) goto fail;
  }
  ident_leave(&id);
  return 0;
fail:
  r = -errno;
  ident_leave(&id);
  return r;
}

static void vd_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid, struct fuse_file_info *fi) {
  struct table *t = table_get();
  struct node *n = node_use(ino);
  char path[VPATH_MAX];
  struct found f;
  int fd = fh_fd(fi);
  int r = 0, began = 0;
  if (fd < 0) {
    int plen = node_path(n, path, sizeof path);
    r = plen < 0 ? plen : make_writable(t, path, (size_t)plen, &f, n);
  }
  if (!r) {
    watch_self_attr_begin(n);
    began = 1;
    r = apply(req, n, fd, &f, attr, valid);
  }
  struct stat st;
  if (!r) {
    if (fd >= 0) r = fstat(fd, &st) ? -errno : 0;
    else r = fstatat(f.dirfd, f.rel, &st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
  }
  if (began) watch_self_attr_end(n, r ? NULL : &st);
  node_unuse(n);
  table_put(t);
  reply_attr(req, r, &st);
}

/* Resolves the node and runs fn on what it found; replies with fn's error when it fails. */
static int with_found(fuse_req_t req, fuse_ino_t ino, int writable, struct found *f, struct table **tp, struct node **np) {
  *tp = table_get();
  *np = node_use(ino);
  char path[VPATH_MAX];
  int plen = node_path(*np, path, sizeof path);
  int r = plen < 0 ? plen : writable ? make_writable(*tp, path, (size_t)plen, f, *np) : find_path(*tp, path, (size_t)plen, f);
  if (r) {
    node_unuse(*np);
    table_put(*tp);
    fuse_reply_err(req, -r);
  }
  return r;
}

static void done(struct table *t, struct node *n) {
  node_unuse(n);
  table_put(t);
}

static void vd_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  struct found f;
  struct table *t;
  struct node *n;
  if (with_found(req, ino, 0, &f, &t, &n)) return;
  int r = 0;
  if (!f.synthetic && mask != F_OK) {
    struct ident id;
    ident_enter(req, &id);
    r = faccessat(f.dirfd, f.rel, mask, AT_EACCESS | AT_SYMLINK_NOFOLLOW) ? errno : 0;
    ident_leave(&id);
  }
  done(t, n);
  fuse_reply_err(req, r);
}

static void vd_readlink(fuse_req_t req, fuse_ino_t ino) {
  struct found f;
  struct table *t;
  struct node *n;
  if (with_found(req, ino, 0, &f, &t, &n)) return;
  char buf[VPATH_MAX];
  ssize_t len = f.synthetic ? -1 : readlinkat(f.dirfd, f.rel, buf, sizeof buf - 1);
  int e = f.synthetic ? EINVAL : errno;
  done(t, n);
  if (len < 0) {
    fuse_reply_err(req, e);
    return;
  }
  buf[len] = 0;
  fuse_reply_readlink(req, buf);
}

static void vd_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs sv;
  if (fstatvfs(g.base_fd, &sv) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  sv.f_namemax = NAME_MAX;
  fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes, through /proc/self/fd/N/REL ----------------------- */

static void xpath(char *out, size_t cap, const struct found *f) { snprintf(out, cap, "/proc/self/fd/%d/%s", f->dirfd, f->rel); }

static void vd_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  __atomic_add_fetch(&g.getxattrs, 1, __ATOMIC_RELAXED);
  struct found f;
  struct table *t;
  struct node *n;
  if (with_found(req, ino, 0, &f, &t, &n)) return;
  char p[PATH_MAX + 32];
  xpath(p, sizeof p, &f);
  char *buf = size ? malloc(size) : NULL;
  ssize_t r = f.synthetic ? (errno = ENODATA, -1) : lgetxattr(p, name, buf, size);
  int e = errno;
  done(t, n);
  if (r < 0) fuse_reply_err(req, e);
  else if (size == 0) fuse_reply_xattr(req, (size_t)r);
  else fuse_reply_buf(req, buf, (size_t)r);
  free(buf);
}

static void vd_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  struct found f;
  struct table *t;
  struct node *n;
  if (with_found(req, ino, 0, &f, &t, &n)) return;
  char p[PATH_MAX + 32];
  xpath(p, sizeof p, &f);
  char *buf = size ? malloc(size) : NULL;
  ssize_t r = f.synthetic ? 0 : llistxattr(p, buf, size);
  int e = errno;
  done(t, n);
  if (r < 0) fuse_reply_err(req, e);
  else if (size == 0) fuse_reply_xattr(req, (size_t)r);
  else fuse_reply_buf(req, buf, (size_t)r);
  free(buf);
}

/* An xattr change only moves the ctime: the file's attributes now, for the watcher. */
static void self_attr_done(struct node *n, const struct found *f, int failed) {
  struct stat st;
  int ok = !failed && fstatat(f->dirfd, f->rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
  watch_self_attr_end(n, ok ? &st : NULL);
}

static void vd_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  struct found f;
  struct table *t;
  struct node *n;
  if (with_found(req, ino, 1, &f, &t, &n)) return;
  char p[PATH_MAX + 32];
  xpath(p, sizeof p, &f);
  watch_self_attr_begin(n);
  struct ident id;
  ident_enter(req, &id);
  int r = lsetxattr(p, name, value, size, flags) ? errno : 0;
  ident_leave(&id);
  self_attr_done(n, &f, r);
  done(t, n);
  fuse_reply_err(req, r);
}

static void vd_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  struct found f;
  struct table *t;
  struct node *n;
  if (with_found(req, ino, 1, &f, &t, &n)) return;
  char p[PATH_MAX + 32];
  xpath(p, sizeof p, &f);
  watch_self_attr_begin(n);
  struct ident id;
  ident_enter(req, &id);
  int r = lremovexattr(p, name) ? errno : 0;
  ident_leave(&id);
  self_attr_done(n, &f, r);
  done(t, n);
  fuse_reply_err(req, r);
}

void attr_ops(struct fuse_lowlevel_ops *o) {
  o->getattr = vd_getattr;
  o->setattr = vd_setattr;
  o->access = vd_access;
  o->readlink = vd_readlink;
  o->statfs = vd_statfs;
  o->getxattr = vd_getxattr;
  o->listxattr = vd_listxattr;
  o->setxattr = vd_setxattr;
  o->removexattr = vd_removexattr;
}
