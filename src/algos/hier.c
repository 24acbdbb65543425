/* hier.c - placeholder until the hierarchical ring lands: refused with a
 * clear error, never run. */
#include "algos/algo.h"
#include "core/error.h"

hring_result_t hring__allreduce_hier(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes) {
  (void)comm, (void)a, (void)chunk_bytes;
  return hring__err(HRING_ERR_UNSUPPORTED, "HRING_ALGO=hier: not available in this build");
}
hring_result_t hring__allreduce_hier2d(struct hring_comm *comm, const hring_coll_args_t *a,
                                       size_t chunk_bytes) {
  (void)comm, (void)a, (void)chunk_bytes;
  return hring__err(HRING_ERR_UNSUPPORTED, "HRING_ALGO=hier2d: not available in this build");
}
