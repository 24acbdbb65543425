/* latency.c - placeholder until the latency algorithms land: they are
 * refused with a clear error, never run. */
#include "algos/algo.h"
#include "core/error.h"

hring_result_t hring__allreduce_rdouble(struct hring_comm *comm, const hring_coll_args_t *a) {
  (void)comm, (void)a;
  return hring__err(HRING_ERR_UNSUPPORTED, "HRING_ALGO=rdouble: not available in this build");
}
hring_result_t hring__allreduce_rabenseifner(struct hring_comm *comm, const hring_coll_args_t *a,
                                             size_t chunk_bytes) {
  (void)comm, (void)a, (void)chunk_bytes;
  return hring__err(HRING_ERR_UNSUPPORTED, "HRING_ALGO=rabenseifner: not available in this build");
}
hring_result_t hring__allreduce_tree(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes) {
  (void)comm, (void)a, (void)chunk_bytes;
  return hring__err(HRING_ERR_UNSUPPORTED, "HRING_ALGO=tree: not available in this build");
}
