/*
 * The base changing behind the view (an --at view's base edited directly, a shell whose cwd was
 * in the base before an in-place mount): inotify on the base folders the kernel holds, and the
 * matching entries and inodes invalidated at once instead of after the cache timeout. Changes
 * the server made itself are recognized and skipped, so the view's own writes keep their caches.
 */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE | IN_DONT_FOLLOW | IN_ONLYDIR)

static int ifd = -1;
static struct node **by_wd; /* wd -> node, under g_nodes */
static size_t nwd;
static int full_logged;

/* ---- our own changes ---------------------------------------------------- */

#define RECENT 128

struct recent { fuse_ino_t parent; uint64_t h; time_t at; };
static struct recent ring[RECENT];
static unsigned ring_pos;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

void watch_self(fuse_ino_t parent, const char *name) {
  if (ifd < 0) return;
  pthread_mutex_lock(&ring_lock);
  ring[ring_pos++ % RECENT] = (struct recent){ parent, hash(name, strlen(name)), time(NULL) };
  pthread_mutex_unlock(&ring_lock);
}

/* What the kernel caches of a file: a base file that still has these was not changed behind
   the view since the kernel was told (whoever changed it). */
static uint64_t attr_sum(const struct stat *st) {
  uint64_t v[] = { st->st_mode, st->st_uid, st->st_gid, (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                   (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ctim.tv_sec, (uint64_t)st->st_ctim.tv_nsec };
  return hash((const char *)v, sizeof v) | 1; /* never 0: 0 is "nothing recorded" */
}

void watch_self_attr_begin(struct node *n) {
  if (ifd < 0) return;
  pthread_mutex_lock(&g_nodes);
  n->self_attr_busy++;
  n->self_attr_at = time(NULL);
  pthread_mutex_unlock(&g_nodes);
}

void watch_self_attr_end(struct node *n, const struct stat *st) {
  if (ifd < 0) return;
  pthread_mutex_lock(&g_nodes);
  if (n->self_attr_busy > 0) n->self_attr_busy--;
  n->self_attr_sum = st ? attr_sum(st) : 0;
  n->self_attr_at = time(NULL);
  pthread_mutex_unlock(&g_nodes);
}

/* The server is closing a file it wrote, which has st now: in passthrough the kernel's own
   backing file closes too, an IN_CLOSE_WRITE of its own, sometimes after ours (attr_was_self). */
void watch_self_closed(struct node *n, const struct stat *st) {
  if (ifd < 0) return;
  pthread_mutex_lock(&g_nodes);
  n->self_written = 1; /* before close(): its IN_CLOSE_WRITE is ours */
  if (st) {
    n->self_attr_sum = attr_sum(st);
    n->self_attr_at = time(NULL);
  }
  pthread_mutex_unlock(&g_nodes);
}

/* An IN_ATTRIB of n's base file (with g_nodes held): 1 when the kernel already has what the file
   has now. Every chmod, chown, utimens or setxattr through the view makes one (cp -a and tar make
   several per file); invalidating them dropped the attributes the reply had just given the
   kernel. Counting them does not work: inotify merges identical events still queued, so a change
   behind the view that followed ours was taken for ours. The file is looked at instead (a local
   stat of the base, not through the view); a change found is recorded, so the events still queued
   for it are not invalidated again. */
static int attr_was_self(struct node *n) {
  if (!n || time(NULL) - n->self_attr_at > 2) return 0;
  if (n->self_attr_busy > 0) return 1; /* ours, under way (one behind the view in that instant is missed) */
  if (!n->self_attr_sum) return 0;
  char path[VPATH_MAX], p[VPATH_MAX + 32];
  if (node_path_locked(n, path, sizeof path) < 0) return 0;
  snprintf(p, sizeof p, "/proc/self/fd/%d/%s", g.base_fd, path[1] ? path + 1 : ".");
  struct stat st;
  uint64_t now = fstatat(AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW) == 0 ? attr_sum(&st) : 0;
  if (now == n->self_attr_sum) return 1;
  n->self_attr_sum = now;
  return 0;
}

/* The event was caused by the server itself (consumes the record). */
static int was_self(fuse_ino_t parent, const char *name, size_t n) {
  uint64_t h = hash(name, n);
  time_t now = time(NULL);
  int hit = 0;
  pthread_mutex_lock(&ring_lock);
  for (unsigned i = 0; i < RECENT && !hit; i++) {
    struct recent *r = &ring[i];
    if (r->parent == parent && r->h == h && now - r->at <= 2) {
      hit = 1;
      r->parent = 0;
    }
  }
  pthread_mutex_unlock(&ring_lock);
  return hit;
}

/* ---- watches ------------------------------------------------------------- */

void watch_add(struct node *n, const char *rel) {
  if (ifd < 0 || n->wd) return;
  char p[VPATH_MAX + 32];
  snprintf(p, sizeof p, "/proc/self/fd/%d/%s", g.base_fd, rel);
  int wd = inotify_add_watch(ifd, p, MASK);
  if (wd < 0) {
    if (errno == ENOSPC && !full_logged) {
      full_logged = 1;
      vlog("inotify watches exhausted (fs.inotify.max_user_watches): base changes behind the view show after the cache timeout");
    }
    return;
  }
  pthread_mutex_lock(&g_nodes);
  if ((size_t)wd >= nwd) {
    size_t nn = nwd ? nwd : 1024;
    while (nn <= (size_t)wd) nn *= 2;
    struct node **t = realloc(by_wd, nn * sizeof *t);
    if (t) {
      memset(t + nwd, 0, (nn - nwd) * sizeof *t);
      by_wd = t;
      nwd = nn;
    }
  }
  if ((size_t)wd < nwd && !by_wd[wd] && !n->wd) {
    by_wd[wd] = n;
    n->wd = wd;
  }
  pthread_mutex_unlock(&g_nodes);
}

/* With g_nodes held, when a watched node goes. */
void watch_drop_locked(struct node *n) {
  if (!n->wd) return;
  if ((size_t)n->wd < nwd && by_wd[n->wd] == n) by_wd[n->wd] = NULL;
  inotify_rm_watch(ifd, n->wd);
  n->wd = 0;
}

/* ---- events --------------------------------------------------------------- */

static void handle(const struct inotify_event *ev) {
  fuse_ino_t dir = 0, child = 0;
  size_t nlen = ev->len ? strlen(ev->name) : 0;
  pthread_mutex_lock(&g_nodes);
  struct node *d = (size_t)ev->wd < nwd ? by_wd[ev->wd] : NULL;
  if (d && (ev->mask & IN_IGNORED)) {
    by_wd[ev->wd] = NULL;
    d->wd = 0;
    d = NULL;
  }
  int skip = 0;
  if (d) {
    dir = node_id(d);
    struct node *c = nlen ? node_child_locked(d, ev->name, nlen) : NULL;
    if (c) child = node_id(c);
    if ((ev->mask & IN_CLOSE_WRITE) && c && c->self_written) {
      c->self_written = 0;
      skip = 1;
    } else if ((ev->mask & IN_CLOSE_WRITE) && c && (__atomic_load_n(&c->pt_writers, __ATOMIC_ACQUIRE) > 0 || attr_was_self(c))) {
      /* A passthrough file's backing file closes before the server hears of it (and the kernel
         keeps no page cache for such a file: an outside writer's close missed meanwhile costs
         at most its attributes until the view's next write or the timeout). */
      skip = 1;
    }
    if ((ev->mask & ~IN_ISDIR) == IN_ATTRIB && attr_was_self(nlen ? c : d)) skip = 1;
  }
  pthread_mutex_unlock(&g_nodes);
  if (!d || skip) return;
  if (ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)) {
    if (was_self(dir, ev->name, nlen)) return;
    notify_later_entry(dir, ev->name, nlen);
    notify_later_inode(dir);
    if (child) notify_later_inode(child);
  } else if (nlen) {
    if (child) notify_later_inode(child); /* attributes or content of a file we know */
  } else {
    notify_later_inode(dir);
  }
}

static void *watch_main(void *arg) {
  (void)arg;
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    struct pollfd pf = { ifd, POLLIN, 0 };
    if (poll(&pf, 1, -1) < 0) continue;
    ssize_t n = read(ifd, buf, sizeof buf);
    if (n <= 0) continue;
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;
      if (ev->mask & IN_Q_OVERFLOW) vlog("inotify queue overflowed: some base changes show after the cache timeout");
      else handle(ev);
      p += sizeof *ev + ev->len;
    }
  }
  return NULL;
}

int watch_start(void) {
  ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ifd < 0) {
    vlog("inotify unavailable (%s): base changes behind the view show after the cache timeout", strerror(errno));
    return 0;
  }
  watch_add(node_root(), ".");
  return start_thread(watch_main, NULL);
}
