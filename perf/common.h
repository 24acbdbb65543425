/*
 * common.h - the driver shared by the nccl-tests-compatible benchmarks
 * (all_reduce_perf and its siblings).
 *
 * The driver owns everything a benchmark has in common: the command line
 * (nccl-tests' flags), the communicator (hring_comm_init_env), the buffers,
 * warmup, timing, aggregation across ranks, result checking and the
 * nccl-tests table.  A benchmark is one hring_perf_coll_t describing its
 * collective, passed to hring_perf_main(), as nccl-tests' src/common.h does
 * with its testColl structs.  docs/perf.md documents flags and columns.
 *
 * Data model.  Every value a benchmark writes or expects is a small integer,
 * produced by a value function of (rank, element index).  Small integers are
 * exact in every type (float16 and bfloat16 included) and stay exact in any
 * reduction order, so results are compared bit for bit.  A value function
 * must depend on the index i only through i modulo hring_perf_period(): the
 * helpers encode one period once and then copy and compare whole runs of it.
 */
#ifndef HRING_PERF_COMMON_H
#define HRING_PERF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "hring.h"

/* Element counts of one call for a given size, as nccl-tests'
 * getCollByteCount defines them. */
typedef struct {
  size_t sendcount;  /* elements of the send buffer */
  size_t recvcount;  /* elements of the receive buffer */
  size_t paramcount; /* the count passed to the call */
  /* In place, the input lies at recvbuf + send_inplace_offset * rank elements
   * and the output at recvbuf + recv_inplace_offset * rank elements. */
  size_t send_inplace_offset;
  size_t recv_inplace_offset;
} hring_perf_counts_t;

/* What one measured call is: handed to every callback of a collective. */
typedef struct {
  hring_comm_t comm;
  int rank;
  int nranks;
  hring_datatype_t type;
  size_t type_size;
  hring_redop_t op; /* HRING_SUM for collectives that take no op */
  int root;         /* 0 for collectives that take no root */
  void *stream;     /* cudaStream_t with device buffers, else NULL */
  hring_perf_counts_t n;
} hring_perf_ctx_t;

/* The exact value of element i of a buffer of `rank` (see the data model
 * above).  The result must be an integer that fits the context's type. */
typedef int64_t (*hring_perf_value_fn)(const hring_perf_ctx_t *c, int rank,
                                       size_t i);

/* One collective.  Every slot must be filled. */
typedef struct {
  const char *name; /* "all_reduce": the program is name "_perf" */
  const char *call; /* the hring call measured, named in error messages */
  int uses_op;      /* 0: the redop column says "none" and -o is ignored */
  int uses_root;    /* 0: the root column says -1 */
  void (*get_counts)(size_t count, int nranks, hring_perf_counts_t *out);
  /* busbw = algbw * bus_factor(nranks) (nccl-tests doc/PERFORMANCE.md). */
  double (*bus_factor)(int nranks);
  /* Element i of rank `rank`'s input (n.sendcount elements). */
  hring_perf_value_fn input;
  /* Number of elements of this rank's output (at recvbuf) that differ from
   * what the collective must produce there. */
  int64_t (*check_output)(const hring_perf_ctx_t *c, const void *recvbuf);
  /* One call of the collective. */
  hring_result_t (*run)(const hring_perf_ctx_t *c, const void *sendbuf,
                        void *recvbuf);
  /* Optional (0 leaves them off; all_reduce uses neither): */
  /* Each rank's part of the buffer is rounded down to a multiple of this
   * many bytes before get_counts sees the count, as nccl-tests' reduce
   * scatter and all_gather round theirs to 16 bytes. */
  size_t part_align_bytes;
  /* The call takes host buffers only: device buffers are never opened. */
  int host_only;
} hring_perf_coll_t;

/* Runs the benchmark: parses argv, measures, prints on rank 0 and returns
 * the process exit status (0 all correct, 1 wrong results or a library
 * error, 2 bad command line). */
int hring_perf_main(int argc, char **argv, const hring_perf_coll_t *coll);

/* Period of every value function, in elements: 30 * nranks, a multiple of
 * 2, 3, 5 and nranks, which the reduction patterns below need. */
size_t hring_perf_period(int nranks);

/* The reduction pattern: rank `rank`'s input for op c->op, chosen so that
 * every partial result in any order is exact for every type with up to 64
 * ranks (docs/perf.md lists the values). */
int64_t hring_perf_reduce_input(const hring_perf_ctx_t *c, int rank, size_t i);

/* The reduction of hring_perf_reduce_input over all ranks, computed in
 * closed form (`rank` is ignored). */
int64_t hring_perf_reduce_result(const hring_perf_ctx_t *c, int rank,
                                 size_t i);

/* A pattern that differs from rank to rank (for gathers and broadcasts,
 * where a piece put in the wrong place must show): (i mod 30) + (rank mod
 * 64), exact in every type. */
int64_t hring_perf_rank_input(const hring_perf_ctx_t *c, int rank, size_t i);

/* nccl-tests' counts of allreduce, broadcast and reduce: every rank sends
 * and receives `count` elements, in place at the start of both buffers. */
void hring_perf_counts_same(size_t count, int nranks, hring_perf_counts_t *n);

/* busbw = algbw where every byte crosses each link once whatever n is
 * (broadcast, reduce: nccl-tests doc/PERFORMANCE.md). */
double hring_perf_bus_factor_one(int nranks);

/* nccl-tests' name of a type or op, and a type's size in bytes (the
 * benchmark keeps its own table rather than asking the library it
 * measures). */
const char *hring_perf_type_name(hring_datatype_t t);
size_t hring_perf_type_size(hring_datatype_t t);
const char *hring_perf_op_name(hring_redop_t op);

/* -d and -o values: a name, an alias (fp16, bf16, ...) or "all" (*out =
 * -1); 0, or -1 when unknown. */
int hring_perf_parse_type(const char *s, int *out);
int hring_perf_parse_op(const char *s, int *out);

/* malloc that exits with a message when memory runs out. */
void *hring_perf_xmalloc(size_t n);

/* Writes fn(c, who, first + j) to element j of buf, 0 <= j < count. */
void hring_perf_fill(const hring_perf_ctx_t *c, void *buf, size_t count,
                     hring_perf_value_fn fn, int who, size_t first);

/* Number of elements j < count of buf that are not bit-identical to
 * fn(c, who, first + j). */
int64_t hring_perf_count_wrong(const hring_perf_ctx_t *c, const void *buf,
                               size_t count, hring_perf_value_fn fn, int who,
                               size_t first);

/* Stores the integer v as one element of `type` at dst (rounded to nearest
 * even where the type cannot hold it exactly). */
void hring_perf_encode(hring_datatype_t type, int64_t v, void *dst);

/* Option values: a size with an optional K/M/G suffix (powers of 1024,
 * fractions allowed), an integer in [lo, hi], a finite number in [lo, hi];
 * 0, or -1 when invalid (*out then unchanged). */
int hring_perf_parse_size(const char *s, size_t *out);
int hring_perf_parse_int(const char *s, int lo, int hi, int *out);
int hring_perf_parse_double(const char *s, double lo, double hi, double *out);

#endif
