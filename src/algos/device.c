/*
 * device.c - the device queue: enqueue on the caller's thread, the proxy
 * thread that runs the queue in order, drain and close (device.h).
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

static hring_result_t poll_until(struct hring_dev_state *st, int (*query)(void *), void *obj,
                                 const char *what) {
  hring_waiter_t w;
  hring__waiter_init(&w, st->comm);
  for (;;) {
    int q = query(obj);
    if (q == 0) return HRING_SUCCESS;
    if (q < 0) return hring__dev_fail(st, what);
    HRING_CHECK(hring__waiter_pause(&w, what, st->comm->rank));
  }
}

hring_result_t hring__dev_sync(struct hring_dev_state *st) {
  return poll_until(st, st->cu->stream_query, st->stream, "device copies and kernels");
}

hring_result_t hring__dev_event_wait(struct hring_dev_state *st, void *ev, const char *what) {
  return poll_until(st, st->cu->event_query, ev, what);
}

hring_result_t hring__dev_reduce(struct hring_dev_state *st, void *dst, const void **srcs, int n,
                                 size_t count, hring_datatype_t type, hring_redop_t op, int div) {
  const void *in[HRING_CUDA_MAX_SRCS];
  int done = 0;
  while (done < n) {
    int k = 0;
    if (done > 0) in[k++] = dst; /* continue from the partial result */
    while (k < HRING_CUDA_MAX_SRCS && done < n) in[k++] = srcs[done++];
    if (st->cu->reduce_async(dst, in, k, count, type, op, done == n ? div : 1, st->stream) != 0)
      return hring__dev_fail(st, "reduction kernel");
  }
  return HRING_SUCCESS;
}

/* ---- the proxy ---- */

static hring_result_t run_op(struct hring_dev_state *st, const hring_coll_args_t *a, void *ev) {
  struct hring_comm *comm = st->comm;
  HRING_CHECK(hring__dev_event_wait(st, ev, "the caller's stream to reach the collective"));
  if (st->ipc == 0) HRING_CHECK(hring__dev_ipc_probe(st));
  size_t bytes = a->count * a->esize;
  st->ncalls++;
  if (st->ipc > 0 && bytes <= st->oneshot_max) {
    HRING_TRACE(HRING_SUB_COLL, "device allreduce %zu B: one-shot over IPC", bytes);
    return hring__dev_oneshot(st, a);
  }
  if (st->ipc > 0) {
    HRING_TRACE(HRING_SUB_COLL, "device allreduce %zu B: reduce-scatter + gather over IPC", bytes);
    hring_result_t r = hring__dev_twoshot(st, a);
    if (r != HRING_IN_PROGRESS) return r;
  }
  HRING_TRACE(HRING_SUB_COLL, "device allreduce %zu B: staged through host (%d nodes)", bytes,
              comm->nnodes);
  return hring__dev_staged(st, a);
}

static void *proxy_main(void *arg) {
  struct hring_dev_state *st = arg;
  struct hring_comm *comm = st->comm;
  hring__log_set_rank(comm->rank);
  int ready = st->cu->set_device(st->dev) == 0 && st->cu->stream_create(&st->stream) == 0;
  if (!ready) hring__comm_fail(comm, hring__dev_fail(st, "proxy stream"));
  pthread_mutex_lock(&st->lock);
  for (;;) {
    while (st->head == st->tail && !st->stop) pthread_cond_wait(&st->cond, &st->lock);
    if (st->head == st->tail) break;
    hring_dev_op_t op = st->q[st->head % HRING_DEV_QUEUE];
    pthread_mutex_unlock(&st->lock);
    hring_result_t r = HRING_ERR_INVALID_USAGE;
    if (atomic_load(&comm->async_error) == HRING_SUCCESS && !atomic_load(&comm->aborted)) {
      r = run_op(st, &op.a, op.event);
      if (r != HRING_SUCCESS) hring__comm_fail(comm, r);
    }
    /* Raised even after a failure: a stream must never wait forever; the
     * error is the communicator's (hring_comm_get_async_error). */
    __atomic_store_n(st->done, op.seq, __ATOMIC_RELEASE);
    pthread_mutex_lock(&st->lock);
    st->head++;
    pthread_cond_broadcast(&st->cond);
  }
  pthread_mutex_unlock(&st->lock);
  return NULL;
}

/* ---- the caller's side ---- */

static void state_free(struct hring_dev_state *st) {
  const hring_cuda_api_t *cu = st->cu;
  for (int i = 0; i < HRING_DEV_QUEUE; i++)
    if (st->events[i]) cu->event_destroy(st->events[i]);
  hring__dev_ipc_close(st);
  hring__dev_stage_close(st);
  if (st->stream) cu->stream_destroy(st->stream);
  if (st->done) cu->host_free(st->done);
  pthread_cond_destroy(&st->cond);
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static hring_result_t state_create(struct hring_comm *comm, int dev) {
  const hring_cuda_api_t *cu = hring__cuda();
  struct hring_dev_state *st = calloc(1, sizeof *st);
  if (!st) return hring__err(HRING_ERR_NO_MEMORY, "device state");
  st->cu = cu;
  st->comm = comm;
  st->dev = dev;
  const char *wait = hring__cfg_str(HRING_CFG_CUDA_WAIT);
  st->hostfn_wait = wait && strcasecmp(wait, "hostfn") == 0;
  int64_t os = hring__cfg_int(HRING_CFG_CUDA_ONESHOT_MAX), sc = hring__cfg_int(HRING_CFG_CUDA_STAGE_CHUNK);
  st->oneshot_max = os > 0 ? (size_t)os : 0;
  st->stage_chunk = sc >= 4096 ? (size_t)sc : 4096;
  pthread_mutex_init(&st->lock, NULL);
  pthread_cond_init(&st->cond, NULL);
  hring_result_t r = HRING_SUCCESS;
  int old = -1;
  cu->get_device(&old);
  if (cu->set_device(dev) != 0 || cu->host_alloc((void **)&st->done, 64) != 0) {
    r = hring__dev_fail(st, "device state");
    goto out;
  }
  __atomic_store_n(st->done, 0, __ATOMIC_RELEASE);
  for (int i = 0; i < HRING_DEV_QUEUE && r == HRING_SUCCESS; i++)
    if (cu->event_create(&st->events[i]) != 0) r = hring__dev_fail(st, "events");
  if (r == HRING_SUCCESS && pthread_create(&st->thread, NULL, proxy_main, st) != 0)
    r = hring__err(HRING_ERR_SYSTEM, "device proxy thread: %s", strerror(errno));
out:
  if (old >= 0) cu->set_device(old);
  if (r != HRING_SUCCESS) {
    state_free(st);
    return r;
  }
  st->thread_started = 1;
  comm->dev = st;
  HRING_INFO(HRING_SUB_INIT, "rank %d: device collectives on device %d (stream wait: %s)",
             comm->rank, dev, st->hostfn_wait ? "host function" : "stream memory op");
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&st->cond, &st->lock, &ts);
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
  pthread_mutex_lock(&st->lock);
  hring_result_t r = wait_queue(st, has_room, "room in the device queue");
  if (r != HRING_SUCCESS) {
    pthread_mutex_unlock(&st->lock);
    return r;
  }
  uint64_t slot = st->tail % HRING_DEV_QUEUE;
  if (st->cu->event_record(st->events[slot], stream) != 0) {
    pthread_mutex_unlock(&st->lock);
    return hring__dev_fail(st, "hring_allreduce: recording an event on the stream");
  }
  uint32_t seq = ++st->issued;
  st->q[slot] = (hring_dev_op_t){*a, st->events[slot], seq};
  st->tail++;
  pthread_cond_broadcast(&st->cond);
  pthread_mutex_unlock(&st->lock);
  if (st->cu->stream_wait_flag(stream, st->done, seq, st->hostfn_wait) != 0) {
    /* The collective runs, but the stream would not wait for it: fail the
     * communicator rather than let later work read a partial result. */
    r = hring__dev_fail(st, "hring_allreduce: making the stream wait");
    hring__comm_fail(comm, r);
    return r;
  }
  return HRING_SUCCESS;
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
  /* Whatever was queued is now done or abandoned: release waiting streams. */
  __atomic_store_n(st->done, st->issued, __ATOMIC_RELEASE);
  comm->dev = NULL;
  state_free(st);
}

hring_result_t hring__dev_stream_sync(struct hring_comm *comm, void *stream) {
  const hring_cuda_api_t *cu = hring__cuda();
  if (!cu) return hring__err(HRING_ERR_UNSUPPORTED, "a CUDA stream was given, but %s", hring__cuda_status());
  void *ev = NULL;
  struct hring_dev_state tmp = {.cu = cu, .comm = comm};
  if (cu->event_create(&ev) != 0) return hring__dev_fail(&tmp, "stream wait");
  hring_result_t r = cu->event_record(ev, stream) != 0 ? hring__dev_fail(&tmp, "stream wait")
                                                      : hring__dev_event_wait(&tmp, ev, "the stream");
  cu->event_destroy(ev);
  return r;
}
