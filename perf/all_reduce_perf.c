/*
 * all_reduce_perf.c - hring_allreduce benchmark, flags and columns of
 * nccl-tests' all_reduce_perf (docs/perf.md).
 */
#include "common.h"

/* A ring allreduce sends 2(n-1)/n of the data over each link, so busbw
 * compares with link bandwidth whatever n is (nccl-tests
 * doc/PERFORMANCE.md). */
static double all_reduce_bus_factor(int nranks) {
  return 2.0 * (nranks - 1) / nranks;
}

static int64_t all_reduce_check(const hring_perf_ctx_t *c, const void *recvbuf) {
  return hring_perf_count_wrong(c, recvbuf, c->n.recvcount, hring_perf_reduce_result,
                                c->rank, 0);
}

static hring_result_t all_reduce_run(const hring_perf_ctx_t *c, const void *sendbuf,
                                     void *recvbuf) {
  return hring_allreduce(sendbuf, recvbuf, c->n.paramcount, c->type, c->op, c->comm,
                         c->stream);
}

static const hring_perf_coll_t all_reduce = {
    .name = "all_reduce",
    .call = "hring_allreduce",
    .uses_op = 1,
    .uses_root = 0,
    .get_counts = hring_perf_counts_same,
    .bus_factor = all_reduce_bus_factor,
    .input = hring_perf_reduce_input,
    .check_output = all_reduce_check,
    .run = all_reduce_run,
};

int main(int argc, char **argv) { return hring_perf_main(argc, argv, &all_reduce); }
