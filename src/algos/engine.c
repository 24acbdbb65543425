/* engine.c - bounded waits over the FIFO calls (see algo.h). */
#include "algos/algo.h"

#include <poll.h>
#include <string.h>

#include "core/error.h"
#include "transport/transport.h"

void hring__engine_init(hring_engine_t *e, struct hring_comm *comm) {
  e->comm = comm;
  e->nactive = 0;
  hring__waiter_init(&e->waiter, comm);
}

void hring__engine_use(hring_engine_t *e, hring_conn_t *c) {
  for (int i = 0; i < e->nactive; i++)
    if (e->active[i] == c) return;
  if (e->nactive < HRING_ENGINE_MAX_ACTIVE) e->active[e->nactive++] = c;
}

/* The poll set of the connections in use, c's first: n = 0 when c (or,
 * with c NULL, any connection in use) has no descriptor, since its
 * progress would then go unseen while blocked. */
static int poll_set(hring_engine_t *e, hring_conn_t *c, struct pollfd *fds) {
  int n = 0;
  short ev;
  if (c) {
    int fd = c->ops->wait_fd ? c->ops->wait_fd(c, &ev) : -1;
    if (fd < 0) return 0;
    fds[n++] = (struct pollfd){.fd = fd, .events = ev};
  }
  for (int i = 0; i < e->nactive; i++) {
    hring_conn_t *a = e->active[i];
    if (a == c) continue;
    if (!a->ops->wait_fd) {
      if (!c) return 0;
      continue;
    }
    int fd = a->ops->wait_fd(a, &ev);
    if (fd >= 0 && ev) fds[n++] = (struct pollfd){.fd = fd, .events = ev};
  }
  return n;
}

static hring_result_t pause_on(hring_engine_t *e, hring_conn_t *c, const char *what, int peer) {
  struct pollfd fds[HRING_ENGINE_MAX_ACTIVE + 1];
  return hring__waiter_block(&e->waiter, what, peer, fds, poll_set(e, c, fds));
}

hring_result_t hring__engine_pause(hring_engine_t *e, hring_conn_t *c, const char *what) {
  return pause_on(e, c, what, c->peer);
}

hring_result_t hring__engine_pause_any(hring_engine_t *e, const char *what, int peer) {
  return pause_on(e, NULL, what, peer);
}

static hring_result_t progress_all(hring_engine_t *e) {
  for (int i = 0; i < e->nactive; i++) HRING_CHECK(hring__conn_progress(e->active[i]));
  return HRING_SUCCESS;
}

hring_result_t hring__engine_send_get(hring_engine_t *e, hring_conn_t *c, void **buf) {
  for (;;) {
    hring_result_t r = hring__send_get(c, buf);
    if (r == HRING_SUCCESS) {
      hring__waiter_progress(&e->waiter);
      return r;
    }
    if (r != HRING_IN_PROGRESS) return r;
    HRING_CHECK(progress_all(e));
    HRING_CHECK(hring__engine_pause(e, c, "a free send slot"));
  }
}

hring_result_t hring__engine_send_copy(hring_engine_t *e, hring_conn_t *c, const void *src,
                                       size_t bytes) {
  void *buf;
  HRING_CHECK(hring__engine_send_get(e, c, &buf));
  memcpy(buf, src, bytes);
  return hring__send_post(c, bytes);
}

hring_result_t hring__engine_recv_get(hring_engine_t *e, hring_conn_t *c, void **buf,
                                      size_t expect_len) {
  size_t len = 0;
  for (;;) {
    hring_result_t r = hring__recv_get(c, buf, &len);
    if (r == HRING_SUCCESS) break;
    if (r != HRING_IN_PROGRESS) return r;
    HRING_CHECK(progress_all(e));
    HRING_CHECK(hring__engine_pause(e, c, "data"));
  }
  hring__waiter_progress(&e->waiter);
  return hring__engine_check_len(e, c, len, expect_len);
}

hring_result_t hring__engine_check_len(hring_engine_t *e, hring_conn_t *c, size_t len,
                                       size_t expect_len) {
  if (len == expect_len) return HRING_SUCCESS;
  return hring__err(HRING_ERR_REMOTE,
                    "rank %d: received %zu bytes from rank %d where %zu were expected (do all "
                    "ranks call the same collectives with the same count and type?)",
                    e->comm->rank, len, c->peer, expect_len);
}

hring_result_t hring__engine_wait(hring_engine_t *e, hring_conn_t *c, const char *what, int peer) {
  HRING_CHECK(progress_all(e));
  return c ? hring__engine_pause(e, c, what) : hring__engine_pause_any(e, what, peer);
}

hring_result_t hring__engine_flush(hring_engine_t *e) {
  for (int i = 0; i < e->nactive; i++) {
    hring_conn_t *c = e->active[i];
    for (;;) {
      hring_result_t r = hring__conn_flush(c);
      if (r == HRING_SUCCESS) break;
      if (r != HRING_IN_PROGRESS) return r;
      HRING_CHECK(progress_all(e));
      HRING_CHECK(hring__engine_pause(e, c, "the send queue to drain"));
    }
  }
  return HRING_SUCCESS;
}
