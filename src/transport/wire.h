/*
 * wire.h - what every message says about the collective it belongs to, and
 * the notices a rank leaves for its peers when it leaves or fails.
 *
 * Each message (a shared-memory slot, a tcp frame) carries the sender's
 * current collective: communicator id, sequence number, kind, count, type,
 * op and root.  The receiver compares it with its own when it takes the
 * message, so ranks that call different collectives, or the same one with
 * a different count, type, op or root, get an error naming both sides
 * instead of a hang or wrong data.
 */
#ifndef HRING_TRANSPORT_WIRE_H
#define HRING_TRANSPORT_WIRE_H

#include <stdint.h>

#include "hring.h"

#define HRING_WIRE_MAGIC 0x68725731u /* "hrW1" */
#define HRING_WIRE_VERSION 1u

/* Kinds of collective (and of notice). */
enum {
  HRING_COLL_NONE = 0,      /* transport-level traffic: not checked */
  HRING_COLL_ALLREDUCE = 1,
  HRING_COLL_DEVICE = 2,    /* the host exchanges of a device allreduce */
  HRING_COLL_PROBE = 3,     /* the device set-up probe */
  HRING_COLL_REDUCE_SCATTER = 4,
  HRING_COLL_ALLGATHER = 5,
  HRING_COLL_BROADCAST = 6,
  HRING_COLL_REDUCE = 7,
  HRING_COLL_BARRIER = 8,
  HRING_WIRE_BYE = 0x100,   /* notice: the peer destroyed its communicator */
  HRING_WIRE_FAIL = 0x101,  /* notice: the peer's communicator failed */
};

typedef struct {
  uint32_t magic, version;
  uint32_t kind, type;
  uint32_t op;
  int32_t root;
  uint64_t comm_id, seq, count;
} hring_wire_hdr_t;

_Static_assert(sizeof(hring_wire_hdr_t) == 48, "wire header layout");

/* States a rank leaves for a peer (shm: in the FIFO; tcp: a notice frame). */
enum { HRING_PEER_LIVE = 0, HRING_PEER_LEFT = 1, HRING_PEER_FAILED = 2 };

/* Checks a received header against this rank's current collective.
 * HRING_SUCCESS when they agree (or this rank runs no checked collective);
 * else an error naming the peer, both collectives and their arguments.
 * Pure: reads only its arguments (fuzzed by tests/fuzz/fuzz_wire.c). */
hring_result_t hring__wire_check(const hring_wire_hdr_t *got, const hring_wire_hdr_t *mine,
                                 int rank, int peer, const char *peer_host);

/* "allreduce", "device allreduce", ... */
const char *hring__wire_kind_name(uint32_t kind);

#endif
