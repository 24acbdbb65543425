/* test_nets.c - the gradient tables of the reference networks
 * (hring_fusion_net, src/fusion/nets.c). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "hring_fusion.h"

/* Checks that hold for every table; returns the number of tensors of each
 * kind in kinds[6]. */
static void check_common(const hring_net_t *net, int kinds[6]) {
  memset(kinds, 0, 6 * sizeof *kinds);
  size_t params = 0;
  double bwd = 0;
  int prev_layer = 1 << 30;
  for (int i = 0; i < net->ntensors; i++) {
    const hring_net_tensor_t *t = &net->tensors[i];
    HREQUIRE(t->name && *t->name, "tensor %d has no name", i);
    HCHECK(t->kind >= HRING_PARAM_CONV_WEIGHT && t->kind <= HRING_PARAM_CONV_BIAS, "%s: kind %d",
           t->name, t->kind);
    kinds[t->kind]++;
    size_t c = 1;
    HCHECK(t->ndims >= 1 && t->ndims <= 4, "%s: ndims %d", t->name, t->ndims);
    for (int d = 0; d < t->ndims; d++) {
      HCHECK(t->dims[d] > 0, "%s: dim %d = %d", t->name, d, t->dims[d]);
      c *= (size_t)t->dims[d];
    }
    HCHECK(c == t->count, "%s: count %zu, dims give %zu", t->name, t->count, c);
    int want_dims = t->kind == HRING_PARAM_CONV_WEIGHT ? 4 : t->kind == HRING_PARAM_FC_WEIGHT ? 2 : 1;
    HCHECK(t->ndims == want_dims, "%s: ndims %d, want %d", t->name, t->ndims, want_dims);
    /* Backward order: layers from the last to the first, each layer's
     * tensors together. */
    HCHECK(t->layer <= prev_layer && t->layer >= 1, "%s: layer %d after layer %d", t->name,
           t->layer, prev_layer);
    /* The layer's backward is charged to its first tensor in backward
     * order, and to no other. */
    int first_of_layer = i == 0 || net->tensors[i - 1].layer != t->layer;
    if (first_of_layer)
      HCHECK(t->bwd_flops > 0, "%s: first tensor of layer %d with %g FLOPs", t->name, t->layer,
             t->bwd_flops);
    else
      HCHECK(t->bwd_flops == 0, "%s: %g FLOPs on a tensor that is not its layer's first",
             t->name, t->bwd_flops);
    /* Layer indices are dense: each layer one more than the next. */
    if (i > 0 && first_of_layer)
      HCHECK(t->layer == prev_layer - 1, "%s: layer %d follows layer %d", t->name, t->layer,
             prev_layer);
    prev_layer = t->layer;
    params += t->count;
    bwd += t->bwd_flops;
    for (int j = 0; j < i; j++)
      HCHECK(strcmp(net->tensors[j].name, t->name) != 0, "%s twice (%d and %d)", t->name, j, i);
  }
  HCHECK(prev_layer == 1, "%s: last tensor in layer %d, want 1", net->name, prev_layer);
  HCHECK(params == net->params, "%s: params %zu, tensors sum to %zu", net->name, net->params,
         params);
  HCHECK(fabs(bwd - net->bwd_flops) <= 1e-9 * bwd, "%s: bwd_flops %g, tensors sum to %g",
         net->name, net->bwd_flops, bwd);
}

static int index_of(const hring_net_t *net, const char *name) {
  for (int i = 0; i < net->ntensors; i++)
    if (strcmp(net->tensors[i].name, name) == 0) return i;
  return -1;
}

HTEST(nets_resnet50_table, 10) {
  const hring_net_t *net = hring_fusion_net("resnet50");
  HREQUIRE(net, "no resnet50");
  HCHECK(strcmp(net->name, "resnet50") == 0, "name %s", net->name);
  HREQUIRE(net->ntensors == 161, "%d tensors, want 161", net->ntensors);
  int kinds[6];
  check_common(net, kinds);
  HCHECK(kinds[HRING_PARAM_CONV_WEIGHT] == 53 && kinds[HRING_PARAM_BN_GAMMA] == 53 &&
             kinds[HRING_PARAM_BN_BETA] == 53 && kinds[HRING_PARAM_FC_WEIGHT] == 1 &&
             kinds[HRING_PARAM_FC_BIAS] == 1 && kinds[HRING_PARAM_CONV_BIAS] == 0,
         "kinds conv %d gamma %d beta %d fcw %d fcb %d convb %d", kinds[0], kinds[1], kinds[2],
         kinds[3], kinds[4], kinds[5]);
  /* torchvision's resnet50: sum(p.numel() for p in model.parameters()). */
  HCHECK(net->params == 25557032, "params %zu, want 25557032", net->params);
  /* 53 convs + 53 bn + fc. */
  HCHECK(net->tensors[0].layer == 107, "fc is layer %d, want 107", net->tensors[0].layer);
  static const char *head[] = {"fc.bias", "fc.weight", "layer4.2.bn3.bias",
                               "layer4.2.bn3.weight", "layer4.2.conv3.weight",
                               "layer4.2.bn2.bias"};
  for (int i = 0; i < 6; i++)
    HCHECK(strcmp(net->tensors[i].name, head[i]) == 0, "tensor %d: %s, want %s", i,
           net->tensors[i].name, head[i]);
  HCHECK(strcmp(net->tensors[160].name, "conv1.weight") == 0, "last: %s",
         net->tensors[160].name);
  HCHECK(strcmp(net->tensors[159].name, "bn1.weight") == 0, "159: %s", net->tensors[159].name);
  /* torchvision registers downsample after bn3: in backward order it comes
   * first in its block. */
  int ds = index_of(net, "layer3.0.downsample.1.bias"), b3 = index_of(net, "layer3.0.bn3.bias");
  HCHECK(ds >= 0 && b3 == ds + 3, "layer3.0.downsample.1.bias at %d, bn3.bias at %d", ds, b3);
  int ds0 = index_of(net, "layer1.0.downsample.0.weight");
  HREQUIRE(ds0 >= 0, "no layer1.0.downsample.0.weight");
  const hring_net_tensor_t *t = &net->tensors[ds0];
  HCHECK(t->dims[0] == 256 && t->dims[1] == 64 && t->dims[2] == 1 && t->dims[3] == 1,
         "layer1.0.downsample.0.weight dims %dx%dx%dx%d", t->dims[0], t->dims[1], t->dims[2],
         t->dims[3]);
  HCHECK(index_of(net, "layer2.1.downsample.0.weight") < 0, "a downsample in layer2.1");
  t = &net->tensors[1];
  HCHECK(t->ndims == 2 && t->dims[0] == 1000 && t->dims[1] == 2048, "fc dims %dx%d", t->dims[0],
         t->dims[1]);
  t = &net->tensors[index_of(net, "layer2.0.conv2.weight")];
  HCHECK(t->dims[0] == 128 && t->dims[1] == 128 && t->dims[2] == 3, "layer2.0.conv2 %dx%dx%d",
         t->dims[0], t->dims[1], t->dims[2]);
  /* 4.09 G multiply-adds in the convs and fc (torchvision's 4.1 GFLOPS
   * counts MACs), 2 FLOPs each, plus ~0.1 G of batch norm. */
  HCHECK(net->fwd_flops > 8.1e9 && net->fwd_flops < 8.4e9, "fwd %g FLOPs", net->fwd_flops);
  /* Backward: 2x forward for conv and bn, 1x for conv1. */
  double r = net->bwd_flops / net->fwd_flops;
  HCHECK(r > 1.9 && r < 2.0, "bwd / fwd = %g", r);
  /* conv1: 112*112*64*3*49 MACs, backward 1x forward. */
  double conv1 = 2.0 * 112 * 112 * 64 * 3 * 49;
  HCHECK(fabs(net->tensors[160].bwd_flops - conv1) < 1, "conv1 bwd %g, want %g",
         net->tensors[160].bwd_flops, conv1);
  /* fc: 2 * 2048 * 1000 forward, twice that backward, on fc.bias. */
  HCHECK(fabs(net->tensors[0].bwd_flops - 2 * 2.0 * 2048 * 1000) < 1, "fc bwd %g",
         net->tensors[0].bwd_flops);
  /* layer4.2.bn3: 2048 x 7 x 7 elements, 20 FLOPs each backward. */
  HCHECK(fabs(net->tensors[2].bwd_flops - 20.0 * 2048 * 49) < 1, "bn3 bwd %g",
         net->tensors[2].bwd_flops);
}

HTEST(nets_alexnet_table, 10) {
  const hring_net_t *net = hring_fusion_net("alexnet");
  HREQUIRE(net, "no alexnet");
  HCHECK(strcmp(net->name, "alexnet") == 0, "name %s", net->name);
  HREQUIRE(net->ntensors == 23, "%d tensors, want 23", net->ntensors);
  int kinds[6];
  check_common(net, kinds);
  HCHECK(kinds[HRING_PARAM_CONV_WEIGHT] == 5 && kinds[HRING_PARAM_BN_GAMMA] == 6 &&
             kinds[HRING_PARAM_BN_BETA] == 6 && kinds[HRING_PARAM_FC_WEIGHT] == 3 &&
             kinds[HRING_PARAM_FC_BIAS] == 3,
         "kinds conv %d gamma %d beta %d fcw %d fcb %d", kinds[0], kinds[1], kinds[2], kinds[3],
         kinds[4]);
  /* By hand:
   *   conv1 96*3*11*11    =     34,848
   *   conv2 256*96*5*5    =    614,400
   *   conv3 384*256*3*3   =    884,736
   *   conv4 384*384*3*3   =  1,327,104
   *   conv5 256*384*3*3   =    884,736
   *   bn1..bn6 2*(96+256+384+384+256+256) = 3,264
   *   fc6 4096*9216+4096  = 37,752,832
   *   fc7 4096*4096+4096  = 16,781,312
   *   fc8 1000*4096+1000  =  4,097,000
   *   total               = 62,380,232 */
  HCHECK(net->params == 62380232, "params %zu, want 62380232", net->params);
  static const char *order[23] = {
      "fc8.bias",  "fc8.weight", "fc7.bias",    "fc7.weight", "fc6.bias",     "fc6.weight",
      "bn6.bias",  "bn6.weight", "bn5.bias",    "bn5.weight", "conv5.weight", "bn4.bias",
      "bn4.weight", "conv4.weight", "bn3.bias", "bn3.weight", "conv3.weight", "bn2.bias",
      "bn2.weight", "conv2.weight", "bn1.bias", "bn1.weight", "conv1.weight"};
  for (int i = 0; i < 23; i++)
    HCHECK(strcmp(net->tensors[i].name, order[i]) == 0, "tensor %d: %s, want %s", i,
           net->tensors[i].name, order[i]);
  HCHECK(net->tensors[0].layer == 14, "fc8 is layer %d, want 14", net->tensors[0].layer);
  const hring_net_tensor_t *fc6 = &net->tensors[5];
  HCHECK(fc6->dims[0] == 4096 && fc6->dims[1] == 9216, "fc6 %dx%d", fc6->dims[0], fc6->dims[1]);
  HCHECK(net->tensors[6].dims[0] == 256, "bn6 over %d channels", net->tensors[6].dims[0]);
  /* conv1 at 55x55: 55*55*96*3*121 MACs; conv2 at 27x27; conv3-5 at 13x13. */
  double macs = 55.0 * 55 * 96 * 363 + 27.0 * 27 * 256 * 96 * 25 + 13.0 * 13 * 384 * 256 * 9 +
                13.0 * 13 * 384 * 384 * 9 + 13.0 * 13 * 256 * 384 * 9 + 9216.0 * 4096 +
                4096.0 * 4096 + 4096.0 * 1000;
  double bn_elts = 96.0 * 55 * 55 + 256.0 * 27 * 27 + 384.0 * 13 * 13 * 2 + 256.0 * 13 * 13 +
                   256.0 * 6 * 6;
  double fwd = 2 * macs + 10 * bn_elts;
  HCHECK(fabs(net->fwd_flops - fwd) < 1e-9 * fwd, "fwd %g, want %g", net->fwd_flops, fwd);
  double bwd = 2 * (fwd - 10 * bn_elts) - 2.0 * 55 * 55 * 96 * 363 + 20 * bn_elts;
  HCHECK(fabs(net->bwd_flops - bwd) < 1e-9 * bwd, "bwd %g, want %g", net->bwd_flops, bwd);
}

HTEST(nets_unknown_names, 5) {
  HCHECK(hring_fusion_net(NULL) == NULL, "NULL name");
  HCHECK(hring_fusion_net("") == NULL, "empty name");
  HCHECK(hring_fusion_net("vgg16") == NULL, "vgg16");
  HCHECK(hring_fusion_net("resnet5") == NULL, "resnet5");
  HCHECK(hring_fusion_net("alexnet ") == NULL, "trailing space");
}

static void *get_both(void *arg) {
  const hring_net_t **out = arg;
  out[0] = hring_fusion_net("resnet50");
  out[1] = hring_fusion_net("alexnet");
  return NULL;
}

/* The first calls race: every thread gets the same complete table. */
HTEST(nets_threads, 10) {
  enum { T = 8 };
  pthread_t th[T];
  const hring_net_t *got[T][2];
  for (int i = 0; i < T; i++) HREQUIRE(pthread_create(&th[i], NULL, get_both, got[i]) == 0, "create");
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < T; i++) {
    HCHECK(got[i][0] && got[i][0] == got[0][0] && got[i][0]->ntensors == 161, "thread %d resnet50",
           i);
    HCHECK(got[i][1] && got[i][1] == got[0][1] && got[i][1]->ntensors == 23, "thread %d alexnet", i);
  }
}
