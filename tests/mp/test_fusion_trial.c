/*
 * test_fusion_trial.c - the measured trial of candidate plans after a
 * replan (src/fusion/fusion_trial.c): candidates alternate step by step,
 * the one of least median exposure is kept (a challenger only by a
 * margin), every rank keeps the same one whatever it measured itself, its
 * cost factor becomes the bias of later plans, and the fused results stay
 * exact while plans change under the steps.  The exposures are given to
 * the trial's step function here, so the pick does not depend on how
 * busy this machine is; the real measurement runs in test_fusion.c's
 * planned cases and in perf/fusion_perf.
 */
#include <stdlib.h>
#include <string.h>

#include "fusion/fusion_impl.h"
#include "hring_fusion.h"
#include "mp.h"

#define NT 6

HTEST(fusion_trial_pick_rules, 5) {
  /* Two steps per candidate: medians 2.0, 1.5, 1.0. */
  const double e[] = {2.0, 2.0, 1.4, 1.6, 0.9, 1.1};
  HCHECK(hring__fusion_trial_pick(e, 3, 2) == 2, "least median not kept");
  /* 0.95 of candidate 0 is inside the margin: candidate 0 stays. */
  const double close[] = {1.0, 1.0, 0.95, 0.95};
  HCHECK(hring__fusion_trial_pick(close, 2, 2) == 0, "a challenger within the margin won");
  /* One slow step of three does not decide (median). */
  const double spike[] = {1.0, 1.0, 1.0, 0.5, 9.0, 0.5};
  HCHECK(hring__fusion_trial_pick(spike, 2, 3) == 1, "a single slow step decided");
  HCHECK(hring__fusion_trial_pick(e, 0, 2) == 0 && hring__fusion_trial_pick(e, 3, 0) == 0 &&
             hring__fusion_trial_pick(e, 3, HRING_FUSION_TRIAL_MAX + 1) == 0,
         "bad counts must keep candidate 0");
}

/* Candidates: one bucket; every tensor alone; two buckets (cut at 3). */
static void set_candidates(struct hring_fusion *f) {
  int *c = f->trial_first;
  c[0] = 0;
  for (int i = 0; i < NT; i++) c[NT + i] = i;
  c[2 * NT] = 0, c[2 * NT + 1] = 3;
  const int k[3] = {1, NT, 2};
  const double factor[3] = {1.0, 0.7, 1.4};
  for (int j = 0; j < 3; j++) {
    f->trial_k[j] = k[j];
    f->trial_factor[j] = factor[j];
    f->trial_end[j] = 0.01 * (j + 1);
  }
  f->trial_n = 3;
  f->trial_pos = 0;
  hring__fusion_use_plan(f, 1, c, f->trial_end[0]);
}

static void trial_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  setenv("HRING_FUSION_TRIAL", "2", 1);
  hring_fusion_tensor_t t[NT];
  for (int i = 0; i < NT; i++) t[i] = (hring_fusion_tensor_t){NULL, (size_t)(1000 * i + 3)};
  hring_fusion_opts_t o = {HRING_INT32, HRING_SUM, 0, "planned", NULL};
  hring_fusion_t h;
  HREQUIRE(hring_fusion_create(comm, NT, t, &o, &h) == HRING_SUCCESS, "create: %s",
           hring_last_error());
  struct hring_fusion *f = (struct hring_fusion *)h;
  HREQUIRE(f->trial_steps == 2, "HRING_FUSION_TRIAL=2 read as %d", f->trial_steps);
  set_candidates(f);
  /* Per step (candidates 0,1,2,0,1,2): what this rank saw.  Rank 0 alone
   * finds candidate 1 fast; every other rank finds it slow, so the agreed
   * (slowest rank's) medians are 5, 8 (n > 1) or 1 (alone), and 3. */
  const double fast = rank == 0 ? 1e-3 : 8e-3;
  const double mine[6] = {5e-3, fast, 3e-3, 5e-3, fast, 3e-3};
  const int want_k[6] = {NT, 2, 1, NT, 2, 0};
  for (int s = 0; s < 6; s++) {
    f->last_exposed = mine[s];
    HREQUIRE(hring__fusion_trial_step(f) == HRING_SUCCESS, "trial step %d: %s", s,
             hring_last_error());
    if (s < 5)
      HCHECK(f->k == want_k[s], "rank %d: after trial step %d the plan has %d buckets, not %d",
             rank, s, f->k, want_k[s]);
  }
  int pick = n > 1 ? 2 : 1;
  HCHECK(f->trial_n == 0, "the trial did not end");
  HCHECK(f->k == f->trial_k[pick], "rank %d: kept a plan of %d buckets, want candidate %d's %d",
         rank, f->k, pick, f->trial_k[pick]);
  HCHECK(f->bias == f->trial_factor[pick], "bias %.2f, want %.2f", f->bias, f->trial_factor[pick]);
  int first[NT], k = hring_fusion_buckets(h, first, NT);
  HCHECK(k == f->trial_k[pick] &&
             memcmp(first, f->trial_first + pick * NT, sizeof(int) * (size_t)k) == 0,
         "rank %d: the plan kept is \"%s\"", rank, hring_fusion_plan(h));

  /* The kept plan reduces exactly, and a trial started from real timing
   * may change plans under the following steps: still exact. */
  for (int step = 0; step < 8; step++) {
    for (int i = 0; i < NT; i++) {
      int32_t *p = hring_fusion_tensor(h, i);
      for (size_t j = 0; j < t[i].count; j++)
        p[j] = (int32_t)((rank + 1) * (int)((i + j) % 5 + 1));
      HREQUIRE(hring_fusion_ready(h, i) == HRING_SUCCESS, "ready: %s", hring_last_error());
    }
    HREQUIRE(hring_fusion_wait(h) == HRING_SUCCESS, "wait: %s", hring_last_error());
    HCHECK(f->last_exposed >= 0 && f->last_exposed < 10, "exposure %g s", f->last_exposed);
    int bad = 0;
    for (int i = 0; i < NT; i++) {
      const int32_t *p = hring_fusion_tensor(h, i);
      for (size_t j = 0; j < t[i].count; j++)
        bad += p[j] != (int32_t)(n * (n + 1) / 2 * (int)((i + j) % 5 + 1));
    }
    HCHECK(bad == 0, "rank %d step %d: %d wrong elements", rank, step, bad);
  }
  hring_fusion_destroy(h);
  unsetenv("HRING_FUSION_TRIAL");
}

HTEST(fusion_trial_keeps_the_agreed_best, 60) {
  HCHECK(mp_run(1, trial_body, NULL) == 0, "1 rank: a rank failed");
  HCHECK(mp_run(3, trial_body, NULL) == 0, "3 ranks: a rank failed");
}

static void bad_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n, (void)arg;
  hring_fusion_tensor_t t[2] = {{NULL, 10}, {NULL, 20}};
  hring_fusion_opts_t o = {HRING_FLOAT32, HRING_SUM, 0, "planned", NULL};
  hring_fusion_t f = (hring_fusion_t)0x1;
  const char *bad[] = {"-1", "17", "1000000"};
  for (int b = 0; b < 3; b++) {
    setenv("HRING_FUSION_TRIAL", bad[b], 1);
    HCHECK(hring_fusion_create(comm, 2, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT &&
               strstr(hring_last_error(), "HRING_FUSION_TRIAL"),
           "HRING_FUSION_TRIAL=%s accepted (%s)", bad[b], hring_last_error());
  }
  HCHECK(f == (hring_fusion_t)0x1, "a refused create wrote the handle");
  /* A trial ends in an allreduce at a counted step: every rank must count
   * alike. */
  setenv("HRING_FUSION_TRIAL", rank == 1 ? "3" : "2", 1);
  HCHECK(hring_fusion_create(comm, 2, t, &o, &f) == HRING_ERR_INVALID_ARGUMENT &&
             strstr(hring_last_error(), "HRING_FUSION_TRIAL"),
         "rank %d: another HRING_FUSION_TRIAL on rank 1 was accepted (%s)", rank,
         hring_last_error());
  /* Other modes never try plans: the setting does not matter to them. */
  o.mode = "ddp";
  HREQUIRE(hring_fusion_create(comm, 2, t, &o, &f) == HRING_SUCCESS, "ddp: %s",
           hring_last_error());
  hring_fusion_destroy(f);
  unsetenv("HRING_FUSION_TRIAL");
}

HTEST(fusion_trial_bad_settings, 30) {
  HCHECK(mp_run(2, bad_body, NULL) == 0, "a rank failed");
}
