/* From a view path to the real file that serves it, and the lookup every op builds on. */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static time_t started;

int find_path(const struct table *t, const char *p, size_t plen, struct found *f) {
  struct resolution r;
  struct source src[MAX_SOURCES];
  resolve(t, p, plen, &r);
  if (r.hidden) return -ENOENT;
  int n = sources_for(t, &r, p, plen, src);
  for (int i = 0; i < n; i++) {
    int fd = source_at(t, &src[i], p, plen, f->rel, sizeof f->rel);
    if (fd < 0) continue;
    if (fstatat(fd, f->rel, &f->st, AT_SYMLINK_NOFOLLOW) == 0) {
      f->src = src[i];
      f->dirfd = fd;
      f->synthetic = 0;
      return 0;
    }
    if (errno != ENOENT && errno != ENOTDIR) return -errno;
  }
  if (is_mapping_ancestor(t, p, plen)) {
    f->synthetic = 1;
    f->dirfd = -1;
    f->rel[0] = 0;
    f->src = (struct source){ SRC_BASE, -1, -1 };
    synthetic_stat(&f->st, p, plen);
    return 0;
  }
  return -ENOENT;
}

void synthetic_stat(struct stat *st, const char *p, size_t plen) {
  if (!started) started = time(NULL);
  memset(st, 0, sizeof *st);
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < plen; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  st->st_mode = S_IFDIR | 0755;
  st->st_nlink = 2;
  st->st_uid = geteuid();
  st->st_gid = getegid();
  st->st_size = 4096;
  st->st_blksize = 4096;
  st->st_dev = g.base_dev;
  st->st_ino = (ino_t)(h | (1ULL << 63));
  st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = started;
}

void fill_entry(struct fuse_entry_param *e, struct node *n, const struct stat *st) {
  memset(e, 0, sizeof *e);
  e->ino = node_id(n);
  e->attr = *st;
  if (!(st->st_ino >> 63)) e->attr.st_ino = shown_ino(st->st_dev, st->st_ino);
  e->attr_timeout = g.timeout;
  e->entry_timeout = g.timeout;
}

int child_path(struct node *parent, const char *name, char *buf, size_t cap) {
  int len = node_path(parent, buf, cap);
  if (len < 0) return len;
  size_t nl = strlen(name);
  size_t at = len == 1 ? 1 : (size_t)len + 1;
  if (at + nl + 1 > cap) return -ENAMETOOLONG;
  if (len != 1) buf[len] = '/';
  memcpy(buf + at, name, nl + 1);
  return (int)(at + nl);
}

int do_lookup(const struct table *t, struct node *parent, const char *name, struct fuse_entry_param *e) {
  char path[VPATH_MAX];
  struct found f;
  size_t nl = strlen(name);
  if (nl > NAME_MAX) return -ENAMETOOLONG;
  int len = child_path(parent, name, path, sizeof path);
  if (len < 0) return len;
  int r = find_path(t, path, (size_t)len, &f);
  if (r) return r;
  struct node *n = node_bind(parent, name, nl, f.synthetic ? NULL : &f.st);
  if (!n) return -ENOMEM;
  if (!f.synthetic && f.src.kind == SRC_BASE && S_ISDIR(f.st.st_mode)) watch_add(n, f.rel);
  fill_entry(e, n, &f.st);
  return 0;
}
