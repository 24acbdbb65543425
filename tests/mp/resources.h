/*
 * resources.h - what a process holds (fds, threads, memory, shared-memory
 * segments, sockets), read from /proc and /dev/shm, and a small launcher of
 * rank processes for the tests that need more control than mp_run (the
 * soak, cycles, cleanup and abort tests: tests/mp/test_{soak,cycles,
 * cleanup,abort}.c).
 *
 * Shared-memory segments of hring are named /hring-<comm id>-<rank>-<pid>
 * (src/transport/shm.c): res_shm_count(pid) counts the entries of
 * /dev/shm that belong to one process.  It is exact per process, so the
 * tests stay correct while other tests (or another run of the suite)
 * create segments of their own at the same time.
 *
 * Fault injection (HTEST_INJECT=what): the tests read res_inject("what")
 * to break their own side on purpose (leak an fd, keep a thread, skip a
 * cleanup ...), so that anyone can check that a test fails when the
 * guarantee it checks breaks, without touching the library.
 */
#ifndef HRING_TEST_RESOURCES_H
#define HRING_TEST_RESOURCES_H

#include <stddef.h>
#include <sys/types.h>

#include "hring.h"

double res_now(void);

/* Open fds of process pid (0: this process), -1 when unreadable. */
int res_fds(pid_t pid);
/* "Threads:" of /proc/<pid>/status (0: this process), -1 when unreadable. */
int res_threads(pid_t pid);
/* A "Key:  N kB" line of /proc/self/status in kB (VmRSS, RssAnon,
 * RssShmem, ...), -1 when absent. */
long res_status_kb(const char *key);
/* Entries /dev/shm/hring-*-<pid> (segments created by process pid). */
int res_shm_count(pid_t pid);
/* Entries /dev/shm/hring-* of any process (informative only: other tests
 * running at the same time create their own). */
int res_shm_count_all(void);
/* Mappings of shared segments (/dev/shm objects and hring memfds) in
 * /proc/<pid>/maps (0: this process). */
int res_shm_maps(pid_t pid);
/* Mappings in /proc/<pid>/maps of segments named as res_shm_count counts
 * pid's own (also once unlinked): checks that the naming the tests rely
 * on is still the library's. */
int res_shm_maps_own(pid_t pid);
/* Prints every fd of this process with its target (a diagnostic). */
void res_print_fds(const char *who);

/* Socket inodes held by process pid, at most max, into out; returns how
 * many (-1 when unreadable). */
int res_socket_inodes(pid_t pid, unsigned long *out, int max);
/* Looks the n inodes up in /proc/net/tcp and tcp6 (one pass: reading them
 * costs milliseconds): state[i] gets the tcp state of inodes[i] (0x0A
 * LISTEN, 0x01 ESTABLISHED, ...), 0 when no tcp socket has that inode.
 * Returns how many were found. */
int res_tcp_scan(const unsigned long *inodes, int n, unsigned char *state);
#define RES_TCP_LISTEN 0x0A
/* Whether process pid exists (also a zombie counts). */
int res_pid_exists(pid_t pid);

/* HTEST_INJECT contains `what` (a comma-separated list). */
int res_inject(const char *what);

/* Polls until fds, threads and this process's shm entries are back to
 * the given values or timeout_s passed; returns 1 when they are. */
int res_settle(int fds, int threads, int shm, double timeout_s);

/* ---- launcher ---- */


typedef void (*res_body_fn)(int rank, int nranks, void *arg);
/* Forks nranks processes running body(rank, nranks, arg), each exiting 0
 * when it recorded no failure; pids gets them.  Returns 0, or -1 (the
 * ranks forked so far are killed). */
int res_fork_ranks(int nranks, res_body_fn body, void *arg, pid_t *pids);
/* Waits for the ranks (killing every one still alive after timeout_s);
 * returns the number that did not exit 0, reporting each. */
int res_wait_ranks(int nranks, pid_t *pids, double timeout_s);

/* One shared page (MAP_SHARED before the forks) for what ranks report. */
void *res_shared(size_t bytes);

#endif
