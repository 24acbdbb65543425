/*
 * model_impl.h - pieces shared by the cost model's files (model.c: the flat
 * and latency schedules and the interface; model_pipelined.c: the tree and
 * the hierarchical rings).
 */
#ifndef HRING_MODEL_IMPL_H
#define HRING_MODEL_IMPL_H

#include <math.h>
#include "algos/model.h"

static inline double line(const hring_model_level_t *l, double m) { return l->alpha + l->beta * m; }

/* Number of messages a piece of `piece` bytes is cut into. */
static inline double nchunks(double piece, size_t chunk) {
  if (chunk == 0 || piece <= (double)chunk) return 1.0;
  return ceil(piece / (double)chunk);
}

static inline double maxd(double a, double b) { return a > b ? a : b; }
static inline double mind(double a, double b) { return a < b ? a : b; }

static inline int log2_floor(int x) {
  int l = 0;
  while ((2 << l) <= x) l++;
  return l;
}

/* Rule 5: the factor on what the cores do in a step in which `busy`
 * ranks per node work, when the machine has fewer cores than ranks: they
 * take turns, `cores` at a time. */
static inline double hring__model_cpu_share(const hring_model_shape_t *s, double busy) {
  if (s->cores <= 0 || s->mranks <= s->cores || s->kmax <= 0) return 1.0;
  double nodes_here = (double)s->mranks / s->kmax;
  return maxd(1.0, busy * (nodes_here < 1 ? 1 : nodes_here) / s->cores);
}

double hring__model_tree(const hring_model_params_t *p, const hring_model_shape_t *s, double n);
/* hier with the leaders' phase priced by pl (fewer ranks busy, rule 5). */
double hring__model_hier(const hring_model_params_t *p, const hring_model_params_t *pl,
                         const hring_model_shape_t *s, double n);
double hring__model_hier2d(const hring_model_params_t *p, const hring_model_shape_t *s, double n);

#endif
