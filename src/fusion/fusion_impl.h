/*
 * fusion_impl.h - the state behind an hring_fusion_t (fusion.c runs the
 * steps; fusion_state.c creates, checks, times and replans).
 */
#ifndef HRING_FUSION_IMPL_H
#define HRING_FUSION_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "fusion/planner.h"
#include "hring.h"
#include "hring_fusion.h"

#define HRING_DDP_FIRST_CAP ((size_t)1 << 20) /* PyTorch DDP's first bucket */
#define HRING_DDP_CAP ((size_t)25 << 20)      /* and its bucket_cap_mb default */
#define HRING_FUSION_WARMUP 3                 /* steps timed before the first plan */
#define HRING_FUSION_MAX_PROBES 24
#define HRING_FUSION_TRIAL_PLANS 3            /* candidate plans in one trial */
#define HRING_FUSION_TRIAL_MAX 16             /* steps per candidate, at most */

enum { HRING_FUSE_NONE, HRING_FUSE_THRESHOLD, HRING_FUSE_DDP, HRING_FUSE_PLANNED };

struct hring_fusion {
  uint64_t magic;
  hring_comm_t comm;
  int n, nranks;
  hring_datatype_t type;
  hring_redop_t wire_op; /* the allreduce's op (AVG when averaging on the wire) */
  size_t esize;
  double scale;          /* applied while unpacking (1: none) */
  int mode;
  size_t threshold;
  int caller_progress;   /* HRING_PROGRESS=caller: ready calls move the oldest bucket */

  void **ptr;            /* [n] caller's tensors (packed mode) */
  size_t *bytes;         /* [n] */
  size_t *off;           /* [n+1] byte offset of each tensor in the fused buffer */
  void *fused;           /* arena or staging buffer, off[n] bytes */
  int arena;             /* tensors live in fused: no packing */

  /* The plan. */
  int k;
  int *first, *scratch_first; /* [n] */
  int *bucket_of;        /* [n] */
  int *bucket_n;         /* [n] tensors per bucket */
  double predicted_end;
  double *plan_ready;    /* [n] the agreed ready times the plan was made from */
  int have_timing;
  char plan_text[512];

  /* One step. */
  pthread_mutex_t lock;
  int step_open;
  uint64_t origin_ns;    /* first ready call of the step */
  char *is_ready;        /* [n] */
  double *ready_at;      /* [n] s after origin */
  int *left;             /* [k] tensors not yet ready per bucket */
  int next_launch;
  hring_request_t *req;  /* [n] */
  hring_result_t *req_result; /* [n] of buckets completed inside ready calls */
  hring_result_t error;  /* sticky */

  /* The measured cost of one allreduce by size (fusion_probe.c). */
  int nprobe;
  size_t probe_bytes[HRING_FUSION_MAX_PROBES];
  double probe_s[HRING_FUSION_MAX_PROBES];
  double cost_scale;     /* buckets in real steps ran this much slower (agreed) */
  double obs_ran;        /* buckets' observed times since the last plan, summed */
  double obs_probed;     /* the probe's times for the same buckets, summed */

  /* Measured trials of candidate plans after a replan (fusion_trial.c). */
  int trial_steps;       /* per candidate (HRING_FUSION_TRIAL; 0: no trials) */
  int trial_n;           /* candidates of the running trial; 0: none running */
  int trial_pos;         /* its steps done */
  int *trial_first;      /* [HRING_FUSION_TRIAL_PLANS * n] */
  int trial_k[HRING_FUSION_TRIAL_PLANS];
  double trial_end[HRING_FUSION_TRIAL_PLANS];
  double trial_factor[HRING_FUSION_TRIAL_PLANS];
  double trial_exposed[HRING_FUSION_TRIAL_PLANS * HRING_FUSION_TRIAL_MAX];
  double bias;           /* the cost factor the last trial chose (1: the estimate) */
  double last_exposed;   /* s the last bucket ran after the last ready tensor, last step */

  /* Timing over steps. */
  int64_t steps;         /* completed */
  int64_t replan_every;
  double *acc;           /* [n] summed ready times since the last plan */
  int acc_n;
};

#define HRING_FUSION_MAGIC 0x6872696e67667573ULL /* "hringfus" */

hring_result_t hring__fusion_check(const struct hring_fusion *f, const char *what);
struct hring_fusion *hring__fusion_alloc(hring_comm_t comm, int n, const hring_fusion_tensor_t *t,
                                         const hring_fusion_opts_t *o);
void hring__fusion_free(struct hring_fusion *f);
void hring__fusion_error(struct hring_fusion *f, hring_result_t r);
const char *hring__fusion_mode_name(const struct hring_fusion *f);
/* Fails on every rank unless all registered the same tensors and mode. */
hring_result_t hring__fusion_agree_counts(struct hring_fusion *f);
/* fusion_probe.c: times allreduces of the sizes buckets can have, on
 * every rank alike, and predicts a bucket's cost from them. */
hring_result_t hring__fusion_probe(struct hring_fusion *f);
double hring__fusion_probe_cost(const struct hring_fusion *f, size_t bytes); /* the curve alone */
double hring__fusion_cost(const struct hring_fusion *f, size_t bytes);
/* Tensor i from the fused buffer to the caller's, times f->scale. */
void hring__fusion_copy_out(struct hring_fusion *f, int i);
/* fusion_plan.c: the mode's first plan, and a plan change (between steps). */
hring_result_t hring__fusion_initial_plan(struct hring_fusion *f, const double *compute_s);
/* The same without a word at INFO (the steps of a trial). */
void hring__fusion_use_plan(struct hring_fusion *f, int k, const int *first, double end);
void hring__fusion_set_plan(struct hring_fusion *f, int k, const int *first, double end,
                            const char *why);
/* After every bucket of a step completed: timing, agreement, replanning. */
hring_result_t hring__fusion_step_done(struct hring_fusion *f);
/* fusion_plan.c: the plan of least predicted end for agreed ready times,
 * with bucket costs times factor. */
int hring__fusion_plan_at(struct hring_fusion *f, const double *ready_s, double factor, int *first,
                          double *end);
/* fusion_trial.c: after a replan set f's plan from ready_s, starts a trial
 * of it against the plans at other cost factors (0: they are all the
 * same, or trials are off); each step of a running trial records its
 * exposure, moves to the next candidate, and ends the trial with the
 * measured best (one agreed allreduce). */
int hring__fusion_trial_start(struct hring_fusion *f, const double *ready_s);
hring_result_t hring__fusion_trial_step(struct hring_fusion *f);
/* The candidate a trial keeps: least median exposure over its steps; a
 * challenger must beat candidate 0 by HRING_FUSION_TRIAL_MARGIN. */
int hring__fusion_trial_pick(const double *exposed, int ncand, int steps);

#endif
