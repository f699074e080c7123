/*
 * What libfuse does not do for us around a mount: find our mount's device in
 * /proc/self/mountinfo (to tell our root from whatever is mounted there
 * later), detach a mount lazily (umount2 as root, else fusermount3 -uz), and
 * keep track of the fusermount3 helper that auto_unmount starts: its control
 * socket (libfuse leaves it inheritable) and its pid (libfuse never reaps it).
 * All of it blocks; the JS thread calls it only inside mount().
 */
#include "strata_fuse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Device numbers of the topmost mount at mp (mountinfo paths escape ' ', \t, \n, \\ as octal). */
int mountinfo_dev(const char *mp, unsigned *maj, unsigned *min) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return 0;
  char *line = NULL;
  size_t cap = 0;
  int found = 0;
  while (getline(&line, &cap, f) > 0) {
    unsigned a, b;
    int off = 0;
    if (sscanf(line, "%*u %*u %u:%u %*s %n", &a, &b, &off) != 2 || off == 0) continue;
    char path[4096];
    size_t n = 0;
    for (const char *p = line + off; *p && *p != ' ' && *p != '\n' && n + 1 < sizeof path; p++) {
      if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
        path[n++] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
        p += 3;
      } else {
        path[n++] = *p;
      }
    }
    path[n] = 0;
    if (strcmp(path, mp) == 0) { *maj = a; *min = b; found = 1; }
  }
  free(line);
  fclose(f);
  return found;
}

/* Is the directory open as fd the root of our mount? (asks the kernel only, not the daemon) */
int fd_is_our_root(mount_ctx *ctx, int fd) {
  struct statx stx;
  if (!ctx->have_dev) return 1;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) != 0) return 0;
  return stx.stx_dev_major == ctx->dev_major && stx.stx_dev_minor == ctx->dev_minor;
}

static int run_fusermount_unmount(const char *mp) {
  pid_t pid;
  char *const argv[] = {"fusermount3", "-u", "-q", "-z", "--", (char *)mp, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  int e = posix_spawnp(&pid, "fusermount3", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) return -e;
  int status = 0;
  while (waitpid(pid, &status, 0) == -1) {
    if (errno != EINTR) return -errno;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

void detach_mount(const char *mp) {
  if (geteuid() == 0) {
    if (umount2(mp, MNT_DETACH) == 0) return;
  }
  run_fusermount_unmount(mp);
}

int fd_connection_gone(int fd) {
  struct pollfd p = {.fd = fd, .events = 0, .revents = 0};
  return fd < 0 || (poll(&p, 1, 0) == 1 && (p.revents & POLLERR));
}

/* libfuse never waits for the auto_unmount fusermount3 helper: reap it once it
   has seen the control socket close, so no zombie stays per mount. */
void reap_helper(pid_t pid) {
  if (pid <= 0) return;
  for (int i = 0; i < 500; i++) {
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid || (r == -1 && errno != EINTR)) return;
    usleep(10000);
  }
}

/* Snapshot of open fds, to find the fusermount3 auto_unmount control socket
   that libfuse leaves open without FD_CLOEXEC (it would leak into every child). */
#define FDSET_MAX 65536
unsigned char *fd_snapshot(void) {
  unsigned char *set = calloc(FDSET_MAX / 8, 1);
  DIR *d = set ? opendir("/proc/self/fd") : NULL;
  if (!d) return set;
  struct dirent *de;
  while ((de = readdir(d))) {
    int fd = atoi(de->d_name);
    if (fd >= 0 && fd < FDSET_MAX) set[fd / 8] |= (unsigned char)(1u << (fd % 8));
  }
  closedir(d);
  return set;
}

/* Our children named fusermount3 (from /proc/<pid>/stat). */
int list_fusermount_children(pid_t *out) {
  DIR *d = opendir("/proc");
  int n = 0;
  pid_t self = getpid();
  if (!d) return 0;
  struct dirent *de;
  while ((de = readdir(d)) && n < MAX_KIDS) {
    char fn[300], buf[512];
    if (de->d_name[0] < '1' || de->d_name[0] > '9') continue;
    snprintf(fn, sizeof fn, "/proc/%s/stat", de->d_name);
    int fd = open(fn, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) continue;
    buf[len] = 0;
    char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
    int ppid = 0;
    if (!lp || !rp || sscanf(rp + 1, " %*c %d", &ppid) != 1 || ppid != self) continue;
    if ((size_t)(rp - lp - 1) == strlen("fusermount3") && strncmp(lp + 1, "fusermount3", rp - lp - 1) == 0)
      out[n++] = (pid_t)atoi(de->d_name);
  }
  closedir(d);
  return n;
}

pid_t find_helper(const pid_t *before, int n_before) {
  pid_t after[MAX_KIDS];
  int n = list_fusermount_children(after);
  pid_t found = 0;
  for (int i = 0; i < n; i++) {
    int old = 0;
    for (int j = 0; j < n_before; j++) old |= before[j] == after[i];
    if (!old) found = after[i];
  }
  return found;
}

int find_comm_fd(const unsigned char *before, int session_fd) {
  unsigned char *after = fd_snapshot();
  int found = -1;
  if (!before || !after) { free(after); return -1; }
  for (int fd = 0; fd < FDSET_MAX; fd++) {
    int was = before[fd / 8] & (1u << (fd % 8)), is = after[fd / 8] & (1u << (fd % 8));
    if (!is || was || fd == session_fd) continue;
    int fl = fcntl(fd, F_GETFD);
    int dom = 0, type = 0;
    socklen_t l1 = sizeof dom, l2 = sizeof type;
    if (fl < 0 || (fl & FD_CLOEXEC)) continue;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l1) != 0 || dom != AF_UNIX) continue;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) != 0 || type != SOCK_STREAM) continue;
    fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    found = fd;
  }
  free(after);
  return found;
}
