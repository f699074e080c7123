/*
 * The rule table: parsed from the agent's text (docs/view-core.md), immutable once installed,
 * held by reference so a swap never frees a table a request is still resolving with.
 */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t t_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cond = PTHREAD_COND_INITIALIZER;
static struct table empty_table = { .refs = 1 };
static struct table *current = &empty_table;

struct table *table_get(void) {
  pthread_mutex_lock(&t_lock);
  struct table *t = current;
  t->refs++;
  pthread_mutex_unlock(&t_lock);
  return t;
}

void table_put(struct table *t) {
  pthread_mutex_lock(&t_lock);
  int left = --t->refs;
  if (left <= 1) pthread_cond_broadcast(&t_cond);
  pthread_mutex_unlock(&t_lock);
  if (left == 0 && t != &empty_table) table_free(t);
}

struct table *table_install(struct table *t) {
  pthread_mutex_lock(&t_lock);
  struct table *old = current;
  current = t;
  pthread_mutex_unlock(&t_lock);
  return old; /* the reference `current` held is now the caller's */
}

void table_drain(struct table *old) {
  pthread_mutex_lock(&t_lock);
  while (old->refs > 1) pthread_cond_wait(&t_cond, &t_lock);
  pthread_mutex_unlock(&t_lock);
}

void table_free(struct table *t) {
  if (!t || t == &empty_table) return;
  for (int i = 0; i < t->nlayers; i++) {
    struct rlayer *l = &t->layers[i];
    free(l->name); free(l->files); free(l->writable); free(l->meta);
    if (l->files_fd >= 0) close(l->files_fd);
    if (l->writable_fd >= 0) close(l->writable_fd);
    for (int j = 0; j < l->nmaps; j++) { free(l->maps[j].orig); free(l->maps[j].dest); }
    for (int j = 0; j < l->nexcl; j++) free(l->excl[j]);
    for (int j = 0; j < l->ndel; j++) free(l->del[j]);
    free(l->maps); free(l->excl); free(l->excl_len); free(l->del); free(l->del_len);
  }
  free(t->layers);
  free(t);
}

/* ---- parsing ------------------------------------------------------------ */

struct parser {
  const char *p, *end;
  int line;
  char *err;
  size_t cap;
  /* fields of the current line */
  const char *f[8];
  size_t flen[8];
  int nf;
};

static int fail(struct parser *ps, const char *fmt, ...) {
  int n = snprintf(ps->err, ps->cap, "line %d: ", ps->line);
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < ps->cap) vsnprintf(ps->err + n, ps->cap - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

/* Next line split on single spaces; 0 at the end of the text. */
static int next_line(struct parser *ps) {
  if (ps->p >= ps->end) return 0;
  const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
  const char *e = nl ? nl : ps->end;
  ps->line++;
  ps->nf = 0;
  const char *s = ps->p;
  while (s <= e && ps->nf < 8) {
    const char *sp = memchr(s, ' ', (size_t)(e - s));
    const char *fe = sp ? sp : e;
    ps->f[ps->nf] = s;
    ps->flen[ps->nf] = (size_t)(fe - s);
    ps->nf++;
    if (!sp) break;
    s = sp + 1;
  }
  ps->p = nl ? nl + 1 : ps->end;
  return 1;
}

static int is(struct parser *ps, int i, const char *word) {
  return i < ps->nf && ps->flen[i] == strlen(word) && memcmp(ps->f[i], word, ps->flen[i]) == 0;
}

/* Field i decoded into a new string. */
static char *field(struct parser *ps, int i, size_t *len) {
  char *s = malloc(ps->flen[i] + 1);
  if (!s) return NULL;
  ssize_t n = pct_decode(ps->f[i], ps->flen[i], s);
  if (n < 0) { free(s); return NULL; }
  if (len) *len = (size_t)n;
  return s;
}

static int push(void **arr, int *n, size_t size) {
  void *a = realloc(*arr, (size_t)(*n + 1) * size);
  if (!a) return -1;
  *arr = a;
  (*n)++;
  return 0;
}

static int open_dir(const char *path, int create) {
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    /* The agent makes the writable sublayer; recreate it when a reset removed it. */
    char tmp[VPATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1; *s; s++) {
      if (*s != '/') continue;
      *s = 0;
      mkdir(tmp, 0755);
      *s = '/';
    }
    mkdir(tmp, 0755);
    fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  return fd;
}

static int parse_layer(struct parser *ps, struct table *t) {
  if (ps->nf != 5) return fail(ps, "layer needs NAME FILES_DIR WRITABLE_DIR META_DIR");
  if (t->nlayers >= MAX_LAYERS) return fail(ps, "more than %d layers", MAX_LAYERS);
  if (push((void **)&t->layers, &t->nlayers, sizeof *t->layers)) return fail(ps, "out of memory");
  struct rlayer *l = &t->layers[t->nlayers - 1];
  memset(l, 0, sizeof *l);
  l->files_fd = l->writable_fd = -1;
  l->name = field(ps, 1, NULL);
  l->files = field(ps, 2, NULL);
  l->writable = field(ps, 3, NULL);
  l->meta = field(ps, 4, NULL);
  if (!l->name || !l->files || !l->writable || !l->meta) return fail(ps, "malformed layer field");
  if (!*l->name || strchr(l->name, '/')) return fail(ps, "bad layer name");
  if (l->files[0] != '/' || l->writable[0] != '/' || l->meta[0] != '/') return fail(ps, "layer folders must be absolute");
  for (int i = 0; i < t->nlayers - 1; i++)
    if (strcmp(t->layers[i].name, l->name) == 0) return fail(ps, "layer %s twice", l->name);
  return 0;
}

static int parse_rule(struct parser *ps, struct table *t) {
  if (t->nlayers == 0) return fail(ps, "rule before any layer");
  struct rlayer *l = &t->layers[t->nlayers - 1];
  if (is(ps, 0, "map")) {
    if (ps->nf != 3) return fail(ps, "map needs ORIGINAL DESTINATION");
    struct rmap m = {0};
    m.orig = field(ps, 1, &m.olen);
    m.dest = field(ps, 2, &m.dlen);
    if (m.dest && m.dlen == 1 && m.dest[0] == '.') m.dest[0] = 0, m.dlen = 0;
    if (!m.orig || !m.dest || !is_view_path(m.orig, m.olen) || !is_rel_path(m.dest, m.dlen)) {
      free(m.orig); free(m.dest);
      return fail(ps, "bad map paths");
    }
    if (push((void **)&l->maps, &l->nmaps, sizeof m)) { free(m.orig); free(m.dest); return fail(ps, "out of memory"); }
    l->maps[l->nmaps - 1] = m;
    return 0;
  }
  int del = is(ps, 0, "delete");
  if (ps->nf != 2) return fail(ps, "%s needs PATH", del ? "delete" : "exclude");
  size_t len;
  char *p = field(ps, 1, &len);
  if (!p || !is_view_path(p, len)) { free(p); return fail(ps, "bad path"); }
  char ***arr = del ? &l->del : &l->excl;
  size_t **lens = del ? &l->del_len : &l->excl_len;
  int *n = del ? &l->ndel : &l->nexcl;
  int n0 = *n;
  if (push((void **)arr, n, sizeof(char *))) { free(p); return fail(ps, "out of memory"); }
  int n1 = n0;
  if (push((void **)lens, &n1, sizeof(size_t))) { (*n)--; free(p); return fail(ps, "out of memory"); }
  (*arr)[n0] = p;
  (*lens)[n0] = len;
  return 0;
}

struct table *table_parse(const char *text, size_t len, char *err, size_t cap) {
  struct parser ps = { .p = text, .end = text + len, .err = err, .cap = cap };
  struct table *t = calloc(1, sizeof *t);
  if (!t) { snprintf(err, cap, "out of memory"); return NULL; }
  t->refs = 1;
  int ended = 0, rc = 0;
  if (!next_line(&ps) || !is(&ps, 0, "strata-rules") || !is(&ps, 1, "1") || ps.nf != 2) {
    rc = fail(&ps, "expected \"strata-rules 1\"");
  } else if (!next_line(&ps) || !is(&ps, 0, "generation") || ps.nf != 2) {
    rc = fail(&ps, "expected \"generation G\"");
  } else {
    char num[32];
    size_t n = ps.flen[1] < sizeof num - 1 ? ps.flen[1] : sizeof num - 1;
    memcpy(num, ps.f[1], n);
    num[n] = 0;
    char *e;
    errno = 0;
    t->generation = strtoull(num, &e, 10);
    if (!n || *e || errno) rc = fail(&ps, "bad generation");
  }
  while (rc == 0 && next_line(&ps)) {
    if (ended) {
      if (ps.nf == 1 && ps.flen[0] == 0 && ps.p >= ps.end) break; /* the final newline */
      rc = fail(&ps, "text after end");
    } else if (is(&ps, 0, "end") && ps.nf == 1) {
      ended = 1;
    } else if (is(&ps, 0, "layer")) {
      rc = parse_layer(&ps, t);
    } else if (is(&ps, 0, "map") || is(&ps, 0, "exclude") || is(&ps, 0, "delete")) {
      rc = parse_rule(&ps, t);
    } else {
      rc = fail(&ps, "unknown record");
    }
  }
  if (rc == 0 && !ended) rc = fail(&ps, "missing \"end\"");
  if (rc != 0) {
    table_free(t);
    return NULL;
  }
  for (int i = 0; i < t->nlayers; i++) {
    struct rlayer *l = &t->layers[i];
    l->files_fd = open_dir(l->files, 0);
    l->writable_fd = open_dir(l->writable, 1);
    if (l->files_fd >= 0) fstat(l->files_fd, &l->files_st);
    if (l->writable_fd >= 0) fstat(l->writable_fd, &l->writable_st);
    l->marks = marks_attach(l->name, l->writable, l->meta);
  }
  return t;
}
