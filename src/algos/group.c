/*
 * group.c - pipelined ring and chain schedules over an ordered subset of
 * ranks (group.h).
 *
 * The ring generalises ring.c's to any group and any partition: member i
 * owns part i, whose element range is [bounds[i], bounds[i+1]) (the block
 * partition when no bounds are given).  Parts are cut into chunks of at
 * most ce elements; chunk k of every part travels round the ring before
 * chunk k+1, so the FIFO depth lets neighbours work on different chunks at
 * once.  With m this member, n members and p(x) = x mod n:
 *
 *   reduce-scatter, step j = 0 .. n-1 (for chunk k):
 *     j = 0       send  in[p(m-1)]
 *     0 < j < n-1 recv  x of p(m-1-j);  send in[p(m-1-j)] op x
 *     j = n-1     recv  x of p(m);      out[p(m)] = in op x (divided),
 *                 also sent on when an allgather follows
 *   allgather, i = 0 .. n-2:
 *     (alone: first send out[p(m)])
 *     recv x of p(m-1-i); out[p(m-1-i)] = x; send it on unless i = n-2
 *
 * Each part of in is read once, in the same pass that writes the matching
 * part of out, so in place is safe; each element of a result is computed
 * once, by one member, and copied, so every member holds the same bits.
 */
#include "algos/group.h"

#include <string.h>

#include "algos/reduce.h"
#include "core/error.h"

static inline int mod(int x, int n) { return ((x % n) + n) % n; }

void hring__group_world(struct hring_comm *comm, hring_group_t *g, int *storage) {
  for (int i = 0; i < comm->nranks; i++) storage[i] = i;
  g->n = comm->nranks;
  g->me = comm->rank;
  g->ranks = storage;
}

/* Element range of part i: [*lo, *lo + *cnt). */
static void part_of(const hring_group_xfer_t *x, int n, int i, size_t *lo, size_t *cnt) {
  if (x->bounds) {
    *lo = x->bounds[i];
    *cnt = x->bounds[i + 1] - x->bounds[i];
  } else {
    hring__partition(x->count, n, i, lo, cnt);
  }
}

/* Chunk k (ce elements at most) of part i, as a byte offset and a count. */
static void chunk_of(const hring_group_xfer_t *x, int n, int i, size_t k, size_t ce, size_t *off,
                     size_t *cnt) {
  size_t lo, pc;
  part_of(x, n, i, &lo, &pc);
  size_t a = k * ce < pc ? k * ce : pc, b = a + ce < pc ? a + ce : pc;
  *off = (lo + a) * x->esize;
  *cnt = b - a;
}

/* A chunk no larger than c's slot.  Every member of a schedule must cut the
 * data alike: the members of one group use one transport (shared memory
 * within a node, the network between nodes) configured alike, so the slot
 * sizes they see agree. */
static size_t fit_slot(size_t chunk_bytes, const hring_conn_t *c) {
  if (c && c->slot_size < chunk_bytes) return c->slot_size;
  return chunk_bytes;
}

/* A single member: the result is its own input (divided for AVG). */
static hring_result_t alone(const hring_group_xfer_t *x, int mode) {
  size_t lo, cnt;
  if (mode == HRING_GROUP_AG) return HRING_SUCCESS;
  part_of(x, 1, 0, &lo, &cnt);
  const char *src = (const char *)x->in + lo * x->esize;
  char *dst = (char *)x->out + (mode == HRING_GROUP_RS ? 0 : lo * x->esize);
  if (x->div > 1) hring__divide(dst, src, cnt, x->type, x->div);
  else if (dst != src) memmove(dst, src, cnt * x->esize);
  return HRING_SUCCESS;
}

hring_result_t hring__ring_task_init(hring_ring_task_t *t, hring_engine_t *e,
                                     const hring_group_t *g, int mode,
                                     const hring_group_xfer_t *x) {
  const int n = g->n, m = g->me;
  *t = (hring_ring_task_t){.e = e, .x = *x, .n = n, .m = m, .rs = mode & HRING_GROUP_RS,
                           .ag = mode & HRING_GROUP_AG};
  if (m < 0 || m >= n)
    return hring__err(HRING_ERR_INTERNAL, "group ring: rank %d is not a member", e->comm->rank);
  if (n == 1) return alone(x, mode); /* nchunks 0: nothing to step */
  t->next = e->comm->conns[g->ranks[mod(m + 1, n)]];
  t->prev = e->comm->conns[g->ranks[mod(m - 1, n)]];
  hring__engine_use(e, t->next);
  hring__engine_use(e, t->prev);
  const size_t es = x->esize;
  t->ce = fit_slot(fit_slot(x->chunk_bytes, t->next), t->prev) / es;
  if (t->ce == 0) t->ce = 1;
  /* Reduce-scatter alone writes only this member's part, at out[0]. */
  size_t biggest = 0, lo, cnt;
  for (int i = 0; i < n; i++) {
    part_of(x, n, i, &lo, &cnt);
    if (cnt > biggest) biggest = cnt;
    if (i == m && mode == HRING_GROUP_RS) t->skew = lo * es;
  }
  t->nchunks = (biggest + t->ce - 1) / t->ce;
  t->nsteps = 1 + (t->rs ? n - 1 : 0) + (t->ag ? n - 1 : 0);
  return HRING_SUCCESS;
}

/* Step pos of chunk k, once its message (pos > 0) and its send slot (where
 * it sends) are at hand; both are peeks, so a step that cannot run yet has
 * changed nothing. */
static hring_result_t ring_step(hring_ring_task_t *t) {
  const hring_group_xfer_t *x = &t->x;
  const int n = t->n, m = t->m, pos = t->pos;
  const size_t es = x->esize, k = t->k;
  const char *in = x->in;
  char *out = x->out;
  /* Positions: 0 starts the chunk; 1 .. n-1 reduce (rs); then n - 1
   * gather steps (ag), i counting from 0. */
  const int j = t->rs && pos < n ? pos : 0;
  const int i = pos - (t->rs ? n : 1);
  const int last_rs = t->rs && j == n - 1;
  const int sends = pos == 0 || (j > 0 && (!last_rs || t->ag)) || (i >= 0 && i < n - 2);
  size_t off, cnt, len = 0;
  if (pos == 0) chunk_of(x, n, t->rs ? mod(m - 1, n) : m, k, t->ce, &off, &cnt);
  else if (j > 0) chunk_of(x, n, mod(m - 1 - j, n), k, t->ce, &off, &cnt);
  else chunk_of(x, n, mod(m - 1 - i, n), k, t->ce, &off, &cnt);
  void *rbuf = NULL, *sbuf = NULL;
  hring_result_t r;
  if (pos > 0) {
    if ((r = hring__recv_get(t->prev, &rbuf, &len)) != HRING_SUCCESS) {
      t->blocked = t->prev;
      t->blocked_what = "data";
      return r;
    }
    HRING_CHECK(hring__engine_check_len(t->e, t->prev, len, cnt * es));
  }
  if (sends && (r = hring__send_get(t->next, &sbuf)) != HRING_SUCCESS) {
    t->blocked = t->next;
    t->blocked_what = "a free send slot";
    return r;
  }
  hring__waiter_progress(&t->e->waiter);
  if (pos == 0) memcpy(sbuf, (t->rs ? in : out) + off, cnt * es);
  else if (j > 0 && !last_rs) hring__reduce(sbuf, NULL, in + off, rbuf, cnt, x->type, x->op, 1, 0);
  else if (j > 0 && t->ag)
    hring__reduce(out + off, sbuf, in + off, rbuf, cnt, x->type, x->op, x->div, x->flags);
  else if (j > 0)
    hring__reduce(out + off - t->skew, NULL, in + off, rbuf, cnt, x->type, x->op, x->div,
                  x->flags);
  else hring__copy(out + off, sbuf, rbuf, cnt * es, x->flags);
  if (sends) HRING_CHECK(hring__send_post(t->next, cnt * es));
  if (pos > 0) HRING_CHECK(hring__recv_release(t->prev));
  return HRING_SUCCESS;
}

hring_result_t hring__ring_task_step(hring_ring_task_t *t, long max_steps) {
  t->blocked = NULL;
  for (long done = 0; t->k < t->nchunks; done++) {
    if (done == max_steps) return HRING_IN_PROGRESS;
    HRING_CHECK(ring_step(t));
    t->steps++;
    if (++t->pos == t->nsteps) {
      t->pos = 0;
      t->k++;
    }
  }
  return HRING_SUCCESS;
}

hring_result_t hring__group_run(hring_engine_t *e, const hring_group_t *g, int mode,
                                const hring_group_xfer_t *x) {
  hring_ring_task_t t;
  HRING_CHECK(hring__ring_task_init(&t, e, g, mode, x));
  for (;;) {
    hring_result_t r = hring__ring_task_step(&t, -1);
    if (r != HRING_IN_PROGRESS) return r;
    HRING_CHECK(hring__engine_wait(e, t.blocked, t.blocked_what, t.blocked->peer));
  }
}

/* Runs one schedule with an engine of its own and waits for its sends. */
static hring_result_t run_flushed(struct hring_comm *comm, const hring_group_t *g, int mode,
                                  const hring_group_xfer_t *x) {
  hring_engine_t e;
  hring__engine_init(&e, comm);
  HRING_CHECK(hring__group_run(&e, g, mode, x));
  return hring__engine_flush(&e);
}

hring_result_t hring__group_reduce_scatter(struct hring_comm *comm, const hring_group_t *g,
                                           const void *in, void *out_part, size_t count,
                                           hring_datatype_t type, hring_redop_t op, int div,
                                           size_t chunk_bytes) {
  hring_group_xfer_t x = {in, out_part, count, hring_type_size(type), type, op, div, 0, NULL,
                          chunk_bytes};
  return run_flushed(comm, g, HRING_GROUP_RS, &x);
}

hring_result_t hring__group_allgather(struct hring_comm *comm, const hring_group_t *g, void *buf,
                                      size_t count, size_t esize, size_t chunk_bytes) {
  /* The type and op are never used by a copy-only schedule. */
  hring_group_xfer_t x = {buf, buf, count, esize, HRING_INT8, HRING_SUM, 1, 0, NULL, chunk_bytes};
  return run_flushed(comm, g, HRING_GROUP_AG, &x);
}

hring_result_t hring__group_allreduce(struct hring_comm *comm, const hring_group_t *g,
                                      const void *in, void *out, size_t count,
                                      hring_datatype_t type, hring_redop_t op, int div, int flags,
                                      size_t chunk_bytes) {
  hring_group_xfer_t x = {in, out, count, hring_type_size(type), type, op, div, flags, NULL,
                          chunk_bytes};
  return run_flushed(comm, g, HRING_GROUP_AR, &x);
}

/*
 * Chains: member 0 is the root, member i talks to i-1 and i+1 only, so
 * every member sends and receives each byte at most once and chunks flow
 * down (broadcast) or up (reduce) the chain as a pipeline.
 */
hring_result_t hring__group_reduce_chain(hring_engine_t *e, const hring_group_t *g,
                                         const void *in, void *out, size_t count,
                                         hring_datatype_t type, hring_redop_t op,
                                         size_t chunk_bytes) {
  const int n = g->n, m = g->me;
  const size_t es = hring_type_size(type);
  if (n == 1) {
    if (out != in) memmove(out, in, count * es);
    return HRING_SUCCESS;
  }
  hring_conn_t *up = m > 0 ? e->comm->conns[g->ranks[m - 1]] : NULL;
  hring_conn_t *down = m < n - 1 ? e->comm->conns[g->ranks[m + 1]] : NULL;
  if (up) hring__engine_use(e, up);
  if (down) hring__engine_use(e, down);
  size_t ce = fit_slot(fit_slot(chunk_bytes, up), down) / es;
  if (ce == 0) ce = 1;
  for (size_t lo = 0; lo < count; lo += ce) {
    size_t cnt = count - lo < ce ? count - lo : ce, off = lo * es;
    const char *src = (const char *)in + off;
    void *sbuf, *rbuf;
    if (!down) {
      HRING_CHECK(hring__engine_send_copy(e, up, src, cnt * es));
      continue;
    }
    HRING_CHECK(hring__engine_recv_get(e, down, &rbuf, cnt * es));
    if (up) {
      HRING_CHECK(hring__engine_send_get(e, up, &sbuf));
      hring__reduce(sbuf, NULL, src, rbuf, cnt, type, op, 1, 0);
      HRING_CHECK(hring__send_post(up, cnt * es));
    } else {
      hring__reduce((char *)out + off, NULL, src, rbuf, cnt, type, op, 1, 0);
    }
    HRING_CHECK(hring__recv_release(down));
  }
  return HRING_SUCCESS;
}

hring_result_t hring__group_bcast_chain(hring_engine_t *e, const hring_group_t *g, void *buf,
                                        size_t bytes, size_t chunk_bytes, int flags) {
  const int n = g->n, m = g->me;
  if (n == 1) return HRING_SUCCESS;
  hring_conn_t *up = m > 0 ? e->comm->conns[g->ranks[m - 1]] : NULL;
  hring_conn_t *down = m < n - 1 ? e->comm->conns[g->ranks[m + 1]] : NULL;
  if (up) hring__engine_use(e, up);
  if (down) hring__engine_use(e, down);
  chunk_bytes = fit_slot(fit_slot(chunk_bytes, up), down);
  if (chunk_bytes == 0) chunk_bytes = 1;
  for (size_t lo = 0; lo < bytes; lo += chunk_bytes) {
    size_t len = bytes - lo < chunk_bytes ? bytes - lo : chunk_bytes;
    char *p = (char *)buf + lo;
    void *sbuf, *rbuf;
    if (!up) {
      HRING_CHECK(hring__engine_send_copy(e, down, p, len));
      continue;
    }
    HRING_CHECK(hring__engine_recv_get(e, up, &rbuf, len));
    if (down) {
      HRING_CHECK(hring__engine_send_get(e, down, &sbuf));
      hring__copy(p, sbuf, rbuf, len, flags);
      HRING_CHECK(hring__send_post(down, len));
    } else {
      hring__copy(p, NULL, rbuf, len, flags);
    }
    HRING_CHECK(hring__recv_release(up));
  }
  return HRING_SUCCESS;
}
