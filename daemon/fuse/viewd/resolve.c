/*
 * Resolution, the same algorithm as shared/resolver.ts (Resolver.resolve, sourcesFor,
 * isMappingAncestor, specialChildren); the differential test holds the two together.
 */
#include "viewd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void resolve(const struct table *t, const char *p, size_t plen, struct resolution *r) {
  r->nb = 0;
  r->hidden = 0;
  r->base = 1;
  for (int i = 0; i < t->nlayers; i++) {
    const struct rlayer *l = &t->layers[i];
    int skip = 0;
    for (int j = 0; j < l->nexcl && !skip; j++) skip = path_under(p, plen, l->excl[j], l->excl_len[j]);
    if (skip) continue;
    for (int j = 0; j < l->ndel; j++) {
      if (path_under(p, plen, l->del[j], l->del_len[j])) {
        r->base = 0;
        r->hidden = r->nb == 0;
        return;
      }
    }
    int best = -1;
    for (int j = 0; j < l->nmaps; j++) {
      const struct rmap *m = &l->maps[j];
      if (path_under(p, plen, m->orig, m->olen) && (best < 0 || m->olen > l->maps[best].olen)) best = j;
    }
    if (best < 0) continue;
    r->b[r->nb].layer = (short)i;
    r->b[r->nb].map = (short)best;
    r->nb++;
  }
}

int is_mapping_ancestor(const struct table *t, const char *p, size_t plen) {
  for (int i = 0; i < t->nlayers; i++) {
    const struct rlayer *l = &t->layers[i];
    for (int j = 0; j < l->nmaps; j++) {
      const struct rmap *m = &l->maps[j];
      if (m->olen != plen && path_under(m->orig, m->olen, p, plen)) return 1;
    }
  }
  return 0;
}

int branch_rel(const struct table *t, const struct branch *b, const char *p, size_t plen, char *out, size_t cap) {
  const struct rmap *m = &t->layers[b->layer].maps[b->map];
  const char *tail;
  size_t tlen;
  if (m->olen == 1) {
    tail = p + 1;
    tlen = plen - 1;
  } else if (plen == m->olen) {
    tail = "";
    tlen = 0;
  } else {
    tail = p + m->olen + 1;
    tlen = plen - m->olen - 1;
  }
  size_t n = m->dlen + (m->dlen && tlen ? 1 : 0) + tlen;
  if (n + 1 > cap) return -ENAMETOOLONG;
  memcpy(out, m->dest, m->dlen);
  size_t k = m->dlen;
  if (m->dlen && tlen) out[k++] = '/';
  memcpy(out + k, tail, tlen);
  out[n] = 0;
  return (int)n;
}

int sources_for(const struct table *t, const struct resolution *r, const char *p, size_t plen, struct source *out) {
  int n = 0;
  char rel[VPATH_MAX];
  for (int i = 0; i < r->nb; i++) {
    const struct branch *b = &r->b[i];
    out[n++] = (struct source){ SRC_WRITABLE, b->layer, b->map };
    struct marks *mk = t->layers[b->layer].marks;
    int rl = branch_rel(t, b, p, plen, rel, sizeof rel);
    if (rl >= 0 && mk && (marks_whiteout_covers(mk, rel, (size_t)rl) || marks_opaque_above(mk, rel, (size_t)rl))) return n;
    out[n++] = (struct source){ SRC_FILES, b->layer, b->map };
  }
  if (r->base) out[n++] = (struct source){ SRC_BASE, -1, -1 };
  return n;
}

int source_at(const struct table *t, const struct source *s, const char *p, size_t plen, char *rel, size_t cap) {
  if (s->kind == SRC_BASE) {
    if (plen + 1 > cap) return -1;
    if (plen == 1) {
      strcpy(rel, ".");
    } else {
      memcpy(rel, p + 1, plen - 1);
      rel[plen - 1] = 0;
    }
    return g.base_fd;
  }
  struct branch b = { s->layer, s->map };
  int n = branch_rel(t, &b, p, plen, rel, cap);
  if (n < 0) return -1;
  if (n == 0) strcpy(rel, ".");
  const struct rlayer *l = &t->layers[s->layer];
  return s->kind == SRC_WRITABLE ? l->writable_fd : l->files_fd;
}

struct names {
  const char *p[256];
  size_t len[256];
  int n;
};

static void note(struct names *ns, const char *dir, size_t dlen, const char *r, size_t rlen) {
  if (rlen == dlen || !path_under(r, rlen, dir, dlen)) return;
  const char *s = dlen == 1 ? r + 1 : r + dlen + 1;
  const char *e = memchr(s, '/', (size_t)(r + rlen - s));
  size_t n = e ? (size_t)(e - s) : (size_t)(r + rlen - s);
  for (int i = 0; i < ns->n; i++)
    if (ns->len[i] == n && memcmp(ns->p[i], s, n) == 0) return;
  if (ns->n < 256) {
    ns->p[ns->n] = s;
    ns->len[ns->n++] = n;
  }
}

void special_children(const struct table *t, const char *dir, size_t dlen,
                      void (*fn)(const char *name, size_t len, void *arg), void *arg) {
  struct names ns;
  ns.n = 0;
  for (int i = 0; i < t->nlayers; i++) {
    const struct rlayer *l = &t->layers[i];
    for (int j = 0; j < l->nmaps; j++) note(&ns, dir, dlen, l->maps[j].orig, l->maps[j].olen);
    for (int j = 0; j < l->nexcl; j++) note(&ns, dir, dlen, l->excl[j], l->excl_len[j]);
    for (int j = 0; j < l->ndel; j++) note(&ns, dir, dlen, l->del[j], l->del_len[j]);
  }
  for (int i = 0; i < ns.n; i++) fn(ns.p[i], ns.len[i], arg);
}

/* "hidden=H ancestor=A owner=O" then one token per source: w:LAYER:REL, f:LAYER:REL, b:PATH. */
int resolution_text(const struct table *t, const char *p, size_t plen, char *out, size_t cap) {
  struct resolution r;
  struct source src[MAX_SOURCES];
  resolve(t, p, plen, &r);
  int ns = r.hidden ? 0 : sources_for(t, &r, p, plen, src);
  size_t n = (size_t)snprintf(out, cap, "hidden=%d ancestor=%d owner=", r.hidden, is_mapping_ancestor(t, p, plen));
  if (n >= cap) return -1;
  if (r.nb) n += pct_encode(t->layers[r.b[0].layer].name, strlen(t->layers[r.b[0].layer].name), out + n, cap - n);
  else n += (size_t)snprintf(out + n, cap - n, "-");
  char rel[VPATH_MAX];
  for (int i = 0; i < ns && n < cap; i++) {
    if (src[i].kind == SRC_BASE) {
      n += (size_t)snprintf(out + n, cap - n, " b:");
      if (n < cap) n += pct_encode(p, plen, out + n, cap - n);
      continue;
    }
    const char *name = t->layers[src[i].layer].name;
    struct branch b = { src[i].layer, src[i].map };
    int rl = branch_rel(t, &b, p, plen, rel, sizeof rel);
    if (rl < 0) return -1;
    n += (size_t)snprintf(out + n, cap - n, " %c:", src[i].kind == SRC_WRITABLE ? 'w' : 'f');
    if (n < cap) n += pct_encode(name, strlen(name), out + n, cap - n);
    if (n + 1 < cap) out[n++] = ':';
    if (n < cap) n += pct_encode(rel, (size_t)rl, out + n, cap - n);
  }
  if (n >= cap) return -1;
  out[n] = 0;
  return (int)n;
}
