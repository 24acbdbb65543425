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
/* TCP_NODELAY, buffers (0: the kernel's autotuning) and congestion control
 * (NULL or "": the kernel's default). */
void hring__sock_tune(int fd, int sockbuf_bytes, const char *cc);
/* TCP_CONGESTION: 0 or an errno. */
int hring__sock_set_cc(int fd, const char *cc);
/* The socket's congestion control's name into buf (at least 16 bytes); 0 or
 * an errno. */
int hring__sock_get_cc(int fd, char *buf, size_t len);

/* A host that vanishes (power loss, cable pulled) closes nothing: no FIN, no
 * RST.  Its peers learn of it from silence.  Every connection has the
 * kernel's keepalive on: after HRING_SOCK_KEEPIDLE_S seconds with nothing
 * received it sends a probe, then one every HRING_SOCK_KEEPINTVL_S seconds,
 * and a live peer's kernel answers each one (even while its process is
 * stopped or busy).  While data is unacknowledged the kernel retransmits
 * instead (after about 0.2, 0.6, 1.4, 3 s on a LAN), which a live peer also
 * answers.  So a live peer is never silent for much more than KEEPIDLE plus a
 * round trip, and silence of HRING_SOCK_SILENCE_MS means the host is gone.
 * Counted from the last thing heard, which is at the latest the moment the
 * host vanished:
 *   tcp transport: the health poll (every 100 ms while a rank waits) checks
 *     hring__sock_silent_ms, so a survivor errs within 4 s + 0.1 s, and its
 *     failure notice reaches the ranks that had no connection to that host;
 *   bootstrap: the kernel ends the connection after KEEPIDLE + KEEPCNT *
 *     KEEPINTVL = 2 + 2 * 1 = 4 s, and the waiting call reads ETIMEDOUT.
 * Both stay inside the 5 s that docs/reliability.md promises for a death. */
#define HRING_SOCK_KEEPIDLE_S 2
#define HRING_SOCK_KEEPINTVL_S 1
#define HRING_SOCK_KEEPCNT 2 /* used by the kernel only where no user timeout is set */
#define HRING_SOCK_SILENCE_MS 4000

/* SO_KEEPALIVE with the timings above, and TCP_USER_TIMEOUT = user_timeout_ms
 * when it is > 0 (the kernel then ends the connection once data or a probe
 * has gone unacknowledged that long).  Best effort: a socket that is not
 * TCP (a socketpair in tests) keeps its defaults. */
void hring__sock_keepalive(int fd, int user_timeout_ms);
/* How long (ms) the peer's kernel has been silent on a connected TCP socket:
 * nothing received from it, data nor acknowledgement.  -1 when that says
 * nothing about the peer: not TCP, not established, or data waits on a
 * window the peer keeps closed (a live peer that is not reading; the kernel
 * backs its window probes off to tens of seconds, so silence there is no
 * sign of death). */
int hring__sock_silent_ms(int fd);

/* The address this host uses for tcp (HRING_SOCKET_IFNAME's address, else
 * the address that reaches `root`, else loopback).  Port is 0. */
hring_result_t hring__sock_local_addr(const struct sockaddr_storage *root,
                                      struct sockaddr_storage *addr);

/* Keyed proof of the job secret for a challenge (no secret on the wire). */
void hring__auth_proof(const uint8_t *secret, size_t secret_len, const uint8_t *challenge,
                       size_t challenge_len, uint8_t out[16]);

#endif
