/*
 * device_impl.h - the device state of a communicator, shared by device.c
 * (queue, proxy, flags), device_ipc.c (ranks that map each other's memory)
 * and device_stage.c (ranks that stage through host memory).
 *
 * Everything a device collective does on the GPU is queued on the caller's
 * stream when the call is made: copies, the reduction kernel, and stream
 * memory operations that write and wait on flags in pinned host memory.
 * The proxy thread only reads and writes those flags and talks to the
 * peers over the host transports; it makes no CUDA call on the data path.
 * (A first design ran the copies and kernels on a proxy stream while the
 * caller's stream waited: on the GPU that stream could share a hardware
 * queue with the waiting one and never run - a hang seen on an H100.)
 */
#ifndef HRING_ALGOS_DEVICE_IMPL_H
#define HRING_ALGOS_DEVICE_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "algos/device.h"

#define HRING_DEV_QUEUE 256 /* collectives in flight per communicator */
#define HRING_DEV_CACHE 64  /* IPC exports and mappings kept per communicator */

/* The flags: 32-bit counters that only grow, one per 64-byte line.
 * Written by the stream: READY (inputs in place, IPC path), KDONE (the
 * op's device work is done), SREADY (chunks copied to host).  Written by
 * the proxy: GO (kernel arguments filled in), DONE (op complete), SDONE
 * (chunks reduced). */
enum { F_READY, F_GO, F_KDONE, F_DONE, F_SREADY, F_SDONE, F_COUNT };
#define HRING_DEV_FLAG_STRIDE 16 /* uint32 per line */

/* One exported buffer: the peer maps handle and adds off. */
typedef struct {
  uint64_t base, id, off;
  uint8_t handle[HRING_CUDA_IPC_BYTES];
} hring_buf_rec_t;

typedef struct {
  hring_coll_args_t a;
  uint32_t seq;
  int staged;
  uint32_t chunk_base, nchunks; /* staged: chunks base+1 .. base+nchunks */
  size_t shard_off, shard_cnt;  /* IPC: this rank's shard, in elements */
  int32_t export_ok;            /* IPC: both buffers exported */
  hring_buf_rec_t buf[2];       /* IPC: send, recv */
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
  uint8_t handle[HRING_CUDA_IPC_BYTES];
} hring_ipc_export_t;

struct hring_dev_state {
  const hring_cuda_api_t *cu;
  struct hring_comm *comm;
  int dev;
  int hostfn;      /* HRING_CUDA_WAIT=hostfn */
  int ipc;         /* 1: IPC path, -1: staging (agreed by the probe) */

  /* The queue and the proxy thread. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t thread;
  int thread_started, stop;
  hring_dev_op_t q[HRING_DEV_QUEUE];
  uint64_t head, tail; /* q[head % N] is next to run */

  /* Caller's side. */
  uint32_t *flags;             /* pinned, F_COUNT lines */
  uint32_t issued, chunks;     /* last op seq, last staged chunk */
  void *last_stream;
  hring_cuda_push_t *args;     /* pinned, one per queue slot: the proxy writes */
  hring_cuda_push_t *dargs;    /* device copies, what the kernel reads */
  size_t stage_chunk;
  void *stage[2];              /* pinned staging buffers */
  hring_ipc_export_t exports[HRING_DEV_CACHE];
  uint64_t export_clock;

  /* Proxy's side. */
  hring_ipc_map_t maps[HRING_DEV_CACHE];
  uint64_t clock;
  uint64_t n_ops, ns_input, ns_gpu, ns_total; /* printed at INFO on close */
};

static inline uint32_t *hring__dev_flag(struct hring_dev_state *st, int f) {
  return st->flags + f * HRING_DEV_FLAG_STRIDE;
}
static inline void hring__dev_set(struct hring_dev_state *st, int f, uint32_t v) {
  __atomic_store_n(hring__dev_flag(st, f), v, __ATOMIC_RELEASE);
}
/* Waits (bounded, abort-aware) until flag f reaches v; *acc += the time. */
hring_result_t hring__dev_wait(struct hring_dev_state *st, int f, uint32_t v, const char *what,
                               uint64_t *acc);
/* The plugin's last message as a hring error. */
hring_result_t hring__dev_fail(struct hring_dev_state *st, const char *what);
/* Queues, on stream s, a write / a wait of flag f. */
int hring__dev_stream_write(struct hring_dev_state *st, void *s, int f, uint32_t v);
int hring__dev_stream_wait(struct hring_dev_state *st, void *s, int f, uint32_t v);

/* device_ipc.c */
hring_result_t hring__dev_ipc_probe(struct hring_dev_state *st);
/* Caller's side: the shard, the exported buffers, the stream work. */
void hring__dev_ipc_prepare(struct hring_dev_state *st, hring_dev_op_t *op);
hring_result_t hring__dev_ipc_enqueue(struct hring_dev_state *st, hring_dev_op_t *op, void *s);
hring_result_t hring__dev_ipc_run(struct hring_dev_state *st, const hring_dev_op_t *op);
void hring__dev_ipc_close(struct hring_dev_state *st);

/* device_stage.c */
hring_result_t hring__dev_stage_alloc(struct hring_dev_state *st);
hring_result_t hring__dev_stage_enqueue(struct hring_dev_state *st, hring_dev_op_t *op, void *s);
hring_result_t hring__dev_stage_run(struct hring_dev_state *st, const hring_dev_op_t *op);
void hring__dev_stage_close(struct hring_dev_state *st);

#endif
