/*
 * fusion_probe.c - what a bucket of b bytes costs on this communicator,
 * measured (fusion_impl.h).
 *
 * The planner is only as good as its cost of a bucket.  The
 * alpha-beta-gamma model (src/algos/model.h) predicts the algorithms'
 * shapes, but on a machine whose ranks share cores or links its
 * predictions were off by more than the planner can afford (docs/model.md:
 * not within 25% here).  So `planned` times real allreduces of the sizes
 * its buckets can have, on the very buffer it will reduce, once at
 * creation: sizes from 4 KiB up by a factor of 4 to the whole gradient,
 * the median of a few calls each, the slowest rank's figure for each size
 * (every rank then holds the same curve, so every rank cuts the same
 * buckets).  A bucket's cost is the curve interpolated linearly in bytes,
 * times cost_scale, plus the hand-over of a request to the progress
 * thread.  cost_scale starts at 1 and follows what buckets of real steps
 * took against the curve (fusion_plan.c): a probe runs on a quiet
 * communicator, a step's buckets share the cores and links with whatever
 * else the step does, and on this kind of machine that made them up to
 * twice as slow.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/wait.h"
#include "fusion/fusion_impl.h"

#define PROBE_MIN ((size_t)4096)
#define PROBE_FACTOR 4
#define LAUNCH_S 20e-6 /* queueing a request and waking the progress thread */

/* Median seconds of reps allreduces of bytes bytes on this rank. */
static hring_result_t time_size(struct hring_fusion *f, size_t bytes, int reps, double *out) {
  double t[5];
  size_t count = bytes / f->esize;
  for (int i = 0; i < reps; i++) {
    uint64_t t0 = hring__now_ns();
    HRING_CHECK(hring_allreduce(f->fused, f->fused, count, f->type, f->wire_op, f->comm, NULL));
    t[i] = (double)(hring__now_ns() - t0) * 1e-9;
  }
  hring__sort_doubles(t, reps);
  *out = t[reps / 2];
  return HRING_SUCCESS;
}

hring_result_t hring__fusion_probe(struct hring_fusion *f) {
  f->nprobe = 0;
  if (f->nranks == 1) return HRING_SUCCESS;
  size_t total = f->off[f->n];
  for (size_t b = PROBE_MIN; f->nprobe < HRING_FUSION_MAX_PROBES - 1; b *= PROBE_FACTOR) {
    if (b >= total) break;
    f->probe_bytes[f->nprobe++] = b;
  }
  f->probe_bytes[f->nprobe++] = total;
  /* The probe writes the buffer: packed mode's staging, or an arena whose
   * contents the caller fills every step anyway (hring_fusion.h). */
  HRING_CHECK(hring_barrier(f->comm, NULL));
  for (int i = 0; i < f->nprobe; i++) {
    size_t b = f->probe_bytes[i] / f->esize * f->esize;
    HRING_CHECK(time_size(f, b ? b : f->esize, b < ((size_t)1 << 20) ? 5 : 3, &f->probe_s[i]));
  }
  HRING_CHECK(hring_allreduce(f->probe_s, f->probe_s, (size_t)f->nprobe, HRING_FLOAT64, HRING_MAX,
                              f->comm, NULL));
  /* A larger allreduce never costs less: a probe that came out below a
   * smaller one's is noise (or a change of algorithm between sizes), and
   * a curve that dips made the planner move a large tensor into the last
   * bucket, as if that were free (fusion_replans_from_timing). */
  for (int i = 1; i < f->nprobe; i++)
    if (f->probe_s[i] < f->probe_s[i - 1]) f->probe_s[i] = f->probe_s[i - 1];
  if (f->arena) memset(f->fused, 0, f->off[f->n]);
  HRING_INFO(HRING_SUB_COLL,
             "fusion: measured allreduce of %zu B in %.3f ms, of %zu B in %.3f ms (%d sizes)",
             f->probe_bytes[0], f->probe_s[0] * 1e3, f->probe_bytes[f->nprobe - 1],
             f->probe_s[f->nprobe - 1] * 1e3, f->nprobe);
  return HRING_SUCCESS;
}

double hring__fusion_probe_cost(const struct hring_fusion *f, size_t bytes) {
  const int n = f->nprobe;
  if (n == 0 || bytes == 0) return 0;
  if (bytes <= f->probe_bytes[0]) return f->probe_s[0];
  int i = 1;
  while (i < n - 1 && f->probe_bytes[i] < bytes) i++;
  /* Between probes i-1 and i, or past the last on their line; never below
   * the smaller probe's time (noise can make the curve dip). */
  double x0 = (double)f->probe_bytes[i - 1], x1 = (double)f->probe_bytes[i];
  double y0 = f->probe_s[i - 1], y1 = f->probe_s[i];
  double y = x1 > x0 ? y0 + (y1 - y0) * ((double)bytes - x0) / (x1 - x0) : y1;
  return y < y0 ? y0 : y;
}

double hring__fusion_cost(const struct hring_fusion *f, size_t bytes) {
  if (bytes == 0) return 0;
  return hring__fusion_probe_cost(f, bytes) * f->cost_scale + LAUNCH_S;
}
