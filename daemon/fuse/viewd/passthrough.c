/*
 * FUSE passthrough (kernel 6.9+): an open file's reads, writes and mmap go from the kernel
 * straight to the real file the server opened, without a READ or WRITE round trip and without
 * a second page cache. OPEN and RELEASE still come here, so the open-file list stays exact.
 *
 * libfuse 3.14 knows none of it: the INIT reply is completed on its way out (a custom io that
 * only forwards, plus the FUSE_PASSTHROUGH flag and a stack depth in the INIT reply), and OPEN
 * and CREATE are answered with fuse_reply_iov. Only a root server may register backing files.
 * The same INIT reply asks for FUSE_HANDLE_KILLPRIV_V2, for every server (killpriv.c).
 *
 * The kernel wants every open of one inode in one mode: all passthrough to one backing file, or
 * all through the page cache; a mix fails with EIO or EINVAL (only FOPEN_DIRECT_IO opens may sit
 * beside page-cache ones, and nothing beside passthrough ones). So each node keeps its backing id
 * while it has passthrough opens, and later opens of it share that id. A layer's lower file is
 * never passed through: a write open copies it up, a second real file behind the same node, while
 * a reader may still hold the first. Base and writable-sublayer files are final. The mode is
 * chosen by the first open of a node (see PT_READ_MIN) and kept while the node has open files.
 */
#include "viewd.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

/* Newer than the uapi headers of Debian 12. */
#define PT_INIT_FLAG2 (1u << (37 - 32)) /* FUSE_PASSTHROUGH, in flags2 */
#define KILLPRIV_V2 (1u << 28)          /* FUSE_HANDLE_KILLPRIV_V2, in flags (kernel 5.11+) */
#define PT_FOPEN (1u << 7)              /* FOPEN_PASSTHROUGH */
struct pt_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define PT_BACKING_OPEN _IOW(229, 1, struct pt_map)
#define PT_BACKING_CLOSE _IOW(229, 2, uint32_t)
struct pt_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };

/* Smaller files are read through the page cache: every passthrough read marks the atime stale,
   so the next stat of the file (cat's fstat after each open) costs a GETATTR round trip, more
   than the page cache's copy of a small file. Writes always pass through. */
#define PT_READ_MIN (1 << 20)

static int pt_wanted, pt_on, init_seen;
static pthread_mutex_t pt_lock = PTHREAD_MUTEX_INITIALIZER;

/* The first message out is the INIT reply (nothing else may be sent before it). */
static ssize_t io_writev(int fd, struct iovec *iov, int count, void *ud) {
  (void)ud;
  if (!__atomic_exchange_n(&init_seen, 1, __ATOMIC_ACQ_REL) && count >= 2 && iov[1].iov_len == 64) {
    unsigned char *o = iov[1].iov_base;
    uint32_t major, flags, flags2, depth = 1; /* backing files may not themselves be stacked */
    memcpy(&major, o, 4);
    /* libfuse 3.14 answers with minor 31; the kernel reads these flags whatever the minor. */
    if (major == 7) {
      memcpy(&flags, o + 12, 4); /* fuse_init_out: major, minor, max_readahead, flags */
      flags |= KILLPRIV_V2;
      memcpy(o + 12, &flags, 4);
      if (pt_wanted) {
        memcpy(&flags2, o + 32, 4); /* then flags2 and max_stack_depth */
        flags2 |= PT_INIT_FLAG2;
        memcpy(o + 32, &flags2, 4);
        memcpy(o + 36, &depth, 4);
        __atomic_store_n(&pt_on, 1, __ATOMIC_RELEASE);
      }
    }
  }
  return writev(fd, iov, count);
}

static ssize_t io_read(int fd, void *buf, size_t len, void *ud) {
  (void)ud;
  return read(fd, buf, len);
}

static ssize_t io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len, unsigned int flags, void *ud) {
  (void)ud;
  return splice(fdin, offin, fdout, offout, len, flags);
}

int pt_start(int wanted) {
  pt_wanted = wanted && g.root;
  static const struct fuse_custom_io io = { io_writev, io_read, io_splice, io_splice };
  return fuse_session_custom_io(g.se, &io, fuse_session_fd(g.se));
}

/* Which mode this open takes; the backing id for passthrough, else 0. */
static int choose(struct fh *h, struct fuse_file_info *fi) {
  if (!__atomic_load_n(&pt_on, __ATOMIC_ACQUIRE)) return 0;
  struct node *n = h->node;
  struct stat st;
  int id = 0;
  pthread_mutex_lock(&pt_lock);
  if (n->pt_users > 0) {
    /* O_DIRECT too: the backing file is opened with the caller's flags. The node stands for one
       real file; a path that holds another one (replaced behind the view, not yet invalidated)
       still reaches the node's own. */
    if (fstat(h->fd, &st) != 0 || st.st_dev != n->pt_dev || st.st_ino != n->pt_ino)
      vlog("passthrough: %s is another file than its node's; the node's is used", h->path);
    n->pt_users++;
    h->io = FH_BACKING;
    id = n->pt_id;
  } else if (fi->direct_io) {
    /* no io mode: sits beside page-cache opens */
  } else if (n->cached_users > 0 || h->lower || fstat(h->fd, &st) != 0 || (!h->writing && st.st_size < PT_READ_MIN)) {
    n->cached_users++;
    h->io = FH_CACHED;
  } else {
    struct pt_map map = { h->fd, 0, 0 };
    id = ioctl(fuse_session_fd(g.se), PT_BACKING_OPEN, &map);
    if (id > 0) {
      n->pt_id = id;
      n->pt_users = 1;
      n->pt_dev = st.st_dev;
      n->pt_ino = st.st_ino;
      h->io = FH_BACKING;
    } else {
      static int told;
      if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED)) vlog("passthrough: backing open: %s (page cache instead)", strerror(errno));
      id = 0; /* e.g. ELOOP for a file on a stacked file system: the page cache as before */
      n->cached_users++;
      h->io = FH_CACHED;
    }
  }
  if (h->io == FH_BACKING && h->writing) __atomic_add_fetch(&n->pt_writers, 1, __ATOMIC_RELEASE);
  if (h->io == FH_BACKING && h->foreign) __atomic_add_fetch(&n->pt_foreign_writers, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&pt_lock);
  return id;
}

void pt_release(struct fh *h) {
  if (h->io == FH_UNCOUNTED) return;
  struct node *n = h->node;
  pthread_mutex_lock(&pt_lock);
  if (h->io == FH_BACKING && h->writing) __atomic_sub_fetch(&n->pt_writers, 1, __ATOMIC_RELEASE);
  if (h->io == FH_BACKING && h->foreign) __atomic_sub_fetch(&n->pt_foreign_writers, 1, __ATOMIC_RELEASE);
  if (h->io == FH_CACHED) {
    n->cached_users--;
  } else if (--n->pt_users == 0) {
    uint32_t id = (uint32_t)n->pt_id;
    ioctl(fuse_session_fd(g.se), PT_BACKING_CLOSE, &id);
    n->pt_id = 0;
  }
  pthread_mutex_unlock(&pt_lock);
  h->io = FH_UNCOUNTED;
}

static void open_out(struct pt_open_out *o, const struct fuse_file_info *fi, int id) {
  memset(o, 0, sizeof *o);
  o->fh = fi->fh;
  if (id) {
    /* No FOPEN_KEEP_CACHE: pages cached by an earlier open through the page cache are stale. */
    o->open_flags = PT_FOPEN;
    o->backing_id = id;
  } else {
    if (fi->direct_io) o->open_flags |= FOPEN_DIRECT_IO;
    if (fi->keep_cache) o->open_flags |= FOPEN_KEEP_CACHE;
  }
}

int pt_reply_open(fuse_req_t req, struct fuse_file_info *fi, struct fh *h) {
  int id = choose(h, fi);
  if (!id) return fuse_reply_open(req, fi);
  struct pt_open_out o;
  open_out(&o, fi, id);
  struct iovec iov = { &o, sizeof o };
  return fuse_reply_iov(req, &iov, 1);
}

static void attr_out(struct fuse_attr *a, const struct stat *st) {
  a->ino = st->st_ino;
  a->mode = st->st_mode;
  a->nlink = (uint32_t)st->st_nlink;
  a->uid = st->st_uid;
  a->gid = st->st_gid;
  a->rdev = (uint32_t)st->st_rdev;
  a->size = (uint64_t)st->st_size;
  a->blksize = (uint32_t)st->st_blksize;
  a->blocks = (uint64_t)st->st_blocks;
  a->atime = (uint64_t)st->st_atim.tv_sec;
  a->mtime = (uint64_t)st->st_mtim.tv_sec;
  a->ctime = (uint64_t)st->st_ctim.tv_sec;
  a->atimensec = (uint32_t)st->st_atim.tv_nsec;
  a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
  a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
}

static void valid_out(double t, uint64_t *sec, uint32_t *nsec) {
  if (t < 0) t = 0;
  *sec = (uint64_t)t;
  double f = t - (double)*sec;
  *nsec = f >= 0.999999999 ? 999999999u : (uint32_t)(f * 1e9);
}

int pt_reply_create(fuse_req_t req, const struct fuse_entry_param *e, struct fuse_file_info *fi, struct fh *h) {
  int id = choose(h, fi);
  if (!id) return fuse_reply_create(req, e, fi);
  struct fuse_entry_out eo;
  memset(&eo, 0, sizeof eo);
  eo.nodeid = e->ino;
  eo.generation = e->generation;
  valid_out(e->entry_timeout, &eo.entry_valid, &eo.entry_valid_nsec);
  valid_out(e->attr_timeout, &eo.attr_valid, &eo.attr_valid_nsec);
  attr_out(&eo.attr, &e->attr);
  struct pt_open_out o;
  open_out(&o, fi, id);
  struct iovec iov[2] = { { &eo, sizeof eo }, { &o, sizeof o } };
  return fuse_reply_iov(req, iov, 2);
}
