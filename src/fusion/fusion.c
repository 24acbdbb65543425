/*
 * fusion.c - gradient buckets over the nonblocking allreduce
 * (hring_fusion.h, docs/fusion.md).
 *
 * Per step: hring_fusion_ready counts a bucket's tensors down and launches
 * every complete bucket whose predecessors are launched (launch order is
 * bucket order on every rank, whatever the order tensors become ready in);
 * hring_fusion_wait waits for the buckets in order, unpacking each while
 * the next is still on the wire.  The times at which tensors become ready
 * are kept; in `planned` mode they are averaged over ranks at fixed steps
 * (so every rank plans from the same numbers and cuts the same buckets) and
 * the planner (planner.h) recomputes the boundaries.
 */
#include "fusion/fusion_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/progress.h"
#include "core/error.h"
#include "core/log.h"
#include "core/visibility.h"
#include "core/wait.h"

/* ---- one step ---- */

static hring_result_t launch(struct hring_fusion *f, int b) {
  int i0 = f->first[b], i1 = i0 + f->bucket_n[b];
  size_t off = f->off[i0], bytes = f->off[i1] - off;
  char *buf = (char *)f->fused + off;
  if (!f->arena)
    for (int i = i0; i < i1; i++) memcpy((char *)f->fused + f->off[i], f->ptr[i], f->bytes[i]);
  hring_result_t r = hring_iallreduce(buf, buf, bytes / f->esize, f->type, f->wire_op, f->comm,
                                      &f->req[b]);
  if (r != HRING_SUCCESS) hring__fusion_error(f, r);
  return r;
}

/* Launches the complete buckets in order; f->lock held. */
static hring_result_t launch_ready(struct hring_fusion *f) {
  while (f->next_launch < f->k && f->left[f->next_launch] == 0 && f->error == HRING_SUCCESS)
    HRING_CHECK(launch(f, f->next_launch++));
  return HRING_SUCCESS;
}

static hring_result_t mark(struct hring_fusion *f, int i, uint64_t now) {
  if (f->is_ready[i])
    return hring__err(HRING_ERR_INVALID_USAGE,
                      "hring_fusion_ready: tensor %d marked twice in one step", i);
  if (!f->step_open) {
    f->step_open = 1;
    f->origin_ns = now;
  }
  f->is_ready[i] = 1;
  f->ready_at[i] = (double)(now - f->origin_ns) * 1e-9;
  f->left[f->bucket_of[i]]--;
  return HRING_SUCCESS;
}

HRING_API hring_result_t hring_fusion_ready(hring_fusion_t f, int i) {
  HRING_CHECK(hring__fusion_check(f, "hring_fusion_ready"));
  if (i < 0 || i >= f->n)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_fusion_ready: tensor %d of %d", i, f->n);
  uint64_t now = hring__now_ns();
  pthread_mutex_lock(&f->lock);
  hring_result_t r = mark(f, i, now);
  if (r == HRING_SUCCESS) r = launch_ready(f);
  /* Caller progress: the oldest launched bucket moves only inside
   * hring_test (hring.h), so each ready call gives it a turn. */
  if (r == HRING_SUCCESS && f->caller_progress) {
    for (int b = 0; b < f->next_launch; b++)
      if (f->req[b]) {
        int done = 0;
        hring_request_t q = f->req[b];
        hring_result_t t = hring_test(&q, &done);
        if (done) {
          f->req[b] = NULL;
          f->req_result[b] = t;
        }
        break;
      }
  }
  pthread_mutex_unlock(&f->lock);
  return r != HRING_SUCCESS ? r : f->error;
}

/* Results of bucket b back into the caller's tensors (packed mode), with
 * the average's division fused into the copy. */
static void unpack(struct hring_fusion *f, int b) {
  if (f->arena) return; /* reduced in place, averaged on the wire */
  int i0 = f->first[b], i1 = i0 + f->bucket_n[b];
  for (int i = i0; i < i1; i++) hring__fusion_copy_out(f, i);
}

HRING_API hring_result_t hring_fusion_wait(hring_fusion_t f) {
  HRING_CHECK(hring__fusion_check(f, "hring_fusion_wait"));
  uint64_t now = hring__now_ns();
  pthread_mutex_lock(&f->lock);
  for (int i = 0; i < f->n; i++)
    if (!f->is_ready[i]) (void)mark(f, i, now);
  (void)launch_ready(f);
  pthread_mutex_unlock(&f->lock);
  hring_result_t first_err = f->error;
  uint64_t last_end = 0;
  for (int b = 0; b < f->k; b++) {
    hring_result_t r = f->req_result[b];
    if (f->req[b]) {
      uint64_t e = hring__request_end_ns(f->req[b]);
      if (e > last_end) last_end = e;
      /* How long the bucket really took, set against the probe: the
       * planner's costs follow the conditions of real steps.  Summed, so
       * the ratio is the buckets' total time over the probe's: the big
       * buckets that make the step's timeline weigh as much as they take,
       * where a mean of per-bucket ratios let many small buckets, whose
       * times are mostly wake-ups, set the scale of all. */
      double ran = hring__request_run_time(f->req[b]);
      size_t bytes = f->off[f->first[b] + f->bucket_n[b]] - f->off[f->first[b]];
      double probed = hring__fusion_probe_cost(f, bytes);
      if (ran > 0 && probed > 0 && f->steps > 0) f->obs_ran += ran, f->obs_probed += probed;
      r = hring_wait(&f->req[b]);
    }
    f->req[b] = NULL;
    f->req_result[b] = HRING_SUCCESS;
    if (r != HRING_SUCCESS && first_err == HRING_SUCCESS) first_err = r;
    if (first_err == HRING_SUCCESS) unpack(f, b);
  }
  if (first_err != HRING_SUCCESS) {
    hring__fusion_error(f, first_err);
    return first_err;
  }
  /* Exposed: how long the last bucket ran on after the last tensor was
   * ready (buckets done inside ready calls ended before it). */
  double last_ready = 0;
  for (int i = 0; i < f->n; i++)
    if (f->ready_at[i] > last_ready) last_ready = f->ready_at[i];
  double end = last_end > f->origin_ns ? (double)(last_end - f->origin_ns) * 1e-9 : 0;
  f->last_exposed = end > last_ready ? end - last_ready : 0;
  /* The next step starts from scratch; the plan may change between steps
   * only (every bucket is done). */
  hring_result_t r = hring__fusion_step_done(f);
  for (int i = 0; i < f->n; i++) f->is_ready[i] = 0;
  for (int b = 0; b < f->k; b++) f->left[b] = f->bucket_n[b];
  f->next_launch = 0;
  f->step_open = 0;
  return r;
}

/* ---- creation ---- */

static hring_result_t parse_mode(struct hring_fusion *f, const char *mode) {
  int64_t threshold;
  if (!mode || !*mode) mode = hring__cfg_str(HRING_CFG_FUSION);
  if (!mode || !*mode || strcmp(mode, "planned") == 0) {
    f->mode = HRING_FUSE_PLANNED;
  } else if (strcmp(mode, "none") == 0) {
    f->mode = HRING_FUSE_NONE;
  } else if (strcmp(mode, "ddp") == 0) {
    f->mode = HRING_FUSE_DDP;
  } else if (strncmp(mode, "threshold:", 10) == 0 &&
             hring__cfg_parse_int(mode + 10, &threshold) == 0 && threshold > 0) {
    f->mode = HRING_FUSE_THRESHOLD;
    f->threshold = (size_t)threshold;
  } else {
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_fusion_create: mode '%s' (none, threshold:BYTES, ddp, planned)", mode);
  }
  return HRING_SUCCESS;
}

static hring_result_t check_args(hring_comm_t comm, int n, const hring_fusion_tensor_t *t,
                                 const hring_fusion_opts_t *o, hring_fusion_t *out) {
  if (!out || !t || !o)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_fusion_create: NULL pointer");
  if (n <= 0) return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_fusion_create: %d tensors", n);
  if (hring_type_size(o->datatype) == 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_fusion_create: unknown type %d",
                      (int)o->datatype);
  if ((unsigned)o->op > HRING_AVG)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_fusion_create: unknown op %d", (int)o->op);
  if (o->average && o->op != HRING_SUM)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_fusion_create: average needs op HRING_SUM");
  int with = 0;
  for (int i = 0; i < n; i++) {
    if (t[i].count == 0)
      return hring__err(HRING_ERR_INVALID_ARGUMENT, "hring_fusion_create: tensor %d is empty", i);
    with += t[i].data != NULL;
  }
  if (with != 0 && with != n)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_fusion_create: %d of %d tensors have data (all or none: none puts "
                      "them in the arena)",
                      with, n);
  int size;
  return hring_comm_size(comm, &size);
}

HRING_API hring_result_t hring_fusion_create(hring_comm_t comm, int n,
                                             const hring_fusion_tensor_t *t,
                                             const hring_fusion_opts_t *o, hring_fusion_t *out) {
  HRING_CHECK(check_args(comm, n, t, o, out));
  struct hring_fusion *f = hring__fusion_alloc(comm, n, t, o);
  if (!f) return hring__err(HRING_ERR_NO_MEMORY, "hring_fusion_create: %d tensors", n);
  hring_result_t r = parse_mode(f, o->mode);
  if (r == HRING_SUCCESS && f->mode == HRING_FUSE_PLANNED && f->trial_steps < 0)
    r = hring__err(HRING_ERR_INVALID_ARGUMENT,
                   "hring_fusion_create: HRING_FUSION_TRIAL=%s (steps per candidate plan, 0 to %d)",
                   getenv("HRING_FUSION_TRIAL"), HRING_FUSION_TRIAL_MAX);
  /* Every rank must cut the same buckets: the counts are checked against
   * rank 0's. */
  if (r == HRING_SUCCESS) r = hring__fusion_agree_counts(f);
  if (r == HRING_SUCCESS && f->mode == HRING_FUSE_PLANNED) r = hring__fusion_probe(f);
  if (r == HRING_SUCCESS) r = hring__fusion_initial_plan(f, o->compute_s);
  if (r != HRING_SUCCESS) {
    hring__fusion_free(f);
    return r;
  }
  *out = f;
  return HRING_SUCCESS;
}

HRING_API void *hring_fusion_tensor(hring_fusion_t f, int i) {
  if (hring__fusion_check(f, "hring_fusion_tensor") != HRING_SUCCESS || i < 0 || i >= f->n)
    return NULL;
  return f->arena ? (char *)f->fused + f->off[i] : f->ptr[i];
}

HRING_API const char *hring_fusion_plan(hring_fusion_t f) {
  if (hring__fusion_check(f, "hring_fusion_plan") != HRING_SUCCESS) return "";
  return f->plan_text;
}

HRING_API int hring_fusion_buckets(hring_fusion_t f, int *first, int max) {
  if (hring__fusion_check(f, "hring_fusion_buckets") != HRING_SUCCESS) return 0;
  for (int b = 0; b < f->k && b < max && first; b++) first[b] = f->first[b];
  return f->k;
}

HRING_API hring_result_t hring_fusion_destroy(hring_fusion_t f) {
  HRING_CHECK(hring__fusion_check(f, "hring_fusion_destroy"));
  /* Buckets still in flight own the buffers until they complete. */
  for (int b = 0; b < f->k; b++)
    if (f->req[b]) (void)hring_wait(&f->req[b]);
  hring__fusion_free(f);
  return HRING_SUCCESS;
}
