/*
 * The N-API module: its three exported functions and two constants.
 *   mount(mountpoint, handlers, options) -> handle   (mount.c does the C part)
 *   invalidate(handle, paths) -> Promise<number>      (invalidate.c)
 *   unmount(handle) -> Promise<void>                   (mount.c)
 * invalidate() and unmount() block, so they run as napi async work and the
 * JS thread never waits for a FUSE thread. The handle is an external that
 * holds one reference on the mount context.
 */
#include "strata_fuse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Set once by init_module (see strata_fuse.h). */
pthread_condattr_t g_condattr;
uint64_t g_fd_limit = INT32_MAX;

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
  w->count = invalidate_paths(w->ctx, w->paths, w->n_paths);
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
  w->error = unmount_and_wait(w->ctx);
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
  mount_opts mo = {.args = FUSE_ARGS_INIT(0, NULL)};
  mo.fsname = get_string(env, get_prop(env, opts, "fsname"));
  mo.subtype = get_string(env, get_prop(env, opts, "subtype"));
  mount_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx) ctx->comm_fd = -1; /* the failure path closes it: never fd 0 */
  napi_value result = NULL;
  char err[1024];
  clear_exception(env);
  if (!mp || !ctx || !mo.fsname || !*mo.fsname) {
    throw_error(env, !mo.fsname || !*mo.fsname ? "strata_fuse.mount: options.fsname is required"
                                               : "strata_fuse.mount: bad arguments");
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
  mo.debug = opt_bool(env, opts, "debug", 0);
  mo.allow_other = opt_bool(env, opts, "allowOther", 0);
  mo.auto_unmount = opt_bool(env, opts, "autoUnmount", 1);
  mo.default_perms = opt_bool(env, opts, "defaultPermissions", 0);
  napi_value on_exit = get_prop(env, opts, "onExit");
  ctx_init(ctx);

  if (mount_check(ctx, mp, &mo, err, sizeof err) != 0) {
    throw_error(env, "%s", err);
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

  if (mount_fuse(ctx, &mo, err, sizeof err) != 0) {
    throw_error(env, "%s", err);
    goto fail;
  }

  if (!NAPI_OK(napi_create_threadsafe_function(env, NULL, NULL, res_name, 0, 1, ctx, tsfn_finalize,
                                               ctx, call_js, &ctx->tsfn))) {
    throw_error(env, "strata_fuse: cannot create threadsafe function");
    goto fail;
  }
  ctx->tsfn_alive = 1;
  __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL); /* tsfn */

  int e = loop_start(ctx);
  if (e != 0) {
    throw_error(env, "strata_fuse: cannot start loop thread: %s", strerror(e));
    /* tsfn: abort it; its finalizer drops its reference */
    pthread_rwlock_wrlock(&ctx->tsfn_lock);
    ctx->tsfn_alive = 0;
    pthread_rwlock_unlock(&ctx->tsfn_lock);
    napi_release_threadsafe_function(ctx->tsfn, napi_tsfn_abort);
    goto fail_tsfn; /* refs are deleted by the tsfn finalizer */
  }

  if (!NAPI_OK(napi_create_external(env, ctx, external_finalize, NULL, &result))) {
    /* cannot hand it out: unmount in the background */
    result = NULL;
    throw_error(env, "strata_fuse: N-API failure");
    work *w = calloc(1, sizeof *w);
    if (w) start_work(env, ctx, w, "strata_fuse.unmount", unmount_execute, unmount_complete);
    ctx_unref(ctx); /* the handle that was never created */
  }
  free(mp);
  mount_opts_free(&mo);
  return result;

fail:
  if (ctx && ctx->handlers_ref) napi_delete_reference(env, ctx->handlers_ref);
  if (ctx && ctx->on_exit_ref) napi_delete_reference(env, ctx->on_exit_ref);
fail_tsfn:
  mount_abort(ctx, &mo);
  free(mp);
  mount_opts_free(&mo);
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
    log_capture_install();
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
