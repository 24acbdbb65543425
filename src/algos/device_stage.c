/*
 * device_stage.c - device allreduce through pinned host buffers, for ranks
 * that cannot map each other's memory (other nodes, until the verbs
 * transport brings GPUDirect RDMA; or HRING_CUDA_IPC=0).
 *
 * Chunk c goes device -> host, through the host allreduce, and back.  Two
 * pinned buffers alternate, so that while the host reduces chunk c the
 * device copies chunk c+1 down and chunk c-1 up.  All copies share the
 * proxy stream, so the copy down into a buffer is ordered after the copy
 * up that last read it.  The reduction runs on the host cores here (the
 * data is there anyway for the network); results are the host path's.
 */
#include <string.h>

#include "algos/device_impl.h"
#include "core/error.h"

static hring_result_t stage_alloc(struct hring_dev_state *st) {
  if (st->stage[0]) return HRING_SUCCESS;
  for (int i = 0; i < 2; i++)
    if (st->cu->host_alloc(&st->stage[i], st->stage_chunk) != 0 ||
        st->cu->event_create(&st->stage_ev[i]) != 0) {
      hring_result_t r = hring__dev_fail(st, "staging buffers");
      hring__dev_stage_close(st);
      return r;
    }
  return HRING_SUCCESS;
}

hring_result_t hring__dev_staged(struct hring_dev_state *st, const hring_coll_args_t *a) {
  HRING_CHECK(stage_alloc(st));
  const size_t es = a->esize, ce = st->stage_chunk / es;
  const size_t nch = (a->count + ce - 1) / ce;
  const char *in = a->sendbuf;
  char *out = a->recvbuf;
#define CHUNK_CNT(c) ((c) + 1 < nch ? ce : a->count - (c) * ce)
  if (st->cu->memcpy_async(st->stage[0], in, CHUNK_CNT(0) * es, st->stream) != 0 ||
      st->cu->event_record(st->stage_ev[0], st->stream) != 0)
    return hring__dev_fail(st, "staging copy to host");
  for (size_t c = 0; c < nch; c++) {
    void *buf = st->stage[c & 1];
    HRING_CHECK(hring__dev_event_wait(st, st->stage_ev[c & 1], "a staging copy"));
    if (c + 1 < nch &&
        (st->cu->memcpy_async(st->stage[(c + 1) & 1], in + (c + 1) * ce * es, CHUNK_CNT(c + 1) * es,
                              st->stream) != 0 ||
         st->cu->event_record(st->stage_ev[(c + 1) & 1], st->stream) != 0))
      return hring__dev_fail(st, "staging copy to host");
    hring_coll_args_t h = *a;
    h.sendbuf = buf;
    h.recvbuf = buf;
    h.count = CHUNK_CNT(c);
    h.nt = 0;
    HRING_CHECK(hring__allreduce_run(st->comm, &h));
    if (st->cu->memcpy_async(out + c * ce * es, buf, CHUNK_CNT(c) * es, st->stream) != 0)
      return hring__dev_fail(st, "staging copy to device");
  }
#undef CHUNK_CNT
  return hring__dev_sync(st);
}

void hring__dev_stage_close(struct hring_dev_state *st) {
  for (int i = 0; i < 2; i++) {
    if (st->stage[i]) st->cu->host_free(st->stage[i]);
    if (st->stage_ev[i]) st->cu->event_destroy(st->stage_ev[i]);
    st->stage[i] = st->stage_ev[i] = NULL;
  }
}
