/* wire.c - the collective header check (wire.h). */
#include "transport/wire.h"

#include "core/error.h"

const char *hring__wire_kind_name(uint32_t kind) {
  switch (kind) {
    case HRING_COLL_NONE: return "no collective";
    case HRING_COLL_ALLREDUCE: return "allreduce";
    case HRING_COLL_DEVICE: return "device allreduce";
    case HRING_COLL_REDUCE_SCATTER: return "reduce_scatter";
    case HRING_COLL_ALLGATHER: return "allgather";
    case HRING_COLL_BROADCAST: return "broadcast";
    case HRING_COLL_REDUCE: return "reduce";
    case HRING_COLL_BARRIER: return "barrier";
    case HRING_COLL_PROBE: return "device set-up";
    case HRING_WIRE_BYE: return "leave notice";
    case HRING_WIRE_FAIL: return "failure notice";
    default: return "unknown kind";
  }
}

hring_result_t hring__wire_check(const hring_wire_hdr_t *got, const hring_wire_hdr_t *mine,
                                 int rank, int peer, const char *peer_host) {
  if (mine->kind == HRING_COLL_NONE) return HRING_SUCCESS;
  if (got->magic != HRING_WIRE_MAGIC || got->version != HRING_WIRE_VERSION)
    return hring__err(HRING_ERR_REMOTE,
                      "rank %d: message from rank %d (%s) has magic 0x%08x version %u, expected "
                      "0x%08x version %u (another program or hring version?)",
                      rank, peer, peer_host, got->magic, got->version, HRING_WIRE_MAGIC,
                      HRING_WIRE_VERSION);
  if (got->comm_id != mine->comm_id)
    return hring__err(HRING_ERR_REMOTE, "rank %d: message from rank %d (%s) belongs to another "
                      "communicator", rank, peer, peer_host);
  if (got->seq == mine->seq && got->kind == mine->kind && got->count == mine->count &&
      got->type == mine->type && got->op == mine->op && got->root == mine->root)
    return HRING_SUCCESS;
  return hring__err(HRING_ERR_INVALID_USAGE,
                    "ranks disagree: rank %d is in %s #%llu (count %llu, type %u, op %u, root %d) "
                    "while rank %d (%s) sent for %s #%llu (count %llu, type %u, op %u, root %d); "
                    "every rank must make the same calls with the same arguments",
                    rank, hring__wire_kind_name(mine->kind), (unsigned long long)mine->seq,
                    (unsigned long long)mine->count, mine->type, mine->op, mine->root, peer,
                    peer_host, hring__wire_kind_name(got->kind), (unsigned long long)got->seq,
                    (unsigned long long)got->count, got->type, got->op, got->root);
}
