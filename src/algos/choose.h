/*
 * choose.h - the algorithm of each allreduce call: forced (HRING_ALGO), or
 * predicted fastest by the cost model (model.h) for the communicator's
 * layout, with the rules measured on one node where the model is blind.
 */
#ifndef HRING_CHOOSE_H
#define HRING_CHOOSE_H

#include <stddef.h>
#include <stdint.h>

#include "algos/algo.h"
#include "core/comm.h"

/* Loads the model (HRING_MODEL_FILE, else the built-in parameters) into
 * comm; called once the layout is agreed.  A bad file fails the init. */
hring_result_t hring__choice_init(struct hring_comm *comm);
void hring__choice_free(struct hring_comm *comm);
/* A digest of the cost model's parameters (the file or the built-in ones):
 * the same on every rank, or ranks would choose differently. */
uint64_t hring__choice_digest(const struct hring_comm *comm);

/* The algorithm id (algo.h) for an allreduce of `bytes` bytes: the same on
 * every rank, since it depends only on agreed values. */
int hring__choose(struct hring_comm *comm, size_t bytes);

/* Every algorithm that can run an allreduce of `bytes` bytes on this
 * communicator (hier and hier2d only across nodes), fastest predicted
 * first, into out; returns how many (the online tuner's candidates). */
int hring__choice_ranked(struct hring_comm *comm, size_t bytes, int out[HRING_ALGO_COUNT]);

#endif
