/*
 * test_nccl_shim.c - runs the NCCL program tests/nccl/nccl_shim_test.c
 * (compiled against the real nccl.h, linked to the shim libnccl.so.2) under
 * hring-run with 1, 2, 3 and 4 ranks.
 *
 * The binaries are found next to this test binary (build/bin); the test is
 * skipped when either is missing, as nccl_shim_test is only built where an
 * nccl.h exists.  Each run gets a fresh directory for the unique-id file, so
 * no rank can read a stale id, and LD_LIBRARY_PATH starts with build/lib, so
 * the shim is loaded even where a real NCCL is on the library path.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Output kept for the report (the program prints a few lines per rank). */
#define OUT_MAX (64 * 1024)

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Directory of the running test binary. */
static int exe_dir(char *dir, size_t n) {
  ssize_t len = readlink("/proc/self/exe", dir, n - 1);
  if (len <= 0) return -1;
  dir[len] = '\0';
  char *slash = strrchr(dir, '/');
  if (slash == NULL) return -1;
  *slash = '\0';
  return 0;
}

/* Child side: its own process group (so that a hung job can be killed as a
 * whole), output into the pipe, then exec hring-run. */
static void exec_job(int out_fd, const char *run, const char *prog, const char *libdir,
                     const char *id_path, int nranks) {
  setpgid(0, 0);
  dup2(out_fd, STDOUT_FILENO);
  dup2(out_fd, STDERR_FILENO);
  close(out_fd);
  char ld[PATH_MAX * 2];
  const char *old = getenv("LD_LIBRARY_PATH");
  snprintf(ld, sizeof ld, "%s%s%s", libdir, old && old[0] ? ":" : "", old && old[0] ? old : "");
  setenv("LD_LIBRARY_PATH", ld, 1);
  setenv("NCCL_SHIM_TEST_ID", id_path, 1);
  char n[16];
  snprintf(n, sizeof n, "%d", nranks);
  execl(run, run, "-n", n, prog, (char *)NULL);
  fprintf(stderr, "exec %s: %s\n", run, strerror(errno));
  _exit(127);
}

/* Removes the job's directory: the id files, and a temporary one that a
 * rank killed halfway through writing it may have left. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char path[PATH_MAX * 2];
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* The harness scales timeouts by HTEST_TIMEOUT_SCALE (sanitizer builds); the
 * job's own deadline follows. */
static int scaled(int seconds) {
  const char *s = getenv("HTEST_TIMEOUT_SCALE");
  double k = s ? atof(s) : 0;
  return k > 0 ? (int)(seconds * k) : seconds;
}

static void run_shim_test(int nranks, int deadline_s) {
  char bin[PATH_MAX], run[PATH_MAX + 16], prog[PATH_MAX + 16], libdir[PATH_MAX + 16];
  HREQUIRE(exe_dir(bin, sizeof bin) == 0, "cannot read /proc/self/exe");
  snprintf(run, sizeof run, "%s/hring-run", bin);
  snprintf(prog, sizeof prog, "%s/nccl_shim_test", bin);
  snprintf(libdir, sizeof libdir, "%s/../lib", bin);
  if (access(run, X_OK) != 0) HSKIP("%s not built", run);
  if (access(prog, X_OK) != 0) HSKIP("%s not built (no nccl.h found at build time?)", prog);

  const char *tmp = getenv("TMPDIR");
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/hring-nccl-shim-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  HREQUIRE(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
  char id_path[PATH_MAX + 8];
  snprintf(id_path, sizeof id_path, "%s/id", dir);

  int fds[2];
  HREQUIRE(pipe(fds) == 0, "pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  HREQUIRE(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    exec_job(fds[1], run, prog, libdir, id_path, nranks);
  }
  setpgid(pid, pid); /* also here: no race with the kill below */
  close(fds[1]);

  /* Collect the output until the job closes it or the deadline passes; the
   * deadline is below the test's timeout so that a hang is reported with the
   * output and the whole job is killed, not left running. */
  static char out[OUT_MAX + 1];
  size_t len = 0;
  int timed_out = 0;
  deadline_s = scaled(deadline_s);
  double deadline = mono_s() + deadline_s;
  for (;;) {
    int left_ms = (int)((deadline - mono_s()) * 1000);
    if (left_ms <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int r = poll(&p, 1, left_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char chunk[4096];
    ssize_t got = read(fds[0], chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    size_t keep = (size_t)got < OUT_MAX - len ? (size_t)got : OUT_MAX - len;
    memcpy(out + len, chunk, keep);
    len += keep;
  }
  out[len] = '\0';
  close(fds[0]);
  if (timed_out) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) kill(-pid, SIGKILL); /* ranks that outlived the launcher */

  int ok = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  HCHECK(!timed_out, "%d ranks: no result after %d s", nranks, deadline_s);
  HCHECK(timed_out || ok, "%d ranks: hring-run exit status 0x%x", nranks, (unsigned)status);
  for (int r = 0; r < nranks; r++) {
    char line[64];
    snprintf(line, sizeof line, "nccl_shim_test: rank %d OK", r);
    int found = strstr(out, line) != NULL;
    HCHECK(found, "%d ranks: no \"%s\" line", nranks, line);
    ok = ok && found;
  }
  if (!ok) fprintf(stderr, "---- output of %s -n %d %s ----\n%s----\n", run, nranks, prog, out);

  remove_dir(dir);
}

/* Timeouts allow for four ranks sharing two cores; the job's own deadline
 * is ten seconds shorter. */
HTEST(nccl_shim_1rank, 40) { run_shim_test(1, 30); }
HTEST(nccl_shim_2ranks, 60) { run_shim_test(2, 50); }
HTEST(nccl_shim_3ranks, 90) { run_shim_test(3, 80); }
HTEST(nccl_shim_4ranks, 90) { run_shim_test(4, 80); }
