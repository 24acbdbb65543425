/*
 * hring_choice.c - hring-choice: the automatic choice of allreduce
 * algorithm against each forced one, side by side in one process.
 *
 * Separate runs per algorithm (perf/algo_sweep.sh) see a machine that
 * drifts between them: on the 2-core machine of docs/performance.md the
 * same code's median moved 1.2x from one run to the next, as much as the
 * differences to be measured.  Here every rank makes one communicator per
 * algorithm (hring_comm_split with HRING_ALGO set for the child; unset for
 * auto) and, for every size, times the algorithms in turn, round after
 * round, in a new order every round, so that all of them see the same
 * drift.  Each algorithm's result is checked at every size
 * (integer sums, exact).
 *
 * usage: hring-choice [-b MIN] [-e MAX] [-f FACTOR] [-a auto,ring,tree,...]
 *                     [-r ROUNDS] [-t MS]
 *   under hring-run, mpirun or srun (hring_comm_init_env).  -t: the time
 *   one algorithm's turn takes (default 20 ms; at least 2 ops).  A column
 *   ALGO@VAR=VALUE (ring@HRING_NT_MIN=1G) makes its communicator with that
 *   setting as well, so two settings are compared side by side in the same
 *   way as two algorithms.
 * Prints per size the median and minimum time per op (the slowest rank's)
 * of every algorithm, auto's median over the best forced median, the best
 * forced algorithm (with what it ran where it could not run that size:
 * "allpairs=direct"), the algorithm auto ran (hring_allreduce_algorithm),
 * and that algorithm's forced median (the best of the columns that ran
 * it) over the best forced median.  The last judges the choice itself,
 * free of the noise between two communicators that run the same code
 * (auto and the forced copy of its pick differed by up to 1.2x at
 * sub-microsecond sizes, where the pick was the best forced algorithm).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common.h"
#include "hring.h"

#define MAX_ALGOS 12
#define MAX_ROUNDS 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(int rank, const char *what, hring_result_t r) {
  fprintf(stderr, "hring-choice: rank %d: %s: %s: %s\n", rank, what, hring_strerror(r),
          hring_last_error());
  exit(1);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The slowest rank's value (every rank gets it). */
static double max_over(hring_comm_t c, double v, int rank) {
  hring_result_t r = hring_allreduce(&v, &v, 1, HRING_FLOAT64, HRING_MAX, c, NULL);
  if (r != HRING_SUCCESS) die(rank, "max over ranks", r);
  return v;
}

/* Runs allreduces of count on c until the algorithm it names has stayed
 * the same for WARM_SAME calls in a row after a change, or has not changed
 * for 5 turns (no tuner at this size): with HRING_TUNE=online the first
 * calls of a size try candidates in blocks of up to 65 calls, and those
 * trials belong to the warm-up, not to the timed turns.  Every rank sees
 * the same names in the same order (the tuner counts calls alike on every
 * rank) and the time is agreed, so all stop together. */
#define WARM_SAME 70
static void warm(hring_comm_t world, hring_comm_t c, const int32_t *in, int32_t *out,
                 size_t count, int rank, const char *name, double turn_ms) {
  const char *prev = NULL, *cur;
  hring_result_t r;
  int changed = 0, same = 0;
  for (double t0 = now();
       changed ? same < WARM_SAME : max_over(world, now() - t0, rank) < 5 * turn_ms * 1e-3;) {
    if ((r = hring_allreduce(in, out, count, HRING_INT32, HRING_SUM, c, NULL))) die(rank, name, r);
    if ((r = hring_allreduce_algorithm(c, count, HRING_INT32, &cur)))
      die(rank, "hring_allreduce_algorithm", r);
    if (prev && strcmp(prev, cur)) changed = 1, same = 0;
    else same++;
    prev = cur;
  }
}

int main(int argc, char **argv) {
  size_t lo = 8, hi = 64u << 20;
  double factor = 8, turn_ms = 20;
  int rounds = 7;
  char list[256] = "auto,ring,direct,rdouble,rabenseifner,tree";
  int bad = argc % 2 == 0; /* an option without its value */
  for (int i = 1; i + 1 < argc && !bad; i += 2) {
    const char *o = argv[i], *v = argv[i + 1];
    char *end = NULL;
    if (!strcmp(o, "-b")) bad = hring_perf_parse_size(v, &lo);
    else if (!strcmp(o, "-e")) bad = hring_perf_parse_size(v, &hi);
    else if (!strcmp(o, "-r")) bad = hring_perf_parse_int(v, 1, MAX_ROUNDS, &rounds);
    else if (!strcmp(o, "-f")) bad = (factor = strtod(v, &end), *end != '\0');
    else if (!strcmp(o, "-t")) bad = (turn_ms = strtod(v, &end), *end != '\0');
    else if (!strcmp(o, "-a")) snprintf(list, sizeof list, "%s", v);
    else bad = 1;
    if (bad) fprintf(stderr, "hring-choice: bad option %s %s\n", o, v);
  }
  if (bad || lo < 4 || hi < lo || !(factor > 1) || !(turn_ms > 0)) {
    fprintf(stderr, "usage: hring-choice [-b MIN>=4] [-e MAX] [-f FACTOR>1] [-a auto,ring,...] "
                    "[-r 1..%d] [-t MS>0]\n", MAX_ROUNDS);
    return 2;
  }

  hring_comm_t world;
  hring_result_t r = hring_comm_init_env(&world);
  if (r != HRING_SUCCESS) die(-1, "init", r);
  int rank, n;
  hring_comm_rank(world, &rank);
  hring_comm_size(world, &n);

  /* One communicator per algorithm, its choice fixed at creation. */
  const char *names[MAX_ALGOS];
  hring_comm_t comms[MAX_ALGOS];
  int na = 0, auto_at = -1;
  static char algos[MAX_ALGOS][64];
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && na < MAX_ALGOS;
       tok = strtok_r(NULL, ",", &save)) {
    /* ALGO@VAR=VALUE: the setting too, for this communicator only. */
    char *at = strchr(tok, '@'), *eq = at ? strchr(at, '=') : NULL, var[64] = "";
    snprintf(algos[na], sizeof algos[na], "%.*s", at ? (int)(at - tok) : 63, tok);
    if (at && (!eq || eq == at + 1 || eq - at > (ptrdiff_t)sizeof var)) {
      if (rank == 0) fprintf(stderr, "hring-choice: bad column %s (ALGO@VAR=VALUE)\n", tok);
      exit(2);
    }
    if (at) {
      snprintf(var, sizeof var, "%.*s", (int)(eq - at - 1), at + 1);
      setenv(var, eq + 1, 1);
    }
    if (!strcmp(algos[na], "auto")) {
      unsetenv("HRING_ALGO");
      if (!at) auto_at = na;
    } else {
      setenv("HRING_ALGO", algos[na], 1);
    }
    r = hring_comm_split(world, 0, rank, &comms[na]);
    if (r != HRING_SUCCESS) die(rank, tok, r);
    if (*var) unsetenv(var);
    names[na++] = tok;
  }
  unsetenv("HRING_ALGO");

  const size_t maxcount = hi / 4;
  int32_t *in = malloc(maxcount * sizeof *in), *out = malloc(maxcount * sizeof *out);
  if (!in || !out) die(rank, "buffers", HRING_ERR_NO_MEMORY);
  for (size_t i = 0; i < maxcount; i++) in[i] = (int32_t)((rank + 1) * (int)(i % 7 + 1));
  const int64_t ranksum = (int64_t)n * (n + 1) / 2;

  if (rank == 0) {
    printf("# hring-choice: %d ranks, %d rounds, ~%.0f ms per turn; time per op in us "
           "(median / min over rounds)\n# %10s", n, rounds, turn_ms, "size (B)");
    for (int a = 0; a < na; a++) printf(" %21s", names[a]);
    printf("  auto/best  best          auto ran      ran/best\n");
  }
  /* Warm up every communicator before anything is timed: its slots are
   * touched by the largest size, then every rank runs it at the first size
   * for a while (the first size's rounds came out up to 2x slow without
   * this, whichever algorithm ran them). */
  for (int a = 0; a < na; a++) {
    for (int k = 0; k < 3; k++)
      if ((r = hring_allreduce(in, out, maxcount, HRING_INT32, HRING_SUM, comms[a], NULL)))
        die(rank, names[a], r);
    for (double t0 = now(); max_over(world, now() - t0, rank) < 5 * turn_ms * 1e-3;)
      if ((r = hring_allreduce(in, out, lo / 4, HRING_INT32, HRING_SUM, comms[a], NULL)))
        die(rank, names[a], r);
  }
  double t[MAX_ALGOS][MAX_ROUNDS];
  long wrong = 0;
  for (size_t bytes = lo; bytes <= hi; bytes = (size_t)ceil((double)bytes * factor)) {
    const size_t count = bytes / 4;
    int iters[MAX_ALGOS];
    for (int a = 0; a < na; a++) { /* warm up, then ops per turn */
      if (a == auto_at) warm(world, comms[a], in, out, count, rank, names[a], turn_ms);
      double t0 = now();
      for (int k = 0; k < 2; k++)
        if ((r = hring_allreduce(in, out, count, HRING_INT32, HRING_SUM, comms[a], NULL)))
          die(rank, names[a], r);
      double per = max_over(world, (now() - t0) / 2, rank);
      iters[a] = (int)(turn_ms * 1e-3 / (per > 1e-9 ? per : 1e-9));
      if (iters[a] < 2) iters[a] = 2;
      for (size_t i = 0; i < count; i++) wrong += out[i] != (int32_t)(ranksum * (int64_t)(i % 7 + 1));
    }
    for (int round = 0; round < rounds; round++) {
      /* A new order every round, the same on every rank: an algorithm
       * that always ran after the same one (a rotation keeps neighbours)
       * came out up to 1.5x slower than itself elsewhere in the list (8
       * ranks on 2 cores), as if the one before left the ranks out of
       * step; one untimed op before each turn also helps. */
      int order[MAX_ALGOS];
      unsigned long long x = 0x9e3779b97f4a7c15ull * (unsigned long long)(round + 1) + bytes;
      for (int j = 0; j < na; j++) order[j] = j;
      for (int j = na - 1; j > 0; j--) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((x >> 33) % (unsigned long long)(j + 1)), tmp = order[j];
        order[j] = order[k], order[k] = tmp;
      }
      for (int j = 0; j < na; j++) {
        int a = order[j];
        if ((r = hring_allreduce(in, out, count, HRING_INT32, HRING_SUM, comms[a], NULL)))
          die(rank, names[a], r);
        max_over(world, 0, rank); /* start together */
        double t0 = now();
        for (int k = 0; k < iters[a]; k++)
          if ((r = hring_allreduce(in, out, count, HRING_INT32, HRING_SUM, comms[a], NULL)))
            die(rank, names[a], r);
        t[a][round] = max_over(world, (now() - t0) / iters[a], rank);
      }
    }
    /* What each communicator runs at this size: a forced algorithm that
     * cannot run here (allpairs above 4 KiB) runs auto's pick. */
    const char *runs[MAX_ALGOS];
    for (int a = 0; a < na; a++)
      if ((r = hring_allreduce_algorithm(comms[a], count, HRING_INT32, &runs[a])) != HRING_SUCCESS)
        die(rank, "hring_allreduce_algorithm", r);
    const char *ran = auto_at >= 0 ? runs[auto_at] : "-";
    if (rank != 0) continue;
    double med[MAX_ALGOS], best = INFINITY;
    int besta = -1;
    printf("  %10zu", bytes);
    for (int a = 0; a < na; a++) {
      double mn = t[a][0];
      for (int k = 1; k < rounds; k++) mn = fmin(mn, t[a][k]);
      qsort(t[a], (size_t)rounds, sizeof t[a][0], cmp_double);
      med[a] = rounds % 2 ? t[a][rounds / 2] : 0.5 * (t[a][rounds / 2 - 1] + t[a][rounds / 2]);
      printf(" %10.1f / %8.1f", 1e6 * med[a], 1e6 * mn);
      if (a != auto_at && med[a] < best) best = med[a], besta = a;
    }
    /* The forced copies of auto's pick: every column that ran that code
     * (a forced allpairs above 4 KiB may be one), the fastest of them. */
    int ran_at = -1;
    for (int a = 0; a < na; a++)
      if (a != auto_at && !strcmp(runs[a], ran) && (ran_at < 0 || med[a] < med[ran_at]))
        ran_at = a;
    char bname[64] = "-"; /* "allpairs=direct": the forced allpairs ran direct */
    if (besta >= 0 && strcmp(algos[besta], runs[besta]))
      snprintf(bname, sizeof bname, "%s=%s", names[besta], runs[besta]);
    else if (besta >= 0)
      snprintf(bname, sizeof bname, "%s", names[besta]);
    if (auto_at >= 0 && besta >= 0) printf("  %9.2f  %-12s", med[auto_at] / best, bname);
    else printf("  %9s  %-12s", "-", bname);
    if (ran_at >= 0) printf("  %-12s  %8.2f\n", ran, med[ran_at] / best);
    else printf("  %-12s  %8s\n", ran, "-");
    fflush(stdout);
  }
  long all_wrong = 0;
  double w = (double)wrong;
  w = max_over(world, w, rank);
  all_wrong = (long)w;
  if (rank == 0) printf("# wrong results (max over ranks): %ld\n", all_wrong);
  for (int a = 0; a < na; a++) hring_comm_destroy(comms[a]);
  hring_comm_destroy(world);
  free(in);
  free(out);
  return all_wrong ? 1 : 0;
}
