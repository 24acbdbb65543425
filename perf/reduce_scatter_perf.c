/*
 * reduce_scatter_perf.c - hring_reduce_scatter benchmark, flags and
 * columns of nccl-tests' reduce_scatter_perf (docs/perf.md).
 */
#include "common.h"

/* nccl-tests' ReduceScatterGetCollByteCount: each rank sends nranks parts
 * and receives its own; in place, the input starts the receive buffer and
 * the output is this rank's part of it.  The driver has already rounded
 * the parts to 16 bytes (part_align_bytes). */
static void reduce_scatter_counts(size_t count, int nranks, hring_perf_counts_t *n) {
  size_t base = count / (size_t)nranks;
  n->sendcount = base * (size_t)nranks;
  n->recvcount = base;
  n->paramcount = base;
  n->send_inplace_offset = 0;
  n->recv_inplace_offset = base;
}

/* Each rank sends and receives (n-1)/n of the input over its links
 * (nccl-tests doc/PERFORMANCE.md). */
static double reduce_scatter_bus_factor(int nranks) { return (double)(nranks - 1) / nranks; }

static int64_t reduce_scatter_check(const hring_perf_ctx_t *c, const void *recvbuf) {
  return hring_perf_count_wrong(c, recvbuf, c->n.recvcount, hring_perf_reduce_result, c->rank,
                                (size_t)c->rank * c->n.recvcount);
}

static hring_result_t reduce_scatter_run(const hring_perf_ctx_t *c, const void *sendbuf,
                                         void *recvbuf) {
  return hring_reduce_scatter(sendbuf, recvbuf, c->n.paramcount, c->type, c->op, c->comm,
                              c->stream);
}

static const hring_perf_coll_t reduce_scatter = {
    .name = "reduce_scatter",
    .call = "hring_reduce_scatter",
    .uses_op = 1,
    .uses_root = 0,
    .get_counts = reduce_scatter_counts,
    .bus_factor = reduce_scatter_bus_factor,
    .input = hring_perf_reduce_input,
    .check_output = reduce_scatter_check,
    .run = reduce_scatter_run,
    .part_align_bytes = 16,
    .host_only = 1,
};

int main(int argc, char **argv) { return hring_perf_main(argc, argv, &reduce_scatter); }
