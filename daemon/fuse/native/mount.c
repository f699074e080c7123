/*
 * A mount's life on the C side: the context and its references, mount()'s
 * checks and libfuse set-up, the loop thread that runs fuse_loop_mt() and
 * tears the fuse object down when the loop ends, and unmount(). Nothing here
 * speaks N-API except through req_post (the EXIT message); addon.c turns the
 * error texts into JS errors.
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

void log_capture_install(void) { fuse_set_log_func(strata_log); }

/* ------------------------------------------------------------------------ */
/* The context                                                               */

void ctx_init(mount_ctx *ctx) {
  pthread_mutex_init(&ctx->mu, NULL);
  pthread_cond_init(&ctx->cv, &g_condattr);
  pthread_rwlock_init(&ctx->tsfn_lock, NULL);
  pthread_rwlock_init(&ctx->fuse_lock, NULL);
}

void ctx_unref(mount_ctx *ctx) {
  if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  pthread_rwlock_destroy(&ctx->tsfn_lock);
  pthread_rwlock_destroy(&ctx->fuse_lock);
  pthread_mutex_destroy(&ctx->mu);
  pthread_cond_destroy(&ctx->cv);
  free(ctx->mountpoint);
  free(ctx);
}

/* ------------------------------------------------------------------------ */
/* mount()                                                                   */

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

/* Clear errors up front, better than libfuse's log lines; then libfuse's
   arguments into mo->args. mp is the path as given, for messages. */
int mount_check(mount_ctx *ctx, const char *mp, mount_opts *mo, char *err, size_t cap) {
  struct stat mst;
  memset(&mst, 0, sizeof mst);
  if (stat(ctx->mountpoint, &mst) != 0 || !S_ISDIR(mst.st_mode)) {
    int e = S_ISDIR(mst.st_mode) ? errno : ENOTDIR;
    snprintf(err, cap, "strata_fuse: cannot mount at %s: %s%s", mp, strerror(e),
             e == ENOTCONN ? " (a stale FUSE mount: run `fusermount3 -uz` on it)" : "");
    return -1;
  }

  if (geteuid() != 0 && access(ctx->mountpoint, W_OK) != 0) {
    snprintf(err, cap, "strata_fuse: cannot mount at %s: %s (fusermount3 needs write access to the mountpoint)",
             mp, strerror(errno));
    return -1;
  }

  char o[4096] = "";
  append_opt(o, sizeof o, "fsname", mo->fsname);
  if (mo->subtype && *mo->subtype) append_opt(o, sizeof o, "subtype", mo->subtype);
  if (mo->allow_other) append_opt(o, sizeof o, "allow_other", NULL);
  if (mo->default_perms) append_opt(o, sizeof o, "default_permissions", NULL);
  if (mo->auto_unmount) append_opt(o, sizeof o, "auto_unmount", NULL);
  if (strlen(o) + 2 >= sizeof o) {
    snprintf(err, cap, "strata_fuse: mount options too long");
    return -1;
  }
  if (fuse_opt_add_arg(&mo->args, "strata") != 0 || fuse_opt_add_arg(&mo->args, "-o") != 0 ||
      fuse_opt_add_arg(&mo->args, o) != 0 || (mo->debug && fuse_opt_add_arg(&mo->args, "-d") != 0)) {
    snprintf(err, cap, "strata_fuse: out of memory");
    return -1;
  }
  return 0;
}

/* fuse_new + fuse_mount; with auto_unmount, also finds the fusermount3
   helper's socket and pid by what appeared during fuse_mount. */
int mount_fuse(mount_ctx *ctx, mount_opts *mo, char *err, size_t cap) {
  tl_capture = 1;
  tl_lastlog[0] = 0;
  ctx->fuse = fuse_new(&mo->args, &strata_ops, sizeof strata_ops, ctx);
  if (!ctx->fuse) {
    tl_capture = 0;
    snprintf(err, cap, "strata_fuse: fuse_new failed for %s: %s", ctx->mountpoint,
             tl_lastlog[0] ? tl_lastlog : "invalid options");
    return -1;
  }
  ctx->se = fuse_get_session(ctx->fuse);
  unsigned char *fds_before = NULL;
  pid_t kids_before[MAX_KIDS];
  int n_kids_before = 0;
  if (mo->auto_unmount) {
    fds_before = fd_snapshot();
    n_kids_before = list_fusermount_children(kids_before);
  }
  errno = 0;
  if (fuse_mount(ctx->fuse, ctx->mountpoint) != 0) {
    int e = errno;
    tl_capture = 0;
    snprintf(err, cap, "strata_fuse: cannot mount at %s: %s", ctx->mountpoint,
             tl_lastlog[0] ? tl_lastlog : e ? strerror(e) : "mount failed");
    free(fds_before);
    return -1;
  }
  tl_capture = 0;
  mo->mounted = 1;
  ctx->have_dev = mountinfo_dev(ctx->mountpoint, &ctx->dev_major, &ctx->dev_minor);
  if (mo->auto_unmount) {
    ctx->comm_fd = find_comm_fd(fds_before, fuse_session_fd(ctx->se));
    if (ctx->comm_fd >= 0) ctx->helper_pid = find_helper(kids_before, n_kids_before);
  }
  free(fds_before);
  return 0;
}

/* mount() failed after mount_fuse may have run: undo it (JS thread, blocks). */
void mount_abort(mount_ctx *ctx, mount_opts *mo) {
  tl_capture = 0;
  if (ctx && ctx->fuse) {
    if (mo->mounted) detach_mount(ctx->mountpoint);
    fuse_destroy(ctx->fuse);
    ctx->fuse = NULL;
  }
  if (ctx && ctx->comm_fd >= 0) {
    close(ctx->comm_fd);
    reap_helper(ctx->helper_pid);
  }
}

void mount_opts_free(mount_opts *mo) {
  free(mo->fsname);
  free(mo->subtype);
  fuse_opt_free_args(&mo->args);
}

/* ------------------------------------------------------------------------ */
/* The loop thread                                                           */

/* Runs the loop until the session ends, then tears down: detach if nobody
   asked (so no dead mount stays), destroy the fuse object under fuse_lock,
   let the auto_unmount helper go, wake unmount() and tell JS (EXIT). */
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
  if (ex && !req_post(ctx, ex)) { req_unref(ex); req_unref(ex); }
  ctx_unref(ctx);
  return NULL;
}

/* Starts the loop thread with all signals blocked (workers inherit the mask).
   Returns 0 or the error of pthread_create. */
int loop_start(mount_ctx *ctx) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL); /* loop thread */
  int e = pthread_create(&ctx->loop_thread, NULL, loop_main, ctx);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL);
    return e;
  }
  ctx->loop_started = 1;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* unmount() (napi worker thread)                                            */

/* Ends the loop and waits for the loop thread to finish tearing down.
   Returns 0, or ETIMEDOUT when the loop did not end in time. */
int unmount_and_wait(mount_ctx *ctx) {
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
  int error = ctx->loop_done ? 0 : ETIMEDOUT;
  pthread_mutex_unlock(&ctx->mu);
  if (rootfd >= 0) close(rootfd);
  return error;
}
