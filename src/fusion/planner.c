/*
 * planner.c - bucket boundaries over a backward pass (planner.h,
 * docs/fusion-planner.md).
 *
 * The timing model: bucket b = tensors first[b] .. first[b+1]-1 starts at
 *   start_b = max(R[last of b], end_{b-1})      (end_{-1} = -infinity)
 * and ends at end_b = start_b + cost(bytes of b), where R[j] is the running
 * maximum of ready_s[0..j] (for non-decreasing ready_s, ready_s[j] itself:
 * the running maximum only makes measured, slightly unsorted timings safe,
 * and changes nothing when cost >= 0 since end_{b-1} >= R[last of b-1]).
 *
 * Optimality of the dynamic program: end_b is a non-decreasing function of
 * end_{b-1} (max and + are monotone), so among the plans of a prefix
 * 0..i-1 the one that ends earliest is never worse for any continuation:
 * replacing a prefix plan by an earlier-ending one can only move every
 * later start and end earlier.  Hence
 *   f(j) = min over i <= j of max(R[j], f(i-1)) + cost(bytes[i..j])
 * with f(-1) = -infinity is the least end of the prefix 0..j, and f(n-1)
 * the least end of the step.  The same exchange argument holds with the
 * bucket count fixed (E_k below), which gives the fewest buckets among the
 * plans whose end is within a relative 1e-12 of the optimum.
 *
 * Cost calls: n(n+1)/2, cached in a triangular table when n is at most
 * PLAN_CACHE_MAX; the fewest-bucket pass costs O(k n^2) min/max steps for
 * a plan of k buckets.
 */
#include "fusion/planner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 1024 tensors: a 4 MiB cache. */
#define PLAN_CACHE_MAX 1024
#define PLAN_REL_EPS 1e-12

int hring__plan_none(int n, int *first) {
  if (n <= 0 || !first) return 0;
  for (int i = 0; i < n; i++) first[i] = i;
  return n;
}

int hring__plan_threshold(int n, const size_t *bytes, size_t threshold, int *first) {
  if (n <= 0 || !bytes || !first) return 0;
  int k = 0;
  size_t cur = 0;
  for (int i = 0; i < n; i++) {
    /* A new bucket when this tensor would take the open one past the
     * threshold; an empty bucket takes any tensor. */
    if (i == 0 || cur + bytes[i] > threshold || cur + bytes[i] < cur) {
      first[k++] = i;
      cur = 0;
    }
    cur += bytes[i];
  }
  return k;
}

int hring__plan_ddp(int n, const size_t *bytes, size_t first_cap, size_t cap, int *first) {
  if (n <= 0 || !bytes || !first) return 0;
  int k = 0;
  size_t cur = 0, lim = first_cap;
  int open = 0;
  for (int i = 0; i < n; i++) {
    if (!open) {
      first[k++] = i;
      open = 1;
      cur = 0;
    }
    cur += bytes[i];
    /* DDP (compute_bucket_assignment_by_size): the tensor goes in, then
     * the bucket closes once it holds at least its limit; the limit is
     * first_cap for the first bucket and cap after it. */
    if (cur >= lim) {
      open = 0;
      lim = cap;
    }
  }
  return k;
}

/* Running maximum of ready_s up to j (see the top of the file). */
static double *running_max(const hring_plan_input_t *in) {
  double *R = malloc((size_t)in->n * sizeof *R);
  if (!R) return NULL;
  double m = -INFINITY;
  for (int j = 0; j < in->n; j++) {
    if (in->ready_s[j] > m || isnan(in->ready_s[j])) m = in->ready_s[j];
    R[j] = m;
  }
  return R;
}

double hring__plan_end(const hring_plan_input_t *in, int k, const int *first) {
  if (!in) return NAN;
  if (in->n <= 0) return k == 0 ? 0.0 : NAN;
  if (!in->bytes || !in->ready_s || !in->cost || k <= 0 || k > in->n || !first || first[0] != 0)
    return NAN;
  double end = -INFINITY, rmax = -INFINITY;
  int i = 0;
  for (int b = 0; b < k; b++) {
    int stop = b + 1 < k ? first[b + 1] : in->n;
    if (first[b] != i || stop <= i || stop > in->n) return NAN; /* not a plan */
    size_t bytes = 0;
    for (; i < stop; i++) {
      bytes += in->bytes[i];
      if (in->ready_s[i] > rmax || isnan(in->ready_s[i])) rmax = in->ready_s[i];
    }
    double start = rmax > end ? rmax : end;
    end = start + in->cost(bytes, in->cost_arg);
  }
  return end;
}

/* cost(bytes[i..j]), cached or computed. */
typedef struct {
  const hring_plan_input_t *in;
  double *tri;      /* tri[j(j+1)/2 + i], i <= j; NULL: no cache */
  size_t *prefix;   /* prefix[j] = bytes[0..j-1] */
} costs_t;

static double cost_of(const costs_t *c, int i, int j) {
  if (c->tri) return c->tri[(size_t)j * (size_t)(j + 1) / 2 + (size_t)i];
  return c->in->cost(c->prefix[j + 1] - c->prefix[i], c->in->cost_arg);
}

/* Both optimal plans: pass 1 alone (earliest prefixes), or pass 2 too
 * (fewest buckets). */
static int plan(const hring_plan_input_t *in, int *first, double *end_s, int fewest) {
  if (end_s) *end_s = in && in->n <= 0 ? 0.0 : NAN;
  if (!in || in->n <= 0) return 0;
  if (!in->bytes || !in->ready_s || !in->cost || !first) return 0;
  int n = in->n;
  costs_t c = {in, NULL, malloc((size_t)(n + 1) * sizeof(size_t))};
  double *R = running_max(in);
  double *f = malloc((size_t)n * sizeof *f);      /* least end of prefix j, any count */
  double *prev = malloc((size_t)n * sizeof *prev); /* E_{k-1}(j) */
  double *cur = malloc((size_t)n * sizeof *cur);   /* E_k(j) */
  int *argf = malloc((size_t)n * sizeof *argf);      /* pass 1's last bucket of prefix j */
  /* arg[(k-1) n + j]: the first tensor of the k-th (last) bucket of the
   * best k-bucket plan of prefix j; grows one row per k. */
  int *arg = NULL;
  int k = 0;
  if (!c.prefix || !R || !f || !prev || !cur || !argf) goto out;
  c.prefix[0] = 0;
  for (int j = 0; j < n; j++) c.prefix[j + 1] = c.prefix[j] + in->bytes[j];
  if (n <= PLAN_CACHE_MAX) {
    c.tri = malloc((size_t)n * (size_t)(n + 1) / 2 * sizeof(double));
    if (c.tri)
      for (int j = 0; j < n; j++)
        for (int i = 0; i <= j; i++)
          c.tri[(size_t)j * (size_t)(j + 1) / 2 + (size_t)i] =
              in->cost(c.prefix[j + 1] - c.prefix[i], in->cost_arg);
  }

  /* Pass 1: the least end f(n-1) over all plans. */
  for (int j = 0; j < n; j++) {
    double best = INFINITY;
    argf[j] = -1;
    for (int i = 0; i <= j; i++) {
      double before = i == 0 ? -INFINITY : f[i - 1];
      double t = (R[j] > before ? R[j] : before) + cost_of(&c, i, j);
      /* Ties go to the smaller last bucket: its prefix ends no later. */
      if (t <= best) best = t, argf[j] = i;
    }
    f[j] = best;
  }
  if (!fewest) {
    /* Every bucket's prefix is itself a least-end plan of its tensors:
     * each ends as early as any plan can end it. */
    int cnt = 0;
    for (int j = n - 1; j >= 0; j = argf[j] - 1)
      if (argf[j] < 0) goto out; /* a cost that is not a number: no plan */
      else cnt++;
    for (int j = n - 1, b = cnt - 1; j >= 0; j = argf[j] - 1) first[b--] = argf[j];
    k = cnt;
    if (end_s) *end_s = hring__plan_end(in, k, first);
    goto out;
  }
  double target = f[n - 1] + PLAN_REL_EPS * fabs(f[n - 1]);

  /* Pass 2: E_k(j), the least end of prefix j in exactly k buckets, for
   * k = 1, 2, ... until E_k(n-1) is within the target.  E_n(n-1) = f
   * restricted to n buckets, so some k <= n is reached unless the cost
   * function is not a function (NaN): then the plan of pass 1's
   * recursion cannot be rebuilt either and none is returned. */
  for (int kk = 1; kk <= n; kk++) {
    int *grown = realloc(arg, (size_t)kk * (size_t)n * sizeof *arg);
    if (!grown) goto out;
    arg = grown;
    int *a = arg + (size_t)(kk - 1) * (size_t)n;
    for (int j = 0; j < n; j++) {
      cur[j] = INFINITY;
      a[j] = -1;
      if (j < kk - 1) continue; /* fewer tensors than buckets */
      if (kk == 1) {
        cur[j] = R[j] + cost_of(&c, 0, j);
        a[j] = 0;
        continue;
      }
      for (int i = kk - 1; i <= j; i++) {
        double before = prev[i - 1];
        if (before == INFINITY) continue;
        double t = (R[j] > before ? R[j] : before) + cost_of(&c, i, j);
        if (t < cur[j]) cur[j] = t, a[j] = i;
      }
    }
    if (cur[n - 1] <= target) {
      /* Rebuild the plan from the last bucket back. */
      int j = n - 1;
      for (int b = kk; b >= 1; b--) {
        int i = arg[(size_t)(b - 1) * (size_t)n + (size_t)j];
        first[b - 1] = i;
        j = i - 1;
      }
      k = kk;
      if (end_s) *end_s = cur[n - 1];
      break;
    }
    double *t = prev;
    prev = cur;
    cur = t;
  }
out:
  free(c.prefix);
  free(c.tri);
  free(R);
  free(f);
  free(prev);
  free(cur);
  free(argf);
  free(arg);
  return k;
}

int hring__plan_optimal(const hring_plan_input_t *in, int *first, double *end_s) {
  return plan(in, first, end_s, 1);
}

int hring__plan_earliest(const hring_plan_input_t *in, int *first, double *end_s) {
  return plan(in, first, end_s, 0);
}

static double scaled_cost(size_t bytes, void *arg) {
  const hring_plan_scaled_t *x = arg;
  return x->in->cost(bytes, x->in->cost_arg) * x->factor;
}

hring_plan_input_t hring__plan_scaled(const hring_plan_input_t *in, double factor,
                                      hring_plan_scaled_t *x) {
  *x = (hring_plan_scaled_t){in, factor};
  return (hring_plan_input_t){in->n, in->bytes, in->ready_s, scaled_cost, x};
}

int hring__plan_robust(const hring_plan_input_t *in, const double *factors, int nf, int *first,
                       double *end_s) {
  if (end_s) *end_s = in && in->n <= 0 ? 0.0 : NAN;
  if (!in || in->n <= 0) return 0;
  if (!in->bytes || !in->ready_s || !in->cost || !first || !factors || nf < 1 ||
      nf > HRING_PLAN_MAX_FACTORS)
    return 0;
  for (int i = 0; i < nf; i++)
    if (!(factors[i] > 0)) return 0;
  int n = in->n, nc = nf + 1, best = -1, k = 0;
  hring_plan_scaled_t fx[HRING_PLAN_MAX_FACTORS];
  hring_plan_input_t fin[HRING_PLAN_MAX_FACTORS];
  double least[HRING_PLAN_MAX_FACTORS], worst_best = INFINITY;
  int kc[HRING_PLAN_MAX_FACTORS + 1];
  int *cand = malloc((size_t)nc * (size_t)n * sizeof *cand);
  if (!cand) return 0;
  for (int i = 0; i < nf; i++) {
    fin[i] = hring__plan_scaled(in, factors[i], &fx[i]);
    kc[i] = plan(&fin[i], cand + (size_t)i * (size_t)n, &least[i], 0);
    if (kc[i] <= 0) goto out;
  }
  kc[nf] = hring__plan_none(n, cand + (size_t)nf * (size_t)n);
  for (int c = 0; c < nc; c++) {
    double worst = -INFINITY;
    for (int i = 0; i < nf; i++) {
      double excess = hring__plan_end(&fin[i], kc[c], cand + (size_t)c * (size_t)n) - least[i];
      if (!(excess == excess)) goto out; /* NaN: a cost that is not a number */
      if (excess > worst) worst = excess;
    }
    if (worst < worst_best) worst_best = worst, best = c;
  }
  if (best < 0) goto out; /* every candidate infinitely late: no plan */
  k = kc[best];
  memcpy(first, cand + (size_t)best * (size_t)n, sizeof(int) * (size_t)k);
  if (end_s) *end_s = hring__plan_end(in, k, first);
out:
  free(cand);
  return k;
}

/* The plan that loses least, against the best plan of each, whichever of
 * the cost factors below turns out true (hring__plan_robust: each
 * factor's candidate is its plan of least predicted end whose every
 * prefix of buckets ends as early as it can).  The costs are estimates
 * that miss by as much as the trial's factors: a plan made at the
 * estimate alone fuses the last tensors whenever the queue looks backed
 * up to the end, and where the estimate was high that fused bucket is all
 * exposed (AlexNet, 4 ranks on one machine: conv2's 2.4 MB with conv1's
 * after the backward, 2.5-17 ms exposed against 0.6-0.9 for the plan of
 * costs times 0.7; docs/performance.md, fourteenth section).  Plans that
 * keep the most slack before the last tensor also won on 4 emulated hosts
 * x 2 ranks (ResNet-50, fp16): 5.9 ms exposed against 20.9 for the plan of
 * fewest buckets. */
int hring__plan_planned(const hring_plan_input_t *in, int *first, double *end_s) {
  static const double factors[] = {1.0, 0.7, 1.4};
  return hring__plan_robust(in, factors, (int)(sizeof factors / sizeof *factors), first, end_s);
}
