/*
 * fuzz_wire.c - libFuzzer target for the check of the collective header
 * every message carries (src/transport/wire.c): a received header (the
 * first 48 bytes) against this rank's own (the next 48), plus the peer
 * rank from the following bytes.  It must never crash nor read beyond its
 * input, and must accept a header only when it equals the rank's own.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hring_wire_hdr_t got, mine;
  if (size < 2 * sizeof got) return 0;
  memcpy(&got, data, sizeof got);
  memcpy(&mine, data + sizeof got, sizeof mine);
  int peer = size > 2 * sizeof got ? (int)data[2 * sizeof got] - 128 : 0;
  hring_result_t r = hring__wire_check(&got, &mine, 0, peer, "fuzz");
  /* Accepted means: no checked collective here, or the same collective. */
  if (r == HRING_SUCCESS && mine.kind != HRING_COLL_NONE &&
      (got.magic != HRING_WIRE_MAGIC || got.version != HRING_WIRE_VERSION ||
       got.comm_id != mine.comm_id || got.seq != mine.seq || got.kind != mine.kind ||
       got.count != mine.count || got.type != mine.type || got.op != mine.op ||
       got.root != mine.root))
    abort();
  return 0;
}
