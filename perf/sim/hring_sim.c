/*
 * hring-sim - predicted allreduce times at cluster scale, from the cost
 * model of src/algos/model.h.
 *
 *   hring-sim [--paper] [-f MODEL_FILE] [-P 1024,2048] [-k 8] [-b 4] [-e 1G]
 *             [-x 4] [--chunk 512K] [--intra-alpha S] [--intra-beta S/B]
 *             [--intra-gamma S/B] [--inter-alpha S] [--inter-beta S/B]
 *             [--inter-gamma S/B]
 *
 * For every P: a table of predicted times (us) of the flat ring, both
 * hierarchical forms, the tree and the latency algorithms over sizes -b..-e
 * (factor -x), the fastest of them, then the sizes where the fastest
 * algorithm changes and where the ring and each hierarchical form cross
 * (found by bisection, not read off the table).  Parameters: built-in, a
 * file from hring-tune (-f), --paper (docs/model.md says why those values),
 * then any --intra-* / --inter-* given, in that order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "hring.h"

/* The columns: every algorithm that scales past one node's ranks. */
static const int cols[] = {HRING_ALGO_RING, HRING_ALGO_HIER, HRING_ALGO_HIER2D, HRING_ALGO_TREE,
                           HRING_ALGO_RDOUBLE, HRING_ALGO_RABENSEIFNER};
#define NCOLS (int)(sizeof cols / sizeof cols[0])
#define MAX_P 32

/*
 * --paper: Jia et al. 2018, nodes of 8 Tesla P40 on PCIe, 100 Gb/s RoCE
 * between nodes.  docs/model.md gives the reasoning for each value.
 */
static void paper_params(hring_model_params_t *p, int *k, size_t *chunk) {
  /* PCIe 3.0 x16 peer-to-peer through the node's switches: ~10 GB/s; a
   * GPU-to-GPU step (kernel flag polling): ~2 us. */
  p->intra.alpha = 2e-6;
  p->intra.beta = 1.0 / 10e9;
  /* 100 Gb/s = 12.5 GB/s line rate, ~11 GB/s of payload; one RDMA step
   * with its proxy and GPU hand-off: ~6 us. */
  p->inter.alpha = 6e-6;
  p->inter.beta = 1.0 / 11e9;
  /* P40: 346 GB/s of memory; a reduction moves 3 bytes per byte reduced,
   * at ~70% of peak: ~80 GB/s. */
  p->intra.gamma = p->inter.gamma = 1.0 / 80e9;
  *k = 8;
  /* NCCL's default: 4 MiB buffers in 8 steps (NCCL_BUFFSIZE, NCCL_STEPS). */
  *chunk = 512 * 1024;
}

static double parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end);
  switch (*end) {
    case 'K': case 'k': v *= 1024; break;
    case 'M': case 'm': v *= 1024 * 1024; break;
    case 'G': case 'g': v *= 1024.0 * 1024 * 1024; break;
    default: break;
  }
  return v;
}

static const char *fmt_size(double b, char *buf, size_t len) {
  if (b >= 1024.0 * 1024 * 1024) snprintf(buf, len, "%.3g GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024 * 1024) snprintf(buf, len, "%.3g MiB", b / (1024 * 1024));
  else if (b >= 1024) snprintf(buf, len, "%.3g KiB", b / 1024);
  else snprintf(buf, len, "%.0f B", b);
  return buf;
}

static unsigned all_cols(void) {
  unsigned m = 0;
  for (int i = 0; i < NCOLS; i++) m |= 1u << cols[i];
  return m;
}

/* Where predict(a) - predict(b) changes sign between lo and hi bytes. */
static double bisect(const hring_model_params_t *p, const hring_model_shape_t *s, int a, int b,
                     double lo, double hi) {
  for (int i = 0; i < 60 && hi - lo > 1; i++) {
    double mid = sqrt(lo * hi) > lo + 1 ? sqrt(lo * hi) : (lo + hi) / 2;
    double dlo = hring__model_predict(p, s, a, (size_t)lo) - hring__model_predict(p, s, b, (size_t)lo);
    double dmid = hring__model_predict(p, s, a, (size_t)mid) - hring__model_predict(p, s, b, (size_t)mid);
    if ((dlo < 0) == (dmid < 0)) lo = mid;
    else hi = mid;
  }
  return hi;
}

/* Scans lo..hi finely (2^(1/16) steps) for the sizes where a and b change
 * places.  Chunk boundaries add a step of alpha to one side, so near a tie
 * the two can swap several times: then the first and last crossing and
 * their number are printed. */
static void crossings(const hring_model_params_t *p, const hring_model_shape_t *s, int a, int b,
                      double lo, double hi) {
  char b1[32], b2[32];
  int found = 0;
  double first = 0, last = 0, prev = lo;
  double dprev = hring__model_predict(p, s, a, (size_t)lo) - hring__model_predict(p, s, b, (size_t)lo);
  for (double x = lo * 1.0442737824274138; x <= hi * 1.0001; x *= 1.0442737824274138) {
    double d = hring__model_predict(p, s, a, (size_t)x) - hring__model_predict(p, s, b, (size_t)x);
    if ((d < 0) != (dprev < 0)) {
      last = bisect(p, s, a, b, prev, x);
      if (!found++) first = last;
    }
    prev = x, dprev = d;
  }
  const char *above = hring__algo_names[dprev < 0 ? a : b];
  printf("    %-12s vs %-12s: ", hring__algo_names[a], hring__algo_names[b]);
  if (!found)
    printf("no crossing (%s faster throughout)\n", above);
  else if (found == 1)
    printf("cross at %s (%s faster above)\n", fmt_size(last, b1, sizeof b1), above);
  else
    printf("cross %d times from %s to %s (%s faster above)\n", found,
           fmt_size(first, b1, sizeof b1), fmt_size(last, b2, sizeof b2), above);
}

static void simulate(const hring_model_params_t *p, int P, int k, size_t chunk, double lo,
                     double hi, double factor) {
  char buf[32];
  hring_model_shape_t s = hring__model_shape(P, P / k, chunk);
  printf("\n# P = %d ranks, %d nodes of %d, chunk %zu B; predicted time in us\n", P, s.nnodes,
         s.kmax, chunk);
  printf("%12s", "size");
  for (int i = 0; i < NCOLS; i++) printf(" %12s", hring__algo_names[cols[i]]);
  printf("  %s\n", "fastest");
  for (double b = lo; b <= hi * 1.0001; b *= factor) {
    printf("%12s", fmt_size(b, buf, sizeof buf));
    for (int i = 0; i < NCOLS; i++) {
      if (hring__model_applicable(&s, cols[i], (size_t)b))
        printf(" %12.1f", hring__model_predict(p, &s, cols[i], (size_t)b) * 1e6);
      else
        printf(" %12s", "-");
    }
    double t;
    int best = hring__model_choose(p, &s, (size_t)b, all_cols(), &t);
    printf("  %s\n", hring__algo_names[best]);
  }
  printf("  fastest algorithm by size:\n");
  int cur = hring__model_choose(p, &s, (size_t)lo, all_cols(), NULL);
  printf("    from %s: %s\n", fmt_size(lo, buf, sizeof buf), hring__algo_names[cur]);
  for (double x = lo * 1.0442737824274138; x <= hi * 1.0001; x *= 1.0442737824274138) {
    int b = hring__model_choose(p, &s, (size_t)x, all_cols(), NULL);
    if (b != cur) {
      printf("    from %s: %s\n", fmt_size(bisect(p, &s, cur, b, x / 1.0442737824274138, x), buf,
                                            sizeof buf), hring__algo_names[b]);
      cur = b;
    }
  }
  printf("  crossovers:\n");
  crossings(p, &s, HRING_ALGO_RING, HRING_ALGO_HIER, lo, hi);
  if (hring__model_applicable(&s, HRING_ALGO_HIER2D, 0)) {
    crossings(p, &s, HRING_ALGO_RING, HRING_ALGO_HIER2D, lo, hi);
    crossings(p, &s, HRING_ALGO_HIER, HRING_ALGO_HIER2D, lo, hi);
  }
  crossings(p, &s, HRING_ALGO_RING, HRING_ALGO_TREE, lo, hi);
}

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--paper] [-f MODEL_FILE] [-P N[,N...]] [-k RANKS_PER_NODE] [-b MIN] [-e MAX]\n"
          "          [-x FACTOR] [--chunk BYTES] [--{intra,inter}-{alpha,beta,gamma} VALUE]\n",
          prog);
  exit(2);
}

int main(int argc, char **argv) {
  hring_model_params_t p;
  hring__model_defaults(&p);
  int Ps[MAX_P], nP = 0, k = 8;
  size_t chunk = 512 * 1024;
  double lo = 4, hi = 1024.0 * 1024 * 1024, factor = 4;
  /* Two passes: --paper and -f set the base, the single values override. */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--paper") == 0) paper_params(&p, &k, &chunk);
    else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
      if (hring__model_load(argv[++i], &p) != HRING_SUCCESS) {
        fprintf(stderr, "hring-sim: %s\n", hring_last_error());
        return 1;
      }
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--paper") == 0) continue;
    if (!v) usage(argv[0]);
    i++;
    if (strcmp(a, "-f") == 0) continue;
    else if (strcmp(a, "-P") == 0) {
      for (char *t = strtok((char *)v, ","); t && nP < MAX_P; t = strtok(NULL, ",")) Ps[nP++] = atoi(t);
    } else if (strcmp(a, "-k") == 0) k = atoi(v);
    else if (strcmp(a, "-b") == 0) lo = parse_size(v);
    else if (strcmp(a, "-e") == 0) hi = parse_size(v);
    else if (strcmp(a, "-x") == 0) factor = atof(v);
    else if (strcmp(a, "--chunk") == 0) chunk = (size_t)parse_size(v);
    else if (strcmp(a, "--intra-alpha") == 0) p.intra.alpha = atof(v);
    else if (strcmp(a, "--intra-beta") == 0) p.intra.beta = atof(v);
    else if (strcmp(a, "--intra-gamma") == 0) p.intra.gamma = atof(v);
    else if (strcmp(a, "--inter-alpha") == 0) p.inter.alpha = atof(v);
    else if (strcmp(a, "--inter-beta") == 0) p.inter.beta = atof(v);
    else if (strcmp(a, "--inter-gamma") == 0) p.inter.gamma = atof(v);
    else usage(argv[0]);
  }
  if (nP == 0) {
    int def[] = {16, 64, 256, 1024, 2048, 4096};
    for (nP = 0; nP < 6; nP++) Ps[nP] = def[nP];
  }
  if (k < 1 || lo < 1 || hi < lo || factor <= 1) usage(argv[0]);
  printf("# hring-sim: allreduce predicted by the alpha-beta-gamma model (docs/model.md)\n");
  printf("# intra: alpha %.4g s, beta %.4g s/B, gamma %.4g s/B\n", p.intra.alpha, p.intra.beta,
         p.intra.gamma);
  printf("# inter: alpha %.4g s, beta %.4g s/B, gamma %.4g s/B\n", p.inter.alpha, p.inter.beta,
         p.inter.gamma);
  printf("# ranks per node %d, chunk %zu B\n", k, chunk);
  for (int i = 0; i < nP; i++) {
    if (Ps[i] < k || Ps[i] % k) {
      fprintf(stderr, "hring-sim: P = %d is not a multiple of k = %d; skipped\n", Ps[i], k);
      continue;
    }
    simulate(&p, Ps[i], k, chunk, lo, hi, factor);
  }
  return 0;
}
