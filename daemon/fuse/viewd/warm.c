/*
 * Warming the kernel's caches of a new mount: the server lists its own mount, folder by folder,
 * top down, so the kernel gets every name with its attributes from READDIRPLUS (a page of names
 * per round trip) instead of one LOOKUP per name the first time a tool stats it. `git status`
 * lstats every index entry before it lists anything, and an editor's file watcher lists every
 * folder: either would walk the same tree, a round trip per name. Bounded by names and time
 * (what the kernel then holds is memory: about 1 KiB per name); docs/view-core.md, "Warm-up".
 * Runs on the control thread, which may look into the mount (see relink in inval.c).
 */
#include "viewd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct lx_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

struct queue {
  char **v;
  size_t head, n, cap;
};

static int push(struct queue *q, const char *dir, const char *name) {
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 256;
    char **v = realloc(q->v, cap * sizeof *v);
    if (!v) return -1;
    q->v = v;
    q->cap = cap;
  }
  size_t dl = strlen(dir), nl = strlen(name);
  if (dl + 1 + nl + 1 > VPATH_MAX) return 0; /* too deep to name: left cold */
  char *p = malloc(dl + 1 + nl + 1);
  if (!p) return -1;
  if (strcmp(dir, ".") == 0) {
    memcpy(p, name, nl + 1);
  } else {
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
  }
  q->v[q->n++] = p;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Lists one folder through the mount; its subfolders join the queue. Returns names listed. */
static long list(int mfd, const char *rel, struct queue *q, char *buf, size_t cap) {
  int fd = openat(mfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0; /* gone, or not ours to list: what a user cannot list stays cold */
  long names = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, cap);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      struct lx_dirent64 *d = (struct lx_dirent64 *)(buf + off);
      off += d->d_reclen;
      if (d->d_name[0] == '.' && (d->d_name[1] == 0 || (d->d_name[1] == '.' && d->d_name[2] == 0))) continue;
      names++;
      if (d->d_type == DT_DIR && push(q, rel, d->d_name) != 0) break;
    }
  }
  close(fd);
  return names;
}

void warm(long max_names, long max_ms, struct warmed *out) {
  memset(out, 0, sizeof *out);
  double t0 = now_ms();
  int mfd = open(g.mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (mfd < 0) {
    out->error = errno;
    return;
  }
  static char buf[64 * 1024]; /* control thread only */
  struct queue q = { 0 };
  push(&q, ".", "."); /* the mount itself */
  while (q.head < q.n) {
    if (out->names >= max_names || now_ms() - t0 >= (double)max_ms) {
      out->partial = 1;
      break;
    }
    char *rel = q.v[q.head++];
    out->names += list(mfd, rel, &q, buf, sizeof buf);
    out->folders++;
    free(rel);
  }
  while (q.head < q.n) free(q.v[q.head++]);
  free(q.v);
  close(mfd);
  out->ms = (long)(now_ms() - t0);
}
