/*
 * model_fit.c - fitting the cost model's parameters to measured collective
 * times (hring-tune -f).
 *
 * The ping-pong calibration (model_calib.c) measures one message between
 * two ranks while the others are idle.  A collective keeps every rank busy:
 * with ranks outnumbering cores a step also waits for the next rank to be
 * scheduled, rings that share a node's link share its bandwidth, and large
 * buffers leave the cache.  The fit takes the times of whole collectives
 * instead, several algorithms and sizes at once, and looks for the eight
 * figures (alpha, beta, gamma of both levels, the cache's size and the
 * cost of a byte from memory) that predict all of them best: alpha then
 * holds what a step costs with everyone running, beta the bandwidth a
 * rank gets with all others moving data too.  The formulas stay
 * the model's (model.c): what is fitted is parameters, not one curve per
 * algorithm, so an algorithm that the formulas describe badly stays badly
 * predicted, and the residuals say so.
 *
 * The error of a sample is r = log(predicted / measured): a factor 2 too
 * high weighs as much as a factor 2 too low, a 64 KiB call as much as a
 * 64 MiB one.  The loss is the pseudo-Huber sqrt(1 + (r/0.1)^2) - 1:
 * quadratic below 10%, linear above, so one disturbed measurement (a time
 * slice lost to another process) pulls less than a square would let it,
 * and smooth, which the search needs.  The search is coordinate descent on the logarithms of the
 * parameters: each in turn is multiplied by a factor and kept when the sum
 * of squared errors falls; the factor shrinks from 2 towards 1.001.  The
 * sum is only piecewise smooth in the logarithms (the tree takes maxima),
 * which this search handles where a gradient step would not.
 */
#include <math.h>

#include "algos/model.h"

#define HUBER_DELTA 0.1

/* The loss of p over the samples, and the mean |log error| in *mean. */
static double loss(const hring_model_params_t *p, const hring_model_sample_t *x, int n,
                   double *mean) {
  double e = 0, a = 0;
  for (int i = 0; i < n; i++) {
    hring_model_shape_t s = x[i].shape;
    double t = hring__model_predict(p, &s, x[i].algo, x[i].bytes);
    double r = t > 0 && x[i].seconds > 0 ? log(t / x[i].seconds) : 50.0, q = r / HUBER_DELTA;
    e += sqrt(1 + q * q) - 1;
    a += fabs(r);
  }
  if (mean) *mean = a / n;
  return e;
}

double hring__model_fit(hring_model_params_t *p, const hring_model_sample_t *x, int n,
                        unsigned fixed) {
  double *v[8] = {&p->intra.alpha, &p->intra.beta, &p->intra.gamma, &p->inter.alpha,
                  &p->inter.beta,  &p->inter.gamma, &p->mem.cache,   &p->mem.beta};
  if (n <= 0) return 0;
  double best = loss(p, x, n, NULL), mean;
  for (double f = 2.0; f > 1.001; f = sqrt(f)) {
    for (int moved = 1, rounds = 0; moved && rounds < 200; rounds++) {
      moved = 0;
      for (int k = 0; k < 8; k++) {
        if (fixed & (1u << k) || *v[k] <= 0) continue;
        for (int dir = 0; dir < 2; dir++) {
          double old = *v[k];
          *v[k] = dir ? old / f : old * f;
          double e = loss(p, x, n, NULL);
          if (e < best - 1e-12) {
            best = e;
            moved = 1;
            break;
          }
          *v[k] = old;
        }
      }
    }
  }
  loss(p, x, n, &mean);
  return mean;
}
