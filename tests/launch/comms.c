/*
 * comms.c - several communicators of one job through hring_comm_init_env,
 * run by mpirun.sh and srun.sh under a PMIx launcher: two live at once, the
 * first destroyed, a third created after it (so the PMIx session outlives a
 * destroyed communicator, and every call gets an id of its own), with an
 * allreduce checked on each.  Prints one line from rank 0 and exits 0 when
 * every rank agrees; any failure names the step and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hring.h"

static int fail(int rank, const char *what, hring_result_t r) {
  fprintf(stderr, "launch_comms: rank %d: %s: %s: %s\n", rank, what, hring_strerror(r),
          hring_last_error());
  return 1;
}

/* Sum of (rank + 1 + salt) over ranks, compared with the closed form. */
static int check(hring_comm_t c, int salt, int *rank_out) {
  int rank, size;
  hring_result_t r;
  if ((r = hring_comm_rank(c, &rank)) || (r = hring_comm_size(c, &size)))
    return fail(-1, "rank/size", r);
  *rank_out = rank;
  double v = rank + 1 + salt, sum = 0;
  if ((r = hring_allreduce(&v, &sum, 1, HRING_FLOAT64, HRING_SUM, c, NULL)))
    return fail(rank, "allreduce", r);
  double want = size * (size + 1) / 2.0 + (double)size * salt;
  if (sum != want) {
    fprintf(stderr, "launch_comms: rank %d: sum %g, expected %g\n", rank, sum, want);
    return 1;
  }
  return 0;
}

int main(void) {
  hring_comm_t a, b, c;
  hring_result_t r;
  int rank = -1, size = 0;
  if ((r = hring_comm_init_env(&a))) return fail(rank, "first hring_comm_init_env", r);
  if ((r = hring_comm_init_env(&b))) return fail(rank, "second hring_comm_init_env", r);
  if (check(a, 0, &rank) || check(b, 10, &rank)) return 1;
  if ((r = hring_comm_destroy(a))) return fail(rank, "destroy", r);
  if ((r = hring_comm_init_env(&c))) return fail(rank, "third hring_comm_init_env", r);
  if (check(c, 20, &rank) || check(b, 30, &rank)) return 1;
  hring_comm_size(c, &size);
  if ((r = hring_comm_destroy(b)) || (r = hring_comm_destroy(c))) return fail(rank, "destroy", r);
  if (rank == 0) printf("launch_comms: 3 communicators on %d ranks: ok\n", size);
  return 0;
}
