/*
 * socket.h - blocking-with-deadline socket helpers for the bootstrap and the
 * tcp transport's set-up.  Every call is bounded by an absolute deadline
 * (hring__now_ns() clock); none waits forever.
 */
#ifndef HRING_CORE_SOCKET_H
#define HRING_CORE_SOCKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "hring.h"

/* "host:port", "[v6]:port" or "host" (port 0) -> address.  Host names are
 * resolved (IPv4 preferred). */
hring_result_t hring__addr_parse(const char *text, struct sockaddr_storage *addr);
/* "a.b.c.d:port" text of an address (static thread-local buffer). */
const char *hring__addr_str(const struct sockaddr_storage *addr);
socklen_t hring__addr_len(const struct sockaddr_storage *addr);
uint16_t hring__addr_port(const struct sockaddr_storage *addr);
void hring__addr_set_port(struct sockaddr_storage *addr, uint16_t port);

/* Listening socket on addr (port 0: any); the bound address is written back
 * to addr.  SO_REUSEADDR is set so a launcher-chosen port can be taken. */
hring_result_t hring__sock_listen(struct sockaddr_storage *addr, int *fd);
/* Connects, retrying refused connections (the peer may not listen yet)
 * until the deadline. */
hring_result_t hring__sock_connect(const struct sockaddr_storage *addr, uint64_t deadline_ns,
                                   int *fd);
hring_result_t hring__sock_accept(int lfd, uint64_t deadline_ns, int *fd);
/* Whole-buffer I/O; EOF is reported as HRING_ERR_REMOTE. */
hring_result_t hring__sock_send_all(int fd, const void *buf, size_t len, uint64_t deadline_ns);
hring_result_t hring__sock_recv_all(int fd, void *buf, size_t len, uint64_t deadline_ns);
hring_result_t hring__sock_set_nonblock(int fd, int on);
void hring__sock_tune(int fd, int sockbuf_bytes); /* TCP_NODELAY, buffers */

/* The address this host uses for tcp (HRING_SOCKET_IFNAME's address, else
 * the address that reaches `root`, else loopback).  Port is 0. */
hring_result_t hring__sock_local_addr(const struct sockaddr_storage *root,
                                      struct sockaddr_storage *addr);

/* Keyed proof of the job secret for a challenge (no secret on the wire). */
void hring__auth_proof(const uint8_t *secret, size_t secret_len, const uint8_t *challenge,
                       size_t challenge_len, uint8_t out[16]);

#endif
