/*
 * bodies.h - test bodies that several test files run (on one machine, and
 * on emulated hosts in test_netns.c).
 */
#ifndef HRING_TEST_BODIES_H
#define HRING_TEST_BODIES_H

#include <stddef.h>
#include "hring.h"

/* The allreduce matrix (test_allreduce.c): every count below, every type,
 * every op (or sum only), in and out of place; arg is an mp_matrix_t. */
typedef struct {
  const size_t *counts;
  int ncounts;
  int all_ops; /* every op, else sum only */
} mp_matrix_t;
void mp_allreduce_matrix(hring_comm_t comm, int rank, int nranks, void *arg);

/* A rank killed mid-collective, named by every survivor within 5 s
 * (test_reliability.c); transport NULL: whatever the ranks choose. */
void mp_run_death(const char *transport, int n);
/* The same with count floats per allreduce. */
void mp_run_death_sized(const char *transport, int n, size_t count);

/* reduce_scatter, allgather, broadcast (every root), reduce (every root)
 * and barrier over counts 0, 1, odd and large, several types and every op,
 * in and out of place (test_colls.c). */
void mp_colls_matrix(hring_comm_t comm, int rank, int nranks, void *arg);

#endif
