/*
 * comm_split.c - hring_comm_split: new communicators from the ranks of one
 * (MPI_Comm_split, ncclCommSplit).
 *
 * Built from public pieces, so that a child is an ordinary communicator
 * with nothing shared with its parent:
 *   1. every rank's (color, key) goes to every rank: an allgather over the
 *      parent.  A rank with bad arguments still takes part, with a marker,
 *      so that every rank learns it and returns an error in step;
 *   2. the lowest parent rank of each color makes a unique id (which starts
 *      a bootstrap root in its process: one thread per root, so a process
 *      may serve several), and the ids go round in a second allgather;
 *   3. every member of a color calls hring_comm_init_rank with its color's
 *      id, its rank by (key, parent rank) and the color's size (a member
 *      that cannot still joins the bootstrap briefly, so that the others
 *      do not wait for it until the deadline);
 *   4. a third allgather tells every rank whether every init succeeded: one
 *      failure anywhere and every rank destroys what it made and returns an
 *      error, so that no rank is left with a communicator its peers lack.
 * The three exchanges are ordinary collectives of the parent, so ranks that
 * call something else at the same time get the usual mismatch error.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bootstrap.h"
#include "core/comm.h"
#include "core/error.h"
#include "core/log.h"
#include "core/socket.h"
#include "core/topo.h"
#include "core/visibility.h"

#define SPLIT_MAGIC 0x53504c54 /* "SPLT": a record that is not one is a bug or an attack */
#define SPLIT_MSG 120          /* the text of a failure carried to the other ranks */

enum { ARG_OK = 0, ARG_BAD_COLOR = 1, ARG_NULL_OUT = 2 };

/* Round 1: what each rank asked for. */
typedef struct {
  int32_t magic, status, color, key;
} split_arg_t;

/* Round 2: the id of the color whose lowest rank this is (zeros otherwise). */
typedef struct {
  int32_t magic, status; /* status: hring_result_t of making the id */
  char msg[SPLIT_MSG];
  hring_unique_id_t id;
} split_id_t;

/* Round 3: how each rank's init went. */
typedef struct {
  int32_t magic, status;
  char msg[SPLIT_MSG];
} split_done_t;

static hring_result_t exchange(hring_comm_t comm, const void *mine, void *all, size_t bytes,
                               const char *what) {
  hring_result_t r = hring_allgather(mine, all, bytes, HRING_UINT8, comm, NULL);
  if (r != HRING_SUCCESS)
    return hring__err(r, "hring_comm_split: exchanging %s over the parent failed: %s", what,
                      hring_last_error());
  return HRING_SUCCESS;
}

/* A peer's message, made safe to print whatever the bytes were. */
static void peer_msg(char *msg) {
  msg[SPLIT_MSG - 1] = '\0';
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) *p = '?';
}

/* A rank whose init would fail before it joins the child's bootstrap root
 * leaves the other members waiting there until the deadline,
 * HRING_TIMEOUT_MS, since the root waits for every rank.  So the checks
 * that hring_comm_init_rank makes before it joins are made here first, and
 * when one fails the rank joins the root without creating anything and
 * leaves at once: the root then ends the session and the members fail now.
 * (Running out of memory in between is the one such failure left to the
 * deadline.) */
static hring_result_t prejoin_check(const hring_id_info_t *info) {
  hring_bind_t bind;
  struct sockaddr_storage addr;
  HRING_CHECK(hring__topo_bind_mode(&bind));
  HRING_CHECK(hring__sock_local_addr(&info->root, &addr));
  return HRING_SUCCESS;
}

static void release_members(const hring_id_info_t *info, int rank, int n, int64_t timeout_ms) {
  hring_bootstrap_t *bs = NULL;
  HRING_INFO(HRING_SUB_INIT, "hring_comm_split: rank %d of the new communicator cannot be "
             "created; joining its bootstrap root to release the members waiting for it", rank);
  if (hring__bootstrap_connect(info, rank, n, timeout_ms, &bs) == HRING_SUCCESS)
    hring__bootstrap_close(bs);
}

typedef struct {
  int key, rank;
} member_t;

static int member_cmp(const void *a, const void *b) {
  const member_t *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Round 1: checks every record and finds the color's members.  Returns an
 * error when any rank refused its arguments (every rank sees the same
 * records, so every rank takes the same branch). */
static hring_result_t read_args(const split_arg_t *args, int me, int nranks, int *any_color,
                                int *leader, int *child_rank, int *child_size) {
  for (int p = 0; p < nranks; p++) {
    const split_arg_t *a = &args[p];
    if (a->magic != SPLIT_MAGIC || a->status < ARG_OK || a->status > ARG_NULL_OUT ||
        (a->status == ARG_OK && a->color < HRING_SPLIT_NOCOLOR))
      return hring__err(HRING_ERR_REMOTE, "hring_comm_split: rank %d sent a malformed record", p);
  }
  for (int p = 0; p < nranks; p++) {
    const split_arg_t *a = &args[p];
    if (a->status == ARG_OK) continue;
    if (p == me)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_comm_split: %s",
                        a->status == ARG_NULL_OUT ? "newcomm is NULL"
                                                  : "color must be >= 0 or HRING_SPLIT_NOCOLOR");
    if (a->status == ARG_NULL_OUT)
      return hring__err(HRING_ERR_REMOTE, "hring_comm_split: rank %d passed a NULL newcomm; no "
                        "communicator was made", p);
    /* A caller that refuses its own call for other reasons (the NCCL
     * shim, for a bad config) passes an invalid color too. */
    return hring__err(HRING_ERR_REMOTE, "hring_comm_split: rank %d passed an invalid color (%d) "
                      "or refused its call; no communicator was made", p, (int)a->color);
  }
  *any_color = 0;
  for (int p = 0; p < nranks; p++) *any_color |= args[p].color != HRING_SPLIT_NOCOLOR;
  *leader = -1;
  *child_rank = -1;
  *child_size = 0;
  const int color = args[me].color;
  if (color == HRING_SPLIT_NOCOLOR) return HRING_SUCCESS;
  member_t *m = malloc(sizeof *m * (size_t)nranks);
  if (!m) return hring__err(HRING_ERR_NO_MEMORY, "hring_comm_split: %d ranks", nranks);
  int n = 0;
  for (int p = 0; p < nranks; p++)
    if (args[p].color == color) {
      if (*leader < 0) *leader = p;
      m[n++] = (member_t){args[p].key, p};
    }
  qsort(m, (size_t)n, sizeof *m, member_cmp);
  for (int i = 0; i < n; i++)
    if (m[i].rank == me) *child_rank = i;
  free(m);
  *child_size = n;
  return HRING_SUCCESS;
}

/* Step 3, on a rank that has a color: the init, with the calling
 * thread's pinning and the log's rank kept as they were (a child's local
 * ranks would pin ranks of different children of one node onto the same
 * cores, and this thread goes on serving the parent). */
static hring_result_t child_init(const hring_unique_id_t *id, int child_rank, int child_size,
                                 int parent_rank, int64_t timeout_ms, hring_comm_t *child,
                                 char *msg, size_t len) {
  *child = NULL;
  hring_id_info_t info;
  hring_result_t r = hring__id_unpack(id, &info);
  if (r == HRING_SUCCESS && (r = prejoin_check(&info)) != HRING_SUCCESS) {
    snprintf(msg, len, "hring_comm_split: creating rank %d of %d of the new communicator failed: "
             "%s", child_rank, child_size, hring_last_error());
    release_members(&info, child_rank, child_size, timeout_ms);
    return r;
  }
  cpu_set_t before, after;
  int have_before = sched_getaffinity(0, sizeof before, &before) == 0;
  if (r == HRING_SUCCESS) r = hring_comm_init_rank(child, child_size, *id, child_rank);
  if (r != HRING_SUCCESS) {
    *child = NULL;
    snprintf(msg, len, "hring_comm_split: creating rank %d of %d of the new communicator failed: "
             "%s", child_rank, child_size, hring_last_error());
  }
  if (have_before && sched_getaffinity(0, sizeof after, &after) == 0 &&
      !CPU_EQUAL(&before, &after))
    (void)sched_setaffinity(0, sizeof before, &before);
  hring__log_set_rank(parent_rank);
  return r;
}

HRING_API hring_result_t hring_comm_split(hring_comm_t comm, int color, int key,
                                          hring_comm_t *newcomm) {
  static const char fn[] = "hring_comm_split";
  /* The parent's numbers are read once, under the registry's hold: the
   * rest of the call goes through public calls, which check the handle
   * again. */
  HRING_CHECK(hring__comm_enter(comm, fn));
  const int me = comm->rank, nranks = comm->nranks;
  const int64_t timeout_ms = comm->timeout_ms;
  hring_result_t r = HRING_SUCCESS;
  if (atomic_load(&comm->aborted))
    r = hring__err(HRING_ERR_INVALID_USAGE, "%s: the parent communicator was aborted", fn);
  else if (atomic_load(&comm->async_error) != HRING_SUCCESS)
    r = hring__err(HRING_ERR_INVALID_USAGE, "%s: the parent communicator has failed (%s: %s)", fn,
                   hring_strerror(atomic_load(&comm->async_error)), comm->async_msg);
  hring__comm_leave(comm);
  if (r != HRING_SUCCESS) return r;

  split_arg_t mine = {SPLIT_MAGIC, ARG_OK, color, key};
  if (!newcomm) mine.status = ARG_NULL_OUT;
  else if (color < 0 && color != HRING_SPLIT_NOCOLOR) mine.status = ARG_BAD_COLOR;
  split_arg_t *args = NULL;
  split_id_t *ids = NULL, my_id;
  split_done_t *done = NULL, my_done;
  hring_comm_t child = NULL;
  int any_color = 0, leader = -1, child_rank = -1, child_size = 0, failed = -1;
  char my_msg[512] = "";

  args = malloc(sizeof *args * (size_t)nranks);
  ids = malloc(sizeof *ids * (size_t)nranks);
  done = malloc(sizeof *done * (size_t)nranks);
  if (!args || !ids || !done) {
    /* Nothing sent yet: the other ranks wait at the first exchange until
     * their deadline, as for a rank that never calls. */
    r = hring__err(HRING_ERR_NO_MEMORY, "%s: records of %d ranks", fn, nranks);
    goto out;
  }

  /* 1. (color, key) of every rank. */
  HRING_CHECK_GOTO(exchange(comm, &mine, args, sizeof mine, "colors and keys"), r, out);
  HRING_CHECK_GOTO(read_args(args, me, nranks, &any_color, &leader, &child_rank, &child_size), r,
                   out);
  if (!any_color) {
    *newcomm = NULL;
    hring__err_clear();
    goto out;
  }

  /* 2. The ids, made by the lowest rank of each color. */
  memset(&my_id, 0, sizeof my_id);
  my_id.magic = SPLIT_MAGIC;
  if (leader == me) {
    my_id.status = hring_get_unique_id(&my_id.id);
    if (my_id.status != HRING_SUCCESS)
      snprintf(my_id.msg, sizeof my_id.msg, "%s", hring_last_error());
  }
  HRING_CHECK_GOTO(exchange(comm, &my_id, ids, sizeof my_id, "the new communicators' ids"), r, out);

  /* 3. The init, by the members of each color. */
  memset(&my_done, 0, sizeof my_done);
  my_done.magic = SPLIT_MAGIC;
  if (child_size > 0) {
    split_id_t *lid = &ids[leader];
    if (lid->magic != SPLIT_MAGIC) {
      my_done.status = hring__err(HRING_ERR_REMOTE, "%s: rank %d sent a malformed id record", fn,
                                  leader);
    } else if (lid->status != HRING_SUCCESS) {
      /* Its root was never started: nobody of this color waits for it. */
      peer_msg(lid->msg);
      my_done.status = hring__err(HRING_ERR_REMOTE, "%s: rank %d could not make the id of color "
                                  "%d: %s", fn, leader, color, lid->msg);
    } else {
      my_done.status = child_init(&lid->id, child_rank, child_size, me, timeout_ms, &child,
                                  my_msg, sizeof my_msg);
    }
    if (my_done.status != HRING_SUCCESS && !my_msg[0])
      snprintf(my_msg, sizeof my_msg, "%s", hring_last_error());
    snprintf(my_done.msg, sizeof my_done.msg, "%s", my_msg);
  }

  /* 4. Whether every rank made its part. */
  HRING_CHECK_GOTO(exchange(comm, &my_done, done, sizeof my_done, "the outcome of the inits"), r,
                   out);
  for (int p = 0; p < nranks && failed < 0; p++)
    if (done[p].magic != SPLIT_MAGIC || done[p].status != HRING_SUCCESS) failed = p;
  if (failed >= 0) {
    /* Not collective: the other members destroy theirs on the same
     * records.  Before the message, which the destroy must not replace. */
    if (child) (void)hring_comm_destroy(child);
    child = NULL;
    if (my_done.status != HRING_SUCCESS) {
      r = hring__err((hring_result_t)my_done.status, "%s", my_msg);
    } else if (done[failed].magic != SPLIT_MAGIC) {
      r = hring__err(HRING_ERR_REMOTE, "%s: rank %d sent a malformed outcome record", fn, failed);
    } else {
      peer_msg(done[failed].msg);
      r = hring__err(HRING_ERR_REMOTE, "%s: rank %d of the parent could not create its new "
                     "communicator (%s: %s); no communicator was kept", fn, failed,
                     hring_strerror((hring_result_t)done[failed].status), done[failed].msg);
    }
    goto out;
  }
  *newcomm = child; /* NULL for HRING_SPLIT_NOCOLOR */
  child = NULL;
  HRING_INFO(HRING_SUB_INIT, "%s: rank %d/%d: color %d key %d -> rank %d/%d", fn, me, nranks,
             color, key, child_rank, child_size);
  hring__err_clear();

out:
  /* Only when the parent failed during the last exchange: its peers fail
   * there too and drop theirs. */
  if (child) (void)hring_comm_destroy(child);
  free(args);
  free(ids);
  free(done);
  return r;
}
