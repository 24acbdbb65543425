/* test_planner.c - the bucket planner (src/fusion/planner.h): the dynamic
 * program against brute force over every partition, and the fixed rules
 * on hand cases. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fusion/planner.h"
#include "harness.h"
#include "hring_fusion.h"

/* ---- cost functions ---- */

typedef struct {
  int kind;      /* 0 affine, 1 affine + concave, 2 step, 3 superadditive step */
  double alpha;  /* s */
  double beta;   /* s/B */
  double c;      /* concave term: c * sqrt(bytes) */
  size_t chunk;  /* step width */
} cost_t;

static double cost_fn(size_t bytes, void *arg) {
  const cost_t *c = arg;
  double b = (double)bytes;
  switch (c->kind) {
    case 0: return c->alpha + c->beta * b;
    case 1: return c->alpha + c->beta * b + c->c * sqrt(b);
    case 2: return c->alpha * (1 + (double)((bytes + c->chunk - 1) / c->chunk));
    default:
      /* A big jump past one chunk: splitting a bucket can pay even after
       * every tensor is ready (breaks the lexicographic shortcut). */
      return c->alpha + c->beta * b + (bytes > c->chunk ? 40 * c->alpha : 0);
  }
}

/* ---- a small deterministic generator ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return rng_state = x;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* ---- brute force ---- */

/* The least end over all 2^(n-1) plans, and the fewest buckets among the
 * plans within rel of it. */
static void brute(const hring_plan_input_t *in, double rel, double *best, int *fewest) {
  int n = in->n, first[16];
  *best = INFINITY;
  for (unsigned m = 0; m < 1u << (n - 1); m++) {
    int k = 0;
    first[k++] = 0;
    for (int i = 1; i < n; i++)
      if (m >> (i - 1) & 1) first[k++] = i;
    double e = hring__plan_end(in, k, first);
    if (e < *best) *best = e;
  }
  *fewest = n + 1;
  for (unsigned m = 0; m < 1u << (n - 1); m++) {
    int k = 1 + __builtin_popcount(m);
    if (k >= *fewest) continue;
    first[0] = 0;
    for (int i = 1, b = 1; i < n; i++)
      if (m >> (i - 1) & 1) first[b++] = i;
    if (hring__plan_end(in, k, first) <= *best + rel * fabs(*best)) *fewest = k;
  }
}

static int valid_plan(int n, int k, const int *first) {
  if (k < 1 || k > n || first[0] != 0) return 0;
  for (int b = 1; b < k; b++)
    if (first[b] <= first[b - 1] || first[b] >= n) return 0;
  return 1;
}

/* One random case: n tensors, sizes over several decades, ready times
 * non-decreasing with ties, and a cost of the given kind. */
static void random_case(int n, int kind, size_t *bytes, double *ready, cost_t *c) {
  double t = unif() < 0.2 ? 0 : unif() * 1e-3;
  for (int i = 0; i < n; i++) {
    bytes[i] = (size_t)(exp(unif() * log(64e6))) + (rnd() % 4 == 0 ? 0 : 1);
    double r = unif();
    if (r < 0.25) t += 0;                        /* a tie */
    else if (r < 0.9) t += unif() * 2e-3;        /* a layer's backward */
    else t += unif() * 2e-2;                     /* a long one */
    ready[i] = t;
  }
  c->kind = kind;
  c->alpha = 10e-6 + unif() * 1e-3;
  c->beta = (0.2 + unif()) / 10e9;
  c->c = unif() * 1e-6;
  c->chunk = (size_t)(exp(unif() * log(64e6))) + 1;
}

HTEST(planner_optimal_vs_brute_force, 60) {
  size_t bytes[12];
  double ready[12];
  int first[12];
  int cases = 0, multi = 0;
  for (int kind = 0; kind < 4; kind++) {
    for (int rep = 0; rep < 250; rep++) {
      int n = 1 + (int)(rnd() % 12);
      cost_t c;
      random_case(n, kind, bytes, ready, &c);
      hring_plan_input_t in = {n, bytes, ready, cost_fn, &c};
      double best;
      int fewest;
      brute(&in, 1e-12, &best, &fewest);
      double end = NAN;
      memset(first, 0xff, sizeof first);
      int k = hring__plan_optimal(&in, first, &end);
      HREQUIRE(valid_plan(n, k, first), "kind %d n %d: invalid plan, k = %d", kind, n, k);
      HCHECK(fabs(end - best) <= 1e-12 * fabs(best), "kind %d n %d: end %.17g, brute force %.17g",
             kind, n, end, best);
      HCHECK(k == fewest, "kind %d n %d: %d buckets, fewest optimal %d", kind, n, k, fewest);
      double again = hring__plan_end(&in, k, first);
      HCHECK(again == end, "kind %d n %d: reported end %.17g, plan_end %.17g", kind, n, end,
             again);
      /* Every other plan is no better: the one-bucket and the
       * one-per-tensor plans, and the DP plan with a boundary moved. */
      int none[12];
      int kn = hring__plan_none(n, none);
      HCHECK(hring__plan_end(&in, kn, none) >= end, "none beats the DP");
      HCHECK(hring__plan_end(&in, 1, none) >= end, "one bucket beats the DP");
      /* The earliest plan ends as soon, and each of its prefixes ends
       * as soon as the best plan of those tensors alone. */
      int early[12];
      double eend = NAN;
      int ke = hring__plan_earliest(&in, early, &eend);
      HREQUIRE(valid_plan(n, ke, early), "kind %d n %d: invalid earliest plan", kind, n);
      HCHECK(fabs(eend - best) <= 1e-12 * fabs(best) && ke >= k,
             "kind %d n %d: earliest plan ends %.17g in %d buckets, best %.17g in %d", kind, n,
             eend, ke, best, k);
      for (int b = 1; b < ke; b++) {
        hring_plan_input_t pre = {early[b], bytes, ready, cost_fn, &c};
        double pbest;
        int pfew;
        brute(&pre, 1e-12, &pbest, &pfew);
        double pend = hring__plan_end(&pre, b, early);
        HCHECK(pend <= pbest * (1 + 1e-12), "kind %d n %d: prefix of %d buckets ends %.17g, "
               "best %.17g", kind, n, b, pend, pbest);
      }
      cases++;
      multi += k > 1;
    }
  }
  /* The random cases must exercise more than the trivial plans. */
  HCHECK(multi > cases / 10, "only %d of %d cases planned several buckets", multi, cases);
}

/* Many plans tie on end: everything ready at once with a purely linear cost
 * makes every plan end at the same time (sum of beta * bytes): the DP must
 * take one bucket. */
HTEST(planner_fewest_buckets_on_ties, 10) {
  size_t bytes[8] = {1024, 2048, 4096, 8192, 1024, 2048, 4096, 8192};
  double ready[8] = {0};
  cost_t c = {0, 0.0, 1.0 / 1024, 0, 0}; /* 1 s per KiB, exact in binary */
  hring_plan_input_t in = {8, bytes, ready, cost_fn, &c};
  int first[8];
  double end;
  int k = hring__plan_optimal(&in, first, &end);
  HCHECK(k == 1 && first[0] == 0, "k = %d", k);
  HCHECK(end == 30.0, "end %g, want 30", end);
  /* Tensors 6 and 7 ready late: one bucket ends at 1000 + 30; {0..5}
   * (ends at 18) then {6,7} at 1000 + 12 = 1012, the least end (the
   * bucket holding tensor 7 starts at 1000 and tensors 6 and 7 take 12).
   * {0..5},{6},{7} and every split of 0..5 end at 1012 too: the fewest
   * is 2. */
  for (int i = 0; i < 8; i++) ready[i] = i < 6 ? 0 : 1000;
  k = hring__plan_optimal(&in, first, &end);
  HCHECK(end == 1012.0, "end %g, want 1012", end);
  HCHECK(k == 2 && first[1] == 6, "k = %d, first[1] = %d", k, k > 1 ? first[1] : -1);
}

/* A case worked by hand, where both trivial plans lose. */
HTEST(planner_hand_case, 10) {
  /* alpha 1, beta 1 per byte; tensors of 1, 1, 10, 1 bytes ready at
   * 0, 1, 2, 20.
   *   one bucket: 20 + 1 + 13 = 34
   *   none: 0+2=2 -> max(1,2)+2=4 -> max(2,4)+11=15 -> max(20,15)+2 = 22
   *   {0,1,2},{3}: 2 + 13 = 15 -> 20 + 2 = 22
   *   {0,1},{2},{3}: 1+3 = 4 -> 4+11 = 15 -> 22
   *   {0},{1,2},{3}: 2 -> max(2,2)+12 = 14 -> 20 + 2 = 22
   * so the end is 22 and the fewest buckets reaching it is 2 ({0,1,2},{3}). */
  size_t bytes[4] = {1, 1, 10, 1};
  double ready[4] = {0, 1, 2, 20};
  cost_t c = {0, 1.0, 1.0, 0, 0};
  hring_plan_input_t in = {4, bytes, ready, cost_fn, &c};
  int first[4];
  double end;
  int k = hring__plan_optimal(&in, first, &end);
  HCHECK(end == 22.0, "end %g, want 22", end);
  HCHECK(k == 2 && first[0] == 0 && first[1] == 3, "k = %d first[1] = %d", k, k > 1 ? first[1] : -1);
  int one[1] = {0};
  HCHECK(hring__plan_end(&in, 1, one) == 34.0, "one bucket: %g", hring__plan_end(&in, 1, one));
  int wrong[2] = {0, 2}; /* {0,1},{2,3}: 1+3 = 4 -> 20 + 12 = 32 */
  HCHECK(hring__plan_end(&in, 2, wrong) == 32.0, "{0,1},{2,3}: %g", hring__plan_end(&in, 2, wrong));
  HCHECK(hring__plan_end(&in, 2, wrong) > end, "a wrong plan is not worse");
}

HTEST(planner_robust_keeps_the_tail_apart, 10) {
  /* alpha 1, beta 1 per byte; tensors of 100, 10, 1 bytes ready at 0, 95,
   * 100.  At the costs as given the first tensor's bucket runs to 101,
   * past the last ready time, so fusing the last two looks free:
   *   {0},{1,2}: 101 -> max(100, 101) + 12 = 113 (the least end)
   *   {0},{1},{2}: 101 -> 112 -> 114
   * At 0.7x the costs the queue is idle when tensor 1 is ready:
   *   {0},{1,2}: 70.7 -> 100 + 8.4 = 108.4;  {0},{1},{2}: 95 + 7.7 = 102.7
   *   -> 104.1 (the least)
   * and at 1.4x: {0},{1,2} 158.2 (the least), {0},{1},{2} 159.6.  Worst
   * excess: 4.3 for the fused tail, 1.4 for the tensors apart. */
  size_t bytes[3] = {100, 10, 1};
  double ready[3] = {0, 95, 100};
  cost_t c = {0, 1.0, 1.0, 0, 0};
  hring_plan_input_t in = {3, bytes, ready, cost_fn, &c};
  int first[3];
  double end;
  int k = hring__plan_earliest(&in, first, &end);
  HCHECK(k == 2 && first[1] == 1 && end == 113.0, "earliest: k %d end %g", k, end);
  const double f[3] = {1.0, 0.7, 1.4};
  k = hring__plan_robust(&in, f, 3, first, &end);
  HCHECK(k == 3 && first[0] == 0 && first[1] == 1 && first[2] == 2 && end == 114.0,
         "robust: k %d end %g", k, end);
  /* With the factor 1 alone it is the earliest plan. */
  k = hring__plan_robust(&in, f, 1, first, &end);
  HCHECK(k == 2 && first[1] == 1 && end == 113.0, "one factor: k %d end %g", k, end);
  /* Refusals: no factor, too many, a factor that is not > 0. */
  double bad[2] = {1.0, 0.0}, nan_f[1] = {NAN}, many[HRING_PLAN_MAX_FACTORS + 1];
  for (int i = 0; i <= HRING_PLAN_MAX_FACTORS; i++) many[i] = 1.0;
  HCHECK(hring__plan_robust(&in, f, 0, first, &end) == 0 && isnan(end), "nf 0 accepted");
  HCHECK(hring__plan_robust(&in, many, HRING_PLAN_MAX_FACTORS + 1, first, &end) == 0,
         "too many factors accepted");
  HCHECK(hring__plan_robust(&in, bad, 2, first, &end) == 0, "factor 0 accepted");
  HCHECK(hring__plan_robust(&in, nan_f, 1, first, &end) == 0, "factor NaN accepted");
  HCHECK(hring__plan_robust(&in, NULL, 1, first, &end) == 0, "no factors accepted");
  in.n = 0;
  HCHECK(hring__plan_robust(&in, f, 3, first, &end) == 0 && end == 0, "n = 0: end %g", end);
}

HTEST(planner_plan_end_checks_the_plan, 5) {
  size_t bytes[3] = {1, 2, 3};
  double ready[3] = {0, 1, 2};
  cost_t c = {0, 1.0, 1.0, 0, 0};
  hring_plan_input_t in = {3, bytes, ready, cost_fn, &c};
  int ok[2] = {0, 1}, bad0[2] = {1, 2}, dec[3] = {0, 2, 1}, out[2] = {0, 3}, dup[2] = {0, 0};
  /* {0},{1,2}: 0+2 = 2 -> max(2,2) + 6 = 8 */
  HCHECK(hring__plan_end(&in, 2, ok) == 8.0, "end %g", hring__plan_end(&in, 2, ok));
  HCHECK(isnan(hring__plan_end(&in, 2, bad0)), "first[0] != 0 accepted");
  HCHECK(isnan(hring__plan_end(&in, 3, dec)), "decreasing boundaries accepted");
  HCHECK(isnan(hring__plan_end(&in, 2, out)), "boundary at n accepted");
  HCHECK(isnan(hring__plan_end(&in, 2, dup)), "empty bucket accepted");
  HCHECK(isnan(hring__plan_end(&in, 0, ok)), "no buckets for 3 tensors accepted");
  HCHECK(isnan(hring__plan_end(&in, 4, ok)), "more buckets than tensors accepted");
  /* Slightly unsorted ready times: a bucket waits for all its tensors. */
  double unsorted[3] = {0, 5, 4};
  hring_plan_input_t u = {3, bytes, unsorted, cost_fn, &c};
  int last2[2] = {0, 2}; /* {0,1}: 5 + 4 = 9 -> {2}: max(5, 9) + 4 = 13 */
  HCHECK(hring__plan_end(&u, 2, last2) == 13.0, "unsorted: %g", hring__plan_end(&u, 2, last2));
  double e;
  int f[3];
  int k = hring__plan_optimal(&u, f, &e);
  HCHECK(k >= 1 && hring__plan_end(&u, k, f) == e, "unsorted: k %d end %g", k, e);
}

HTEST(planner_empty_inputs, 5) {
  int first[4] = {7, 7, 7, 7};
  size_t bytes[1] = {1};
  double ready[1] = {0}, end = 5;
  cost_t c = {0, 1, 1, 0, 0};
  HCHECK(hring__plan_none(0, first) == 0 && first[0] == 7, "none, n = 0");
  HCHECK(hring__plan_none(-3, first) == 0, "none, n < 0");
  HCHECK(hring__plan_threshold(0, bytes, 10, first) == 0, "threshold, n = 0");
  HCHECK(hring__plan_ddp(-1, bytes, 10, 10, first) == 0, "ddp, n < 0");
  hring_plan_input_t in = {0, bytes, ready, cost_fn, &c};
  HCHECK(hring__plan_optimal(&in, first, &end) == 0 && end == 0, "optimal, n = 0: end %g", end);
  HCHECK(hring__plan_end(&in, 0, first) == 0, "plan_end, n = 0");
  in.n = -2;
  HCHECK(hring__plan_optimal(&in, first, &end) == 0, "optimal, n < 0");
  in.n = 1;
  HCHECK(hring__plan_optimal(&in, first, &end) == 1 && first[0] == 0 && end == 2.0,
         "optimal, n = 1: end %g", end);
}

HTEST(planner_fixed_rules, 5) {
  int first[8];
  /* none */
  HCHECK(hring__plan_none(3, first) == 3 && first[0] == 0 && first[1] == 1 && first[2] == 2,
         "none");
  /* threshold 10: 4+5 | 2+8 | 11 | 3+3+4 */
  size_t b[8] = {4, 5, 2, 8, 11, 3, 3, 4};
  int k = hring__plan_threshold(8, b, 10, first);
  int want_t[4] = {0, 2, 4, 5};
  HCHECK(k == 4 && !memcmp(first, want_t, sizeof want_t), "threshold 10: k %d [%d %d %d %d]", k,
         first[0], first[1], first[2], first[3]);
  /* threshold 0: every tensor alone; huge: one bucket. */
  HCHECK(hring__plan_threshold(8, b, 0, first) == 8, "threshold 0");
  HCHECK(hring__plan_threshold(8, b, (size_t)-1, first) == 1, "threshold max");
  /* ddp first_cap 6, cap 10: 4+5 (9 >= 6 closes) | 2+8 (10 >= 10) | 11 | 3+3+4 (10) */
  k = hring__plan_ddp(8, b, 6, 10, first);
  int want_d[4] = {0, 2, 4, 5};
  HCHECK(k == 4 && !memcmp(first, want_d, sizeof want_d), "ddp 6/10: k %d [%d %d %d %d]", k,
         first[0], first[1], first[2], first[3]);
  /* ddp first_cap 3, cap 12: 4 | 5+2+8 (15) | 11+3 (14) | 3+4 (open at the end) */
  k = hring__plan_ddp(8, b, 3, 12, first);
  int want_d2[4] = {0, 1, 4, 6};
  HCHECK(k == 4 && !memcmp(first, want_d2, sizeof want_d2), "ddp 3/12: k %d [%d %d %d %d]", k,
         first[0], first[1], first[2], first[3]);
  /* DDP differs from threshold: it overshoots the cap, threshold never
   * does (except for a lone tensor). */
  size_t c[3] = {6, 6, 6};
  HCHECK(hring__plan_ddp(3, c, 10, 10, first) == 2 && first[1] == 2, "ddp 6,6,6 cap 10");
  HCHECK(hring__plan_threshold(3, c, 10, first) == 3, "threshold 6,6,6 at 10");
  /* ResNet-50 in fp32 with DDP's 1 MiB / 25 MiB: the first bucket is
   * fc.bias + fc.weight (8 MB, >= 1 MiB), as DDP builds it. */
  const hring_net_t *net = hring_fusion_net("resnet50");
  HREQUIRE(net, "no resnet50");
  size_t nb[161];
  size_t total = 0;
  for (int i = 0; i < net->ntensors; i++) total += nb[i] = net->tensors[i].count * 4;
  int fr[161];
  k = hring__plan_ddp(net->ntensors, nb, 1 << 20, 25 << 20, fr);
  HCHECK(k >= 4 && k <= 6 && fr[1] == 2, "resnet50 ddp: %d buckets, second at %d", k, fr[1]);
  size_t sum = 0;
  for (int bk = 0; bk < k; bk++) {
    size_t s = 0;
    int end = bk + 1 < k ? fr[bk + 1] : net->ntensors;
    for (int i = fr[bk]; i < end; i++) s += nb[i];
    if (bk > 0 && bk + 1 < k) HCHECK(s >= 25u << 20, "bucket %d: %zu B under the cap", bk, s);
    sum += s;
  }
  HCHECK(sum == total, "buckets hold %zu of %zu B", sum, total);
}

/* The network sized case runs fast enough to replan at run time. */
static double paper_like(size_t bytes, void *arg) {
  (void)arg;
  return 1.5e-3 + (double)bytes * 2 / 11e9;
}

HTEST(planner_resnet50_speed, 20) {
  const hring_net_t *net = hring_fusion_net("resnet50");
  HREQUIRE(net, "no resnet50");
  int n = net->ntensors;
  size_t bytes[161];
  double ready[161], t = 0;
  for (int i = 0; i < n; i++) {
    bytes[i] = net->tensors[i].count * 2;
    t += net->tensors[i].bwd_flops * 32 / 4e12;
    ready[i] = t;
  }
  hring_plan_input_t in = {n, bytes, ready, paper_like, NULL};
  int first[161];
  double end;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int k = hring__plan_optimal(&in, first, &end);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
  HCHECK(valid_plan(n, k, first), "invalid plan, k %d", k);
  HCHECK(end >= ready[n - 1] && end == hring__plan_end(&in, k, first), "end %g", end);
  /* No worse than the fixed rules. */
  int f2[161];
  int k2 = hring__plan_ddp(n, bytes, 1 << 20, 25 << 20, f2);
  HCHECK(hring__plan_end(&in, k2, f2) >= end, "ddp beats the DP");
  k2 = hring__plan_threshold(n, bytes, 64 << 20, f2);
  HCHECK(hring__plan_end(&in, k2, f2) >= end, "threshold beats the DP");
  HCHECK(s < 0.5, "161 tensors planned in %.3f s", s);
}
