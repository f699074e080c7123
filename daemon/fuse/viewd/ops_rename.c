/*
 * rename, with RENAME_NOREPLACE and RENAME_EXCHANGE. Both names must have the same owner (the
 * base, or one layer's writable sublayer). A folder with content below the writable sublayer
 * cannot move in one step: EXDEV, and mv falls back to copy and delete, as with overlayfs.
 */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct side {
  char path[VPATH_MAX];
  size_t plen;
  struct resolution r;
  int owner;
  struct found f;
  int exists, isdir, top; /* top: already in the owner's writable sublayer */
  char orel[VPATH_MAX];
  int orlen;
};

static int side_of(const struct table *t, struct node *parent, const char *name, struct side *s) {
  if (strlen(name) > NAME_MAX) return -ENAMETOOLONG;
  int pl = child_path(parent, name, s->path, sizeof s->path);
  if (pl < 0) return pl;
  s->plen = (size_t)pl;
  resolve(t, s->path, s->plen, &s->r);
  s->owner = s->r.nb ? s->r.b[0].layer : -1;
  int r = find_path(t, s->path, s->plen, &s->f);
  if (r && r != -ENOENT) return r;
  s->exists = r == 0;
  s->isdir = s->exists && (s->f.synthetic || S_ISDIR(s->f.st.st_mode));
  s->top = s->exists && s->owner >= 0 && s->f.src.kind == SRC_WRITABLE && s->f.src.layer == s->owner;
  s->orlen = 0;
  s->orel[0] = 0;
  if (s->owner >= 0) {
    s->orlen = branch_rel(t, &s->r.b[0], s->path, s->plen, s->orel, sizeof s->orel);
    if (s->orlen < 0) return s->orlen;
    if (s->orlen == 0) return -EBUSY; /* a sublayer's root does not move */
  }
  return 0;
}

static int checks(const struct table *t, struct side *a, struct side *b, unsigned flags) {
  if (a->owner != b->owner || a->r.hidden || b->r.hidden) return -EXDEV;
  if (!a->exists) return -ENOENT;
  if (a->f.synthetic || (b->exists && b->f.synthetic)) return -EXDEV;
  if (flags & RENAME_EXCHANGE) return b->exists ? 0 : -ENOENT;
  if (!b->exists) return 0;
  if (flags & RENAME_NOREPLACE) return -EEXIST;
  if (b->isdir && !a->isdir) return -EISDIR;
  if (!b->isdir && a->isdir) return -ENOTDIR;
  if (b->isdir) {
    int e = dir_is_empty(t, b->path, b->plen);
    if (e < 0) return e;
    if (!e) return -ENOTEMPTY;
  }
  return 0;
}

/* Brings one side into the owner's writable sublayer (a folder only when nothing lies below). */
static int lift(const struct table *t, struct side *s) {
  if (s->isdir && (!s->top || exists_below_owner(t, s->path, s->plen, 0))) return -EXDEV;
  if (s->top) return 0;
  int r = copy_up(t, &s->r.b[0], s->path, s->plen, &s->f);
  if (r == 0) r = find_path(t, s->path, s->plen, &s->f);
  return r;
}

static int do_rename(fuse_req_t req, const struct table *t, struct side *a, struct side *b, unsigned flags) {
  int r = checks(t, a, b, flags);
  if (r) return r;
  struct ident id;
  if (a->owner < 0) {
    ident_enter(req, &id);
    r = renameat2(a->f.dirfd, a->f.rel, g.base_fd, b->path + 1, flags) ? -errno : 0;
    ident_leave(&id);
    return r;
  }
  const struct rlayer *l = &t->layers[a->owner];
  r = lift(t, a);
  if (!r && (flags & RENAME_EXCHANGE)) r = lift(t, b);
  if (r) return r;
  r = ensure_writable_parents(t, &b->r.b[0], b->path, b->plen);
  if (r) return r;
  int below_a = exists_below_owner(t, a->path, a->plen, 1);
  int below_b = b->exists && exists_below_owner(t, b->path, b->plen, 1);
  if (!(flags & RENAME_EXCHANGE) && b->exists && b->isdir && b->top) {
    /* Empty in the view; the first view's marker files may remain on disk. */
    r = remove_tree(l->writable_fd, b->orel);
    if (r) return r;
  }
  ident_enter(req, &id);
  r = renameat2(l->writable_fd, a->orel, l->writable_fd, b->orel, flags) ? -errno : 0;
  ident_leave(&id);
  if (r || (flags & RENAME_EXCHANGE) || !l->marks) return r;
  struct marks *m = l->marks;
  int was_opaque = a->isdir && marks_is_opaque(m, a->orel, (size_t)a->orlen);
  int had_wh = marks_del_whiteout(m, b->orel, (size_t)b->orlen);
  if (a->isdir) {
    marks_drop_below(m, b->orel, (size_t)b->orlen);
    marks_drop_below(m, a->orel, (size_t)a->orlen);
    if (was_opaque || had_wh || below_b) marks_set_opaque(m, b->orel, (size_t)b->orlen);
  }
  if (below_a) marks_add_whiteout(m, a->orel, (size_t)a->orlen);
  return 0;
}

static void vd_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
  if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  struct table *t = table_get();
  struct node *p1 = node_use(parent), *p2 = node_use(newparent);
  static __thread struct side a, b; /* two PATH_MAX-heavy records: off the stack */
  pthread_mutex_lock(&g.ns_lock);
  int r = side_of(t, p1, name, &a);
  if (!r) r = side_of(t, p2, newname, &b);
  if (!r && a.owner < 0) {
    watch_self(parent, name);
    watch_self(newparent, newname);
  }
  if (!r) r = do_rename(req, t, &a, &b, flags);
  pthread_mutex_unlock(&g.ns_lock);
  if (!r) node_rename(p1, name, p2, newname, (flags & RENAME_EXCHANGE) != 0);
  node_unuse(p1);
  node_unuse(p2);
  table_put(t);
  fuse_reply_err(req, -r);
}

void rename_ops(struct fuse_lowlevel_ops *o) { o->rename = vd_rename; }
