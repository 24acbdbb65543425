/*
 * tcp.h - the tcp transport's module interface.
 *
 * The transport is split in two files: tcp_data.c holds the per-connection
 * data path (FIFOs of slots over one non-blocking stream socket, moved by
 * progress without any thread), tcp_setup.c the collective set-up (listener,
 * authenticated connection handshake, teardown) and the ops table.  The
 * functions below are what one half needs from the other, and what tests use
 * to drive a connection over a socket they made themselves.
 */
#ifndef HRING_TRANSPORT_TCP_H
#define HRING_TRANSPORT_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hring.h"
#include "transport/transport.h"

struct hring_comm;

/* Per-communicator state, in comm->tstate[HRING_TRANSPORT_TCP]. */
typedef struct {
  int lfd;                      /* listening socket, until after_barrier */
  struct sockaddr_storage addr; /* where it listens */
  size_t slot_size;             /* HRING_TCP_SLOT_SIZE, clamped */
  int nslots;                   /* HRING_TCP_SLOTS, clamped */
  int sockbuf;                  /* HRING_TCP_SOCKBUF (0: kernel autotuning) */
  char cc[16];                  /* HRING_TCP_CC resolved; "": the kernel's default */
} hring_tcp_state_t;

/* What every rank publishes in its set-up blob (host byte order; the magic
 * also tells a rank whose blob has no tcp listener). */
typedef struct {
  uint32_t magic;
  uint32_t version;
  uint32_t slot_size;
  uint16_t port;
  uint16_t reserved;
} hring_tcp_blob_t;

/* Data frames: a header of HRING_TCP_FRAME_HDR bytes {uint32 payload
 * length, uint32 tag, zero padding} then the payload; tag =
 * HRING_TCP_FRAME_MAGIC ^ (uint32_t)frame sequence number (counted from 0
 * in each direction of a connection). */
#define HRING_TCP_FRAME_HDR 64
#define HRING_TCP_FRAME_MAGIC 0x68527446u /* "hRtF" */
#define HRING_TCP_BLOB_MAGIC 0x68527442u  /* "hRtB" */
#define HRING_TCP_VERSION 1u

/* The blob of `rank` when it holds a tcp listener, else NULL. */
const hring_tcp_blob_t *hring__tcp_blob(struct hring_comm *comm, int rank, hring_tcp_blob_t *copy);

/* The collective connection set-up (tcp_connect.c): the connect slot of
 * hring__tcp_ops. */
hring_result_t hring__tcp_connect(struct hring_comm *comm, const int *peers, int npeers);

/* Builds a connection to `peer` from an already-connected stream socket,
 * with the slot size and depth configured for comm (HRING_TCP_SLOT_SIZE,
 * HRING_TCP_SLOTS; the slot size agreed with the peer when its set-up blob
 * is known).  The socket is made non-blocking.  On success the connection
 * owns fd (hring__tcp_conn_free closes it); on failure the caller still
 * does. */
hring_result_t hring__tcp_conn_from_fd(struct hring_comm *comm, int peer, int fd,
                                       hring_conn_t **out);

/* Same with an explicit slot size (bytes, the largest message) and FIFO
 * depth; both sides of a socket must use the same slot size. */
hring_result_t hring__tcp_conn_create(struct hring_comm *comm, int peer, int fd, size_t slot_size,
                                      int nslots, hring_conn_t **out);

/* Closes the socket and frees the connection (NULL is ignored). */
void hring__tcp_conn_free(hring_conn_t *c);

/* Data-path slots of hring__tcp_ops (tcp_data.c). */
hring_result_t hring__tcp_send_get(hring_conn_t *c, void **buf);
hring_result_t hring__tcp_send_post(hring_conn_t *c, size_t len);
hring_result_t hring__tcp_recv_get(hring_conn_t *c, void **buf, size_t *len);
hring_result_t hring__tcp_recv_release(hring_conn_t *c);
hring_result_t hring__tcp_progress(hring_conn_t *c);
hring_result_t hring__tcp_flush(hring_conn_t *c);
int hring__tcp_wait_fd(hring_conn_t *c, short *events);
hring_result_t hring__tcp_health(hring_conn_t *c, int level);
void hring__tcp_notify(hring_conn_t *c, int state, hring_result_t code, const char *why);
/* Whether c's failure notice still waits for the peer to acknowledge it
 * (tcp_data.c says why teardown waits for that); drops what the peer sent. */
int hring__tcp_notice_pending(hring_conn_t *c);

#endif
