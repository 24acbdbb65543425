/* wait.c - spin, then yield, then sleep; always bounded (see wait.h). */
#include "core/wait.h"

#include <poll.h>
#include <sched.h>
#include <stdatomic.h>

#include "core/comm.h"
#include "core/error.h"
#include "transport/transport.h"

/* After this long of yielding without progress, sleep instead: a rank that
 * waits for a slow peer (or a dead one, until the deadline) must not burn a
 * core the others need. */
#define HRING_YIELD_NS 2000000ull
#define HRING_SLEEP_MAX_NS 1000000ull

void hring__waiter_init(hring_waiter_t *w, struct hring_comm *comm) {
  w->comm = comm;
  w->polls = 0;
  w->start_ns = 0;
  w->deadline_ns = hring__now_ns() + (uint64_t)comm->timeout_ms * 1000000ull;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

/* One step of a wait: spin, yield, then sleep, in nanosleep or, with fds,
 * in poll() on them.  A rank yields a while before it sleeps either way:
 * on this kind of machine (a VM) a core that blocks halts, and waking it
 * costs more than the yields (blocking in poll() at once made a 64 KiB ring
 * on 4 emulated hosts x 2 ranks 2x slower).  In poll() it is woken by its
 * data instead of by the end of the sleep; the timeout keeps aborts and the
 * health poll as prompt as the sleeps. */
static hring_result_t pause_step(hring_waiter_t *w, const char *what, int peer,
                                 struct pollfd *fds, int nfds) {
  struct hring_comm *comm = w->comm;
  w->polls++;
  /* Cheap path: a few hundred polls without reading the clock. */
  if (w->polls < 64 && !comm->oversubscribed) {
    cpu_relax();
    return HRING_SUCCESS;
  }
  uint64_t now = hring__now_ns();
  if (w->start_ns == 0) w->start_ns = now;
  /* The abort flag is one relaxed load: read at every slow poll, so an
   * abort ends a wait within one sleep (at most HRING_SLEEP_MAX_NS). */
  if (atomic_load_explicit(&comm->aborted, memory_order_relaxed))
    return hring__err(HRING_ERR_INVALID_USAGE, "rank %d: communicator aborted while waiting for %s",
                      comm->rank, what);
  if (now > w->deadline_ns) {
    const char *host = peer >= 0 && peer < comm->nranks ? comm->peers[peer].host : "?";
    return hring__err(HRING_ERR_TIMEOUT,
                      "rank %d: timed out after %lld ms waiting for %s from rank %d (host %s); "
                      "HRING_TIMEOUT_MS sets the limit",
                      comm->rank, (long long)comm->timeout_ms, what, peer, host);
  }
  /* Whatever this rank waits for, a peer that failed or died anywhere ends
   * the wait: transports_health looks at every peer once per 100 ms and
   * returns at once in between. */
  if (comm->ready) HRING_CHECK(hring__transports_health(comm));
  uint64_t waited = now - w->start_ns;
  if (!comm->oversubscribed && waited < (uint64_t)comm->spin_ns) {
    cpu_relax();
  } else if (waited < HRING_YIELD_NS + (uint64_t)comm->spin_ns) {
    sched_yield();
  } else {
    uint64_t ns = (waited - HRING_YIELD_NS) / 16;
    if (ns < 20000) ns = 20000;
    if (ns > HRING_SLEEP_MAX_NS) ns = HRING_SLEEP_MAX_NS;
    struct timespec ts = {0, (long)ns};
    if (nfds > 0) ppoll(fds, (nfds_t)nfds, &ts, NULL); /* EINTR or an error: poll again */
    else nanosleep(&ts, NULL);
  }
  return HRING_SUCCESS;
}

hring_result_t hring__waiter_pause(hring_waiter_t *w, const char *what, int peer) {
  return pause_step(w, what, peer, NULL, 0);
}

hring_result_t hring__waiter_block(hring_waiter_t *w, const char *what, int peer,
                                   struct pollfd *fds, int nfds) {
  return pause_step(w, what, peer, fds, nfds);
}

int hring__ncores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

void hring__cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(cond, lock, &ts);
}
