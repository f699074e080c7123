/* Small helpers: percent-encoding, path checks, a set of byte strings, the log. */
#include "viewd.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char HEX[] = "0123456789ABCDEF";

static int plain(unsigned char c) { return c >= '!' && c <= '~' && c != '%'; }

size_t pct_encode(const char *in, size_t len, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    if (plain(c)) {
      if (n + 1 < cap) out[n] = (char)c;
      n++;
    } else {
      if (n + 3 < cap) {
        out[n] = '%';
        out[n + 1] = HEX[c >> 4];
        out[n + 2] = HEX[c & 15];
      }
      n += 3;
    }
  }
  if (cap) out[n < cap ? n : cap - 1] = 0;
  return n;
}

char *pct_encode_dup(const char *in, size_t len) {
  size_t n = pct_encode(in, len, NULL, 0);
  char *s = malloc(n + 1);
  if (s) pct_encode(in, len, s, n + 1);
  return s;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

ssize_t pct_decode(const char *in, size_t len, char *out) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    if (c == '%') {
      if (i + 2 >= len) return -1;
      int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h < 0 || l < 0) return -1;
      out[n++] = (char)(h * 16 + l);
      i += 2;
    } else if (plain(c)) {
      out[n++] = (char)c;
    } else {
      return -1;
    }
  }
  out[n] = 0;
  return (ssize_t)n;
}

/* Segments of p[0..len) separated by '/', none empty, '.', '..' or holding NUL. */
static int segments_ok(const char *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && p[j] != '/') {
      if (p[j] == 0) return 0;
      j++;
    }
    size_t n = j - i;
    if (n == 0 || n > NAME_MAX) return 0;
    if (n == 1 && p[i] == '.') return 0;
    if (n == 2 && p[i] == '.' && p[i + 1] == '.') return 0;
    i = j + 1;
    if (j < len && i == len) return 0; /* trailing '/' */
  }
  return 1;
}

int is_view_path(const char *p, size_t len) {
  if (len == 0 || p[0] != '/' || len > PATH_MAX) return 0;
  if (len == 1) return 1;
  return segments_ok(p + 1, len - 1);
}

int is_rel_path(const char *p, size_t len) {
  if (len == 0) return 1;
  if (p[0] == '/' || len >= PATH_MAX) return 0;
  return segments_ok(p, len);
}

int path_under(const char *p, size_t plen, const char *prefix, size_t prelen) {
  if (prelen == 1) return 1; /* '/' */
  if (plen < prelen || memcmp(p, prefix, prelen) != 0) return 0;
  return plen == prelen || p[prelen] == '/';
}

int rel_under(const char *r, size_t rlen, const char *prefix, size_t prelen) {
  if (prelen == 0) return 1;
  if (rlen < prelen || memcmp(r, prefix, prelen) != 0) return 0;
  return rlen == prelen || r[prelen] == '/';
}

/* ---- strset: chained hash of byte strings ------------------------------ */

struct sitem {
  struct sitem *next;
  uint64_t h;
  size_t len;
  char s[];
};

struct strset {
  struct sitem **b;
  size_t nb, count;
};

static uint64_t fnv(const char *p, size_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

struct strset *strset_new(void) {
  struct strset *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->nb = 16;
  s->b = calloc(s->nb, sizeof *s->b);
  if (!s->b) { free(s); return NULL; }
  return s;
}

void strset_free(struct strset *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nb; i++) {
    struct sitem *it = s->b[i];
    while (it) { struct sitem *n = it->next; free(it); it = n; }
  }
  free(s->b);
  free(s);
}

static void grow(struct strset *s) {
  size_t nb = s->nb * 2;
  struct sitem **b = calloc(nb, sizeof *b);
  if (!b) return;
  for (size_t i = 0; i < s->nb; i++) {
    struct sitem *it = s->b[i];
    while (it) {
      struct sitem *n = it->next;
      it->next = b[it->h & (nb - 1)];
      b[it->h & (nb - 1)] = it;
      it = n;
    }
  }
  free(s->b);
  s->b = b;
  s->nb = nb;
}

static struct sitem **slot(const struct strset *s, const char *p, size_t len, uint64_t h) {
  struct sitem **pp = &s->b[h & (s->nb - 1)];
  while (*pp && !((*pp)->h == h && (*pp)->len == len && memcmp((*pp)->s, p, len) == 0)) pp = &(*pp)->next;
  return pp;
}

int strset_add(struct strset *s, const char *p, size_t len) {
  uint64_t h = fnv(p, len);
  if (*slot(s, p, len, h)) return 0;
  struct sitem *it = malloc(sizeof *it + len + 1);
  if (!it) return -1;
  it->h = h;
  it->len = len;
  memcpy(it->s, p, len);
  it->s[len] = 0;
  it->next = s->b[h & (s->nb - 1)];
  s->b[h & (s->nb - 1)] = it;
  if (++s->count > s->nb * 2) grow(s);
  return 1;
}

int strset_del(struct strset *s, const char *p, size_t len) {
  struct sitem **pp = slot(s, p, len, fnv(p, len));
  if (!*pp) return 0;
  struct sitem *it = *pp;
  *pp = it->next;
  free(it);
  s->count--;
  return 1;
}

int strset_has(const struct strset *s, const char *p, size_t len) {
  if (s->count == 0) return 0;
  return *slot(s, p, len, fnv(p, len)) != NULL;
}

size_t strset_count(const struct strset *s) { return s->count; }

void strset_each(const struct strset *s, void (*fn)(const char *p, size_t len, void *arg), void *arg) {
  for (size_t i = 0; i < s->nb; i++)
    for (struct sitem *it = s->b[i]; it; it = it->next) fn(it->s, it->len, arg);
}

int start_thread(void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t th;
  int r = pthread_create(&th, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r == 0) pthread_detach(th);
  return r;
}

/* ---- log ---------------------------------------------------------------- */

void vlog(const char *fmt, ...) {
  char buf[1024];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ strata-viewd[%d] ", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof buf) n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf) n = sizeof buf - 2;
  buf[n++] = '\n';
  fwrite(buf, 1, (size_t)n, stderr);
  fflush(stderr);
}
