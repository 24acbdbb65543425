/*
 * bootstrap.h - the out-of-band rendezvous used while a communicator is
 * created: a root (a thread in one process) that every rank connects to, and
 * rounds of allgather through it.  Every connection proves the job secret by
 * challenge-response; a connection that fails is dropped and logged, and the
 * root keeps waiting for the real ranks until the deadline.
 */
#ifndef HRING_CORE_BOOTSTRAP_H
#define HRING_CORE_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "hring.h"

typedef struct hring_bootstrap hring_bootstrap_t;

/* The contents of a unique id. */
typedef struct {
  struct sockaddr_storage root;
  uint8_t secret[16];
} hring_id_info_t;

hring_result_t hring__id_pack(const hring_id_info_t *info, hring_unique_id_t *id);
hring_result_t hring__id_unpack(const hring_unique_id_t *id, hring_id_info_t *info);

/* Starts the root service in a detached thread, listening on info->root
 * (port 0: any; the bound port is written back).  It serves one job and
 * ends when every rank has closed, or at the timeout. */
hring_result_t hring__bootstrap_root_start(hring_id_info_t *info, int64_t timeout_ms);

hring_result_t hring__bootstrap_connect(const hring_id_info_t *info, int rank, int nranks,
                                        int64_t timeout_ms, hring_bootstrap_t **bs);
/* all[r*size .. ] = rank r's `mine`; every rank must pass the same size. */
hring_result_t hring__bootstrap_allgather(hring_bootstrap_t *bs, const void *mine, void *all,
                                          size_t size);
hring_result_t hring__bootstrap_barrier(hring_bootstrap_t *bs);
void hring__bootstrap_close(hring_bootstrap_t *bs);

/* Random bytes from the kernel (getrandom). */
hring_result_t hring__random(void *buf, size_t len);

#endif
