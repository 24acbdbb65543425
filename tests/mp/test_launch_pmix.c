/*
 * test_launch_pmix.c - hring_comm_init_env under the launchers people run:
 * every built *_perf through OpenMPI's mpirun and through Slurm's
 * `srun --mpi=pmix` on a one-node Slurm started for the test, with results
 * checked and each rank joining through PMIx, plus the error cases (a rank 0
 * that never joins must cost a timeout with a message, not a hang); the
 * same two launchers across 2 emulated hosts; and the same loop under
 * hring-run.  The work is done by the scripts of
 * tests/launch/ (run alone, they print the same); these tests run them and
 * skip, with the script's reason, where a launcher is missing or the
 * machine does not allow it (exit status 77).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
#include "mp.h"

#define LP_SKIP 77

/* The scripts next to the build (build/bin/../../tests/launch), else from
 * the current directory (the repository root, where make test runs). */
static void lp_script(const char *name, char *out, size_t len) {
  snprintf(out, len, "%s/../../tests/launch/%s", mp_bindir(), name);
  if (access(out, R_OK) != 0) snprintf(out, len, "tests/launch/%s", name);
  if (access(out, R_OK) != 0) htest_skip("tests/launch/%s not found", name);
}

/* Runs `bash script args`, echoing its lines (the figures of the run) to
 * stderr; returns its exit status, and its last line in last. */
static int lp_run(const char *script, const char *args, char *last, size_t len) {
  char cmd[8600];
  snprintf(cmd, sizeof cmd, "bash '%s' %s 2>&1", script, args);
  FILE *p = popen(cmd, "r");
  HREQUIRE(p, "popen(%s) failed", cmd);
  char line[4096];
  last[0] = '\0';
  while (fgets(line, sizeof line, p)) {
    fprintf(stderr, "  | %s", line);
    snprintf(last, len, "%s", line);
  }
  last[strcspn(last, "\n")] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void lp_check(const char *name, const char *args) {
  char script[4200], last[4096];
  lp_script(name, script, sizeof script);
  int rc = lp_run(script, args, last, sizeof last);
  const char *why = strncmp(last, "SKIP: ", 6) == 0 ? last + 6 : last;
  if (rc == LP_SKIP) htest_skip("%s: %s", name, why);
  HREQUIRE(rc == 0, "%s exited with %d (its FAIL lines above say why)", name, rc);
}

/* A script of tests/launch/ with the binaries' directory as its argument. */
static void lp_launch(const char *name) {
  char args[4200];
  snprintf(args, sizeof args, "'%s'", mp_bindir());
  lp_check(name, args);
}

HTEST(launch_mpirun, 240) { lp_launch("mpirun.sh"); }

HTEST(launch_srun, 300) { lp_launch("srun.sh"); }

/* Both launchers across 2 emulated hosts (network namespaces, each with its
 * own hostname), 2 ranks each: the ranks must see 2 nodes, shm within a
 * host and tcp between; every *_perf, all_reduce_perf under each forced
 * algorithm and with every op and datatype, launch_comms.  About 15 s each
 * on 2 idle cores; the limit leaves room for a loaded machine. */
HTEST(launch_mpirun_hosts, 120) { lp_launch("mpirun_hosts.sh"); }

HTEST(launch_srun_hosts, 120) { lp_launch("srun_hosts.sh"); }

/* The same loop under the built-in launcher, so the scripts' loop is known
 * to work with any launcher line. */
HTEST(launch_hring_run, 120) {
  char args[8600];
  for (int np = 2; np <= 4; np += 2) {
    snprintf(args, sizeof args, "'%s' '%s/hring-run' -n %d", mp_bindir(), mp_bindir(), np);
    lp_check("perfs.sh", args);
  }
}

/* A process that looks started by a PMIx server whose server is not there
 * (the variables set, no server listening) must fail at once, saying so. */
HTEST(launch_pmix_unreachable, 60) {
  char supp[4200], cmd[8600], line[4096], all[16384] = "";
  lp_script("lsan.supp", supp, sizeof supp);
  const char *lsan = getenv("LSAN_OPTIONS");
  snprintf(cmd, sizeof cmd,
           "timeout -k 5 30 env -u HRING_ROOT -u MASTER_ADDR PMIX_NAMESPACE=hring-test "
           "PMIX_RANK=0 PMIX_SERVER_URI41='hring-test.0;tcp4://127.0.0.1:1' "
           "PMIX_SERVER_URI4='hring-test.0;tcp4://127.0.0.1:1' "
           "LSAN_OPTIONS='%s%ssuppressions=%s:print_suppressions=0' "
           "'%s/all_reduce_perf' -b 8 -e 8 2>&1",
           lsan ? lsan : "", lsan ? ":" : "", supp, mp_bindir());
  FILE *p = popen(cmd, "r");
  HREQUIRE(p, "popen failed");
  while (fgets(line, sizeof line, p)) {
    fprintf(stderr, "  | %s", line);
    strncat(all, line, sizeof all - strlen(all) - 1);
  }
  int st = pclose(p);
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (strstr(all, "no PMIx support") || strstr(all, "libpmix not loadable"))
    htest_skip("this build or machine has no PMIx (the message above says which)");
  HCHECK(rc != 0 && rc != 124 && rc != 137, "exit status %d: expected a prompt failure", rc);
  HCHECK(strstr(all, "PMIx_Init failed"), "no 'PMIx_Init failed' in the output");
}
