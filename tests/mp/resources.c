/* resources.c - see resources.h. */
#include "resources.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

double res_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void proc_path(char *out, size_t len, pid_t pid, const char *what) {
  if (pid == 0) snprintf(out, len, "/proc/self/%s", what);
  else snprintf(out, len, "/proc/%d/%s", (int)pid, what);
}

int res_fds(pid_t pid) {
  char path[64];
  proc_path(path, sizeof path, pid, "fd");
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  /* the directory stream's own fd, when it is this process's */
  if (pid == 0 || pid == getpid()) n--;
  closedir(d);
  return n;
}

static long status_field(pid_t pid, const char *key) {
  char path[64], line[256];
  proc_path(path, sizeof path, pid, "status");
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t klen = strlen(key);
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      v = strtol(line + klen + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

int res_threads(pid_t pid) { return (int)status_field(pid, "Threads"); }

long res_status_kb(const char *key) { return status_field(0, key); }

/* hring-<hex>-<rank>-<pid>: the last dash-separated field is the pid. */
static int shm_name_pid(const char *name, pid_t *pid) {
  if (strncmp(name, "hring-", 6) != 0) return 0;
  const char *dash = strrchr(name, '-');
  if (!dash || !dash[1]) return 0;
  char *end;
  long v = strtol(dash + 1, &end, 10);
  if (*end) return 0;
  *pid = (pid_t)v;
  return 1;
}

static int shm_count(pid_t want, int any) {
  DIR *d = opendir("/dev/shm");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    pid_t p;
    if (shm_name_pid(e->d_name, &p) && (any || p == want)) n++;
  }
  closedir(d);
  return n;
}

int res_shm_count(pid_t pid) { return shm_count(pid, 0); }
int res_shm_count_all(void) { return shm_count(0, 1); }

/* The name of the shared segment a /proc/<pid>/maps line maps, or NULL:
 * named POSIX segments (/dev/shm/NAME) and hring's memfds (/memfd:NAME). */
static const char *seg_name(const char *line) {
  const char *p = strstr(line, " /dev/shm/");
  if (p) return p + 10;
  p = strstr(line, " /memfd:hring-");
  return p ? p + 8 : NULL;
}

int res_shm_maps(pid_t pid) {
  char path[64], line[1024];
  proc_path(path, sizeof path, pid, "maps");
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (seg_name(line)) n++;
  fclose(f);
  return n;
}

int res_shm_maps_own(pid_t pid) {
  char path[64], line[1024];
  pid_t self = pid ? pid : getpid();
  proc_path(path, sizeof path, pid, "maps");
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    const char *p = seg_name(line);
    if (!p) continue;
    char name[256];
    if (sscanf(p, "%255s", name) != 1) continue;
    pid_t owner;
    if (shm_name_pid(name, &owner) && owner == self) n++;
  }
  fclose(f);
  return n;
}

void res_print_fds(const char *who) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], target[512];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    fprintf(stderr, "    %s: fd %s -> %s\n", who, e->d_name, target);
  }
  closedir(d);
}

int res_socket_inodes(pid_t pid, unsigned long *out, int max) {
  char path[64];
  proc_path(path, sizeof path, pid, "fd");
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    if (e->d_name[0] == '.') continue;
    char fdpath[600], target[128];
    snprintf(fdpath, sizeof fdpath, "%s/%s", path, e->d_name);
    ssize_t len = readlink(fdpath, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = '\0';
    unsigned long ino;
    if (sscanf(target, "socket:[%lu]", &ino) == 1) out[n++] = ino;
  }
  closedir(d);
  return n;
}

int res_tcp_scan(const unsigned long *inodes, int n, unsigned char *state) {
  static const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
  int found = 0;
  memset(state, 0, (size_t)n);
  for (int k = 0; k < 2; k++) {
    FILE *f = fopen(files[k], "r");
    if (!f) continue;
    char line[512];
    if (!fgets(line, sizeof line, f)) { /* header */
      fclose(f);
      continue;
    }
    while (fgets(line, sizeof line, f)) {
      /* sl local rem st queues tr retr uid timeout inode */
      unsigned st;
      unsigned long ino;
      if (sscanf(line, " %*s %*s %*s %x %*s %*s %*s %*s %*s %lu", &st, &ino) != 2 || ino == 0)
        continue;
      for (int i = 0; i < n; i++)
        if (inodes[i] == ino && !state[i]) {
          state[i] = (unsigned char)st;
          found++;
        }
    }
    fclose(f);
  }
  return found;
}

int res_pid_exists(pid_t pid) {
  if (kill(pid, 0) == 0) return 1;
  return errno != ESRCH;
}

int res_inject(const char *what) {
  const char *v = getenv("HTEST_INJECT");
  if (!v || !*v) return 0;
  size_t len = strlen(what);
  for (const char *p = v; (p = strstr(p, what)) != NULL; p += len)
    if ((p == v || p[-1] == ',') && (p[len] == '\0' || p[len] == ',')) return 1;
  return 0;
}

int res_settle(int fds, int threads, int shm, double timeout_s) {
  double t0 = res_now();
  for (;;) {
    if (res_fds(0) == fds && res_threads(0) == threads && res_shm_count(getpid()) == shm) return 1;
    if (res_now() - t0 > timeout_s) return 0;
    usleep(10000);
  }
}

/* ---- launcher ---- */

int res_fork_ranks(int nranks, res_body_fn body, void *arg, pid_t *pids) {
  fflush(NULL);
  for (int rank = 0; rank < nranks; rank++) {
    pids[rank] = fork();
    if (pids[rank] < 0) {
      for (int k = 0; k < rank; k++) {
        kill(pids[k], SIGKILL);
        waitpid(pids[k], NULL, 0);
      }
      return -1;
    }
    if (pids[rank] == 0) {
      body(rank, nranks, arg);
      fflush(NULL);
      _exit(htest_failures() ? 1 : 0);
    }
  }
  return 0;
}

int res_wait_ranks(int nranks, pid_t *pids, double timeout_s) {
  int failed = 0;
  double t0 = res_now();
  for (int rank = 0; rank < nranks; rank++) {
    int st = 0;
    pid_t got;
    while ((got = waitpid(pids[rank], &st, WNOHANG)) == 0) {
      if (res_now() - t0 > timeout_s) {
        fprintf(stderr, "  rank %d (pid %d) still running after %.0f s: killed\n", rank,
                (int)pids[rank], timeout_s);
        kill(pids[rank], SIGKILL);
        waitpid(pids[rank], &st, 0);
        got = pids[rank];
        break;
      }
      usleep(2000);
    }
    if (got < 0) {
      fprintf(stderr, "  rank %d: waitpid: %s\n", rank, strerror(errno));
      failed++;
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (WIFSIGNALED(st))
        fprintf(stderr, "  rank %d killed by signal %d\n", rank, WTERMSIG(st));
      else
        fprintf(stderr, "  rank %d exited %d\n", rank, WEXITSTATUS(st));
      failed++;
    }
  }
  return failed;
}

void *res_shared(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
