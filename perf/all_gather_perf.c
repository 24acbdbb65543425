/*
 * all_gather_perf.c - hring_allgather benchmark, flags and columns of
 * nccl-tests' all_gather_perf (docs/perf.md).
 */
#include "common.h"

/* nccl-tests' AllGatherGetCollByteCount: each rank sends one part and
 * receives all; in place, the input is this rank's part of the receive
 * buffer.  The driver has already rounded the parts to 16 bytes
 * (part_align_bytes). */
static void all_gather_counts(size_t count, int nranks, hring_perf_counts_t *n) {
  size_t base = count / (size_t)nranks;
  n->sendcount = base;
  n->recvcount = base * (size_t)nranks;
  n->paramcount = base;
  n->send_inplace_offset = base;
  n->recv_inplace_offset = 0;
}

/* Each rank receives the (n-1)/n of the output it did not have
 * (nccl-tests doc/PERFORMANCE.md). */
static double all_gather_bus_factor(int nranks) { return (double)(nranks - 1) / nranks; }

/* Part p must hold rank p's input: the inputs differ by rank, so a part in
 * the wrong place is counted. */
static int64_t all_gather_check(const hring_perf_ctx_t *c, const void *recvbuf) {
  int64_t wrong = 0;
  for (int p = 0; p < c->nranks; p++)
    wrong += hring_perf_count_wrong(
        c, (const char *)recvbuf + (size_t)p * c->n.sendcount * c->type_size, c->n.sendcount,
        hring_perf_rank_input, p, 0);
  return wrong;
}

static hring_result_t all_gather_run(const hring_perf_ctx_t *c, const void *sendbuf,
                                     void *recvbuf) {
  return hring_allgather(sendbuf, recvbuf, c->n.paramcount, c->type, c->comm, c->stream);
}

static const hring_perf_coll_t all_gather = {
    .name = "all_gather",
    .call = "hring_allgather",
    .uses_op = 0,
    .uses_root = 0,
    .get_counts = all_gather_counts,
    .bus_factor = all_gather_bus_factor,
    .input = hring_perf_rank_input,
    .check_output = all_gather_check,
    .run = all_gather_run,
    .part_align_bytes = 16,
    .host_only = 1,
};

int main(int argc, char **argv) { return hring_perf_main(argc, argv, &all_gather); }
