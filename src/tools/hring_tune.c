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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "core/comm.h"
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

/* Predicted against measured, size by size; every rank runs the same
 * number of calls (set from the prediction, which every rank shares). */
static int check(hring_comm_t comm, const hring_model_params_t *p, size_t lo, size_t hi) {
  int algo = comm->algo_forced;
  if (algo == HRING_ALGO_AUTO) {
    if (comm->rank == 0) fprintf(stderr, "hring-tune -c: set HRING_ALGO to the algorithm to check\n");
    return 1;
  }
  float *in = malloc(hi), *out = malloc(hi);
  if (!in || !out) {
    free(in), free(out);
    fprintf(stderr, "hring-tune -c: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < hi / sizeof(float); i++) in[i] = (float)(i & 255);
  hring_model_shape_t s;
  hring__model_shape_of(comm, &s);
  if (comm->rank == 0)
    printf("check: %s, %d ranks, %d node(s); time per op in us (slowest rank)\n%12s %12s %12s %8s\n",
           hring__algo_names[algo], s.nranks, s.nnodes, "bytes", "predicted", "measured", "ratio");
  int rc = 0;
  for (size_t b = lo; b <= hi && rc == 0; b *= 2) {
    s.chunk = chunk_of(comm, algo, b);
    double pred = hring__model_predict(p, &s, algo, b);
    int iters = pred > 0 ? (int)(0.05 / pred) : 1000; /* about 50 ms per size */
    iters = iters < 3 ? 3 : iters > 1000 ? 1000 : iters;
    size_t count = b / sizeof(float);
    double t = 0;
    for (int i = -2; i < iters && rc == 0; i++) { /* two warm-up calls */
      if (i == 0) t = now_s();
      if (hring_allreduce(in, out, count, HRING_FLOAT32, HRING_SUM, comm, NULL) != HRING_SUCCESS) {
        fprintf(stderr, "hring-tune -c: %s\n", hring_last_error());
        rc = 1;
      }
    }
    if (rc) break;
    t = (now_s() - t) / iters;
    if (hring_allreduce(&t, &t, 1, HRING_FLOAT64, HRING_MAX, comm, NULL) != HRING_SUCCESS) rc = 1;
    if (comm->rank == 0)
      printf("%12zu %12.1f %12.1f %8.2f\n", b, pred * 1e6, t * 1e6, t / pred);
  }
  free(in), free(out);
  return rc;
}

static size_t parse_bytes(const char *v) {
  char *end;
  size_t n = strtoull(v, &end, 10);
  if (*end == 'K' || *end == 'k') n <<= 10;
  else if (*end == 'M' || *end == 'm') n <<= 20;
  return n;
}

int main(int argc, char **argv) {
  const char *out = NULL;
  int quiet = 0, do_check = 0;
  size_t lo = 64 << 10, hi = 16 << 20;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
    else if (strcmp(argv[i], "-q") == 0) quiet = 1;
    else if (strcmp(argv[i], "-c") == 0) do_check = 1;
    else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) lo = parse_bytes(argv[++i]);
    else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) hi = parse_bytes(argv[++i]);
    else {
      fprintf(stderr, "usage: hring-run -n N %s [-o FILE] [-q] [-c [-b MIN] [-e MAX]]\n", argv[0]);
      return 2;
    }
  }
  if (lo < sizeof(float) || hi < lo) {
    fprintf(stderr, "hring-tune: need 4 <= -b <= -e\n");
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
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  r = hring__model_calibrate(comm, &p);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int rc = 0, calibrated = r == HRING_SUCCESS;
  if (r != HRING_SUCCESS) {
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
    snprintf(note, sizeof note, "measured on %d ranks, %d node(s)%s%s", s.nranks, s.nnodes,
             local0 > 1 ? "" : "; intra: built-in (rank 0 alone on its node)",
             s.nnodes > 1 ? "" : "; inter: built-in (one node)");
    if (!quiet) {
      print_params(&p, &s);
      printf("  calibration took %.3f s; %s\n", secs, note);
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
