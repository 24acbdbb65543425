/*
 * hring-sim - predicted allreduce times at cluster scale, from the cost
 * model of src/algos/model.h.
 *
 *   hring-sim [--paper] [-f MODEL_FILE] [-P 1024,2048] [-k 8] [-b 4] [-e 1G]
 *             [-x 4] [--chunk 512K] [--intra-alpha S] [--intra-beta S/B]
 *             [--intra-gamma S/B] [--inter-alpha S] [--inter-beta S/B]
 *             [--inter-gamma S/B]
 *
 *   hring-sim --fusion resnet50|alexnet [--paper] [--ranks 1024,2048]
 *             [--per-node 8] [--gpu-tflops 3.5] [--batch B] [--grad-bytes 2]
 *             [--launch-us 0] [--fusion-algos rings|all] [model options]
 *
 * For every P: a table of predicted times (us) of the flat ring, both
 * hierarchical forms, the tree and the latency algorithms over sizes -b..-e
 * (factor -x), the fastest of them, then the sizes where the fastest
 * algorithm changes and where the ring and each hierarchical form cross
 * (found by bisection, not read off the table).  Parameters: built-in, a
 * file from hring-tune (-f), --paper (docs/model.md says why those values),
 * then any --intra-* / --inter-* given, in that order.
 *
 * --fusion NET: one training step of NET instead (docs/fusion-planner.md).
 * Backward produces the gradients of the network table (hring_fusion.h) at
 * the times its FLOPs take at --gpu-tflops (effective) for --batch samples
 * per GPU; buckets are allreduced one at a time, each by the fastest of the
 * flat ring and the two hierarchical rings (--fusion-algos all: of every
 * algorithm of the table) as the model predicts it, plus --launch-us.  For
 * every P it prints the planner's optimal buckets (src/fusion/planner.h)
 * with their split points, then the step time, the exposed communication
 * and the scaling efficiency (single-GPU step / P-GPU step) of the optimal
 * plan, PyTorch DDP's buckets, Horovod's 64 MiB threshold, one bucket and
 * one allreduce per tensor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"
#include "algos/algo.h"
#include "algos/model.h"
#include "fusion/planner.h"
#include "hring.h"
#include "hring_fusion.h"

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
  /* Rule 6's cache term is this machine's (host caches), not a GPU's. */
  p->mem = (hring_model_mem_t){0, 0};
  *k = 8;
  /* NCCL's default: 4 MiB buffers in 8 steps (NCCL_BUFFSIZE, NCCL_STEPS). */
  *chunk = 512 * 1024;
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


/* ---- --fusion: one training step ---- */

typedef struct {
  const char *net;
  double tflops;     /* effective, per GPU */
  int batch;         /* per GPU; 0: the paper's */
  size_t grad_bytes; /* bytes per gradient element */
  double launch_s;   /* per bucket */
  unsigned algos;    /* allowed algorithms */
  double errs[MAX_P]; /* --cost-error: true costs = these times the model's */
  int nerr;
} fusion_opts_t;

typedef struct {
  const hring_model_params_t *p;
  hring_model_shape_t s;
  unsigned algos;
  double launch_s;
} bucket_cost_t;

static double bucket_cost(size_t bytes, void *arg) {
  const bucket_cost_t *c = arg;
  double t;
  hring__model_choose(c->p, &c->s, bytes, c->algos, &t);
  return t + c->launch_s;
}

static int bucket_algo(const bucket_cost_t *c, size_t bytes) {
  return hring__model_choose(c->p, &c->s, bytes, c->algos, NULL);
}

typedef struct {
  const char *name;
  int k;
  int *first;
} plan_t;

/* One plan's summary line; eff = single-GPU step / P-GPU step. */
static void plan_line(const hring_plan_input_t *in, const plan_t *pl, double fwd, double bwd) {
  double end = hring__plan_end(in, pl->k, pl->first);
  double exposed = end - bwd;
  printf("  %-24s %4d buckets  step %8.2f ms  exposed comm %7.2f ms  efficiency %6.2f %%\n",
         pl->name, pl->k, (fwd + end) * 1e3, exposed * 1e3, 100 * (fwd + bwd) / (fwd + end));
}

/* --cost-error: plans made from the model's costs, run at costs that are
 * each factor times them; exposed communication (ms) of each, against the
 * plan that knew the true costs. */
static void cost_errors(const hring_plan_input_t *in, const hring_net_t *net, double bwd,
                        const fusion_opts_t *o) {
  int n = in->n;
  int *f = malloc((size_t)n * 6 * sizeof *f);
  if (!f) return;
  plan_t pl[5] = {{"planned (robust)", hring__plan_planned(in, f, NULL), f},
                  {"least end, slack", hring__plan_earliest(in, f + n, NULL), f + n},
                  {"ddp 1 MiB / 25 MiB", hring__plan_ddp(n, in->bytes, 1 << 20, 25 << 20, f + 2 * n),
                   f + 2 * n},
                  {"threshold 64 MiB",
                   hring__plan_threshold(n, in->bytes, (size_t)64 << 20, f + 3 * n), f + 3 * n},
                  {"none (per tensor)", hring__plan_none(n, f + 4 * n), f + 4 * n}};
  printf("  exposed communication (ms) of plans made from the model's costs when every bucket\n"
         "  really costs F times that (%s); the last row knew the true costs:\n", net->name);
  printf("  %-24s %7s", "plan", "buckets");
  for (int e = 0; e < o->nerr; e++) printf("  F=%-6.3g", o->errs[e]);
  printf("\n");
  for (int r = 0; r <= 5; r++) {
    if (r < 5) printf("  %-24s %7d", pl[r].name, pl[r].k);
    else printf("  %-24s %7s", "least end at true costs", "");
    for (int e = 0; e < o->nerr; e++) {
      hring_plan_scaled_t x;
      hring_plan_input_t t = hring__plan_scaled(in, o->errs[e], &x);
      double end;
      if (r < 5) end = hring__plan_end(&t, pl[r].k, pl[r].first);
      else hring__plan_earliest(&t, f + 5 * n, &end);
      printf("  %8.2f", (end - bwd) * 1e3);
    }
    printf("\n");
  }
  free(f);
}

static int simulate_fusion(const hring_model_params_t *p, int P, int k, size_t chunk,
                           const fusion_opts_t *o) {
  const hring_net_t *net = hring_fusion_net(o->net);
  if (!net) {
    fprintf(stderr, "hring-sim: unknown network '%s' (resnet50, alexnet)\n", o->net);
    return 1;
  }
  int n = net->ntensors;
  int batch = o->batch > 0 ? o->batch : strcmp(o->net, "alexnet") == 0 ? 64 : 32;
  double rate = o->tflops * 1e12 / batch; /* samples' FLOPs per second */
  size_t *bytes = malloc((size_t)n * sizeof *bytes);
  double *ready = malloc((size_t)n * sizeof *ready);
  int *opt = malloc((size_t)n * sizeof *opt), *ddp = malloc((size_t)n * sizeof *ddp);
  int *thr = malloc((size_t)n * sizeof *thr), *none = malloc((size_t)n * sizeof *none);
  if (!bytes || !ready || !opt || !ddp || !thr || !none) {
    fprintf(stderr, "hring-sim: out of memory\n");
    return 1;
  }
  double t = 0;
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    bytes[i] = net->tensors[i].count * o->grad_bytes;
    total += bytes[i];
    t += net->tensors[i].bwd_flops / rate;
    ready[i] = t;
  }
  double fwd = net->fwd_flops / rate, bwd = t;
  bucket_cost_t bc = {p, hring__model_shape(P, P / k, chunk), o->algos, o->launch_s};
  hring_plan_input_t in = {n, bytes, ready, bucket_cost, &bc};
  char b1[32];

  printf("\n# %s, P = %d ranks (%d nodes of %d), batch %d per GPU, %.3g TFLOPS effective, "
         "%zu-byte gradients\n", net->name, P, P / k, k, batch, o->tflops, o->grad_bytes);
  printf("# %d tensors, %zu parameters, %s of gradients; forward %.2f ms, backward %.2f ms "
         "per step\n", n, net->params, fmt_size((double)total, b1, sizeof b1), fwd * 1e3,
         bwd * 1e3);
  printf("# one bucket of everything: %.2f ms (%s)\n", bucket_cost(total, &bc) * 1e3,
         hring__algo_names[bucket_algo(&bc, total)]);

  double end;
  int kopt = hring__plan_optimal(&in, opt, &end);
  if (kopt <= 0) {
    fprintf(stderr, "hring-sim: the planner found no plan\n");
    return 1;
  }
  printf("  optimal plan: %d bucket(s), step ends %.2f ms after backward starts\n", kopt,
         end * 1e3);
  printf("  %6s %9s %9s %12s %9s %9s %9s %-12s\n", "bucket", "tensors", "layers", "size",
         "ready ms", "start ms", "end ms", "algorithm");
  double prev_end = -INFINITY;
  for (int b = 0; b < kopt; b++) {
    int i0 = opt[b], i1 = b + 1 < kopt ? opt[b + 1] - 1 : n - 1;
    size_t sz = 0;
    for (int i = i0; i <= i1; i++) sz += bytes[i];
    double start = ready[i1] > prev_end ? ready[i1] : prev_end;
    prev_end = start + bucket_cost(sz, &bc);
    char tens[24], lay[24];
    snprintf(tens, sizeof tens, "%d-%d", i0 + 1, i1 + 1);
    snprintf(lay, sizeof lay, "%d-%d", net->tensors[i1].layer, net->tensors[i0].layer);
    printf("  %6d %9s %9s %12s %9.2f %9.2f %9.2f %-12s\n", b + 1, tens, lay,
           fmt_size((double)sz, b1, sizeof b1), ready[i1] * 1e3, start * 1e3, prev_end * 1e3,
           hring__algo_names[bucket_algo(&bc, sz)]);
  }
  printf("  split points (backward tensor numbers from 1 = %s; forward layers from 1 = %s):\n",
         net->tensors[0].name, net->tensors[n - 1].name);
  if (kopt == 1) printf("    none\n");
  for (int b = 1; b < kopt; b++) {
    int i = opt[b]; /* the split lies between backward tensors i and i+1 (from 1) */
    const hring_net_tensor_t *later = &net->tensors[i - 1], *earlier = &net->tensors[i];
    printf("    backward tensors %d/%d (%s | %s) = forward tensors %d/%d = ", i, i + 1,
           later->name, earlier->name, n - i, n - i + 1);
    if (later->layer == earlier->layer)
      printf("inside forward layer %d\n", later->layer);
    else
      printf("forward layers %d/%d\n", earlier->layer, later->layer);
    /* How far this split moves, the others fixed, before the end grows
     * (by more than 1 us): the optimum is often a plateau. */
    int lo_i = i, hi_i = i, lo_b = opt[b - 1] + 1, hi_b = b + 1 < kopt ? opt[b + 1] - 1 : n - 1;
    for (int j = lo_b; j <= hi_b; j++) {
      opt[b] = j;
      if (hring__plan_end(&in, kopt, opt) <= end + 1e-6) {
        if (j < lo_i) lo_i = j;
        if (j > hi_i) hi_i = j;
      }
    }
    opt[b] = i;
    printf("      same end (within 1 us) for a split anywhere from backward tensors %d/%d "
           "(forward layers %d/%d) to %d/%d (forward layers %d/%d)\n", lo_i, lo_i + 1,
           net->tensors[lo_i].layer, net->tensors[lo_i - 1].layer, hi_i, hi_i + 1,
           net->tensors[hi_i].layer, net->tensors[hi_i - 1].layer);
  }

  /* The paper's form: the fused tensor cut once (two segments).  The best
   * cut by trying each, and the cuts that tie with it. */
  if (n > 1) {
    int two[2] = {0, 1}, best_i = 1, lo_i = -1, hi_i = -1;
    double best = INFINITY;
    for (int i = 1; i < n; i++) {
      two[1] = i;
      double e = hring__plan_end(&in, 2, two);
      if (e < best) best = e, best_i = i;
    }
    for (int i = 1; i < n; i++) {
      two[1] = i;
      if (hring__plan_end(&in, 2, two) <= best + 1e-6) {
        if (lo_i < 0) lo_i = i;
        hi_i = i;
      }
    }
    printf("  best single cut (two segments): backward tensors %d/%d = forward tensors %d/%d = "
           "forward layers %d/%d, step ends %.2f ms (efficiency %.2f %%)\n", best_i, best_i + 1,
           n - best_i, n - best_i + 1, net->tensors[best_i].layer, net->tensors[best_i - 1].layer,
           best * 1e3, 100 * (fwd + bwd) / (fwd + best));
    printf("      same end (within 1 us) for a cut anywhere from backward tensors %d/%d "
           "(forward layers %d/%d) to %d/%d (forward layers %d/%d)\n", lo_i, lo_i + 1,
           net->tensors[lo_i].layer, net->tensors[lo_i - 1].layer, hi_i, hi_i + 1,
           net->tensors[hi_i].layer, net->tensors[hi_i - 1].layer);
  }

  if (o->nerr > 0) cost_errors(&in, net, bwd, o);

  plan_t plans[5] = {{"optimal (planner)", kopt, opt},
                     {"ddp 1 MiB / 25 MiB", hring__plan_ddp(n, bytes, 1 << 20, 25 << 20, ddp), ddp},
                     {"threshold 64 MiB", hring__plan_threshold(n, bytes, (size_t)64 << 20, thr),
                      thr},
                     {"one bucket", 1, none},
                     {"none (per tensor)", hring__plan_none(n, none), none}};
  int one_first = 0;
  plans[3].first = &one_first;
  printf("  single GPU: step %.2f ms (forward + backward)\n", (fwd + bwd) * 1e3);
  for (int i = 0; i < 5; i++) plan_line(&in, &plans[i], fwd, bwd);
  free(bytes);
  free(ready);
  free(opt);
  free(ddp);
  free(thr);
  free(none);
  return 0;
}

/* Option values are read strictly: a bad one ends the run, naming it. */
static void bad_value(const char *opt, const char *v, const char *want) {
  fprintf(stderr, "hring-sim: %s '%s': want %s\n", opt, v, want);
  exit(2);
}

static double opt_num(const char *opt, const char *v, double lo, const char *want) {
  double x;
  if (hring_perf_parse_double(v, lo, HUGE_VAL, &x)) bad_value(opt, v, want);
  return x;
}

static int opt_int(const char *opt, const char *v, int lo, int hi) {
  int x;
  char want[64];
  snprintf(want, sizeof want, "an integer from %d to %d", lo, hi);
  if (hring_perf_parse_int(v, lo, hi, &x)) bad_value(opt, v, want);
  return x;
}

static size_t opt_size(const char *opt, const char *v) {
  size_t x;
  if (hring_perf_parse_size(v, &x)) bad_value(opt, v, "a size in bytes, K/M/G allowed");
  return x;
}

/* A comma-separated value cut into at most MAX_P items, by hand: strtok
 * would pass over empty items.  A bad list ends the run, naming the
 * option; what names the items ("rank counts"). */
static int split_list(const char *opt, const char *v, const char *what, char item[][32]) {
  char want[64], most[64];
  snprintf(want, sizeof want, "%s separated by commas", what);
  snprintf(most, sizeof most, "at most %d %s", MAX_P, what);
  int n = 0;
  for (const char *t = v;; t++) {
    size_t m = strcspn(t, ",");
    if (m == 0 || m >= 32) bad_value(opt, v, want);
    if (n == MAX_P) bad_value(opt, v, most);
    memcpy(item[n], t, m);
    item[n++][m] = '\0';
    t += m;
    if (*t == '\0') break;
  }
  return n;
}

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--paper] [-f MODEL_FILE] [-P N[,N...]] [-k RANKS_PER_NODE] [-b MIN] [-e MAX]\n"
          "          [-x FACTOR] [--chunk BYTES] [--{intra,inter}-{alpha,beta,gamma} VALUE]\n"
          "       %s --fusion resnet50|alexnet [--paper] [--ranks N[,N...]] [--per-node K]\n"
          "          [--gpu-tflops X] [--batch B] [--grad-bytes 2] [--launch-us U]\n"
          "          [--fusion-algos rings|all] [--cost-error F[,F...]] [model options]\n",
          prog, prog);
  exit(2);
}

int main(int argc, char **argv) {
  hring_model_params_t p;
  hring__model_defaults(&p);
  int Ps[MAX_P], nP = 0, k = 8;
  size_t chunk = 512 * 1024;
  double lo = 4, hi = 1024.0 * 1024 * 1024, factor = 4;
  /* --fusion: the paper's setting unless told otherwise (docs/fusion-planner.md):
   * 3.5 TFLOPS effective is what its reported times give per P40. */
  fusion_opts_t fo = {NULL, 3.5, 0, 2, 0,
                      1u << HRING_ALGO_RING | 1u << HRING_ALGO_HIER | 1u << HRING_ALGO_HIER2D, {0}, 0};
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
    else if (strcmp(a, "--fusion") == 0) fo.net = v;
    else if (strcmp(a, "--cost-error") == 0) {
      char item[MAX_P][32];
      fo.nerr = split_list(a, v, "factors", item);
      for (int e = 0; e < fo.nerr; e++) {
        fo.errs[e] = opt_num(a, item[e], 0, "factors > 0 separated by commas");
        if (!(fo.errs[e] > 0)) bad_value(a, v, "factors > 0 separated by commas");
      }
    }
    else if (strcmp(a, "--gpu-tflops") == 0) {
      fo.tflops = opt_num(a, v, 0, "a number > 0");
      if (!(fo.tflops > 0)) bad_value(a, v, "a number > 0");
    } else if (strcmp(a, "--batch") == 0) fo.batch = opt_int(a, v, 0, 1 << 20);
    else if (strcmp(a, "--grad-bytes") == 0) fo.grad_bytes = (size_t)opt_int(a, v, 1, 8);
    else if (strcmp(a, "--launch-us") == 0) fo.launch_s = opt_num(a, v, 0, "a number >= 0") * 1e-6;
    else if (strcmp(a, "--fusion-algos") == 0) {
      if (strcmp(v, "all") == 0) fo.algos = all_cols();
      else if (strcmp(v, "rings") != 0) bad_value(a, v, "rings or all");
    } else if (strcmp(a, "-P") == 0 || strcmp(a, "--ranks") == 0) {
      char item[MAX_P][32];
      nP = split_list(a, v, "rank counts", item);
      for (int i = 0; i < nP; i++) Ps[i] = opt_int(a, item[i], 1, 1 << 24);
    } else if (strcmp(a, "-k") == 0 || strcmp(a, "--per-node") == 0) k = opt_int(a, v, 1, 1 << 16);
    else if (strcmp(a, "-b") == 0) lo = (double)opt_size(a, v);
    else if (strcmp(a, "-e") == 0) hi = (double)opt_size(a, v);
    else if (strcmp(a, "-x") == 0) {
      factor = opt_num(a, v, 1, "a number > 1");
      if (!(factor > 1)) bad_value(a, v, "a number > 1");
    } else if (strcmp(a, "--chunk") == 0) {
      chunk = opt_size(a, v);
      if (chunk == 0) bad_value(a, v, "a size of at least 1 byte");
    } else if (strcmp(a, "--intra-alpha") == 0) p.intra.alpha = opt_num(a, v, 0, "seconds >= 0");
    else if (strcmp(a, "--intra-beta") == 0) p.intra.beta = opt_num(a, v, 0, "seconds per byte >= 0");
    else if (strcmp(a, "--intra-gamma") == 0) p.intra.gamma = opt_num(a, v, 0, "seconds per byte >= 0");
    else if (strcmp(a, "--inter-alpha") == 0) p.inter.alpha = opt_num(a, v, 0, "seconds >= 0");
    else if (strcmp(a, "--inter-beta") == 0) p.inter.beta = opt_num(a, v, 0, "seconds per byte >= 0");
    else if (strcmp(a, "--inter-gamma") == 0) p.inter.gamma = opt_num(a, v, 0, "seconds per byte >= 0");
    else usage(argv[0]);
  }
  if (nP == 0 && fo.net) {
    Ps[nP++] = 1024;
    Ps[nP++] = 2048;
  }
  if (nP == 0) {
    int def[] = {16, 64, 256, 1024, 2048, 4096};
    for (nP = 0; nP < 6; nP++) Ps[nP] = def[nP];
  }
  /* Each value was checked as it was read; only their relation is left. */
  if (lo < 1 || hi < lo) {
    fprintf(stderr, "hring-sim: the sizes want 1 <= -b (%.0f) <= -e (%.0f)\n", lo, hi);
    return 2;
  }
  if (fo.net && !hring_fusion_net(fo.net)) {
    fprintf(stderr, "hring-sim: unknown network '%s' (resnet50, alexnet)\n", fo.net);
    return 2;
  }
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
    if (fo.net) {
      if (simulate_fusion(&p, Ps[i], k, chunk, &fo)) return 1;
    } else {
      simulate(&p, Ps[i], k, chunk, lo, hi, factor);
    }
  }
  return 0;
}
