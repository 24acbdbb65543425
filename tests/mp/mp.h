/*
 * mp.h - running a test body on several ranks (forked processes).
 *
 * mp_run forks n ranks; the test process serves the bootstrap root (it calls
 * hring_get_unique_id) and every rank creates its communicator with
 * hring_comm_init_rank, runs body, and exits 0 when the body recorded no
 * failure.  With MP_NODES=k in the environment rank r runs as if on node
 * r % k (HRING_NODE_ID), so that ranks of one machine talk over tcp
 * (MP_NODE_MAP=a,b,c,... instead puts rank r on node number r of the list,
 * for nodes of unequal sizes; ranks past its end keep MP_NODES'); with
 * MP_NETNS=PREFIX:k it also joins the network namespace PREFIX<r % k>
 * (the bootstrap root joins PREFIX0): emulated hosts, tests/netns/.
 * Ranks that hang are killed by the harness's per-test timeout.
 */
#ifndef HRING_TEST_MP_H
#define HRING_TEST_MP_H

#include <sys/types.h>

#include "harness.h"
#include "hring.h"

typedef void (*mp_body_fn)(hring_comm_t comm, int rank, int nranks, void *arg);

/* A child process that serves the bootstrap root of a new id (written to
 * *id) until it is killed, so that rank processes forked afterwards hold
 * no root thread; it joins MP_NETNS's first namespace when that is set.
 * Returns its pid, or -1. */
pid_t mp_start_root(hring_unique_id_t *id);

/* Returns the number of ranks that failed (0 = all passed). */
int mp_run(int nranks, mp_body_fn body, void *arg);

/* The node MP_NODE_MAP gives rank, or -1 when it gives none. */
int mp_node_of(int rank);

/* Directory of the running test binary (build/bin), for tools next to it. */
const char *mp_bindir(void);

#endif
