/*
 * The control socket: one request per line, one reply per request (docs/view-core.md). Served on
 * a thread of its own, one request at a time, so a table swap and its invalidation never run on
 * a FUSE worker. Only the server's own user (or root) may connect.
 */
#include "viewd.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 8
#define MAX_LINE 8192
#define MAX_BODY (64u << 20)

struct client {
  int fd;
  char *buf;
  size_t len, cap;
  size_t body;   /* bytes of a `rules` body still expected (0: reading lines) */
};

static int lfd = -1;
static char *sock_path;
static struct client clients[MAX_CLIENTS];

static void say(struct client *c, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static void sayf(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sayf(struct client *c, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  say(c, buf, (size_t)n);
}

static uint64_t generation(void) {
  struct table *t = table_get();
  uint64_t gen = t->generation;
  table_put(t);
  return gen;
}

static void do_rules(struct client *c, const char *text, size_t len) {
  char err[512];
  struct table *t = table_parse(text, len, err, sizeof err);
  if (!t) {
    sayf(c, "err E_RULES %s\n", err);
    return;
  }
  uint64_t gen = t->generation;
  long k = rules_apply(t);
  sayf(c, "ok generation %llu invalidated %ld\n", (unsigned long long)gen, k);
}

/* Handles one request line; returns the body length a `rules` line announces, else 0. */
static size_t do_line(struct client *c, char *line) {
  char *arg = strchr(line, ' ');
  if (arg) *arg++ = 0;
  if (!strcmp(line, "hello")) {
    if (!arg || strcmp(arg, "1") != 0) {
      sayf(c, "err E_VERSION this server speaks version 1\n");
      return 0;
    }
    char *mp = pct_encode_dup(g.mountpoint, strlen(g.mountpoint));
    sayf(c, "ok viewd 1 pid %d mountpoint %s generation %llu\n", (int)getpid(), mp ? mp : "", (unsigned long long)generation());
    free(mp);
  } else if (!strcmp(line, "rules")) {
    char *e;
    unsigned long n = arg ? strtoul(arg, &e, 10) : 0;
    if (!arg || *e || n == 0 || n > MAX_BODY) {
      sayf(c, "err E_REQUEST rules needs a length (1..%u)\n", MAX_BODY);
      return 0;
    }
    return n;
  } else if (!strcmp(line, "resolve")) {
    char p[VPATH_MAX];
    ssize_t n = arg && strlen(arg) < sizeof p ? pct_decode(arg, strlen(arg), p) : -1;
    if (n < 0 || !is_view_path(p, (size_t)n)) {
      sayf(c, "err E_PATH resolve needs a normalized view path\n");
      return 0;
    }
    static char out[65536];
    struct table *t = table_get();
    int r = resolution_text(t, p, (size_t)n, out, sizeof out);
    table_put(t);
    if (r < 0) sayf(c, "err E_PATH resolution too long\n");
    else sayf(c, "ok %s\n", out);
  } else if (!strcmp(line, "open-files")) {
    char *s;
    size_t n;
    open_files_text(&s, &n);
    if (s) say(c, s, n);
    else sayf(c, "err E_NOMEM out of memory\n");
    free(s);
  } else if (!strcmp(line, "stats")) {
    sayf(c, "ok nodes %llu lookups %llu forgets %llu invalidations %llu generation %llu writes %llu getxattrs %llu\n",
         (unsigned long long)nodes_count(), (unsigned long long)__atomic_load_n(&g.lookups, __ATOMIC_RELAXED),
         (unsigned long long)__atomic_load_n(&g.forgets, __ATOMIC_RELAXED),
         (unsigned long long)__atomic_load_n(&g.invalidations, __ATOMIC_RELAXED), (unsigned long long)generation(),
         (unsigned long long)__atomic_load_n(&g.writes, __ATOMIC_RELAXED),
         (unsigned long long)__atomic_load_n(&g.getxattrs, __ATOMIC_RELAXED));
  } else if (!strcmp(line, "warm")) {
    long names = -1, ms = -1;
    if (!arg || sscanf(arg, "%ld %ld", &names, &ms) != 2 || names < 0 || ms < 0) {
      sayf(c, "err E_REQUEST warm needs a most names and a most milliseconds\n");
      return 0;
    }
    struct warmed w;
    warm(names, ms, &w);
    if (w.error) sayf(c, "err E_MOUNT %s: %s\n", g.mountpoint, strerror(w.error));
    else sayf(c, "ok folders %ld names %ld ms %ld %s\n", w.folders, w.names, w.ms, w.partial ? "partial" : "complete");
  } else if (!strcmp(line, "unmount")) {
    sayf(c, "ok\n");
    vlog("unmount requested");
    fuse_session_exit(g.se);
    pthread_kill(g.main_thread, SIGTERM); /* wakes the loop's main thread */
  } else {
    sayf(c, "err E_REQUEST unknown request \"%.64s\"\n", line);
  }
  return 0;
}

/* Consumes what is buffered: lines, and the body after a `rules` line. */
static void serve(struct client *c) {
  size_t off = 0;
  for (;;) {
    if (c->body) {
      if (c->len - off < c->body) break;
      do_rules(c, c->buf + off, c->body);
      off += c->body;
      c->body = 0;
      continue;
    }
    char *nl = memchr(c->buf + off, '\n', c->len - off);
    if (!nl) break;
    *nl = 0;
    c->body = do_line(c, c->buf + off);
    off = (size_t)(nl - c->buf) + 1;
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
}

static void drop(struct client *c) {
  close(c->fd);
  free(c->buf);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

static void accept_one(void) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || (cr.uid != geteuid() && cr.uid != 0)) {
    close(fd);
    return;
  }
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0) {
      clients[i].fd = fd;
      return;
    }
  }
  close(fd);
}

static void *control_main(void *arg) {
  (void)arg;
  for (;;) {
    struct pollfd pf[MAX_CLIENTS + 1];
    int idx[MAX_CLIENTS + 1];
    int n = 0;
    pf[n].fd = lfd;
    pf[n].events = POLLIN;
    idx[n++] = -1;
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].fd < 0) continue;
      pf[n].fd = clients[i].fd;
      pf[n].events = POLLIN;
      idx[n++] = i;
    }
    if (poll(pf, (nfds_t)n, -1) < 0) continue;
    if (pf[0].revents & POLLIN) accept_one();
    for (int k = 1; k < n; k++) {
      if (!pf[k].revents) continue;
      struct client *c = &clients[idx[k]];
      size_t need = c->len + c->body + 4097;
      if (c->cap < need) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        if (cap < need) cap = need;
        char *b = realloc(c->buf, cap);
        if (!b) { drop(c); continue; }
        c->buf = b;
        c->cap = cap;
      }
      ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        drop(c);
        continue;
      }
      c->len += (size_t)r;
      serve(c);
      if (!c->body && c->len > MAX_LINE) {
        sayf(c, "err E_REQUEST line too long\n");
        drop(c);
      }
    }
  }
  return NULL;
}

/* Binds the socket (0600, a stale socket file replaced); the thread starts in control_run. */
int control_start(const char *path) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(a.sun_path, path);
  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return -1;
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
  mode_t old = umask(077);
  int r = bind(lfd, (struct sockaddr *)&a, sizeof a);
  umask(old);
  if (r != 0 || listen(lfd, 8) != 0) {
    int e = errno;
    close(lfd);
    lfd = -1;
    errno = e;
    return -1;
  }
  chmod(path, 0600);
  sock_path = strdup(path);
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
  return 0;
}

int control_run(void) { return start_thread(control_main, NULL); }

void control_stop(void) {
  if (sock_path) unlink(sock_path);
}
