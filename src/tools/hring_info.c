/*
 * hring-info - what this build of hring has and sees.
 *
 *   hring-info            features, CPU kernels, topology, transports, config
 *   hring-info -c         the configuration table only
 *   hring-info -c -m      the configuration table as markdown (for the README)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "algos/reduce.h"
#include "core/config.h"
#include "core/cuda.h"
#include "core/wait.h"
#include "hring.h"

#ifndef HRING_FOUND_VERBS
#define HRING_FOUND_VERBS 0
#define HRING_FOUND_PMIX 0
#define HRING_FOUND_HWLOC 0
#endif

static void features(void) {
  int v = 0;
  hring_get_version(&v);
  printf("hring %d.%d.%d\n", v / 10000, (v / 100) % 100, v % 100);
  printf("features:\n");
  printf("  host reduction kernels : %s\n", hring__reduce_isa());
  printf("  transports             : shm, tcp\n");
  /* CUDA is found at run time (the plugin, then a device). */
  printf("  CUDA                   : %s\n", hring__cuda_status());
  const hring_cuda_api_t *cu = hring__cuda();
  char name[256];
  for (int d = 0; cu && cu->device_name(d, name, sizeof name) == 0; d++)
    printf("    device %d             : %s\n", d, name);
  /* Found at build time means the headers were there; the support itself is
   * not part of this version yet. */
  static const struct {
    const char *name;
    int found;
  } opt[] = {{"verbs (RDMA)", HRING_FOUND_VERBS},
             {"PMIx", HRING_FOUND_PMIX},
             {"hwloc", HRING_FOUND_HWLOC}};
  for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
    printf("  %-23s: not supported yet (headers %s at build time)\n", opt[i].name,
           opt[i].found ? "found" : "not found");
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  printf("topology:\n");
  printf("  host                   : %s\n", host);
  printf("  cores usable           : %d\n", hring__ncores());
}

int main(int argc, char **argv) {
  int only_cfg = 0, markdown = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-c") == 0) only_cfg = 1;
    else if (strcmp(argv[i], "-m") == 0) markdown = 1;
    else {
      fprintf(stderr, "usage: %s [-c [-m]]\n", argv[0]);
      return 2;
    }
  }
  if (!only_cfg) features();
  if (!markdown) printf("configuration (environment):\n");
  hring__cfg_print(stdout, markdown);
  return 0;
}
