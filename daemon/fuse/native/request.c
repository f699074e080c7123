/*
 * A request: one FUSE call on its way to JavaScript, seen from the FUSE
 * worker thread that queues it and blocks until JS replies or the request
 * timeout passes. The JS-thread half is in jsbridge.c.
 *
 * Each request has two references: the worker's (dropped by the op once it
 * has read the results) and the JS side's (dropped by call_js when the
 * request never reaches a handler, else by the reply function's finalizer).
 * Whoever sets `done` first under r->mu decides the result.
 */
#include "strata_fuse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void free_names(char **names, uint32_t n) {
  if (!names) return;
  for (uint32_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

void req_unref(sreq *r) {
  if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r->path);
  free(r->path2);
  free(r->str);
  free_names(r->names, r->n_names);
  free(r->modes);
  free(r);
}

/* Complete with an error if nobody completed it yet. */
void req_fail(sreq *r, int err) {
  pthread_mutex_lock(&r->mu);
  if (!r->done) {
    r->done = 1;
    r->result = -err;
    pthread_cond_signal(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
}

sreq *req_new(int op, const char *path, const char *path2) {
  sreq *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->op = op;
  r->refs = 2;
  r->fd = -1;
  if (pthread_mutex_init(&r->mu, NULL) != 0) { free(r); return NULL; }
  if (pthread_cond_init(&r->cv, &g_condattr) != 0) {
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
  }
  if (path && !(r->path = strdup(path))) goto oom;
  if (path2 && !(r->path2 = strdup(path2))) goto oom;
  return r;
oom:
  r->refs = 1;
  req_unref(r);
  return NULL;
}

/* Hand r to the JS thread (call_js). 0 when the threadsafe function is gone
   (unmounting, or the env is closing): then nobody on the JS side owns r. */
int req_post(mount_ctx *ctx, sreq *r) {
  napi_status st = napi_closing;
  pthread_rwlock_rdlock(&ctx->tsfn_lock);
  if (ctx->tsfn_alive) st = napi_call_threadsafe_function(ctx->tsfn, r, napi_tsfn_blocking);
  pthread_rwlock_unlock(&ctx->tsfn_lock);
  return st == napi_ok;
}

/* Queue r to JS and wait for the reply. Returns r->result. Drops the FUSE
   thread's reference only via the caller (it still reads the results). */
int req_call(mount_ctx *ctx, sreq *r) {
  if (!req_post(ctx, r)) {
    req_unref(r); /* the JS side will never see it */
    r->result = -EIO;
    return -EIO;
  }
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  int64_t ms = ctx->request_timeout_ms;
  deadline.tv_sec += ms / 1000;
  deadline.tv_nsec += (ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
  pthread_mutex_lock(&r->mu);
  while (!r->done) {
    int e = pthread_cond_timedwait(&r->cv, &r->mu, &deadline);
    if (e == ETIMEDOUT && !r->done) {
      r->done = 1;
      r->timed_out = 1;
      r->result = -ETIMEDOUT;
    }
  }
  int res = r->result;
  pthread_mutex_unlock(&r->mu);
  return res;
}
