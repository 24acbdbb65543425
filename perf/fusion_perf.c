/*
 * fusion_perf - replays training steps of a network's gradients across
 * ranks and measures, per bucketing mode, the step time, the communication
 * left exposed after the backward pass, and the overlap achieved
 * (docs/fusion.md).
 *
 * The backward pass is simulated on a device clock: tensor i becomes ready
 * when the clock passes the sum of the layers' compute times so far (its
 * share of the backward FLOPs), whatever the host thread did meanwhile, as
 * on a GPU whose kernels do not occupy the host cores.  The host thread
 * sleeps until then and marks the tensor ready.  Real gradients of the
 * network's sizes are reduced, and after every measured step they are
 * compared bit for bit with an unfused reference (one blocking allreduce
 * per tensor): small integers, exact in every type and order.
 *
 * usage: fusion_perf [-m resnet50|alexnet|both] [-M mode,mode,...]
 *                    [-d float|half|bfloat16] [-r repeats] [-n steps]
 *                    [-w warmup steps] [-c seconds|auto|auto:F] [-p packed|arena]
 *                    [-i step|mode]
 * -c: the simulated backward's total time; auto (default) makes it equal to
 * the unfused (`none`) communication time measured first (the fastest of 5
 * steps 0.3 s apart), auto:F F times
 * that (0.01-100): how much `none` is left exposed depends on which of the
 * two is longer, so a sweep of F shows the modes on both sides of equal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "hring.h"
#include "hring_fusion.h"

#define MAX_MODES 8
#define MAX_SAMPLES 256

typedef struct {
  const char *nets, *modes;
  hring_datatype_t type;
  int repeats, steps, warmup, packed;
  int by_step;           /* -i step: modes interleaved step by step */
  double compute_total;  /* <= 0: auto */
  double compute_factor; /* auto: this times the unfused communication */
} opts_t;

/* -c auto: unfused steps timed, AUTO_PROBE_GAP_S apart. */
#define AUTO_PROBES 5
#define AUTO_PROBE_GAP_S 0.3

typedef struct {
  hring_comm_t comm;
  int rank, nranks;
  const hring_net_t *net;
  size_t esize, total_bytes;
  void *src, *ref;       /* this rank's gradients; the unfused result */
  void **packed;         /* per-tensor buffers in packed mode */
  double *compute_s;     /* [n] simulated backward time of each tensor */
} bench_t;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_until(double t) {
  struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0;
}

static double max_over_ranks(bench_t *b, double v) {
  hring_allreduce(&v, &v, 1, HRING_FLOAT64, HRING_MAX, b->comm, NULL);
  return v;
}

#define CHECK(call)                                                                      \
  do {                                                                                   \
    hring_result_t r_ = (call);                                                          \
    if (r_ != HRING_SUCCESS) {                                                           \
      fprintf(stderr, "fusion_perf: rank %d: %s: %s\n", b->rank, #call, hring_last_error()); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

/* This rank's gradients: small integers, exact in every type and order. */
static void make_data(bench_t *b, hring_datatype_t type) {
  const hring_net_t *net = b->net;
  b->total_bytes = net->params * b->esize;
  b->src = malloc(b->total_bytes);
  b->ref = malloc(b->total_bytes);
  if (!b->src || !b->ref) exit(1);
  size_t off = 0;
  for (int i = 0; i < net->ntensors; i++) {
    char *p = (char *)b->src + off;
    char v[5][8];
    for (int j = 0; j < 5; j++) hring_perf_encode(type, (int64_t)(b->rank + 1) * ((i + j) % 5 + 1), v[j]);
    for (size_t j = 0; j < net->tensors[i].count; j++) memcpy(p + j * b->esize, v[j % 5], b->esize);
    off += net->tensors[i].count * b->esize;
  }
}

/* The unfused reference: one blocking allreduce per tensor. */
static void make_reference(bench_t *b, hring_datatype_t type) {
  size_t off = 0;
  memcpy(b->ref, b->src, b->total_bytes);
  for (int i = 0; i < b->net->ntensors; i++) {
    char *p = (char *)b->ref + off;
    CHECK(hring_allreduce(p, p, b->net->tensors[i].count, type, HRING_SUM, b->comm, NULL));
    off += b->net->tensors[i].count * b->esize;
  }
}

/* Where the next step's gradients go: the arena, or the caller's tensors. */
static void load_gradients(bench_t *b, hring_fusion_t f, int packed) {
  if (!packed) {
    memcpy(hring_fusion_tensor(f, 0), b->src, b->total_bytes);
    return;
  }
  size_t off = 0;
  for (int i = 0; i < b->net->ntensors; i++) {
    size_t bytes = b->net->tensors[i].count * b->esize;
    memcpy(b->packed[i], (char *)b->src + off, bytes);
    off += bytes;
  }
}

/* Bytes of this rank's result that differ from the reference. */
static long long wrong_bytes(bench_t *b, hring_fusion_t f, int packed) {
  long long wrong = 0;
  size_t off = 0;
  for (int i = 0; i < b->net->ntensors; i++) {
    size_t bytes = b->net->tensors[i].count * b->esize;
    const char *got = packed ? b->packed[i] : hring_fusion_tensor(f, i);
    const char *want = (const char *)b->ref + off;
    if (memcmp(got, want, bytes) != 0)
      for (size_t j = 0; j < bytes; j++) wrong += got[j] != want[j];
    off += bytes;
  }
  return wrong;
}

typedef struct {
  double step, exposed, bwd_end;
} step_time_t;

/* One step: the simulated backward marks tensors ready on the device
 * clock, then the wait.  compute NULL: everything ready at once (the
 * communication alone). */
static step_time_t run_step(bench_t *b, hring_fusion_t f, const double *compute) {
  CHECK(hring_barrier(b->comm, NULL));
  double t0 = now_s(), dev = t0;
  for (int i = 0; i < b->net->ntensors; i++) {
    if (compute) {
      dev += compute[i];
      sleep_until(dev);
    }
    CHECK(hring_fusion_ready(f, i));
  }
  double bwd = now_s();
  CHECK(hring_fusion_wait(f));
  double end = now_s();
  /* Exposed: what the wait added after the device finished the backward. */
  double dev_end = dev > bwd ? dev : bwd;
  step_time_t t = {end - t0, end - dev_end, bwd - t0};
  t.step = max_over_ranks(b, t.step);
  t.exposed = max_over_ranks(b, t.exposed < 0 ? 0 : t.exposed);
  return t;
}

static hring_fusion_t make_fusion(bench_t *b, const opts_t *o, const char *mode) {
  int n = b->net->ntensors;
  hring_fusion_tensor_t *t = calloc((size_t)n, sizeof *t);
  if (!t) exit(1);
  for (int i = 0; i < n; i++) {
    t[i].count = b->net->tensors[i].count;
    t[i].data = o->packed ? b->packed[i] : NULL;
  }
  hring_fusion_opts_t fo = {o->type, HRING_SUM, 0, mode, NULL};
  hring_fusion_t f;
  CHECK(hring_fusion_create(b->comm, n, t, &fo, &f));
  free(t);
  return f;
}

typedef struct {
  char mode[48];
  int buckets;
  double alone, step_min, step_med, exp_min, exp_med;
  long long wrong;
  /* samples over repetitions */
  double steps[MAX_SAMPLES], exposed[MAX_SAMPLES], alones[MAX_SAMPLES];
  int ns, na;
} mode_result_t;

/* One step of a mode's fusion: the gradients loaded, the step run, and (measured
 * steps only) its times and wrong bytes recorded. */
static void one_step(bench_t *b, const opts_t *o, hring_fusion_t f, mode_result_t *res,
                     int measured) {
  load_gradients(b, f, o->packed);
  step_time_t t = run_step(b, f, b->compute_s);
  if (!measured) return;
  long long w = wrong_bytes(b, f, o->packed);
  hring_allreduce(&w, &w, 1, HRING_INT64, HRING_SUM, b->comm, NULL);
  res->wrong += w;
  if (res->ns < MAX_SAMPLES) res->steps[res->ns] = t.step, res->exposed[res->ns++] = t.exposed;
}

/* One repetition: for each mode a fresh fusion (its own probe and plan),
 * the warmup steps, the communication alone, the measured steps.  With
 * -i step (default) every mode's fusion exists at once and each step
 * index runs every mode in turn, so a spell in which the machine runs
 * slower (seconds to minutes here) falls on all modes alike; with -i mode
 * each mode runs all its steps before the next is made (one arena at a
 * time: less memory). */
static void measure_rep(bench_t *b, const opts_t *o, mode_result_t *res, int nm, int rep) {
  hring_fusion_t f[MAX_MODES];
  int group = o->by_step ? nm : 1;
  for (int m0 = 0; m0 < nm; m0 += group) {
    int m1 = m0 + group;
    for (int m = m0; m < m1; m++) f[m] = make_fusion(b, o, res[m].mode);
    for (int s = 0; s < o->warmup; s++)
      for (int m = m0; m < m1; m++) one_step(b, o, f[m], &res[m], 0);
    for (int m = m0; m < m1; m++) {
      load_gradients(b, f[m], o->packed);
      step_time_t a = run_step(b, f[m], NULL);
      if (res[m].na < MAX_SAMPLES) res[m].alones[res[m].na++] = a.step;
    }
    for (int s = 0; s < o->steps; s++)
      for (int m = m0; m < m1; m++) one_step(b, o, f[m], &res[m], 1);
    for (int m = m0; m < m1; m++) {
      res[m].buckets = hring_fusion_buckets(f[m], NULL, 0);
      if (b->rank == 0 && rep == 0) printf("#   %-16s plan: %s\n", res[m].mode, hring_fusion_plan(f[m]));
      CHECK(hring_fusion_destroy(f[m]));
    }
  }
}

static void summarize(mode_result_t *res) {
  res->alone = median(res->alones, res->na);
  res->step_med = median(res->steps, res->ns); /* sorts: [0] is the least */
  res->step_min = res->steps[0];
  res->exp_med = median(res->exposed, res->ns);
  res->exp_min = res->exposed[0];
}

/* Compute times from the table's FLOPs, scaled to total seconds. */
static void scale_compute(bench_t *b, double total) {
  const hring_net_t *net = b->net;
  for (int i = 0; i < net->ntensors; i++)
    b->compute_s[i] = net->bwd_flops > 0 ? total * net->tensors[i].bwd_flops / net->bwd_flops : 0;
}

static int bench_net(bench_t *b, const opts_t *o, const char *name) {
  b->net = hring_fusion_net(name);
  if (!b->net) {
    if (b->rank == 0) fprintf(stderr, "fusion_perf: unknown network '%s'\n", name);
    return 2;
  }
  int n = b->net->ntensors;
  b->compute_s = calloc((size_t)n, sizeof(double));
  b->packed = calloc((size_t)n, sizeof(void *));
  if (!b->compute_s || !b->packed) exit(1);
  for (int i = 0; o->packed && i < n; i++)
    if (!(b->packed[i] = malloc(b->net->tensors[i].count * b->esize))) exit(1);
  make_data(b, o->type);
  make_reference(b, o->type);

  double total = o->compute_total;
  if (total <= 0) {
    /* auto: the backward lasts as long as the unfused communication at
     * its fastest of AUTO_PROBES steps spread over a second or more.  The
     * machine's slow spells last seconds: three steps in a row once caught
     * in one set the regime of the whole run (docs/performance.md,
     * fourteenth section). */
    hring_fusion_t f = make_fusion(b, o, "none");
    double fastest = 0;
    for (int s = 0; s < AUTO_PROBES; s++) {
      if (s) sleep_until(now_s() + AUTO_PROBE_GAP_S);
      load_gradients(b, f, o->packed);
      double t = run_step(b, f, NULL).step; /* the slowest rank's: every rank the same */
      if (s == 0 || t < fastest) fastest = t;
    }
    CHECK(hring_fusion_destroy(f));
    total = o->compute_factor * fastest;
  }
  scale_compute(b, total);
  if (b->rank == 0) {
    printf("# %s: %d tensors, %zu elements (%.1f MiB), %d ranks, simulated backward %.1f ms",
           name, n, b->net->params, (double)b->total_bytes / (1 << 20), b->nranks, total * 1e3);
    if (o->compute_total <= 0) printf(" (%.2f x the unfused communication)", o->compute_factor);
    printf("\n");
    fflush(stdout);
  }

  static mode_result_t res[MAX_MODES];
  int nm = 0;
  char modes[256];
  snprintf(modes, sizeof modes, "%s", o->modes);
  for (char *save = NULL, *m = strtok_r(modes, ",", &save); m && nm < MAX_MODES;
       m = strtok_r(NULL, ",", &save)) {
    memset(&res[nm], 0, sizeof res[nm]);
    snprintf(res[nm++].mode, sizeof res[0].mode, "%s", m);
  }
  for (int rep = 0; rep < o->repeats; rep++) measure_rep(b, o, res, nm, rep);
  for (int m = 0; m < nm; m++) summarize(&res[m]);

  int bad = 0;
  if (b->rank == 0) {
    printf("# %-18s %7s %10s %10s %10s %10s %10s %8s %6s\n", "mode", "buckets", "alone(ms)",
           "step-min", "step-med", "exp-min", "exp-med", "overlap", "wrong");
    for (int m = 0; m < nm; m++) {
      mode_result_t *r = &res[m];
      double overlap = r->alone > 0 ? 1 - r->exp_med / r->alone : 0;
      printf("  %-18s %7d %10.2f %10.2f %10.2f %10.2f %10.2f %7.0f%% %6lld\n", r->mode,
             r->buckets, r->alone * 1e3, r->step_min * 1e3, r->step_med * 1e3, r->exp_min * 1e3,
             r->exp_med * 1e3, overlap * 100, r->wrong);
      bad |= r->wrong != 0;
    }
    /* The ratios, when those modes were run. */
    double none = -1, planned = -1, other = -1;
    for (int m = 0; m < nm; m++) {
      if (strcmp(res[m].mode, "none") == 0) none = res[m].exp_med;
      if (strcmp(res[m].mode, "planned") == 0) planned = res[m].exp_med;
      if (strncmp(res[m].mode, "threshold", 9) == 0 || strcmp(res[m].mode, "ddp") == 0)
        if (other < 0 || res[m].exp_med < other) other = res[m].exp_med;
    }
    if (planned >= 0 && none > 0)
      printf("# %s: planned exposed / none = %.3f\n", name, planned / none);
    if (planned >= 0 && other > 0)
      printf("# %s: planned exposed / best of threshold and ddp = %.3f\n", name, planned / other);
    fflush(stdout);
  }
  for (int i = 0; o->packed && i < n; i++) free(b->packed[i]);
  free(b->packed);
  free(b->compute_s);
  free(b->src);
  free(b->ref);
  return bad;
}

static int parse(int argc, char **argv, opts_t *o) {
  *o = (opts_t){.nets = "both", .modes = "none,threshold:64M,ddp,planned", .type = HRING_FLOAT32,
                .repeats = 3, .steps = 5, .warmup = 6, .compute_factor = 1, .by_step = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return -1;
    i++;
    if (!strcmp(a, "-m")) o->nets = v;
    else if (!strcmp(a, "-M")) o->modes = v;
    else if (!strcmp(a, "-r")) {
      if (hring_perf_parse_int(v, 1, MAX_SAMPLES, &o->repeats)) return -1;
    } else if (!strcmp(a, "-n")) {
      if (hring_perf_parse_int(v, 1, MAX_SAMPLES, &o->steps)) return -1;
    } else if (!strcmp(a, "-w")) {
      if (hring_perf_parse_int(v, 0, 1 << 20, &o->warmup)) return -1;
    } else if (!strcmp(a, "-c")) {
      /* Seconds of backward compute per step; 0 or auto: scaled to the
       * unfused communication time. */
      o->compute_total = 0;
      o->compute_factor = 1;
      if (!strncmp(v, "auto:", 5)) {
        if (hring_perf_parse_double(v + 5, 0.01, 100, &o->compute_factor)) return -1;
      } else if (strcmp(v, "auto") && hring_perf_parse_double(v, 0, 3600, &o->compute_total)) {
        return -1;
      }
    }
    else if (!strcmp(a, "-i")) {
      if (strcmp(v, "step") && strcmp(v, "mode")) return -1;
      o->by_step = !strcmp(v, "step");
    } else if (!strcmp(a, "-p")) {
      if (strcmp(v, "packed") && strcmp(v, "arena")) return -1;
      o->packed = !strcmp(v, "packed");
    } else if (!strcmp(a, "-d")) {
      if (!strcmp(v, "float")) o->type = HRING_FLOAT32;
      else if (!strcmp(v, "half")) o->type = HRING_FLOAT16;
      else if (!strcmp(v, "bfloat16")) o->type = HRING_BFLOAT16;
      else return -1;
    } else {
      return -1;
    }
  }
  if (o->repeats < 1 || o->steps < 1 || o->warmup < 0 || o->repeats * o->steps > MAX_SAMPLES)
    return -1;
  return 0;
}

int main(int argc, char **argv) {
  opts_t o;
  if (parse(argc, argv, &o) != 0) {
    fprintf(stderr,
            "usage: fusion_perf [-m resnet50|alexnet|both] [-M mode,...] [-d float|half|bfloat16]\n"
            "                   [-r repeats] [-n steps] [-w warmup] [-c seconds|auto|auto:F] "
            "[-p arena|packed]\n"
            "                   [-i step|mode]\n");
    return 2;
  }
  bench_t bb = {0}, *b = &bb;
  CHECK(hring_comm_init_env(&b->comm));
  hring_comm_rank(b->comm, &b->rank);
  hring_comm_size(b->comm, &b->nranks);
  b->esize = hring_type_size(o.type);
  if (b->rank == 0) {
    const char *prog = getenv("HRING_PROGRESS");
    printf("# fusion_perf: %d ranks, %s gradients, %s, progress %s, %d x %d steps after %d warmup, "
           "modes interleaved by %s\n",
           b->nranks, o.type == HRING_FLOAT32 ? "float" : o.type == HRING_FLOAT16 ? "half" : "bfloat16",
           o.packed ? "packed" : "arena", prog && *prog ? prog : "thread", o.repeats, o.steps,
           o.warmup, o.by_step ? "step" : "mode");
  }
  int rc = 0;
  if (!strcmp(o.nets, "both")) {
    rc |= bench_net(b, &o, "resnet50");
    rc |= bench_net(b, &o, "alexnet");
  } else {
    rc = bench_net(b, &o, o.nets);
  }
  hring_comm_destroy(b->comm);
  return rc;
}
