/* coll.c - argument checks and host prelude shared by the collectives (coll.h). */
#include "algos/coll.h"

#include <stdatomic.h>
#include <stdint.h>

#include "algos/device.h"
#include "core/error.h"
#include "core/progress.h"

hring_result_t hring__coll_check(const char *fn, const void *sendbuf, const void *recvbuf,
                                 size_t count, hring_datatype_t type, int uses_op,
                                 hring_redop_t op, struct hring_comm *comm) {
  HRING_CHECK(hring__coll_check_count(fn, count, type, comm));
  if (uses_op && (unsigned)op >= HRING_NUM_OPS)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: unknown reduction op %d", fn, (int)op);
  if (count > 0 && (!sendbuf || !recvbuf))
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: NULL %s buffer with count %zu", fn,
                      sendbuf ? "receive" : "send", count);
  return hring__coll_state_check(fn, comm);
}

hring_result_t hring__coll_check_count(const char *fn, size_t count, hring_datatype_t type,
                                       struct hring_comm *comm) {
  if ((unsigned)type >= HRING_NUM_TYPES)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: unknown data type %d", fn, (int)type);
  size_t es = hring_type_size(type);
  if (count > SIZE_MAX / es / (size_t)comm->nranks)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: count %zu of %zu-byte elements overflows",
                      fn, count, es);
  return HRING_SUCCESS;
}

hring_result_t hring__coll_state_check(const char *fn, struct hring_comm *comm) {
  if (atomic_load(&comm->aborted))
    return hring__err(HRING_ERR_INVALID_USAGE, "%s: communicator was aborted", fn);
  if (comm->async_error != HRING_SUCCESS)
    return hring__err(HRING_ERR_INVALID_USAGE,
                      "%s: communicator failed earlier and must be destroyed (%s: %s)", fn,
                      hring_strerror(comm->async_error), comm->async_msg);
  return HRING_SUCCESS;
}

hring_result_t hring__coll_claim(const char *fn, struct hring_comm *comm, int *held) {
  int waited = 0;
  HRING_CHECK(hring__progress_claim(comm, held, &waited));
  hring_result_t r = waited ? hring__coll_state_check(fn, comm) : HRING_SUCCESS;
  if (r != HRING_SUCCESS) {
    hring__coll_release(comm, *held);
    *held = 0;
  }
  return r;
}

void hring__coll_release(struct hring_comm *comm, int held) {
  if (held) hring__progress_release(comm);
}

hring_result_t hring__coll_host_prelude(struct hring_comm *comm, void *stream) {
  if (stream) HRING_CHECK(hring__dev_stream_sync(comm, stream));
  return hring__dev_drain(comm);
}
