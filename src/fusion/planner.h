/*
 * planner.h - where to cut a backward pass's gradients into buckets
 * (docs/fusion.md).
 *
 * A plan is a list of buckets of consecutive tensors (backward order),
 * given by the first tensor of each: first[0] = 0 < first[1] < ... <
 * first[k-1] < n.  Buckets are reduced one at a time in order; bucket j
 * starts when its last tensor is ready and bucket j-1 has finished, and
 * takes cost(bytes of the bucket).  The step ends when the last bucket
 * finishes.  (Should ready_s not be sorted, a bucket waits for the latest
 * of the tensors up to its last.)  docs/fusion-planner.md has the proof
 * of the dynamic program.
 *
 * n <= 0 is no error: every function returns 0 buckets (plan_end and the
 * optimal end: 0 s).  Missing inputs (NULL pointers with n > 0) and, for
 * plan_end, a first[] that is not a plan of n tensors give 0 buckets and
 * a NaN end.
 */
#ifndef HRING_FUSION_PLANNER_H
#define HRING_FUSION_PLANNER_H

#include <stddef.h>

/* Seconds to allreduce `bytes` bytes (one bucket, launch overheads
 * included). */
typedef double (*hring_plan_cost_fn)(size_t bytes, void *arg);

typedef struct {
  int n;                 /* tensors */
  const size_t *bytes;   /* [n] bytes of each tensor */
  const double *ready_s; /* [n] when each becomes ready (non-decreasing) */
  hring_plan_cost_fn cost;
  void *cost_arg;
} hring_plan_input_t;

/* An input whose costs are in's times factor; x holds what the cost
 * function needs and must live as long as the result is used. */
typedef struct {
  const hring_plan_input_t *in;
  double factor;
} hring_plan_scaled_t;
hring_plan_input_t hring__plan_scaled(const hring_plan_input_t *in, double factor,
                                      hring_plan_scaled_t *x);

/* End time of the step under the plan (k buckets, first[]). */
double hring__plan_end(const hring_plan_input_t *in, int k, const int *first);

/* The plan of least end time (dynamic programming over split points,
 * n(n+1)/2 cost calls, O(k n^2) steps for a plan of k buckets); among the
 * plans whose end is within a relative 1e-12 of the least, the fewest
 * buckets.  Writes first[] (room for n) and returns k; *end_s gets its end
 * time, exactly hring__plan_end of the plan.  0 when out of memory. */
int hring__plan_optimal(const hring_plan_input_t *in, int *first, double *end_s);

/* A plan of least end too, but the one whose every prefix of buckets
 * ends as early as that prefix can (the recursion's own plan, ties to the
 * smaller last bucket): it keeps the most slack before the last tensor,
 * so costs that turn out higher than predicted delay the end least.
 * Usually more buckets than hring__plan_optimal's. */
int hring__plan_earliest(const hring_plan_input_t *in, int *first, double *end_s);

/* The plan that loses least to the best plan of whichever cost factor
 * turns out true: for each of the nf factors (every cost times it) the
 * earliest-prefix plan above, and `none`, are the candidates; each is
 * scored by its worst excess end over the factors (its end at factor i
 * minus the least end at factor i), and the least worst excess wins, ties
 * to the earlier candidate (factors in the order given).  *end_s: the
 * plan's end at the costs as given (factor 1).  0 when out of memory, nf
 * outside 1..HRING_PLAN_MAX_FACTORS or a factor not > 0. */
#define HRING_PLAN_MAX_FACTORS 8
int hring__plan_robust(const hring_plan_input_t *in, const double *factors, int nf, int *first,
                       double *end_s);

/* The plan of hring_fusion's `planned` mode (docs/fusion.md): the robust
 * plan over the cost factors 1, 0.7 and 1.4, those its trial measures. */
int hring__plan_planned(const hring_plan_input_t *in, int *first, double *end_s);

/* Fixed rules.  Each writes first[] (room for n) and returns k. */
int hring__plan_none(int n, int *first);
/* Consecutive tensors while the bucket stays within threshold bytes (a
 * tensor larger than it is a bucket of its own). */
int hring__plan_threshold(int n, const size_t *bytes, size_t threshold, int *first);
/* PyTorch DDP: each tensor joins the open bucket, which closes once it
 * holds at least its cap: first_cap for the first bucket, cap for the
 * others (1 MiB and 25 MiB in DDP). */
int hring__plan_ddp(int n, const size_t *bytes, size_t first_cap, size_t cap, int *first);

#endif
