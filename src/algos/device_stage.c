/*
 * device_stage.c - device allreduce through pinned host buffers, for ranks
 * that cannot map each other's memory (other nodes, until the verbs
 * transport brings GPUDirect RDMA; or HRING_CUDA_IPC=0).
 *
 * Chunk j of the op goes down to a pinned buffer, through the host
 * allreduce, and back up.  On the caller's stream, queued at the call:
 *   down(0) SREADY  down(1) SREADY  wait SDONE(0) up(0)  down(2) SREADY  wait SDONE(1) up(1) ...
 * so that while the proxy reduces chunk j the device already copies chunk
 * j+1 down and chunk j-1 up.  The two buffers alternate; stream order puts
 * every copy down into a buffer after the copy up that last read it.  The
 * reduction runs on the host cores here (the data is there anyway for the
 * network); results are the host path's.
 */
#include <string.h>

#include "algos/device_impl.h"
#include "core/error.h"

hring_result_t hring__dev_stage_alloc(struct hring_dev_state *st) {
  for (int i = 0; i < 2; i++)
    if (st->cu->host_alloc(&st->stage[i], st->stage_chunk) != 0)
      return hring__dev_fail(st, "staging buffers");
  return HRING_SUCCESS;
}

/* Elements of chunk j of op. */
static size_t chunk_count(const struct hring_dev_state *st, const hring_dev_op_t *op, uint32_t j) {
  size_t ce = st->stage_chunk / op->a.esize;
  return j + 1 < op->nchunks ? ce : op->a.count - (size_t)j * ce;
}

hring_result_t hring__dev_stage_enqueue(struct hring_dev_state *st, hring_dev_op_t *op, void *s) {
  const size_t es = op->a.esize, ce = st->stage_chunk / es;
  const char *in = op->a.sendbuf;
  char *out = op->a.recvbuf;
  const uint32_t base = op->chunk_base;
  for (uint32_t j = 0; j <= op->nchunks; j++) {
    if (j < op->nchunks &&
        (st->cu->memcpy_async(st->stage[(base + j) & 1], in + (size_t)j * ce * es,
                              chunk_count(st, op, j) * es, s) ||
         hring__dev_stream_write(st, s, F_SREADY, base + j + 1)))
      return hring__dev_fail(st, "hring_allreduce: queueing a staging copy");
    if (j > 0 && (hring__dev_stream_wait(st, s, F_SDONE, base + j) ||
                  st->cu->memcpy_async(out + (size_t)(j - 1) * ce * es, st->stage[(base + j - 1) & 1],
                                       chunk_count(st, op, j - 1) * es, s)))
      return hring__dev_fail(st, "hring_allreduce: queueing a staging copy");
  }
  if (hring__dev_stream_write(st, s, F_KDONE, op->seq))
    return hring__dev_fail(st, "hring_allreduce: queueing the device work");
  return HRING_SUCCESS;
}

hring_result_t hring__dev_stage_run(struct hring_dev_state *st, const hring_dev_op_t *op) {
  for (uint32_t j = 0; j < op->nchunks; j++) {
    const uint32_t g = op->chunk_base + j;
    HRING_CHECK(hring__dev_wait(st, F_SREADY, g + 1, "a staging copy to host",
                                j == 0 ? &st->ns_input : &st->ns_gpu));
    hring_coll_args_t h = op->a;
    h.sendbuf = h.recvbuf = st->stage[g & 1];
    h.count = chunk_count(st, op, j);
    h.nt = 0;
    HRING_CHECK(hring__allreduce_run(st->comm, &h));
    hring__dev_set(st, F_SDONE, g + 1);
  }
  HRING_CHECK(hring__dev_wait(st, F_KDONE, op->seq, "the copies back to the device", &st->ns_gpu));
  hring__dev_set(st, F_DONE, op->seq);
  return HRING_SUCCESS;
}

void hring__dev_stage_close(struct hring_dev_state *st) {
  for (int i = 0; i < 2; i++) {
    if (st->stage[i]) st->cu->host_free(st->stage[i]);
    st->stage[i] = NULL;
  }
}
