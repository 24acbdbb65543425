/*
 * common.c - the benchmark driver behind all_reduce_perf and its siblings:
 * command line, timing, and the nccl-tests table (the data it sends and
 * checks: values.c).
 *
 * How a size is measured follows our peer harness for OpenMPI and MPICH
 * (mpi_allreduce_perf.c, methodology in the peers' RESULTS.md), so that the
 * rows of both can be put side by side: per size, warmup ops, then `iters`
 * back-to-back ops after a barrier, time = elapsed / iters on each rank,
 * aggregated over ranks (max by default), the minimum over -r repetitions.
 */
#include "common.h"
#include "device.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes after each receive buffer that stay poisoned: a write past the end
 * of the output is counted as wrong (nccl-tests' "out of bounds" name). */
#define PERF_GUARD_BYTES 64
/* Buffers are page-aligned (which is also 64-byte aligned), as the peer
 * harness allocates them, so neither side gets an alignment advantage. */
#define PERF_ALIGN 4096
/* Adaptive iteration count: the peer harness' target and clamp. */
#define PERF_DEFAULT_TARGET_S 0.1
#define PERF_MIN_ITERS 2
#define PERF_MAX_ITERS 1000
/* Default warmup and its reduction for large sizes (peer harness: 5 ops,
 * 2 from 8 MiB, 1 from 64 MiB) - large ops are slow and already warm. */
#define PERF_DEFAULT_WARMUP 5
#define PERF_WARMUP_2_FROM ((size_t)8 << 20)
#define PERF_WARMUP_1_FROM ((size_t)64 << 20)
/* Width of one "#  Rank ..." line gathered to rank 0. */
#define PERF_RANK_LINE 192

/* ---------------------------------------------------------------------- */
/* Command line.                                                           */

typedef struct {
  size_t minbytes, maxbytes, stepbytes, stepfactor;
  int iters;       /* 0: adapt to `target` */
  int warmup;
  int warmup_set;  /* -w given: taken as is, not reduced for large sizes */
  double target;   /* seconds per timed loop when iterations adapt */
  int check;       /* number of checks per measurement, 0 = none */
  int op;          /* -1: all */
  int type;        /* -1: all */
  int average;     /* 0 rank 0, 1 avg, 2 min, 3 max */
  int reps;
  int inplace;
  int root;
  int host_mem;    /* --host: host buffers even where a GPU exists */
  double min_bw;   /* NCCL_TESTS_MIN_BW in GB/s; < 0: not set */
} perf_opts_t;

static void perf_usage(FILE *f, const char *prog) {
  fprintf(f,
          "usage: %s [options]   (one rank per process; launch with hring-run -n N,\n"
          "       mpirun or srun)\n"
          "  -b, --minbytes SIZE      smallest size (default 8); K, M, G suffixes\n"
          "  -e, --maxbytes SIZE      largest size (default 64M)\n"
          "  -f, --stepfactor N       multiply the size by N (default 2; 0 or 1: use -i)\n"
          "  -i, --stepbytes SIZE     add SIZE to the size (default 1M); given without\n"
          "                           -f it replaces the default factor\n"
          "  -n, --iters N            fixed number of timed ops per size (default: adapt\n"
          "                           to -T, clamped to [%d, %d])\n"
          "      --target_time SEC    seconds per timed loop when -n is not given (0.1)\n"
          "  -T, --timeout SEC        end any stuck call after SEC s (sets HRING_TIMEOUT_MS;\n"
          "                           0: the library's default)\n"
          "  -w, --warmup_iters N     warmup ops per size (default 5: 2 from 8M, 1 from\n"
          "                           64M; a value given is used as is, at least 1)\n"
          "      --repetitions N      timed loops per size, the fastest reported (1)\n"
          "  -c, --check N            check results N times per size (default 1; 0 off)\n"
          "  -o, --op OP              sum|prod|max|min|avg|all (default sum)\n"
          "  -d, --datatype TYPE      int8|uint8|int32|uint32|int64|uint64|half|float|\n"
          "                           double|bfloat16|all (default float)\n"
          "  -a, --average N          time across ranks: 0 rank 0, 1 avg, 2 min, 3 max\n"
          "                           (default 3)\n"
          "  -I, --in_place 0|1       also measure in place (default 1)\n"
          "  -r, --root N             root rank of rooted collectives (default 0)\n"
          "      --host               host buffers (default: device buffers when CUDA has\n"
          "                           a device, each call on a stream, as nccl-tests)\n"
          "  -z, --blocking 0|1       accepted; calls are always blocking\n"
          "  -g, --ngpus 1            accepted with 1 only\n"
          "  -t, --nthreads 1         accepted with 1 only\n"
          "  -h, --help               this text\n"
          "See docs/perf.md.\n",
          prog, PERF_MIN_ITERS, PERF_MAX_ITERS);
}

/* Size with an optional K/M/G suffix (powers of 1024), as nccl-tests
 * parses it; fractions like 1.5M are accepted.  Returns -1 if invalid. */
int hring_perf_parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !(v >= 0)) return -1;
  switch (*end) {
    case 'k': case 'K': v *= 1024.0; end++; break;
    case 'm': case 'M': v *= 1024.0 * 1024.0; end++; break;
    case 'g': case 'G': v *= 1024.0 * 1024.0 * 1024.0; end++; break;
    default: break;
  }
  if (*end != '\0' || v >= 18446744073709551616.0) return -1;
  *out = (size_t)v;
  return 0;
}

int hring_perf_parse_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno || !(v >= lo && v <= hi) || isinf(v)) return -1;
  *out = v;
  return 0;
}

int hring_perf_parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (end == s || *end != '\0' || errno || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

/* The launcher's rank before the communicator exists: only one process of
 * the job should print usage errors. */
static int perf_env_rank_is_zero(void) {
  const char *s = getenv("HRING_RANK");
  if (!s) s = getenv("RANK");
  if (!s) s = getenv("OMPI_COMM_WORLD_RANK");
  if (!s) s = getenv("PMIX_RANK");
  if (!s) s = getenv("SLURM_PROCID");
  return !s || atoi(s) == 0;
}

enum { PERF_OPT_TARGET = 1000, PERF_OPT_REPS, PERF_OPT_HOST };

/* Returns 0 to run, 1 after --help (exit 0), -1 on a bad command line. */
static int perf_parse_args(int argc, char **argv, perf_opts_t *o, int loud,
                           const char *prog) {
  static const struct option longopts[] = {
      {"minbytes", required_argument, 0, 'b'},
      {"maxbytes", required_argument, 0, 'e'},
      {"stepbytes", required_argument, 0, 'i'},
      {"stepfactor", required_argument, 0, 'f'},
      {"iters", required_argument, 0, 'n'},
      {"warmup_iters", required_argument, 0, 'w'},
      {"check", required_argument, 0, 'c'},
      {"op", required_argument, 0, 'o'},
      {"datatype", required_argument, 0, 'd'},
      {"average", required_argument, 0, 'a'},
      {"target_time", required_argument, 0, PERF_OPT_TARGET},
      {"timeout", required_argument, 0, 'T'},
      {"repetitions", required_argument, 0, PERF_OPT_REPS},
      {"in_place", required_argument, 0, 'I'},
      {"blocking", required_argument, 0, 'z'},
      {"ngpus", required_argument, 0, 'g'},
      {"nthreads", required_argument, 0, 't'},
      {"root", required_argument, 0, 'r'},
      {"host", no_argument, 0, PERF_OPT_HOST},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int factor_set = 0, step_set = 0, one;
  long factor = 2;
  opterr = loud;
  for (;;) {
    int ch = getopt_long(argc, argv, "b:e:i:f:n:w:c:o:d:a:T:r:I:z:g:t:h", longopts,
                         NULL);
    if (ch == -1) break;
    const char *what = NULL;
    switch (ch) {
      case 'b':
        if (hring_perf_parse_size(optarg, &o->minbytes)) what = "-b";
        break;
      case 'e':
        if (hring_perf_parse_size(optarg, &o->maxbytes)) what = "-e";
        break;
      case 'i':
        if (hring_perf_parse_size(optarg, &o->stepbytes)) what = "-i";
        step_set = 1;
        break;
      case 'f': {
        int f = 0;
        if (hring_perf_parse_int(optarg, 0, 1 << 30, &f)) what = "-f";
        factor = f;
        factor_set = 1;
        break;
      }
      case 'n':
        if (hring_perf_parse_int(optarg, 1, 1 << 30, &o->iters)) what = "-n";
        break;
      case 'w':
        if (hring_perf_parse_int(optarg, 0, 1 << 30, &o->warmup)) what = "-w";
        o->warmup_set = 1;
        break;
      case 'c':
        if (hring_perf_parse_int(optarg, 0, 1 << 20, &o->check)) what = "-c";
        break;
      case 'o':
        if (hring_perf_parse_op(optarg, &o->op)) what = "-o";
        break;
      case 'd':
        if (hring_perf_parse_type(optarg, &o->type)) what = "-d";
        break;
      case 'a':
        if (hring_perf_parse_int(optarg, 0, 3, &o->average)) what = "-a";
        break;
      case 'T': {
        int secs = 0;
        if (hring_perf_parse_int(optarg, 0, 1 << 20, &secs)) {
          what = "-T";
        } else if (secs > 0) {
          /* nccl-tests' -T: a bound on any wait, here the library's own. */
          char ms[32];
          snprintf(ms, sizeof ms, "%lld", (long long)secs * 1000);
          setenv("HRING_TIMEOUT_MS", ms, 1);
        }
        break;
      }
      case PERF_OPT_HOST:
        o->host_mem = 1;
        break;
      case PERF_OPT_TARGET:
        if (hring_perf_parse_double(optarg, 0, HUGE_VAL, &o->target)) what = "--target_time";
        break;
      case PERF_OPT_REPS:
        if (hring_perf_parse_int(optarg, 1, 1 << 20, &o->reps)) what = "--repetitions";
        break;
      case 'I':
        if (hring_perf_parse_int(optarg, 0, 1, &o->inplace)) what = "-I";
        break;
      case 'z':
        if (hring_perf_parse_int(optarg, 0, 1, &one)) what = "-z";
        break;
      case 'g':
      case 't':
        /* One rank per process, no threads: nccl-tests' -g/-t only make
         * sense with their default of 1. */
        if (hring_perf_parse_int(optarg, 1, 1, &one)) what = ch == 'g' ? "-g" : "-t";
        break;
      case 'r':
        if (hring_perf_parse_int(optarg, 0, 1 << 30, &o->root)) what = "-r";
        break;
      case 'h':
        if (loud) perf_usage(stdout, prog);
        return 1;
      default:
        if (loud) perf_usage(stderr, prog);
        return -1;
    }
    if (what) {
      if (loud) {
        fprintf(stderr, "%s: invalid value '%s' for %s\n", prog, optarg, what);
        perf_usage(stderr, prog);
      }
      return -1;
    }
  }
  if (optind < argc) {
    if (loud) {
      fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
      perf_usage(stderr, prog);
    }
    return -1;
  }
  /* nccl-tests grows sizes by the factor when it is > 1, else by stepbytes.
   * Our default factor is 2 (the peer harness'), so -i alone means linear
   * steps, as it does with nccl-tests' disabled default factor. */
  if (!factor_set && step_set) factor = 1;
  o->stepfactor = (size_t)factor;
  if (o->stepfactor <= 1 && o->stepbytes == 0) {
    if (loud) fprintf(stderr, "%s: -i must be > 0 when -f is 0 or 1\n", prog);
    return -1;
  }
  if (o->minbytes > o->maxbytes) {
    if (loud)
      fprintf(stderr, "%s: invalid sizes: minbytes %zu > maxbytes %zu\n", prog,
              o->minbytes, o->maxbytes);
    return -1;
  }
  /* Read before the run, so that a typo is not a pass at the end. */
  const char *minbw = getenv("NCCL_TESTS_MIN_BW");
  if (minbw && hring_perf_parse_double(minbw, 0, HUGE_VAL, &o->min_bw)) {
    if (loud) fprintf(stderr, "%s: NCCL_TESTS_MIN_BW='%s' is not a bandwidth in GB/s\n", prog, minbw);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* The run: communicator, buffers, results.                                */

typedef struct {
  const hring_perf_coll_t *coll;
  const perf_opts_t *o;
  const char *prog;
  hring_comm_t comm;
  int rank, nranks;
  unsigned char *sendbuf, *recvbuf; /* maxbytes + guard each */
  size_t bufbytes;
  perf_dev_t *dev;     /* device buffers mirroring sendbuf/recvbuf, or NULL */
  char memdesc[300];
  double bw_sum;
  int bw_rows;
  int64_t wrong_total;
} perf_run_t;

/* A failed library call ends the benchmark: the message names the call and
 * carries the library's own explanation. */
static void perf_check_rc(perf_run_t *R, hring_result_t rc, const char *what) {
  if (rc == HRING_SUCCESS) return;
  /* Before the communicator exists the rank is not known. */
  char who[32] = "";
  if (R->rank >= 0) snprintf(who, sizeof who, "rank %d: ", R->rank);
  fprintf(stderr, "%s: %s%s failed: %s: %s\n", R->prog, who, what, hring_strerror(rc),
          hring_last_error());
  fflush(stderr);
  if (R->comm) hring_comm_destroy(R->comm);
  exit(1);
}

static double perf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Starts the ranks' timed loops together. */
static void perf_barrier(perf_run_t *R) {
  perf_check_rc(R, hring_barrier(R->comm, NULL), "hring_barrier");
}

/* how: 0 rank 0's value, 1 average, 2 min, 3 max over ranks. */
static double perf_aggregate(perf_run_t *R, double v, int how) {
  double in = v, out = 0;
  hring_redop_t op = HRING_MAX;
  switch (how) {
    case 0: in = R->rank == 0 ? v : 0.0; op = HRING_SUM; break;
    case 1: op = HRING_SUM; break;
    case 2: op = HRING_MIN; break;
    default: op = HRING_MAX; break;
  }
  perf_check_rc(R, hring_allreduce(&in, &out, 1, HRING_FLOAT64, op, R->comm, NULL),
                "hring_allreduce (time aggregation)");
  return how == 1 ? out / R->nranks : out;
}

static int64_t perf_sum_i64(perf_run_t *R, int64_t v) {
  int64_t out = 0;
  perf_check_rc(R, hring_allreduce(&v, &out, 1, HRING_INT64, HRING_SUM, R->comm, NULL),
                "hring_allreduce (#wrong)");
  return out;
}

/* Where one measurement reads and writes: the nccl-tests in-place layout. */
typedef struct {
  unsigned char *send, *recv;
  size_t extent; /* bytes of recvbuf the call may touch; the guard follows */
} perf_place_t;

static perf_place_t perf_place(perf_run_t *R, const hring_perf_ctx_t *c, int inplace) {
  perf_place_t p;
  size_t ts = c->type_size, r = (size_t)R->rank;
  if (inplace) {
    p.send = R->recvbuf + c->n.send_inplace_offset * r * ts;
    p.recv = R->recvbuf + c->n.recv_inplace_offset * r * ts;
    p.extent = (c->n.sendcount > c->n.recvcount ? c->n.sendcount : c->n.recvcount) * ts;
  } else {
    p.send = R->sendbuf;
    p.recv = R->recvbuf;
    p.extent = c->n.recvcount * ts;
  }
  return p;
}

static int perf_in_recv(const perf_run_t *R, const unsigned char *p) {
  return p >= R->recvbuf && p < R->recvbuf + R->bufbytes;
}

/* Input in place; output and guard poisoned (0xff bytes: NaN in every
 * floating type, -1 or the maximum in the integer ones), so an output the
 * library never wrote cannot pass the check. */
static void perf_prepare(perf_run_t *R, const hring_perf_ctx_t *c,
                         const perf_place_t *p, int poison) {
  if (poison) memset(R->recvbuf, 0xff, p->extent + PERF_GUARD_BYTES);
  hring_perf_fill(c, p->send, c->n.sendcount, R->coll->input, R->rank, 0);
  if (R->dev && (perf_dev_up(R->dev, 1, 0, R->recvbuf, p->extent + PERF_GUARD_BYTES) ||
                 (!perf_in_recv(R, p->send) &&
                  perf_dev_up(R->dev, 0, 0, R->sendbuf, c->n.sendcount * c->type_size))))
    perf_check_rc(R, HRING_ERR_SYSTEM, "uploading the input");
}

/* The buffer a call gets: the host mirror itself, or its device twin. */
static void *perf_buf(perf_run_t *R, unsigned char *host) {
  if (!R->dev) return host;
  if (perf_in_recv(R, host))
    return perf_dev_ptr(R->dev, 1, (size_t)(host - R->recvbuf));
  return perf_dev_ptr(R->dev, 0, (size_t)(host - R->sendbuf));
}

/* One call; with device buffers it is queued on the stream. */
static void perf_run_once(perf_run_t *R, const hring_perf_ctx_t *c, const perf_place_t *p) {
  perf_check_rc(R, R->coll->run(c, perf_buf(R, p->send), perf_buf(R, p->recv)), R->coll->call);
}

/* Device buffers: waits for the stream, then brings the output, the input
 * (out of place: it must be unchanged) and the guard back to the mirrors. */
static void perf_finish(perf_run_t *R, const hring_perf_ctx_t *c, const perf_place_t *p) {
  if (!R->dev) return;
  if (perf_dev_sync(R->dev) ||
      perf_dev_down(R->dev, 1, 0, R->recvbuf, p->extent + PERF_GUARD_BYTES) ||
      (!perf_in_recv(R, p->send) &&
       perf_dev_down(R->dev, 0, 0, R->sendbuf, c->n.sendcount * c->type_size)))
    perf_check_rc(R, HRING_ERR_SYSTEM, "reading the output back");
  hring_result_t async = HRING_SUCCESS;
  hring_comm_get_async_error(R->comm, &async);
  perf_check_rc(R, async, "the device collective (asynchronous error)");
}

/* Runs `iters` ops back to back after a barrier; this rank's seconds per op. */
static double perf_timed_loop(perf_run_t *R, const hring_perf_ctx_t *c,
                              const perf_place_t *p, int iters) {
  perf_barrier(R);
  double t0 = perf_now();
  for (int it = 0; it < iters; it++) perf_run_once(R, c, p);
  if (R->dev && perf_dev_sync(R->dev)) perf_check_rc(R, HRING_ERR_SYSTEM, "the stream");
  return (perf_now() - t0) / iters;
}

/* Wrong elements of this rank: its output, its input where it must be left
 * untouched (out of place), and the guard after the output. */
static int64_t perf_local_wrong(perf_run_t *R, const hring_perf_ctx_t *c,
                                const perf_place_t *p, int inplace) {
  int64_t wrong = R->coll->check_output(c, p->recv);
  if (!inplace)
    wrong += hring_perf_count_wrong(c, p->send, c->n.sendcount, R->coll->input,
                                    R->rank, 0);
  const unsigned char *g = R->recvbuf + p->extent;
  for (size_t k = 0; k < PERF_GUARD_BYTES; k += c->type_size) {
    for (size_t b = 0; b < c->type_size; b++)
      if (g[k + b] != 0xff) { wrong++; break; }
  }
  return wrong;
}

static int perf_warmup_ops(const perf_opts_t *o, size_t bytes) {
  int w = o->warmup;
  if (!o->warmup_set) {
    if (bytes >= PERF_WARMUP_1_FROM) w = 1;
    else if (bytes >= PERF_WARMUP_2_FROM && w > 2) w = 2;
  }
  /* At least one: it synchronises the ranks' first op and, when the
   * iteration count adapts, gives the time per op it is computed from. */
  return w < 1 ? 1 : w;
}

/* One column group: returns the time per op (aggregated) and the #wrong
 * summed over ranks (-1 when not checked). */
static double perf_measure(perf_run_t *R, const hring_perf_ctx_t *c, int inplace,
                           size_t bytes, int64_t *wrong_out) {
  const perf_opts_t *o = R->o;
  perf_place_t p = perf_place(R, c, inplace);
  perf_prepare(R, c, &p, o->check > 0);

  /* Warmup, timed as one loop: its per-op time, the max over ranks so that
   * all ranks derive the same count, sets the iterations. */
  int warm = perf_warmup_ops(o, bytes);
  double tw = perf_aggregate(R, perf_timed_loop(R, c, &p, warm), 3);
  int iters = o->iters;
  if (iters == 0) {
    double want = o->target / (tw > 1e-9 ? tw : 1e-9);
    iters = want < PERF_MIN_ITERS ? PERF_MIN_ITERS
            : want > PERF_MAX_ITERS ? PERF_MAX_ITERS
                                    : (int)want;
  }

  double best = INFINITY;
  for (int rep = 0; rep < o->reps; rep++) {
    double t = perf_aggregate(R, perf_timed_loop(R, c, &p, iters), o->average);
    if (t < best) best = t;
  }

  int64_t wrong = -1;
  for (int k = 0; k < o->check; k++) {
    /* Out of place, the first check is on the output of the timed loop;
     * in place (whose timed loop reduced its own output again and again)
     * and for every further check, it is on one op over fresh data, as
     * nccl-tests checks. */
    if (inplace || k > 0) {
      perf_prepare(R, c, &p, 1);
      perf_run_once(R, c, &p);
    }
    perf_finish(R, c, &p);
    wrong = perf_sum_i64(R, perf_local_wrong(R, c, &p, inplace));
    if (wrong) break;
  }
  *wrong_out = wrong;
  return best;
}

/* ---------------------------------------------------------------------- */
/* Output (rank 0).                                                        */

/* nccl-tests' time column: fewer decimals as the value grows. */
static void perf_format_time(char *s, size_t n, double usec) {
  if (usec >= 10000.0) snprintf(s, n, "%7.0f", usec);
  else if (usec >= 100.0) snprintf(s, n, "%7.1f", usec);
  else snprintf(s, n, "%7.2f", usec);
}

static void perf_print_group(perf_run_t *R, size_t bytes, double sec, int64_t wrong) {
  char ts[32], ws[32];
  double algbw = sec > 0 ? (double)bytes / 1e9 / sec : 0.0;
  double busbw = algbw * R->coll->bus_factor(R->nranks);
  perf_format_time(ts, sizeof ts, sec * 1e6);
  if (wrong < 0) snprintf(ws, sizeof ws, "%5s", "N/A");
  else snprintf(ws, sizeof ws, "%5lld", (long long)wrong);
  printf("  %7s  %6.2f  %6.2f  %s", ts, algbw, busbw, ws);
  R->bw_sum += busbw;
  R->bw_rows++;
}

/* First line of /proc/cpuinfo's "model name", the CPU counterpart of the
 * GPU name nccl-tests prints. */
static void perf_cpu_name(char *out, size_t n) {
  snprintf(out, n, "host");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    char *v = strchr(line, ':');
    if (!v) break;
    v++;
    while (*v == ' ' || *v == '\t') v++;
    v[strcspn(v, "\n")] = '\0';
    snprintf(out, n, "%s", v);
    break;
  }
  fclose(f);
}

/* nccl-tests' header: parameters, then one line per rank (gathered with a
 * byte-sum allreduce, each rank writing only its own slot), then columns. */
static void perf_print_header(perf_run_t *R) {
  const perf_opts_t *o = R->o;
  size_t total = (size_t)R->nranks * PERF_RANK_LINE;
  char *lines = hring_perf_xmalloc(total);
  memset(lines, 0, total);
  char host[128] = "unknown", cpu[96];
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  perf_cpu_name(cpu, sizeof cpu);
  char line[512];
  int len = R->dev ? snprintf(line, sizeof line, "#  Rank %2d Group %2d Pid %6d on %10s %s",
                             R->rank, 0, (int)getpid(), host, R->memdesc)
                   : snprintf(line, sizeof line,
                              "#  Rank %2d Group %2d Pid %6d on %10s device %2d [cpu] %s",
                              R->rank, 0, (int)getpid(), host, 0, cpu);
  /* Cut to the slot, keeping the newline and the terminating zero. */
  if (len < 0) len = 0;
  if (len > PERF_RANK_LINE - 2) len = PERF_RANK_LINE - 2;
  char *slot = lines + (size_t)R->rank * PERF_RANK_LINE;
  memcpy(slot, line, (size_t)len);
  slot[len] = '\n';
  perf_check_rc(R, hring_allreduce(lines, lines, total, HRING_UINT8, HRING_SUM,
                                   R->comm, NULL),
                "hring_allreduce (rank lines)");
  if (R->rank == 0) {
    int version = 0;
    hring_get_version(&version);
    char iters[32];
    if (o->iters) snprintf(iters, sizeof iters, "%d", o->iters);
    else snprintf(iters, sizeof iters, "auto");
    printf("# nThread 1 nGpus 1 minBytes %zu maxBytes %zu step: %zu(%s) warmup iters: %d "
           "iters: %s agg iters: 1 validation: %d graph: 0\n",
           o->minbytes, o->maxbytes, o->stepfactor > 1 ? o->stepfactor : o->stepbytes,
           o->stepfactor > 1 ? "factor" : "bytes", o->warmup, iters, o->check);
    static const char *const agg[] = {"rank 0", "average", "min", "max"};
    printf("# %s on hring %d.%d.%d: nranks %d, %s\n", R->coll->name, version / 10000,
           version / 100 % 100, version % 100, R->nranks,
           R->dev ? "device buffers, calls queued on a stream (timed to its completion)"
                  : "host memory, blocking calls");
    printf("# time per op: elapsed of the timed loop / iters, %s over ranks (-a %d), "
           "fastest of %d repetition(s) (--repetitions)\n",
           agg[o->average], o->average, o->reps);
    if (!o->iters)
      printf("# iters per size: %.3f s (--target_time) / time of a warmup op, clamped to [%d, %d]\n",
             o->target, PERF_MIN_ITERS, PERF_MAX_ITERS);
    printf("#\n# Using devices\n");
    for (int r = 0; r < R->nranks; r++) fputs(lines + (size_t)r * PERF_RANK_LINE, stdout);
    printf("#\n");
    printf("# %10s  %12s  %8s  %6s  %6s           out-of-place%s\n", "", "", "", "", "",
           o->inplace ? "                       in-place          " : "");
    printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s", "size", "count", "type",
           "redop", "root", "time", "algbw", "busbw", "#wrong");
    if (o->inplace) printf("  %7s  %6s  %6s %6s", "time", "algbw", "busbw", "#wrong");
    printf("\n# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s", "(B)", "(elements)", "",
           "", "", "(us)", "(GB/s)", "(GB/s)", "");
    if (o->inplace) printf("  %7s  %6s  %6s  %5s", "(us)", "(GB/s)", "(GB/s)", "");
    printf("\n");
    fflush(stdout);
  }
  free(lines);
}

/* All sizes for one type and op. */
static void perf_sweep(perf_run_t *R, hring_datatype_t type, hring_redop_t op) {
  const perf_opts_t *o = R->o;
  const hring_perf_coll_t *coll = R->coll;
  hring_perf_ctx_t c;
  memset(&c, 0, sizeof c);
  c.comm = R->comm;
  c.rank = R->rank;
  c.nranks = R->nranks;
  c.type = type;
  c.type_size = hring_perf_type_size(type);
  c.op = op;
  c.root = coll->uses_root ? o->root : 0;
  c.stream = perf_dev_stream(R->dev);

  for (size_t size = o->minbytes; size <= o->maxbytes;) {
    size_t count = size / c.type_size;
    if (coll->part_align_bytes > c.type_size) {
      /* floor(count / (n a)) * n a: every part floor(count / n) rounded
       * down to a elements, as nccl-tests computes it. */
      size_t unit = coll->part_align_bytes / c.type_size * (size_t)R->nranks;
      count = count / unit * unit;
    }
    coll->get_counts(count, R->nranks, &c.n);
    size_t sb = c.n.sendcount * c.type_size, rb = c.n.recvcount * c.type_size;
    size_t bytes = sb > rb ? sb : rb;
    int64_t w1 = -1, w2 = -1;
    double t1 = perf_measure(R, &c, 0, bytes, &w1), t2 = 0;
    if (o->inplace) t2 = perf_measure(R, &c, 1, bytes, &w2);
    if (R->rank == 0) {
      printf("%12zu  %12zu  %8s  %6s  %6d", bytes, c.n.paramcount,
             hring_perf_type_name(type), coll->uses_op ? hring_perf_op_name(op) : "none",
             coll->uses_root ? c.root : -1);
      perf_print_group(R, bytes, t1, w1);
      if (o->inplace) perf_print_group(R, bytes, t2, w2);
      printf("\n");
      fflush(stdout);
    }
    /* #wrong is already summed over ranks, so every rank knows the verdict
     * and exits with the same status. */
    R->wrong_total += (w1 > 0 ? w1 : 0) + (w2 > 0 ? w2 : 0);
    /* Stop when the step makes no progress (size 0 with a factor) or
     * would overflow. */
    size_t next = o->stepfactor > 1 ? size * o->stepfactor : size + o->stepbytes;
    if (next <= size || (o->stepfactor > 1 && next / o->stepfactor != size)) break;
    size = next;
  }
}

int hring_perf_main(int argc, char **argv, const hring_perf_coll_t *coll) {
  const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  perf_opts_t o = {.minbytes = 8,
                   .maxbytes = (size_t)64 << 20,
                   .stepbytes = (size_t)1 << 20,
                   .stepfactor = 2,
                   .iters = 0,
                   .warmup = PERF_DEFAULT_WARMUP,
                   .target = PERF_DEFAULT_TARGET_S,
                   .check = 1,
                   .op = HRING_SUM,
                   .type = HRING_FLOAT32,
                   .average = 3,
                   .reps = 1,
                   .inplace = 1,
                   .root = 0,
                   .min_bw = -1};
  setvbuf(stdout, NULL, _IOLBF, 0);
  int pa = perf_parse_args(argc, argv, &o, perf_env_rank_is_zero(), prog);
  if (pa > 0) return 0;
  if (pa < 0) return 2;

  perf_run_t R;
  memset(&R, 0, sizeof R);
  R.rank = -1;
  R.coll = coll;
  R.o = &o;
  R.prog = prog;
  perf_check_rc(&R, hring_comm_init_env(&R.comm), "hring_comm_init_env");
  perf_check_rc(&R, hring_comm_rank(R.comm, &R.rank), "hring_comm_rank");
  perf_check_rc(&R, hring_comm_size(R.comm, &R.nranks), "hring_comm_size");
  if (coll->uses_root && o.root >= R.nranks) {
    if (R.rank == 0)
      fprintf(stderr, "%s: --root %d is not a rank of %d\n", prog, o.root, R.nranks);
    hring_comm_destroy(R.comm);
    return 2;
  }

  /* Both buffers once, at the largest size plus the guard, every page
   * touched now so that no page fault lands in a timed loop. */
  R.bufbytes = (o.maxbytes + PERF_GUARD_BYTES + PERF_ALIGN - 1) / PERF_ALIGN * PERF_ALIGN;
  void *s = NULL, *r = NULL;
  if (posix_memalign(&s, PERF_ALIGN, R.bufbytes) || posix_memalign(&r, PERF_ALIGN, R.bufbytes)) {
    fprintf(stderr, "%s: rank %d: cannot allocate 2 x %zu bytes\n", prog, R.rank, R.bufbytes);
    hring_comm_destroy(R.comm);
    return 1;
  }
  R.sendbuf = s;
  R.recvbuf = r;
  memset(R.sendbuf, 0, R.bufbytes);
  memset(R.recvbuf, 0xff, R.bufbytes);
  if (!o.host_mem && !coll->host_only) {
    const char *lr = getenv("HRING_LOCAL_RANK");
    if (!lr) lr = getenv("LOCAL_RANK");
    if (!lr) lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!lr) lr = getenv("SLURM_LOCALID");
    R.dev = perf_dev_open(R.bufbytes, lr ? atoi(lr) : 0, R.memdesc, sizeof R.memdesc);
  }

  perf_print_header(&R);
  int t0 = o.type < 0 ? 0 : o.type, t1 = o.type < 0 ? HRING_NUM_TYPES - 1 : o.type;
  int op0 = o.op, op1 = o.op;
  if (!coll->uses_op) op0 = op1 = HRING_SUM;
  else if (o.op < 0) { op0 = 0; op1 = HRING_NUM_OPS - 1; }
  for (int t = t0; t <= t1; t++)
    for (int op = op0; op <= op1; op++) perf_sweep(&R, (hring_datatype_t)t, (hring_redop_t)op);

  /* nccl-tests' footer; NCCL_TESTS_MIN_BW turns the average into a pass /
   * fail threshold (90% of it), as there. */
  int status = R.wrong_total ? 1 : 0;
  if (R.rank == 0) {
    double avg = R.bw_rows ? R.bw_sum / R.bw_rows : 0.0;
    const char *verdict = "";
    if (o.min_bw >= 0) {
      int ok = avg >= 0.9 * o.min_bw;
      verdict = ok ? "OK" : "FAILED";
      if (!ok) status = 1;
    }
    printf("# Out of bounds values : %lld %s\n", (long long)R.wrong_total,
           R.wrong_total ? "FAILED" : "OK");
    printf("# Avg bus bandwidth    : %g %s\n", avg, verdict);
    printf("#\n");
    fflush(stdout);
  }
  hring_comm_destroy(R.comm);
  perf_dev_close(R.dev);
  free(s);
  free(r);
  return status;
}

void hring_perf_counts_same(size_t count, int nranks, hring_perf_counts_t *n) {
  (void)nranks;
  n->sendcount = count;
  n->recvcount = count;
  n->paramcount = count;
  n->send_inplace_offset = 0;
  n->recv_inplace_offset = 0;
}

double hring_perf_bus_factor_one(int nranks) {
  (void)nranks;
  return 1.0;
}
