/*
 * device.c - device collectives: the state, the caller's side (queue the
 * op and its stream work), the proxy thread (run ops in order on the
 * host), drain and close.  device_impl.h gives the design.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "algos/device_impl.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

hring_result_t hring__dev_fail(struct hring_dev_state *st, const char *what) {
  return hring__err(HRING_ERR_SYSTEM, "rank %d: %s: %s", st->comm->rank, what,
                    st->cu->last_error());
}

hring_result_t hring__dev_wait(struct hring_dev_state *st, int f, uint32_t v, const char *what,
                               uint64_t *acc) {
  const uint32_t *flag = hring__dev_flag(st, f);
  if ((int32_t)(__atomic_load_n(flag, __ATOMIC_ACQUIRE) - v) >= 0) return HRING_SUCCESS;
  struct hring_comm *comm = st->comm;
  hring_waiter_t w;
  hring__waiter_init(&w, comm);
  uint64_t t0 = hring__now_ns();
  while ((int32_t)(__atomic_load_n(flag, __ATOMIC_ACQUIRE) - v) < 0) {
    if (atomic_load(&comm->async_error) != HRING_SUCCESS)
      return hring__err(HRING_ERR_INVALID_USAGE, "rank %d: the communicator failed", comm->rank);
    HRING_CHECK(hring__waiter_pause(&w, what, comm->rank));
  }
  if (acc) *acc += hring__now_ns() - t0;
  return HRING_SUCCESS;
}

int hring__dev_stream_write(struct hring_dev_state *st, void *s, int f, uint32_t v) {
  return st->cu->stream_write_flag(s, hring__dev_flag(st, f), v, st->hostfn);
}

int hring__dev_stream_wait(struct hring_dev_state *st, void *s, int f, uint32_t v) {
  return st->cu->stream_wait_flag(s, hring__dev_flag(st, f), v, st->hostfn);
}

/* ---- the proxy ---- */

/* After a failure, or for an op skipped on a failed communicator: every
 * flag the op's stream work waits on is raised, so no stream waits
 * forever; the kernel finds nothing to do.  The error is the
 * communicator's (hring_comm_get_async_error). */
static void release(struct hring_dev_state *st, const hring_dev_op_t *op) {
  if (!op->staged) __atomic_store_n(&st->args[op->seq % HRING_DEV_QUEUE].count, 0, __ATOMIC_RELEASE);
  else hring__dev_set(st, F_SDONE, op->chunk_base + op->nchunks);
  hring__dev_set(st, F_GO, op->seq);
  hring__dev_set(st, F_DONE, op->seq);
}

static void *proxy_main(void *arg) {
  struct hring_dev_state *st = arg;
  struct hring_comm *comm = st->comm;
  hring__log_set_rank(comm->rank);
  /* For IPC mappings only: the proxy queues no device work. */
  if (st->cu->set_device(st->dev) != 0) hring__comm_fail(comm, hring__dev_fail(st, "proxy device"));
  pthread_mutex_lock(&st->lock);
  for (;;) {
    while (st->head == st->tail && !st->stop) pthread_cond_wait(&st->cond, &st->lock);
    if (st->head == st->tail) break;
    hring_dev_op_t op = st->q[st->head % HRING_DEV_QUEUE];
    pthread_mutex_unlock(&st->lock);
    hring_result_t r = HRING_ERR_INVALID_USAGE;
    if (atomic_load(&comm->async_error) == HRING_SUCCESS && !atomic_load(&comm->aborted)) {
      uint64_t t0 = hring__now_ns();
      r = op.staged ? hring__dev_stage_run(st, &op) : hring__dev_ipc_run(st, &op);
      st->ns_total += hring__now_ns() - t0;
      st->n_ops++;
      if (r != HRING_SUCCESS) hring__comm_fail(comm, r);
    }
    if (r != HRING_SUCCESS) release(st, &op);
    pthread_mutex_lock(&st->lock);
    st->head++;
    pthread_cond_broadcast(&st->cond);
  }
  pthread_mutex_unlock(&st->lock);
  return NULL;
}

/* ---- creation and the caller's side ---- */

static void state_free(struct hring_dev_state *st) {
  const hring_cuda_api_t *cu = st->cu;
  hring__dev_ipc_close(st);
  hring__dev_stage_close(st);
  if (st->args) cu->host_free(st->args);
  if (st->dargs) cu->mem_free(st->dargs);
  if (st->flags) cu->host_free(st->flags);
  pthread_cond_destroy(&st->cond);
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static hring_result_t state_init(struct hring_dev_state *st) {
  const hring_cuda_api_t *cu = st->cu;
  size_t fbytes = (size_t)F_COUNT * HRING_DEV_FLAG_STRIDE * sizeof(uint32_t);
  if (cu->set_device(st->dev) != 0 || cu->host_alloc((void **)&st->flags, fbytes) != 0 ||
      cu->host_alloc((void **)&st->args, sizeof(hring_cuda_push_t) * HRING_DEV_QUEUE) != 0 ||
      cu->mem_alloc((void **)&st->dargs, sizeof(hring_cuda_push_t) * HRING_DEV_QUEUE) != 0)
    return hring__dev_fail(st, "device state");
  memset(st->flags, 0, fbytes);
  memset(st->args, 0, sizeof(hring_cuda_push_t) * HRING_DEV_QUEUE);
  /* Collective: every rank makes its first device call at the same point. */
  HRING_CHECK(hring__dev_ipc_probe(st));
  if (st->ipc < 0) HRING_CHECK(hring__dev_stage_alloc(st));
  if (pthread_create(&st->thread, NULL, proxy_main, st) != 0)
    return hring__err(HRING_ERR_SYSTEM, "device proxy thread: %s", strerror(errno));
  st->thread_started = 1;
  return HRING_SUCCESS;
}

static hring_result_t state_create(struct hring_comm *comm, int dev) {
  struct hring_dev_state *st = calloc(1, sizeof *st);
  if (!st) return hring__err(HRING_ERR_NO_MEMORY, "device state");
  st->cu = hring__cuda();
  st->comm = comm;
  st->dev = dev;
  const char *wait = hring__cfg_str(HRING_CFG_CUDA_WAIT);
  st->hostfn = wait && strcasecmp(wait, "hostfn") == 0;
  int64_t sc = hring__cfg_int(HRING_CFG_CUDA_STAGE_CHUNK);
  st->stage_chunk = sc >= HRING_DEV_STAGE_MIN ? (size_t)sc : HRING_DEV_STAGE_MIN;
  pthread_mutex_init(&st->lock, NULL);
  pthread_cond_init(&st->cond, NULL);
  int old = -1;
  st->cu->get_device(&old);
  hring_result_t r = state_init(st);
  if (old >= 0) st->cu->set_device(old);
  if (r != HRING_SUCCESS) {
    state_free(st);
    return r;
  }
  comm->dev = st;
  HRING_INFO(HRING_SUB_INIT, "rank %d: device collectives on device %d, %s, streams wait with %s",
             comm->rank, dev, st->ipc > 0 ? "CUDA IPC among the node's ranks" : "staged through host memory",
             st->hostfn ? "host functions" : "stream memory operations");
  return HRING_SUCCESS;
}

/* Waits on the queue's condition until pred holds, bounded by the comm's
 * timeout and its abort flag (called with the lock held). */
static hring_result_t wait_queue(struct hring_dev_state *st, int (*pred)(struct hring_dev_state *),
                                 const char *what) {
  struct hring_comm *comm = st->comm;
  uint64_t deadline = hring__now_ns() + (uint64_t)comm->timeout_ms * 1000000ull;
  while (!pred(st)) {
    if (atomic_load(&comm->aborted) || hring__now_ns() > deadline)
      return hring__err(HRING_ERR_TIMEOUT, "rank %d: %s did not happen within %lld ms", comm->rank,
                        what, (long long)comm->timeout_ms);
    hring__cond_wait_ms(&st->cond, &st->lock, 10);
  }
  return HRING_SUCCESS;
}

static int has_room(struct hring_dev_state *st) { return st->tail - st->head < HRING_DEV_QUEUE; }
static int is_empty(struct hring_dev_state *st) { return st->tail == st->head; }

hring_result_t hring__dev_allreduce(struct hring_comm *comm, const hring_coll_args_t *a,
                                    void *stream, int dev) {
  if (!comm->dev) HRING_CHECK(state_create(comm, dev));
  struct hring_dev_state *st = comm->dev;
  if (dev != st->dev)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_allreduce: buffers on device %d, but rank %d's communicator works on "
                      "device %d (its first device collective chose it)", dev, comm->rank, st->dev);
  hring_dev_op_t op;
  memset(&op, 0, sizeof op);
  op.a = *a;
  op.seq = st->issued + 1;
  op.staged = st->ipc < 0;
  if (op.staged) {
    size_t ce = st->stage_chunk / a->esize;
    op.chunk_base = st->chunks;
    op.nchunks = (uint32_t)((a->count + ce - 1) / ce);
  } else {
    hring__dev_ipc_prepare(st, &op);
  }
  pthread_mutex_lock(&st->lock);
  hring_result_t r = wait_queue(st, has_room, "room in the device queue");
  if (r == HRING_SUCCESS) {
    st->q[st->tail++ % HRING_DEV_QUEUE] = op;
    st->issued = op.seq;
    st->chunks += op.nchunks;
    pthread_cond_broadcast(&st->cond);
  }
  pthread_mutex_unlock(&st->lock);
  HRING_CHECK(r);
  /* Ops of one communicator run one after the other on the device too:
   * a stream other than the last one first waits for the op before. */
  if (st->last_stream != stream && op.seq > 1 && hring__dev_stream_wait(st, stream, F_DONE, op.seq - 1))
    r = hring__dev_fail(st, "hring_allreduce: ordering after the previous collective");
  st->last_stream = stream;
  if (r == HRING_SUCCESS)
    r = op.staged ? hring__dev_stage_enqueue(st, &op, stream) : hring__dev_ipc_enqueue(st, &op, stream);
  /* The op is queued: a failure here must fail the communicator, which
   * makes the proxy release the flags instead of waiting for the stream. */
  if (r != HRING_SUCCESS) hring__comm_fail(comm, r);
  return r;
}

hring_result_t hring__dev_drain(struct hring_comm *comm) {
  struct hring_dev_state *st = comm->dev;
  if (!st) return HRING_SUCCESS;
  pthread_mutex_lock(&st->lock);
  hring_result_t r = wait_queue(st, is_empty, "completion of the queued device collectives");
  pthread_mutex_unlock(&st->lock);
  return r;
}

void hring__dev_close(struct hring_comm *comm, int drain) {
  struct hring_dev_state *st = comm->dev;
  if (!st) return;
  if (drain) hring__dev_drain(comm);
  pthread_mutex_lock(&st->lock);
  st->stop = 1;
  pthread_cond_broadcast(&st->cond);
  pthread_mutex_unlock(&st->lock);
  if (st->thread_started) pthread_join(st->thread, NULL);
  if (st->n_ops)
    HRING_INFO(HRING_SUB_COLL,
               "rank %d: %llu device collectives, per op %.1f us in the proxy: %.1f waiting for "
               "the caller's stream to reach it, %.1f for the device work, %.1f in the rest (host "
               "exchanges and reductions)", comm->rank, (unsigned long long)st->n_ops,
               st->ns_total / 1e3 / st->n_ops, st->ns_input / 1e3 / st->n_ops,
               st->ns_gpu / 1e3 / st->n_ops,
               ((double)st->ns_total - st->ns_input - st->ns_gpu) / 1e3 / st->n_ops);
  /* Whatever was queued is now done or abandoned: release waiting streams. */
  hring__dev_set(st, F_GO, st->issued);
  hring__dev_set(st, F_DONE, st->issued);
  hring__dev_set(st, F_SDONE, st->chunks);
  comm->dev = NULL;
  state_free(st);
}

hring_result_t hring__dev_stream_sync(struct hring_comm *comm, void *stream) {
  const hring_cuda_api_t *cu = hring__cuda();
  if (!cu)
    return hring__err(HRING_ERR_UNSUPPORTED, "a CUDA stream was given, but %s", hring__cuda_status());
  struct hring_dev_state tmp = {.cu = cu, .comm = comm};
  void *ev = NULL;
  if (cu->event_create(&ev) != 0) return hring__dev_fail(&tmp, "stream wait");
  hring_result_t r = HRING_SUCCESS;
  if (cu->event_record(ev, stream) != 0) r = hring__dev_fail(&tmp, "stream wait");
  hring_waiter_t w;
  hring__waiter_init(&w, comm);
  for (int q; r == HRING_SUCCESS && (q = cu->event_query(ev)) != 0;)
    r = q < 0 ? hring__dev_fail(&tmp, "stream wait") : hring__waiter_pause(&w, "the stream", comm->rank);
  cu->event_destroy(ev);
  return r;
}
