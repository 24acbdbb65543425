/*
 * wait.h - bounded waiting that still lets oversubscribed ranks progress.
 *
 * A waiting rank spins for comm->spin_ns (0 when its machine has more ranks
 * than cores: spinning then only steals the time slice the peer needs),
 * then yields the core with sched_yield, and after a while of yielding
 * sleeps in growing steps up to 1 ms (in poll() on the awaited sockets
 * where there are some) so an idle rank costs nothing.  Every wait ends at
 * the comm's deadline (HRING_TIMEOUT_MS) with HRING_ERR_TIMEOUT, or at once
 * with HRING_ERR_INVALID_USAGE when the comm is aborted from another thread.
 */
#ifndef HRING_CORE_WAIT_H
#define HRING_CORE_WAIT_H

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "hring.h"

struct hring_comm;

static inline uint64_t hring__now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

typedef struct {
  uint64_t start_ns;   /* when the current wait began (last progress) */
  uint64_t deadline_ns;
  uint32_t polls;
  struct hring_comm *comm;
} hring_waiter_t;

/* Starts a wait bounded by the comm's timeout. */
void hring__waiter_init(hring_waiter_t *w, struct hring_comm *comm);
/* Progress was made: spin again before yielding (the deadline is unchanged:
 * it bounds the whole call). */
static inline void hring__waiter_progress(hring_waiter_t *w) { w->polls = 0; w->start_ns = 0; }
/* Nothing ready yet: spin, yield or sleep.  `what` and `peer` name the
 * awaited thing in the timeout message. */
hring_result_t hring__waiter_pause(hring_waiter_t *w, const char *what, int peer);
/* The same, but where it would sleep it blocks in poll() on fds (whose
 * events say what would be progress), so the kernel wakes this rank when
 * its data comes instead of at the end of the sleep; nfds 0: as
 * hring__waiter_pause. */
hring_result_t hring__waiter_block(hring_waiter_t *w, const char *what, int peer,
                                   struct pollfd *fds, int nfds);

/* pthread_cond_timedwait for at most ms milliseconds (the condition's
 * default clock, CLOCK_REALTIME): for waits whose period only bounds a
 * missed wake-up. */
void hring__cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms);

/* Number of cores this process may run on. */
int hring__ncores(void);

#endif
