/*
 * Whiteouts (paths deleted through the view) and opaque folders (recreated over a deleted one)
 * of each layer's writable sublayer. Kept in memory for lookups and persisted in META_DIR/marks,
 * an append-only record of byte paths compacted on load, so no marker name can overflow
 * NAME_MAX. The first view's markers in the sublayer (.wh.NAME, .wh..wh..opq) are read too.
 */
#include "viewd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define OPQ_MARKER ".wh..wh..opq"

struct marks {
  char *name, *writable, *meta;
  dev_t wdev;
  ino_t wino;
  pthread_rwlock_t lock;
  struct strset *wh, *opq;
  int log_fd;
  struct marks *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct marks *registry;

int marks_hidden_name(const char *name) {
  return strncmp(name, WH_PREFIX, 4) == 0 || strncmp(name, ".strata-copyup-", 15) == 0;
}

/* ---- loading ------------------------------------------------------------ */

static void join(char *out, size_t cap, const char *a, size_t alen, const char *b, size_t blen, size_t *len) {
  size_t n = 0;
  if (alen + 1 + blen + 1 > cap) { *len = (size_t)-1; return; }
  memcpy(out, a, alen);
  n = alen;
  if (alen && blen) out[n++] = '/';
  memcpy(out + n, b, blen);
  n += blen;
  out[n] = 0;
  *len = n;
}

/* The first view's marker files, anywhere in the writable sublayer. */
static void walk_legacy(struct marks *m, int dirfd, const char *rel, size_t rlen, int depth) {
  if (depth > 200) return;
  int fd = openat(dirfd, rlen ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  if (!d) { close(fd); return; }
  struct dirent *e;
  char sub[VPATH_MAX];
  size_t slen;
  while ((e = readdir(d))) {
    const char *n = e->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    if (strcmp(n, OPQ_MARKER) == 0) {
      strset_add(m->opq, rel, rlen);
    } else if (strncmp(n, WH_PREFIX, 4) == 0) {
      join(sub, sizeof sub, rel, rlen, n + 4, strlen(n + 4), &slen);
      if (slen != (size_t)-1) strset_add(m->wh, sub, slen);
    } else if (e->d_type == DT_DIR) {
      join(sub, sizeof sub, rel, rlen, n, strlen(n), &slen);
      if (slen != (size_t)-1) walk_legacy(m, dirfd, sub, slen, depth + 1);
    }
  }
  closedir(d);
}

struct dropctx { const char *rel; size_t len; int strict; struct strset *hit; };

static void collect_below(const char *p, size_t len, void *arg) {
  struct dropctx *c = arg;
  if (rel_under(p, len, c->rel, c->len) && !(c->strict && len == c->len)) strset_add(c->hit, p, len);
}

static void del_each(const char *p, size_t len, void *arg) { strset_del(arg, p, len); }

static void drop_below_sets(struct marks *m, const char *rel, size_t len) {
  struct strset *hit = strset_new();
  if (!hit) return;
  struct dropctx c = { rel, len, 1, hit };
  strset_each(m->wh, collect_below, &c);
  strset_each(hit, del_each, m->wh);
  strset_free(hit);
  hit = strset_new();
  if (!hit) return;
  c = (struct dropctx){ rel, len, 0, hit };
  strset_each(m->opq, collect_below, &c);
  strset_each(hit, del_each, m->opq);
  strset_free(hit);
}

static void replay_log(struct marks *m) {
  char path[VPATH_MAX];
  snprintf(path, sizeof path, "%s/marks", m->meta);
  FILE *f = fopen(path, "re");
  if (!f) return;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  char rel[VPATH_MAX];
  while ((n = getline(&line, &cap, f)) > 0) {
    if (line[n - 1] == '\n') line[--n] = 0;
    if (n < 4 || line[2] != ' ') continue;
    const char *enc = line + 3;
    size_t elen = (size_t)n - 3;
    if (elen >= sizeof rel) continue;
    ssize_t rl = (elen == 1 && enc[0] == '.') ? 0 : pct_decode(enc, elen, rel);
    if (rl < 0) continue;
    rel[rl] = 0;
    if (!strncmp(line, "+w", 2)) strset_add(m->wh, rel, (size_t)rl);
    else if (!strncmp(line, "-w", 2)) strset_del(m->wh, rel, (size_t)rl);
    else if (!strncmp(line, "+o", 2)) strset_add(m->opq, rel, (size_t)rl);
    else if (!strncmp(line, "-o", 2)) strset_del(m->opq, rel, (size_t)rl);
    else if (!strncmp(line, "-b", 2)) drop_below_sets(m, rel, (size_t)rl);
  }
  free(line);
  fclose(f);
}

struct writer { FILE *f; const char *tag; };

static void write_one(const char *p, size_t len, void *arg) {
  struct writer *w = arg;
  fputs(w->tag, w->f);
  fputc(' ', w->f);
  if (len == 0) {
    fputc('.', w->f);
  } else {
    char *e = pct_encode_dup(p, len);
    if (e) fputs(e, w->f);
    free(e);
  }
  fputc('\n', w->f);
}

/* Rewrites the record with what is in memory (compaction), atomically. */
static void compact(struct marks *m) {
  char path[VPATH_MAX], tmp[VPATH_MAX];
  snprintf(path, sizeof path, "%s/marks", m->meta);
  snprintf(tmp, sizeof tmp, "%s/marks.new", m->meta);
  if (access(m->meta, F_OK) != 0 && strset_count(m->wh) == 0 && strset_count(m->opq) == 0) return;
  mkdir(m->meta, 0700);
  FILE *f = fopen(tmp, "we");
  if (!f) return;
  struct writer w = { f, "+w" };
  strset_each(m->wh, write_one, &w);
  w.tag = "+o";
  strset_each(m->opq, write_one, &w);
  if (fflush(f) == 0 && fsync(fileno(f)) == 0 && fclose(f) == 0) rename(tmp, path);
  else unlink(tmp);
}

static void load(struct marks *m) {
  strset_free(m->wh);
  strset_free(m->opq);
  m->wh = strset_new();
  m->opq = strset_new();
  if (m->log_fd >= 0) close(m->log_fd);
  m->log_fd = -1;
  int wfd = open(m->writable, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (wfd >= 0) {
    walk_legacy(m, wfd, "", 0, 0);
    close(wfd);
  }
  replay_log(m);
  compact(m);
}

struct marks *marks_attach(const char *layer, const char *writable_dir, const char *meta_dir) {
  struct stat st;
  memset(&st, 0, sizeof st);
  stat(writable_dir, &st);
  pthread_mutex_lock(&reg_lock);
  struct marks *m = registry;
  while (m && strcmp(m->name, layer) != 0) m = m->next;
  if (!m) {
    m = calloc(1, sizeof *m);
    if (!m) { pthread_mutex_unlock(&reg_lock); return NULL; }
    m->name = strdup(layer);
    m->log_fd = -1;
    pthread_rwlock_init(&m->lock, NULL);
    m->next = registry;
    registry = m;
  } else if (m->wdev == st.st_dev && m->wino == st.st_ino && strcmp(m->writable, writable_dir) == 0 &&
             strcmp(m->meta, meta_dir) == 0) {
    pthread_mutex_unlock(&reg_lock);
    return m; /* the same sublayer: what is in memory is current */
  }
  /* New, or the sublayer was reset (a new folder): (re)load in place; tables keep the pointer. */
  pthread_rwlock_wrlock(&m->lock);
  free(m->writable);
  free(m->meta);
  m->writable = strdup(writable_dir);
  m->meta = strdup(meta_dir);
  m->wdev = st.st_dev;
  m->wino = st.st_ino;
  load(m);
  pthread_rwlock_unlock(&m->lock);
  pthread_mutex_unlock(&reg_lock);
  return m;
}

/* ---- queries ------------------------------------------------------------ */

/* rel itself (unless strict) or any ancestor, '' included, is in s. */
static int covered(const struct strset *s, const char *rel, size_t len, int strict) {
  if (strset_count(s) == 0) return 0;
  if (!strict && strset_has(s, rel, len)) return 1;
  while (len > 0) {
    while (len > 0 && rel[len - 1] != '/') len--;
    if (len > 0) len--; /* drop the '/' */
    if (strset_has(s, rel, len)) return 1;
  }
  return 0;
}

int marks_whiteout_covers(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_rdlock(&m->lock);
  int r = covered(m->wh, rel, len, 0);
  pthread_rwlock_unlock(&m->lock);
  return r;
}

int marks_opaque_above(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_rdlock(&m->lock);
  int r = covered(m->opq, rel, len, 1);
  pthread_rwlock_unlock(&m->lock);
  return r;
}

int marks_is_whiteout(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_rdlock(&m->lock);
  int r = strset_has(m->wh, rel, len);
  pthread_rwlock_unlock(&m->lock);
  return r;
}

int marks_is_opaque(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_rdlock(&m->lock);
  int r = strset_has(m->opq, rel, len);
  pthread_rwlock_unlock(&m->lock);
  return r;
}

/* ---- changes (callers hold g.ns_lock; the rwlock guards readers) ------- */

static int record(struct marks *m, const char *tag, const char *rel, size_t len) {
  if (m->log_fd < 0) {
    mkdir(m->meta, 0700);
    char path[VPATH_MAX];
    snprintf(path, sizeof path, "%s/marks", m->meta);
    m->log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (m->log_fd < 0) return -errno;
  }
  size_t elen = len ? pct_encode(rel, len, NULL, 0) : 1;
  char *line = malloc(elen + 5);
  if (!line) return -ENOMEM;
  memcpy(line, tag, 2);
  line[2] = ' ';
  if (len) pct_encode(rel, len, line + 3, elen + 1);
  else line[3] = '.';
  line[3 + elen] = '\n';
  ssize_t w = write(m->log_fd, line, elen + 4); /* one write: a line is never torn by O_APPEND */
  free(line);
  return w < 0 ? -errno : 0;
}

int marks_add_whiteout(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_wrlock(&m->lock);
  int added = strset_add(m->wh, rel, len);
  pthread_rwlock_unlock(&m->lock);
  if (added < 0) return -ENOMEM;
  return added ? record(m, "+w", rel, len) : 0;
}

static void unlink_legacy(struct marks *m, const char *rel, size_t len) {
  const char *slash = memrchr(rel, '/', len);
  size_t dlen = slash ? (size_t)(slash - rel) : 0;
  const char *name = slash ? slash + 1 : rel;
  char path[VPATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%.*s%s" WH_PREFIX "%.*s", m->writable, (int)dlen, rel, dlen ? "/" : "",
                   (int)(len - (size_t)(name - rel)), name);
  if (n > 0 && (size_t)n < sizeof path) unlink(path);
}

int marks_del_whiteout(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_wrlock(&m->lock);
  int had = strset_del(m->wh, rel, len);
  pthread_rwlock_unlock(&m->lock);
  if (!had) return 0;
  unlink_legacy(m, rel, len);
  record(m, "-w", rel, len);
  return 1;
}

int marks_set_opaque(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_wrlock(&m->lock);
  int added = strset_add(m->opq, rel, len);
  pthread_rwlock_unlock(&m->lock);
  if (added < 0) return -ENOMEM;
  return added ? record(m, "+o", rel, len) : 0;
}

void marks_drop_below(struct marks *m, const char *rel, size_t len) {
  pthread_rwlock_wrlock(&m->lock);
  drop_below_sets(m, rel, len);
  pthread_rwlock_unlock(&m->lock);
  record(m, "-b", rel, len);
}
