/*
 * abort_race.c - probe (not part of the suite): hring_comm_abort from a
 * watchdog thread while the communicator's thread enters hring_allreduce.
 *
 * hring_allreduce checks the handle (allreduce.c check_args) and only then
 * sets comm->in_call; hring_comm_abort (comm.c) frees the communicator at
 * once when in_call is 0.  An abort that lands between the two frees the
 * communicator under the entering call: a use after free.  The watchdog
 * here waits for one call to end (in_call 1 -> 0, read through the
 * internal header) and aborts at once, so the next call is usually in
 * that window.
 *
 * Build against an AddressSanitizer build of the library, outside build/:
 *   make BUILD=/tmp/asan SAN=-fsanitize=address NVCC= /tmp/asan/lib/libhring.a
 *   cc -g -fsanitize=address -Iinclude -Isrc tests/probes/abort_race.c \
 *      /tmp/asan/lib/libhring.a -pthread -ldl -lm -o /tmp/abort_race
 *   HRING_DEBUG=NONE /tmp/abort_race 300
 * Expected while the race exists: "heap-use-after-free ... check_args
 * src/algos/allreduce.c", freed by comm_free from hring_comm_abort.
 * Each trial creates a communicator (about 130 ms while the bootstrap
 * suffers the Nagle delay; see the report of tests/mp/test_cycles.c).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/comm.h"
#include "hring.h"

static hring_comm_t g;

static void *watch(void *arg) {
  (void)arg;
  struct hring_comm *c = (struct hring_comm *)g;
  int seen = 0;
  for (;;) { /* a call ran and ended: abort at once */
    int v = atomic_load(&c->in_call);
    if (v) seen = 1;
    else if (seen) break;
  }
  hring_comm_abort(g);
  return NULL;
}

int main(int argc, char **argv) {
  int trials = argc > 1 ? atoi(argv[1]) : 200;
  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t r1 = fork();
  close(r1 ? p[0] : p[1]); /* rank 1 sees EOF when rank 0 ends */
  for (int t = 0; t < trials; t++) {
    hring_unique_id_t id;
    if (r1) {
      hring_get_unique_id(&id);
      if (write(p[1], &id, sizeof id) != sizeof id) return 1;
    } else if (read(p[0], &id, sizeof id) != sizeof id) {
      _exit(0);
    }
    if (hring_comm_init_rank(&g, 2, id, r1 ? 0 : 1)) {
      fprintf(stderr, "init failed: %s\n", hring_last_error());
      return 1;
    }
    float x = 1;
    pthread_t th;
    if (r1) pthread_create(&th, NULL, watch, NULL);
    while (hring_allreduce(&x, &x, 1, HRING_FLOAT32, HRING_SUM, g, NULL) == HRING_SUCCESS) x = 1;
    if (r1) pthread_join(th, NULL);
    else hring_comm_destroy(g);
  }
  if (r1) {
    close(p[1]);
    waitpid(r1, NULL, 0);
    printf("%d trials, no use after free seen\n", trials);
  }
  return 0;
}
