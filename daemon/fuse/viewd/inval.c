/*
 * A table swap and the exact kernel invalidation that follows. The rule paths of layers that
 * changed (added, removed, edited or reordered) are the only places resolution can differ; the
 * known names at and below them are re-resolved with both tables and only those whose chain
 * changed are invalidated (entry on the parent; for folders the inode too: attributes, listing). The
 * cost follows what changed, not how much of the tree the kernel holds.
 */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

struct note {
  fuse_ino_t ino;    /* an inode note when name is NULL */
  fuse_ino_t parent; /* an entry note otherwise */
  char *name;
  size_t nlen;
  int first;         /* a folder's entry: sent before the rest (see send_all) */
  char *again;       /* a folder's path, looked up again right after its entry goes (see relink) */
};

struct notes {
  struct note *v;
  size_t n, cap;
};

static void add(struct notes *ns, fuse_ino_t ino, fuse_ino_t parent, const char *name, size_t nlen) {
  if (ns->n == ns->cap) {
    size_t cap = ns->cap ? ns->cap * 2 : 64;
    struct note *v = realloc(ns->v, cap * sizeof *v);
    if (!v) return;
    ns->v = v;
    ns->cap = cap;
  }
  struct note *x = &ns->v[ns->n];
  x->ino = ino;
  x->parent = parent;
  x->name = NULL;
  x->nlen = nlen;
  x->first = 0;
  x->again = NULL;
  if (name) {
    x->name = malloc(nlen + 1);
    if (!x->name) return;
    memcpy(x->name, name, nlen);
    x->name[nlen] = 0;
  }
  ns->n++;
}

/* Dropping a folder's entry prunes the names cached below it, cached misses included, but it
   also unhashes the folder: a process whose cwd is in it gets ENOENT from getcwd() until the
   folder is looked up again (a lookup that finds the same node, as folders keep theirs, moves the
   old entry back into place). So a folder that is still a folder in table t is looked up again,
   through the mount, right after its own entry goes: the time getcwd() can fail there is one
   lookup, not the whole switch. (Not zero: see docs/limits.md.) */
static void relink(const struct table *t, const char *p) {
  static int mfd = -1; /* control thread only */
  if (mfd < 0) mfd = open(g.mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct found f;
  if (mfd >= 0 && find_path(t, p, strlen(p), &f) == 0 && S_ISDIR(f.st.st_mode)) {
    struct stat st;
    fstatat(mfd, p + 1, &st, AT_SYMLINK_NOFOLLOW);
  }
}

/* Why entries are dropped, not expired (FUSE_EXPIRE_ONLY), measured with 10k names cached under a
   switched mapping on the benchmark's VM: sending the notes took 74-200 ms here, of which the
   kernel's prune under the dropped folder (each name's inode evicted, a FORGET each) about half
   and the 10k notes themselves (a write to /dev/fuse each, 3-9 us) the rest; the walk choosing
   them 1-6 ms. Expiring every changed name instead (and dropping only folders that may hold
   cached misses, which the server cannot name) halved that (30-88 ms, the notes alone), but the
   next walk of those names took 4-5 times as long (1.3-1.7 s against 0.34 s): an expired entry
   whose node changed costs two LOOKUPs and a FORGET when next used, and no RCU walk. A switch
   is usually followed by such a walk (git status, a build), so the prune stays on the switch. */

/* Folders' entries first, top down: dropping a folder's entry prunes, in one go, every unused
   name the kernel holds below it, so the entries of the files there that follow are cheap misses
   (they still matter for names in use at that moment, e.g. a file open or being looked up).
   t is the table now installed, for relink (NULL from the notifier, which has no folder notes). */
static long send_all(struct notes *ns, const struct table *t) {
  long sent = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < ns->n; i++) {
      struct note *x = &ns->v[i];
      if (x->first != !pass) continue;
      int r = x->name ? fuse_lowlevel_notify_inval_entry(g.se, x->parent, x->name, x->nlen)
                      : fuse_lowlevel_notify_inval_inode(g.se, x->ino, 0, 0);
      if (r == 0) sent++;
      if (x->again && t) relink(t, x->again);
    }
  }
  for (size_t i = 0; i < ns->n; i++) {
    free(ns->v[i].name);
    free(ns->v[i].again);
  }
  ns->n = 0;
  __atomic_add_fetch(&g.invalidations, (uint64_t)sent, __ATOMIC_RELAXED);
  return sent;
}

/* A folder's entry and then its node's caches (attributes, listing), sent in the first pass;
   path (when not NULL) is looked up again once both are gone. */
static void add_dir(struct notes *ns, fuse_ino_t parent, const char *name, size_t nlen, fuse_ino_t ino, const char *path) {
  size_t at = ns->n;
  add(ns, 0, parent, name, nlen);
  add(ns, ino, 0, NULL, 0);
  if (ns->n != at + 2) return;
  ns->v[at].first = ns->v[at + 1].first = 1;
  if (path) ns->v[at + 1].again = strdup(path);
}

/* ---- what changed between two tables ----------------------------------------- */

static int eq(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* Same folders, and the same folders on disk (the store replaces a layer or its writable
   sublayer by renaming a new folder in: that is a change of everything the layer maps). */
static int places_same(const struct rlayer *x, const struct rlayer *y) {
  return eq(x->files, y->files) && eq(x->writable, y->writable) && x->files_st.st_dev == y->files_st.st_dev &&
         x->files_st.st_ino == y->files_st.st_ino && x->writable_st.st_dev == y->writable_st.st_dev &&
         x->writable_st.st_ino == y->writable_st.st_ino;
}

static int layer_same(const struct rlayer *x, const struct rlayer *y) {
  if (!eq(x->name, y->name) || !places_same(x, y) || !eq(x->meta, y->meta)) return 0;
  if (x->nmaps != y->nmaps || x->nexcl != y->nexcl || x->ndel != y->ndel) return 0;
  for (int i = 0; i < x->nmaps; i++)
    if (!eq(x->maps[i].orig, y->maps[i].orig) || !eq(x->maps[i].dest, y->maps[i].dest)) return 0;
  for (int i = 0; i < x->nexcl; i++) if (!eq(x->excl[i], y->excl[i])) return 0;
  for (int i = 0; i < x->ndel; i++) if (!eq(x->del[i], y->del[i])) return 0;
  return 1;
}

static const struct rlayer *by_name(const struct table *t, const char *name) {
  for (int i = 0; i < t->nlayers; i++) if (eq(t->layers[i].name, name)) return &t->layers[i];
  return NULL;
}

struct paths {
  const char **v;
  size_t *len;
  size_t n, cap;
};

static void add_path(struct paths *ps, const char *p, size_t len) {
  for (size_t i = 0; i < ps->n; i++) if (ps->len[i] == len && memcmp(ps->v[i], p, len) == 0) return;
  if (ps->n == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 32;
    const char **v = realloc(ps->v, cap * sizeof *v);
    size_t *l = v ? realloc(ps->len, cap * sizeof *l) : NULL;
    if (!v || !l) { if (v) ps->v = v; return; }
    ps->v = v;
    ps->len = l;
    ps->cap = cap;
  }
  ps->v[ps->n] = p;
  ps->len[ps->n++] = len;
}

static void add_layer_paths(struct paths *ps, const struct rlayer *l) {
  for (int i = 0; i < l->nmaps; i++) add_path(ps, l->maps[i].orig, l->maps[i].olen);
  for (int i = 0; i < l->nexcl; i++) add_path(ps, l->excl[i], l->excl_len[i]);
  for (int i = 0; i < l->ndel; i++) add_path(ps, l->del[i], l->del_len[i]);
}

/* Rule paths whose resolution may differ; none below another. */
static void changed_prefixes(const struct table *a, const struct table *b, struct paths *out) {
  struct paths all = { 0 };
  for (int i = 0; i < a->nlayers; i++) {
    const struct rlayer *y = by_name(b, a->layers[i].name);
    if (!y || !layer_same(&a->layers[i], y)) {
      add_layer_paths(&all, &a->layers[i]);
      if (y) add_layer_paths(&all, y);
    }
  }
  for (int i = 0; i < b->nlayers; i++)
    if (!by_name(a, b->layers[i].name)) add_layer_paths(&all, &b->layers[i]);
  /* Layers in both, unchanged, but in another order: their rules may now win elsewhere. */
  int ia = 0, ib = 0, reordered = 0;
  while (!reordered) {
    while (ia < a->nlayers && !(by_name(b, a->layers[ia].name) && layer_same(&a->layers[ia], by_name(b, a->layers[ia].name)))) ia++;
    while (ib < b->nlayers && !(by_name(a, b->layers[ib].name) && layer_same(&b->layers[ib], by_name(a, b->layers[ib].name)))) ib++;
    if (ia >= a->nlayers || ib >= b->nlayers) break;
    reordered = !eq(a->layers[ia].name, b->layers[ib].name);
    ia++;
    ib++;
  }
  if (reordered)
    for (int i = 0; i < a->nlayers; i++) add_layer_paths(&all, &a->layers[i]);
  for (size_t i = 0; i < all.n; i++) {
    int covered = 0;
    for (size_t j = 0; j < all.n && !covered; j++)
      covered = j != i && all.len[j] < all.len[i] && path_under(all.v[i], all.len[i], all.v[j], all.len[j]);
    if (!covered) add_path(out, all.v[i], all.len[i]);
  }
  free(all.v);
  free(all.len);
}

/* Same chain of places (by layer name, folders and relative path) and same synthetic status. */
static int chain_same(const struct table *a, const struct table *b, const char *p, size_t plen) {
  struct resolution ra, rb;
  resolve(a, p, plen, &ra);
  resolve(b, p, plen, &rb);
  if (ra.hidden != rb.hidden || ra.base != rb.base || ra.nb != rb.nb) return 0;
  if (is_mapping_ancestor(a, p, plen) != is_mapping_ancestor(b, p, plen)) return 0;
  char x[VPATH_MAX], y[VPATH_MAX];
  for (int i = 0; i < ra.nb; i++) {
    const struct rlayer *la = &a->layers[ra.b[i].layer], *lb = &b->layers[rb.b[i].layer];
    if (!eq(la->name, lb->name) || !places_same(la, lb)) return 0;
    int nx = branch_rel(a, &ra.b[i], p, plen, x, sizeof x);
    int ny = branch_rel(b, &rb.b[i], p, plen, y, sizeof y);
    if (nx != ny || (nx > 0 && memcmp(x, y, (size_t)nx) != 0)) return 0;
  }
  return 1;
}

/* ---- what the kernel holds there ----------------------------------------------- */

struct walk {
  const struct table *a, *b;
  struct notes *ns;
  char path[VPATH_MAX];
};

/* A rule path that is a folder whose chain changed and that the new table does not show as a
   folder: its entry is dropped, which prunes every unused name below it, and nothing below it is
   visited (a switch that takes out a layer's own folder costs a note or two, not one per file
   below; checked at rule paths only: the walk holds g_nodes, so no stat per folder below). A name
   below it that was in use at that moment (a stat in progress) survives the prune, still valid:
   it can only be reached again through this folder's node, and the kernel would put the old
   folder entry back with it when a lookup returns that node. So the node is marked and never
   returned again (node_bind makes a new one), except by a later switch, which visits it (its
   names are still known here) and clears the mark while it invalidates what changed below. */
static int gone(const struct table *b, const char *p, size_t plen, struct node *dir) {
  struct found f;
  int out = find_path(b, p, plen, &f) != 0 || !S_ISDIR(f.st.st_mode);
  dir->vanished = out;
  return out;
}

/* Known names below n (w->path holds n's path, length len), folders before what they hold:
   those whose chain changed lose their entry; folders also their node's caches. */
static void visit(struct walk *w, struct node *n, size_t len, int depth) {
  if (depth > 512) return;
  for (struct dentry *c = n->children; c; c = c->sib_next) {
    size_t nl = len + (len == 1 ? 0 : 1) + c->nlen;
    if (nl + 1 > sizeof w->path) continue;
    size_t at = len == 1 ? 1 : len + 1;
    if (len != 1) w->path[len] = '/';
    memcpy(w->path + at, c->name, c->nlen);
    w->path[nl] = 0;
    if (!chain_same(w->a, w->b, w->path, nl)) {
      /* A file's node is its real file: a new source is a new node, so dropping the name is
         enough (its attributes and pages stay right for whoever still has it open). A folder
         keeps its node across sources: its attributes and cached listing go too. */
      if (S_ISDIR(c->child->type)) {
        int out = c->child->vanished && gone(w->b, w->path, nl, c->child); /* taken out before, still out */
        add_dir(w->ns, node_id(n), c->name, c->nlen, node_id(c->child), out ? NULL : w->path);
        if (out) continue;
      } else {
        add(w->ns, 0, node_id(n), c->name, c->nlen);
      }
    }
    visit(w, c->child, nl, depth + 1);
  }
  w->path[len] = 0;
}

/* Names the root was asked for and does not hold: the root has no parent entry whose
   invalidation would drop them, so a table that maps '/' invalidates them one by one. */
#define ROOT_MISSES 4096
static char *root_misses[ROOT_MISSES];
static size_t nmisses;
static pthread_mutex_t misses_lock = PTHREAD_MUTEX_INITIALIZER;

void note_root_miss(const char *name) {
  pthread_mutex_lock(&misses_lock);
  if (nmisses < ROOT_MISSES) {
    int dup = 0;
    for (size_t i = 0; i < nmisses && !dup; i++) dup = strcmp(root_misses[i], name) == 0;
    if (!dup) root_misses[nmisses] = strdup(name);
    if (!dup && root_misses[nmisses]) nmisses++;
  }
  pthread_mutex_unlock(&misses_lock);
}

static void drop_root_misses(struct notes *ns) {
  pthread_mutex_lock(&misses_lock);
  for (size_t i = 0; i < nmisses; i++) {
    add(ns, 0, FUSE_ROOT_ID, root_misses[i], strlen(root_misses[i]));
    free(root_misses[i]);
  }
  nmisses = 0;
  pthread_mutex_unlock(&misses_lock);
}

static struct dentry *dentry_of(struct node *parent, const char *name, size_t len) {
  struct node *c = node_child_locked(parent, name, len);
  if (!c) return NULL;
  for (struct dentry *d = c->aliases; d; d = d->alias_next)
    if (d->parent == parent && d->nlen == len && memcmp(d->name, name, len) == 0) return d;
  return NULL;
}

static void collect(const struct table *a, const struct table *b, const char *p, size_t plen, struct notes *ns) {
  static struct walk w; /* control thread only */
  w.a = a;
  w.b = b;
  w.ns = ns;
  pthread_mutex_lock(&g_nodes);
  struct node *cur = node_root();
  size_t i = 1;
  if (plen == 1) {
    /* '/' itself changed: what is known below it, its listing and attributes, its misses */
    strcpy(w.path, "/");
    visit(&w, cur, 1, 0);
    add(ns, FUSE_ROOT_ID, 0, NULL, 0);
    pthread_mutex_unlock(&g_nodes);
    drop_root_misses(ns);
    return;
  }
  while (i < plen) {
    const char *c = p + i;
    const char *e = memchr(c, '/', plen - i);
    size_t cl = e ? (size_t)(e - c) : plen - i;
    int last = !e;
    char sub[VPATH_MAX];
    memcpy(sub, p, i + cl);
    sub[i + cl] = 0;
    /* The parent's listing changes when the child's existence may: P itself, or a folder that
       only exists as a mapping's ancestor in one of the tables. */
    if (last) {
      add(ns, node_id(cur), 0, NULL, 0);
    } else if (is_mapping_ancestor(a, sub, i + cl) != is_mapping_ancestor(b, sub, i + cl)) {
      add(ns, node_id(cur), 0, NULL, 0);
      add(ns, 0, node_id(cur), c, cl);
    }
    struct dentry *d = dentry_of(cur, c, cl);
    if (!d) {
      add(ns, 0, node_id(cur), c, cl); /* drops a cached "no such file" */
      break;
    }
    if (last) {
      memcpy(w.path, p, plen);
      w.path[plen] = 0;
      if (!chain_same(a, b, p, plen)) {
        if (S_ISDIR(d->child->type)) {
          int out = gone(b, p, plen, d->child);
          add_dir(ns, node_id(cur), c, cl, node_id(d->child), out ? NULL : w.path);
          if (out) break;
        } else {
          add(ns, 0, node_id(cur), c, cl);
        }
      }
      visit(&w, d->child, plen, 0);
      break;
    }
    cur = d->child;
    i += cl + 1;
  }
  pthread_mutex_unlock(&g_nodes);
}

long rules_apply(struct table *nt) {
  struct table *old = table_install(nt);
  /* Requests that resolved with the old table reply before the kernel is told; a reply that
     raced with the notification would otherwise cache an old answer. */
  table_drain(old);
  struct paths ps = { 0 };
  changed_prefixes(old, nt, &ps);
  struct notes ns = { 0 };
  for (size_t i = 0; i < ps.n; i++) collect(old, nt, ps.v[i], ps.len[i], &ns);
  long sent = g.se ? send_all(&ns, nt) : 0;
  for (size_t i = 0; i < ns.n; i++) {
    free(ns.v[i].name);
    free(ns.v[i].again);
  }
  free(ns.v);
  free(ps.v);
  free(ps.len);
  table_put(old);
  return sent;
}

/* ---- notifications from workers, sent by a thread of their own ----------------- */

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct notes queue;

void notify_later_entry(fuse_ino_t parent, const char *name, size_t nlen) {
  pthread_mutex_lock(&q_lock);
  add(&queue, 0, parent, name, nlen);
  pthread_cond_signal(&q_cond);
  pthread_mutex_unlock(&q_lock);
}

void notify_later_inode(fuse_ino_t ino) {
  pthread_mutex_lock(&q_lock);
  add(&queue, ino, 0, NULL, 0);
  pthread_cond_signal(&q_cond);
  pthread_mutex_unlock(&q_lock);
}

static void *notifier(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&q_lock);
    while (queue.n == 0) pthread_cond_wait(&q_cond, &q_lock);
    struct notes mine = queue;
    memset(&queue, 0, sizeof queue);
    pthread_mutex_unlock(&q_lock);
    if (g.se) send_all(&mine, NULL);
    free(mine.v);
  }
  return NULL;
}

int notifier_start(void) { return start_thread(notifier, NULL); }
