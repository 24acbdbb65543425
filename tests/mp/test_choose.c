/*
 * test_choose.c - the per-call choice of the allreduce algorithm
 * (src/algos/choose.c): across nodes it is the algorithm the cost model
 * predicts fastest for the communicator's layout, with the parameters of
 * HRING_MODEL_FILE when set; the choice follows the parameters; results
 * stay right whatever is chosen; a bad parameter file fails the init with
 * a message naming it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "algos/algo.h"
#include "algos/choose.h"
#include "algos/model.h"
#include "core/comm.h"
#include "mp.h"

static const size_t sizes[] = {8, 512, 8192, 65536, 1 << 20, 16 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Writes a parameter file: an inter-node level `slow` times slower in
 * latency than the node's, and bandwidth as given. */
static void write_model(const char *path, double inter_alpha, double inter_beta) {
  hring_model_params_t p;
  hring__model_defaults(&p);
  p.inter.alpha = inter_alpha;
  p.inter.beta = inter_beta;
  HREQUIRE(hring__model_save(path, &p, "test_choose") == HRING_SUCCESS, "save %s: %s", path,
           hring_last_error());
}

typedef struct {
  int chosen[NSIZES];
} picks_t;

/* The fastest applicable prediction, computed here from the definitions
 * (not through hring__model_choose), with the chooser's own restrictions. */
static int argmin_predicted(const hring_model_params_t *p, hring_model_shape_t s,
                            struct hring_comm *c, size_t bytes) {
  s.chunk = hring__ring_chunk(c, bytes);
  int best = -1;
  double bt = INFINITY;
  for (int a = HRING_ALGO_RING; a < HRING_ALGO_COUNT; a++) {
    if (!hring__model_applicable(&s, a, bytes)) continue;
    if (a == HRING_ALGO_ALLPAIRS && bytes > c->min_slot) continue;
    double t = hring__model_predict(p, &s, a, bytes);
    if (t < bt) bt = t, best = a;
  }
  return best;
}

static void follow_body(hring_comm_t comm, int rank, int n, void *arg) {
  picks_t *out = arg;
  (void)n;
  hring_model_params_t p;
  HREQUIRE(hring__model_load(getenv("HRING_MODEL_FILE"), &p) == HRING_SUCCESS, "load: %s",
           hring_last_error());
  hring_model_shape_t s;
  hring__model_shape_of(comm, &s);
  HCHECK(comm->nnodes == 2, "rank %d: %d nodes, expected 2", rank, comm->nnodes);
  for (size_t i = 0; i < NSIZES; i++) {
    int got = hring__choose(comm, sizes[i]);
    int want = argmin_predicted(&p, s, comm, sizes[i]);
    HCHECK(got == want, "rank %d, %zu bytes: chose %s, the model predicts %s fastest", rank,
           sizes[i], hring__algo_names[got], hring__algo_names[want]);
    if (rank == 0) out->chosen[i] = got;
    const char *name = NULL;
    HCHECK(hring_allreduce_algorithm(comm, sizes[i] / 4, HRING_FLOAT32, &name) == HRING_SUCCESS &&
               name && strcmp(name, hring__algo_names[got]) == 0,
           "rank %d, %zu bytes: hring_allreduce_algorithm says %s, the chooser %s", rank,
           sizes[i], name ? name : "(null)", hring__algo_names[got]);
    /* and the chosen algorithm's result is right */
    size_t count = sizes[i] / sizeof(float);
    float *x = malloc(sizes[i]);
    HREQUIRE(x, "malloc");
    for (size_t k = 0; k < count; k++) x[k] = (float)(rank + 1);
    hring_result_t r = hring_allreduce(x, x, count, HRING_FLOAT32, HRING_SUM, comm, NULL);
    HCHECK(r == HRING_SUCCESS, "rank %d: allreduce %zu bytes: %s", rank, sizes[i],
           hring_last_error());
    for (size_t k = 0; k < count && r == HRING_SUCCESS; k++)
      if (x[k] != 10.0f) {
        HCHECK(0, "rank %d, %zu bytes by %s: x[%zu] = %g, expected 10", rank, sizes[i],
               hring__algo_names[got], k, x[k]);
        break;
      }
    free(x);
  }
  /* Rank 0 reports its picks through a file: the ranks are processes. */
  if (rank == 0) {
    FILE *f = fopen(getenv("TEST_CHOOSE_OUT"), "w");
    HREQUIRE(f, "open the picks file");
    for (size_t i = 0; i < NSIZES; i++) fprintf(f, "%d\n", out->chosen[i]);
    fclose(f);
  }
}

static void run_follow(const char *model, picks_t *picks) {
  char out[] = "/tmp/hring-choose-XXXXXX";
  int fd = mkstemp(out);
  HREQUIRE(fd >= 0, "mkstemp");
  close(fd);
  setenv("HRING_MODEL_FILE", model, 1);
  setenv("TEST_CHOOSE_OUT", out, 1);
  setenv("MP_NODE_MAP", "0,0,1,1", 1);
  unsetenv("HRING_ALGO");
  HCHECK(mp_run(4, follow_body, picks) == 0, "a rank failed (model %s)", model);
  FILE *f = fopen(out, "r");
  HREQUIRE(f, "read the picks file");
  for (size_t i = 0; i < NSIZES; i++)
    HREQUIRE(fscanf(f, "%d", &picks->chosen[i]) == 1, "picks file too short");
  fclose(f);
  unlink(out);
  unsetenv("MP_NODE_MAP");
  unsetenv("HRING_MODEL_FILE");
}

/* Two sets of parameters, 4 ranks as 2 nodes of 2: every rank's choice is
 * the model's argmin, and a network 1000 times slower in latency changes
 * the choice for some size (the choice reads the file, not a table). */
HTEST(choose_follows_model_across_nodes, 90) {
  char fast[] = "/tmp/hring-model-fast-XXXXXX", slow[] = "/tmp/hring-model-slow-XXXXXX";
  int f1 = mkstemp(fast), f2 = mkstemp(slow);
  HREQUIRE(f1 >= 0 && f2 >= 0, "mkstemp");
  close(f1), close(f2);
  write_model(fast, 1e-7, 1e-11);
  write_model(slow, 1e-4, 1e-8);
  picks_t a = {{0}}, b = {{0}};
  run_follow(fast, &a);
  run_follow(slow, &b);
  int differ = 0;
  for (size_t i = 0; i < NSIZES; i++) {
    printf("  %8zu bytes: fast network %s, slow network %s\n", sizes[i],
           hring__algo_names[a.chosen[i]], hring__algo_names[b.chosen[i]]);
    differ |= a.chosen[i] != b.chosen[i];
  }
  HCHECK(differ, "the same algorithm for every size under both parameter files");
  unlink(fast), unlink(slow);
}

static void never_runs(hring_comm_t comm, int rank, int n, void *arg) {
  (void)comm, (void)rank, (void)n, (void)arg;
}

/* A parameter file that is not one fails every rank's init, naming it. */
HTEST(choose_bad_model_file, 30) {
  char bad[] = "/tmp/hring-model-bad-XXXXXX";
  int fd = mkstemp(bad);
  HREQUIRE(fd >= 0, "mkstemp");
  HREQUIRE(write(fd, "version = 1\nintra.alpha = fast\n", 31) == 31, "write");
  close(fd);
  setenv("HRING_MODEL_FILE", bad, 1);
  HCHECK(mp_run(2, never_runs, NULL) == 2, "the ranks did not both fail their init");
  /* and in this process, the message */
  hring_unique_id_t id;
  hring_comm_t c;
  HREQUIRE(hring_get_unique_id(&id) == HRING_SUCCESS, "id");
  hring_result_t r = hring_comm_init_rank(&c, 1, id, 0);
  HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "init with a bad model file: %s", hring_strerror(r));
  HCHECK(strstr(hring_last_error(), bad) != NULL, "the error does not name the file: %s",
         hring_last_error());
  if (r == HRING_SUCCESS) hring_comm_destroy(c);
  unsetenv("HRING_MODEL_FILE");
  unlink(bad);
}

/* hring_allreduce_algorithm names what a call would run: the one-node
 * rule on an auto communicator (allpairs for 8 bytes), HRING_ALGO's choice
 * on a communicator split with it set, auto's where a forced allpairs
 * cannot run (1 MiB), "none" for nothing to send; every rank the same
 * name; bad arguments refused with nothing written. */
static void names_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg, (void)n;
  const char *a8 = NULL, *a1m = NULL, *none = NULL;
  HREQUIRE(hring_allreduce_algorithm(comm, 2, HRING_FLOAT32, &a8) == HRING_SUCCESS, "8 B: %s",
           hring_last_error());
  HREQUIRE(hring_allreduce_algorithm(comm, 1 << 18, HRING_FLOAT32, &a1m) == HRING_SUCCESS,
           "1 MiB: %s", hring_last_error());
  HREQUIRE(hring_allreduce_algorithm(comm, 0, HRING_FLOAT32, &none) == HRING_SUCCESS, "0: %s",
           hring_last_error());
  HCHECK(strcmp(a8, "allpairs") == 0, "rank %d: 8 bytes on one node: %s, want allpairs", rank, a8);
  /* 4 KiB on one node of 3 ranks: recursive doubling where ranks
   * outnumber cores (choose.c's measured rules), else the ring. */
  const char *a4k = NULL, *want4k = comm->oversub_any ? "rdouble" : "ring";
  HCHECK(hring_allreduce_algorithm(comm, 1024, HRING_FLOAT32, &a4k) == HRING_SUCCESS && a4k &&
             strcmp(a4k, want4k) == 0, "rank %d: 4 KiB, %s: %s, want %s", rank,
         comm->oversub_any ? "oversubscribed" : "a core per rank", a4k ? a4k : "(null)", want4k);
  /* 64 and 128 KiB: the direct exchange where ranks outnumber cores, else
   * the ring; just above 128 KiB the ring either way. */
  const struct {
    size_t count;
    const char *want;
  } mid[] = {{16384, comm->oversub_any ? "direct" : "ring"},
             {32768, comm->oversub_any ? "direct" : "ring"},
             {32769, "ring"}};
  for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++) {
    const char *a = NULL;
    HCHECK(hring_allreduce_algorithm(comm, mid[i].count, HRING_FLOAT32, &a) == HRING_SUCCESS && a &&
               strcmp(a, mid[i].want) == 0,
           "rank %d: %zu floats on one node: %s, want %s", rank, mid[i].count, a ? a : "(null)",
           mid[i].want);
  }
  HCHECK(strcmp(none, "none") == 0, "rank %d: count 0: %s, want none", rank, none);
  hring_comm_t tree, pairs;
  setenv("HRING_ALGO", "tree", 1);
  HREQUIRE(hring_comm_split(comm, 0, rank, &tree) == HRING_SUCCESS, "split: %s", hring_last_error());
  setenv("HRING_ALGO", "allpairs", 1);
  HREQUIRE(hring_comm_split(comm, 0, rank, &pairs) == HRING_SUCCESS, "split: %s",
           hring_last_error());
  unsetenv("HRING_ALGO");
  const char *t = NULL, *p8 = NULL, *p1m = NULL;
  HCHECK(hring_allreduce_algorithm(tree, 1 << 18, HRING_FLOAT32, &t) == HRING_SUCCESS &&
             strcmp(t, "tree") == 0, "rank %d: forced tree: %s", rank, t ? t : "(null)");
  HCHECK(hring_allreduce_algorithm(pairs, 2, HRING_FLOAT32, &p8) == HRING_SUCCESS &&
             strcmp(p8, "allpairs") == 0, "rank %d: forced allpairs, 8 B: %s", rank,
         p8 ? p8 : "(null)");
  HCHECK(hring_allreduce_algorithm(pairs, 1 << 18, HRING_FLOAT32, &p1m) == HRING_SUCCESS &&
             strcmp(p1m, a1m) == 0, "rank %d: forced allpairs at 1 MiB: %s, auto's is %s", rank,
         p1m ? p1m : "(null)", a1m);
  /* The same name on every rank: its first letters, min and max. */
  int64_t code = (int64_t)a1m[0] << 16 | (int64_t)a1m[1] << 8 | a1m[2], lo = code, hi = code;
  HCHECK(hring_allreduce(&lo, &lo, 1, HRING_INT64, HRING_MIN, comm, NULL) == HRING_SUCCESS &&
             hring_allreduce(&hi, &hi, 1, HRING_INT64, HRING_MAX, comm, NULL) == HRING_SUCCESS &&
             lo == hi, "rank %d: ranks name different algorithms for 1 MiB", rank);
  const char *keep = "unchanged", *w = keep;
  HCHECK(hring_allreduce_algorithm(comm, 2, HRING_FLOAT32, NULL) == HRING_ERR_INVALID_ARGUMENT,
         "NULL name accepted");
  HCHECK(hring_allreduce_algorithm(comm, 2, (hring_datatype_t)99, &w) ==
                 HRING_ERR_INVALID_ARGUMENT && w == keep,
         "an unknown datatype accepted, or the name written");
  HCHECK(hring_allreduce_algorithm(NULL, 2, HRING_FLOAT32, &w) == HRING_ERR_INVALID_ARGUMENT &&
             w == keep, "a NULL communicator accepted, or the name written");
  hring_comm_destroy(tree);
  hring_comm_destroy(pairs);
}

HTEST(allreduce_algorithm_names_the_choice, 60) {
  HCHECK(mp_run(3, names_body, NULL) == 0, "ranks failed");
}

/* 8 ranks of one node: where they outnumber the cores, allpairs to 2 KiB,
 * recursive doubling at 4 KiB and the direct exchange at 8 KiB (choose.c's
 * measured rules); with a core each, allpairs to 4 KiB, then the ring. */
static void eight_names_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg, (void)n;
  const int over = comm->oversub_any;
  const struct {
    size_t count;
    const char *want;
  } cases[] = {{256, "allpairs"},
               {512, "allpairs"},
               {1024, over ? "rdouble" : "allpairs"},
               {2048, over ? "direct" : "ring"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *a = NULL;
    HCHECK(hring_allreduce_algorithm(comm, cases[i].count, HRING_FLOAT32, &a) == HRING_SUCCESS &&
               a && strcmp(a, cases[i].want) == 0,
           "rank %d of 8 (%s): %zu floats: %s, want %s", rank,
           over ? "oversubscribed" : "a core each", cases[i].count, a ? a : "(null)",
           cases[i].want);
  }
}

HTEST(eight_ranks_name_the_small_rules, 60) {
  HCHECK(mp_run(8, eight_names_body, NULL) == 0, "ranks failed");
}

/* Ranks of one node that reach each other by tcp (HRING_TRANSPORTS=tcp on
 * a split): up to 128 KiB recursive doubling with fewer than 8 ranks and
 * the tree with 8, then the ring (choose.c), on every rank; the shm rules
 * would name allpairs at 8 bytes.  An allreduce of 64 KiB is right. */
static void tcp_names_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  setenv("HRING_TRANSPORTS", "tcp", 1);
  hring_comm_t c;
  hring_result_t r = hring_comm_split(comm, 0, rank, &c);
  unsetenv("HRING_TRANSPORTS");
  HREQUIRE(r == HRING_SUCCESS, "split over tcp: %s", hring_last_error());
  HCHECK(c->tcp_within_any, "rank %d: tcp within the node not seen", rank);
  const char *small = n < 8 ? "rdouble" : "tree";
  const struct {
    size_t count;
    const char *want;
  } cases[] = {{2, small}, {16384, small}, {32768, small}, {32769, "ring"}, {1 << 18, "ring"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *a = NULL;
    HCHECK(hring_allreduce_algorithm(c, cases[i].count, HRING_FLOAT32, &a) == HRING_SUCCESS && a &&
               strcmp(a, cases[i].want) == 0,
           "rank %d of %d over tcp, %zu floats: %s, want %s", rank, n, cases[i].count,
           a ? a : "(null)", cases[i].want);
  }
  static int32_t v[16384];
  for (int i = 0; i < 16384; i++) v[i] = rank + i % 7;
  HCHECK(hring_allreduce(v, v, 16384, HRING_INT32, HRING_SUM, c, NULL) == HRING_SUCCESS,
         "allreduce: %s", hring_last_error());
  int wrong = 0;
  for (int i = 0; i < 16384; i++) wrong += v[i] != n * (n - 1) / 2 + n * (i % 7);
  HCHECK(wrong == 0, "rank %d: %d wrong elements", rank, wrong);
  hring_comm_destroy(c);
}

HTEST(choose_tcp_within_node, 90) {
  HCHECK(mp_run(4, tcp_names_body, NULL) == 0, "4 ranks failed");
  HCHECK(mp_run(8, tcp_names_body, NULL) == 0, "8 ranks failed");
}

/* hring-choice end to end: under hring-run, with auto and three forced
 * algorithms (one communicator each, split from the world), every result
 * is right and every size gets a row with auto's ratio, the algorithm auto
 * ran and its forced copy's ratio (>= 1: against the best); a bad option
 * is refused with status 2. */
HTEST(choice_tool_runs_and_checks, 60) {
  char cmd[512], out[64];
  snprintf(out, sizeof out, "/tmp/hring-choice-%d.txt", (int)getpid());
  snprintf(cmd, sizeof cmd,
           "%s/hring-run -n 3 %s/hring-choice -b 8 -e 40000 -f 70 -r 2 -t 1 "
           "-a auto,ring,rdouble,tree,allpairs,direct > %s 2>&1", mp_bindir(), mp_bindir(), out);
  int rc = system(cmd);
  FILE *f = fopen(out, "r");
  HREQUIRE(f, "no output file %s", out);
  char line[1024];
  int rows = 0, zero = 0;
  while (fgets(line, sizeof line, f)) {
    size_t bytes;
    double ratio;
    char best[32], ran[32], ranbest[32], known[40];
    const char *p = strstr(line, "] ") ? strstr(line, "] ") + 2 : line;
    /* ... min  auto/best best  auto-ran ran/best: auto ran one of the
     * listed forced algorithms at these sizes, so ran/best is a number */
    if (sscanf(p, "%zu", &bytes) == 1 && strstr(p, "/") &&
        sscanf(strrchr(p, '/') + 1, "%*f %lf %31s %31s %31s", &ratio, best, ran, ranbest) == 4 &&
        ratio > 0 && snprintf(known, sizeof known, ",%s,", ran) > 0 &&
        strstr(",ring,rdouble,tree,allpairs,direct,", known) && atof(ranbest) >= 1.0)
      rows++;
    if (strstr(line, "wrong results (max over ranks): 0")) zero = 1;
  }
  fclose(f);
  HCHECK(rc == 0, "'%s' exited with %d (output in %s)", cmd, rc, out);
  HCHECK(rows == 3, "%d result rows, expected 3 (8 B, 560 B, 39200 B; output in %s)", rows, out);
  HCHECK(zero, "no 'wrong results: 0' line (output in %s)", out);
  if (rc == 0 && rows == 3 && zero) unlink(out);
  snprintf(cmd, sizeof cmd, "%s/hring-choice -x 1 > /dev/null 2>&1", mp_bindir());
  rc = system(cmd);
  HCHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "a bad option: status %d, expected 2", rc);
}

/* More ranks on one node than the engine drives at once (64 peers): the
 * direct exchange and allpairs cannot run there, so the one-node rules
 * must not name them.  They did, and every allreduce of 8 to 128 KiB with
 * 66 oversubscribed ranks failed with an internal error.  At 65 ranks (64
 * peers) they can run, and the rules name them from 8 B to 128 KiB; the
 * rules and the forced algorithms took 65 ranks for too many until they
 * asked hring__engine_reaches_all.  Small slots keep the n x (n-1) FIFOs
 * to a few tens of MiB.  arg: whether the engine reaches every rank. */
static void many_ranks_body(hring_comm_t comm, int rank, int n, void *arg) {
  const int reaches = *(const int *)arg;
  static const size_t counts[] = {2, 2048, 16384, 32768};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    const char *a = NULL;
    HCHECK(hring_allreduce_algorithm(comm, counts[i], HRING_INT32, &a) == HRING_SUCCESS && a,
           "rank %d of %d, %zu ints: no algorithm", rank, n, counts[i]);
    int engine = a && (strcmp(a, "direct") == 0 || strcmp(a, "allpairs") == 0);
    HCHECK(engine == reaches, "rank %d of %d, %zu ints: %s (expected %s)", rank, n, counts[i],
           a ? a : "(null)", reaches ? "direct or allpairs" : "neither direct nor allpairs");
    static int32_t v[32768];
    for (size_t k = 0; k < counts[i]; k++) v[k] = rank + (int32_t)(k % 5);
    hring_result_t r = hring_allreduce(v, v, counts[i], HRING_INT32, HRING_SUM, comm, NULL);
    HREQUIRE(r == HRING_SUCCESS, "rank %d, %zu ints: %s", rank, counts[i], hring_last_error());
    size_t wrong = 0;
    for (size_t k = 0; k < counts[i]; k++) wrong += v[k] != n * (n - 1) / 2 + n * (int32_t)(k % 5);
    HCHECK(wrong == 0, "rank %d, %zu ints: %zu wrong elements", rank, counts[i], wrong);
  }
}

HTEST(one_node_beyond_the_engine_limit, 180) {
  setenv("HRING_SHM_SLOT_SIZE", "4K", 1);
  setenv("HRING_SHM_SLOTS", "2", 1);
  int reaches = 1;
  int failed65 = mp_run(65, many_ranks_body, &reaches);
  reaches = 0;
  int failed66 = mp_run(66, many_ranks_body, &reaches);
  unsetenv("HRING_SHM_SLOT_SIZE");
  unsetenv("HRING_SHM_SLOTS");
  HCHECK(failed65 == 0, "65 ranks: %d rank(s) failed", failed65);
  HCHECK(failed66 == 0, "66 ranks: %d rank(s) failed", failed66);
}
