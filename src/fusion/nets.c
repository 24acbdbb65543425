/*
 * nets.c - gradient tables of the reference networks (hring_fusion.h,
 * docs/fusion-planner.md "The network tables").
 *
 * Each table is generated once (pthread_once) from a compact description of
 * the architecture: the layers in forward order, each with the parameters
 * PyTorch registers for it in that order (conv: weight; batch norm: weight
 * = gamma, bias = beta; fc: weight, bias).  The table is that list
 * reversed, which is the order DDP buckets gradients in and, nearly, the
 * order backward produces them.
 *
 * Conventions (the doc gives the reasons):
 *   - FLOPs count 2 per multiply-add.
 *   - conv / fc: forward 2 * MACs; backward 2x forward (data gradient and
 *     weight gradient), except the first conv, which has no data gradient
 *     to compute: 1x.
 *   - batch norm, with the ReLU (and residual add) that follows it: 10
 *     FLOPs per output element forward, 20 backward.
 *   - pooling and the loss: not counted (well under 1% of either net).
 *   - layer: the forward index of the conv / bn / fc layer, from 1; the
 *     layer's whole backward is charged to its first tensor in backward
 *     order (bn: bias, fc: bias, conv: weight), 0 to the others.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/visibility.h"
#include "hring_fusion.h"

#define BN_FWD_FLOPS_PER_ELT 10.0
#define BN_BWD_FLOPS_PER_ELT 20.0

#define MAX_LAYERS 128
#define MAX_TENSORS 192
#define NAME_LEN 48

enum { L_CONV, L_BN, L_FC };

typedef struct {
  int kind;
  char name[NAME_LEN]; /* without ".weight" / ".bias" */
  int cout, cin, kh, kw; /* bn: cout = channels */
  double fwd, bwd;       /* FLOPs per sample */
} layer_t;

typedef struct {
  layer_t layers[MAX_LAYERS];
  int nl;
  int c, h, w; /* the activation after the last layer added */
  int overflow;
} builder_t;

static layer_t *add(builder_t *b, int kind, const char *name) {
  if (b->nl >= MAX_LAYERS) {
    b->overflow = 1;
    return &b->layers[MAX_LAYERS - 1];
  }
  layer_t *l = &b->layers[b->nl++];
  memset(l, 0, sizeof *l);
  l->kind = kind;
  snprintf(l->name, sizeof l->name, "%s", name);
  return l;
}

static int out_size(int x, int k, int stride, int pad) { return (x + 2 * pad - k) / stride + 1; }

/* A conv without bias on the current activation. */
static void conv(builder_t *b, const char *name, int cout, int k, int stride, int pad) {
  int first = b->nl == 0;
  layer_t *l = add(b, L_CONV, name);
  l->cin = b->c, l->cout = cout, l->kh = l->kw = k;
  b->h = out_size(b->h, k, stride, pad);
  b->w = out_size(b->w, k, stride, pad);
  b->c = cout;
  double macs = (double)b->h * b->w * cout * l->cin * k * k;
  l->fwd = 2 * macs;
  l->bwd = first ? l->fwd : 2 * l->fwd;
}

static void bn(builder_t *b, const char *name) {
  layer_t *l = add(b, L_BN, name);
  l->cout = b->c;
  double elts = (double)b->c * b->h * b->w;
  l->fwd = BN_FWD_FLOPS_PER_ELT * elts;
  l->bwd = BN_BWD_FLOPS_PER_ELT * elts;
}

static void fc(builder_t *b, const char *name, int out) {
  int first = b->nl == 0;
  layer_t *l = add(b, L_FC, name);
  l->cin = b->c * b->h * b->w, l->cout = out;
  b->c = out, b->h = b->w = 1;
  l->fwd = 2.0 * l->cin * out;
  l->bwd = first ? l->fwd : 2 * l->fwd;
}

static void pool(builder_t *b, int k, int stride, int pad) {
  b->h = out_size(b->h, k, stride, pad);
  b->w = out_size(b->w, k, stride, pad);
}

/* ---- the architectures ---- */

/* torchvision resnet50 (v1.5: the stride of a downsampling bottleneck is
 * in its 3x3 conv), 224x224 input. */
static void build_resnet50(builder_t *b) {
  static const int blocks[4] = {3, 4, 6, 3}, width[4] = {64, 128, 256, 512},
                   stride[4] = {1, 2, 2, 2};
  char nm[NAME_LEN];
  b->c = 3, b->h = b->w = 224;
  conv(b, "conv1", 64, 7, 2, 3);
  bn(b, "bn1");
  pool(b, 3, 2, 1);
  for (int s = 0; s < 4; s++) {
    for (int k = 0; k < blocks[s]; k++) {
      int st = k == 0 ? stride[s] : 1, cin = b->c, h = b->h, w = b->w;
#define NAME(suffix) (snprintf(nm, sizeof nm, "layer%d.%d." suffix, s + 1, k), nm)
      conv(b, NAME("conv1"), width[s], 1, 1, 0);
      bn(b, NAME("bn1"));
      conv(b, NAME("conv2"), width[s], 3, st, 1);
      bn(b, NAME("bn2"));
      conv(b, NAME("conv3"), 4 * width[s], 1, 1, 0);
      bn(b, NAME("bn3"));
      if (k == 0) {
        /* torchvision registers downsample after bn3; it reads the block's
         * input and gives the block's output shape. */
        b->c = cin, b->h = h, b->w = w;
        conv(b, NAME("downsample.0"), 4 * width[s], 1, st, 0);
        bn(b, NAME("downsample.1"));
      }
#undef NAME
    }
  }
  pool(b, b->h, 1, 0); /* global average pool */
  fc(b, "fc", 1000);
}

/* AlexNet with batch norm as in Jia et al. 2018: one tower, BN after every
 * conv and after pool5, none on the fc layers; 227x227 input, so conv1
 * (11x11 / 4, no pad) gives 55x55 (224 with pad 2 would too). */
static void build_alexnet(builder_t *b) {
  b->c = 3, b->h = b->w = 227;
  conv(b, "conv1", 96, 11, 4, 0); /* 55 */
  bn(b, "bn1");
  pool(b, 3, 2, 0);               /* 27 */
  conv(b, "conv2", 256, 5, 1, 2); /* 27 */
  bn(b, "bn2");
  pool(b, 3, 2, 0);               /* 13 */
  conv(b, "conv3", 384, 3, 1, 1);
  bn(b, "bn3");
  conv(b, "conv4", 384, 3, 1, 1);
  bn(b, "bn4");
  conv(b, "conv5", 256, 3, 1, 1);
  bn(b, "bn5");
  pool(b, 3, 2, 0);               /* 6: 256 x 6 x 6 = 9216 */
  bn(b, "bn6");                   /* over pool5's 256 channels */
  fc(b, "fc6", 4096);
  fc(b, "fc7", 4096);
  fc(b, "fc8", 1000);
}

/* ---- the tables ---- */

typedef struct {
  const char *name;
  void (*build)(builder_t *);
  pthread_once_t once;
  int ok;
  hring_net_t net;
  hring_net_tensor_t tensors[MAX_TENSORS];
  char names[MAX_TENSORS][NAME_LEN + 8];
} table_t;

static void set_tensor(table_t *t, int i, const layer_t *l, int layer, const char *suffix,
                       hring_param_kind_t kind) {
  hring_net_tensor_t *x = &t->tensors[i];
  snprintf(t->names[i], sizeof t->names[i], "%s.%s", l->name, suffix);
  x->name = t->names[i];
  x->kind = kind;
  x->layer = layer;
  x->bwd_flops = 0;
  switch (kind) {
    case HRING_PARAM_CONV_WEIGHT:
      x->ndims = 4;
      x->dims[0] = l->cout, x->dims[1] = l->cin, x->dims[2] = l->kh, x->dims[3] = l->kw;
      break;
    case HRING_PARAM_FC_WEIGHT:
      x->ndims = 2;
      x->dims[0] = l->cout, x->dims[1] = l->cin, x->dims[2] = x->dims[3] = 0;
      break;
    default:
      x->ndims = 1;
      x->dims[0] = l->cout, x->dims[1] = x->dims[2] = x->dims[3] = 0;
      break;
  }
  x->count = 1;
  for (int d = 0; d < x->ndims; d++) x->count *= (size_t)x->dims[d];
}

static void generate(table_t *t) {
  static builder_t b; /* under pthread_once: one table at a time per table */
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&lock);
  memset(&b, 0, sizeof b);
  t->build(&b);
  /* Forward registration order, written from the back of the table. */
  int n = 0;
  for (int i = 0; i < b.nl; i++) n += b.layers[i].kind == L_CONV ? 1 : 2;
  if (b.overflow || n > MAX_TENSORS) {
    pthread_mutex_unlock(&lock);
    return;
  }
  int pos = n; /* the next forward tensor goes to tensors[pos - 1] */
  double fwd = 0;
  for (int i = 0; i < b.nl; i++) {
    const layer_t *l = &b.layers[i];
    int layer = i + 1;
    fwd += l->fwd;
    hring_net_tensor_t *charged;
    switch (l->kind) {
      case L_CONV:
        set_tensor(t, --pos, l, layer, "weight", HRING_PARAM_CONV_WEIGHT);
        charged = &t->tensors[pos];
        break;
      case L_BN:
        set_tensor(t, --pos, l, layer, "weight", HRING_PARAM_BN_GAMMA);
        set_tensor(t, --pos, l, layer, "bias", HRING_PARAM_BN_BETA);
        charged = &t->tensors[pos];
        break;
      default:
        set_tensor(t, --pos, l, layer, "weight", HRING_PARAM_FC_WEIGHT);
        set_tensor(t, --pos, l, layer, "bias", HRING_PARAM_FC_BIAS);
        charged = &t->tensors[pos];
        break;
    }
    /* The layer's first tensor in backward order: the last registered. */
    charged->bwd_flops = l->bwd;
  }
  t->net.name = t->name;
  t->net.ntensors = n;
  t->net.tensors = t->tensors;
  t->net.params = 0;
  t->net.bwd_flops = 0;
  for (int i = 0; i < n; i++) {
    t->net.params += t->tensors[i].count;
    t->net.bwd_flops += t->tensors[i].bwd_flops;
  }
  t->net.fwd_flops = fwd;
  t->ok = 1;
  pthread_mutex_unlock(&lock);
}

static table_t resnet50 = {.name = "resnet50", .build = build_resnet50, .once = PTHREAD_ONCE_INIT};
static table_t alexnet = {.name = "alexnet", .build = build_alexnet, .once = PTHREAD_ONCE_INIT};

static void gen_resnet50(void) { generate(&resnet50); }
static void gen_alexnet(void) { generate(&alexnet); }

HRING_API const hring_net_t *hring_fusion_net(const char *name) {
  table_t *t;
  if (!name) return NULL;
  if (strcmp(name, "resnet50") == 0) {
    t = &resnet50;
    pthread_once(&t->once, gen_resnet50);
  } else if (strcmp(name, "alexnet") == 0) {
    t = &alexnet;
    pthread_once(&t->once, gen_alexnet);
  } else {
    return NULL;
  }
  return t->ok ? &t->net : NULL;
}
