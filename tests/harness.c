/*
 * harness.c - fork-per-test runner with timeouts.
 *
 * usage: hring-tests [-l] [-j N] [-t SCALE] [FILTER...]
 *   -l        list tests
 *   -j N      run up to N tests at once (default 1: multi-process tests
 *             already load both cores)
 *   -t SCALE  multiply every timeout by SCALE (sanitizer and valgrind builds)
 *   FILTER    run only tests whose name contains one of these substrings
 * Exit status: 0 when nothing failed.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HTEST_MAX 1024
#define HTEST_SKIP_CODE 77

struct htest {
  const char *name;
  htest_fn fn;
  int timeout_s;
};
static struct htest tests[HTEST_MAX];
static int ntests;
static int failures;

void htest_register(const char *name, htest_fn fn, int timeout_s) {
  if (ntests < HTEST_MAX) tests[ntests++] = (struct htest){name, fn, timeout_s};
}

void htest_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  FAIL %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  failures++;
}

int htest_failures(void) { return failures; }

void htest_end(void) {
  fflush(NULL);
  _exit(failures ? 1 : 0);
}

void htest_skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  SKIP: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(NULL);
  _exit(HTEST_SKIP_CODE);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int selected(const char *name, int nfilt, char **filt) {
  if (nfilt == 0) return 1;
  for (int i = 0; i < nfilt; i++)
    if (strstr(name, filt[i])) return 1;
  return 0;
}

struct running {
  pid_t pid;
  int idx;
  double start;
};

/* Kills the whole process group of a test: multi-process tests fork ranks. */
static void kill_test(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

int main(int argc, char **argv) {
  int jobs = 1, list = 0;
  double scale = 1.0;
  int opt;
  while ((opt = getopt(argc, argv, "lj:t:")) != -1) {
    if (opt == 'l') list = 1;
    else if (opt == 'j') jobs = atoi(optarg) > 0 ? atoi(optarg) : 1;
    else if (opt == 't') scale = atof(optarg) > 0 ? atof(optarg) : 1.0;
    else {
      fprintf(stderr, "usage: %s [-l] [-j N] [-t SCALE] [FILTER...]\n", argv[0]);
      return 2;
    }
  }
  const char *env_scale = getenv("HTEST_TIMEOUT_SCALE");
  if (env_scale && atof(env_scale) > 0) scale = atof(env_scale);
  int nfilt = argc - optind;
  char **filt = argv + optind;
  if (list) {
    for (int i = 0; i < ntests; i++)
      if (selected(tests[i].name, nfilt, filt)) printf("%s\n", tests[i].name);
    return 0;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  int passed = 0, failed = 0, skipped = 0, next = 0, nrun = 0;
  struct running run[64];
  if (jobs > 64) jobs = 64;
  for (;;) {
    while (nrun < jobs && next < ntests) {
      int i = next++;
      if (!selected(tests[i].name, nfilt, filt)) continue;
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) {
        perror("fork");
        failed++;
        continue;
      }
      if (pid == 0) {
        setpgid(0, 0);
        failures = 0;
        tests[i].fn();
        htest_end();
      }
      setpgid(pid, pid);
      run[nrun++] = (struct running){pid, i, now_s()};
    }
    if (nrun == 0) break;
    int status;
    pid_t done = waitpid(-1, &status, WNOHANG);
    if (done <= 0) {
      usleep(2000);
      for (int k = 0; k < nrun; k++) {
        struct htest *t = &tests[run[k].idx];
        if (now_s() - run[k].start > t->timeout_s * scale) {
          kill_test(run[k].pid);
          waitpid(run[k].pid, &status, 0);
          printf("FAIL %-48s timeout after %.0f s\n", t->name, t->timeout_s * scale);
          failed++;
          run[k] = run[--nrun];
          k--;
        }
      }
      continue;
    }
    for (int k = 0; k < nrun; k++) {
      if (run[k].pid != done) continue;
      struct htest *t = &tests[run[k].idx];
      double dt = now_s() - run[k].start;
      kill(-done, SIGKILL); /* leftover ranks of a failed multi-process test */
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok   %-48s %.2f s\n", t->name, dt);
        passed++;
      } else if (WIFEXITED(status) && WEXITSTATUS(status) == HTEST_SKIP_CODE) {
        printf("skip %-48s\n", t->name);
        skipped++;
      } else if (WIFSIGNALED(status)) {
        printf("FAIL %-48s killed by signal %d (%s)\n", t->name, WTERMSIG(status),
               strsignal(WTERMSIG(status)));
        failed++;
      } else {
        printf("FAIL %-48s exit %d\n", t->name, WEXITSTATUS(status));
        failed++;
      }
      run[k] = run[--nrun];
      break;
    }
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : 0;
}
