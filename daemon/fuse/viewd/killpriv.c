/*
 * Set-id bits on write, with FUSE_HANDLE_KILLPRIV_V2 (passthrough.c asks for it). Without it the
 * kernel asks for security.capability before every write(2) (a GETXATTR round trip per call:
 * 25,600 for a 100 MiB file written 4 KiB at a time) and clears set-id bits itself. With it the
 * kernel marks a checked inode (S_NOSEC) and leaves the clearing to the server:
 *
 * - security.capability: the real file system drops it on any write, truncate or chown of the
 *   real file, whoever writes, so nothing is left to do here.
 * - set-uid, and set-gid on a group-executable file, for a writer without CAP_FSETID: the real
 *   file system clears them only when the writer lacks CAP_FSETID, and the server's writes (and
 *   the kernel's passthrough writes) run with the server's credentials, root's. So the server
 *   clears them when such a caller opens for writing (a passthrough write never reaches the
 *   server; docs/limits.md: even when no write follows), and before its WRITE, fallocate or
 *   copy_file_range (page-cache opens). Truncation and chown run as the caller and are cleared
 *   by the real file system.
 * - A chmod adding set-id bits while a foreign caller (not root, nor the owner in the file's
 *   group) holds a passthrough write open: its next write could not clear them, so they are not
 *   set. The owner could set them again himself, so his own opens do not count.
 *
 * "Without CAP_FSETID" is read as "not uid 0": libfuse 3.14 does not pass on the kernel's
 * FUSE_WRITE_KILL_SUIDGID. A root process that dropped CAP_FSETID keeps the bits (limits.md).
 */
#include "viewd.h"

#include <errno.h>
#include <sys/stat.h>

static mode_t sxid_bits(mode_t m) {
  mode_t k = m & S_ISUID;
  if ((m & S_ISGID) && (m & S_IXGRP)) k |= S_ISGID;
  return k;
}

int kill_sxid(fuse_req_t req, struct node *n, int fd) {
  if (fuse_req_ctx(req)->uid == 0) return 0;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  mode_t k = S_ISREG(st.st_mode) ? sxid_bits(st.st_mode) : 0;
  if (!k) return 0;
  /* Our own chmod: the base watcher must not invalidate it a second time (watch.c). */
  watch_self_attr_begin(n);
  int r = fchmod(fd, st.st_mode & 07777 & ~k) != 0 ? -errno : 1;
  watch_self_attr_end(n, r == 1 && fstat(fd, &st) == 0 ? &st : NULL);
  if (r == 1) notify_later_inode(node_id(n)); /* the kernel's cached mode; sent once this request is answered */
  return r;
}

int writer_foreign(fuse_req_t req, int fd) {
  const struct fuse_ctx *c = fuse_req_ctx(req);
  struct stat st;
  if (c->uid == 0) return 0;
  return fstat(fd, &st) != 0 || c->uid != st.st_uid || c->gid != st.st_gid;
}

mode_t mode_allowed(struct node *n, mode_t m) {
  mode_t k = sxid_bits(m);
  if (k && __atomic_load_n(&n->pt_foreign_writers, __ATOMIC_ACQUIRE) > 0) {
    vlog("chmod %o: set-id bits dropped while another user writes the file through passthrough", (unsigned)m);
    return m & ~k;
  }
  return m;
}
