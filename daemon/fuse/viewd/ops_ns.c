/*
 * The namespace: lookup and forget, and the calls that add or remove names. A new name under a
 * mapping goes into the owning layer's writable sublayer (its folders copied up first); removing
 * a name that lower places still hold leaves a whiteout. Creating runs as the caller.
 */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static void vd_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct table *t = table_get();
  struct node *pn = node_use(parent);
  struct fuse_entry_param e;
  int r = do_lookup(t, pn, name, &e);
  node_unuse(pn);
  table_put(t);
  if (r == -ENOENT) {
    if (parent == FUSE_ROOT_ID) note_root_miss(name);
    memset(&e, 0, sizeof e); /* a negative entry, cached like the others */
    e.entry_timeout = g.timeout;
    fuse_reply_entry(req, &e);
  } else if (r) {
    fuse_reply_err(req, -r);
  } else if (fuse_reply_entry(req, &e) == -ENOENT) {
    node_forget(e.ino, 1);
  }
}

static void vd_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  node_forget(ino, nlookup);
  fuse_reply_none(req);
}

static void vd_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++) node_forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

/* ---- where a new name goes -------------------------------------------------- */

int exists_below_owner(const struct table *t, const char *p, size_t plen, int raw) {
  struct resolution r;
  struct source src[MAX_SOURCES];
  resolve(t, p, plen, &r);
  if (r.nb == 0) return 0;
  int n = 0;
  if (raw) {
    for (int i = 0; i < r.nb; i++) {
      src[n++] = (struct source){ SRC_WRITABLE, r.b[i].layer, r.b[i].map };
      src[n++] = (struct source){ SRC_FILES, r.b[i].layer, r.b[i].map };
    }
    if (r.base) src[n++] = (struct source){ SRC_BASE, -1, -1 };
  } else {
    n = sources_for(t, &r, p, plen, src);
  }
  char rel[VPATH_MAX];
  struct stat st;
  for (int i = 0; i < n; i++) {
    if (src[i].kind == SRC_WRITABLE && src[i].layer == r.b[0].layer) continue;
    int fd = source_at(t, &src[i], p, plen, rel, sizeof rel);
    if (fd >= 0 && fstatat(fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0) return 1;
  }
  return 0;
}

/* Fills tg for parent/name; with g.ns_lock held. 0 or -errno (-EEXIST when it exists and
   must_be_new). */
int target_for(const struct table *t, struct node *parent, const char *name, struct target *tg, int must_be_new) {
  if (strlen(name) > NAME_MAX) return -ENAMETOOLONG;
  int plen = child_path(parent, name, tg->path, sizeof tg->path);
  if (plen < 0) return plen;
  tg->plen = (size_t)plen;
  resolve(t, tg->path, tg->plen, &tg->r);
  if (tg->r.hidden) return -EACCES;
  char ppath[VPATH_MAX];
  struct found pf;
  int pl = node_path(parent, ppath, sizeof ppath);
  int r = pl < 0 ? pl : find_path(t, ppath, (size_t)pl, &pf);
  if (r) return r;
  if (!S_ISDIR(pf.st.st_mode)) return -ENOTDIR;
  if (must_be_new) {
    struct found f;
    r = find_path(t, tg->path, tg->plen, &f);
    if (r == 0) return -EEXIST;
    if (r != -ENOENT) return r;
  }
  if (tg->r.nb == 0) {
    if (pf.synthetic) return -EROFS; /* nothing real beneath a folder that only leads to a mapping */
    watch_self(node_id(parent), name);
    tg->owner = -1;
    tg->dirfd = g.base_fd;
    memcpy(tg->rel, tg->path + 1, tg->plen);
    tg->orlen = 0;
    return 0;
  }
  tg->owner = tg->r.b[0].layer;
  int rl = branch_rel(t, &tg->r.b[0], tg->path, tg->plen, tg->rel, sizeof tg->rel);
  if (rl <= 0) return rl < 0 ? rl : -EBUSY; /* '' would be the sublayer's root */
  tg->orlen = (size_t)rl;
  tg->dirfd = t->layers[tg->owner].writable_fd;
  return ensure_writable_parents(t, &tg->r.b[0], tg->path, tg->plen);
}

/* After a name was made under a mapping: it is no longer deleted; a folder recreated over a
   deleted one hides what lower places hold there. */
void target_made(const struct table *t, const struct target *tg, int is_dir) {
  if (tg->owner < 0) return;
  struct marks *m = t->layers[tg->owner].marks;
  if (m && marks_del_whiteout(m, tg->rel, tg->orlen) && is_dir) marks_set_opaque(m, tg->rel, tg->orlen);
}

/* ---- create, mknod, mkdir, symlink, link --------------------------------------- */

static void reply_new(fuse_req_t req, const struct table *t, struct node *pn, const char *name) {
  struct fuse_entry_param e;
  int r = do_lookup(t, pn, name, &e);
  if (r) fuse_reply_err(req, -r);
  else if (fuse_reply_entry(req, &e) == -ENOENT) node_forget(e.ino, 1);
}

enum { MK_NOD, MK_DIR, MK_LNK };

static void make(fuse_req_t req, fuse_ino_t parent, const char *name, int kind, mode_t mode, dev_t rdev, const char *link) {
  struct table *t = table_get();
  struct node *pn = node_use(parent);
  struct target tg;
  pthread_mutex_lock(&g.ns_lock);
  int r = target_for(t, pn, name, &tg, 1);
  if (!r) {
    struct ident id;
    ident_enter(req, &id);
    if (kind == MK_DIR) r = mkdirat(tg.dirfd, tg.rel, mode);
    else if (kind == MK_LNK) r = symlinkat(link, tg.dirfd, tg.rel);
    else r = mknodat(tg.dirfd, tg.rel, mode, rdev);
    r = r ? -errno : 0;
    ident_leave(&id);
    if (!r) target_made(t, &tg, kind == MK_DIR);
  }
  pthread_mutex_unlock(&g.ns_lock);
  if (r) fuse_reply_err(req, -r);
  else reply_new(req, t, pn, name);
  node_unuse(pn);
  table_put(t);
}

static void vd_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  make(req, parent, name, MK_NOD, mode, rdev, NULL);
}

static void vd_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  make(req, parent, name, MK_DIR, mode, 0, NULL);
}

static void vd_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  make(req, parent, name, MK_LNK, 0, 0, link);
}

static void vd_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  struct table *t = table_get();
  struct node *pn = node_use(parent);
  struct target tg;
  int fd = -1;
  int flags = (fi->flags & ~(O_DIRECT | O_NOCTTY)) | O_CLOEXEC | O_NOFOLLOW;
  pthread_mutex_lock(&g.ns_lock);
  int r = target_for(t, pn, name, &tg, 1);
  struct found f;
  const char *layer = NULL;
  if (r == -EEXIST && !(fi->flags & O_EXCL)) {
    /* It appeared since the kernel's lookup: open what is there, as open() would. */
    int writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
    r = writing ? make_writable(t, tg.path, tg.plen, &f, NULL) : find_path(t, tg.path, tg.plen, &f);
    if (!r) {
      struct ident id;
      ident_enter(req, &id);
      fd = openat(f.dirfd, f.rel, flags & ~O_CREAT);
      r = fd < 0 ? -errno : 0;
      ident_leave(&id);
      if (f.src.kind != SRC_BASE) layer = t->layers[f.src.layer].name;
    }
  } else if (!r) {
    struct ident id;
    ident_enter(req, &id);
    fd = openat(tg.dirfd, tg.rel, flags | O_CREAT, mode);
    r = fd < 0 ? -errno : 0;
    ident_leave(&id);
    if (!r) target_made(t, &tg, 0);
    if (tg.owner >= 0) layer = t->layers[tg.owner].name;
  }
  pthread_mutex_unlock(&g.ns_lock);
  struct fuse_entry_param e;
  if (!r) r = do_lookup(t, pn, name, &e);
  struct fh *h = NULL;
  if (!r) {
    h = fh_new(fd, (struct node *)(uintptr_t)e.ino, req, layer, tg.path, (fi->flags & O_ACCMODE) != O_RDONLY);
    if (!h) {
      node_forget(e.ino, 1);
      r = -ENOMEM;
    }
  }
  node_unuse(pn);
  table_put(t);
  if (r) {
    if (fd >= 0) close(fd);
    fuse_reply_err(req, -r);
  } else if (reply_created(req, &e, fi, h) == -ENOENT) {
    node_forget(e.ino, 1);
  }
}

static void vd_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  struct table *t = table_get();
  struct node *n = node_use(ino), *pn = node_use(newparent);
  struct target tg;
  char spath[VPATH_MAX];
  struct found sf;
  pthread_mutex_lock(&g.ns_lock);
  int r = target_for(t, pn, newname, &tg, 1);
  int sl = r ? 0 : node_path(n, spath, sizeof spath);
  if (sl < 0) r = sl;
  if (!r) {
    struct resolution sr;
    resolve(t, spath, (size_t)sl, &sr);
    int sowner = sr.nb ? sr.b[0].layer : -1;
    if (sowner != tg.owner) r = -EXDEV;
  }
  if (!r) r = make_writable(t, spath, (size_t)sl, &sf, n);
  if (!r) {
    struct ident id;
    ident_enter(req, &id);
    r = linkat(sf.dirfd, sf.rel, tg.dirfd, tg.rel, 0) ? -errno : 0;
    ident_leave(&id);
    if (!r) target_made(t, &tg, 0);
  }
  pthread_mutex_unlock(&g.ns_lock);
  if (r) fuse_reply_err(req, -r);
  else reply_new(req, t, pn, newname);
  node_unuse(n);
  node_unuse(pn);
  table_put(t);
}

/* ---- unlink, rmdir ------------------------------------------------------------ */

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int dir) {
  struct table *t = table_get();
  struct node *pn = node_use(parent);
  char path[VPATH_MAX];
  struct found f;
  pthread_mutex_lock(&g.ns_lock);
  int plen = child_path(pn, name, path, sizeof path);
  int r = plen < 0 ? plen : find_path(t, path, (size_t)plen, &f);
  int isdir = !r && (f.synthetic || S_ISDIR(f.st.st_mode));
  if (!r && dir && !isdir) r = -ENOTDIR;
  if (!r && !dir && isdir) r = -EISDIR;
  if (!r && dir) {
    int empty = dir_is_empty(t, path, (size_t)plen);
    r = empty < 0 ? empty : empty ? 0 : -ENOTEMPTY;
  }
  struct resolution res;
  if (!r) resolve(t, path, (size_t)plen, &res);
  if (!r && res.nb == 0) {
    if (f.synthetic) {
      r = -EBUSY;
    } else {
      struct ident id;
      watch_self(parent, name);
      ident_enter(req, &id);
      r = unlinkat(f.dirfd, f.rel, dir ? AT_REMOVEDIR : 0) ? -errno : 0;
      ident_leave(&id);
    }
  } else if (!r) {
    const struct rlayer *l = &t->layers[res.b[0].layer];
    char orel[VPATH_MAX];
    int ol = branch_rel(t, &res.b[0], path, (size_t)plen, orel, sizeof orel);
    if (ol < 0) r = ol;
    int top = f.src.kind == SRC_WRITABLE && f.src.layer == res.b[0].layer;
    if (!r && top && dir) {
      /* Empty in the view; on disk it may still hold the first view's marker files. */
      r = ol ? remove_tree(l->writable_fd, orel) : 0;
    } else if (!r && top) {
      struct ident id;
      ident_enter(req, &id);
      r = unlinkat(l->writable_fd, orel, 0) ? -errno : 0;
      ident_leave(&id);
    }
    if (!r && dir && l->marks) marks_drop_below(l->marks, orel, (size_t)ol);
    if (!r && l->marks && exists_below_owner(t, path, (size_t)plen, 1)) r = marks_add_whiteout(l->marks, orel, (size_t)ol);
  }
  pthread_mutex_unlock(&g.ns_lock);
  if (!r) node_unname(pn, name, strlen(name));
  node_unuse(pn);
  table_put(t);
  fuse_reply_err(req, -r);
}

static void vd_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { remove_name(req, parent, name, 0); }

static void vd_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) { remove_name(req, parent, name, 1); }

void ns_ops(struct fuse_lowlevel_ops *o) {
  o->lookup = vd_lookup;
  o->forget = vd_forget;
  o->forget_multi = vd_forget_multi;
  o->mknod = vd_mknod;
  o->mkdir = vd_mkdir;
  o->symlink = vd_symlink;
  o->create = vd_create;
  o->link = vd_link;
  o->unlink = vd_unlink;
  o->rmdir = vd_rmdir;
}
