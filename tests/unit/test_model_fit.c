/* test_model_fit.c - fitting the cost model to measured times
 * (hring__model_fit): synthetic samples from known parameters must be
 * predicted again after a fit that starts far from them, and a fixed
 * parameter must stay as it was. */
#include <math.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "harness.h"

/* Several algorithms and sizes on 4 nodes of 2 ranks (every level and
 * both kinds of formula, sums and the tree's maxima), timed by truth. */
static int make_samples(const hring_model_params_t *truth, hring_model_sample_t *x) {
  const int algos[] = {HRING_ALGO_RING, HRING_ALGO_HIER, HRING_ALGO_HIER2D,
                       HRING_ALGO_RABENSEIFNER, HRING_ALGO_TREE};
  int n = 0;
  for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++)
    for (size_t b = 64 << 10; b <= (64u << 20); b *= 4) {
      x[n].algo = algos[a];
      x[n].bytes = b;
      x[n].shape = hring__model_shape(8, 4, 262144);
      x[n].seconds = hring__model_predict(truth, &x[n].shape, algos[a], b);
      n++;
    }
  return n;
}

HTEST(model_fit_recovers_predictions, 30) {
  hring_model_params_t truth = {{20e-6, 2e-10, 1e-10}, {300e-6, 8e-9, 1e-10}, {0, 0}};
  hring_model_sample_t x[64];
  int n = make_samples(&truth, x);
  hring_model_params_t p;
  hring__model_defaults(&p);
  p.intra.alpha *= 7, p.inter.beta /= 5; /* far from the truth */
  double before = 0;
  for (int i = 0; i < n; i++) {
    before += fabs(log(hring__model_predict(&p, &x[i].shape, x[i].algo, x[i].bytes) / x[i].seconds));
  }
  HCHECK(before / n > 0.5, "the start should be far off (mean |log| %.3f)", before / n);
  double err = hring__model_fit(&p, x, n, 0);
  HCHECK(err < 0.01, "mean |log error| after the fit %.4f", err);
  for (int i = 0; i < n; i++) {
    double t = hring__model_predict(&p, &x[i].shape, x[i].algo, x[i].bytes);
    HCHECK(fabs(t / x[i].seconds - 1) < 0.03, "%s %zu B: fitted %.3g s, truth %.3g s",
           hring__algo_names[x[i].algo], x[i].bytes, t, x[i].seconds);
  }
  HCHECK(fabs(p.inter.alpha / truth.inter.alpha - 1) < 0.05, "inter alpha %.3g, truth %.3g",
         p.inter.alpha, truth.inter.alpha);
  HCHECK(fabs(p.inter.beta / truth.inter.beta - 1) < 0.05, "inter beta %.3g, truth %.3g",
         p.inter.beta, truth.inter.beta);
}

HTEST(model_fit_keeps_fixed, 30) {
  hring_model_params_t truth = {{20e-6, 2e-10, 1e-10}, {300e-6, 8e-9, 1e-10}, {0, 0}};
  hring_model_sample_t x[64];
  int n = make_samples(&truth, x);
  hring_model_params_t p;
  hring__model_defaults(&p);
  const double intra_alpha = p.intra.alpha, inter_gamma = p.inter.gamma;
  hring__model_fit(&p, x, n, 1u << 0 | 1u << 5);
  HCHECK(p.intra.alpha == intra_alpha && p.inter.gamma == inter_gamma,
         "fixed parameters moved: intra alpha %.3g (was %.3g), inter gamma %.3g (was %.3g)",
         p.intra.alpha, intra_alpha, p.inter.gamma, inter_gamma);
  HCHECK(hring__model_fit(&p, x, 0, 0) == 0, "no samples: nothing to fit");
}

/* The cache term (rule 6): times from a machine whose vectors leave an
 * 8 MiB cache, on one node of 2 ranks, are predicted again after a fit
 * that starts from another cache and cost; without the term no fit of the
 * six level parameters comes as close. */
HTEST(model_fit_finds_cache_knee, 30) {
  hring_model_params_t truth = {{3e-6, 1e-10, 8e-11}, {0, 0, 0}, {8.0 * (1 << 20), 2.5e-10}};
  hring_model_sample_t x[64];
  int n = 0;
  const int algos[] = {HRING_ALGO_RING, HRING_ALGO_TREE};
  for (int a = 0; a < 2; a++)
    for (size_t b = 64 << 10; b <= (64u << 20); b *= 2, n++) {
      x[n].algo = algos[a];
      x[n].bytes = b;
      x[n].shape = hring__model_shape(2, 1, 65536);
      x[n].seconds = hring__model_predict(&truth, &x[n].shape, algos[a], b);
    }
  hring_model_params_t p;
  hring__model_defaults(&p);
  p.mem = (hring_model_mem_t){32.0 * (1 << 20), 5e-11};
  double err = hring__model_fit(&p, x, n, 7u << 3);
  HCHECK(err < 0.01, "mean |log error| after the fit %.4f", err);
  HCHECK(fabs(p.mem.cache / truth.mem.cache - 1) < 0.1 && fabs(p.mem.beta / truth.mem.beta - 1) < 0.1,
         "fitted cache %.3g B, beta %.3g s/B; truth %.3g, %.3g", p.mem.cache, p.mem.beta,
         truth.mem.cache, truth.mem.beta);
  hring__model_defaults(&p);
  p.mem.beta = 0; /* the term off, and 0 stays 0 */
  double flat = hring__model_fit(&p, x, n, 7u << 3);
  HCHECK(p.mem.beta == 0 && flat > 3 * err + 0.02,
         "without the cache term the fit should be worse (%.4f against %.4f)", flat, err);
}
