/*
 * test_errors.c - bad arguments get a clear error and change nothing; no
 * wait is unbounded; a dead peer is reported.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mp.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void bad_args_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  float in[4] = {1, 2, 3, 4}, out[4] = {-1, -1, -1, -1};
  const float untouched[4] = {-1, -1, -1, -1};
  struct {
    const char *what;
    hring_result_t r;
  } cases[] = {
      {"NULL comm", hring_allreduce(in, out, 4, HRING_FLOAT32, HRING_SUM, NULL, NULL)},
      {"NULL sendbuf", hring_allreduce(NULL, out, 4, HRING_FLOAT32, HRING_SUM, comm, NULL)},
      {"NULL recvbuf", hring_allreduce(in, NULL, 4, HRING_FLOAT32, HRING_SUM, comm, NULL)},
      {"bad type", hring_allreduce(in, out, 4, (hring_datatype_t)10, HRING_SUM, comm, NULL)},
      {"negative type", hring_allreduce(in, out, 4, (hring_datatype_t)-1, HRING_SUM, comm, NULL)},
      {"bad op", hring_allreduce(in, out, 4, HRING_FLOAT32, (hring_redop_t)5, comm, NULL)},
      {"count overflow", hring_allreduce(in, out, SIZE_MAX / 2, HRING_FLOAT32, HRING_SUM, comm, NULL)},
      {"garbage comm", hring_allreduce(in, out, 4, HRING_FLOAT32, HRING_SUM,
                                       (hring_comm_t)(uintptr_t)0x1000, NULL)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    HCHECK(cases[i].r == HRING_ERR_INVALID_ARGUMENT, "%s: got %s", cases[i].what,
           hring_strerror(cases[i].r));
  }
  HCHECK(strlen(hring_last_error()) > 0, "no message for the last error");
  HCHECK(memcmp(out, untouched, sizeof out) == 0, "a failed call wrote the output");
  hring_result_t r = hring_allreduce(in, out, 4, HRING_FLOAT32, HRING_SUM, comm, (void *)0x1);
  HCHECK(r == HRING_ERR_UNSUPPORTED, "a CUDA stream without CUDA: got %s", hring_strerror(r));
  /* count 0 with NULL buffers is fine */
  HCHECK(hring_allreduce(NULL, NULL, 0, HRING_FLOAT32, HRING_SUM, comm, NULL) == HRING_SUCCESS,
         "count 0 with NULL buffers");
  /* still usable */
  r = hring_allreduce(in, out, 4, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS, "allreduce after bad calls: %s: %s", hring_strerror(r),
           hring_last_error());
  for (int i = 0; i < 4; i++) HCHECK(out[i] == in[i] * (float)n, "rank %d: out[%d] = %g", rank, i, out[i]);
  hring_result_t async = HRING_ERR_INTERNAL;
  HCHECK(hring_comm_get_async_error(comm, &async) == HRING_SUCCESS && async == HRING_SUCCESS,
         "async error after argument errors: %s", hring_strerror(async));
}

HTEST(errors_bad_arguments_shm, 30) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  HREQUIRE(mp_run(3, bad_args_body, NULL) == 0, "a rank failed");
}

HTEST(errors_bad_arguments_tcp, 30) {
  setenv("HRING_TRANSPORTS", "tcp", 1);
  HREQUIRE(mp_run(2, bad_args_body, NULL) == 0, "a rank failed");
}

HTEST(errors_init_bad_arguments, 10) {
  hring_comm_t comm;
  hring_unique_id_t id;
  memset(&id, 0, sizeof id);
  HCHECK(hring_comm_init_rank(NULL, 2, id, 0) == HRING_ERR_INVALID_ARGUMENT, "NULL comm pointer");
  HCHECK(hring_comm_init_rank(&comm, 0, id, 0) == HRING_ERR_INVALID_ARGUMENT, "0 ranks");
  HCHECK(hring_comm_init_rank(&comm, 2, id, 2) == HRING_ERR_INVALID_ARGUMENT, "rank 2 of 2");
  HCHECK(hring_comm_init_rank(&comm, 2, id, -1) == HRING_ERR_INVALID_ARGUMENT, "rank -1");
  HCHECK(hring_comm_init_rank(&comm, 2, id, 0) == HRING_ERR_INVALID_ARGUMENT, "zeroed id");
  HCHECK(strstr(hring_last_error(), "unique id") != NULL, "message: %s", hring_last_error());
  HCHECK(hring_get_unique_id(NULL) == HRING_ERR_INVALID_ARGUMENT, "NULL id");
  unsetenv("HRING_RANK");
  unsetenv("RANK");
  HCHECK(hring_comm_init_env(&comm) == HRING_ERR_INVALID_ARGUMENT, "init_env without variables");
  HCHECK(strcmp(hring_strerror(HRING_ERR_TIMEOUT), "timed out") == 0, "strerror");
  HCHECK(strcmp(hring_strerror((hring_result_t)999), "unknown result") == 0, "strerror unknown");
}

static void destroyed_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)rank; (void)n; (void)arg;
  /* A second communicator over the same ranks is not possible with this id,
   * so destroy-then-use is checked on a 1-rank comm made here. */
  hring_unique_id_t id;
  hring_comm_t solo;
  HREQUIRE(hring_get_unique_id(&id) == HRING_SUCCESS, "id");
  HREQUIRE(hring_comm_init_rank(&solo, 1, id, 0) == HRING_SUCCESS, "solo init: %s", hring_last_error());
  HREQUIRE(hring_comm_destroy(solo) == HRING_SUCCESS, "destroy");
  float x = 1;
  HCHECK(hring_allreduce(&x, &x, 1, HRING_FLOAT32, HRING_SUM, solo, NULL) == HRING_ERR_INVALID_ARGUMENT,
         "use after destroy");
  HCHECK(hring_comm_destroy(solo) == HRING_ERR_INVALID_ARGUMENT, "double destroy");
  int sz = 0;
  HCHECK(hring_comm_size(comm, &sz) == HRING_SUCCESS && sz == n, "size");
}

HTEST(errors_destroyed_comm, 20) { HREQUIRE(mp_run(2, destroyed_body, NULL) == 0, "a rank failed"); }

/* Rank 1 never calls: rank 0 must time out, then refuse further calls. */
static void timeout_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n; (void)arg;
  float x[1000] = {0};
  if (rank == 1) {
    sleep(3);
    return;
  }
  double t0 = now_s();
  hring_result_t r = hring_allreduce(x, x, 1000, HRING_FLOAT32, HRING_SUM, comm, NULL);
  double dt = now_s() - t0;
  HCHECK(r == HRING_ERR_TIMEOUT, "expected a timeout, got %s", hring_strerror(r));
  HCHECK(dt >= 0.4 && dt < 2.5, "timeout after %.2f s with HRING_TIMEOUT_MS=500", dt);
  HCHECK(strstr(hring_last_error(), "rank 1") != NULL, "message names the peer: %s", hring_last_error());
  hring_result_t async = HRING_SUCCESS;
  hring_comm_get_async_error(comm, &async);
  HCHECK(async == HRING_ERR_TIMEOUT, "async error %s", hring_strerror(async));
  r = hring_allreduce(x, x, 1000, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HCHECK(r == HRING_ERR_INVALID_USAGE, "call after a failure: %s", hring_strerror(r));
}

HTEST(errors_timeout_shm, 30) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "500", 1);
  HREQUIRE(mp_run(2, timeout_body, NULL) == 0, "a rank failed");
}

HTEST(errors_timeout_tcp, 30) {
  setenv("HRING_TRANSPORTS", "tcp", 1);
  setenv("HRING_TIMEOUT_MS", "500", 1);
  HREQUIRE(mp_run(2, timeout_body, NULL) == 0, "a rank failed");
}

/* A rank that dies: tests/mp/test_reliability.c (peer_death_*). */
