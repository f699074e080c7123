/*
 * The JS-thread half of a request (request.c has the FUSE-thread half):
 * call_js runs for each queued request, builds the handler's arguments and a
 * one-shot `reply` function; js_reply parses what JS answers into the request
 * and wakes the waiting worker. The loop's EXIT message also arrives here and
 * ends the mount on the JS side (handle_exit).
 */
#include "strata_fuse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Handler names, in enum op order. */
static const char *const op_names[] = {
  "getattr", "access", "readdir", "open", "create", "release", "truncate",
  "unlink", "rmdir", "mkdir", "rename", "symlink", "readlink", "link",
  "chmod", "chown", "utimens", "statfs", "exit"
};

/* ------------------------------------------------------------------------ */
/* reply(errno, ...)                                                         */

static int parse_errno(napi_env env, napi_value v) {
  int64_t e;
  if (!get_i64(env, v, &e)) return EIO;
  if (e < 0) e = -e;
  if (e > 4095) e = EIO;
  return (int)e;
}

static int parse_stat(napi_env env, napi_value arr, struct stat *st) {
  bool is_arr = false;
  uint32_t len = 0;
  int64_t f[15];
  if (!arr || !NAPI_OK(napi_is_array(env, arr, &is_arr)) || !is_arr) return 0;
  if (!NAPI_OK(napi_get_array_length(env, arr, &len)) || len < 15) return 0;
  for (uint32_t i = 0; i < 15; i++) {
    napi_value el;
    if (!NAPI_OK(napi_get_element(env, arr, i, &el)) || !get_i64(env, el, &f[i])) return 0;
  }
  memset(st, 0, sizeof *st);
  st->st_mode = (mode_t)f[0];
  st->st_uid = (uid_t)f[1];
  st->st_gid = (gid_t)f[2];
  st->st_size = (off_t)f[3];
  st->st_nlink = (nlink_t)f[4];
  st->st_ino = (ino_t)f[5];
  st->st_rdev = (dev_t)f[6];
  st->st_blksize = (blksize_t)f[7];
  st->st_blocks = (blkcnt_t)f[8];
  st->st_atim.tv_sec = f[9];
  st->st_atim.tv_nsec = f[10];
  st->st_mtim.tv_sec = f[11];
  st->st_mtim.tv_nsec = f[12];
  st->st_ctim.tv_sec = f[13];
  st->st_ctim.tv_nsec = f[14];
  return 1;
}

static int parse_statfs(napi_env env, napi_value arr, struct statvfs *sv) {
  bool is_arr = false;
  uint32_t len = 0;
  int64_t f[8];
  if (!arr || !NAPI_OK(napi_is_array(env, arr, &is_arr)) || !is_arr) return 0;
  if (!NAPI_OK(napi_get_array_length(env, arr, &len)) || len < 8) return 0;
  for (uint32_t i = 0; i < 8; i++) {
    napi_value el;
    if (!NAPI_OK(napi_get_element(env, arr, i, &el)) || !get_i64(env, el, &f[i])) return 0;
  }
  memset(sv, 0, sizeof *sv);
  sv->f_bsize = f[0];
  sv->f_frsize = f[1];
  sv->f_blocks = f[2];
  sv->f_bfree = f[3];
  sv->f_bavail = f[4];
  sv->f_files = f[5];
  sv->f_ffree = f[6];
  sv->f_namemax = f[7];
  return 1;
}

static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = {NULL, NULL, NULL};
  void *data = NULL;
  if (!NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, &data)) || !data) return NULL;
  sreq *r = data;
  pthread_mutex_lock(&r->mu);
  int done = r->done, late = r->timed_out && !r->replied;
  r->replied = 1;
  pthread_mutex_unlock(&r->mu);
  if (done) {
    /* Second call: ignored. First call after the FUSE thread gave up: ignored,
       but an fd opened for it would leak (no release will come): close it. */
    int64_t lfd;
    if (late && (r->op == OP_OPEN || r->op == OP_CREATE) && argc > 1 && parse_errno(env, argv[0]) == 0 &&
        get_i64(env, argv[1], &lfd) && lfd >= 0 && (uint64_t)lfd < g_fd_limit)
      close((int)lfd);
    clear_exception(env);
    return NULL;
  }

  int err = argc > 0 ? parse_errno(env, argv[0]) : EIO;
  struct stat st;
  struct statvfs sv;
  int64_t fd = -1;
  char *str = NULL, **names = NULL;
  uint32_t *modes = NULL, n = 0;
  if (err == 0) {
    switch (r->op) {
      case OP_GETATTR:
        if (!parse_stat(env, argc > 1 ? argv[1] : NULL, &st)) err = EIO;
        break;
      case OP_STATFS:
        if (!parse_statfs(env, argc > 1 ? argv[1] : NULL, &sv)) err = EIO;
        break;
      case OP_OPEN:
      case OP_CREATE:
        if (argc < 2 || !get_i64(env, argv[1], &fd) || fd < 0 || fd > INT32_MAX) err = EIO;
        break;
      case OP_READLINK:
        if (argc < 2 || !(str = get_string(env, argv[1]))) err = EIO;
        break;
      case OP_READDIR:
        if (!parse_names(env, argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL, &names, &modes, &n))
          err = EIO;
        break;
      default:
        break;
    }
  }
  clear_exception(env);

  pthread_mutex_lock(&r->mu);
  if (!r->done) {
    r->done = 1;
    r->result = -err;
    if (err == 0) {
      switch (r->op) {
        case OP_GETATTR: r->st = st; break;
        case OP_STATFS: r->sv = sv; break;
        case OP_OPEN: case OP_CREATE: r->fd = fd; break;
        case OP_READLINK: r->str = str; str = NULL; break;
        case OP_READDIR:
          r->names = names; r->modes = modes; r->n_names = n;
          names = NULL; modes = NULL;
          break;
        default: break;
      }
    }
    pthread_cond_signal(&r->cv);
  } else if (r->timed_out && err == 0 && (r->op == OP_OPEN || r->op == OP_CREATE) && fd >= 0) {
    close((int)fd); /* timed out while we parsed: nobody will release it */
  }
  pthread_mutex_unlock(&r->mu);
  free(str);
  free_names(names, n);
  free(modes);
  return NULL;
}

/* The reply function was garbage collected: fail if never answered. */
static void reply_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  sreq *r = data;
  req_fail(r, EIO);
  req_unref(r);
}

/* ------------------------------------------------------------------------ */
/* The threadsafe function: call_js and its finalizer                        */

/* JS thread: the loop thread has finished. */
static void handle_exit(napi_env env, mount_ctx *ctx) {
  if (ctx->exit_handled) return;
  ctx->exit_handled = 1;
  if (ctx->loop_started) {
    pthread_join(ctx->loop_thread, NULL); /* it has already posted its last message */
    ctx->loop_started = 0;
  }
  pthread_mutex_lock(&ctx->mu);
  int asked = ctx->unmount_started;
  int err = ctx->loop_error;
  pthread_mutex_unlock(&ctx->mu);
  if (!asked && ctx->on_exit_ref) {
    napi_value fn, global, reason, ret;
    char msg[256];
    if (err) snprintf(msg, sizeof msg, "fuse loop ended with error: %s", strerror(err));
    else snprintf(msg, sizeof msg, "unmounted");
    if (NAPI_OK(napi_get_reference_value(env, ctx->on_exit_ref, &fn)) && fn &&
        NAPI_OK(napi_get_global(env, &global)) &&
        NAPI_OK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &reason))) {
      napi_call_function(env, global, fn, 1, &reason, &ret);
    }
    clear_exception(env);
  }
  if (ctx->handlers_ref) { napi_delete_reference(env, ctx->handlers_ref); ctx->handlers_ref = NULL; }
  if (ctx->on_exit_ref) { napi_delete_reference(env, ctx->on_exit_ref); ctx->on_exit_ref = NULL; }
  /* Nothing calls the tsfn any more: release it so the process may exit. */
  napi_release_threadsafe_function(ctx->tsfn, napi_tsfn_release);
}

/* Runs for each posted request; env is NULL while the queue is drained at
   teardown. Answers ENOSYS for a handler JS does not define. */
void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  mount_ctx *ctx = context;
  sreq *r = data;
  if (r->op == OP_EXIT) {
    if (env) handle_exit(env, ctx);
    req_unref(r);
    req_unref(r);
    return;
  }
  if (env == NULL) { /* teardown: the queue is being drained */
    req_fail(r, EIO);
    req_unref(r);
    return;
  }

  napi_handle_scope scope;
  if (!NAPI_OK(napi_open_handle_scope(env, &scope))) { req_fail(r, EIO); req_unref(r); return; }

  napi_value handlers = NULL, fn = NULL, reply = NULL, ret;
  napi_value argv[8];
  size_t argc = 0;
  int fn_owns = 0; /* the reply function's finalizer owns the JS-side reference */
  int ok = ctx->handlers_ref && NAPI_OK(napi_get_reference_value(env, ctx->handlers_ref, &handlers)) && handlers;
  if (ok) {
    fn = get_prop(env, handlers, op_names[r->op]);
    if (value_type(env, fn) != napi_function) {
      clear_exception(env);
      req_fail(r, ENOSYS);
      req_unref(r);
      napi_close_handle_scope(env, scope);
      return;
    }
  }
  if (ok) {
#define ARG(expr) do { napi_value v_ = (expr); if (!v_) ok = 0; else argv[argc++] = v_; } while (0)
    switch (r->op) {
      case OP_GETATTR: ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0])); break;
      case OP_ACCESS: ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0])); break;
      case OP_READDIR: case OP_UNLINK: case OP_RMDIR: case OP_READLINK: case OP_STATFS:
        ARG(make_str_or_null(env, r->path)); break;
      case OP_OPEN: ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0])); ARG(make_i64(env, r->a[1])); break;
      case OP_CREATE:
        ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0]));
        ARG(make_i64(env, r->a[1])); ARG(make_i64(env, r->a[2]));
        break;
      case OP_RELEASE: ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0])); break;
      case OP_TRUNCATE: ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0])); ARG(make_i64(env, r->a[1])); break;
      case OP_MKDIR: ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0])); break;
      case OP_RENAME: ARG(make_str_or_null(env, r->path)); ARG(make_str_or_null(env, r->path2)); ARG(make_i64(env, r->a[0])); break;
      case OP_SYMLINK: case OP_LINK: ARG(make_str_or_null(env, r->path)); ARG(make_str_or_null(env, r->path2)); break;
      case OP_CHMOD: ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0])); ARG(make_i64(env, r->a[1])); break;
      case OP_CHOWN:
        ARG(make_str_or_null(env, r->path)); ARG(make_i64(env, r->a[0]));
        ARG(make_i64(env, r->a[1])); ARG(make_i64(env, r->a[2]));
        break;
      case OP_UTIMENS:
        ARG(make_str_or_null(env, r->path));
        for (int i = 0; i < 5; i++) ARG(make_i64(env, r->a[i]));
        break;
      default: ok = 0; break;
    }
#undef ARG
  }
  if (ok) {
    ok = NAPI_OK(napi_create_function(env, "reply", NAPI_AUTO_LENGTH, js_reply, r, &reply));
    if (ok) ok = fn_owns = NAPI_OK(napi_add_finalizer(env, reply, r, reply_finalize, NULL, NULL));
    if (ok) argv[argc++] = reply;
  }
  if (!ok) {
    clear_exception(env);
    req_fail(r, EIO);
    if (!fn_owns) req_unref(r);
    napi_close_handle_scope(env, scope);
    return;
  }
  napi_status st = napi_call_function(env, handlers, fn, argc, argv, &ret);
  if (st != napi_ok) {
    clear_exception(env); /* the handler threw: EIO, keep serving */
    req_fail(r, EIO);
  }
  napi_close_handle_scope(env, scope);
}

/* The threadsafe function is gone (released by handle_exit, or aborted when
   mount() failed): no more posts; drop the JS references and its ctx ref. */
void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  mount_ctx *ctx = data;
  pthread_rwlock_wrlock(&ctx->tsfn_lock);
  ctx->tsfn_alive = 0;
  pthread_rwlock_unlock(&ctx->tsfn_lock);
  if (ctx->handlers_ref) { napi_delete_reference(env, ctx->handlers_ref); ctx->handlers_ref = NULL; }
  if (ctx->on_exit_ref) { napi_delete_reference(env, ctx->on_exit_ref); ctx->on_exit_ref = NULL; }
  ctx_unref(ctx);
}
