/*
 * fusion_state.c - creating, checking and freeing a fusion, and the
 * agreements it makes with the other ranks (fusion_impl.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "fusion/fusion_impl.h"

hring_result_t hring__fusion_check(const struct hring_fusion *f, const char *what) {
  if (!f || f->magic != HRING_FUSION_MAGIC)
    return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: not a live fusion handle", what);
  return HRING_SUCCESS;
}

void hring__fusion_error(struct hring_fusion *f, hring_result_t r) {
  if (f->error == HRING_SUCCESS) f->error = r;
}

const char *hring__fusion_mode_name(const struct hring_fusion *f) {
  static const char *const names[] = {"none", "threshold", "ddp", "planned"};
  return names[f->mode];
}

static int alloc_arrays(struct hring_fusion *f, int n) {
  size_t N = (size_t)n;
  f->ptr = calloc(N, sizeof *f->ptr);
  f->bytes = calloc(N, sizeof *f->bytes);
  f->off = calloc(N + 1, sizeof *f->off);
  f->first = calloc(N, sizeof *f->first);
  f->scratch_first = calloc(N, sizeof *f->scratch_first);
  f->bucket_of = calloc(N, sizeof *f->bucket_of);
  f->bucket_n = calloc(N, sizeof *f->bucket_n);
  f->plan_ready = calloc(N, sizeof *f->plan_ready);
  f->is_ready = calloc(N, 1);
  f->ready_at = calloc(N, sizeof *f->ready_at);
  f->left = calloc(N, sizeof *f->left);
  f->req = calloc(N, sizeof *f->req);
  f->req_result = calloc(N, sizeof *f->req_result);
  f->acc = calloc(N, sizeof *f->acc);
  f->trial_first = calloc(N * HRING_FUSION_TRIAL_PLANS, sizeof *f->trial_first);
  return f->trial_first && f->ptr && f->bytes && f->off && f->first && f->scratch_first && f->bucket_of &&
         f->bucket_n && f->plan_ready && f->is_ready && f->ready_at && f->left && f->req &&
         f->req_result && f->acc;
}

struct hring_fusion *hring__fusion_alloc(hring_comm_t comm, int n, const hring_fusion_tensor_t *t,
                                         const hring_fusion_opts_t *o) {
  struct hring_fusion *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  pthread_mutex_init(&f->lock, NULL);
  f->magic = HRING_FUSION_MAGIC;
  f->comm = comm;
  f->n = n;
  f->nranks = comm->nranks;
  f->type = o->datatype;
  f->esize = hring_type_size(o->datatype);
  f->wire_op = o->op;
  f->scale = 1.0;
  f->cost_scale = 1.0;
  f->arena = t[0].data == NULL;
  const char *prog = hring__cfg_str(HRING_CFG_PROGRESS);
  f->caller_progress = prog && strcasecmp(prog, "caller") == 0;
  f->replan_every = hring__cfg_int(HRING_CFG_FUSION_REPLAN);
  int64_t trial = hring__cfg_int(HRING_CFG_FUSION_TRIAL);
  f->trial_steps = trial < 0 || trial > HRING_FUSION_TRIAL_MAX ? -1 : (int)trial;
  f->bias = 1.0;
  if (!alloc_arrays(f, n)) goto fail;
  for (int i = 0; i < n; i++) {
    f->ptr[i] = t[i].data;
    f->bytes[i] = t[i].count * f->esize;
    f->off[i + 1] = f->off[i] + f->bytes[i];
  }
  /* 64-byte aligned: the reduction kernels' vector loads of the first
   * bucket start on a line. */
  size_t total = (f->off[n] + 63) & ~(size_t)63;
  if (posix_memalign(&f->fused, 64, total ? total : 64) != 0) {
    f->fused = NULL;
    goto fail;
  }
  if (f->arena) memset(f->fused, 0, total);
  /* Averages: divided while unpacking where a copy happens anyway and the
   * type is a plain float; on the wire (AVG) otherwise. */
  if (o->average) {
    if (!f->arena && (f->type == HRING_FLOAT32 || f->type == HRING_FLOAT64))
      f->scale = 1.0 / f->nranks;
    else
      f->wire_op = HRING_AVG;
  }
  return f;
fail:
  hring__fusion_free(f);
  return NULL;
}

void hring__fusion_free(struct hring_fusion *f) {
  if (!f) return;
  f->magic = 0;
  pthread_mutex_destroy(&f->lock);
  free(f->fused);
  free(f->ptr);
  free(f->bytes);
  free(f->off);
  free(f->first);
  free(f->scratch_first);
  free(f->bucket_of);
  free(f->bucket_n);
  free(f->plan_ready);
  free(f->is_ready);
  free(f->ready_at);
  free(f->left);
  free(f->req);
  free(f->req_result);
  free(f->acc);
  free(f->trial_first);
  free(f);
}

void hring__fusion_copy_out(struct hring_fusion *f, int i) {
  const char *src = (const char *)f->fused + f->off[i];
  if (f->scale == 1.0) {
    memcpy(f->ptr[i], src, f->bytes[i]);
  } else if (f->type == HRING_FLOAT32) {
    float *d = f->ptr[i], s = (float)f->scale;
    const float *x = (const float *)src;
    for (size_t j = 0, m = f->bytes[i] / 4; j < m; j++) d[j] = x[j] * s;
  } else {
    double *d = f->ptr[i], s = f->scale;
    const double *x = (const double *)src;
    for (size_t j = 0, m = f->bytes[i] / 8; j < m; j++) d[j] = x[j] * s;
  }
}

/* FNV-1a over what must be equal on every rank. */
hring_result_t hring__fusion_agree_counts(struct hring_fusion *f) {
  if (f->nranks == 1) return HRING_SUCCESS;
  uint64_t h = HRING_FNV_SEED;
  h = hring__fnv(h, &f->n, sizeof f->n);
  h = hring__fnv(h, f->bytes, sizeof(size_t) * (size_t)f->n);
  int32_t cfg[3] = {(int32_t)f->type, (int32_t)f->wire_op, f->mode};
  h = hring__fnv(h, cfg, sizeof cfg);
  h = hring__fnv(h, &f->threshold, sizeof f->threshold);
  /* Replanning is a collective at fixed steps: every rank replans alike. */
  if (f->mode == HRING_FUSE_PLANNED) {
    h = hring__fnv(h, &f->replan_every, sizeof f->replan_every);
    h = hring__fnv(h, &f->trial_steps, sizeof f->trial_steps);
  }
  uint64_t *all = calloc((size_t)f->nranks, sizeof *all);
  if (!all) return hring__err(HRING_ERR_NO_MEMORY, "hring_fusion_create");
  hring_result_t r = hring_allgather(&h, all, 1, HRING_UINT64, f->comm, NULL);
  int bad = -1;
  for (int p = 0; r == HRING_SUCCESS && p < f->nranks && bad < 0; p++)
    if (all[p] != all[0]) bad = p;
  free(all);
  HRING_CHECK(r);
  if (bad >= 0)
    return hring__err(HRING_ERR_INVALID_ARGUMENT,
                      "hring_fusion_create: rank %d registered other tensors, type, op or mode, "
                      "or set another HRING_FUSION_REPLAN or HRING_FUSION_TRIAL, than rank 0 "
                      "(every rank must register the same)",
                      bad);
  return HRING_SUCCESS;
}
