/*
 * model.h - the alpha-beta-gamma cost model of the allreduce algorithms.
 *
 * T = alpha * message steps + beta * bytes on the wire + gamma * bytes
 * reduced (Thakur, Rabenseifner and Gropp, "Optimization of Collective
 * Communication Operations in MPICH", IJHPCA 2005), with one set of
 * parameters per level: between ranks of one node and between nodes.  The
 * formulas follow the step structure of each algorithm id of algo.h and are
 * written out in docs/model.md.  The same predictions choose the algorithm
 * of a call, and perf/sim/hring_sim.c extrapolates them to large clusters.
 *
 * Parameters come from the built-in defaults (measured on the development
 * machine), from hring__model_calibrate on a live communicator, or from a
 * file written by hring-tune (HRING_MODEL_FILE).
 */
#ifndef HRING_MODEL_H
#define HRING_MODEL_H

#include <stddef.h>
#include <stdio.h>
#include "hring.h"

struct hring_comm;

/* One level's line: a message of m bytes costs alpha + beta * m on the
 * wire, and reducing m bytes into a partial result costs gamma * m. */
typedef struct {
  double alpha; /* s per message step */
  double beta;  /* s per byte on the wire */
  double gamma; /* s per byte reduced */
} hring_model_level_t;

/* The caches of one machine (docs/model.md, rule 6).  While the vectors
 * of all the ranks on a machine (each rank's input and output, 2 n bytes)
 * fit in `cache` bytes, copies and reductions run at the levels' beta and
 * gamma; beyond, a share 1 - cache / (working set) of the bytes comes from
 * memory, and each such byte copied within a node or reduced costs `beta`
 * more.  beta 0: no such term (files of version 1, hring-sim --paper). */
typedef struct {
  double cache; /* bytes */
  double beta;  /* s per byte from memory, on top of the levels' */
} hring_model_mem_t;

typedef struct {
  hring_model_level_t intra; /* ranks that share a node (shm, cuda_ipc) */
  hring_model_level_t inter; /* ranks on different nodes (tcp, ib) */
  hring_model_mem_t mem;
} hring_model_params_t;

/* The layout a prediction is made for.  Ranks are placed on nodes in
 * blocks of consecutive ranks (what the launchers do by default). */
typedef struct {
  int nranks;   /* P */
  int nnodes;   /* N */
  int kmax;     /* most ranks on one node */
  int kmin;     /* fewest ranks on one node */
  size_t chunk; /* largest message an algorithm sends (pipelining unit); 0: no limit */
  /* Most ranks on one machine and fewest cores (0: unknown, every rank has
   * a core).  Nodes emulated on one machine share its cores: a step in
   * which a ranks per node are busy costs alpha times
   * max(1, a * (mranks / kmax) / cores), since the machine runs only
   * `cores` of them at once (docs/model.md, rule 5). */
  int mranks, cores;
} hring_model_shape_t;

/* One measured collective: algorithm, size, the layout and chunk it ran
 * with, and its time (the slowest rank's). */
typedef struct {
  int algo;
  size_t bytes;
  hring_model_shape_t shape;
  double seconds;
} hring_model_sample_t;

/* Fits p (in place, starting from its values) to the samples: the
 * parameters that minimize a robust loss of log(predicted / measured)
 * over all of them (model_fit.c).  Bit k of fixed (k = 0..7: intra alpha,
 * beta, gamma, inter alpha, beta, gamma, mem cache, mem beta) keeps that
 * parameter as it is, as for a level no sample uses.  A parameter that is
 * 0 stays 0.  Returns the mean |log| at the end (0.22: a
 * typical miss of 25%). */
double hring__model_fit(hring_model_params_t *p, const hring_model_sample_t *x, int n,
                        unsigned fixed);

/* Format version of the parameter file (hring__model_save); files of
 * version 1 (no mem.* keys) still load, without the cache term. */
#define HRING_MODEL_FILE_VERSION 2

/* Whether the inter-node phase of hier (the leaders' allreduce of all
 * bytes) or of hier2d (one allreduce per shard) runs by recursive
 * halving-doubling instead of the ring (hier.c): nnodes a power of two, at
 * least 4, and at most HRING_HIER_HD_MAX bytes per inter-node allreduce.
 * Depends on the call and the layout only, so every rank agrees. */
#define HRING_HIER_HD_MAX (256 * 1024)
static inline int hring__hier_uses_hd(int nnodes, size_t bytes) {
  return nnodes >= 4 && (nnodes & (nnodes - 1)) == 0 && bytes <= HRING_HIER_HD_MAX;
}

/* Up to HRING_HIER_RD_MAX bytes per inter-node allreduce, on any
 * power-of-two number of nodes, hier and hier2d cross by recursive
 * doubling instead (log2 N exchanges of the whole vector: half the
 * dependent messages of halving-doubling, for (log2 N) / 1.5 times the
 * bytes on 4 nodes).  On 4 emulated hosts x 2 ranks at 1 Gbit/s it won at
 * 8 and 16 KiB per inter-node allreduce (1.2-1.6x) and lost from 32 KiB
 * (docs/performance.md, fifth section).  Depends on the call and the
 * layout only. */
#define HRING_HIER_RD_MAX (16 * 1024)
static inline int hring__hier_uses_rd(int nnodes, size_t bytes) {
  return nnodes >= 2 && (nnodes & (nnodes - 1)) == 0 && bytes <= HRING_HIER_RD_MAX;
}

/* Segments of hier2d's pipelined form (hier2d_pipe.c): bytes cut into at
 * most HRING_HIER2D_SEG_MAX segments of at least HRING_HIER2D_SEG_MIN,
 * and large enough that every message of a segment's rings across the
 * nodes carries HRING_HIER2D_STEP_MIN bytes or more (each segment's rings
 * pay their 2 (N-1) steps' latency again, which across many nodes costs
 * more than the overlap saves); only when there are nodes of several ranks
 * to cross and the shards would not cross by halving-doubling.  0: the
 * plain schedule.  smax is the largest node's size.  Depends on the call
 * and the layout only, so every rank agrees. */
#define HRING_HIER2D_SEG_MIN (1u << 20)
#define HRING_HIER2D_SEG_MAX 8
#define HRING_HIER2D_STEP_MIN (128u << 10)
static inline int hring__hier2d_segments(int nnodes, int smax, size_t bytes) {
  if (nnodes < 2 || smax < 2) return 0; /* only one of the phases runs */
  size_t seg = (size_t)smax * (size_t)nnodes * HRING_HIER2D_STEP_MIN;
  size_t n = bytes / (seg > HRING_HIER2D_SEG_MIN ? seg : HRING_HIER2D_SEG_MIN);
  if (n > HRING_HIER2D_SEG_MAX) n = HRING_HIER2D_SEG_MAX;
  if (n < 2 || hring__hier_uses_hd(nnodes, bytes / n / (size_t)smax)) return 0;
  return (int)n;
}

/* The built-in parameters (model.c says where each was measured). */
void hring__model_defaults(hring_model_params_t *p);

/* A shape of P ranks on N nodes of k ranks each (P = N * k). */
hring_model_shape_t hring__model_shape(int nranks, int nnodes, size_t chunk);

/* The shape of a live communicator: its node layout and its smallest slot. */
void hring__model_shape_of(const struct hring_comm *comm, hring_model_shape_t *s);

/* Whether algorithm `algo` can run this allreduce at all (exchange needs
 * two ranks, allpairs and direct at most 65 ranks, allpairs a message that
 * fits one slot).  The placeholders of algorithms not yet built are the
 * caller's business: pass them out of the mask of hring__model_choose. */
int hring__model_applicable(const hring_model_shape_t *s, int algo, size_t bytes);

/* Predicted seconds of one allreduce of `bytes` bytes by algorithm `algo`
 * (an id of algo.h other than AUTO); a negative value for an unknown id.
 * Defined for every shape, applicable or not. */
double hring__model_predict(const hring_model_params_t *p, const hring_model_shape_t *s,
                            int algo, size_t bytes);

/* The fastest applicable algorithm among those whose bit (1 << id) is set
 * in `allowed`, and its predicted time in *predicted (may be NULL).
 * Returns HRING_ALGO_RING when none of them applies (the ring always runs). */
int hring__model_choose(const hring_model_params_t *p, const hring_model_shape_t *s,
                        size_t bytes, unsigned allowed, double *predicted);

/* Measures the parameters on a live communicator (collective: every rank
 * calls it and every rank gets the same result).  Ping-pong between rank 0
 * and a rank on its node, and one on another node when there is one; the
 * local reduction kernel for gamma.  A level that cannot be measured (no
 * second node) keeps the value *p holds on entry.  Takes well under a
 * second.  It ends with a public hring_allreduce, so call it on a
 * communicator that is fully created, outside any other call on it. */
hring_result_t hring__model_calibrate(struct hring_comm *comm, hring_model_params_t *p);

/* The parameter file: "key = value" lines, '#' comments, a version line.
 * save writes every key; load needs every key of the file's version,
 * refuses unknown ones and values that are not finite and >= 0, and says
 * which line is wrong. */
hring_result_t hring__model_save(const char *path, const hring_model_params_t *p,
                                 const char *comment);
hring_result_t hring__model_write(FILE *f, const hring_model_params_t *p, const char *comment);
hring_result_t hring__model_load(const char *path, hring_model_params_t *p);

#endif
