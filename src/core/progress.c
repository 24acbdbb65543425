/*
 * progress.c - the engine of the nonblocking collectives: requests, the
 * per-communicator queue, the progress thread, the caller-driven mode,
 * and the hand-over of the executor to blocking calls (progress.h).
 *
 * Who may touch an engine: the progress thread (joined before the engine
 * is freed), and other threads only while they hold the communicator
 * (hring__comm_enter).  hring_comm_abort frees the engine once nothing
 * holds the communicator; destroy, which holds it itself, first waits for
 * the other holders to leave.  So a request never needs its engine once
 * it is done, and a done request is all a waiter sees after destroy.
 */
#include "core/progress.h"

#include <errno.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/visibility.h"
#include "core/wait.h"

#define REQUEST_MAGIC 0x68726e6772657175ULL /* "hrngrequ" */

struct hring_request {
  uint64_t magic;
  atomic_int refs; /* the user's, and the engine's until it completes */
  atomic_int done;
  hring_result_t result; /* written before done is set */
  uint64_t spin_ns;      /* the communicator's: poll this long before sleeping */
  char msg[512];         /* the failure's message, for hring_last_error */
  pthread_mutex_t lock;  /* with cond: a waiter sleeps until done */
  pthread_cond_t cond;
  /* Caller mode: the communicator whose queue a waiter runs (NULL in
   * thread mode, where nothing but the thread runs it). */
  struct hring_comm *comm;
  struct hring_request *next; /* in the queue */
  hring_progress_fn run;
  const char *fn;
  uint64_t start_ns, end_ns; /* when its executor ran it (0: never ran) */
  alignas(max_align_t) unsigned char args[];
};

struct hring_progress {
  struct hring_comm *comm;
  int rank;
  int caller; /* HRING_PROGRESS=caller */
  pthread_mutex_t lock;
  pthread_cond_t work; /* the thread: an op to run, or stop */
  pthread_cond_t idle; /* threads waiting for the executor */
  int idle_waiters;
  struct hring_request *head, *tail;
  int running; /* an op or a blocking call holds the executor */
  atomic_int issued; /* ops queued so far: what the thread polls before it sleeps */
  uint64_t spin_ns;
  int stop;
  int thread_started;
  pthread_t thread;
};

/* ---- requests ---- */

static struct hring_request *request_new(size_t args_bytes, int refs) {
  struct hring_request *q = calloc(1, sizeof *q + args_bytes);
  if (!q) return NULL;
  q->magic = REQUEST_MAGIC;
  atomic_init(&q->refs, refs);
  atomic_init(&q->done, 0);
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->cond, NULL);
  return q;
}

static void request_unref(struct hring_request *q) {
  if (atomic_fetch_sub(&q->refs, 1) != 1) return;
  pthread_cond_destroy(&q->cond);
  pthread_mutex_destroy(&q->lock);
  q->magic = 0;
  free(q);
}

/* Publishes the result and drops the engine's reference: q may be gone
 * when this returns. */
static void request_complete(struct hring_request *q, hring_result_t r, const char *msg) {
  q->result = r;
  snprintf(q->msg, sizeof q->msg, "%s", r != HRING_SUCCESS ? msg : "");
  pthread_mutex_lock(&q->lock);
  atomic_store(&q->done, 1);
  pthread_cond_broadcast(&q->cond);
  pthread_mutex_unlock(&q->lock);
  request_unref(q);
}

/* Polls until *flag != seen or spin_ns passed, yielding the core to any
 * thread that wants it (the progress thread may share it); 1 when it
 * changed.  A short collective completes within the poll, which saves
 * the wake-up of a sleeper (tens of us); spin_ns is 0 where ranks
 * outnumber cores (HRING_SPIN_US, wait.h). */
static int poll_change(atomic_int *flag, int seen, uint64_t spin_ns) {
  if (!spin_ns) return 0;
  uint64_t end = hring__now_ns() + spin_ns;
  while (atomic_load(flag) == seen) {
    if (hring__now_ns() > end) return 0;
    sched_yield();
  }
  return 1;
}

/* Sleeps until q is done.  Unbounded here, bounded in effect: whoever
 * holds q's op runs it within HRING_TIMEOUT_MS, and abort completes the
 * queued ones at once. */
static void request_wait(struct hring_request *q) {
  if (poll_change(&q->done, 0, q->spin_ns)) return;
  pthread_mutex_lock(&q->lock);
  while (!atomic_load(&q->done)) pthread_cond_wait(&q->cond, &q->lock);
  pthread_mutex_unlock(&q->lock);
}

hring_result_t hring__request_done(hring_result_t r, hring_request_t *req) {
  struct hring_request *q = request_new(0, 1);
  if (!q) return hring__err(HRING_ERR_NO_MEMORY, "request");
  q->result = r;
  if (r != HRING_SUCCESS) snprintf(q->msg, sizeof q->msg, "%s", hring_last_error());
  atomic_store(&q->done, 1);
  *req = q;
  return HRING_SUCCESS;
}

/* ---- running one op ---- */

static struct hring_request *pop(struct hring_progress *e) {
  struct hring_request *q = e->head;
  if (q) {
    e->head = q->next;
    if (!e->head) e->tail = NULL;
    q->next = NULL;
  }
  return q;
}

static hring_result_t aborted(struct hring_progress *e, const struct hring_request *q) {
  return hring__err(HRING_ERR_INVALID_USAGE, "rank %d: %s: communicator aborted before the "
                    "collective ran", e->rank, q->fn);
}

/* Runs q with the executor taken (e->running) and e->lock not held; the
 * op holds the communicator like a call, so abort waits for it, and an
 * aborted communicator (no longer registered) completes it unrun. */
static void execute(struct hring_progress *e, struct hring_request *q) {
  hring_result_t r;
  if (hring__comm_enter(e->comm, q->fn) != HRING_SUCCESS) {
    r = aborted(e, q);
  } else {
    q->start_ns = hring__now_ns();
    r = q->run(e->comm, q->args);
    q->end_ns = hring__now_ns();
    hring__comm_leave(e->comm);
  }
  request_complete(q, r, hring_last_error());
}

/* Gives the executor back (e->lock held). */
static void executor_give_back(struct hring_progress *e) {
  e->running = 0;
  if (e->head && !e->caller) pthread_cond_signal(&e->work);
  if (e->idle_waiters) pthread_cond_broadcast(&e->idle);
}

/* Runs the oldest queued op as the executor: called and returns with
 * e->lock held, which it drops while the op runs. */
static void run_next(struct hring_progress *e) {
  struct hring_request *q = pop(e);
  e->running = 1;
  pthread_mutex_unlock(&e->lock);
  execute(e, q);
  pthread_mutex_lock(&e->lock);
  executor_give_back(e);
}

/* Waits (e->lock held) until the executor may have changed hands.  The
 * period only bounds a missed wake-up; every change broadcasts. */
static void executor_wait(struct hring_progress *e) {
  e->idle_waiters++;
  hring__cond_wait_ms(&e->idle, &e->lock, 50);
  e->idle_waiters--;
}

/* ---- the progress thread ---- */

static void *progress_main(void *arg) {
  struct hring_progress *e = arg;
  hring__log_set_rank(e->rank);
  pthread_mutex_lock(&e->lock);
  for (;;) {
    if (!e->stop && !e->head && !e->running && e->spin_ns) {
      /* Just done: the next op of a burst often follows at once. */
      int seen = atomic_load(&e->issued);
      pthread_mutex_unlock(&e->lock);
      (void)poll_change(&e->issued, seen, e->spin_ns);
      pthread_mutex_lock(&e->lock);
    }
    /* Asleep while there is nothing to run: an idle engine costs no CPU. */
    while (!e->stop && (!e->head || e->running)) pthread_cond_wait(&e->work, &e->lock);
    if (!e->head || e->running) break; /* stopped, and nothing left to run */
    run_next(e);
  }
  pthread_mutex_unlock(&e->lock);
  return NULL;
}

/* ---- creation and issue ---- */

static hring_result_t engine_create(struct hring_comm *comm, struct hring_progress **out) {
  const char *mode = hring__cfg_str(HRING_CFG_PROGRESS);
  int caller;
  if (!mode || !*mode || strcasecmp(mode, "thread") == 0) caller = 0;
  else if (strcasecmp(mode, "caller") == 0) caller = 1;
  else
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "HRING_PROGRESS=%s: unknown (thread, caller)",
                      mode);
  struct hring_progress *e = calloc(1, sizeof *e);
  if (!e) return hring__err(HRING_ERR_NO_MEMORY, "progress engine");
  e->comm = comm;
  e->rank = comm->rank;
  e->caller = caller;
  e->spin_ns = comm->spin_ns > 0 ? (uint64_t)comm->spin_ns : 0;
  pthread_mutex_init(&e->lock, NULL);
  pthread_cond_init(&e->work, NULL);
  pthread_cond_init(&e->idle, NULL);
  if (!caller) {
    int err = pthread_create(&e->thread, NULL, progress_main, e);
    if (err != 0) {
      pthread_cond_destroy(&e->idle);
      pthread_cond_destroy(&e->work);
      pthread_mutex_destroy(&e->lock);
      free(e);
      return hring__err_errno(HRING_ERR_SYSTEM, err, "rank %d: progress thread", comm->rank);
    }
    e->thread_started = 1;
    pthread_setname_np(e->thread, "hring-progress");
  }
  HRING_INFO(HRING_SUB_COLL, "rank %d: nonblocking collectives progress on %s", comm->rank,
             caller ? "the caller's thread (hring_test/hring_wait)" : "a progress thread");
  *out = e;
  return HRING_SUCCESS;
}

hring_result_t hring__progress_issue(struct hring_comm *comm, hring_progress_fn run,
                                     const void *args, size_t args_bytes, const char *fn,
                                     hring_request_t *req) {
  struct hring_progress *e = atomic_load(&comm->progress);
  if (!e) {
    HRING_CHECK(engine_create(comm, &e));
    atomic_store(&comm->progress, e);
  }
  struct hring_request *q = request_new(args_bytes, 2);
  if (!q) return hring__err(HRING_ERR_NO_MEMORY, "%s: request", fn);
  q->run = run;
  q->fn = fn;
  memcpy(q->args, args, args_bytes);
  if (e->caller) q->comm = comm;
  q->spin_ns = e->spin_ns;
  pthread_mutex_lock(&e->lock);
  if (e->tail) e->tail->next = q;
  else e->head = q;
  e->tail = q;
  atomic_fetch_add(&e->issued, 1);
  if (!e->caller && !e->running) pthread_cond_signal(&e->work);
  pthread_mutex_unlock(&e->lock);
  *req = q;
  return HRING_SUCCESS;
}

/* ---- the executor for blocking calls ---- */

hring_result_t hring__progress_claim_slow(struct hring_comm *comm, int *waited) {
  struct hring_progress *e = atomic_load(&comm->progress);
  pthread_mutex_lock(&e->lock);
  while (e->head || e->running) {
    *waited = 1;
    if (e->caller && !e->running) {
      /* Nothing moves between calls in caller mode: run the queue here. */
      run_next(e);
    } else {
      executor_wait(e);
    }
  }
  e->running = 1;
  pthread_mutex_unlock(&e->lock);
  return HRING_SUCCESS;
}

void hring__progress_release(struct hring_comm *comm) {
  struct hring_progress *e = atomic_load(&comm->progress);
  pthread_mutex_lock(&e->lock);
  executor_give_back(e);
  pthread_mutex_unlock(&e->lock);
}

/* ---- caller mode ---- */

/* Runs the queue on this thread, oldest first, until q is done; with
 * nowait (hring_test) it returns instead of waiting for another thread
 * that runs an op.  Every step holds the communicator, and q's done flag
 * is read first: a communicator that is gone completed q before it went,
 * so a dangling q->comm is never followed. */
static void caller_run(struct hring_request *q, int nowait) {
  struct hring_comm *comm = q->comm;
  while (!atomic_load(&q->done)) {
    if (hring__comm_enter(comm, q->fn) != HRING_SUCCESS) {
      /* Aborted meanwhile: the abort completes q. */
      if (!nowait) request_wait(q);
      return;
    }
    struct hring_progress *e = atomic_load(&comm->progress);
    if (atomic_load(&q->done) || !e) {
      hring__comm_leave(comm);
      continue;
    }
    pthread_mutex_lock(&e->lock);
    if (e->running || !e->head) {
      /* Another thread runs an op now (q's own, maybe). */
      if (!nowait) executor_wait(e);
      pthread_mutex_unlock(&e->lock);
      hring__comm_leave(comm);
      if (nowait) return;
      continue;
    }
    run_next(e);
    pthread_mutex_unlock(&e->lock);
    hring__comm_leave(comm);
  }
}

/* ---- the end ---- */

void hring__progress_close(struct hring_comm *comm, int drain) {
  struct hring_progress *e = atomic_load(&comm->progress);
  if (!e) return;
  struct hring_request *left = NULL;
  if (drain) {
    /* Destroy holds the communicator: every queued op runs (or fails
     * within its bounds), then the other holders (threads waiting
     * requests) see their requests done and leave. */
    int waited;
    (void)hring__progress_claim_slow(comm, &waited);
    atomic_store(&comm->progress, NULL);
    uint64_t deadline = hring__now_ns() + 10ull * 1000000000ull;
    while (atomic_load(&comm->in_call) > 1 && hring__now_ns() < deadline) usleep(100);
    pthread_mutex_lock(&e->lock);
    e->running = 0;
  } else {
    /* Abort: nothing holds the communicator any more.  The thread ends
     * the op it runs at the abort flag; the queued ones fail here. */
    atomic_store(&comm->progress, NULL);
    pthread_mutex_lock(&e->lock);
    left = e->head;
    e->head = e->tail = NULL;
  }
  e->stop = 1;
  pthread_cond_broadcast(&e->work);
  pthread_mutex_unlock(&e->lock);
  while (left) {
    struct hring_request *q = left;
    left = q->next;
    hring_result_t r = aborted(e, q);
    request_complete(q, r, hring_last_error());
  }
  if (e->thread_started) pthread_join(e->thread, NULL);
  pthread_cond_destroy(&e->idle);
  pthread_cond_destroy(&e->work);
  pthread_mutex_destroy(&e->lock);
  free(e);
}

/* ---- public calls ---- */

static hring_result_t request_check(const char *fn, hring_request_t *req) {
  if (!req) return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: req is NULL", fn);
  if (*req && (*req)->magic != REQUEST_MAGIC)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: %p is not a live request (already "
                      "waited, or never issued)", fn, (void *)*req);
  return HRING_SUCCESS;
}

/* Takes a done request from the user: its result, its message in the
 * thread's last error, the user's reference dropped. */
static hring_result_t request_take(hring_request_t *req) {
  struct hring_request *q = *req;
  hring_result_t r = q->result;
  if (r != HRING_SUCCESS) hring__err_quiet(r, q->msg);
  *req = NULL;
  request_unref(q);
  return r;
}

static void request_finish_wait(struct hring_request *q) {
  if (atomic_load(&q->done)) return;
  if (q->comm) caller_run(q, 0);
  request_wait(q);
}

double hring__request_run_time(hring_request_t q) {
  if (!q || q->magic != REQUEST_MAGIC) return 0;
  request_finish_wait(q);
  return q->end_ns > q->start_ns ? (double)(q->end_ns - q->start_ns) * 1e-9 : 0;
}

uint64_t hring__request_end_ns(hring_request_t q) {
  if (!q || q->magic != REQUEST_MAGIC) return 0;
  request_finish_wait(q);
  return q->end_ns;
}

HRING_API hring_result_t hring_test(hring_request_t *req, int *done) {
  HRING_CHECK(request_check("hring_test", req));
  if (!done) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_test: done is NULL");
  struct hring_request *q = *req;
  *done = 1;
  if (!q) return HRING_SUCCESS;
  if (!atomic_load(&q->done) && q->comm) caller_run(q, 1);
  if (!atomic_load(&q->done)) {
    *done = 0;
    return HRING_SUCCESS;
  }
  return request_take(req);
}

HRING_API hring_result_t hring_wait(hring_request_t *req) {
  HRING_CHECK(request_check("hring_wait", req));
  if (!*req) return HRING_SUCCESS;
  request_finish_wait(*req);
  return request_take(req);
}

HRING_API hring_result_t hring_waitall(int n, hring_request_t *reqs) {
  if (n < 0 || (n > 0 && !reqs))
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_waitall: %d requests at %p", n,
                      (void *)reqs);
  for (int i = 0; i < n; i++) HRING_CHECK(request_check("hring_waitall", &reqs[i]));
  hring_result_t first = HRING_SUCCESS;
  char msg[512] = "";
  for (int i = 0; i < n; i++) {
    struct hring_request *q = reqs[i];
    if (!q) continue;
    request_finish_wait(q);
    if (q->result != HRING_SUCCESS && first == HRING_SUCCESS) {
      first = q->result;
      snprintf(msg, sizeof msg, "%s", q->msg);
    }
    reqs[i] = NULL;
    request_unref(q);
  }
  if (first != HRING_SUCCESS) hring__err_quiet(first, msg);
  return first;
}
