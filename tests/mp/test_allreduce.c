/*
 * test_allreduce.c - the allreduce correctness matrix over forked ranks:
 * nranks x counts x types x ops x in/out of place x transports.
 * Inputs and expected results come from values.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "bodies.h"
#include "values.h"

void mp_allreduce_matrix(hring_comm_t comm, int rank, int n, void *arg) {
  const mp_matrix_t *m = arg;
  size_t maxc = 0;
  for (int k = 0; k < m->ncounts; k++)
    if (m->counts[k] > maxc) maxc = m->counts[k];
  size_t bytes = maxc * 8 + 64;
  unsigned char *in = malloc(bytes), *out = malloc(bytes), *exp = malloc(bytes);
  HREQUIRE(in && out && exp, "malloc");
  for (int k = 0; k < m->ncounts; k++) {
    size_t count = m->counts[k];
    for (int t = 0; t < HRING_NUM_TYPES; t++) {
      size_t es = hring_type_size((hring_datatype_t)t);
      for (int op = 0; op < HRING_NUM_OPS; op++) {
        if (!m->all_ops && op != HRING_SUM) continue;
        for (size_t i = 0; i < count; i++) mp_expected(exp, i, (hring_datatype_t)t, (hring_redop_t)op, n);
        for (int inplace = 0; inplace < 2; inplace++) {
          for (size_t i = 0; i < count; i++)
            mp_value(in, i, (hring_datatype_t)t, (hring_redop_t)op, rank, n);
          void *dst = inplace ? in : out;
          if (!inplace) memset(out, 0xa5, count * es + 8);
          else memset(in + count * es, 0xa5, 8);
          hring_result_t r = hring_allreduce(in, dst, count, (hring_datatype_t)t, (hring_redop_t)op,
                                             comm, NULL);
          HREQUIRE(r == HRING_SUCCESS, "rank %d: allreduce count %zu type %d op %d inplace %d: %s: %s",
                   rank, count, t, op, inplace, hring_strerror(r), hring_last_error());
          size_t bad = 0, first = 0;
          for (size_t i = 0; i < count; i++)
            if (memcmp((char *)dst + i * es, exp + i * es, es) != 0 && bad++ == 0) first = i;
          HCHECK(bad == 0, "rank %d n %d: count %zu type %d op %d inplace %d: %zu wrong, first at %zu",
                 rank, n, count, t, op, inplace, bad, first);
          /* nothing written past the end */
          unsigned char guard[8];
          memset(guard, 0xa5, 8);
          HCHECK(memcmp((char *)dst + count * es, guard, 8) == 0,
                 "rank %d: allreduce wrote past the end (count %zu type %d)", rank, count, t);
          if (bad) goto done;
        }
      }
    }
  }
done:
  free(in);
  free(out);
  free(exp);
}

static void run_matrix(const char *transport, int n, int big) {
  if (transport) setenv("HRING_TRANSPORTS", transport, 1);
  size_t counts[6] = {0, 1, (size_t)(n > 1 ? n - 1 : 2), 1001, 65536 + 7, (1u << 20) + 3};
  mp_matrix_t small = {counts, 5, 1};
  HREQUIRE(mp_run(n, mp_allreduce_matrix, &small) == 0, "%s n=%d: a rank failed", transport, n);
  if (big) {
    size_t bigc[1] = {(1u << 20) + 3};
    mp_matrix_t m = {bigc, 1, 0};
    HREQUIRE(mp_run(n, mp_allreduce_matrix, &m) == 0, "%s n=%d (1M+3): a rank failed", transport, n);
  }
}

#define MATRIX_TEST(tr, n, big, timeout)                         \
  HTEST(allreduce_##tr##_np##n, timeout) { run_matrix(#tr, n, big); }

MATRIX_TEST(shm, 1, 1, 60)
MATRIX_TEST(shm, 2, 1, 60)
MATRIX_TEST(shm, 3, 1, 60)
MATRIX_TEST(shm, 4, 1, 90)
MATRIX_TEST(shm, 5, 1, 90)
MATRIX_TEST(shm, 6, 1, 90)
MATRIX_TEST(shm, 7, 1, 120)
MATRIX_TEST(shm, 8, 1, 120)
MATRIX_TEST(tcp, 1, 1, 60)
MATRIX_TEST(tcp, 2, 1, 60)
MATRIX_TEST(tcp, 3, 1, 60)
MATRIX_TEST(tcp, 4, 1, 90)
MATRIX_TEST(tcp, 5, 1, 90)
MATRIX_TEST(tcp, 6, 1, 90)
MATRIX_TEST(tcp, 7, 1, 120)
MATRIX_TEST(tcp, 8, 1, 120)

/* Each algorithm forced, across the sizes where both apply. */
static void forced_body(hring_comm_t comm, int rank, int n, void *arg) {
  size_t counts[] = {1, 7, 100, 1000};
  mp_matrix_t m = {counts, 4, 1};
  mp_allreduce_matrix(comm, rank, n, &m);
  (void)arg;
}

HTEST(allreduce_forced_ring_small, 60) {
  setenv("HRING_ALGO", "ring", 1);
  HREQUIRE(mp_run(3, forced_body, NULL) == 0, "forced ring failed");
}

HTEST(allreduce_forced_allpairs, 60) {
  setenv("HRING_ALGO", "allpairs", 1);
  HREQUIRE(mp_run(5, forced_body, NULL) == 0, "forced allpairs failed");
}

/* Tiny slots force many chunks per segment and a full FIFO. */
HTEST(allreduce_small_slots_pipeline, 60) {
  setenv("HRING_SHM_SLOT_SIZE", "4K", 1);
  setenv("HRING_SHM_SLOTS", "2", 1);
  setenv("HRING_TRANSPORTS", "shm", 1);
  size_t counts[] = {100003};
  mp_matrix_t m = {counts, 1, 1};
  HREQUIRE(mp_run(4, mp_allreduce_matrix, &m) == 0, "small slots failed");
}

HTEST(allreduce_forced_direct, 90) {
  setenv("HRING_ALGO", "direct", 1);
  size_t counts[] = {0, 1, 5, 1001, 65536 + 7};
  mp_matrix_t m = {counts, 5, 1};
  HREQUIRE(mp_run(4, mp_allreduce_matrix, &m) == 0, "forced direct failed");
  setenv("HRING_TRANSPORTS", "tcp", 1);
  HREQUIRE(mp_run(3, mp_allreduce_matrix, &m) == 0, "forced direct over tcp failed");
}

HTEST(allreduce_forced_exchange_shm, 60) {
  setenv("HRING_ALGO", "exchange", 1);
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_SHM_SLOT_SIZE", "4K", 1); /* many chunks, a full FIFO */
  size_t counts[] = {0, 1, 1001, 65536 + 7};
  mp_matrix_t m = {counts, 4, 1};
  HREQUIRE(mp_run(2, mp_allreduce_matrix, &m) == 0, "forced exchange failed");
}
