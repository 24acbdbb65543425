/* socket.c - socket helpers with deadlines (see socket.h). */
#include "core/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/wait.h"

socklen_t hring__addr_len(const struct sockaddr_storage *a) {
  return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

uint16_t hring__addr_port(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
  return ntohs(((const struct sockaddr_in *)a)->sin_port);
}

void hring__addr_set_port(struct sockaddr_storage *a, uint16_t port) {
  if (a->ss_family == AF_INET6) ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
  else ((struct sockaddr_in *)a)->sin_port = htons(port);
}

const char *hring__addr_str(const struct sockaddr_storage *a) {
  static _Thread_local char buf[80];
  char host[INET6_ADDRSTRLEN] = "?";
  if (a->ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, host, sizeof host);
    snprintf(buf, sizeof buf, "[%s]:%u", host, hring__addr_port(a));
  } else {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, host, sizeof host);
    snprintf(buf, sizeof buf, "%s:%u", host, hring__addr_port(a));
  }
  return buf;
}

hring_result_t hring__addr_parse(const char *text, struct sockaddr_storage *addr) {
  char host[256];
  const char *port = NULL;
  if (!text || !*text) return hring__err(HRING_ERR_INVALID_ARGUMENT, "empty address");
  if (text[0] == '[') {
    const char *end = strchr(text, ']');
    if (!end || (size_t)(end - text - 1) >= sizeof host)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "bad address '%s'", text);
    memcpy(host, text + 1, (size_t)(end - text - 1));
    host[end - text - 1] = '\0';
    if (end[1] == ':') port = end + 2;
  } else {
    const char *colon = strrchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n >= sizeof host) return hring__err(HRING_ERR_INVALID_ARGUMENT, "bad address '%s'", text);
    memcpy(host, text, n);
    host[n] = '\0';
    if (colon) port = colon + 1;
  }
  long p = 0;
  if (port) {
    char *end;
    p = strtol(port, &end, 10);
    if (*end || p < 0 || p > 65535)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "bad port in address '%s'", text);
  }
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc != 0 || !res)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "cannot resolve '%s': %s", host, gai_strerror(rc));
  struct addrinfo *pick = res;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET) { pick = ai; break; }
  memset(addr, 0, sizeof *addr);
  memcpy(addr, pick->ai_addr, pick->ai_addrlen);
  freeaddrinfo(res);
  hring__addr_set_port(addr, (uint16_t)p);
  return HRING_SUCCESS;
}

hring_result_t hring__sock_set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) < 0)
    return hring__err_errno(HRING_ERR_SYSTEM, errno, "fcntl(O_NONBLOCK)");
  return HRING_SUCCESS;
}

/* Every connection carries small request-reply messages (bootstrap rounds,
 * handshakes): without this, Nagle's algorithm and delayed ACKs hold each
 * round for ~40 ms. */
static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void hring__sock_tune(int fd, int sockbuf, const char *cc) {
  set_nodelay(fd);
  if (sockbuf > 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf);
  }
  if (cc && cc[0]) (void)hring__sock_set_cc(fd, cc);
}

int hring__sock_set_cc(int fd, const char *cc) {
  return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc)) == 0 ? 0 : errno;
}

int hring__sock_get_cc(int fd, char *buf, size_t len) {
  socklen_t l = (socklen_t)(len - 1);
  memset(buf, 0, len);
  return getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, buf, &l) == 0 ? 0 : errno;
}

void hring__sock_keepalive(int fd, int user_timeout_ms) {
  int one = 1, idle = HRING_SOCK_KEEPIDLE_S, intvl = HRING_SOCK_KEEPINTVL_S;
  int cnt = HRING_SOCK_KEEPCNT;
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) != 0) return;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  if (user_timeout_ms > 0) {
    unsigned int ut = (unsigned int)user_timeout_ms;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut);
  }
}

int hring__sock_silent_ms(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.tcpi_state != TCP_ESTABLISHED)
    return -1;
  /* Data received refreshes one clock, acknowledgements (keepalive replies
   * among them) the other: the kernel's keepalive counts from the later of
   * the two, and so does this. */
  uint32_t quiet = ti.tcpi_last_data_recv < ti.tcpi_last_ack_recv ? ti.tcpi_last_data_recv
                                                                    : ti.tcpi_last_ack_recv;
  if (quiet < HRING_SOCK_SILENCE_MS) return (int)quiet;
  int queued = 0;
  if (ti.tcpi_unacked == 0 && ioctl(fd, TIOCOUTQ, &queued) == 0 && queued > 0) return -1;
  return quiet > INT32_MAX ? INT32_MAX : (int)quiet;
}

hring_result_t hring__sock_listen(struct sockaddr_storage *addr, int *out) {
  int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return hring__err_errno(HRING_ERR_SYSTEM, errno, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)addr, hring__addr_len(addr)) < 0) {
    int e = errno;
    close(fd);
    return hring__err_errno(HRING_ERR_SYSTEM, e, "bind %s", hring__addr_str(addr));
  }
  if (listen(fd, 1024) < 0) {
    int e = errno;
    close(fd);
    return hring__err_errno(HRING_ERR_SYSTEM, e, "listen");
  }
  socklen_t len = sizeof *addr;
  getsockname(fd, (struct sockaddr *)addr, &len);
  *out = fd;
  return HRING_SUCCESS;
}

static int remaining_ms(uint64_t deadline_ns) {
  uint64_t now = hring__now_ns();
  if (now >= deadline_ns) return 0;
  uint64_t ms = (deadline_ns - now + 999999) / 1000000;
  return ms > 1000 ? 1000 : (int)ms; /* wake up at least once a second */
}

/* The bootstrap's sockets (connect and accept below) get keepalive without a
 * user timeout: a vanished root or rank is found 4 s after it was last heard
 * from while the other side waits on it (the kernel ends the connection and
 * the wait reads ETIMEDOUT), and a live but slow one (a rank stopped in a
 * debugger, with its window closed) still waits for the deadline. */
hring_result_t hring__sock_connect(const struct sockaddr_storage *addr, uint64_t deadline_ns,
                                   int *out) {
  uint64_t backoff_us = 1000;
  for (;;) {
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return hring__err_errno(HRING_ERR_SYSTEM, errno, "socket");
    if (connect(fd, (const struct sockaddr *)addr, hring__addr_len(addr)) == 0) {
      set_nodelay(fd);
      hring__sock_keepalive(fd, 0);
      *out = fd;
      return HRING_SUCCESS;
    }
    int e = errno;
    close(fd);
    if (e != ECONNREFUSED && e != EINTR && e != ETIMEDOUT && e != EAGAIN && e != ENETUNREACH)
      return hring__err_errno(HRING_ERR_SYSTEM, e, "connect to %s", hring__addr_str(addr));
    if (hring__now_ns() + backoff_us * 1000 > deadline_ns)
      return hring__err_errno(HRING_ERR_TIMEOUT, e, "connect to %s: gave up at the deadline",
                              hring__addr_str(addr));
    usleep((useconds_t)backoff_us);
    if (backoff_us < 100000) backoff_us *= 2;
  }
}

hring_result_t hring__sock_accept(int lfd, uint64_t deadline_ns, int *out) {
  for (;;) {
    struct pollfd p = {lfd, POLLIN, 0};
    int ms = remaining_ms(deadline_ns);
    if (ms == 0) return hring__err(HRING_ERR_TIMEOUT, "accept: no connection before the deadline");
    int rc = poll(&p, 1, ms);
    if (rc < 0 && errno != EINTR) return hring__err_errno(HRING_ERR_SYSTEM, errno, "poll");
    if (rc <= 0) continue;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
      set_nodelay(fd);
      hring__sock_keepalive(fd, 0);
      *out = fd;
      return HRING_SUCCESS;
    }
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
      return hring__err_errno(HRING_ERR_SYSTEM, errno, "accept");
  }
}

static hring_result_t sock_io(int fd, void *buf, size_t len, uint64_t deadline_ns, int sending) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = sending ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
                        : recv(fd, p, len, MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n == 0 && !sending) return hring__err(HRING_ERR_REMOTE, "connection closed by the peer");
    if (n < 0 && (errno == ETIMEDOUT || errno == EHOSTUNREACH))
      return hring__err_errno(HRING_ERR_REMOTE, errno, "%s: the peer's host stopped answering "
                              "(keepalive probes unanswered: down, or the network is cut)",
                              sending ? "send" : "recv");
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return hring__err_errno(errno == ECONNRESET || errno == EPIPE ? HRING_ERR_REMOTE
                                                                    : HRING_ERR_SYSTEM,
                              errno, sending ? "send" : "recv");
    struct pollfd pfd = {fd, sending ? POLLOUT : POLLIN, 0};
    int ms = remaining_ms(deadline_ns);
    if (ms == 0) return hring__err(HRING_ERR_TIMEOUT, "%s: deadline passed", sending ? "send" : "recv");
    if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
      return hring__err_errno(HRING_ERR_SYSTEM, errno, "poll");
  }
  return HRING_SUCCESS;
}

hring_result_t hring__sock_send_all(int fd, const void *buf, size_t len, uint64_t deadline_ns) {
  return sock_io(fd, (void *)buf, len, deadline_ns, 1);
}

hring_result_t hring__sock_recv_all(int fd, void *buf, size_t len, uint64_t deadline_ns) {
  return sock_io(fd, buf, len, deadline_ns, 0);
}

hring_result_t hring__sock_local_addr(const struct sockaddr_storage *root,
                                      struct sockaddr_storage *addr) {
  const char *ifname = hring__cfg_str(HRING_CFG_SOCKET_IFNAME);
  memset(addr, 0, sizeof *addr);
  if (ifname && *ifname) {
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0) return hring__err_errno(HRING_ERR_SYSTEM, errno, "getifaddrs");
    int found = 0;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
      if (!i->ifa_addr || strcmp(i->ifa_name, ifname) != 0) continue;
      if (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6) {
        memcpy(addr, i->ifa_addr, i->ifa_addr->sa_family == AF_INET
                                      ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        found = 1;
      }
    }
    freeifaddrs(ifs);
    if (!found)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "HRING_SOCKET_IFNAME=%s: no such interface "
                        "with an IP address", ifname);
    hring__addr_set_port(addr, 0);
    return HRING_SUCCESS;
  }
  if (!root) {
    /* No root yet (we are the root): the first interface that is up and not
     * loopback, as peers on other hosts must reach it; else loopback. */
    struct ifaddrs *ifs = NULL;
    int found = 0;
    if (getifaddrs(&ifs) == 0) {
      for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
        memcpy(addr, i->ifa_addr, sizeof(struct sockaddr_in));
        found = 1;
      }
      freeifaddrs(ifs);
    }
    if (!found) {
      struct sockaddr_in *in = (struct sockaddr_in *)addr;
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    hring__addr_set_port(addr, 0);
    return HRING_SUCCESS;
  }
  /* The source address the kernel picks to reach the root is one the root's
   * network can reach back (a UDP connect sends nothing). */
  int fd = socket(root->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    struct sockaddr_storage probe = *root;
    if (hring__addr_port(&probe) == 0) hring__addr_set_port(&probe, 9);
    socklen_t len = sizeof *addr;
    if (connect(fd, (struct sockaddr *)&probe, hring__addr_len(&probe)) == 0 &&
        getsockname(fd, (struct sockaddr *)addr, &len) == 0) {
      close(fd);
      hring__addr_set_port(addr, 0);
      return HRING_SUCCESS;
    }
    close(fd);
  }
  struct sockaddr_in *in = (struct sockaddr_in *)addr;
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return HRING_SUCCESS;
}

/* SipHash-2-4 (Aumasson & Bernstein), a keyed PRF: the proof that a peer
 * knows the job secret without sending it. */
static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
#define SIPROUND                                                              \
  do {                                                                        \
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                 \
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                    \
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                    \
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                 \
  } while (0)

static uint64_t siphash(const uint8_t key[16], const uint8_t *m, size_t len) {
  uint64_t k0, k1;
  memcpy(&k0, key, 8);
  memcpy(&k1, key + 8, 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, m + i, 8);
    v3 ^= w; SIPROUND; SIPROUND; v0 ^= w;
  }
  uint64_t b = (uint64_t)len << 56;
  for (size_t j = 0; i + j < len; j++) b |= (uint64_t)m[i + j] << (8 * j);
  v3 ^= b; SIPROUND; SIPROUND; v0 ^= b;
  v2 ^= 0xff;
  SIPROUND; SIPROUND; SIPROUND; SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

void hring__auth_proof(const uint8_t *secret, size_t secret_len, const uint8_t *challenge,
                       size_t challenge_len, uint8_t out[16]) {
  uint8_t key[16] = {0};
  memcpy(key, secret, secret_len < 16 ? secret_len : 16);
  uint8_t buf[256];
  size_t n = challenge_len < sizeof buf - 1 ? challenge_len : sizeof buf - 1;
  memcpy(buf + 1, challenge, n);
  for (int half = 0; half < 2; half++) {
    buf[0] = (uint8_t)half; /* domain separation of the two 64-bit halves */
    uint64_t h = siphash(key, buf, n + 1);
    memcpy(out + 8 * half, &h, 8);
  }
}
