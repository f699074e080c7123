/*
 * strata-viewd [options] MOUNTPOINT BASE SOCKET
 *
 * Opens BASE before mounting (an in-place view mounts over it), mounts, says "ready PID" on
 * stdout, and serves with libfuse's multi-threaded loop until unmounted, told to (`unmount` on
 * the control socket) or sent SIGTERM/SIGINT. It runs in a session of its own, so the agent that
 * started it may die or restart while the view keeps working.
 */
#include "viewd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct viewd g;

static void vd_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  /* Not the first KILLPRIV (libfuse 3.14 never sends it anyway): its successor, V2, is asked for
     in the INIT reply by passthrough.c and served by killpriv.c. */
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_READ) conn->want |= FUSE_CAP_SPLICE_READ;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  /* Locks stay in the kernel (every user of the view goes through it). */
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  conn->time_gran = 1;
  /* No OPENDIR/RELEASEDIR round trips: listings are cached by the kernel all the same. */
  if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) g.no_opendir = 1;
  /* Every listing chunk with attributes: walkers (find, git, ls -l) stat every name anyway, and
     in auto mode all chunks after the first cost one LOOKUP per name. */
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void usage(void) {
  fprintf(stderr,
          "usage: strata-viewd [--in-place] [--allow-other] [--fsname NAME] [--rules FILE] [--timeout SECONDS]\n"
          "                    [--no-passthrough] [--debug] MOUNTPOINT BASE SOCKET\n");
  exit(2);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "re");
  if (!f) return NULL;
  size_t cap = 65536, n = 0;
  char *s = malloc(cap);
  while (s) {
    size_t r = fread(s + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    char *ns = realloc(s, cap *= 2);
    if (!ns) { free(s); s = NULL; }
    else s = ns;
  }
  fclose(f);
  *len = n;
  return s;
}

int main(int argc, char **argv) {
  int in_place = 0, allow_other = 0, debug = 0, passthrough = 1;
  const char *fsname = "strata", *rules = NULL;
  g.timeout = 60;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--in-place")) in_place = 1;
    else if (!strcmp(a, "--allow-other")) allow_other = 1;
    else if (!strcmp(a, "--debug")) debug = 1;
    else if (!strcmp(a, "--no-passthrough")) passthrough = 0;
    else if (!strcmp(a, "--fsname") && i + 1 < argc) fsname = argv[++i];
    else if (!strcmp(a, "--rules") && i + 1 < argc) rules = argv[++i];
    else if (!strcmp(a, "--timeout") && i + 1 < argc) g.timeout = atof(argv[++i]);
    else usage();
  }
  if (argc - i != 3) usage();
  const char *mountpoint = argv[i], *base = argv[i + 1], *sock = argv[i + 2];
  g.root = geteuid() == 0;
  if (allow_other && !g.root) {
    fprintf(stderr, "strata-viewd: --allow-other needs root (each caller's identity is taken per request)\n");
    return 2;
  }
  if (strchr(fsname, ',') || strchr(fsname, '\\')) {
    fprintf(stderr, "strata-viewd: bad --fsname\n");
    return 2;
  }

  setsid(); /* the agent's death or restart must not reach us; EPERM when already a leader */
  signal(SIGPIPE, SIG_IGN);
  g.main_thread = pthread_self();
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&g.ns_lock, &ma);
  ident_init();
  nodes_init();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  char *mp = realpath(mountpoint, NULL);
  char *bp = realpath(base, NULL);
  if (!mp || !bp) {
    fprintf(stderr, "strata-viewd: %s: %s\n", !mp ? mountpoint : base, strerror(errno));
    return 1;
  }
  if (in_place && strcmp(mp, bp) != 0) {
    fprintf(stderr, "strata-viewd: --in-place needs MOUNTPOINT and BASE to be one folder\n");
    return 2;
  }
  g.mountpoint = mp;
  /* Before mounting: once mounted over, BASE is reachable only through this descriptor. */
  g.base_fd = open(bp, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat bst;
  if (g.base_fd < 0 || fstat(g.base_fd, &bst) != 0) {
    fprintf(stderr, "strata-viewd: base %s: %s\n", bp, strerror(errno));
    return 1;
  }
  g.base_dev = bst.st_dev;

  if (rules) {
    size_t len;
    char err[512];
    char *text = read_file(rules, &len);
    struct table *t = text ? table_parse(text, len, err, sizeof err) : NULL;
    free(text);
    if (!t) {
      fprintf(stderr, "strata-viewd: rules %s: %s\n", rules, text ? err : strerror(errno));
      return 1;
    }
    table_put(table_install(t));
  }
  if (control_start(sock) != 0) {
    fprintf(stderr, "strata-viewd: control socket %s: %s\n", sock, strerror(errno));
    return 1;
  }
  umask(0); /* the kernel already applied the caller's umask */

  char opts[1024];
  snprintf(opts, sizeof opts, "fsname=%s,subtype=strata,default_permissions%s", fsname, allow_other ? ",allow_other" : "");
  char *fargv[] = { "strata-viewd", "-o", opts, debug ? "-d" : NULL, NULL };
  struct fuse_args args = FUSE_ARGS_INIT(debug ? 4 : 3, fargv);
  static struct fuse_lowlevel_ops ops;
  ops.init = vd_init;
  ns_ops(&ops);
  attr_ops(&ops);
  file_ops(&ops);
  dir_ops(&ops);
  rename_ops(&ops);
  g.se = fuse_session_new(&args, &ops, sizeof ops, NULL);
  if (!g.se) {
    control_stop();
    return 1;
  }
  if (fuse_set_signal_handlers(g.se) != 0 || fuse_session_mount(g.se, mp) != 0) {
    fprintf(stderr, "strata-viewd: cannot mount at %s\n", mp);
    control_stop();
    fuse_session_destroy(g.se);
    return 1;
  }
  if (pt_start(passthrough) != 0) vlog("libfuse refused the custom io: serving without passthrough and KILLPRIV_V2");
  if (notifier_start() != 0 || control_run() != 0 || watch_start() != 0) {
    fuse_session_unmount(g.se);
    control_stop();
    return 1;
  }
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  vlog("serving %s (base %s%s)", mp, bp, in_place ? ", in place" : "");

  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 1);
  fuse_loop_cfg_set_idle_threads(cfg, 8);
  fuse_loop_cfg_set_max_threads(cfg, 32);
  int r = fuse_session_loop_mt(g.se, cfg);
  fuse_loop_cfg_destroy(cfg);

  if (r > 0) vlog("stopping (signal %d)", r);
  else vlog("stopping (%s)", r < 0 ? strerror(-r) : "unmounted");
  control_stop();
  fuse_session_unmount(g.se);
  /* No fuse_session_destroy: the control and notifier threads may still hold the session; the
     process ends here. */
  return 0;
}
