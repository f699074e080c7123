/*
 * strata_fuse: a small N-API binding of the libfuse 3 high-level API.
 *
 * Threading model
 *  - mount() (JS main thread) creates the fuse object, mounts it and starts a
 *    "loop thread" that runs fuse_loop_mt().  libfuse's worker threads call the
 *    ops below.
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
#include "strata_fuse.h"

#include <fuse.h>
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>


/* ------------------------------------------------------------------------ */
/* libfuse log capture: errors during mount() go into the thrown Error.      */

static __thread char tl_lastlog[512];
static __thread int tl_capture;

static void strata_log(enum fuse_log_level level, const char *fmt, va_list ap) {
  va_list ap2;
  (void)level;
  va_copy(ap2, ap);
  vsnprintf(tl_lastlog, sizeof tl_lastlog, fmt, ap2);
  va_end(ap2);
  size_t n = strlen(tl_lastlog);
  while (n > 0 && (tl_lastlog[n - 1] == '\n' || tl_lastlog[n - 1] == ' ')) tl_lastlog[--n] = 0;
  if (!tl_capture) vfprintf(stderr, fmt, ap);
}


pthread_condattr_t g_condattr;

void ctx_unref(mount_ctx *ctx) {
  if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  pthread_rwlock_destroy(&ctx->tsfn_lock);
  pthread_rwlock_destroy(&ctx->fuse_lock);
  pthread_mutex_destroy(&ctx->mu);
  pthread_cond_destroy(&ctx->cv);
  free(ctx->mountpoint);
  free(ctx);
}

uint64_t g_fd_limit = INT32_MAX; /* see fi_fd() in ops.c */

/* ------------------------------------------------------------------------ */
/* The loop thread                                                           */

static void *loop_main(void *arg) {
  mount_ctx *ctx = arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  int res;
  if (cfg) {
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_idle_threads(cfg, 10);
    fuse_loop_cfg_set_max_threads(cfg, (unsigned)ctx->max_threads);
    res = fuse_loop_mt(ctx->fuse, cfg);
    fuse_loop_cfg_destroy(cfg);
  } else {
    res = -ENOMEM;
  }

  pthread_mutex_lock(&ctx->mu);
  int asked = ctx->unmount_started;
  pthread_mutex_unlock(&ctx->mu);

  pthread_rwlock_wrlock(&ctx->fuse_lock);
  int sfd = fuse_session_fd(ctx->se);
  /* Ended on its own (error) while still mounted: detach so no dead mount stays. */
  if (!asked && !fd_connection_gone(sfd)) detach_mount(ctx->mountpoint);
  fuse_destroy(ctx->fuse); /* closes /dev/fuse: aborts whatever is left */
  ctx->fuse = NULL;
  ctx->se = NULL;
  pthread_rwlock_unlock(&ctx->fuse_lock);

  pthread_mutex_lock(&ctx->mu);
  if (ctx->comm_fd >= 0) { close(ctx->comm_fd); ctx->comm_fd = -1; } /* lets the auto_unmount helper exit */
  pid_t helper = ctx->helper_pid;
  ctx->helper_pid = 0;
  while (ctx->dirs) {
    struct dirh *d = ctx->dirs;
    ctx->dirs = d->next;
    free(d);
  }
  pthread_mutex_unlock(&ctx->mu);
  reap_helper(helper);

  pthread_mutex_lock(&ctx->mu);
  ctx->loop_done = 1;
  ctx->loop_error = res < 0 ? -res : res;
  pthread_cond_broadcast(&ctx->cv);
  pthread_mutex_unlock(&ctx->mu);

  sreq *ex = req_new(OP_EXIT, NULL, NULL);
  napi_status st = napi_closing;
  if (ex) {
    pthread_rwlock_rdlock(&ctx->tsfn_lock);
    if (ctx->tsfn_alive) st = napi_call_threadsafe_function(ctx->tsfn, ex, napi_tsfn_blocking);
    pthread_rwlock_unlock(&ctx->tsfn_lock);
    if (st != napi_ok) { req_unref(ex); req_unref(ex); }
  }
  ctx_unref(ctx);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Async work: invalidate / unmount                                          */

typedef struct work {
  mount_ctx *ctx;
  napi_async_work aw;
  napi_deferred deferred;
  char **paths;
  uint32_t n_paths;
  int64_t count;
  int error;
} work;

static void work_free(napi_env env, work *w) {
  if (w->aw) napi_delete_async_work(env, w->aw);
  free_names(w->paths, w->n_paths);
  ctx_unref(w->ctx);
  free(w);
}

static void invalidate_execute(napi_env env, void *data) {
  (void)env;
  work *w = data;
  mount_ctx *ctx = w->ctx;
  pthread_rwlock_rdlock(&ctx->fuse_lock);
  for (uint32_t i = 0; i < w->n_paths && ctx->fuse; i++) {
    pthread_mutex_lock(&ctx->mu);
    int stop = ctx->unmount_started || ctx->loop_done;
    pthread_mutex_unlock(&ctx->mu);
    if (stop) break;
    const char *p = w->paths[i];
    int ok = fuse_invalidate_path(ctx->fuse, p) == 0;
    /* fuse_invalidate_path only drops an inode's attributes and pages, never a
       directory entry, so a name cached as missing (or as another type) would
       outlive a switch. Entries of the root can be dropped by name: the kernel
       then prunes every unused dentry below, negative ones included. */
    if (p[0] == '/' && p[1] != '\0' && strchr(p + 1, '/') == NULL && ctx->se) {
      if (fuse_lowlevel_notify_inval_entry(ctx->se, FUSE_ROOT_ID, p + 1, strlen(p + 1)) == 0) ok = 1;
    }
    if (ok) w->count++;
  }
  pthread_rwlock_unlock(&ctx->fuse_lock);
}

static void invalidate_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  work *w = data;
  napi_value v;
  if (NAPI_OK(napi_create_int64(env, w->count, &v))) napi_resolve_deferred(env, w->deferred, v);
  work_free(env, w);
}

static void unmount_execute(napi_env env, void *data) {
  (void)env;
  work *w = data;
  mount_ctx *ctx = w->ctx;
  pthread_mutex_lock(&ctx->mu);
  int first = !ctx->unmount_started && !ctx->loop_done;
  ctx->unmount_started = 1;
  pthread_mutex_unlock(&ctx->mu);

  int rootfd = -1;
  if (first) {
    /* Hold the mount root open: after the lazy detach it lets us send one
       request (fsyncdir) that wakes a worker, which then sees the session as
       exited and ends the loop even when other processes keep the mount busy. */
    rootfd = open(ctx->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd >= 0 && !fd_is_our_root(ctx, rootfd)) {
      close(rootfd); /* not our mount at that path any more (unmounted from outside) */
      rootfd = -1;
    }
    if (rootfd >= 0) detach_mount(ctx->mountpoint);
    pthread_rwlock_rdlock(&ctx->fuse_lock);
    if (ctx->se) fuse_session_exit(ctx->se);
    pthread_rwlock_unlock(&ctx->fuse_lock);
    if (rootfd >= 0) fsync(rootfd);
  }

  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += ctx->request_timeout_ms / 1000 + 15;
  pthread_mutex_lock(&ctx->mu);
  while (!ctx->loop_done) {
    if (pthread_cond_timedwait(&ctx->cv, &ctx->mu, &deadline) == ETIMEDOUT) break;
  }
  if (!ctx->loop_done) w->error = ETIMEDOUT;
  pthread_mutex_unlock(&ctx->mu);
  if (rootfd >= 0) close(rootfd);
}

static void unmount_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  work *w = data;
  napi_value v;
  if (w->error) {
    napi_value msg;
    char buf[512];
    snprintf(buf, sizeof buf, "strata_fuse: unmount of %s: the FUSE loop did not end (%s)",
             w->ctx->mountpoint, strerror(w->error));
    if (NAPI_OK(napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &msg)) &&
        NAPI_OK(napi_create_error(env, NULL, msg, &v)))
      napi_reject_deferred(env, w->deferred, v);
  } else if (NAPI_OK(napi_get_undefined(env, &v))) {
    napi_resolve_deferred(env, w->deferred, v);
  }
  work_free(env, w);
}

static mount_ctx *get_ctx(napi_env env, napi_value v) {
  void *p = NULL;
  if (value_type(env, v) != napi_external || !NAPI_OK(napi_get_value_external(env, v, &p))) return NULL;
  return p;
}

static napi_value start_work(napi_env env, mount_ctx *ctx, work *w, const char *name,
                             napi_async_execute_callback exec, napi_async_complete_callback done) {
  napi_value promise = NULL, res_name;
  w->ctx = ctx;
  __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL);
  if (!NAPI_OK(napi_create_promise(env, &w->deferred, &promise)) ||
      !NAPI_OK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &res_name)) ||
      !NAPI_OK(napi_create_async_work(env, NULL, res_name, exec, done, w, &w->aw)) ||
      !NAPI_OK(napi_queue_async_work(env, w->aw))) {
    throw_error(env, "strata_fuse: cannot start %s", name);
    work_free(env, w); /* the promise was never handed out */
    return NULL;
  }
  return promise;
}

/* invalidate(handle, paths: string[]): Promise<number> */
static napi_value js_invalidate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {NULL, NULL};
  if (!NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  mount_ctx *ctx = get_ctx(env, argv[0]);
  if (!ctx) { throw_error(env, "strata_fuse: invalid mount handle"); return NULL; }
  work *w = calloc(1, sizeof *w);
  if (!w) { throw_error(env, "strata_fuse: out of memory"); return NULL; }
  uint32_t *unused = NULL;
  if (!parse_names(env, argv[1], NULL, &w->paths, &unused, &w->n_paths)) {
    free(w);
    throw_error(env, "strata_fuse: invalidate() expects an array of path strings");
    return NULL;
  }
  free(unused);
  return start_work(env, ctx, w, "strata_fuse.invalidate", invalidate_execute, invalidate_complete);
}

/* unmount(handle): Promise<void> */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {NULL};
  if (!NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  mount_ctx *ctx = get_ctx(env, argv[0]);
  if (!ctx) { throw_error(env, "strata_fuse: invalid mount handle"); return NULL; }
  work *w = calloc(1, sizeof *w);
  if (!w) { throw_error(env, "strata_fuse: out of memory"); return NULL; }
  return start_work(env, ctx, w, "strata_fuse.unmount", unmount_execute, unmount_complete);
}

/* ------------------------------------------------------------------------ */
/* mount()                                                                   */

static void external_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  ctx_unref(data);
}

/* fuse options are comma separated; escape ',' and '\' */
static int append_opt(char *buf, size_t cap, const char *key, const char *val) {
  size_t n = strlen(buf);
  if (n && n + 1 < cap) buf[n++] = ',';
  for (const char *p = key; *p && n + 1 < cap; p++) buf[n++] = *p;
  if (val) {
    if (n + 1 < cap) buf[n++] = '=';
    for (const char *p = val; *p; p++) {
      if (*p == ',' || *p == '\\') { if (n + 1 < cap) buf[n++] = '\\'; }
      if (n + 1 < cap) buf[n++] = *p;
    }
  }
  buf[n < cap ? n : cap - 1] = 0;
  return n + 1 < cap;
}

/* mount(mountpoint, handlers, options) -> external handle */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = {NULL, NULL, NULL};
  if (!NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (value_type(env, argv[0]) != napi_string || value_type(env, argv[1]) != napi_object ||
      value_type(env, argv[2]) != napi_object) {
    throw_error(env, "strata_fuse.mount(mountpoint: string, handlers: object, options: object)");
    return NULL;
  }
  napi_value opts = argv[2];
  char *mp = get_string(env, argv[0]);
  char *fsname = get_string(env, get_prop(env, opts, "fsname"));
  char *subtype = get_string(env, get_prop(env, opts, "subtype"));
  mount_ctx *ctx = calloc(1, sizeof *ctx);
  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  unsigned char *fds_before = NULL;
  napi_value result = NULL;
  int mounted = 0;
  clear_exception(env);
  if (!mp || !ctx || !fsname || !*fsname) {
    throw_error(env, !fsname || !*fsname ? "strata_fuse.mount: options.fsname is required" : "strata_fuse.mount: bad arguments");
    goto fail;
  }
  ctx->refs = 1; /* the external handle, created last */
  ctx->env = env;
  ctx->mountpoint = realpath(mp, NULL); /* mountinfo and umount want the canonical path */
  if (!ctx->mountpoint) {
    int e = errno;
    if (e == ENOTCONN)
      throw_error(env, "strata_fuse: cannot mount at %s: %s (a stale FUSE mount; run `fusermount3 -uz %s`)",
                  mp, strerror(e), mp);
    else
      throw_error(env, "strata_fuse: cannot mount at %s: %s", mp, strerror(e));
    goto fail;
  }
  ctx->comm_fd = -1;
  ctx->entry_timeout = opt_double(env, opts, "entryTimeout", 1.0);
  ctx->attr_timeout = opt_double(env, opts, "attrTimeout", 1.0);
  ctx->negative_timeout = opt_double(env, opts, "negativeTimeout", 0.0);
  ctx->kernel_cache = opt_bool(env, opts, "kernelCache", 0);
  ctx->auto_cache = opt_bool(env, opts, "autoCache", 0);
  ctx->use_ino = opt_bool(env, opts, "useIno", 1);
  double rt = opt_double(env, opts, "requestTimeoutMs", 30000);
  ctx->request_timeout_ms = rt < 1 ? 1 : rt > 3600000 ? 3600000 : (int)rt;
  double mt = opt_double(env, opts, "maxThreads", 16);
  ctx->max_threads = mt < 2 ? 2 : mt > 256 ? 256 : (int)mt;
  int debug = opt_bool(env, opts, "debug", 0);
  int allow_other = opt_bool(env, opts, "allowOther", 0);
  int auto_unmount = opt_bool(env, opts, "autoUnmount", 1);
  int default_perms = opt_bool(env, opts, "defaultPermissions", 0);
  napi_value on_exit = get_prop(env, opts, "onExit");
  pthread_mutex_init(&ctx->mu, NULL);
  pthread_cond_init(&ctx->cv, &g_condattr);
  pthread_rwlock_init(&ctx->tsfn_lock, NULL);
  pthread_rwlock_init(&ctx->fuse_lock, NULL);

  /* Clear errors up front, better than libfuse's log lines. */
  struct stat mst;
  memset(&mst, 0, sizeof mst);
  if (stat(ctx->mountpoint, &mst) != 0 || !S_ISDIR(mst.st_mode)) {
    int e = S_ISDIR(mst.st_mode) ? errno : ENOTDIR;
    throw_error(env, "strata_fuse: cannot mount at %s: %s%s", mp, strerror(e),
                e == ENOTCONN ? " (a stale FUSE mount: run `fusermount3 -uz` on it)" : "");
    goto fail;
  }

  if (geteuid() != 0 && access(ctx->mountpoint, W_OK) != 0) {
    throw_error(env, "strata_fuse: cannot mount at %s: %s (fusermount3 needs write access to the mountpoint)",
                mp, strerror(errno));
    goto fail;
  }

  char o[4096] = "";
  append_opt(o, sizeof o, "fsname", fsname);
  if (subtype && *subtype) append_opt(o, sizeof o, "subtype", subtype);
  if (allow_other) append_opt(o, sizeof o, "allow_other", NULL);
  if (default_perms) append_opt(o, sizeof o, "default_permissions", NULL);
  if (auto_unmount) append_opt(o, sizeof o, "auto_unmount", NULL);
  if (strlen(o) + 2 >= sizeof o) {
    throw_error(env, "strata_fuse: mount options too long");
    goto fail;
  }
  if (fuse_opt_add_arg(&args, "strata") != 0 || fuse_opt_add_arg(&args, "-o") != 0 ||
      fuse_opt_add_arg(&args, o) != 0 || (debug && fuse_opt_add_arg(&args, "-d") != 0)) {
    throw_error(env, "strata_fuse: out of memory");
    goto fail;
  }

  /* The threadsafe function (ref'd: keeps the process alive while mounted). */
  napi_value res_name;
  if (!NAPI_OK(napi_create_reference(env, argv[1], 1, &ctx->handlers_ref)) ||
      (value_type(env, on_exit) == napi_function &&
       !NAPI_OK(napi_create_reference(env, on_exit, 1, &ctx->on_exit_ref))) ||
      !NAPI_OK(napi_create_string_utf8(env, "strata_fuse", NAPI_AUTO_LENGTH, &res_name))) {
    throw_error(env, "strata_fuse: N-API failure");
    goto fail;
  }

  tl_capture = 1;
  tl_lastlog[0] = 0;
  ctx->fuse = fuse_new(&args, &strata_ops, sizeof strata_ops, ctx);
  if (!ctx->fuse) {
    tl_capture = 0;
    throw_error(env, "strata_fuse: fuse_new failed for %s: %s", ctx->mountpoint,
                tl_lastlog[0] ? tl_lastlog : "invalid options");
    goto fail;
  }
  ctx->se = fuse_get_session(ctx->fuse);
  pid_t kids_before[MAX_KIDS];
  int n_kids_before = 0;
  if (auto_unmount) {
    fds_before = fd_snapshot();
    n_kids_before = list_fusermount_children(kids_before);
  }
  errno = 0;
  if (fuse_mount(ctx->fuse, ctx->mountpoint) != 0) {
    int e = errno;
    tl_capture = 0;
    throw_error(env, "strata_fuse: cannot mount at %s: %s", ctx->mountpoint,
                tl_lastlog[0] ? tl_lastlog : e ? strerror(e) : "mount failed");
    goto fail;
  }
  tl_capture = 0;
  mounted = 1;
  ctx->have_dev = mountinfo_dev(ctx->mountpoint, &ctx->dev_major, &ctx->dev_minor);
  if (auto_unmount) {
    ctx->comm_fd = find_comm_fd(fds_before, fuse_session_fd(ctx->se));
    if (ctx->comm_fd >= 0) ctx->helper_pid = find_helper(kids_before, n_kids_before);
  }

  if (!NAPI_OK(napi_create_threadsafe_function(env, NULL, NULL, res_name, 0, 1, ctx, tsfn_finalize,
                                               ctx, call_js, &ctx->tsfn))) {
    throw_error(env, "strata_fuse: cannot create threadsafe function");
    goto fail;
  }
  ctx->tsfn_alive = 1;
  __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL); /* tsfn */

  /* Loop thread with all signals blocked (workers inherit the mask). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL); /* loop thread */
  int e = pthread_create(&ctx->loop_thread, NULL, loop_main, ctx);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL);
    throw_error(env, "strata_fuse: cannot start loop thread: %s", strerror(e));
    /* tsfn: abort it; its finalizer drops its reference */
    pthread_rwlock_wrlock(&ctx->tsfn_lock);
    ctx->tsfn_alive = 0;
    pthread_rwlock_unlock(&ctx->tsfn_lock);
    napi_release_threadsafe_function(ctx->tsfn, napi_tsfn_abort);
    goto fail_tsfn; /* refs are deleted by the tsfn finalizer */
  }
  ctx->loop_started = 1;

  if (!NAPI_OK(napi_create_external(env, ctx, external_finalize, NULL, &result))) {
    /* cannot hand it out: unmount in the background */
    result = NULL;
    throw_error(env, "strata_fuse: N-API failure");
    work *w = calloc(1, sizeof *w);
    if (w) start_work(env, ctx, w, "strata_fuse.unmount", unmount_execute, unmount_complete);
    ctx_unref(ctx); /* the handle that was never created */
  }
  free(fds_before);
  free(mp);
  free(fsname);
  free(subtype);
  fuse_opt_free_args(&args);
  return result;

fail:
  if (ctx && ctx->handlers_ref) napi_delete_reference(env, ctx->handlers_ref);
  if (ctx && ctx->on_exit_ref) napi_delete_reference(env, ctx->on_exit_ref);
fail_tsfn:
  tl_capture = 0;
  if (ctx && ctx->fuse) {
    if (mounted) detach_mount(ctx->mountpoint);
    fuse_destroy(ctx->fuse);
    ctx->fuse = NULL;
  }
  if (ctx && ctx->comm_fd >= 0) {
    close(ctx->comm_fd);
    reap_helper(ctx->helper_pid);
  }
  free(fds_before);
  free(mp);
  free(fsname);
  free(subtype);
  fuse_opt_free_args(&args);
  if (ctx) {
    if (ctx->refs == 0) ctx->refs = 1;
    ctx_unref(ctx);
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */

static napi_value init_module(napi_env env, napi_value exports) {
  static int once;
  if (!once) {
    once = 1;
    pthread_condattr_init(&g_condattr);
    pthread_condattr_setclock(&g_condattr, CLOCK_MONOTONIC);
    fuse_set_log_func(strata_log);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < INT32_MAX)
      g_fd_limit = rl.rlim_max;
  }
  napi_value fn, v;
  struct { const char *name; napi_callback cb; } fns[] = {
    {"mount", js_mount}, {"invalidate", js_invalidate}, {"unmount", js_unmount}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    if (!NAPI_OK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn)) ||
        !NAPI_OK(napi_set_named_property(env, exports, fns[i].name, fn)))
      return NULL;
  }
  if (!NAPI_OK(napi_create_int64(env, UTIME_NOW, &v)) ||
      !NAPI_OK(napi_set_named_property(env, exports, "UTIME_NOW", v)) ||
      !NAPI_OK(napi_create_int64(env, UTIME_OMIT, &v)) ||
      !NAPI_OK(napi_set_named_property(env, exports, "UTIME_OMIT", v)))
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
