/*
 * fusion_trial.c - a new plan measured against its neighbours before it
 * is kept (fusion_impl.h, docs/fusion.md "How planned plans", step 6).
 *
 * The planner's bucket costs are estimates (the probe's curve times the
 * ratio real buckets ran at), and on a busy machine they are off by more
 * than the margins that decide a plan: when they come out a few percent
 * high, the queue looks backed up until the last tensor, fusing the last
 * tensors looks free, and the fused bucket is then all exposed.  So after
 * every new plan the plans that the same timing gives with the costs
 * times 0.7 and 1.4 run too, each for HRING_FUSION_TRIAL steps,
 * alternating, and the one whose steps left the least exposed (median of
 * the slowest rank's per step) is kept.  The factor it was made at
 * becomes the bias of later replans, so a machine that runs faster than
 * its probe is planned for as it runs.
 *
 * Every rank runs the same trial: the candidates come from agreed timings
 * and costs, the steps are counted alike, and the measurements are
 * agreed by one allreduce at the end.
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/stats.h"
#include "fusion/fusion_impl.h"

/* A challenger must leave at least this much less exposed than the plan
 * the model chose: equal plans measure a few percent apart. */
#define HRING_FUSION_TRIAL_MARGIN 0.9

static const double factors[HRING_FUSION_TRIAL_PLANS] = {1.0, 0.7, 1.4};
#define BIAS_MIN 0.25
#define BIAS_MAX 4.0

static int *cand(struct hring_fusion *f, int c) { return f->trial_first + (size_t)c * (size_t)f->n; }

/* "a / b / c" of n values times mul. */
static void list(char *s, size_t cap, const double *v, int n, double mul) {
  size_t o = 0;
  s[0] = 0;
  for (int i = 0; i < n && o < cap; i++)
    o += (size_t)snprintf(s + o, cap - o, "%s%.2f", i ? " / " : "", v[i] * mul);
}

static int same_plan(const int *a, int ka, const int *b, int kb) {
  return ka == kb && memcmp(a, b, sizeof(int) * (size_t)ka) == 0;
}

int hring__fusion_trial_start(struct hring_fusion *f, const double *ready_s) {
  f->trial_n = 0;
  if (f->trial_steps <= 0 || f->mode != HRING_FUSE_PLANNED) return 0;
  /* Candidate 0: the plan just set. */
  memcpy(cand(f, 0), f->first, sizeof(int) * (size_t)f->k);
  f->trial_k[0] = f->k;
  f->trial_end[0] = f->predicted_end;
  f->trial_factor[0] = f->bias;
  int n = 1;
  for (int c = 1; c < HRING_FUSION_TRIAL_PLANS; c++) {
    double factor = f->bias * factors[c];
    if (factor < BIAS_MIN || factor > BIAS_MAX) continue;
    double end = 0;
    int k = hring__fusion_plan_at(f, ready_s, factor, cand(f, n), &end);
    if (k <= 0) continue;
    int dup = 0;
    for (int d = 0; d < n && !dup; d++) dup = same_plan(cand(f, d), f->trial_k[d], cand(f, n), k);
    if (dup) continue;
    f->trial_k[n] = k;
    f->trial_end[n] = end;
    f->trial_factor[n] = factor;
    n++;
  }
  if (n < 2) return 0;
  f->trial_n = n;
  f->trial_pos = 0;
  char fs[64];
  list(fs, sizeof fs, f->trial_factor, n, 1);
  HRING_INFO(HRING_SUB_COLL, "fusion: trying %d plans, at cost factors %s, %d steps each", n, fs,
             f->trial_steps);
  return n;
}

/* The median without reordering the samples (they stay per step). */
static double median_of(const double *v, int n) {
  double s[HRING_FUSION_TRIAL_MAX];
  memcpy(s, v, sizeof(double) * (size_t)n);
  return hring__median(s, n);
}

int hring__fusion_trial_pick(const double *exposed, int ncand, int steps) {
  if (ncand <= 0 || steps <= 0 || steps > HRING_FUSION_TRIAL_MAX) return 0;
  double base = median_of(exposed, steps), best = base;
  int pick = 0;
  for (int c = 1; c < ncand; c++) {
    double m = median_of(exposed + (size_t)c * (size_t)steps, steps);
    if (m < best && m < base * HRING_FUSION_TRIAL_MARGIN) best = m, pick = c;
  }
  return pick;
}

hring_result_t hring__fusion_trial_step(struct hring_fusion *f) {
  /* Step p ran candidate p % n (step 0: candidate 0, already the plan),
   * the s-th time it ran: samples are stored per candidate. */
  int n = f->trial_n, p = f->trial_pos++;
  f->trial_exposed[(p % n) * f->trial_steps + p / n] = f->last_exposed;
  if (f->trial_pos < n * f->trial_steps) {
    int c = f->trial_pos % n;
    hring__fusion_use_plan(f, f->trial_k[c], cand(f, c), f->trial_end[c]);
    return HRING_SUCCESS;
  }
  f->trial_n = 0;
  double *e = f->trial_exposed;
  size_t m = (size_t)n * (size_t)f->trial_steps;
  /* A step is as exposed as its slowest rank. */
  if (f->nranks > 1) HRING_CHECK(hring_allreduce(e, e, m, HRING_FLOAT64, HRING_MAX, f->comm, NULL));
  int c = hring__fusion_trial_pick(e, n, f->trial_steps);
  double med[HRING_FUSION_TRIAL_PLANS];
  for (int d = 0; d < n; d++)
    med[d] = median_of(e + (size_t)d * (size_t)f->trial_steps, f->trial_steps);
  f->bias = f->trial_factor[c];
  char ms[64], fs[64], why[200];
  list(ms, sizeof ms, med, n, 1e3);
  list(fs, sizeof fs, f->trial_factor, n, 1);
  snprintf(why, sizeof why, "trial: exposed %s ms (medians) at cost factors %s", ms, fs);
  hring__fusion_set_plan(f, f->trial_k[c], cand(f, c), f->trial_end[c], why);
  return HRING_SUCCESS;
}
