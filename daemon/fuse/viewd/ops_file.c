/*
 * Open files: open (copy-up first when writing under a mapping), data through splice on the real
 * fd, release, and the calls that act on an open file (fsync, fallocate, copy_file_range, lseek).
 * Locks are left to the kernel (no getlk/setlk/flock): every process reaches the view through
 * this one kernel, which keeps POSIX and flock locks for the mount itself.
 */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t fh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fh *all_files;

static struct fh *fh_of(struct fuse_file_info *fi) { return (struct fh *)(uintptr_t)fi->fh; }

struct fh *fh_new(int fd, struct node *n, fuse_req_t req, const char *layer, const char *path, int writing) {
  struct fh *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->fd = fd;
  h->node = n;
  h->pid = fuse_req_ctx(req)->pid;
  h->writing = writing;
  h->foreign = writing && writer_foreign(req, fd);
  if (layer) h->layer = strdup(layer);
  h->path = strdup(path);
  node_attach_fh(n, h);
  pthread_mutex_lock(&fh_lock);
  h->next = all_files;
  if (all_files) all_files->prev = h;
  all_files = h;
  pthread_mutex_unlock(&fh_lock);
  return h;
}

static void fh_free(struct fh *h) {
  pthread_mutex_lock(&fh_lock);
  if (h->prev) h->prev->next = h->next;
  else all_files = h->next;
  if (h->next) h->next->prev = h->prev;
  pthread_mutex_unlock(&fh_lock);
  if (h->writing) {
    struct stat st;
    watch_self_closed(h->node, fstat(h->fd, &st) == 0 ? &st : NULL);
  }
  pt_release(h);
  node_detach_fh(h->node, h);
  close(h->fd);
  free(h->layer);
  free(h->path);
  free(h);
}

/* "N\n" then "PID LAYER-OR-- PATH\n" per open file (paths percent-encoded). */
void open_files_text(char **out, size_t *len) {
  size_t cap = 256, n = 0;
  char *s = malloc(cap);
  int count = 0;
  pthread_mutex_lock(&fh_lock);
  for (struct fh *h = all_files; h; h = h->next) count++;
  n = (size_t)snprintf(s, cap, "ok %d\n", count);
  for (struct fh *h = all_files; h && s; h = h->next) {
    char *enc = pct_encode_dup(h->path, strlen(h->path));
    size_t need = n + 64 + (h->layer ? strlen(h->layer) : 1) + (enc ? strlen(enc) : 0);
    if (need > cap) {
      while (cap < need) cap *= 2;
      char *ns = realloc(s, cap);
      if (!ns) { free(s); s = NULL; free(enc); break; }
      s = ns;
    }
    n += (size_t)snprintf(s + n, cap - n, "%d %s %s\n", (int)h->pid, h->layer ? h->layer : "-", enc ? enc : "");
    free(enc);
  }
  pthread_mutex_unlock(&fh_lock);
  *out = s;
  *len = s ? n : 0;
}

static void vd_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct table *t = table_get();
  struct node *n = node_use(ino);
  char path[VPATH_MAX];
  struct found f;
  int plen = node_path(n, path, sizeof path);
  int r = plen < 0 ? plen : 0;
  int writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  if (!r) r = writing ? make_writable(t, path, (size_t)plen, &f, n) : find_path(t, path, (size_t)plen, &f);
  if (!r && f.synthetic) r = -EISDIR;
  int fd = -1;
  if (!r) {
    /* O_DIRECT stays with the kernel (direct_io below): the lower file gets aligned-free I/O. */
    int flags = fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);
    struct ident id;
    ident_enter(req, &id);
    fd = openat(f.dirfd, f.rel, flags | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) r = -errno;
    ident_leave(&id);
  }
  struct fh *h = NULL;
  if (!r && !(h = fh_new(fd, n, req, f.src.kind == SRC_BASE ? NULL : t->layers[f.src.layer].name, path, writing))) {
    close(fd);
    r = -ENOMEM;
  }
  if (!r && writing) kill_sxid(req, n, fd);
  table_put(t);
  node_unuse(n);
  if (r) {
    fuse_reply_err(req, -r);
    return;
  }
  h->lower = f.src.kind == SRC_FILES;
  fi->fh = (uintptr_t)h;
  fi->keep_cache = 1;
  if (fi->flags & O_DIRECT) fi->direct_io = 1;
  if (pt_reply_open(req, fi, h) == -ENOENT) fh_free(h); /* the caller was interrupted */
}

/* create() opens through here too. */
int reply_created(fuse_req_t req, struct fuse_entry_param *e, struct fuse_file_info *fi, struct fh *h) {
  fi->fh = (uintptr_t)h;
  fi->keep_cache = 1;
  if (fi->flags & O_DIRECT) fi->direct_io = 1;
  int r = pt_reply_create(req, e, fi, h);
  if (r == -ENOENT) fh_free(h);
  return r;
}

static void vd_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino;
  struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  buf.buf[0].fd = fh_of(fi)->fd;
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void vd_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off, struct fuse_file_info *fi) {
  (void)ino;
  struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
  out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  out.buf[0].fd = fh_of(fi)->fd;
  out.buf[0].pos = off;
  kill_sxid(req, fh_of(fi)->node, fh_of(fi)->fd);
  ssize_t n = fuse_buf_copy(&out, in, 0);
  __atomic_add_fetch(&g.writes, 1, __ATOMIC_RELAXED);
  if (n < 0) fuse_reply_err(req, (int)-n);
  else fuse_reply_write(req, (size_t)n);
}

static void vd_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  fh_free(fh_of(fi));
  fuse_reply_err(req, 0);
}

/* Nothing to do on close (no write cache here, locks stay in the kernel): ENOSYS once, and the
   kernel sends no FLUSH again, one round trip less per close. */
static void vd_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  (void)fi;
  fuse_reply_err(req, ENOSYS);
}

static void vd_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)ino;
  int fd = fh_of(fi)->fd;
  int r = datasync ? fdatasync(fd) : fsync(fd);
  fuse_reply_err(req, r ? errno : 0);
}

static void vd_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  (void)ino;
  kill_sxid(req, fh_of(fi)->node, fh_of(fi)->fd);
  int r = fallocate(fh_of(fi)->fd, mode, off, len);
  fuse_reply_err(req, r ? errno : 0);
}

static void vd_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
                               fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags) {
  (void)ino_in;
  (void)ino_out;
  kill_sxid(req, fh_of(fi_out)->node, fh_of(fi_out)->fd);
  ssize_t n = copy_file_range(fh_of(fi_in)->fd, &off_in, fh_of(fi_out)->fd, &off_out, len, (unsigned)flags);
  if (n < 0) fuse_reply_err(req, errno);
  else fuse_reply_write(req, (size_t)n);
}

static void vd_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  (void)ino;
  off_t r = lseek(fh_of(fi)->fd, off, whence);
  if (r < 0) fuse_reply_err(req, errno);
  else fuse_reply_lseek(req, r);
}

void file_ops(struct fuse_lowlevel_ops *o) {
  o->open = vd_open;
  o->read = vd_read;
  o->write_buf = vd_write_buf;
  o->release = vd_release;
  o->flush = vd_flush;
  o->fsync = vd_fsync;
  o->fallocate = vd_fallocate;
  o->copy_file_range = vd_copy_file_range;
  o->lseek = vd_lseek;
}

int fh_fd(struct fuse_file_info *fi) { return fi && fi->fh ? fh_of(fi)->fd : -1; }
