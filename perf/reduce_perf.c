/*
 * reduce_perf.c - hring_reduce benchmark, flags and columns of nccl-tests'
 * reduce_perf (docs/perf.md).
 */
#include "common.h"

/* The result exists on root only; elsewhere the receive buffer is unused
 * and, as in nccl-tests, not checked (the out-of-place input and the guard
 * bytes still are, on every rank). */
static int64_t reduce_check(const hring_perf_ctx_t *c, const void *recvbuf) {
  if (c->rank != c->root) return 0;
  return hring_perf_count_wrong(c, recvbuf, c->n.recvcount, hring_perf_reduce_result, c->rank, 0);
}

static hring_result_t reduce_run(const hring_perf_ctx_t *c, const void *sendbuf, void *recvbuf) {
  return hring_reduce(sendbuf, recvbuf, c->n.paramcount, c->type, c->op, c->root, c->comm,
                      c->stream);
}

static const hring_perf_coll_t reduce = {
    .name = "reduce",
    .call = "hring_reduce",
    .uses_op = 1,
    .uses_root = 1,
    .get_counts = hring_perf_counts_same,
    .bus_factor = hring_perf_bus_factor_one,
    .input = hring_perf_reduce_input,
    .check_output = reduce_check,
    .run = reduce_run,
    .host_only = 1,
};

int main(int argc, char **argv) { return hring_perf_main(argc, argv, &reduce); }
