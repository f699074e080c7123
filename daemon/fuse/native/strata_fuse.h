/*
 * strata_fuse: a small N-API binding of the libfuse 3 high-level API.
 * This header is internal to the addon: the mount context, the request that
 * carries one FUSE call to JavaScript, and what the files share.
 *
 *   addon.c       the N-API module: mount(), invalidate(), unmount(), their async work
 *   napi_util.c   reading and making JS values
 *   request.c     FUSE-thread side of a call into JS: queue it, wait for the reply
 *   jsbridge.c    JS-thread side: call the handler, parse reply(), report the loop's end
 *   ops.c         the libfuse operations that go through JS, and the operations table
 *   fastpath.c    read/write/fsync served in C on the fd JS opened
 *   invalidate.c  dropping kernel caches for paths
 *   mount.c       mount, the loop thread, unmount, the context's lifetime
 *   mountsys.c    what libfuse does not do: mountinfo, lazy detach, the fusermount3 helper
 *
 * Threading model
 *  - mount() (JS main thread) creates the fuse object, mounts it and starts a
 *    "loop thread" that runs fuse_loop_mt().  libfuse's worker threads call the
 *    ops.
 *  - read/write/flush/fsync/fsyncdir are served in C on the real fd that JS
 *    returned from open/create (fi->fh).  Every other op becomes a heap
 *    request that is queued to the JS thread through a threadsafe function;
 *    the worker waits (with a timeout) for the JS `reply` callback.
 *  - The JS thread never waits for a FUSE thread: invalidate() and unmount()
 *    do their blocking parts in napi async work and resolve Promises.
 *  - When the loop ends (unmount() or an external umount), the loop thread
 *    destroys the fuse object and posts an EXIT message; the JS thread then
 *    joins it, calls onExit (only for endings not asked for by unmount()) and
 *    releases the threadsafe function (which kept the process alive).
 */
#ifndef STRATA_FUSE_H
#define STRATA_FUSE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fuse_opt.h>
#include <node_api.h>

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct fuse;
struct fuse_session;
struct fuse_operations;
struct fuse_file_info;
struct fuse_bufvec;

/* Nothing but the module entry point leaves the .node file: hidden symbols
   bind inside it and cannot be interposed by same-named ones in node. */
#pragma GCC visibility push(hidden)

#define NAPI_OK(call) ((call) == napi_ok)

/* ------------------------------------------------------------------------ */
/* Mount context                                                             */

/* nullpath_ok hides the path from readdir: opendir keeps a copy in fi->fh.
   Handles still open when the loop ends (no releasedir comes) are freed then. */
typedef struct dirh {
  struct dirh *prev, *next;
  char path[];
} dirh;

typedef struct mount_ctx {
  int refs; /* external handle + tsfn + loop thread (+ each async work) */
  napi_env env;
  struct fuse *fuse;
  struct fuse_session *se;
  char *mountpoint;
  pthread_t loop_thread;
  int loop_started;

  /* options */
  double entry_timeout, attr_timeout, negative_timeout;
  int kernel_cache, auto_cache, use_ino, max_threads;
  int request_timeout_ms;

  /* the threadsafe function; calls happen under tsfn_lock (read) */
  pthread_rwlock_t tsfn_lock;
  napi_threadsafe_function tsfn;
  int tsfn_alive;

  /* fuse object lifetime vs. invalidate(): destroy takes it for writing */
  pthread_rwlock_t fuse_lock;

  /* loop state, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int unmount_started;
  int loop_done;
  int loop_error;
  int exit_handled;
  int comm_fd; /* fusermount3 auto_unmount control socket, or -1 */
  pid_t helper_pid; /* that fusermount3 process (our child; reaped after unmount), or 0 */
  int have_dev; /* device of our mount, from /proc/self/mountinfo */
  unsigned dev_major, dev_minor;

  struct dirh *dirs; /* open directory handles, under mu */

  /* JS side (main thread only) */
  napi_ref handlers_ref;
  napi_ref on_exit_ref;
} mount_ctx;

/* Set once at module load (addon.c). */
extern pthread_condattr_t g_condattr; /* CLOCK_MONOTONIC, for every timed wait */
extern uint64_t g_fd_limit;           /* fi->fh values below it are fds from JS */

/* ------------------------------------------------------------------------ */
/* Requests to JS                                                            */

enum op {
  OP_GETATTR, OP_ACCESS, OP_READDIR, OP_OPEN, OP_CREATE, OP_RELEASE, OP_TRUNCATE,
  OP_UNLINK, OP_RMDIR, OP_MKDIR, OP_RENAME, OP_SYMLINK, OP_READLINK, OP_LINK,
  OP_CHMOD, OP_CHOWN, OP_UTIMENS, OP_STATFS, OP_EXIT
};

typedef struct sreq {
  int op;
  int refs; /* FUSE thread + JS side */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int timed_out; /* the FUSE thread gave up waiting */
  int replied;   /* JS called reply at least once */
  int result; /* 0 or -errno */
  char *path, *path2;
  int64_t a[6];
  /* results */
  struct stat st;
  struct statvfs sv;
  int64_t fd;
  char *str;
  char **names;
  uint32_t *modes;
  uint32_t n_names;
} sreq;

/* request.c */
void free_names(char **names, uint32_t n);
sreq *req_new(int op, const char *path, const char *path2);
void req_unref(sreq *r);
void req_fail(sreq *r, int err);
int req_post(mount_ctx *ctx, sreq *r);
int req_call(mount_ctx *ctx, sreq *r);

/* jsbridge.c (JS thread) */
void call_js(napi_env env, napi_value js_cb, void *context, void *data);
void tsfn_finalize(napi_env env, void *data, void *hint);

/* napi_util.c (JS thread) */
void throw_error(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void clear_exception(napi_env env);
int value_type(napi_env env, napi_value v);
int get_i64(napi_env env, napi_value v, int64_t *out);
char *get_string(napi_env env, napi_value v);
napi_value get_prop(napi_env env, napi_value obj, const char *name);
int opt_bool(napi_env env, napi_value obj, const char *name, int def);
double opt_double(napi_env env, napi_value obj, const char *name, double def);
napi_value make_i64(napi_env env, int64_t v);
napi_value make_str_or_null(napi_env env, const char *s);
int parse_names(napi_env env, napi_value names_v, napi_value modes_v, char ***names_out,
                uint32_t **modes_out, uint32_t *n_out);

/* ------------------------------------------------------------------------ */
/* FUSE side                                                                 */

/* ops.c */
extern const struct fuse_operations strata_ops;

/* fastpath.c */
int op_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
                struct fuse_file_info *fi);
int op_write_buf(const char *path, struct fuse_bufvec *buf, off_t off, struct fuse_file_info *fi);
int op_flush(const char *path, struct fuse_file_info *fi);
int op_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi);

/* invalidate.c (worker thread) */
int64_t invalidate_paths(mount_ctx *ctx, char **paths, uint32_t n);

/* mount.c: mount() runs mount_check, then (after the JS references) mount_fuse,
   then loop_start; on failure, mount_abort undoes what was done. */
typedef struct mount_opts {
  char *fsname, *subtype;
  int debug, allow_other, auto_unmount, default_perms;
  struct fuse_args args;
  int mounted;
} mount_opts;

void log_capture_install(void);
void ctx_init(mount_ctx *ctx);
void ctx_unref(mount_ctx *ctx);
int mount_check(mount_ctx *ctx, const char *mp, mount_opts *mo, char *err, size_t cap);
int mount_fuse(mount_ctx *ctx, mount_opts *mo, char *err, size_t cap);
void mount_abort(mount_ctx *ctx, mount_opts *mo);
void mount_opts_free(mount_opts *mo);
int loop_start(mount_ctx *ctx);
int unmount_and_wait(mount_ctx *ctx);

/* mountsys.c (they block: the JS thread calls them only inside mount()) */
int mountinfo_dev(const char *mp, unsigned *maj, unsigned *min);
int fd_is_our_root(mount_ctx *ctx, int fd);
void detach_mount(const char *mp);
int fd_connection_gone(int fd);
void reap_helper(pid_t pid);
#define MAX_KIDS 64
unsigned char *fd_snapshot(void);
int list_fusermount_children(pid_t *out);
pid_t find_helper(const pid_t *before, int n_before);
int find_comm_fd(const unsigned char *before, int session_fd);

#pragma GCC visibility pop

#endif
