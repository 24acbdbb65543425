/*
 * broadcast_perf.c - hring_broadcast benchmark, flags and columns of
 * nccl-tests' broadcast_perf (docs/perf.md).
 */
#include "common.h"

/* Every rank's input differs from root's, so in place a rank that was
 * skipped keeps values that are counted wrong. */
static int64_t broadcast_check(const hring_perf_ctx_t *c, const void *recvbuf) {
  return hring_perf_count_wrong(c, recvbuf, c->n.recvcount, hring_perf_rank_input, c->root, 0);
}

static hring_result_t broadcast_run(const hring_perf_ctx_t *c, const void *sendbuf,
                                    void *recvbuf) {
  return hring_broadcast(sendbuf, recvbuf, c->n.paramcount, c->type, c->root, c->comm,
                         c->stream);
}

static const hring_perf_coll_t broadcast = {
    .name = "broadcast",
    .call = "hring_broadcast",
    .uses_op = 0,
    .uses_root = 1,
    .get_counts = hring_perf_counts_same,
    .bus_factor = hring_perf_bus_factor_one,
    .input = hring_perf_rank_input,
    .check_output = broadcast_check,
    .run = broadcast_run,
    .host_only = 1,
};

int main(int argc, char **argv) { return hring_perf_main(argc, argv, &broadcast); }
