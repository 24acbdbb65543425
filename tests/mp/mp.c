/* mp.c - forked multi-rank test bodies (see mp.h). */
#include "mp.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int mp_run(int nranks, mp_body_fn body, void *arg) {
  hring_unique_id_t id;
  hring_result_t r = hring_get_unique_id(&id);
  if (r != HRING_SUCCESS) {
    fprintf(stderr, "  hring_get_unique_id: %s: %s\n", hring_strerror(r), hring_last_error());
    return nranks;
  }
  fflush(NULL);
  pid_t pids[256];
  for (int rank = 0; rank < nranks; rank++) {
    pids[rank] = fork();
    if (pids[rank] < 0) return nranks;
    if (pids[rank] == 0) {
      hring_comm_t comm;
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
