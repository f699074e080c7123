/*
 * Folders: the merged listing (mergeListings of shared/resolver.ts: the first existing source
 * decides the type, lower folders add names not present or whited out, an opaque folder or a
 * non-folder below ends the merge; rule paths checked one by one), built on a read at offset 0
 * and served by offset, so the kernel may cache it (cache_readdir + keep_cache).
 *
 * Where the kernel allows it, opendir answers ENOSYS: the kernel then sends no OPENDIR or
 * RELEASEDIR at all (two round trips per folder a warm walk would otherwise pay) and caches every
 * listing. Reads then come without a handle, so listings live in a small registry; each entry's
 * offset carries its listing's id, and a read at offset 0 builds a new one.
 */
#include "viewd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dent {
  char *name;
  unsigned char type;
  ino_t ino;
  short src;     /* index into fds, -1: resolve by full lookup */
  short gone;
};

struct dirh {
  uint32_t id;           /* offsets are (id << 32) | (index + 1) */
  fuse_ino_t ino;
  int refs;              /* the registry's + readers' (registry lock) */
  int listed;            /* in the registry */
  struct dirh *rnext, *rprev;
  uint64_t generation;
  pthread_mutex_t lock;
  struct dent *ents;
  size_t n, cap;
  int fds[MAX_SOURCES];
  int nfds;
  int built;
  int base_fd_idx;       /* which of fds is the base folder, -1 if none */
  char *base_rel;        /* its path relative to the base */
};

struct listing_ctx {
  const struct table *t;
  struct dirh *h;
  struct strset *seen;
  const char *path;
  size_t plen;
  /* writable sublayers merged so far: their whiteouts hide names below them */
  int nw;
  char *wrel[MAX_LAYERS];
  struct marks *wmarks[MAX_LAYERS];
};

static int push(struct dirh *h, const char *name, unsigned char type, ino_t ino, short src) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    struct dent *e = realloc(h->ents, cap * sizeof *e);
    if (!e) return -ENOMEM;
    h->ents = e;
    h->cap = cap;
  }
  char *s = strdup(name);
  if (!s) return -ENOMEM;
  h->ents[h->n++] = (struct dent){ s, type, ino, src, 0 };
  return 0;
}

static void clear(struct dirh *h) {
  for (size_t i = 0; i < h->n; i++) free(h->ents[i].name);
  h->n = 0;
  for (int i = 0; i < h->nfds; i++) close(h->fds[i]);
  h->nfds = 0;
  h->base_fd_idx = -1;
  free(h->base_rel);
  h->base_rel = NULL;
}

static unsigned char dtype(mode_t m) { return (unsigned char)((m & S_IFMT) >> 12); }

/* Rule paths below the folder appear or vanish by their own resolution. */
static void fix_special(const char *name, size_t len, void *arg) {
  struct listing_ctx *c = arg;
  char child[VPATH_MAX];
  if (c->plen + 1 + len + 1 > sizeof child) return;
  memcpy(child, c->path, c->plen);
  size_t at = c->plen == 1 ? 1 : c->plen + 1;
  if (c->plen != 1) child[c->plen] = '/';
  memcpy(child + at, name, len);
  child[at + len] = 0;
  struct found f;
  int exists = find_path(c->t, child, at + len, &f) == 0;
  int listed = strset_has(c->seen, name, len);
  char nm[NAME_MAX + 1];
  if (len > NAME_MAX) return;
  memcpy(nm, name, len);
  nm[len] = 0;
  if (exists) {
    for (size_t i = 0; i < c->h->n && listed; i++)
      if (strcmp(c->h->ents[i].name, nm) == 0) c->h->ents[i].src = -1, c->h->ents[i].type = dtype(f.st.st_mode);
    ino_t ino = f.synthetic ? f.st.st_ino : shown_ino(f.st.st_dev, f.st.st_ino);
    if (!listed && push(c->h, nm, dtype(f.st.st_mode), ino, -1) == 0) strset_add(c->seen, name, len);
  } else if (listed) {
    for (size_t i = 0; i < c->h->n; i++)
      if (strcmp(c->h->ents[i].name, nm) == 0) c->h->ents[i].gone = 1;
  }
}

/* A writable sublayer's marks apply to the sources below it; returns 1 when it is opaque here. */
static int note_writable(struct listing_ctx *c, const struct source *s, const char *srel) {
  struct marks *m = c->t->layers[s->layer].marks;
  const char *r = strcmp(srel, ".") == 0 ? "" : srel;
  if (!m) return 0;
  if (marks_is_opaque(m, r, strlen(r))) return 1;
  if (c->nw < MAX_LAYERS) {
    c->wrel[c->nw] = strdup(r);
    c->wmarks[c->nw] = m;
    if (c->wrel[c->nw]) c->nw++;
  }
  return 0;
}

/* One source folder's names into the listing; returns 1 when the merge ends after it. */
static int merge_one(struct listing_ctx *c, int dfd, const struct source *s, const char *srel, dev_t dev) {
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return 0;
  }
  struct dirent *e;
  char rel[VPATH_MAX];
  while ((e = readdir(d))) {
    const char *nm = e->d_name;
    size_t len = strlen(nm);
    if ((len == 1 && nm[0] == '.') || (len == 2 && nm[0] == '.' && nm[1] == '.')) continue;
    if (s->kind == SRC_WRITABLE && marks_hidden_name(nm)) continue;
    if (strset_has(c->seen, nm, len)) continue;
    /* Whited out by a writable sublayer above this source? */
    int hidden = 0;
    for (int j = 0; j < c->nw && !hidden; j++) {
      size_t wl = strlen(c->wrel[j]);
      if (wl + len + 2 > sizeof rel) continue;
      memcpy(rel, c->wrel[j], wl);
      if (wl) rel[wl++] = '/';
      memcpy(rel + wl, nm, len);
      hidden = marks_is_whiteout(c->wmarks[j], rel, wl + len);
    }
    if (hidden) continue;
    if (push(c->h, nm, e->d_type, shown_ino(dev, e->d_ino), (short)c->h->nfds) == 0) strset_add(c->seen, nm, len);
  }
  closedir(d);
  return s->kind == SRC_WRITABLE ? note_writable(c, s, srel) : 0;
}

/* Builds the merged listing of view path p into h; 0 or -errno. */
static int build(const struct table *t, const char *p, size_t plen, struct dirh *h) {
  clear(h);
  h->generation = t->generation;
  struct resolution r;
  struct source src[MAX_SOURCES];
  resolve(t, p, plen, &r);
  if (r.hidden) return -ENOENT;
  int ns = sources_for(t, &r, p, plen, src);
  struct listing_ctx c = { t, h, strset_new(), p, plen, 0, { 0 }, { 0 } };
  if (!c.seen) return -ENOMEM;
  int found = 0, nondir = 0, err = 0;
  for (int i = 0; i < ns; i++) {
    char rel[VPATH_MAX];
    int fd = source_at(t, &src[i], p, plen, rel, sizeof rel);
    if (fd < 0) continue;
    int dfd = openat(fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && src[i].kind == SRC_WRITABLE) {
      /* Whiteouts live in META_DIR: they hide lower names even where the sublayer has no folder. */
      if (note_writable(&c, &src[i], rel)) {
        /* Opaque with no folder: nothing below shows (lookups agree: the chain ends here). */
        if (!found) {
          push(h, ".", DT_DIR, 1, -2);
          push(h, "..", DT_DIR, 1, -2);
        }
        found = 1;
        break;
      }
      continue;
    }
    if (dfd < 0) {
      if (errno == ENOENT) continue;
      if (errno == ENOTDIR) nondir = 1;
      else err = -errno;
      break;
    }
    struct stat st;
    if (fstat(dfd, &st) != 0) st.st_dev = g.base_dev;
    if (!found) {
      push(h, ".", DT_DIR, shown_ino(st.st_dev, st.st_ino), -2);
      push(h, "..", DT_DIR, 1, -2);
    }
    found = 1;
    int keep = dup(dfd);
    if (keep < 0) { close(dfd); err = -errno; break; }
    h->fds[h->nfds] = keep;
    if (src[i].kind == SRC_BASE) {
      h->base_fd_idx = h->nfds;
      h->base_rel = strdup(rel);
    }
    int end = merge_one(&c, dfd, &src[i], rel, st.st_dev);
    h->nfds++;
    if (end) break;
  }
  if (!err && !found) {
    if (is_mapping_ancestor(t, p, plen)) {
      found = 1;
      struct stat st;
      synthetic_stat(&st, p, plen);
      push(h, ".", DT_DIR, st.st_ino, -2);
      push(h, "..", DT_DIR, 1, -2);
    } else {
      err = nondir ? -ENOTDIR : -ENOENT;
    }
  }
  if (!err) special_children(t, p, plen, fix_special, &c);
  for (int j = 0; j < c.nw; j++) free(c.wrel[j]);
  strset_free(c.seen);
  return err;
}

/* The folder at view path p holds nothing (for rmdir and rename). */
int dir_is_empty(const struct table *t, const char *p, size_t plen) {
  struct dirh h;
  memset(&h, 0, sizeof h);
  int r = build(t, p, plen, &h);
  int empty = 1;
  for (size_t i = 0; i < h.n; i++) empty &= h.ents[i].gone || h.ents[i].src == -2;
  clear(&h);
  free(h.ents);
  return r ? r : empty;
}

static struct dirh *dh_of(struct fuse_file_info *fi) { return fi ? (struct dirh *)(uintptr_t)fi->fh : NULL; }

static int rebuild(struct dirh *h, fuse_ino_t ino, const struct table *t) {
  struct node *n = node_use(ino);
  char path[VPATH_MAX];
  int plen = node_path(n, path, sizeof path);
  node_unuse(n);
  return plen < 0 ? plen : build(t, path, (size_t)plen, h);
}

static void dirh_free(struct dirh *h) {
  clear(h);
  free(h->ents);
  pthread_mutex_destroy(&h->lock);
  free(h);
}

/* ---- listings without a handle (no opendir) ------------------------------------ */

#define LISTINGS_MAX 256 /* kept for readers that come back at a later offset */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dirh *reg_head, *reg_tail;
static int reg_count;
static uint32_t reg_next_id;

static struct dirh *dirh_new(fuse_ino_t ino) {
  struct dirh *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  pthread_mutex_init(&h->lock, NULL);
  h->base_fd_idx = -1;
  h->ino = ino;
  h->refs = 1;
  return h;
}

static void reg_unlink(struct dirh *h) {
  if (h->rprev) h->rprev->rnext = h->rnext;
  else reg_head = h->rnext;
  if (h->rnext) h->rnext->rprev = h->rprev;
  else reg_tail = h->rprev;
  h->rnext = h->rprev = NULL;
  h->listed = 0;
  reg_count--;
}

static void reg_front(struct dirh *h) {
  h->rnext = reg_head;
  h->rprev = NULL;
  if (reg_head) reg_head->rprev = h;
  reg_head = h;
  if (!reg_tail) reg_tail = h;
  h->listed = 1;
  reg_count++;
}

static void listing_put(struct dirh *h) {
  pthread_mutex_lock(&reg_lock);
  int left = --h->refs;
  pthread_mutex_unlock(&reg_lock);
  if (left == 0) dirh_free(h);
}

/* The listing a read at off continues, with a reference; a new one at offset 0, or when the one
   it names was dropped (then the read goes on at the same index of a fresh listing). */
static struct dirh *listing_for(fuse_ino_t ino, off_t off, const struct table *t, int *err) {
  uint32_t id = (uint32_t)((uint64_t)off >> 32);
  struct dirh *h = NULL;
  pthread_mutex_lock(&reg_lock);
  for (struct dirh *x = reg_head; id && x && !h; x = x->rnext)
    if (x->id == id && x->ino == ino) h = x;
  if (h) {
    h->refs++;
    reg_unlink(h);
    reg_front(h);
  }
  pthread_mutex_unlock(&reg_lock);
  if (h) return h;
  h = dirh_new(ino);
  if (!h) {
    *err = -ENOMEM;
    return NULL;
  }
  *err = rebuild(h, ino, t);
  if (*err) {
    dirh_free(h);
    return NULL;
  }
  h->built = 1;
  struct dirh *evict = NULL;
  pthread_mutex_lock(&reg_lock);
  if (++reg_next_id > 0x7fffffff) reg_next_id = 1;
  h->id = reg_next_id;
  h->refs++; /* the registry's */
  reg_front(h);
  if (reg_count > LISTINGS_MAX) {
    evict = reg_tail;
    reg_unlink(evict);
    if (--evict->refs) evict = NULL; /* a reader still has it: it frees it */
  }
  pthread_mutex_unlock(&reg_lock);
  if (evict) dirh_free(evict);
  return h;
}

/* Fills one reply from offset off; plus: readdirplus (entries with attributes, looked up). */
static void fill(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, int plus) {
  struct table *t = table_get();
  int r = 0;
  struct dirh *h = dh_of(fi);
  int shared = !h;
  if (shared) h = listing_for(ino, off, t, &r);
  if (h) pthread_mutex_lock(&h->lock);
  if (!r && (!h->built || h->generation != t->generation)) r = rebuild(h, ino, t); /* first read, or a switch since */
  if (!r) h->built = 1;
  char *buf = r ? NULL : malloc(size);
  if (!r && !buf) r = -ENOMEM;
  size_t pos = 0;
  struct node *dir = plus && !r ? node_use(ino) : NULL;
  size_t i = (size_t)((uint64_t)off & 0xffffffffu);
  for (; !r && i < h->n; i++) {
    struct dent *d = &h->ents[i];
    if (d->gone) continue;
    off_t next = (off_t)(((uint64_t)h->id << 32) | (i + 1));
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = d->ino;
    st.st_mode = (mode_t)d->type << 12;
    if (!plus) {
      size_t need = fuse_add_direntry(req, buf + pos, size - pos, d->name, &st, next);
      if (need > size - pos) break;
      pos += need;
      continue;
    }
    struct fuse_entry_param e;
    int ok;
    if (d->src == -2) {
      ok = 0; /* . and ..: no lookup */
    } else if (d->src >= 0 && d->src < h->nfds) {
      ok = fstatat(h->fds[d->src], d->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
      struct node *n = ok ? node_bind(dir, d->name, strlen(d->name), &st) : NULL;
      if (n) fill_entry(&e, n, &st);
      else ok = 0;
      if (n && S_ISDIR(st.st_mode) && d->src == h->base_fd_idx && h->base_rel) {
        char rel[VPATH_MAX];
        int k = strcmp(h->base_rel, ".") == 0 ? snprintf(rel, sizeof rel, "%s", d->name)
                                              : snprintf(rel, sizeof rel, "%s/%s", h->base_rel, d->name);
        if (k > 0 && (size_t)k < sizeof rel) watch_add(n, rel);
      }
    } else {
      ok = do_lookup(t, dir, d->name, &e) == 0;
    }
    if (!ok) { /* vanished meanwhile: a name without attributes */
      memset(&e, 0, sizeof e);
      e.attr.st_ino = d->ino;
      e.attr.st_mode = (mode_t)d->type << 12;
    }
    size_t need = fuse_add_direntry_plus(req, buf + pos, size - pos, d->name, &e, next);
    if (need > size - pos) {
      if (e.ino) node_forget(e.ino, 1); /* not sent: the kernel holds no lookup for it */
      break;
    }
    pos += need;
  }
  if (!r && shared && i >= h->n && h->nfds) {
    /* Read to the end: a reader coming back gets names by full lookup; no descriptors kept. */
    for (int k = 0; k < h->nfds; k++) close(h->fds[k]);
    h->nfds = 0;
  }
  if (h) pthread_mutex_unlock(&h->lock);
  if (shared && h) listing_put(h);
  node_unuse(dir);
  table_put(t);
  if (r) fuse_reply_err(req, -r);
  else fuse_reply_buf(req, buf, pos);
  free(buf);
}

/* With the kernel's no-opendir support, ENOSYS: no OPENDIR or RELEASEDIR from then on, and the
   kernel caches listings by default (see the top). Otherwise a handle that builds nothing yet:
   when the kernel serves the folder from its cache, opendir is all it asks. */
static void vd_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (g.no_opendir) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  struct dirh *h = dirh_new(ino);
  if (!h) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  fi->fh = (uintptr_t)h;
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  if (fuse_reply_open(req, fi) == -ENOENT) dirh_free(h);
}

static void vd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  fill(req, ino, size, off, fi, 0);
}

static void vd_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  fill(req, ino, size, off, fi, 1);
}

static void vd_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  struct dirh *h = dh_of(fi);
  if (h) dirh_free(h);
  fuse_reply_err(req, 0);
}

static void vd_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)ino;
  (void)datasync;
  (void)fi;
  fuse_reply_err(req, 0);
}

void dir_ops(struct fuse_lowlevel_ops *o) {
  o->opendir = vd_opendir;
  o->readdir = vd_readdir;
  o->readdirplus = vd_readdirplus;
  o->releasedir = vd_releasedir;
  o->fsyncdir = vd_fsyncdir;
}
