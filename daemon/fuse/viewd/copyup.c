/*
 * Copy-up: before a file under a mapping is modified, the owning layer's writable sublayer gets
 * a copy (data, mode, owner, times, extended attributes), made under an O_TMPFILE and linked into
 * place, so no temporary name ever appears beside it. Runs with the server's credentials, like
 * overlayfs's mounter credentials: the copy keeps the original's owner.
 */
#include "viewd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

static void set_attrs(int dirfd, const char *rel, const struct stat *st) {
  int link = S_ISLNK(st->st_mode);
  fchownat(dirfd, rel, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
  if (!link) fchmodat(dirfd, rel, st->st_mode & 07777, 0);
  struct timespec ts[2] = { st->st_atim, st->st_mtim };
  utimensat(dirfd, rel, ts, AT_SYMLINK_NOFOLLOW);
}

/* Extended attributes between two /proc/self/fd paths (symlinks have none we may copy). */
static void copy_xattrs(const char *src, const char *dst) {
  char names[8192];
  ssize_t n = llistxattr(src, names, sizeof names);
  if (n <= 0) return;
  char val[16384];
  for (char *k = names; k < names + n; k += strlen(k) + 1) {
    ssize_t v = lgetxattr(src, k, val, sizeof val);
    if (v >= 0) lsetxattr(dst, k, val, (size_t)v, 0);
  }
}

static void proc_path(char *out, size_t cap, int dirfd, const char *rel) {
  snprintf(out, cap, "/proc/self/fd/%d/%s", dirfd, rel);
}

int ensure_writable_parents(const struct table *t, const struct branch *b, const char *p, size_t plen) {
  const struct rlayer *l = &t->layers[b->layer];
  const struct rmap *m = &l->maps[b->map];
  char rel[VPATH_MAX];
  int rlen = branch_rel(t, b, p, plen, rel, sizeof rel);
  if (rlen < 0) return rlen;
  if (l->writable_fd < 0) return -EROFS;
  char *slash = memrchr(rel, '/', (size_t)rlen);
  if (!slash) return 0; /* the sublayer's root */
  *slash = 0;
  struct stat st;
  if (fstatat(l->writable_fd, rel, &st, 0) == 0 && S_ISDIR(st.st_mode)) return 0;
  *slash = '/';
  for (int i = 0; i <= (int)(slash - rel); i++) {
    if (rel[i] != '/' && i != (int)(slash - rel)) continue;
    char save = rel[i];
    rel[i] = 0;
    if (fstatat(l->writable_fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      /* Copy what the view shows at the same place, so permissions look the same after a write. */
      struct found tf;
      int have = 0;
      if ((size_t)i >= m->dlen) {
        size_t vlen = plen - ((size_t)rlen - (size_t)i);
        if (vlen == 0) vlen = 1;
        have = find_path(t, p, vlen, &tf) == 0 && S_ISDIR(tf.st.st_mode) && !tf.synthetic;
      }
      if (!have && l->files_fd >= 0 && fstatat(l->files_fd, rel, &tf.st, 0) == 0 && S_ISDIR(tf.st.st_mode)) have = 1;
      if (mkdirat(l->writable_fd, rel, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        rel[i] = save;
        return -e;
      }
      if (have) set_attrs(l->writable_fd, rel, &tf.st);
      else fchmodat(l->writable_fd, rel, 0755, 0);
    }
    rel[i] = save;
  }
  return 0;
}

static int copy_data(int in, int out, off_t size) {
  if (size == 0 || ioctl(out, FICLONE, in) == 0) return 0;
  off_t done = 0;
  while (done < size) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
    if (n == 0) return 0;
    if (n < 0) break;
    done += n;
  }
  if (done >= size) return 0;
  /* copy_file_range refused (another file system, old kernel): plain reads and writes. */
  char *buf = malloc(1 << 17);
  if (!buf) return -ENOMEM;
  int r = 0;
  for (;;) {
    ssize_t n = pread(in, buf, 1 << 17, done);
    if (n < 0) { r = -errno; break; }
    if (n == 0) break;
    for (ssize_t w = 0; w < n;) {
      ssize_t k = pwrite(out, buf + w, (size_t)(n - w), done + w);
      if (k < 0) { r = -errno; goto out; }
      w += k;
    }
    done += n;
  }
out:
  free(buf);
  return r;
}

static int copy_file(const struct rlayer *l, const char *rel, const struct found *f) {
  const char *slash = strrchr(rel, '/');
  char parent[VPATH_MAX];
  const char *name = slash ? slash + 1 : rel;
  if (slash) {
    memcpy(parent, rel, (size_t)(slash - rel));
    parent[slash - rel] = 0;
  } else {
    strcpy(parent, ".");
  }
  int in = openat(f->dirfd, f->rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return -errno;
  int pfd = openat(l->writable_fd, parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) { int e = errno; close(in); return -e; }
  int r = 0;
  char tmpname[64] = "";
  int out = openat(pfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (out < 0) {
    /* No O_TMPFILE here: a short hidden name in the same folder, renamed over at the end. */
    static unsigned long seq;
    snprintf(tmpname, sizeof tmpname, ".~cu%d.%lu", (int)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    out = openat(pfd, tmpname, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (out < 0) { r = -errno; goto done; }
  }
  r = copy_data(in, out, f->st.st_size);
  if (r == 0) {
    if (fchown(out, f->st.st_uid, f->st.st_gid) != 0 && g.root) r = -errno;
    fchmod(out, f->st.st_mode & 07777); /* after chown: chown clears set-id bits */
    char src[PATH_MAX + 32], dst[64];
    proc_path(src, sizeof src, f->dirfd, f->rel);
    snprintf(dst, sizeof dst, "/proc/self/fd/%d", out);
    copy_xattrs(src, dst);
    struct timespec ts[2] = { f->st.st_atim, f->st.st_mtim };
    futimens(out, ts);
  }
  if (r == 0 && !tmpname[0]) {
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", out);
    if (linkat(AT_FDCWD, src, pfd, name, AT_SYMLINK_FOLLOW) != 0) r = -errno;
  } else if (r == 0) {
    if (renameat2(pfd, tmpname, pfd, name, RENAME_NOREPLACE) != 0) r = -errno;
  }
  if (r != 0 && tmpname[0]) unlinkat(pfd, tmpname, 0);
  close(out);
done:
  close(pfd);
  close(in);
  return r;
}

int copy_up(const struct table *t, const struct branch *b, const char *p, size_t plen, const struct found *f) {
  const struct rlayer *l = &t->layers[b->layer];
  char rel[VPATH_MAX];
  int rlen = branch_rel(t, b, p, plen, rel, sizeof rel);
  if (rlen < 0) return rlen;
  int r = ensure_writable_parents(t, b, p, plen);
  if (r) return r;
  if (rlen == 0) strcpy(rel, ".");
  mode_t type = f->synthetic ? S_IFDIR : (f->st.st_mode & S_IFMT);
  char src[PATH_MAX + 32], dst[PATH_MAX + 32];
  switch (type) {
    case S_IFDIR:
      if (mkdirat(l->writable_fd, rel, 0700) != 0 && errno != EEXIST) return -errno;
      if (f->synthetic) {
        fchmodat(l->writable_fd, rel, 0755, 0);
        return 0;
      }
      set_attrs(l->writable_fd, rel, &f->st);
      proc_path(src, sizeof src, f->dirfd, f->rel);
      proc_path(dst, sizeof dst, l->writable_fd, rel);
      copy_xattrs(src, dst);
      return 0;
    case S_IFLNK: {
      char target[VPATH_MAX];
      ssize_t n = readlinkat(f->dirfd, f->rel, target, sizeof target - 1);
      if (n < 0) return -errno;
      target[n] = 0;
      if (symlinkat(target, l->writable_fd, rel) != 0) return -errno;
      set_attrs(l->writable_fd, rel, &f->st);
      return 0;
    }
    case S_IFREG:
      return copy_file(l, rel, f);
    default:
      if (mknodat(l->writable_fd, rel, f->st.st_mode, f->st.st_rdev) != 0) return -errno;
      set_attrs(l->writable_fd, rel, &f->st);
      return 0;
  }
}

int make_writable(const struct table *t, const char *p, size_t plen, struct found *f, struct node *n) {
  int r = find_path(t, p, plen, f);
  if (r) return r;
  struct resolution res;
  resolve(t, p, plen, &res);
  if (res.nb == 0) return f->synthetic ? -EROFS : 0;
  if (f->src.kind == SRC_WRITABLE && f->src.layer == res.b[0].layer) return 0;
  pthread_mutex_lock(&g.ns_lock);
  /* Another request may have copied it up meanwhile. */
  r = find_path(t, p, plen, f);
  if (r == 0 && !(f->src.kind == SRC_WRITABLE && f->src.layer == res.b[0].layer)) {
    r = copy_up(t, &res.b[0], p, plen, f);
    if (r == 0) r = find_path(t, p, plen, f);
    if (r == 0 && n) node_rekey(n, &f->st);
  }
  pthread_mutex_unlock(&g.ns_lock);
  return r;
}

int remove_tree(int dirfd, const char *rel) {
  int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  DIR *d = fdopendir(fd);
  if (!d) { close(fd); return -errno; }
  struct dirent *e;
  int r = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (unlinkat(fd, e->d_name, 0) != 0) {
      if (errno == EISDIR || errno == EPERM) r = remove_tree(fd, e->d_name);
      else r = -errno;
    }
    if (r) break;
  }
  closedir(d);
  if (r == 0 && unlinkat(dirfd, rel, AT_REMOVEDIR) != 0) r = -errno;
  return r;
}
