/*
 * test_settings.c - settings that decide the schedule a call runs
 * (HRING_ALGO, HRING_CHUNK_SIZE, HRING_SMALL_MAX, HRING_CUDA_STAGE_CHUNK,
 * the cost model's file) must be set alike on every rank.  One rank set
 * otherwise fails the communicator's creation on every rank at once, with
 * a message naming the setting, instead of schedules that wait on each
 * other until the timeout; the parent communicator is untouched.  Last,
 * HRING_NT_MIN, which each rank may set as it likes, and its auto value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algos/model.h"
#include "core/comm.h"
#include "mp.h"

typedef struct {
  const char *var, *value, *named; /* named: what the message must say */
  int rank;                        /* the one rank that sets it */
} case_t;

static char model_path[64]; /* a model file of other parameters */

/* An allreduce on comm, every element checked. */
static void check_allreduce(hring_comm_t comm, int rank, int nranks, const char *what) {
  int32_t v[64];
  for (int i = 0; i < 64; i++) v[i] = rank + i;
  HCHECK(hring_allreduce(v, v, 64, HRING_INT32, HRING_SUM, comm, NULL) == HRING_SUCCESS,
         "rank %d: allreduce %s: %s", rank, what, hring_last_error());
  for (int i = 0; i < 64; i++)
    if (v[i] != nranks * (nranks - 1) / 2 + nranks * i) {
      HCHECK(0, "rank %d: %s: element %d is %d", rank, what, i, v[i]);
      break;
    }
}

static void body(hring_comm_t comm, int rank, int nranks, void *arg) {
  (void)arg;
  const case_t cases[] = {
      {"HRING_ALGO", "tree", "HRING_ALGO", 1},
      {"HRING_CHUNK_SIZE", "8192", "HRING_CHUNK_SIZE", 2},
      {"HRING_SMALL_MAX", "0", "HRING_SMALL_MAX", 0},
      {"HRING_CUDA_STAGE_CHUNK", "1M", "HRING_CUDA_STAGE_CHUNK", 1},
      {"HRING_MODEL_FILE", model_path, "HRING_MODEL_FILE", 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const case_t *k = &cases[i];
    if (rank == k->rank) setenv(k->var, k->value, 1);
    hring_comm_t c = NULL;
    hring_result_t r = hring_comm_split(comm, 0, rank, &c);
    unsetenv(k->var);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT && strstr(hring_last_error(), k->named) &&
               strstr(hring_last_error(), "differ"),
           "rank %d, %s set on rank %d only: %s (%s)", rank, k->var, k->rank, hring_strerror(r),
           r == HRING_SUCCESS ? "no error" : hring_last_error());
    if (r == HRING_SUCCESS) hring_comm_destroy(c);
    check_allreduce(comm, rank, nranks, "on the parent after a refused split");
  }
  /* Set alike everywhere, the same settings are fine. */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) setenv(cases[i].var, cases[i].value, 1);
  hring_comm_t c = NULL;
  hring_result_t r = hring_comm_split(comm, 0, rank, &c);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) unsetenv(cases[i].var);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: every setting alike: %s", rank, hring_last_error());
  check_allreduce(c, rank, nranks, "with every setting alike");
  hring_comm_destroy(c);
}

HTEST(settings_must_agree, 60) {
  snprintf(model_path, sizeof model_path, "/tmp/hring-settings-model-XXXXXX");
  int fd = mkstemp(model_path);
  HREQUIRE(fd >= 0, "mkstemp");
  close(fd);
  hring_model_params_t p;
  hring__model_defaults(&p);
  p.inter.alpha *= 10; /* not the built-in parameters */
  HREQUIRE(hring__model_save(model_path, &p, "test_settings") == HRING_SUCCESS, "save: %s",
           hring_last_error());
  setenv("MP_NODE_MAP", "0,0,1", 1); /* two nodes: the model chooses */
  HCHECK(mp_run(3, body, NULL) == 0, "a rank failed");
  unsetenv("MP_NODE_MAP");
  unlink(model_path);
}

/* HRING_NT_MIN, a setting of each rank's own (its stores only): auto
 * streams results from 4 MiB where the machine's ranks outnumber its
 * cores and never where each has a core; a size is taken as it is, 0 is
 * never, and anything else is auto (with a warning).  Run with 2 ranks
 * (a core each on a machine of 2 or more) and 4 (oversubscribed on 2 or 3
 * cores), so each branch of auto is met where the machine allows. */
static void nt_body(hring_comm_t comm, int rank, int nranks, void *arg) {
  (void)arg;
  const int64_t automatic = comm->oversubscribed ? 4 << 20 : 0;
  HCHECK(comm->nt_min == automatic, "rank %d of %d (%s): unset gives %lld, want %lld", rank,
         nranks, comm->oversubscribed ? "oversubscribed" : "a core each", (long long)comm->nt_min,
         (long long)automatic);
  const struct {
    const char *value;
    int64_t want;
  } cases[] = {{"auto", automatic}, {"AUTO", automatic}, {"1M", 1 << 20},
               {"0", 0},           {"lots", automatic}, {"-5", automatic}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setenv("HRING_NT_MIN", cases[i].value, 1);
    hring_comm_t c = NULL;
    hring_result_t r = hring_comm_split(comm, 0, rank, &c);
    unsetenv("HRING_NT_MIN");
    HREQUIRE(r == HRING_SUCCESS, "rank %d: HRING_NT_MIN=%s: %s", rank, cases[i].value,
             hring_last_error());
    HCHECK(c->nt_min == cases[i].want, "rank %d: HRING_NT_MIN=%s gives %lld, want %lld", rank,
           cases[i].value, (long long)c->nt_min, (long long)cases[i].want);
    check_allreduce(c, rank, nranks, cases[i].value);
    hring_comm_destroy(c);
  }
}

HTEST(nt_min_follows_the_cores, 60) {
  HCHECK(mp_run(2, nt_body, NULL) == 0, "2 ranks: a rank failed");
  HCHECK(mp_run(4, nt_body, NULL) == 0, "4 ranks: a rank failed");
}
