/*
 * test_launcher.c - tests of hring-run, the local launcher.
 *
 * The tests run the built launcher (build/bin/hring-run, found next to the
 * test binary) on small /bin/sh commands and check what it prints, how it
 * exits and how fast it stops a job.  They are skipped when the launcher has
 * not been built.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A job that should stop at once counts as stopped quickly when it takes less
 * than this; the default grace period is 3 s, so it also shows that SIGTERM
 * (not the SIGKILL after the grace period) ended the other ranks. */
#define LT_QUICK_S 2.5

struct lt_buf {
  char *p;
  size_t len, cap;
};

struct lt_result {
  struct lt_buf out, err;
  int status;
  double secs;
};

static double lt_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void lt_append(struct lt_buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    HREQUIRE(q, "out of memory");
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static const char *lt_str(const struct lt_buf *b) { return b->p ? b->p : ""; }

static int lt_count(const char *hay, const char *needle) {
  int n = 0;
  size_t k = strlen(needle);
  for (const char *p = strstr(hay, needle); p; p = strstr(p + k, needle)) n++;
  return n;
}

/* The launcher next to this binary: build/bin/hring-run. */
static int lt_find(char *path, size_t n) {
  char self[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
  if (k <= 0) return -1;
  self[k] = '\0';
  char *slash = strrchr(self, '/');
  if (!slash) return -1;
  *slash = '\0';
  if ((size_t)snprintf(path, n, "%s/hring-run", self) >= n) return -1;
  return access(path, X_OK);
}

#define LT_LAUNCHER(path)                                                   \
  char path[PATH_MAX];                                                      \
  if (lt_find(path, sizeof path) != 0) HSKIP("hring-run not built next to the test binary")

/* Starts the launcher with argv (argv[0] is its path) and its stdout and
 * stderr on pipes.  The stop signals get their default action back, so a
 * test run from a script's background job still sees them forwarded. */
static pid_t lt_spawn(char *const argv[], int *outfd, int *errfd) {
  int op[2], ep[2];
  HREQUIRE(pipe2(op, O_CLOEXEC) == 0 && pipe2(ep, O_CLOEXEC) == 0, "pipe: %s",
           strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  HREQUIRE(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null = open("/dev/null", O_RDONLY);
    if (null > 0) dup2(null, 0);
    dup2(op[1], 1);
    dup2(ep[1], 2);
    execv(argv[0], argv);
    _exit(126);
  }
  close(op[1]);
  close(ep[1]);
  *outfd = op[0];
  *errfd = ep[0];
  return pid;
}

/* Reads one pipe once into b; closes it at end of file. */
static void lt_read_one(int *fd, struct lt_buf *b) {
  char chunk[65536];
  ssize_t k = read(*fd, chunk, sizeof chunk);
  if (k > 0) {
    lt_append(b, chunk, (size_t)k);
  } else if (k == 0 || errno != EINTR) {
    close(*fd);
    *fd = -1;
  }
}

/* Reads stdout and stderr until both end, then waits for the launcher. */
static void lt_collect(pid_t pid, int outfd, int errfd, struct lt_result *res, double t0) {
  while (outfd >= 0 || errfd >= 0) {
    struct pollfd p[2] = {{.fd = outfd, .events = POLLIN}, {.fd = errfd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) continue;
    if (outfd >= 0 && p[0].revents) lt_read_one(&outfd, &res->out);
    if (errfd >= 0 && p[1].revents) lt_read_one(&errfd, &res->err);
  }
  HREQUIRE(waitpid(pid, &res->status, 0) == pid, "waitpid: %s", strerror(errno));
  res->secs = lt_now() - t0;
}

/* Runs the launcher with the NULL-terminated arguments after `launcher`.
 * Returns its exit status (128 + signal when it died of one). */
static int lt_run(struct lt_result *res, const char *launcher, ...) {
  char *argv[64];
  int argc = 0;
  va_list ap;
  va_start(ap, launcher);
  argv[argc++] = (char *)launcher;
  for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;) argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  memset(res, 0, sizeof *res);
  int outfd, errfd;
  double t0 = lt_now();
  pid_t pid = lt_spawn(argv, &outfd, &errfd);
  lt_collect(pid, outfd, errfd, res, t0);
  if (WIFEXITED(res->status)) return WEXITSTATUS(res->status);
  return 128 + WTERMSIG(res->status);
}

static void lt_free(struct lt_result *res) {
  free(res->out.p);
  free(res->err.p);
  memset(res, 0, sizeof *res);
}

/* ---- Environment --------------------------------------------------------- */

static int lt_is_hex32(const char *s) {
  if (strlen(s) != 32) return 0;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
  return 1;
}

/* Runs N ranks that print their environment and checks it.  Stores the job
 * secret in secret_out (33 bytes). */
static void lt_check_env(const char *launcher, int n, char *secret_out) {
  char nstr[16];
  snprintf(nstr, sizeof nstr, "%d", n);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", nstr, "/bin/sh", "-c",
                  "echo \"$HRING_RANK $HRING_NRANKS $HRING_LOCAL_RANK $HRING_LOCAL_SIZE "
                  "$HRING_ROOT $HRING_SECRET\"",
                  NULL);
  HCHECK(rc == 0, "n=%d: exit status %d, stderr: %s", n, rc, lt_str(&res.err));
  HCHECK(res.err.len == 0, "n=%d: unexpected stderr: %s", n, lt_str(&res.err));
  int seen[16] = {0}, lines = 0;
  char root0[64] = "", secret0[64] = "";
  for (char *save = NULL, *line = strtok_r(res.out.p, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    int tag, rank, nranks, lrank, lsize;
    char root[64], secret[64];
    lines++;
    int k = sscanf(line, "[%d] %d %d %d %d %63s %63s", &tag, &rank, &nranks, &lrank,
                   &lsize, root, secret);
    HREQUIRE(k == 7, "n=%d: cannot parse line '%s'", n, line);
    HCHECK(tag == rank, "n=%d: prefix [%d] on the line of rank %d", n, tag, rank);
    HREQUIRE(rank >= 0 && rank < n, "n=%d: HRING_RANK %d out of range", n, rank);
    seen[rank]++;
    HCHECK(nranks == n && lsize == n, "n=%d: HRING_NRANKS %d HRING_LOCAL_SIZE %d", n,
           nranks, lsize);
    HCHECK(lrank == rank, "n=%d: HRING_LOCAL_RANK %d for rank %d", n, lrank, rank);
    int port = 0;
    char tail = 0;
    HCHECK(sscanf(root, "127.0.0.1:%d%c", &port, &tail) == 1 && port > 0 && port < 65536,
           "n=%d: HRING_ROOT '%s' is not 127.0.0.1:PORT", n, root);
    HCHECK(lt_is_hex32(secret), "n=%d: HRING_SECRET '%s' is not 32 hex digits", n, secret);
    if (!root0[0]) {
      strcpy(root0, root);
      strcpy(secret0, secret);
    }
    HCHECK(strcmp(root, root0) == 0, "n=%d: ranks disagree on HRING_ROOT: %s vs %s", n,
           root, root0);
    HCHECK(strcmp(secret, secret0) == 0, "n=%d: ranks disagree on HRING_SECRET", n);
  }
  HCHECK(lines == n, "n=%d: %d lines of output", n, lines);
  for (int r = 0; r < n; r++) HCHECK(seen[r] == 1, "n=%d: rank %d seen %d times", n, r, seen[r]);
  snprintf(secret_out, 33, "%.32s", secret0);
  lt_free(&res);
}

HTEST(launcher_env, 20) {
  LT_LAUNCHER(launcher);
  unsetenv("HRING_ROOT");
  unsetenv("HRING_SECRET");
  const int ns[] = {1, 3, 8};
  char secrets[3][33];
  for (int i = 0; i < 3; i++) lt_check_env(launcher, ns[i], secrets[i]);
  /* A fresh secret per job: three equal ones would mean no randomness. */
  HCHECK(strcmp(secrets[0], secrets[1]) != 0 && strcmp(secrets[1], secrets[2]) != 0,
         "the same secret in different jobs: %s", secrets[0]);
}

HTEST(launcher_env_kept, 10) {
  LT_LAUNCHER(launcher);
  setenv("HRING_ROOT", "10.1.2.3:4567", 1);
  setenv("HRING_SECRET", "00112233445566778899aabbccddeeff", 1);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", "2", "/bin/sh", "-c",
                  "echo \"$HRING_ROOT $HRING_SECRET\"", NULL);
  HCHECK(rc == 0, "exit status %d", rc);
  HCHECK(lt_count(lt_str(&res.out), "10.1.2.3:4567 00112233445566778899aabbccddeeff\n") == 2,
         "HRING_ROOT/HRING_SECRET from the environment not kept: %s", lt_str(&res.out));
  lt_free(&res);
}

/* ---- Pinning -------------------------------------------------------------- */

/* "0-3,8,10-11" (Cpus_allowed_list) into a set; -1 when it does not parse. */
static int lt_cpulist(const char *s, cpu_set_t *set) {
  CPU_ZERO(set);
  while (*s && *s != '\n') {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s) return -1;
    if (*end == '-') {
      s = end + 1;
      b = strtol(s, &end, 10);
      if (end == s) return -1;
    }
    for (long c = a; c <= b && c < CPU_SETSIZE; c++) CPU_SET((int)c, set);
    s = *end == ',' ? end + 1 : end;
  }
  return 0;
}

/* Runs n ranks printing their CPUs; sets[r] gets rank r's. */
static void lt_rank_cpus(const char *launcher, const char *bind, int n, cpu_set_t *sets) {
  char nv[16];
  snprintf(nv, sizeof nv, "%d", n);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "--bind", bind, "-n", nv, "/bin/sh", "-c",
                  "grep Cpus_allowed_list /proc/self/status", NULL);
  HCHECK(rc == 0, "--bind %s -n %d: exit status %d: %s", bind, n, rc, lt_str(&res.err));
  int seen = 0;
  for (char *save = NULL, *line = strtok_r(res.out.p, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    int r = -1;
    char list[256] = "";
    if (sscanf(line, "[%d] Cpus_allowed_list: %255s", &r, list) == 2 && r >= 0 && r < n &&
        lt_cpulist(list, &sets[r]) == 0)
      seen++;
  }
  HCHECK(seen == n, "--bind %s -n %d: %d of the ranks' CPU lists read", bind, n, seen);
  lt_free(&res);
}

#define LT_PIN_MAX 64
/* --bind cores: each rank gets CPUs of its own, together all the
 * launcher's, when there are at least as many as ranks; with more ranks,
 * consecutive ranks share a core, as by default (auto); by default with
 * enough CPUs, with --bind none, or with HRING_BIND set (the library pins
 * then), every rank keeps them all. */
HTEST(launcher_pins_ranks, 20) {
  LT_LAUNCHER(launcher);
  unsetenv("HRING_BIND");
  static cpu_set_t sets[LT_PIN_MAX + 1];
  cpu_set_t all, u, x;
  HREQUIRE(sched_getaffinity(0, sizeof all, &all) == 0, "sched_getaffinity");
  const int ncpu = CPU_COUNT(&all);
  const int ns[] = {1, 2};
  for (size_t i = 0; i < 2; i++) {
    const int n = ns[i];
    if (n > ncpu) continue;
    lt_rank_cpus(launcher, "cores", n, sets);
    CPU_ZERO(&u);
    for (int r = 0; r < n; r++) {
      CPU_AND(&x, &u, &sets[r]);
      HCHECK(CPU_COUNT(&sets[r]) > 0 && CPU_COUNT(&x) == 0,
             "-n %d: rank %d has %d CPUs, %d shared with a lower rank", n, r, CPU_COUNT(&sets[r]),
             CPU_COUNT(&x));
      CPU_OR(&u, &u, &sets[r]);
    }
    HCHECK(CPU_EQUAL(&u, &all), "-n %d: the ranks' CPUs are not the launcher's %d", n, ncpu);
  }
  for (int k = 0; k < 2 && ncpu < LT_PIN_MAX; k++) {
    /* One rank more than CPUs, with cores and with auto: consecutive ranks
     * share a core, in blocks (rank r on core r * cores / n), together on
     * all the CPUs. */
    const char *mode = k ? "auto" : "cores";
    lt_rank_cpus(launcher, mode, ncpu + 1, sets);
    CPU_ZERO(&u);
    int shared = 0;
    for (int r = 0; r <= ncpu; r++) {
      CPU_AND(&x, &sets[r], &all);
      HCHECK((CPU_COUNT(&sets[r]) > 0 && CPU_EQUAL(&x, &sets[r]) &&
              !CPU_EQUAL(&sets[r], &all)) || CPU_COUNT(&all) == 1,
             "--bind %s, %d ranks on %d CPUs: rank %d has %d CPUs, not one core's", mode,
             ncpu + 1, ncpu, r, CPU_COUNT(&sets[r]));
      if (r > 0) {
        CPU_AND(&x, &sets[r], &sets[r - 1]);
        HCHECK(CPU_EQUAL(&sets[r], &sets[r - 1]) || CPU_COUNT(&x) == 0,
               "--bind %s, %d ranks on %d CPUs: ranks %d and %d overlap but differ", mode,
               ncpu + 1, ncpu, r - 1, r);
        shared += CPU_EQUAL(&sets[r], &sets[r - 1]);
        CPU_AND(&x, &sets[r], &u);
        HCHECK(CPU_EQUAL(&sets[r], &sets[r - 1]) || CPU_COUNT(&x) == 0,
               "--bind %s, %d ranks on %d CPUs: rank %d returns to an earlier core", mode,
               ncpu + 1, ncpu, r);
      }
      CPU_OR(&u, &u, &sets[r]);
    }
    HCHECK(shared > 0, "--bind %s, %d ranks on %d CPUs: no two consecutive ranks share a core", mode,
           ncpu + 1, ncpu);
    HCHECK(CPU_EQUAL(&u, &all), "--bind %s, %d ranks on %d CPUs: the ranks' CPUs are not the launcher's",
           mode, ncpu + 1, ncpu);
  }
  lt_rank_cpus(launcher, "none", 2, sets);
  for (int r = 0; r < 2; r++) HCHECK(CPU_EQUAL(&sets[r], &all), "--bind none: rank %d pinned", r);
  struct lt_result dflt;
  HCHECK(lt_run(&dflt, launcher, "-n", "2", "/bin/sh", "-c",
                "grep Cpus_allowed_list /proc/self/status", NULL) == 0, "default: %s",
         lt_str(&dflt.err));
  for (int r = 0; r < 2; r++) {
    char tag[8], list[256] = "";
    snprintf(tag, sizeof tag, "[%d] ", r);
    const char *at = strstr(lt_str(&dflt.out), tag);
    HCHECK(at && sscanf(at + strlen(tag), "Cpus_allowed_list: %255s", list) == 1 &&
               lt_cpulist(list, &sets[r]) == 0 && CPU_EQUAL(&sets[r], &all),
           "default: rank %d pinned (%s)", r, list);
  }
  lt_free(&dflt);
  setenv("HRING_BIND", "core", 1);
  lt_rank_cpus(launcher, "cores", 2, sets);
  unsetenv("HRING_BIND");
  for (int r = 0; r < 2; r++)
    HCHECK(CPU_EQUAL(&sets[r], &all), "HRING_BIND set: rank %d pinned by the launcher", r);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "--bind", "socket", "-n", "1", "true", NULL);
  HCHECK(rc == 2 && strstr(lt_str(&res.err), "--bind wants auto, cores or none"),
         "--bind socket: status %d, %s", rc, lt_str(&res.err));
  lt_free(&res);
}

/* ---- Output forwarding --------------------------------------------------- */

HTEST(launcher_prefix, 10) {
  LT_LAUNCHER(launcher);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", "2", "/bin/sh", "-c",
                  "echo out$HRING_RANK; echo err$HRING_RANK >&2; printf part$HRING_RANK",
                  NULL);
  const char *out = lt_str(&res.out), *err = lt_str(&res.err);
  HCHECK(rc == 0, "exit status %d", rc);
  HCHECK(strstr(out, "[0] out0\n") && strstr(out, "[1] out1\n"), "stdout: %s", out);
  /* The unfinished last line is printed at end of file, on a line of its own. */
  HCHECK(strstr(out, "[0] part0\n") && strstr(out, "[1] part1\n"), "stdout: %s", out);
  HCHECK(lt_count(out, "\n") == 4 && !strstr(out, "err"), "stdout: %s", out);
  HCHECK(strstr(err, "[0] err0\n") && strstr(err, "[1] err1\n"), "stderr: %s", err);
  HCHECK(lt_count(err, "\n") == 2 && !strstr(err, "out"), "stderr: %s", err);
  lt_free(&res);
}

HTEST(launcher_no_prefix, 10) {
  LT_LAUNCHER(launcher);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "--no-prefix", "-n", "2", "/bin/sh", "-c",
                  "echo out$HRING_RANK; echo err$HRING_RANK >&2", NULL);
  const char *out = lt_str(&res.out), *err = lt_str(&res.err);
  HCHECK(rc == 0, "exit status %d", rc);
  HCHECK(strcmp(out, "out0\nout1\n") == 0 || strcmp(out, "out1\nout0\n") == 0,
         "stdout: %s", out);
  HCHECK(strcmp(err, "err0\nerr1\n") == 0 || strcmp(err, "err1\nerr0\n") == 0,
         "stderr: %s", err);
  lt_free(&res);
}

/* Lines far longer than a pipe holds, from two ranks at once, must come out
 * whole: one prefix each, no bytes of the other rank inside. */
HTEST(launcher_long_lines, 15) {
  LT_LAUNCHER(launcher);
  enum { LEN = 300000 };
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", "2", "/bin/sh", "-c",
                  "head -c 300000 /dev/zero | tr '\\0' $HRING_RANK; echo; "
                  "head -c 100000 /dev/zero | tr '\\0' x >&2; printf tail",
                  NULL);
  HCHECK(rc == 0, "exit status %d", rc);
  int good[2] = {0, 0}, tails[2] = {0, 0}, lines = 0;
  for (char *save = NULL, *line = strtok_r(res.out.p, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    lines++;
    if (strcmp(line, "[0] tail") == 0 || strcmp(line, "[1] tail") == 0) {
      tails[line[1] - '0']++;
      continue;
    }
    size_t len = strlen(line);
    int r = line[1] - '0';
    HREQUIRE(len == LEN + 4 && (r == 0 || r == 1) && line[0] == '[' && line[2] == ']',
             "line of %zu bytes starting '%.8s'", len, line);
    HREQUIRE(strspn(line + 4, r ? "1" : "0") == LEN, "line of rank %d is mixed", r);
    good[r]++;
  }
  HCHECK(lines == 4 && good[0] == 1 && good[1] == 1 && tails[0] == 1 && tails[1] == 1,
         "%d lines, long %d/%d, tails %d/%d", lines, good[0], good[1], tails[0], tails[1]);
  /* The unfinished stderr line of each rank, prefixed once. */
  HCHECK(res.err.len == 2 * (100000 + 5) && lt_count(lt_str(&res.err), "] ") == 2,
         "stderr of %zu bytes", res.err.len);
  lt_free(&res);
}

/* ---- Failures ------------------------------------------------------------ */

HTEST(launcher_fail_status, 10) {
  LT_LAUNCHER(launcher);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", "3", "/bin/sh", "-c",
                  "if [ $HRING_RANK = 1 ]; then sleep 0.2; exit 7; fi; exec sleep 30", NULL);
  const char *err = lt_str(&res.err);
  HCHECK(rc == 7, "exit status %d, want the failing rank's 7", rc);
  HCHECK(res.secs < LT_QUICK_S, "the sleeping ranks lived %.2f s after the failure", res.secs);
  HCHECK(strstr(err, "hring-run: rank 1 (pid ") && strstr(err, ") exited with status 7\n"),
         "stderr: %s", err);
  /* Only the first failure is reported, not the ranks stopped because of it. */
  HCHECK(lt_count(err, "hring-run: rank") == 1, "stderr: %s", err);
  lt_free(&res);
}

/* A rank that ignores SIGTERM is killed when the grace period ends. */
HTEST(launcher_grace_kill, 10) {
  LT_LAUNCHER(launcher);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", "2", "--grace", "0.5", "/bin/sh", "-c",
                  "trap '' TERM; if [ $HRING_RANK = 1 ]; then sleep 0.2; exit 3; fi; sleep 30",
                  NULL);
  HCHECK(rc == 3, "exit status %d", rc);
  HCHECK(res.secs >= 0.6, "the rank ignoring SIGTERM was gone after %.2f s", res.secs);
  HCHECK(res.secs < LT_QUICK_S, "SIGKILL came %.2f s after the start", res.secs);
  HCHECK(strstr(lt_str(&res.err), "SIGKILL"), "stderr: %s", lt_str(&res.err));
  lt_free(&res);
}

HTEST(launcher_rank_signal, 10) {
  LT_LAUNCHER(launcher);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", "2", "/bin/sh", "-c",
                  "if [ $HRING_RANK = 0 ]; then sleep 0.1; kill -USR1 $$; fi; exec sleep 30",
                  NULL);
  const char *err = lt_str(&res.err);
  HCHECK(rc == 128 + SIGUSR1, "exit status %d, want %d", rc, 128 + SIGUSR1);
  HCHECK(res.secs < LT_QUICK_S, "job took %.2f s", res.secs);
  char want[64];
  snprintf(want, sizeof want, "killed by signal %d (SIGUSR1)", SIGUSR1);
  HCHECK(strstr(err, "hring-run: rank 0 (pid ") && strstr(err, want), "stderr: %s", err);
  lt_free(&res);
}

HTEST(launcher_timeout, 10) {
  LT_LAUNCHER(launcher);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "--timeout", "0.5", "-n", "2", "sleep", "30", NULL);
  HCHECK(rc == 124, "exit status %d, want 124", rc);
  HCHECK(res.secs >= 0.45 && res.secs < LT_QUICK_S, "stopped after %.2f s", res.secs);
  HCHECK(strstr(lt_str(&res.err), "timeout"), "stderr: %s", lt_str(&res.err));
  lt_free(&res);
  /* A job that ends in time is not touched by the timeout. */
  rc = lt_run(&res, launcher, "--timeout", "5", "-n", "2", "true", NULL);
  HCHECK(rc == 0 && res.secs < LT_QUICK_S, "exit status %d after %.2f s", rc, res.secs);
  lt_free(&res);
}

/* ---- Signals to the launcher ---------------------------------------------- */

/* Reads stdout until `want` occurrences of `needle` or the deadline. */
static int lt_wait_for(int fd, struct lt_buf *b, const char *needle, int want, double secs) {
  double end = lt_now() + secs;
  while (lt_count(lt_str(b), needle) < want) {
    int ms = (int)((end - lt_now()) * 1000.0);
    if (ms <= 0) return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) continue;
    char chunk[4096];
    ssize_t k = read(fd, chunk, sizeof chunk);
    if (k <= 0) return -1;
    lt_append(b, chunk, (size_t)k);
  }
  return 0;
}

HTEST(launcher_sigint, 10) {
  LT_LAUNCHER(launcher);
  char *argv[] = {launcher, "-n", "2", "/bin/sh", "-c",
                  "trap 'echo got-int; exit 0' INT; echo ready; "
                  "while :; do sleep 0.05; done",
                  NULL};
  struct lt_result res;
  memset(&res, 0, sizeof res);
  int outfd, errfd;
  pid_t pid = lt_spawn(argv, &outfd, &errfd);
  HREQUIRE(lt_wait_for(outfd, &res.out, "ready\n", 2, 5.0) == 0, "ranks not ready: %s",
           lt_str(&res.out));
  double t0 = lt_now();
  kill(pid, SIGINT);
  lt_collect(pid, outfd, errfd, &res, t0);
  const char *out = lt_str(&res.out);
  HCHECK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 128 + SIGINT,
         "launcher status 0x%x, want exit %d", res.status, 128 + SIGINT);
  HCHECK(strstr(out, "[0] got-int\n") && strstr(out, "[1] got-int\n"),
         "SIGINT not passed to the ranks: %s", out);
  HCHECK(res.secs < LT_QUICK_S, "stopped %.2f s after SIGINT", res.secs);
  lt_free(&res);
}

/* The ranks die with a launcher killed by SIGKILL.  This test process is made
 * the subreaper, so the orphaned ranks become its children and their end can
 * be waited for. */
HTEST(launcher_killed, 10) {
  LT_LAUNCHER(launcher);
  HREQUIRE(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER: %s",
           strerror(errno));
  char *argv[] = {launcher, "--no-prefix", "-n", "3", "/bin/sh", "-c",
                  "echo pid $$; exec sleep 30", NULL};
  struct lt_buf out = {0};
  int outfd, errfd;
  pid_t pid = lt_spawn(argv, &outfd, &errfd);
  HREQUIRE(lt_wait_for(outfd, &out, "\n", 3, 5.0) == 0, "ranks not started: %s",
           lt_str(&out));
  pid_t ranks[3];
  int nr = 0;
  for (const char *p = strstr(lt_str(&out), "pid "); p && nr < 3; p = strstr(p + 4, "pid "))
    ranks[nr++] = (pid_t)atoi(p + 4);
  HREQUIRE(nr == 3, "rank pids: %s", lt_str(&out));
  int status;
  kill(pid, SIGKILL);
  HREQUIRE(waitpid(pid, &status, 0) == pid, "waitpid launcher: %s", strerror(errno));
  double end = lt_now() + 3.0;
  for (int i = 0; i < nr; i++) {
    pid_t got = 0;
    while ((got = waitpid(ranks[i], &status, WNOHANG)) == 0 && lt_now() < end) usleep(10000);
    HCHECK(got == ranks[i], "rank pid %d still running after the launcher died",
           (int)ranks[i]);
    if (got == ranks[i])
      HCHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "rank status 0x%x", status);
    else
      kill(ranks[i], SIGKILL);
  }
  close(outfd);
  close(errfd);
  free(out.p);
}

/* ---- Bad usage ------------------------------------------------------------ */

HTEST(launcher_exec_failure, 10) {
  LT_LAUNCHER(launcher);
  struct lt_result res;
  int rc = lt_run(&res, launcher, "-n", "2", "/nonexistent-dir/prog", NULL);
  HCHECK(rc == 2 && strstr(lt_str(&res.err), "cannot execute /nonexistent-dir/prog"),
         "exit status %d, stderr: %s", rc, lt_str(&res.err));
  lt_free(&res);
  rc = lt_run(&res, launcher, "-n", "2", "hring-no-such-program", NULL);
  HCHECK(rc == 2 && strstr(lt_str(&res.err), "hring-no-such-program"),
         "exit status %d, stderr: %s", rc, lt_str(&res.err));
  lt_free(&res);

  /* An executable file whose interpreter is missing passes every check
   * before the start and fails in exec() itself, in the rank. */
  char dir[] = "/tmp/hring-launcher-XXXXXX";
  HREQUIRE(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
  char script[sizeof dir + 16];
  snprintf(script, sizeof script, "%s/script", dir);
  FILE *f = fopen(script, "w");
  HREQUIRE(f, "fopen %s: %s", script, strerror(errno));
  fputs("#!/nonexistent-dir/interpreter\n", f);
  fclose(f);
  chmod(script, 0755);
  rc = lt_run(&res, launcher, "-n", "3", script, NULL);
  const char *err = lt_str(&res.err);
  HCHECK(rc == 2, "exit status %d, stderr: %s", rc, err);
  HCHECK(strncmp(err, "hring-run: cannot execute ", 26) == 0 && strstr(err, "script: "),
         "stderr: %s", err);
  HCHECK(res.secs < LT_QUICK_S, "took %.2f s", res.secs);
  lt_free(&res);
  unlink(script);
  rmdir(dir);
}

HTEST(launcher_usage, 10) {
  LT_LAUNCHER(launcher);
  struct {
    const char *a[4];
    const char *what;
  } bad[] = {
      {{NULL}, "no arguments"},
      {{"true", NULL}, "missing -n"},
      {{"-n", "0", "true", NULL}, "-n 0"},
      {{"-n", "4097", "true", NULL}, "-n 4097"},
      {{"-n", "3x", "true", NULL}, "-n 3x"},
      {{"-n", "2", NULL}, "no program"},
      {{"--bogus", "-n", "2", "true"}, "unknown option"},
      {{"-n", "2", "--timeout", "soon"}, "bad timeout"},
  };
  struct lt_result res;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *const *a = bad[i].a;
    int rc = lt_run(&res, launcher, a[0], a[0] ? a[1] : NULL, a[0] && a[1] ? a[2] : NULL,
                    a[0] && a[1] && a[2] ? a[3] : NULL, NULL);
    HCHECK(rc == 2, "%s: exit status %d", bad[i].what, rc);
    HCHECK(strstr(lt_str(&res.err), "hring-run") != NULL, "%s: stderr: %s", bad[i].what,
           lt_str(&res.err));
    HCHECK(res.out.len == 0, "%s: stdout: %s", bad[i].what, lt_str(&res.out));
    lt_free(&res);
  }
  int rc = lt_run(&res, launcher, "--help", NULL);
  HCHECK(rc == 0 && strstr(lt_str(&res.out), "usage: hring-run"), "--help: %d, %s", rc,
         lt_str(&res.out));
  lt_free(&res);
  rc = lt_run(&res, launcher, "-h", NULL);
  HCHECK(rc == 0 && strstr(lt_str(&res.out), "usage: hring-run"), "-h: %d", rc);
  lt_free(&res);
  /* Options after the program belong to the program. */
  rc = lt_run(&res, launcher, "-n", "1", "--", "/bin/sh", "-c", "printf '%s\\n' \"$0\"", "-n",
              NULL);
  HCHECK(rc == 0 && strcmp(lt_str(&res.out), "[0] -n\n") == 0, "after --: %d, %s %s", rc, lt_str(&res.err),
         lt_str(&res.out));
  lt_free(&res);
}
