/* mp.c - forked multi-rank test bodies (see mp.h). */
#include "mp.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* MP_NETNS=PREFIX:K: process `index` joins the network namespace
 * PREFIX<index % K> (tests/netns/cluster.sh made them), as if on another
 * host.  Returns 0, or -1 with a message. */
static int enter_netns(int index) {
  const char *v = getenv("MP_NETNS");
  if (!v || !*v) return 0;
  char prefix[64];
  int k = 0;
  const char *colon = strchr(v, ':');
  if (!colon || (size_t)(colon - v) >= sizeof prefix || (k = atoi(colon + 1)) <= 0) {
    fprintf(stderr, "  MP_NETNS=%s: expected PREFIX:K\n", v);
    return -1;
  }
  snprintf(prefix, sizeof prefix, "%.*s", (int)(colon - v), v);
  char path[128];
  snprintf(path, sizeof path, "/var/run/netns/%s%d", prefix, index % k);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "  cannot enter %s: %s\n", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

/* The bootstrap root is a thread; forking ranks from a process that runs
 * threads can hand a child a lock held at the fork (seen with ASan's
 * allocator).  So the root lives in a child of its own, which passes the id
 * back through a pipe, and the ranks are forked from this single-threaded
 * process. */
pid_t mp_start_root(hring_unique_id_t *id) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    if (enter_netns(0) != 0) _exit(1);
    hring_result_t r = hring_get_unique_id(id);
    if (r != HRING_SUCCESS) {
      fprintf(stderr, "  hring_get_unique_id: %s: %s\n", hring_strerror(r), hring_last_error());
      _exit(1);
    }
    if (write(fds[1], id, sizeof *id) != (ssize_t)sizeof *id) _exit(1);
    close(fds[1]);
    for (;;) pause(); /* serve the root thread until killed */
  }
  close(fds[1]);
  ssize_t n = read(fds[0], id, sizeof *id);
  close(fds[0]);
  if (n != (ssize_t)sizeof *id) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

int mp_node_of(int rank) {
  const char *p = getenv("MP_NODE_MAP");
  if (!p || !*p) return -1;
  for (int r = 0; r < rank && p; r++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  return p && *p >= '0' && *p <= '9' ? atoi(p) : -1;
}

int mp_run(int nranks, mp_body_fn body, void *arg) {
  hring_unique_id_t id;
  hring_result_t r;
  pid_t root = mp_start_root(&id);
  if (root < 0) return nranks;
  fflush(NULL);
  pid_t pids[256];
  for (int rank = 0; rank < nranks; rank++) {
    pids[rank] = fork();
    if (pids[rank] < 0) {
      kill(root, SIGKILL);
      return nranks;
    }
    if (pids[rank] == 0) {
      hring_comm_t comm;
      if (enter_netns(rank) != 0) _exit(1);
      /* MP_PIN_EACH=1 pins rank r to the r-th CPU it may use (mod their
       * number), as a launcher that gives each rank a core does. */
      const char *pin = getenv("MP_PIN_EACH");
      cpu_set_t allowed, one;
      if (pin && *pin == '1' && sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
        for (int c = 0, k = 0; c < CPU_SETSIZE; c++)
          if (CPU_ISSET(c, &allowed) && k++ == rank % CPU_COUNT(&allowed)) {
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            if (sched_setaffinity(0, sizeof one, &one) != 0) _exit(1);
          }
      }
      /* MP_NODES=k splits the ranks into k emulated nodes (rank % k);
       * MP_NODE_MAP lists each rank's node, for nodes of unequal sizes. */
      const char *nodes = getenv("MP_NODES");
      int node_index = mp_node_of(rank);
      if (node_index < 0 && nodes && atoi(nodes) > 0) node_index = rank % atoi(nodes);
      if (node_index >= 0) {
        char node[32];
        snprintf(node, sizeof node, "mpnode%d", node_index);
        setenv("HRING_NODE_ID", node, 1);
      }
      r = hring_comm_init_rank(&comm, nranks, id, rank);
      if (r != HRING_SUCCESS) {
        fprintf(stderr, "  rank %d: init: %s: %s\n", rank, hring_strerror(r), hring_last_error());
        fflush(NULL);
        _exit(1);
      }
      body(comm, rank, nranks, arg);
      r = hring_comm_destroy(comm);
      if (r != HRING_SUCCESS) htest_fail(__FILE__, __LINE__, "destroy: %s", hring_strerror(r));
      fflush(NULL);
      _exit(htest_failures() ? 1 : 0);
    }
  }
  int failed = 0;
  for (int rank = 0; rank < nranks; rank++) {
    int st;
    waitpid(pids[rank], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (WIFSIGNALED(st)) fprintf(stderr, "  rank %d killed by signal %d\n", rank, WTERMSIG(st));
      failed++;
    }
  }
  kill(root, SIGKILL);
  waitpid(root, NULL, 0);
  return failed;
}

const char *mp_bindir(void) {
  static char dir[PATH_MAX];
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return ".";
  exe[n] = '\0';
  snprintf(dir, sizeof dir, "%s", dirname(exe));
  return dir;
}
