/*
 * The nodes the kernel holds. A non-directory is keyed by the real (dev, ino) the resolver chose,
 * so two names of one file are one node (hard links); a directory is one node per view path
 * (resolution below it depends on that path). Names (dentries) tie nodes to their parents, so a
 * node's view path is rebuilt by walking up; they also let a switch find what the kernel caches.
 * A node lives while the kernel holds lookups on it, or it has children, handles or users.
 */
#include "viewd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pthread_mutex_t g_nodes = PTHREAD_MUTEX_INITIALIZER;

static struct node root;
static struct node **itab;   /* (dev, ino) hash */
static size_t itab_n, icount;
static struct dentry **dtab; /* (parent, name) hash */
static size_t dtab_n, dcount;
static uint64_t live;

void nodes_init(void) {
  memset(&root, 0, sizeof root);
  root.type = S_IFDIR;
  root.nlookup = 1;
  itab_n = 1024;
  itab = calloc(itab_n, sizeof *itab);
  dtab_n = 1024;
  dtab = calloc(dtab_n, sizeof *dtab);
}

struct node *node_root(void) { return &root; }

fuse_ino_t node_id(struct node *n) { return n == &root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n; }

static struct node *from_id(fuse_ino_t ino) { return ino == FUSE_ROOT_ID ? &root : (struct node *)(uintptr_t)ino; }

uint64_t nodes_count(void) {
  pthread_mutex_lock(&g_nodes);
  uint64_t n = live;
  pthread_mutex_unlock(&g_nodes);
  return n;
}

/* ---- hashes -------------------------------------------------------------- */

static size_t ihash(dev_t dev, ino_t ino) {
  uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4FULL;
  return (size_t)(h >> 17);
}

static size_t dhash(const struct node *parent, const char *name, size_t len) {
  uint64_t h = (uint64_t)(uintptr_t)parent * 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
  return (size_t)(h ^ (h >> 29));
}

static void igrow(void) {
  size_t n = itab_n * 2;
  struct node **t = calloc(n, sizeof *t);
  if (!t) return;
  for (size_t i = 0; i < itab_n; i++) {
    struct node *x = itab[i];
    while (x) {
      struct node *nx = x->hnext;
      size_t k = ihash(x->dev, x->ino) & (n - 1);
      x->hnext = t[k];
      t[k] = x;
      x = nx;
    }
  }
  free(itab);
  itab = t;
  itab_n = n;
}

static void dgrow(void) {
  size_t n = dtab_n * 2;
  struct dentry **t = calloc(n, sizeof *t);
  if (!t) return;
  for (size_t i = 0; i < dtab_n; i++) {
    struct dentry *d = dtab[i];
    while (d) {
      struct dentry *nx = d->hnext;
      size_t k = dhash(d->parent, d->name, d->nlen) & (n - 1);
      d->hnext = t[k];
      t[k] = d;
      d = nx;
    }
  }
  free(dtab);
  dtab = t;
  dtab_n = n;
}

static void ihash_add(struct node *n) {
  size_t k = ihash(n->dev, n->ino) & (itab_n - 1);
  n->hnext = itab[k];
  itab[k] = n;
  n->hashed = 1;
  if (++icount > itab_n) igrow();
}

static void ihash_del(struct node *n) {
  if (!n->hashed) return;
  struct node **pp = &itab[ihash(n->dev, n->ino) & (itab_n - 1)];
  while (*pp && *pp != n) pp = &(*pp)->hnext;
  if (*pp) *pp = n->hnext;
  n->hashed = 0;
  icount--;
}

static struct node *ihash_find(dev_t dev, ino_t ino) {
  for (struct node *n = itab[ihash(dev, ino) & (itab_n - 1)]; n; n = n->hnext)
    if (n->dev == dev && n->ino == ino) return n;
  return NULL;
}

static struct dentry **dslot(const struct node *parent, const char *name, size_t len) {
  struct dentry **pp = &dtab[dhash(parent, name, len) & (dtab_n - 1)];
  while (*pp && !((*pp)->parent == parent && (*pp)->nlen == len && memcmp((*pp)->name, name, len) == 0)) pp = &(*pp)->hnext;
  return pp;
}

struct node *node_child_locked(struct node *parent, const char *name, size_t nlen) {
  struct dentry *d = *dslot(parent, name, nlen);
  return d ? d->child : NULL;
}

/* ---- life ---------------------------------------------------------------- */

static void maybe_free(struct node *n);

static void alias_del(struct dentry *d) {
  struct dentry **pp = &d->child->aliases;
  while (*pp && *pp != d) pp = &(*pp)->alias_next;
  if (*pp) *pp = d->alias_next;
}

static void dentry_drop(struct dentry *d) {
  struct dentry **pp = dslot(d->parent, d->name, d->nlen);
  if (*pp == d) *pp = d->hnext;
  if (d->sib_prev) d->sib_prev->sib_next = d->sib_next;
  else d->parent->children = d->sib_next;
  if (d->sib_next) d->sib_next->sib_prev = d->sib_prev;
  alias_del(d);
  dcount--;
  struct node *parent = d->parent, *child = d->child;
  parent->refs--;
  free(d->name);
  free(d);
  maybe_free(child);
  maybe_free(parent);
}

static struct dentry *dentry_add(struct node *parent, const char *name, size_t len, struct node *child) {
  struct dentry *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->name = malloc(len + 1);
  if (!d->name) { free(d); return NULL; }
  memcpy(d->name, name, len);
  d->name[len] = 0;
  d->nlen = len;
  d->parent = parent;
  d->child = child;
  struct dentry **pp = &dtab[dhash(parent, name, len) & (dtab_n - 1)];
  d->hnext = *pp;
  *pp = d;
  d->sib_next = parent->children;
  if (parent->children) parent->children->sib_prev = d;
  parent->children = d;
  /* append: the first name stays the one paths are built from */
  struct dentry **ap = &child->aliases;
  while (*ap) ap = &(*ap)->alias_next;
  *ap = d;
  parent->refs++;
  if (++dcount > dtab_n) dgrow();
  return d;
}

static void maybe_free(struct node *n) {
  if (n == &root || n->nlookup || n->refs || n->children || n->handles) return;
  /* Nobody holds it: drop its names (which may free parents), then the node. */
  n->refs++;
  while (n->aliases) dentry_drop(n->aliases);
  n->refs--;
  watch_drop_locked(n);
  ihash_del(n);
  live--;
  free(n);
}

static struct node *node_new(const struct stat *st) {
  struct node *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  live++;
  if (!st) {
    n->type = S_IFDIR;
    n->synthetic = 1;
    return n;
  }
  n->type = st->st_mode & S_IFMT;
  n->dev = st->st_dev;
  n->ino = st->st_ino;
  if (!S_ISDIR(st->st_mode)) ihash_add(n);
  return n;
}

struct node *node_use(fuse_ino_t ino) {
  struct node *n = from_id(ino);
  pthread_mutex_lock(&g_nodes);
  n->refs++;
  pthread_mutex_unlock(&g_nodes);
  return n;
}

void node_unuse(struct node *n) {
  if (!n) return;
  pthread_mutex_lock(&g_nodes);
  n->refs--;
  maybe_free(n);
  pthread_mutex_unlock(&g_nodes);
}

struct node *node_bind(struct node *parent, const char *name, size_t nlen, const struct stat *st) {
  pthread_mutex_lock(&g_nodes);
  struct dentry *d = *dslot(parent, name, nlen);
  struct node *n = NULL;
  if (!st || S_ISDIR(st->st_mode)) {
    if (d && S_ISDIR(d->child->type) && !d->child->vanished) {
      n = d->child;
      n->synthetic = !st;
      if (st) { n->dev = st->st_dev; n->ino = st->st_ino; }
    }
  } else {
    n = ihash_find(st->st_dev, st->st_ino);
    if (n && n->type != (st->st_mode & S_IFMT)) {
      ihash_del(n); /* the inode number was reused for another kind of file */
      n = NULL;
    }
  }
  if (!n) n = node_new(st);
  if (n && !(d && d->child == n)) {
    n->refs++; /* keep n while its old name goes */
    if (d) dentry_drop(d);
    dentry_add(parent, name, nlen, n);
    n->refs--;
  }
  if (n) {
    n->nlookup++;
    g.lookups++;
  }
  pthread_mutex_unlock(&g_nodes);
  return n;
}

void node_forget(fuse_ino_t ino, uint64_t count) {
  struct node *n = from_id(ino);
  pthread_mutex_lock(&g_nodes);
  if (n != &root) {
    n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
    g.forgets++;
    maybe_free(n);
  }
  pthread_mutex_unlock(&g_nodes);
}

void node_unname(struct node *parent, const char *name, size_t nlen) {
  pthread_mutex_lock(&g_nodes);
  struct dentry *d = *dslot(parent, name, nlen);
  if (d) dentry_drop(d);
  pthread_mutex_unlock(&g_nodes);
}

static void dentry_move(struct dentry *d, struct node *np, const char *name) {
  size_t len = strlen(name);
  char *nm = malloc(len + 1);
  if (!nm) { dentry_drop(d); return; }
  memcpy(nm, name, len + 1);
  struct dentry **pp = dslot(d->parent, d->name, d->nlen);
  if (*pp == d) *pp = d->hnext;
  if (d->sib_prev) d->sib_prev->sib_next = d->sib_next;
  else d->parent->children = d->sib_next;
  if (d->sib_next) d->sib_next->sib_prev = d->sib_prev;
  struct node *old = d->parent;
  free(d->name);
  d->name = nm;
  d->nlen = len;
  d->parent = np;
  np->refs++;
  pp = &dtab[dhash(np, nm, len) & (dtab_n - 1)];
  d->hnext = *pp;
  *pp = d;
  d->sib_prev = NULL;
  d->sib_next = np->children;
  if (np->children) np->children->sib_prev = d;
  np->children = d;
  old->refs--;
  maybe_free(old);
}

void node_rename(struct node *p1, const char *n1, struct node *p2, const char *n2, int exchange) {
  pthread_mutex_lock(&g_nodes);
  struct dentry *d1 = *dslot(p1, n1, strlen(n1));
  struct dentry *d2 = *dslot(p2, n2, strlen(n2));
  if (exchange) {
    if (d1 && d2) {
      struct node *c1 = d1->child, *c2 = d2->child;
      alias_del(d1);
      alias_del(d2);
      d1->child = c2;
      d2->child = c1;
      d1->alias_next = c2->aliases;
      c2->aliases = d1;
      d2->alias_next = c1->aliases;
      c1->aliases = d2;
    } else {
      if (d1) dentry_drop(d1);
      if (d2) dentry_drop(d2);
    }
  } else if (d1 && d1 != d2) {
    p1->refs++;
    if (d2) dentry_drop(d2);
    dentry_move(d1, p2, n2);
    p1->refs--;
    maybe_free(p1);
  }
  pthread_mutex_unlock(&g_nodes);
}

void node_rekey(struct node *n, const struct stat *st) {
  pthread_mutex_lock(&g_nodes);
  if (!S_ISDIR(n->type)) {
    ihash_del(n);
    n->dev = st->st_dev;
    n->ino = st->st_ino;
    ihash_add(n);
    /* Other names of the old file still name the old file: the kernel must look them up again. */
    struct dentry *first = n->aliases;
    while (first && first->alias_next) {
      struct dentry *d = first->alias_next;
      notify_later_entry(node_id(d->parent), d->name, d->nlen);
      dentry_drop(d);
    }
  } else {
    n->dev = st->st_dev;
    n->ino = st->st_ino;
  }
  pthread_mutex_unlock(&g_nodes);
}

/* The path through name d (then each folder's one name); -ESTALE when a folder above has none
   left (one a switch took out, see inval.c). */
static int path_via(struct dentry *d, char *buf, size_t cap) {
  size_t pos = cap - 1;
  buf[pos] = 0;
  int depth = 0;
  for (;;) {
    if (d->nlen + 1 > pos) return -ENAMETOOLONG;
    pos -= d->nlen;
    memcpy(buf + pos, d->name, d->nlen);
    buf[--pos] = '/';
    struct node *up = d->parent;
    if (up == &root) break;
    d = up->aliases;
    if (!d || ++depth > PATH_MAX / 2) return -ESTALE;
  }
  size_t len = cap - 1 - pos;
  memmove(buf, buf + pos, len + 1);
  return (int)len;
}

int node_path_locked(struct node *n, char *buf, size_t cap) {
  if (n == &root) {
    if (cap < 2) return -ENAMETOOLONG;
    strcpy(buf, "/");
    return 1;
  }
  /* A file's first name may lie below such a folder while another name is live. */
  int r = -ESTALE;
  for (struct dentry *d = n->aliases; d && r == -ESTALE; d = d->alias_next) r = path_via(d, buf, cap);
  return r;
}

int node_path(struct node *n, char *buf, size_t cap) {
  pthread_mutex_lock(&g_nodes);
  int r = node_path_locked(n, buf, cap);
  pthread_mutex_unlock(&g_nodes);
  return r;
}

/* ---- inode numbers shown to programs -------------------------------------- */

static dev_t devs[64];
static int ndevs;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;

/* The base's files keep their inode numbers (git's index stays valid across mounts); other
   devices get their index in the top bits so numbers stay unique. */
ino_t shown_ino(dev_t dev, ino_t ino) {
  if (dev == g.base_dev) return ino;
  pthread_mutex_lock(&dev_lock);
  int k = 0;
  while (k < ndevs && devs[k] != dev) k++;
  if (k == ndevs && ndevs < 64) devs[ndevs++] = dev;
  pthread_mutex_unlock(&dev_lock);
  return ino ^ ((ino_t)(k + 1) << 56);
}

/* ---- open files ----------------------------------------------------------- */

void node_attach_fh(struct node *n, struct fh *fh) {
  pthread_mutex_lock(&g_nodes);
  fh->next_of_node = n->handles;
  n->handles = fh;
  pthread_mutex_unlock(&g_nodes);
}

void node_detach_fh(struct node *n, struct fh *fh) {
  pthread_mutex_lock(&g_nodes);
  struct fh **pp = &n->handles;
  while (*pp && *pp != fh) pp = &(*pp)->next_of_node;
  if (*pp) *pp = fh->next_of_node;
  maybe_free(n);
  pthread_mutex_unlock(&g_nodes);
}

/* An fd open on the node's file, for fstat when it has no name any more; -1 if none. */
int node_any_fd(struct node *n) {
  pthread_mutex_lock(&g_nodes);
  int fd = n->handles ? n->handles->fd : -1;
  if (fd >= 0) fd = dup(fd);
  pthread_mutex_unlock(&g_nodes);
  return fd;
}
