/*
 * hring_fusion.h - gradient bucketing over hring's nonblocking allreduce
 * (docs/fusion.md).
 *
 * A model registers its gradient tensors once, in the order backward
 * produces them.  Every step it marks each tensor ready as backward
 * produces it (from any thread), then waits for all.  Tensors are fused
 * into buckets of consecutive tensors; a bucket is allreduced as soon as
 * all of its tensors are ready and every earlier bucket has been launched
 * (so every rank issues the same collectives in the same order).  Where the
 * bucket boundaries fall is the mode's business:
 *   none             one allreduce per tensor;
 *   threshold:BYTES  consecutive tensors up to BYTES per bucket (Horovod's
 *                    fusion threshold, applied statically);
 *   ddp              a 1 MiB first bucket, then 25 MiB (PyTorch DDP);
 *   planned          (default) boundaries that minimize the predicted end
 *                    of the step, from the communicator's cost model and
 *                    the measured backward timing (agreed by all ranks),
 *                    recomputed when the timing drifts; a new plan runs
 *                    a few steps against its neighbours (costs x0.7,
 *                    x1.4) and the measured best is kept
 *                    (HRING_FUSION_TRIAL).
 *
 * Also here: the gradient tables of the reference networks (ResNet-50 v1.5
 * and AlexNet with batch norm), which the planner's tools and the bundled
 * trainer share.
 */
#ifndef HRING_FUSION_H
#define HRING_FUSION_H

#include "hring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- network tables ---- */

typedef enum {
  HRING_PARAM_CONV_WEIGHT = 0,
  HRING_PARAM_BN_GAMMA = 1,
  HRING_PARAM_BN_BETA = 2,
  HRING_PARAM_FC_WEIGHT = 3,
  HRING_PARAM_FC_BIAS = 4,
  HRING_PARAM_CONV_BIAS = 5
} hring_param_kind_t;

/* One gradient tensor of a network. */
typedef struct {
  const char *name;        /* e.g. "layer4.2.conv3.weight" */
  hring_param_kind_t kind;
  int ndims;
  int dims[4];             /* conv: out, in, kh, kw; fc: out, in; bn and bias: channels */
  size_t count;            /* elements: the product of dims */
  int layer;               /* forward index of the layer that owns it, from 1 */
  double bwd_flops;        /* backward FLOPs per sample of that layer that
                              produce this tensor's gradient (the layer's
                              whole backward is charged to its first tensor
                              in backward order, 0 to the others) */
} hring_net_tensor_t;

typedef struct {
  const char *name;        /* "resnet50", "alexnet" */
  int ntensors;
  const hring_net_tensor_t *tensors; /* in backward order */
  size_t params;           /* sum of counts */
  double fwd_flops;        /* forward FLOPs per sample */
  double bwd_flops;        /* sum of tensors' bwd_flops */
} hring_net_t;

/* The table of a network by name, or NULL. */
const hring_net_t *hring_fusion_net(const char *name);

/* ---- bucketing ---- */

typedef struct hring_fusion *hring_fusion_t;

/* One gradient tensor, in backward order.  data NULL: the tensor lives in
 * the fusion's arena (hring_fusion_tensor). */
typedef struct {
  void *data;
  size_t count;
} hring_fusion_tensor_t;

typedef struct {
  hring_datatype_t datatype; /* of every tensor */
  hring_redop_t op;          /* HRING_SUM usually */
  int average;               /* 1: divide the results by nranks (op must be SUM) */
  const char *mode;          /* NULL: HRING_FUSION (default "planned") */
  /* Optional: each tensor's backward compute time in seconds (the time
   * between it and the previous tensor becoming ready), used by `planned`
   * until measured timings exist.  NULL: planned starts from the DDP
   * buckets and plans from the first measured steps. */
  const double *compute_s;
} hring_fusion_opts_t;

/* Registers n tensors (backward order) on comm.  When every data pointer
 * is NULL, the tensors are placed back to back in one arena the library
 * allocates (no packing: buckets are reduced in place).  When every data
 * pointer is set, buckets are packed into fused buffers and unpacked after
 * the reduction.  Mixing the two is an invalid argument.  Collective in the
 * sense that every rank must register the same counts. */
hring_result_t hring_fusion_create(hring_comm_t comm, int n, const hring_fusion_tensor_t *tensors,
                                   const hring_fusion_opts_t *opts, hring_fusion_t *fusion);
/* Where tensor i lives (its data pointer, or its place in the arena). */
void *hring_fusion_tensor(hring_fusion_t fusion, int i);
/* Tensor i's gradient is complete for this step.  Any thread; each tensor
 * once per step. */
hring_result_t hring_fusion_ready(hring_fusion_t fusion, int i);
/* Waits until every bucket of this step is reduced (and unpacked); marks
 * every tensor not yet ready first.  Then the next step may begin. */
hring_result_t hring_fusion_wait(hring_fusion_t fusion);
/* The current plan as text: "mode: k buckets, boundaries before tensors
 * ..., predicted end ...". */
const char *hring_fusion_plan(hring_fusion_t fusion);
/* Bucket count and the first tensor of each bucket (first[0] = 0); at
 * most max entries are written.  Returns the bucket count. */
int hring_fusion_buckets(hring_fusion_t fusion, int *first, int max);
hring_result_t hring_fusion_destroy(hring_fusion_t fusion);

#ifdef __cplusplus
}
#endif
#endif /* HRING_FUSION_H */
