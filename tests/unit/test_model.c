/* test_model.c - the cost model: predictions, the choice, the parameter
 * file, and calibration on live ranks. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "harness.h"
#include "mp/mp.h"

/* Shapes that exercise every branch: one node, one rank per node, equal
 * nodes, unequal nodes, a non-power-of-two count, cluster scale. */
static const struct {
  int P, N;
  size_t chunk;
} shapes[] = {{2, 1, 65536}, {4, 1, 65536}, {5, 1, 0},       {8, 8, 262144},
              {16, 2, 65536}, {12, 5, 65536}, {1024, 128, 524288}, {2048, 256, 0}};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

static hring_model_params_t params(void) {
  hring_model_params_t p;
  hring__model_defaults(&p);
  return p;
}

HTEST(model_monotonic_in_bytes, 20) {
  hring_model_params_t p = params();
  for (int i = 0; i < NSHAPES; i++) {
    hring_model_shape_t s = hring__model_shape(shapes[i].P, shapes[i].N, shapes[i].chunk);
    for (int a = HRING_ALGO_RING; a < HRING_ALGO_COUNT; a++) {
      double prev = 0;
      size_t prev_b = 0;
      /* Every size near each power of two and chunk boundary, and between. */
      for (size_t b = 1; b <= ((size_t)1 << 30); b = b * 5 / 4 + 1) {
        size_t near[3] = {b - 1, b, b + 1};
        for (int j = 0; j < 3; j++) {
          if (near[j] < prev_b) continue;
          double t = hring__model_predict(&p, &s, a, near[j]);
          HCHECK(t >= 0 && isfinite(t), "P %d N %d %s %zu B: %g", s.nranks, s.nnodes,
                 hring__algo_names[a], near[j], t);
          HCHECK(t >= prev * (1 - 1e-12), "P %d N %d %s: %g s at %zu B < %g s at %zu B", s.nranks,
                 s.nnodes, hring__algo_names[a], t, near[j], prev, prev_b);
          prev = t, prev_b = near[j];
        }
      }
    }
  }
}

HTEST(model_ring_large_message_limit, 10) {
  hring_model_params_t p = params(), cached = p;
  p.mem.beta = 0; /* the formulas alone; the cache term is checked below */
  int Ps[] = {2, 4, 7, 64, 1024};
  for (int i = 0; i < 5; i++) {
    int P = Ps[i];
    /* 1 TiB: far enough out that 2(P-1) latencies vanish even at P = 1024. */
    double n = (double)((size_t)1 << 40);
    /* No chunking, no reduction cost: the bandwidth term alone. */
    hring_model_params_t q = p;
    q.intra.gamma = q.inter.gamma = 0;
    hring_model_shape_t s = hring__model_shape(P, 1, 0), s0 = s;
    double bw = 2.0 * (P - 1) / P * n * q.intra.beta;
    double r = hring__model_predict(&q, &s, HRING_ALGO_RING, (size_t)n) / bw;
    HCHECK(r >= 1 && r < 1.001, "P %d: ring / 2(P-1)/P n beta = %.5f", P, r);
    /* Chunks of c bytes add alpha per chunk: the limit is beta + alpha / c
     * per byte, and gamma adds (P-1)/P n gamma. */
    s.chunk = 65536;
    double lim = 2.0 * (P - 1) / P * n * (p.intra.beta + p.intra.alpha / 65536) +
                 (P - 1.0) / P * n * p.intra.gamma;
    r = hring__model_predict(&p, &s, HRING_ALGO_RING, (size_t)n) / lim;
    HCHECK(r >= 1 - 1e-9 && r < 1.01, "P %d chunked: ring / limit = %.5f", P, r);
    /* Across nodes the ring runs at its slowest link. */
    if (P % 2 == 0 && P >= 4) {
      hring_model_shape_t m = hring__model_shape(P, 2, 0);
      double bwe = 2.0 * (P - 1) / P * n * q.inter.beta;
      r = hring__model_predict(&q, &m, HRING_ALGO_RING, (size_t)n) / bwe;
      HCHECK(q.inter.beta < q.intra.beta || (r >= 1 && r < 1.001),
             "P %d on 2 nodes: ring / inter limit = %.5f", P, r);
    }
    /* Rule 6: vectors far beyond the cache cost mem.beta more per byte
     * copied and per byte reduced; within it, nothing more. */
    hring_model_params_t c = cached;
    c.intra.gamma = c.inter.gamma = 0;
    double bwm = 2.0 * (P - 1) / P * n * (c.intra.beta + c.mem.beta) +
                 (P - 1.0) / P * n * c.mem.beta;
    r = hring__model_predict(&c, &s0, HRING_ALGO_RING, (size_t)n) / bwm;
    HCHECK(r > 0.999 && r < 1.001, "P %d beyond the cache: ring / limit = %.5f", P, r);
    size_t small = (size_t)(c.mem.cache / (4.0 * P));
    r = hring__model_predict(&c, &s0, HRING_ALGO_RING, small) /
        hring__model_predict(&q, &s0, HRING_ALGO_RING, small);
    HCHECK(r == 1, "P %d within the cache: %.5f of the prediction without the term", P, r);
  }
}

HTEST(model_choose_is_fastest_predicted, 20) {
  hring_model_params_t p = params();
  unsigned masks[] = {~0u, 1u << HRING_ALGO_RING, (1u << HRING_ALGO_HIER) | (1u << HRING_ALGO_TREE),
                      (1u << HRING_ALGO_ALLPAIRS) | (1u << HRING_ALGO_DIRECT), 0};
  for (int i = 0; i < NSHAPES; i++) {
    hring_model_shape_t s = hring__model_shape(shapes[i].P, shapes[i].N, shapes[i].chunk);
    for (size_t b = 4; b <= ((size_t)1 << 30); b *= 8) {
      for (int mi = 0; mi < 5; mi++) {
        double t = -1;
        int got = hring__model_choose(&p, &s, b, masks[mi], &t);
        double best = INFINITY;
        int any = 0;
        for (int a = HRING_ALGO_RING; a < HRING_ALGO_COUNT; a++) {
          if (!(masks[mi] & (1u << a)) || !hring__model_applicable(&s, a, b)) continue;
          any = 1;
          double ta = hring__model_predict(&p, &s, a, b);
          if (ta < best) best = ta;
        }
        if (!any) {
          HCHECK(got == HRING_ALGO_RING, "nothing allowed must give the ring, got %d", got);
          continue;
        }
        HCHECK((masks[mi] & (1u << got)) && hring__model_applicable(&s, got, b),
               "P %d %zu B mask %x: chose %s, not allowed or not applicable", s.nranks, b,
               masks[mi], hring__algo_names[got]);
        HCHECK(t == best && hring__model_predict(&p, &s, got, b) == best,
               "P %d %zu B mask %x: chose %s (%g s), fastest predicted %g s", s.nranks, b,
               masks[mi], hring__algo_names[got], t, best);
      }
    }
  }
  /* The structural limits. */
  hring_model_shape_t s2 = hring__model_shape(2, 1, 65536), s4 = hring__model_shape(4, 1, 65536);
  HCHECK(hring__model_applicable(&s2, HRING_ALGO_EXCHANGE, 1 << 20), "exchange on 2 ranks");
  HCHECK(!hring__model_applicable(&s4, HRING_ALGO_EXCHANGE, 1 << 20), "exchange on 4 ranks");
  HCHECK(!hring__model_applicable(&s4, HRING_ALGO_ALLPAIRS, 1 << 20), "allpairs beyond a slot");
  HCHECK(hring__model_predict(&p, &s4, HRING_ALGO_AUTO, 8) < 0, "AUTO is not an algorithm");
}

/* The small-message regime on a cluster: the hierarchical ring must beat
 * the flat ring (2(N-1) inter-node steps instead of 2(P-1)), and the flat
 * ring must win at 1 GiB when intra-node links are no faster than the
 * network (the paper's PCIe nodes). */
HTEST(model_hier_vs_flat_regimes, 10) {
  hring_model_params_t p = {0};
  p.intra = (hring_model_level_t){2e-6, 1.0 / 10e9, 1.0 / 80e9};
  p.inter = (hring_model_level_t){6e-6, 1.0 / 11e9, 1.0 / 80e9};
  hring_model_shape_t s = hring__model_shape(1024, 128, 524288);
  HCHECK(hring__model_predict(&p, &s, HRING_ALGO_HIER, 4096) * 4 <
             hring__model_predict(&p, &s, HRING_ALGO_RING, 4096),
         "hier should be > 4x faster than the flat ring at 4 KiB on 128 nodes");
  HCHECK(hring__model_predict(&p, &s, HRING_ALGO_RING, (size_t)1 << 30) <
             hring__model_predict(&p, &s, HRING_ALGO_HIER, (size_t)1 << 30),
         "the flat ring should win at 1 GiB");
}

static char *tmpfile_with(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/hring-model-test-%d.txt", (int)getpid());
  FILE *f = fopen(path, "w");
  if (!f) return NULL;
  fputs(text, f);
  fclose(f);
  return path;
}

HTEST(model_file_round_trip, 10) {
  hring_model_params_t p = {{1.25e-6, 1.0 / 7e9, 1.0 / 12.5e9}, {3.3e-5, 1.0 / 1.1e9, 0.1e-9},
                            {3.0 * (1 << 20), 1.5e-10}};
  char path[64];
  snprintf(path, sizeof path, "/tmp/hring-model-rt-%d.txt", (int)getpid());
  HREQUIRE(hring__model_save(path, &p, "test") == HRING_SUCCESS, "save: %s", hring_last_error());
  hring_model_params_t q;
  memset(&q, 0, sizeof q);
  HREQUIRE(hring__model_load(path, &q) == HRING_SUCCESS, "load: %s", hring_last_error());
  unlink(path);
  HCHECK(memcmp(&p, &q, sizeof p) == 0, "round trip changed the values (%g %g %g / %g %g %g)",
         q.intra.alpha, q.intra.beta, q.intra.gamma, q.inter.alpha, q.inter.beta, q.inter.gamma);
}

HTEST(model_file_bad_rejected, 10) {
  const char *good_tail = "intra.alpha = 1e-6\nintra.beta = 1e-10\nintra.gamma = 1e-10\n"
                          "inter.alpha = 1e-5\ninter.beta = 1e-9\ninter.gamma = 1e-10\n";
  char text[1024];
  struct {
    const char *head, *tail, *why;
  } bad[] = {
      {"", good_tail, "version missing"},
      {"version = 2\n", good_tail, "version 2 without mem keys"},
      {"version = 3\nmem.cache = 1\nmem.beta = 1\n", good_tail, "version 3"},
      {"version = 1\nmem.beta = 1e-10\n", good_tail, "a mem key in version 1"},
      {"version = 1\nintra.alpah = 1\n", good_tail, "unknown key"},
      {"version = 1\nintra.alpha = 1e-6\n", good_tail, "key twice"},
      {"version = 1\n", "intra.alpha = 1e-6\n", "keys missing"},
      {"version = 1\ninter.gamma = -1\n", good_tail, "negative"},
      {"version = 1\n", "intra.alpha = 1e-6x\n", "trailing junk"},
      {"version = 1\n", "intra.alpha = nan\n", "nan"},
      {"version = 1\nthis line has no equals sign\n", good_tail, "no '='"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(text, sizeof text, "%s%s", bad[i].head, bad[i].tail);
    char *path = tmpfile_with(text);
    HREQUIRE(path, "temporary file");
    hring_model_params_t q = params(), before = q;
    hring_result_t r = hring__model_load(path, &q);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "%s: accepted (%d)", bad[i].why, (int)r);
    HCHECK(strstr(hring_last_error(), path) != NULL, "%s: message does not name the file: %s",
           bad[i].why, hring_last_error());
    HCHECK(memcmp(&q, &before, sizeof q) == 0, "%s: a refused file changed the parameters",
           bad[i].why);
    unlink(path);
  }
  hring_model_params_t q = params();
  HCHECK(hring__model_load("/nonexistent/hring-model.txt", &q) == HRING_ERR_INVALID_ARGUMENT,
         "missing file accepted");
  /* And a good one, with comments and blank lines, is accepted. */
  snprintf(text, sizeof text, "# comment\n\nversion = 1\n%s", good_tail);
  char *path = tmpfile_with(text);
  HCHECK(path && hring__model_load(path, &q) == HRING_SUCCESS && q.inter.beta == 1e-9,
         "good file refused: %s", hring_last_error());
  HCHECK(q.mem.beta == 0, "a version 1 file should load without the cache term");
  if (path) unlink(path);
  snprintf(text, sizeof text, "version = 2\n%smem.cache = 4096\nmem.beta = 2e-10\n", good_tail);
  path = tmpfile_with(text);
  HCHECK(path && hring__model_load(path, &q) == HRING_SUCCESS && q.mem.cache == 4096 &&
             q.mem.beta == 2e-10,
         "good version 2 file refused: %s", hring_last_error());
  if (path) unlink(path);
}

/* Calibration on 4 live ranks as 2 emulated nodes (tcp between them): every
 * rank gets the same, plausible figures for both levels, quickly, and the
 * communicator stays usable. */
static void calib_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  hring_model_params_t p;
  memset(&p, 0, sizeof p);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  hring_result_t r = hring__model_calibrate(comm, &p);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: calibrate: %s", rank, hring_last_error());
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  HCHECK(secs < 3.0, "rank %d: calibration took %.2f s", rank, secs);
  const hring_model_level_t *lv[2] = {&p.intra, &p.inter};
  for (int i = 0; i < 2; i++) {
    /* Bounds: a message step between 10 ns and 10 ms, a wire faster than
     * 1 MB/s and slower than 1 TB/s, a reduction in the same range. */
    HCHECK(lv[i]->alpha > 1e-8 && lv[i]->alpha < 1e-2, "rank %d level %d alpha %g", rank, i,
           lv[i]->alpha);
    HCHECK(lv[i]->beta > 1e-12 && lv[i]->beta < 1e-6, "rank %d level %d beta %g", rank, i,
           lv[i]->beta);
    HCHECK(lv[i]->gamma > 1e-12 && lv[i]->gamma < 1e-6, "rank %d level %d gamma %g", rank, i,
           lv[i]->gamma);
  }
  /* Everyone holds rank 0's figures. */
  double mine[6] = {p.intra.alpha, p.intra.beta, p.intra.gamma,
                    p.inter.alpha, p.inter.beta, p.inter.gamma};
  double mx[6], mn[6];
  HREQUIRE(hring_allreduce(mine, mx, 6, HRING_FLOAT64, HRING_MAX, comm, NULL) == HRING_SUCCESS &&
               hring_allreduce(mine, mn, 6, HRING_FLOAT64, HRING_MIN, comm, NULL) == HRING_SUCCESS,
           "rank %d: allreduce after calibration: %s", rank, hring_last_error());
  HCHECK(memcmp(mx, mn, sizeof mx) == 0, "rank %d: ranks disagree on the parameters", rank);
  (void)n;
}

HTEST(model_calibrate_live, 60) {
  setenv("MP_NODES", "2", 1);
  HCHECK(mp_run(4, calib_body, NULL) == 0, "ranks failed");
}

/* hring-tune end to end: under hring-run it writes a file that loads, with
 * measured intra-node figures (not the built-in ones it starts from). */
HTEST(model_tune_tool_writes_loadable_file, 60) {
  char file[64], cmd[512];
  snprintf(file, sizeof file, "/tmp/hring-model-tune-%d.txt", (int)getpid());
  snprintf(cmd, sizeof cmd, "%s/hring-run -n 2 %s/hring-tune -q -o %s", mp_bindir(), mp_bindir(),
           file);
  int rc = system(cmd);
  HREQUIRE(rc == 0, "'%s' exited with %d", cmd, rc);
  hring_model_params_t p = params(), q = params();
  HREQUIRE(hring__model_load(file, &q) == HRING_SUCCESS, "load: %s", hring_last_error());
  unlink(file);
  HCHECK(q.intra.alpha != p.intra.alpha && q.intra.beta != p.intra.beta,
         "intra figures are the built-in ones: not measured");
  HCHECK(q.inter.alpha == p.inter.alpha && q.inter.beta == p.inter.beta,
         "one node: inter figures should stay built-in");
  /* A size it cannot read is refused before anything starts. */
  snprintf(cmd, sizeof cmd, "%s/hring-tune -b 12Q -o %s > /dev/null 2>&1", mp_bindir(), file);
  rc = system(cmd);
  HCHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "'%s' exited with %d, want 2", cmd, rc);
  HCHECK(access(file, F_OK) != 0, "a refused run wrote %s", file);
  unlink(file);
}

/* hring-tune -m FILE: the file's predictions against new samples, every
 * size of every algorithm asked, with the count within 25%; ratios are
 * measured / predicted of the file's own figures (a file 100 times too
 * fast in every term is outside the 25% band at every size); a file that does not
 * load fails every rank, with its name. */
HTEST(model_tune_tool_checks_a_file, 60) {
  char file[64], out[64], cmd[512];
  snprintf(file, sizeof file, "/tmp/hring-model-held-%d.txt", (int)getpid());
  snprintf(out, sizeof out, "/tmp/hring-model-held-%d.out", (int)getpid());
  hring_model_params_t p = params();
  p.intra.beta /= 100, p.intra.gamma /= 100, p.intra.alpha /= 100, p.mem.beta /= 100;
  HREQUIRE(hring__model_save(file, &p, "test") == HRING_SUCCESS, "save: %s", hring_last_error());
  snprintf(cmd, sizeof cmd,
           "%s/hring-run -n 2 %s/hring-tune -m %s -a ring,tree -b 64K -e 128K > %s", mp_bindir(),
           mp_bindir(), file, out);
  int rc = system(cmd);
  HCHECK(rc == 0, "'%s' exited with %d", cmd, rc);
  FILE *f = fopen(out, "r");
  HREQUIRE(f, "no output %s", out);
  char line[512], algo[32], set[32];
  int rows = 0, fast = 0, summary = 0, n = -1, within = -1;
  while (fgets(line, sizeof line, f)) {
    const char *l = strstr(line, "] ") ? strstr(line, "] ") + 2 : line;
    size_t bytes;
    double pred, meas, ratio;
    if (sscanf(l, "held-out: %*s on 2 ranks; %d samples (median of 1), %d within", &n,
               &within) == 2)
      summary = 1;
    if (sscanf(l, "%31s %zu %31s %lf %lf %lf", algo, &bytes, set, &pred, &meas, &ratio) == 6 &&
        !strcmp(set, "held-out")) {
      rows++;
      fast += ratio > 1.25 && meas > 0 && pred > 0;
    }
  }
  fclose(f);
  HCHECK(summary && n == 4 && within >= 0 && within <= n, "summary line: %d samples, %d within "
         "(output in %s)", n, within, out);
  HCHECK(rows == 4, "%d held-out rows, want 4 (ring and tree at 64 and 128 KiB; output in %s)",
         rows, out);
  HCHECK(fast == 4 && within == 0, "%d of 4 rows (%d in the summary) show a 100x fast file "
         "outside the band (output in %s)", fast, 4 - within, out);
  if (rc == 0 && rows == 4 && fast == 4) unlink(out);
  unlink(file);
  snprintf(out, sizeof out, "/tmp/hring-model-held-%d.err", (int)getpid());
  snprintf(cmd, sizeof cmd, "%s/hring-run -n 2 %s/hring-tune -m %s > %s 2>&1", mp_bindir(),
           mp_bindir(), file, out);
  rc = system(cmd);
  f = fopen(out, "r");
  int named = 0;
  while (f && fgets(line, sizeof line, f)) named += strstr(line, file) != NULL;
  if (f) fclose(f);
  HCHECK(rc != 0 && named >= 2, "a missing file: exit %d, named on %d ranks (want both)", rc,
         named);
  unlink(out);
}

/* Rule 5 on bytes: ranks taking turns on fewer cores copy and reduce more
 * slowly by the same factor (the network's beta excepted), and the tree,
 * whose interior ranks move 3 chunks to a leaf's 1, costs what the
 * machine's total work costs: as much as the ring, which moves the same
 * bytes in all, where with a core per rank it is the busiest rank's. */
HTEST(model_shared_cores_scale_bytes, 10) {
  hring_model_params_t p = {{0, 1e-10, 1e-10}, {0, 1e-9, 1e-10}, {0, 0}};
  hring_model_shape_t own = hring__model_shape(8, 1, 65536), shared = own;
  shared.mranks = 8, shared.cores = 2;
  const size_t n = 64u << 20;
  double ring = hring__model_predict(&p, &shared, HRING_ALGO_RING, n) /
                hring__model_predict(&p, &own, HRING_ALGO_RING, n);
  HCHECK(fabs(ring - 4) < 1e-9, "one node, 8 ranks on 2 cores: ring x%.4f, want 4", ring);
  double t_own = hring__model_predict(&p, &own, HRING_ALGO_TREE, n) /
                 hring__model_predict(&p, &own, HRING_ALGO_RING, n);
  double t_sh = hring__model_predict(&p, &shared, HRING_ALGO_TREE, n) /
                hring__model_predict(&p, &shared, HRING_ALGO_RING, n);
  HCHECK(t_own > 1.5, "a core per rank: tree / ring %.3f, want the busiest rank's 3 chunks", t_own);
  HCHECK(fabs(t_sh - 1) < 0.01, "ranks taking turns: tree / ring %.3f, want 1", t_sh);
  /* Across emulated nodes the link's bytes do not grow with the turns. */
  hring_model_params_t q = {{0, 0, 0}, {0, 1e-9, 0}, {0, 0}};
  hring_model_shape_t n_own = hring__model_shape(8, 4, 65536), n_sh = n_own;
  n_sh.mranks = 8, n_sh.cores = 2;
  HCHECK(hring__model_predict(&q, &n_sh, HRING_ALGO_RING, n) ==
             hring__model_predict(&q, &n_own, HRING_ALGO_RING, n),
         "the network's beta must not take the cores' factor");
}

/* Rule 6 for Rabenseifner: its reduce-scatter writes each step's window
 * to the output and reads it back, and its allgather sends from the
 * output: 3 passes over memory per byte sent more than the ring,
 * which moves the same bytes through its (cached) slots.  With memory the
 * only cost, 8 ranks, the vectors 1000x the cache: the ring pays rule 6's
 * 3 per byte sent and reduced, Rabenseifner twice that. */
HTEST(model_rabenseifner_memory_passes, 10) {
  hring_model_params_t p = {{0, 0, 0}, {0, 0, 0}, {1 << 20, 1e-10}};
  hring_model_shape_t s = hring__model_shape(8, 1, 65536);
  const size_t n = 64u << 20; /* ws = 2 * 8 * 64 MiB: 1 - cache / ws = 1023/1024 */
  const double miss = 1e-10 * (1.0 - 1.0 / 1024), sent = 7.0 / 8 * (double)n;
  /* Passes over memory counted in the code, per rank: Rabenseifner
   * 9 (1 - 1/P) n, the ring (6 - 4/P) n, so (3 - 5/P) n more: 2.375 n at
   * P = 8, on top of rule 6's 3 per byte sent. */
  const double extra = (3.0 - 5.0 / 8) * (double)n;
  double ring = hring__model_predict(&p, &s, HRING_ALGO_RING, n);
  double rab = hring__model_predict(&p, &s, HRING_ALGO_RABENSEIFNER, n);
  HCHECK(fabs(ring - 3 * sent * miss) < 1e-9 * ring, "ring %.6g s, want %.6g", ring,
         3 * sent * miss);
  HCHECK(fabs(rab - (3 * sent + extra) * miss) < 1e-9 * rab, "rabenseifner %.6g s, want %.6g",
         rab, (3 * sent + extra) * miss);
  p.mem.beta = 0; /* within the cache both cost nothing here */
  HCHECK(hring__model_predict(&p, &s, HRING_ALGO_RABENSEIFNER, n) == 0,
         "no memory cost: rabenseifner should cost 0");
  /* In the cache each pass costs a copy: half a byte through a slot
   * (intra beta), so with beta alone the ring pays 2 beta per byte sent
   * and Rabenseifner extra / 2 beta more. */
  hring_model_params_t b = {{0, 1e-10, 0}, {0, 0, 0}, {1e12, 0}};
  ring = hring__model_predict(&b, &s, HRING_ALGO_RING, n);
  rab = hring__model_predict(&b, &s, HRING_ALGO_RABENSEIFNER, n);
  double want = (2 * sent + extra / 2) * 1e-10;
  HCHECK(fabs(rab - want) < 1e-9 * rab, "in cache: rabenseifner %.6g s, want %.6g", rab, want);
  HCHECK(fabs(ring - 2 * sent * 1e-10) < 1e-9 * ring, "in cache: ring %.6g s, want %.6g", ring,
         2 * sent * 1e-10);
  /* Two ranks: both make 4.5 n passes but for the one step's half, 0.5 n. */
  hring_model_shape_t two = hring__model_shape(2, 1, 65536);
  double d2 = hring__model_predict(&b, &two, HRING_ALGO_RABENSEIFNER, n) -
              hring__model_predict(&b, &two, HRING_ALGO_RING, n);
  HCHECK(fabs(d2 - 0.25 * (double)n * 1e-10) < 1e-6 * d2, "two ranks: %.6g s more, want %.6g", d2,
         0.25 * (double)n * 1e-10);
}

/* Rule 5 in the tree's fill: the first chunk climbs and descends one level
 * at a time, so each level costs the factor of its own busy ranks.  8 ranks
 * on 2 cores, one chunk, alpha alone: levels of 3, 6 and 2 busy ranks
 * (factors 1.5, 3, 1), 2 alpha each, against 4 for all 8. */
HTEST(model_tree_fill_shares_cores_by_level, 10) {
  hring_model_params_t p = {{10e-6, 0, 0}, {0, 0, 0}, {0, 0}};
  hring_model_shape_t s = hring__model_shape(8, 1, 65536);
  s.mranks = 8, s.cores = 2;
  double t = hring__model_predict(&p, &s, HRING_ALGO_TREE, 65536);
  double want = 2 * 10e-6 * (1.5 + 3 + 1);
  HCHECK(fabs(t - want) < 1e-9, "tree fill %.3f us, want %.3f", t * 1e6, want * 1e6);
  s.cores = 8; /* a core per rank: no factor */
  t = hring__model_predict(&p, &s, HRING_ALGO_TREE, 65536);
  HCHECK(fabs(t - 2 * 10e-6 * 3) < 1e-9, "tree fill %.3f us with a core each", t * 1e6);
}

/* Rule 5 in hier's chains: with one chunk the chain is all fill, and the
 * fill goes one hop at a time, a node having one rank at work.  4 nodes
 * of 2 ranks on 2 cores, intra alpha alone: reduce and broadcast one hop
 * each at the factor of one busy rank per node (2), not of both (4). */
HTEST(model_hier_chain_fill_shares_cores, 10) {
  hring_model_params_t p = {{10e-6, 0, 0}, {0, 0, 0}, {0, 0}};
  hring_model_shape_t s = hring__model_shape(8, 4, 65536);
  s.mranks = 8, s.cores = 2;
  double t = hring__model_predict(&p, &s, HRING_ALGO_HIER, 65536);
  HCHECK(fabs(t - 2 * 10e-6 * 2) < 1e-9, "hier chains %.3f us, want 40", t * 1e6);
  s.cores = 8; /* a core per rank: no factor */
  t = hring__model_predict(&p, &s, HRING_ALGO_HIER, 65536);
  HCHECK(fabs(t - 2 * 10e-6) < 1e-9, "hier chains %.3f us with a core each, want 20", t * 1e6);
  /* Many chunks: every stage busy, the period pays the factor of both. */
  s.cores = 2;
  double many = hring__model_predict(&p, &s, HRING_ALGO_HIER, 8 * 65536);
  HCHECK(fabs(many - 2 * 10e-6 * (2 + 7 * 4)) < 1e-9, "hier chains, 8 chunks: %.3f us, want 600",
         many * 1e6);
}

/* Rule 5: ranks outnumbering their machine's cores take turns, so alpha
 * grows with the ranks busy at once; hier's leaders' phase keeps one rank
 * per node busy and grows less.  Without beta and gamma the factors show
 * exactly. */
HTEST(model_shared_cores_scale_alpha, 10) {
  hring_model_params_t p = {{10e-6, 0, 0}, {100e-6, 0, 0}, {0, 0}};
  hring_model_shape_t own = hring__model_shape(8, 4, 65536), shared = own;
  shared.mranks = 8, shared.cores = 2; /* 4 nodes of 2 on one 2-core machine */
  const size_t n = 1 << 20;
  double ring = hring__model_predict(&p, &shared, HRING_ALGO_RING, n) /
                hring__model_predict(&p, &own, HRING_ALGO_RING, n);
  double h2 = hring__model_predict(&p, &shared, HRING_ALGO_HIER2D, n) /
              hring__model_predict(&p, &own, HRING_ALGO_HIER2D, n);
  double h1 = hring__model_predict(&p, &shared, HRING_ALGO_HIER, n) /
              hring__model_predict(&p, &own, HRING_ALGO_HIER, n);
  HCHECK(fabs(ring - 4) < 1e-9 && fabs(h2 - 4) < 1e-9, "all busy: ring x%.3f, hier2d x%.3f, want 4",
         ring, h2);
  HCHECK(h1 > 2 - 1e-9 && h1 < 4 - 1e-3, "hier: x%.3f, want between 2 (leaders) and 4", h1);
  shared.cores = 8; /* a core per rank: no turns */
  HCHECK(hring__model_predict(&p, &shared, HRING_ALGO_RING, n) ==
             hring__model_predict(&p, &own, HRING_ALGO_RING, n),
         "a core per rank must not change the prediction");
}

/* hier2d's segments (model.h): the emulated hosts of the benchmark cut a
 * 64 MiB call into 8; small calls, one node, one rank per node and calls
 * whose shards cross by halving-doubling stay whole; across 128 nodes a
 * segment must keep every ring message at 128 KiB or more. */
HTEST(model_hier2d_segments, 10) {
  const size_t M = 1u << 20;
  HCHECK(hring__hier2d_segments(4, 2, 64 * M) == 8, "4 x 2, 64 MiB");
  HCHECK(hring__hier2d_segments(4, 2, 3 * M) == 3, "4 x 2, 3 MiB");
  HCHECK(hring__hier2d_segments(4, 2, M) == 0, "4 x 2, 1 MiB: one segment");
  HCHECK(hring__hier2d_segments(1, 8, 64 * M) == 0, "one node");
  HCHECK(hring__hier2d_segments(8, 1, 64 * M) == 0, "one rank per node");
  HCHECK(hring__hier2d_segments(3, 3, 3 * M) == 2, "3 nodes of up to 3, 3 MiB");
  HCHECK(hring__hier2d_segments(128, 8, 64 * M) == 0, "128 x 8, 64 MiB: 8 MiB shards' steps");
  HCHECK(hring__hier2d_segments(128, 8, 256 * M) == 2, "128 x 8, 256 MiB");
  HCHECK(hring__hier2d_segments(16, 8, 8 * M) == 0, "16 x 8, 8 MiB: halving-doubling shards");
}
