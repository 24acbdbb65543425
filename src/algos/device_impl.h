/*
 * device_impl.h - the device state of a communicator and the functions the
 * proxy runs (device.c queues, device_ipc.c and device_stage.c move data).
 */
#ifndef HRING_ALGOS_DEVICE_IMPL_H
#define HRING_ALGOS_DEVICE_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "algos/device.h"

#define HRING_DEV_QUEUE 256     /* collectives in flight per communicator */
#define HRING_DEV_CACHE 64      /* IPC mappings kept per communicator */

typedef struct {
  hring_coll_args_t a;
  void *event;   /* recorded on the caller's stream: inputs ready */
  uint32_t seq;
} hring_dev_op_t;

/* A peer's buffer mapped here, found by (peer, the peer's allocation id). */
typedef struct {
  int peer;
  uint64_t id;
  void *base;
  uint64_t used; /* last use, for eviction */
} hring_ipc_map_t;

/* An own allocation's exported handle. */
typedef struct {
  void *base;
  uint64_t id;
  size_t size;
  uint8_t handle[HRING_CUDA_IPC_BYTES];
} hring_ipc_export_t;

struct hring_dev_state {
  const hring_cuda_api_t *cu;
  struct hring_comm *comm;
  int dev;
  int hostfn_wait; /* HRING_CUDA_WAIT=hostfn */

  /* The queue, the proxy thread and the flag streams wait on. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t thread;
  int thread_started, stop;
  hring_dev_op_t q[HRING_DEV_QUEUE];
  uint64_t head, tail;          /* q[head % N] is next to run */
  uint32_t *done;               /* pinned: seq of the last completed op */
  uint32_t issued;
  void *events[HRING_DEV_QUEUE];

  /* Proxy side. */
  void *stream;
  int ipc;                      /* 0 not probed, 1 usable, -1 staging */
  size_t oneshot_max, stage_chunk;
  void *scratch;                /* 2 * oneshot_max: one-shot inputs */
  void **peer_scratch;          /* [nranks] every rank's scratch, mapped */
  char *scratch_mapped;         /* [nranks] 1 where peer_scratch came from ipc_open */
  uint64_t ncalls;
  hring_ipc_map_t maps[HRING_DEV_CACHE];
  hring_ipc_export_t exports[HRING_DEV_CACHE];
  uint64_t clock;
  void *stage[2];               /* pinned staging buffers */
  void *stage_ev[2];
};

/* Waits (bounded, abort-aware) for the proxy stream / an event. */
hring_result_t hring__dev_sync(struct hring_dev_state *st);
hring_result_t hring__dev_event_wait(struct hring_dev_state *st, void *ev, const char *what);
/* The plugin's last message as a hring error. */
hring_result_t hring__dev_fail(struct hring_dev_state *st, const char *what);

/* device_ipc.c */
hring_result_t hring__dev_ipc_probe(struct hring_dev_state *st);
hring_result_t hring__dev_oneshot(struct hring_dev_state *st, const hring_coll_args_t *a);
/* Returns HRING_IN_PROGRESS (having moved nothing) when some rank could not
 * export its buffers: the caller stages instead, on every rank alike. */
hring_result_t hring__dev_twoshot(struct hring_dev_state *st, const hring_coll_args_t *a);
void hring__dev_ipc_close(struct hring_dev_state *st);

/* device_stage.c */
hring_result_t hring__dev_staged(struct hring_dev_state *st, const hring_coll_args_t *a);
void hring__dev_stage_close(struct hring_dev_state *st);

/* Multi-input reduction on the proxy stream: dst = srcs[0] op ... op
 * srcs[n-1] for any n >= 2 (split into launches of HRING_CUDA_MAX_SRCS). */
hring_result_t hring__dev_reduce(struct hring_dev_state *st, void *dst, const void **srcs, int n,
                                 size_t count, hring_datatype_t type, hring_redop_t op, int div);

#endif
