/*
 * fusion_plan.c - which buckets a fusion cuts, and when it cuts anew
 * (fusion_impl.h).
 *
 * `planned` times the backward pass on every rank (the gap between the
 * first ready call of a step and each tensor's), averages the times over
 * HRING_FUSION_WARMUP steps after the first, agrees on them with one small
 * allreduce (so every rank plans from the same numbers and cuts the same
 * buckets), and asks the planner for the boundaries that end the step
 * soonest under the measured cost of a bucket (fusion_probe.c).  Every
 * HRING_FUSION_REPLAN steps it measures again; when the current plan is more than
 * REPLAN_GAIN worse than the best plan for the new timing, it switches.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "fusion/fusion_impl.h"

#define REPLAN_GAIN 0.01

/* The planner's bucket cost: the probe's curve (times what real buckets
 * ran at); the callers scale it by 1 or what the last trial measured best. */
static double probe_cost(size_t bytes, void *arg) { return hring__fusion_cost(arg, bytes); }

static hring_plan_input_t probe_input(struct hring_fusion *f, const double *ready_s) {
  return (hring_plan_input_t){f->n, f->bytes, ready_s, probe_cost, f};
}

int hring__fusion_plan_at(struct hring_fusion *f, const double *ready_s, double factor, int *first,
                          double *end) {
  hring_plan_input_t base = probe_input(f, ready_s);
  hring_plan_scaled_t x;
  hring_plan_input_t in = hring__plan_scaled(&base, factor, &x);
  return hring__plan_planned(&in, first, end);
}

static void bucket_layout(struct hring_fusion *f) {
  for (int b = 0; b < f->k; b++) {
    int end = b + 1 < f->k ? f->first[b + 1] : f->n;
    for (int i = f->first[b]; i < end; i++) f->bucket_of[i] = b;
    f->bucket_n[b] = end - f->first[b];
    f->left[b] = f->bucket_n[b];
  }
}

/* Describes the plan in f->plan_text (also logged at INFO). */
static void describe(struct hring_fusion *f, const char *why) {
  char *s = f->plan_text;
  size_t cap = sizeof f->plan_text, o = 0;
  o += (size_t)snprintf(s + o, cap - o, "%s: %d bucket(s)", hring__fusion_mode_name(f), f->k);
  if (f->k > 1 && o < cap) o += (size_t)snprintf(s + o, cap - o, ", boundaries before tensor");
  for (int b = 1; b < f->k && o + 16 < cap; b++)
    o += (size_t)snprintf(s + o, cap - o, " %d", f->first[b]);
  if (f->predicted_end > 0 && o + 64 < cap)
    snprintf(s + o, cap - o, "; predicted end %.2f ms after the first ready tensor",
             f->predicted_end * 1e3);
  HRING_INFO(HRING_SUB_COLL, "fusion plan (%s): %s", why, s);
}

void hring__fusion_use_plan(struct hring_fusion *f, int k, const int *first, double end) {
  if (first != f->first) memcpy(f->first, first, sizeof(int) * (size_t)k);
  f->k = k;
  f->predicted_end = end;
  bucket_layout(f);
}

void hring__fusion_set_plan(struct hring_fusion *f, int k, const int *first, double end,
                            const char *why) {
  hring__fusion_use_plan(f, k, first, end);
  describe(f, why);
}

hring_result_t hring__fusion_initial_plan(struct hring_fusion *f, const double *compute_s) {
  int *first = f->scratch_first, k;
  switch (f->mode) {
    case HRING_FUSE_NONE: k = hring__plan_none(f->n, first); break;
    case HRING_FUSE_THRESHOLD: k = hring__plan_threshold(f->n, f->bytes, f->threshold, first); break;
    default: k = hring__plan_ddp(f->n, f->bytes, HRING_DDP_FIRST_CAP, HRING_DDP_CAP, first); break;
  }
  double end = 0;
  const char *why = "initial";
  if (f->mode == HRING_FUSE_PLANNED && compute_s) {
    double t = 0;
    for (int i = 0; i < f->n; i++) {
      if (!(compute_s[i] >= 0) || !isfinite(compute_s[i]))
        return hring__err(HRING_ERR_INVALID_ARGUMENT,
                          "hring_fusion_create: compute_s[%d] = %g is not a time >= 0", i,
                          compute_s[i]);
      f->plan_ready[i] = t += compute_s[i];
    }
    f->have_timing = 1;
    k = hring__fusion_plan_at(f, f->plan_ready, 1.0, first, &end);
    why = "from the given compute times";
  } else if (f->mode == HRING_FUSE_PLANNED) {
    why = "DDP's buckets until the backward pass is timed";
  }
  hring__fusion_set_plan(f, k, first, end, why);
  return HRING_SUCCESS;
}

/* Every rank's average ready times and observed cost ratio, averaged over
 * ranks (t[n] holds the ratio), the times made non-decreasing (the
 * planner's input: tensors marked out of order count as ready with the
 * later one). */
static hring_result_t agreed_timing(struct hring_fusion *f, double *t) {
  for (int i = 0; i < f->n; i++) t[i] = f->acc[i] / f->acc_n;
  t[f->n] = f->obs_probed > 0 ? f->obs_ran / f->obs_probed : 0;
  if (f->nranks > 1)
    HRING_CHECK(hring_allreduce(t, t, (size_t)f->n + 1, HRING_FLOAT64, HRING_AVG, f->comm, NULL));
  for (int i = 1; i < f->n; i++)
    if (t[i] < t[i - 1]) t[i] = t[i - 1];
  return HRING_SUCCESS;
}

static hring_result_t replan(struct hring_fusion *f) {
  double *t = malloc(sizeof(double) * ((size_t)f->n + 1));
  if (!t) return hring__err(HRING_ERR_NO_MEMORY, "hring_fusion_wait: replanning");
  hring_result_t r = agreed_timing(f, t);
  if (r == HRING_SUCCESS) {
    /* Ranks without observations (caller progress) add 0: every rank
     * still computes the same scale. */
    if (t[f->n] > 0) f->cost_scale = t[f->n] < 0.25 ? 0.25 : t[f->n] > 4 ? 4 : t[f->n];
    /* Costs times the factor the last trial measured best (1 before any). */
    hring_plan_input_t base = probe_input(f, t);
    hring_plan_scaled_t x;
    hring_plan_input_t in = hring__plan_scaled(&base, f->bias, &x);
    double end = 0, now = hring__plan_end(&in, f->k, f->first);
    int k = hring__plan_planned(&in, f->scratch_first, &end);
    /* Small gains are noise in the timing: a plan that is still within
     * REPLAN_GAIN of the best stays (ranks agree either way: same input). */
    if (!f->have_timing || now > end * (1 + REPLAN_GAIN)) {
      char why[200];
      snprintf(why, sizeof why,
               "step %lld, backward %.2f ms, buckets %.2fx the probe, cost factor %.2f, the last "
               "plan predicted %.2f ms",
               (long long)f->steps, t[f->n - 1] * 1e3, f->cost_scale, f->bias, now * 1e3);
      hring__fusion_set_plan(f, k, f->scratch_first, end, why);
      /* A new plan is tried against its neighbours before it is kept. */
      (void)hring__fusion_trial_start(f, t);
    } else {
      f->predicted_end = now;
    }
    memcpy(f->plan_ready, t, sizeof(double) * (size_t)f->n);
    f->have_timing = 1;
  }
  free(t);
  for (int i = 0; i < f->n; i++) f->acc[i] = 0;
  f->acc_n = 0;
  f->obs_ran = 0;
  f->obs_probed = 0;
  return r;
}

hring_result_t hring__fusion_step_done(struct hring_fusion *f) {
  f->steps++;
  if (f->mode != HRING_FUSE_PLANNED) return HRING_SUCCESS;
  /* The first step pays for first touches and connections: not timed. */
  if (f->steps > 1) {
    for (int i = 0; i < f->n; i++) f->acc[i] += f->ready_at[i];
    f->acc_n++;
  }
  /* A running trial takes the step (a replan that falls in it is skipped:
   * trials run alike on every rank, so all skip it). */
  if (f->trial_n > 0) return hring__fusion_trial_step(f);
  /* Steps at which every rank replans: fixed counts, so all agree. */
  int64_t s = f->steps - 1 - HRING_FUSION_WARMUP;
  if (s == 0 || (s > 0 && f->replan_every > 0 && s % f->replan_every == 0)) return replan(f);
  return HRING_SUCCESS;
}
