/*
 * test_cycles.c - creating and destroying communicators leaves nothing
 * behind.
 *
 * Two rank processes run 100 cycles (50 over tcp only) of: rank 0 makes a fresh unique id
 * (hring_get_unique_id: a bootstrap root thread in rank 0, as in a real
 * program) and passes it to rank 1 through a pipe; both call
 * hring_comm_init_rank, run a few allreduces (checked), and
 * hring_comm_destroy.  Afterwards every rank must be back to what it had
 * before the first cycle: open fds (/proc/self/fd), threads (/proc/self/
 * status), hring segments of its own in /dev/shm and mappings of /dev/shm
 * objects (/proc/self/maps).  The root thread of rank 0 ends on its own
 * after the last rank left the bootstrap, so the counts are polled for up
 * to 3 s.
 *
 * tests/valgrind/cycles.sh runs these tests under valgrind's leak check
 * (HTEST_CYCLES=N shortens them there).  HTEST_INJECT=cycles_fd,
 * cycles_thread or cycles_shm makes the test body leak one of those on
 * purpose, to show that the test then fails (resources.h); cycles_malloc
 * leaks heap memory, which only valgrind sees.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hring.h"
#include "resources.h"

typedef struct {
  int before_fds, before_threads, before_shm, before_maps;
  int after_fds, after_threads, after_shm, after_maps;
  int maps_in_cycle; /* /dev/shm mappings while a communicator lives */
  int own_in_cycle;  /* of them, the segment named after this process */
  double seconds;
} cyc_rank_t;

typedef struct {
  int cycles;
  int id_pipe[2]; /* rank 0 -> rank 1: one unique id per cycle */
  cyc_rank_t r[2];
} cyc_t;

static void check_allreduces(hring_comm_t comm, int rank, int cycle) {
  static float x[70001];
  static int32_t y[1000];
  const size_t counts[] = {1, 1000, 70001};
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    size_t n = counts[k];
    for (size_t i = 0; i < n; i++) x[i] = (float)((i % 13) + (size_t)rank);
    hring_result_t r = hring_allreduce(x, x, n, HRING_FLOAT32, HRING_SUM, comm, NULL);
    HREQUIRE(r == HRING_SUCCESS, "rank %d cycle %d: allreduce of %zu: %s: %s", rank, cycle, n,
             hring_strerror(r), hring_last_error());
    for (size_t i = 0; i < n; i++)
      HREQUIRE(x[i] == (float)(2 * (i % 13) + 1), "rank %d cycle %d: count %zu: x[%zu] = %g", rank,
               cycle, n, i, x[i]);
  }
  int32_t out[1000];
  for (int i = 0; i < 1000; i++) y[i] = rank ? i : -i;
  hring_result_t r = hring_allreduce(y, out, 1000, HRING_INT32, HRING_MAX, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS, "rank %d cycle %d: int32 max: %s", rank, cycle, hring_last_error());
  for (int i = 0; i < 1000; i++) HREQUIRE(out[i] == i, "rank %d: max[%d] = %d", rank, i, out[i]);
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

/* What HTEST_INJECT asks to leak, once per cycle, on rank 1. */
static void inject(int rank, int cycle) {
  if (rank != 1) return;
  if (res_inject("cycles_fd")) (void)!open("/dev/null", O_RDONLY);
  if (res_inject("cycles_malloc")) { /* for tests/valgrind/cycles.sh */
    volatile char *p = malloc(100);
    if (p) p[0] = (char)cycle;
  }
  if (res_inject("cycles_thread") && cycle == 0) {
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
  }
  if (res_inject("cycles_shm") && cycle == 0) {
    char name[64];
    snprintf(name, sizeof name, "/hring-inject-%d-%d", rank, (int)getpid());
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd >= 0) {
      if (ftruncate(fd, 4096) == 0) (void)!mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
      close(fd);
    }
  }
}

static void cycles_body(int rank, int nranks, void *arg) {
  cyc_t *c = arg;
  cyc_rank_t *me = &c->r[rank];
  /* the other end of the pipe is not this rank's */
  close(rank == 0 ? c->id_pipe[0] : c->id_pipe[1]);
  me->before_fds = res_fds(0);
  me->before_threads = res_threads(0);
  me->before_shm = res_shm_count(getpid());
  me->before_maps = res_shm_maps(0);
  double t0 = res_now();
  for (int cycle = 0; cycle < c->cycles; cycle++) {
    hring_unique_id_t id;
    if (rank == 0) {
      hring_result_t r = hring_get_unique_id(&id);
      HREQUIRE(r == HRING_SUCCESS, "cycle %d: hring_get_unique_id: %s", cycle, hring_last_error());
      HREQUIRE(write(c->id_pipe[1], &id, sizeof id) == (ssize_t)sizeof id, "cycle %d: write id",
               cycle);
    } else {
      HREQUIRE(read(c->id_pipe[0], &id, sizeof id) == (ssize_t)sizeof id,
               "cycle %d: no id from rank 0 (it failed)", cycle);
    }
    hring_comm_t comm;
    hring_result_t r = hring_comm_init_rank(&comm, nranks, id, rank);
    HREQUIRE(r == HRING_SUCCESS, "rank %d cycle %d: init: %s: %s", rank, cycle, hring_strerror(r),
             hring_last_error());
    if (cycle == 0) {
      me->maps_in_cycle = res_shm_maps(0);
      me->own_in_cycle = res_shm_maps_own(0);
    }
    check_allreduces(comm, rank, cycle);
    r = hring_comm_destroy(comm);
    HREQUIRE(r == HRING_SUCCESS, "rank %d cycle %d: destroy: %s", rank, cycle, hring_last_error());
    inject(rank, cycle);
  }
  me->seconds = res_now() - t0;
  /* The bootstrap root thread (rank 0) leaves on its own, just after the
   * last rank closed its bootstrap connection. */
  (void)res_settle(me->before_fds, me->before_threads, me->before_shm, 3.0);
  me->after_fds = res_fds(0);
  me->after_threads = res_threads(0);
  me->after_shm = res_shm_count(getpid());
  me->after_maps = res_shm_maps(0);
  HCHECK(me->after_fds == me->before_fds, "rank %d: %d open fds before the first cycle, %d after "
         "%d cycles", rank, me->before_fds, me->after_fds, c->cycles);
  if (me->after_fds != me->before_fds) res_print_fds(rank ? "rank 1" : "rank 0");
  HCHECK(me->after_threads == me->before_threads, "rank %d: %d threads before, %d after %d cycles",
         rank, me->before_threads, me->after_threads, c->cycles);
  HCHECK(me->after_shm == me->before_shm, "rank %d: %d hring segments of this process in /dev/shm "
         "before, %d after %d cycles", rank, me->before_shm, me->after_shm, c->cycles);
  HCHECK(me->after_maps == me->before_maps, "rank %d: %d /dev/shm mappings before, %d after %d "
         "cycles", rank, me->before_maps, me->after_maps, c->cycles);
}

/* Removes what cycles_shm leaked (the ranks are gone). */
static void remove_injected(const pid_t *pids) {
  for (int rank = 0; rank < 2; rank++) {
    char name[64];
    snprintf(name, sizeof name, "/hring-inject-%d-%d", rank, (int)pids[rank]);
    shm_unlink(name);
  }
}

static void run_cycles(const char *transports, int cycles) {
  if (transports) setenv("HRING_TRANSPORTS", transports, 1);
  else unsetenv("HRING_TRANSPORTS");
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  cyc_t *c = res_shared(sizeof *c);
  HREQUIRE(c, "mmap");
  c->cycles = cycles;
  const char *env = getenv("HTEST_CYCLES");
  if (env && atoi(env) > 0) c->cycles = atoi(env);
  HREQUIRE(pipe(c->id_pipe) == 0, "pipe");
  int shm_all_before = res_shm_count_all();
  pid_t pids[2];
  HREQUIRE(res_fork_ranks(2, cycles_body, c, pids) == 0, "fork");
  close(c->id_pipe[0]);
  close(c->id_pipe[1]);
  int failed = res_wait_ranks(2, pids, 150);
  remove_injected(pids);
  for (int rank = 0; rank < 2; rank++) {
    cyc_rank_t *m = &c->r[rank];
    printf("  %s rank %d: %d cycles in %.2f s (%.1f ms each); fds %d -> %d, threads %d -> %d, "
           "own /dev/shm segments %d -> %d, /dev/shm mappings %d -> %d (%d while a comm lived)\n",
           transports ? transports : "shm+tcp", rank, c->cycles, m->seconds,
           1e3 * m->seconds / c->cycles, m->before_fds, m->after_fds, m->before_threads,
           m->after_threads, m->before_shm, m->after_shm, m->before_maps, m->after_maps,
           m->maps_in_cycle);
  }
  printf("  all hring entries in /dev/shm (any process): %d before, %d after\n", shm_all_before,
         res_shm_count_all());
  HREQUIRE(failed == 0, "%d rank(s) failed", failed);
  /* Over shm the ranks must have mapped segments: the counts above saw
   * them come and go. */
  if (!transports || strcmp(transports, "tcp") != 0) {
    HCHECK(c->r[0].maps_in_cycle > c->r[0].before_maps, "no /dev/shm mapping while a shm "
           "communicator lived: the shm counts check nothing");
    HCHECK(c->r[0].own_in_cycle > 0 && c->r[1].own_in_cycle > 0, "no mapped segment named "
           "/hring-*-<pid>: shm.c names them otherwise now; update resources.c (shm_name_pid)");
  }
  munmap(c, sizeof *c);
}

/* Default transports: shm between the ranks, and a tcp listener made and
 * closed at every init. */
HTEST(cycles_init_destroy_np2, 60) { run_cycles(NULL, 100); }
HTEST(cycles_init_destroy_tcp_np2, 60) { run_cycles("tcp", 50); }
