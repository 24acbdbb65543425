/*
 * tree.c - pipelined binary-tree allreduce: reduce up to the root, then
 * broadcast down, in chunks.
 *
 * The tree is the heap layout rooted at rank 0 (children of r: 2r+1 and
 * 2r+2), depth D = floor(log2 P).  Data flows as streams of elements: a
 * rank sends up the reduction of the elements that both children have
 * delivered (own input, then the children in rank order), in messages of
 * at most chunk_bytes and one slot, and passes down every element the
 * parent has delivered.  The result of each element is computed once, at
 * the root, so every rank gets the same bits; AVG divides there.  The two
 * phases overlap: while one chunk climbs, the one before it descends.
 *
 * A receiver takes a message of any length and consumes it partly where
 * the other child is behind, so the two ends of a connection need not cut
 * the vector the same way: chunk_bytes and the slot sizes may differ from
 * rank to rank (comm->min_slot and comm->oversubscribed depend on what a
 * rank sees) without breaking the protocol.
 *
 * Cost, with D = floor(log2 P), chunks of c bytes and k = ceil(m / c): the
 * first chunk climbs D levels and descends D (an interior rank reduces
 * two children: 2 c gamma a level), and every later chunk adds the
 * busiest rank's work, 3 messages in and 3 out and two reductions:
 *   T = 2D (alpha + c beta + c gamma) + (k - 1) (3 alpha + 3 c beta + 2 c gamma)
 * For one chunk that is 2D dependent messages (the ring: 2(P-1)); for long
 * vectors 3 m beta, against the ring's 2 (P-1)/P m beta.
 *
 * Because a rank waits on up to four streams at once (two children, the
 * parent, and free send slots), it never blocks on one of them: each pass
 * of the loop moves whatever is ready, and the rank pauses only when
 * nothing was.  That keeps the pipeline free of deadlock for any FIFO
 * depth, and lets an oversubscribed rank do all ready work whenever it runs.
 */
#include <string.h>

#include "algos/algo.h"
#include "algos/reduce.h"
#include "core/error.h"
#include "transport/transport.h"

typedef struct {
  hring_conn_t *conn;
  size_t ce;         /* elements per message sent on conn */
  size_t rcvd, sent; /* elements received from and sent to the peer */
  char *held;        /* a child's message being consumed, NULL if none */
  size_t hoff, hlen; /* its consumed and total elements */
} tree_link_t;

typedef struct {
  const hring_coll_args_t *a;
  tree_link_t up;      /* conn NULL at the root */
  tree_link_t down[2]; /* the children */
  int nchild;
  size_t ku;           /* elements reduced (and sent up, but at the root) */
  int div;             /* AVG's divisor, applied at the root */
  int rank;
} tree_t;

static size_t min_sz(size_t x, size_t y) { return x < y ? x : y; }

/* A non-blocking recv_get; *buf NULL when nothing has arrived.  The length
 * must be whole elements and no more than the `left` still expected. */
static hring_result_t try_recv(const tree_t *t, hring_conn_t *c, size_t left, char **buf,
                               size_t *cnt) {
  size_t len = 0;
  void *p;
  hring_result_t r = hring__recv_get(c, &p, &len);
  *buf = NULL;
  if (r == HRING_IN_PROGRESS) return HRING_SUCCESS;
  HRING_CHECK(r);
  if (len == 0 || len % t->a->esize || len / t->a->esize > left)
    return hring__err(HRING_ERR_REMOTE,
                      "rank %d: received %zu bytes from rank %d where at most %zu elements of "
                      "%zu bytes were left (do all ranks call the same collectives with the same "
                      "count and type?)",
                      t->rank, len, c->peer, left, t->a->esize);
  *buf = p;
  *cnt = len / t->a->esize;
  return HRING_SUCCESS;
}

/* Reduces the next elements that every child has delivered; *moved set
 * when anything happened. */
static hring_result_t step_up(tree_t *t, int *moved) {
  const hring_coll_args_t *a = t->a;
  const size_t es = a->esize, count = a->count;
  if (t->ku == count) return HRING_SUCCESS;
  size_t n = count - t->ku;
  for (int i = 0; i < t->nchild; i++) {
    tree_link_t *l = &t->down[i];
    if (!l->held) {
      HRING_CHECK(try_recv(t, l->conn, count - l->rcvd, &l->held, &l->hlen));
      if (!l->held) return HRING_SUCCESS;
      l->hoff = 0;
      l->rcvd += l->hlen;
      *moved = 1;
    }
    n = min_sz(n, l->hlen - l->hoff);
  }
  char *dst = (char *)a->recvbuf + t->ku * es;
  if (t->up.conn) {
    void *p;
    hring_result_t r = hring__send_get(t->up.conn, &p);
    if (r == HRING_IN_PROGRESS) return HRING_SUCCESS;
    HRING_CHECK(r);
    dst = p;
    n = min_sz(n, t->up.ce);
  }
  const char *in = (const char *)a->sendbuf + t->ku * es;
  int div = t->up.conn ? 1 : t->div;
  if (t->nchild == 0) {
    memcpy(dst, in, n * es);
  } else {
    const char *c0 = t->down[0].held + t->down[0].hoff * es;
    hring__reduce(dst, NULL, in, c0, n, a->type, a->op, t->nchild == 1 ? div : 1, 0);
    if (t->nchild == 2) {
      const char *c1 = t->down[1].held + t->down[1].hoff * es;
      hring__reduce(dst, NULL, dst, c1, n, a->type, a->op, div, 0);
    }
  }
  for (int i = 0; i < t->nchild; i++) {
    tree_link_t *l = &t->down[i];
    l->hoff += n;
    if (l->hoff == l->hlen) {
      HRING_CHECK(hring__recv_release(l->conn));
      l->held = NULL;
    }
  }
  if (t->up.conn) HRING_CHECK(hring__send_post(t->up.conn, n * es));
  t->ku += n;
  *moved = 1;
  return HRING_SUCCESS;
}

/* Takes the parent's elements into the result, and passes every element
 * of the result that is final on to the children. */
static hring_result_t step_down(tree_t *t, int *moved) {
  const hring_coll_args_t *a = t->a;
  const size_t es = a->esize, count = a->count;
  char *out = a->recvbuf;
  /* The parent sends element i only after this rank sent it up (ku > i),
   * so in place the input was read before this write. */
  while (t->up.conn && t->up.rcvd < count) {
    char *buf;
    size_t cnt;
    HRING_CHECK(try_recv(t, t->up.conn, count - t->up.rcvd, &buf, &cnt));
    if (!buf) break;
    memcpy(out + t->up.rcvd * es, buf, cnt * es);
    HRING_CHECK(hring__recv_release(t->up.conn));
    t->up.rcvd += cnt;
    *moved = 1;
  }
  size_t final = t->up.conn ? t->up.rcvd : t->ku;
  for (int i = 0; i < t->nchild; i++) {
    tree_link_t *l = &t->down[i];
    while (l->sent < final) {
      void *sbuf;
      hring_result_t r = hring__send_get(l->conn, &sbuf);
      if (r == HRING_IN_PROGRESS) break;
      HRING_CHECK(r);
      size_t n = min_sz(final - l->sent, l->ce);
      memcpy(sbuf, out + l->sent * es, n * es);
      HRING_CHECK(hring__send_post(l->conn, n * es));
      l->sent += n;
      *moved = 1;
    }
  }
  return HRING_SUCCESS;
}

static int tree_done(const tree_t *t) {
  const size_t count = t->a->count;
  if (t->ku < count || (t->up.conn && t->up.rcvd < count)) return 0;
  for (int i = 0; i < t->nchild; i++)
    if (t->down[i].sent < count) return 0;
  return 1;
}

/* A link to peer p, sending messages of at most chunk_bytes and a slot. */
static tree_link_t link_to(struct hring_comm *comm, int p, size_t chunk_bytes, size_t es) {
  tree_link_t l = {0};
  l.conn = comm->conns[p];
  size_t b = min_sz(chunk_bytes, l.conn->slot_size);
  l.ce = b / es ? b / es : 1;
  return l;
}

hring_result_t hring__allreduce_tree(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes) {
  const int n = comm->nranks, r = comm->rank;
  if (n == 1 || a->count == 0) {
    if (a->sendbuf != a->recvbuf) memmove(a->recvbuf, a->sendbuf, a->count * a->esize);
    return HRING_SUCCESS;
  }
  hring_engine_t e;
  hring__engine_init(&e, comm);
  tree_t t = {0};
  t.a = a;
  t.rank = r;
  t.div = a->op == HRING_AVG ? n : 1;
  if (r > 0) {
    t.up = link_to(comm, (r - 1) / 2, chunk_bytes, a->esize);
    hring__engine_use(&e, t.up.conn);
  }
  for (int c = 2 * r + 1; c <= 2 * r + 2 && c < n; c++) {
    t.down[t.nchild] = link_to(comm, c, chunk_bytes, a->esize);
    hring__engine_use(&e, t.down[t.nchild++].conn);
  }
  while (!tree_done(&t)) {
    int moved = 0;
    HRING_CHECK(step_up(&t, &moved));
    HRING_CHECK(step_down(&t, &moved));
    if (moved) {
      hring__waiter_progress(&e.waiter);
      continue;
    }
    for (int i = 0; i < e.nactive; i++) HRING_CHECK(hring__conn_progress(e.active[i]));
    int peer = t.ku < a->count && t.nchild ? t.down[0].conn->peer
               : t.up.conn                 ? t.up.conn->peer
                                           : -1;
    HRING_CHECK(hring__engine_pause_any(&e, "tree data", peer));
  }
  return hring__engine_flush(&e);
}
