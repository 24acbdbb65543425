/* The tools read every option value strictly: each bad value below ends
 * the run with status 2 before anything is measured or simulated (nothing
 * on stdout), with a message on stderr naming what was wrong; the same
 * tools with good values run. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "mp/mp.h"

typedef struct {
  const char *tool; /* in the build's bin/ */
  const char *args; /* and environment settings after a '|' */
  const char *name; /* what stderr must mention */
} bad_case_t;

static const bad_case_t bad[] = {
    {"hring-sim", "-P 16,x", "-P"},
    {"hring-sim", "-P 16,,", "-P"},
    {"hring-sim", "--fusion resnet50 --cost-error 1,0", "--cost-error"},
    {"hring-sim", "--fusion resnet50 --cost-error 1,,2", "--cost-error"},
    {"hring-sim", "-k -3", "-k"},
    {"hring-sim", "-b 1Q", "-b"},
    {"hring-sim", "-e 4M5", "-e"},
    {"hring-sim", "-x 1", "-x"},
    {"hring-sim", "--chunk 0", "--chunk"},
    {"hring-sim", "--inter-alpha nan", "--inter-alpha"},
    {"hring-sim", "--intra-beta -1e-9", "--intra-beta"},
    {"hring-sim", "--gpu-tflops 0", "--gpu-tflops"},
    {"hring-sim", "--batch 12b", "--batch"},
    {"hring-sim", "--grad-bytes 9", "--grad-bytes"},
    {"hring-sim", "--launch-us inf", "--launch-us"},
    {"hring-sim", "--fusion-algos some", "--fusion-algos"},
    {"hring-sim", "-b 64K -e 1K", "-b"},
    {"hring-tune", "-r 3x", "-r"},
    {"hring-tune", "-r 0", "-r"},
    {"fusion_perf", "-r 2x", "usage"},
    {"fusion_perf", "-n 0", "usage"},
    {"fusion_perf", "-w -1", "usage"},
    {"fusion_perf", "-c 1s", "usage"},
    {"fusion_perf", "-c auto:0", "usage"},
    {"fusion_perf", "-c auto:1x", "usage"},
    {"fusion_perf", "-i steps", "usage"},
    {"all_reduce_perf", "-b 8x", "-b"},
    {"all_reduce_perf", "--target_time 0.1s", "--target_time"},
    {"all_reduce_perf", "-b 8 -e 8|NCCL_TESTS_MIN_BW=fast", "NCCL_TESTS_MIN_BW"},
};

static void run_bad(const bad_case_t *c) {
  char cmd[512], err[64], line[512];
  snprintf(err, sizeof err, "/tmp/hring-tool-args-%d.err", (int)getpid());
  const char *bar = strchr(c->args, '|');
  int arglen = bar ? (int)(bar - c->args) : (int)strlen(c->args);
  snprintf(cmd, sizeof cmd, "env %s %s/%s %.*s 2>%s", bar ? bar + 1 : "", mp_bindir(), c->tool,
           arglen, c->args, err);
  FILE *f = popen(cmd, "r");
  HREQUIRE(f, "popen %s", cmd);
  int out = 0;
  while (fgets(line, sizeof line, f)) out = 1;
  int rc = pclose(f);
  int named = 0;
  FILE *e = fopen(err, "r");
  while (e && fgets(line, sizeof line, e))
    if (strstr(line, c->name)) named = 1;
  if (e) fclose(e);
  unlink(err);
  HCHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "'%s' exited with %d, want 2", cmd, rc);
  HCHECK(!out, "'%s' wrote to stdout: it ran anyway", cmd);
  HCHECK(named, "'%s': stderr does not mention %s", cmd, c->name);
}

HTEST(tools_refuse_bad_values, 60) {
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) run_bad(&bad[i]);
  /* The options above, with good values. */
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "%s/hring-sim -b 1K -e 64K -P 16,64 -k 8 -x 2 --chunk 64K --inter-alpha 1e-5 "
           "> /dev/null 2>&1",
           mp_bindir());
  int rc = system(cmd);
  HCHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "'%s' exited with %d, want 0", cmd, rc);
  snprintf(cmd, sizeof cmd,
           "NCCL_TESTS_MIN_BW=0.000001 %s/hring-run -n 2 %s/all_reduce_perf -b 8 -e 64 "
           "--target_time 0.01 > /dev/null 2>&1",
           mp_bindir(), mp_bindir());
  rc = system(cmd);
  HCHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "'%s' exited with %d, want 0", cmd, rc);
}
