/*
 * The data path, served in C with no JS round trip: fi->fh is the real fd
 * that JS returned from open/create, so reads hand libfuse that fd (it preads
 * or splices file -> pipe -> /dev/fuse, see init() in ops.c) and writes copy
 * the request's buffer into it (spliced from /dev/fuse when libfuse can).
 * flush has nothing to do; fsyncdir answers at once but must exist: unmount
 * sends one to wake a worker (mount.c), and an ENOSYS would make the kernel
 * stop sending them.
 */
#include "strata_fuse.h"

#include <fuse.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int op_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
                struct fuse_file_info *fi) {
  (void)path;
  struct fuse_bufvec *src = malloc(sizeof *src);
  if (!src) return -ENOMEM;
  *src = FUSE_BUFVEC_INIT(size);
  src->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  src->buf[0].fd = (int)fi->fh;
  src->buf[0].pos = off;
  *bufp = src; /* libfuse preads (or splices) from the fd and frees src */
  return 0;
}

int op_write_buf(const char *path, struct fuse_bufvec *buf, off_t off, struct fuse_file_info *fi) {
  (void)path;
  struct fuse_bufvec dst = FUSE_BUFVEC_INIT(fuse_buf_size(buf));
  dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  dst.buf[0].fd = (int)fi->fh;
  dst.buf[0].pos = off;
  return (int)fuse_buf_copy(&dst, buf, FUSE_BUF_SPLICE_NONBLOCK);
}

int op_flush(const char *path, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  return 0;
}

int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  int res = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
  return res == -1 ? -errno : 0;
}

int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path; (void)datasync; (void)fi;
  return 0;
}
