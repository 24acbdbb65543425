/*
 * hring-tune - measures the cost model's parameters on the ranks it runs on
 * and writes them for HRING_MODEL_FILE.
 *
 *   hring-run -n 4 build/bin/hring-tune [-o FILE] [-q]
 *   HRING_ALGO=ring hring-run -n 4 build/bin/hring-tune -c [-b 64K] [-e 16M]
 *
 * Every rank calibrates together (hring__model_calibrate); rank 0 prints the
 * parameters and writes FILE.  A level with no pair of ranks to measure
 * (no second node, or one rank per node) keeps its built-in value, and the
 * file says so in a comment.  -q prints nothing but errors.
 *
 * -c then checks the model against the machine, in the same run: for sizes
 * -b to -e (factor 2) it times float32 sum allreduces of the algorithm
 * HRING_ALGO forces (the slowest rank's time per op) and prints them next
 * to the prediction from the parameters just measured.
 *
 * -m FILE times the same algorithms and sizes as -f (factor 2), and prints
 * them next to the predictions of FILE (an earlier -f's -o), with the
 * count within 25% and the mean |log error|: the fit checked on samples
 * it never saw.  No calibration, no file written.
 *
 * -r R (with -f or -m) repeats the whole series R times (1-9) and takes
 * each sample's median: on a machine that changes speed from minute to
 * minute, one series caught some sizes in another mode than the rest.
 *
 * -f fits the parameters to whole collectives instead (model_fit.c): it
 * times every algorithm of -a (default: the ring, the tree and
 * halving-doubling on one node; the ring, both hierarchical forms and
 * halving-doubling and recursive doubling across nodes) at -b, 4 -b, 16 -b ... up to -e, fits the
 * six parameters to those times, and checks the fit at the sizes in
 * between (2 -b, 8 -b, ...), which it did not see.  The file (-o) then
 * holds the fitted parameters.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "core/comm.h"
#include "core/config.h"
#include "core/stats.h"
#include "hring.h"

static void print_params(const hring_model_params_t *p, const hring_model_shape_t *s) {
  printf("hring-tune: %d ranks on %d node(s), %d..%d per node, slot %zu B\n", s->nranks,
         s->nnodes, s->kmin, s->kmax, s->chunk);
  const struct {
    const char *name;
    const hring_model_level_t *l;
  } lv[] = {{"intra", &p->intra}, {"inter", &p->inter}};
  for (int i = 0; i < 2; i++)
    printf("  %s: alpha %.3g us, beta %.3g ns/B (%.2f GB/s), gamma %.3g ns/B (%.2f GB/s)\n",
           lv[i].name, lv[i].l->alpha * 1e6, lv[i].l->beta * 1e9,
           lv[i].l->beta > 0 ? 1e-9 / lv[i].l->beta : 0.0, lv[i].l->gamma * 1e9,
           lv[i].l->gamma > 0 ? 1e-9 / lv[i].l->gamma : 0.0);
  printf("  mem: beyond %.3g MiB of the machine's vectors, %.3g ns/B more per byte copied or "
         "reduced\n", p->mem.cache / (1 << 20), p->mem.beta * 1e9);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The chunk allreduce.c gives each schedule: the slot for those that cut
 * messages at the slot, hring__ring_chunk for the chunked ones. */
static size_t chunk_of(const struct hring_comm *comm, int algo, size_t bytes) {
  if (algo == HRING_ALGO_EXCHANGE || algo == HRING_ALGO_RABENSEIFNER || algo == HRING_ALGO_RDOUBLE)
    return comm->min_slot;
  return hring__ring_chunk(comm, bytes);
}

/* The slowest rank's time per float32 sum allreduce of `bytes` with the
 * forced algorithm, the median of 3 batches of about 20 ms each (a batch
 * size every rank derives from the shared prediction); < 0 on failure. */
static double time_op(hring_comm_t comm, const float *in, float *out, size_t bytes, double pred) {
  int iters = pred > 0 ? (int)(0.02 / pred) : 1000;
  iters = iters < 2 ? 2 : iters > 1000 ? 1000 : iters;
  size_t count = bytes / sizeof(float);
  double t[3];
  for (int rep = -1; rep < 3; rep++) { /* one warm-up batch */
    double t0 = now_s();
    for (int i = 0; i < (rep < 0 ? 2 : iters); i++)
      if (hring_allreduce(in, out, count, HRING_FLOAT32, HRING_SUM, comm, NULL) != HRING_SUCCESS) {
        fprintf(stderr, "hring-tune: %s\n", hring_last_error());
        return -1;
      }
    if (rep >= 0) t[rep] = (now_s() - t0) / iters;
  }
  double med = t[0] + t[1] + t[2] - fmin(t[0], fmin(t[1], t[2])) - fmax(t[0], fmax(t[1], t[2]));
  if (hring_allreduce(&med, &med, 1, HRING_FLOAT64, HRING_MAX, comm, NULL) != HRING_SUCCESS)
    return -1;
  return med;
}

/* Buffers for sizes up to hi, filled with small integers. */
static int alloc_bufs(size_t hi, float **in, float **out) {
  *in = malloc(hi), *out = malloc(hi);
  if (!*in || !*out) {
    free(*in), free(*out);
    fprintf(stderr, "hring-tune: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < hi / sizeof(float); i++) (*in)[i] = (float)(i & 255);
  return 0;
}

/* Predicted against measured, size by size, for the forced algorithm. */
static int check(hring_comm_t comm, const hring_model_params_t *p, size_t lo, size_t hi) {
  int algo = comm->algo_forced;
  if (algo == HRING_ALGO_AUTO) {
    if (comm->rank == 0) fprintf(stderr, "hring-tune -c: set HRING_ALGO to the algorithm to check\n");
    return 1;
  }
  float *in, *out;
  if (alloc_bufs(hi, &in, &out)) return 1;
  hring_model_shape_t s;
  hring__model_shape_of(comm, &s);
  if (comm->rank == 0)
    printf("check: %s, %d ranks, %d node(s); time per op in us (slowest rank)\n%12s %12s %12s %8s\n",
           hring__algo_names[algo], s.nranks, s.nnodes, "bytes", "predicted", "measured", "ratio");
  int rc = 0;
  for (size_t b = lo; b <= hi; b *= 2) {
    s.chunk = chunk_of(comm, algo, b);
    double pred = hring__model_predict(p, &s, algo, b);
    double t = time_op(comm, in, out, b, pred);
    if (t < 0) {
      rc = 1;
      break;
    }
    if (comm->rank == 0) printf("%12zu %12.1f %12.1f %8.2f\n", b, pred * 1e6, t * 1e6, t / pred);
  }
  free(in), free(out);
  return rc;
}

#define FIT_MAX_ALGOS 8
#define FIT_MAX_SAMPLES 512

/* The algorithms -a names (comma-separated), or the defaults for the
 * layout; the count, or -1 after printing why not. */
static int fit_algos(const struct hring_comm *comm, const char *list, int *algos) {
  static const int one_node[] = {HRING_ALGO_RING, HRING_ALGO_TREE, HRING_ALGO_RABENSEIFNER};
  static const int nodes[] = {HRING_ALGO_RING, HRING_ALGO_HIER, HRING_ALGO_HIER2D,
                              HRING_ALGO_RABENSEIFNER, HRING_ALGO_RDOUBLE};
  int n = 0;
  if (!list) {
    const int *d = comm->nnodes > 1 ? nodes : one_node;
    n = comm->nnodes > 1 ? 5 : 3;
    for (int i = 0; i < n; i++) algos[i] = d[i];
    return n;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int a = 0;
    for (int k = HRING_ALGO_RING; k < HRING_ALGO_COUNT && !a; k++)
      if (strcmp(t, hring__algo_names[k]) == 0) a = k;
    if (!a || n == FIT_MAX_ALGOS) {
      if (comm->rank == 0)
        fprintf(stderr, "hring-tune -a: %s\n", a ? "too many algorithms" : "unknown algorithm");
      return -1;
    }
    algos[n++] = a;
  }
  return n;
}

/* Times the algorithms at lo, 2 lo, 4 lo ... hi into x (p's predictions
 * size the batches), reps times over, each sample's median; the number of
 * samples, or -1.  Every repetition goes through all of them in turn, so
 * each sample's times are spread over the run, not taken back to back. */
#define MAX_REPS 9
static int measure(hring_comm_t comm, const hring_model_params_t *p, const int *algos, int na,
                   size_t lo, size_t hi, int reps, hring_model_sample_t *x) {
  float *in, *out;
  if (alloc_bufs(hi, &in, &out)) return -1;
  static double t[MAX_REPS][FIT_MAX_SAMPLES];
  int nx = 0, saved = comm->algo_forced;
  for (int r = 0; r < reps && nx >= 0; r++) {
    nx = 0;
    for (int i = 0; i < na && nx >= 0; i++)
      for (size_t b = lo; b <= hi && nx < FIT_MAX_SAMPLES; b *= 2) {
        comm->algo_forced = algos[i];
        hring_model_shape_t s;
        hring__model_shape_of(comm, &s);
        s.chunk = chunk_of(comm, algos[i], b);
        t[r][nx] = time_op(comm, in, out, b, hring__model_predict(p, &s, algos[i], b));
        if (t[r][nx] < 0) {
          nx = -1;
          break;
        }
        x[nx++] = (hring_model_sample_t){algos[i], b, s, 0};
      }
  }
  for (int k = 0; k < nx; k++) {
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++) v[r] = t[r][k];
    x[k].seconds = hring__median(v, reps);
  }
  comm->algo_forced = saved;
  free(in), free(out);
  return nx;
}

/* Whether a sample's size is one the fit sees: lo * 4^i. */
static int fit_size(size_t bytes, size_t lo) {
  size_t q = bytes / lo;
  return (q & 0x5555555555555555ull) == q;
}

/* Rank 0 prints predicted against measured for every sample; `set` says
 * what each was to the fit ("fit", "check"), or NULL for "held-out" (-m). */
static void print_samples(const hring_model_params_t *p, const hring_model_sample_t *x, int nx,
                          size_t lo, int fitted) {
  printf("%-13s %12s %8s %12s %12s %8s\n", "algorithm", "bytes", "set", "predicted", "measured",
         "ratio");
  for (int i = 0; i < nx; i++) {
    double pr = hring__model_predict(p, &x[i].shape, x[i].algo, x[i].bytes);
    printf("%-13s %12zu %8s %12.1f %12.1f %8.2f\n", hring__algo_names[x[i].algo], x[i].bytes,
           !fitted ? "held-out" : fit_size(x[i].bytes, lo) ? "fit" : "check", pr * 1e6,
           x[i].seconds * 1e6, x[i].seconds / pr);
  }
}

/* -f: times the algorithms at lo, 2 lo, 4 lo ... hi; fits p to the sizes
 * lo * 4^i and prints predicted against measured for all, the others
 * marked as the check. */
static int fit(hring_comm_t comm, hring_model_params_t *p, const char *list, size_t lo,
               size_t hi, int reps) {
  int algos[FIT_MAX_ALGOS], na = fit_algos(comm, list, algos);
  if (na < 0) return 1;
  static hring_model_sample_t x[FIT_MAX_SAMPLES];
  int nx = measure(comm, p, algos, na, lo, hi, reps, x);
  if (nx < 0) return 1;
  /* Fit on every other size (lo * 4^i); the rest checks the fit. */
  hring_model_sample_t train[FIT_MAX_SAMPLES];
  int nt = 0;
  for (int i = 0; i < nx; i++)
    if (fit_size(x[i].bytes, lo)) train[nt++] = x[i];
  hring_model_shape_t s;
  hring__model_shape_of(comm, &s);
  unsigned fixed = 0;
  if (s.kmax <= 1) fixed |= 7u;      /* no two ranks share a node */
  if (s.nnodes <= 1) fixed |= 7u << 3; /* one node */
  double err = hring__model_fit(p, train, nt, fixed);
  if (comm->rank == 0) {
    printf("fit: %d ranks, %d node(s), %d samples (median of %d; mean |log error| %.3f); time "
           "per op in us\n", s.nranks, s.nnodes, nt, reps, err);
    print_samples(p, x, nx, lo, 1);
  }
  return 0;
}

/* -m FILE: the parameters of FILE against this run's times, none of them
 * fitted (a file fitted in an earlier run is checked on new samples). */
static int held_out(hring_comm_t comm, const hring_model_params_t *p, const char *list,
                    const char *file, size_t lo, size_t hi, int reps) {
  int algos[FIT_MAX_ALGOS], na = fit_algos(comm, list, algos);
  if (na < 0) return 1;
  static hring_model_sample_t x[FIT_MAX_SAMPLES];
  int nx = measure(comm, p, algos, na, lo, hi, reps, x);
  if (nx < 0) return 1;
  if (comm->rank != 0) return 0;
  double err = 0;
  int within = 0;
  for (int i = 0; i < nx; i++) {
    double r = x[i].seconds / hring__model_predict(p, &x[i].shape, x[i].algo, x[i].bytes);
    err += fabs(log(r));
    within += r >= 0.8 && r <= 1.25;
  }
  printf("held-out: %s on %d ranks; %d samples (median of %d), %d within 25%% (0.8-1.25), mean "
         "|log error| %.3f; time per op in us\n", file, comm->nranks, nx, reps, within,
         nx ? err / nx : 0.0);
  print_samples(p, x, nx, lo, 0);
  return 0;
}

/* A byte count with an optional K, M or G suffix (config.c's checked
 * parser, as for HRING_* sizes); 0 for anything else (a trailing "Q" is
 * refused, not cut off). */
static size_t parse_bytes(const char *v) {
  int64_t n;
  return hring__cfg_parse_int(v, &n) == 0 && n > 0 ? (size_t)n : 0;
}

/* 0 where v is not a count from 1 to MAX_REPS (refused below). */
static int parse_reps(const char *v) {
  int64_t n;
  return hring__cfg_parse_int(v, &n) == 0 && n >= 1 && n <= MAX_REPS ? (int)n : 0;
}

int main(int argc, char **argv) {
  const char *out = NULL;
  const char *algos = NULL, *model = NULL;
  int quiet = 0, do_check = 0, do_fit = 0, reps = 1;
  size_t lo = 64 << 10, hi = 16 << 20;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
    else if (strcmp(argv[i], "-q") == 0) quiet = 1;
    else if (strcmp(argv[i], "-c") == 0) do_check = 1;
    else if (strcmp(argv[i], "-f") == 0) do_fit = 1;
    else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) model = argv[++i];
    else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) reps = parse_reps(argv[++i]);
    else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc) algos = argv[++i];
    else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) lo = parse_bytes(argv[++i]);
    else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) hi = parse_bytes(argv[++i]);
    else {
      fprintf(stderr,
              "usage: hring-run -n N %s [-o FILE] [-q] [-c | -f [-a ALGO,...] | -m FILE "
              "[-a ALGO,...]] [-r 1-%d] [-b MIN] [-e MAX]\n",
              argv[0], MAX_REPS);
      return 2;
    }
  }
  if (model && (do_fit || do_check || out)) {
    fprintf(stderr, "hring-tune: -m checks a file: it takes no -f, -c or -o\n");
    return 2;
  }
  if (reps < 1 || reps > MAX_REPS) {
    fprintf(stderr, "hring-tune: -r takes 1 to %d repetitions\n", MAX_REPS);
    return 2;
  }
  if (lo < sizeof(float) || hi < lo) {
    fprintf(stderr, "hring-tune: need sizes 4 <= -b <= -e (a number, K, M or G)\n");
    return 2;
  }
  hring_comm_t comm;
  hring_result_t r = hring_comm_init_env(&comm);
  if (r != HRING_SUCCESS) {
    fprintf(stderr, "hring-tune: %s: %s\n", hring_strerror(r), hring_last_error());
    return 1;
  }
  hring_model_params_t p;
  hring__model_defaults(&p);
  if (model) { /* -m: no calibration, no file written */
    /* Every rank loads the file; all go on only if all could. */
    int32_t ok = hring__model_load(model, &p) == HRING_SUCCESS, all = ok;
    if (!ok) fprintf(stderr, "hring-tune: %s\n", hring_last_error());
    r = hring_allreduce(&all, &all, 1, HRING_INT32, HRING_MIN, comm, NULL);
    int rc = r != HRING_SUCCESS || !all || held_out(comm, &p, algos, model, lo, hi, reps) != 0;
    hring_comm_destroy(comm);
    return rc;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  r = hring__model_calibrate(comm, &p);
  /* The fit starts from the ping-pong figures; every rank fits the same
   * samples (max over ranks) the same way, so all hold the same result. */
  int rc = 0, calibrated = r == HRING_SUCCESS;
  if (calibrated && do_fit && fit(comm, &p, algos, lo, hi, reps) != 0) rc = 1, calibrated = 0;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (rc) {
    /* fit() said why */
  } else if (r != HRING_SUCCESS) {
    fprintf(stderr, "hring-tune: calibration failed: %s: %s\n", hring_strerror(r),
            hring_last_error());
    rc = 1;
  } else if (comm->rank == 0) {
    hring_model_shape_t s;
    hring__model_shape_of(comm, &s);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    int local0 = 0; /* ranks on rank 0's node: calibration measures there */
    for (int q = 0; q < comm->nranks; q++) local0 += comm->node_of[q] == comm->node_of[0];
    char note[200];
    snprintf(note, sizeof note, "%s on %d ranks, %d node(s)%s%s",
             do_fit ? "fitted to collectives" : "measured", s.nranks, s.nnodes,
             local0 > 1 ? "" : "; intra: built-in (rank 0 alone on its node)",
             s.nnodes > 1 ? "" : "; inter: built-in (one node)");
    if (!quiet) {
      print_params(&p, &s);
      printf("  %s took %.3f s; %s\n", do_fit ? "calibration and fit" : "calibration", secs, note);
    }
    if (out) {
      r = hring__model_save(out, &p, note);
      if (r != HRING_SUCCESS) {
        fprintf(stderr, "hring-tune: %s\n", hring_last_error());
        rc = 1;
      } else if (!quiet) {
        printf("  written to %s (use: HRING_MODEL_FILE=%s)\n", out, out);
      }
    }
  }
  /* Every rank that calibrated takes part in the check, whatever rank 0's
   * file write did, so that none waits for the others in vain. */
  if (calibrated && do_check && check(comm, &p, lo, hi) != 0) rc = 1;
  hring_comm_destroy(comm);
  return rc;
}
