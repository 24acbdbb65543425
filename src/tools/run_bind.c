/* run_bind.c - the launcher's CPU plan (run_bind.h).  Stands alone, as
 * the launcher does: sysfs only, no hwloc, nothing from the library. */
#include "tools/run_bind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The core of a CPU as one number (package << 20 | core id), or -1 when
 * sysfs does not say. */
static long core_key(int cpu) {
  long v[2] = {-1, -1};
  const char *names[2] = {"physical_package_id", "core_id"};
  for (int i = 0; i < 2; i++) {
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, names[i]);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (fscanf(f, "%ld", &v[i]) != 1) v[i] = -1;
    fclose(f);
  }
  return v[0] < 0 || v[1] < 0 ? -1 : v[0] << 20 | v[1];
}

int run_bind_plan(const cpu_set_t *allowed, int n, cpu_set_t *sets) {
  /* core[c]: the index of CPU c's core among the allowed cores. */
  static int core[CPU_SETSIZE];
  static long key[CPU_SETSIZE];
  int ncores = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    core[c] = -1;
    if (!CPU_ISSET(c, allowed)) continue;
    long k = core_key(c);
    int i = 0;
    if (k >= 0)
      while (i < ncores && key[i] != k) i++;
    else
      i = ncores; /* unknown: a core of its own */
    if (i == ncores) key[ncores++] = k;
    core[c] = i;
  }
  if (n < 1 || ncores < 1) return 0;
  /* Rank r owns cores [r * ncores / n, (r + 1) * ncores / n); with more
   * ranks than cores, the ranks r with r * ncores / n = k share core k, so
   * consecutive ranks (ring neighbours) share a core. */
  for (int r = 0; r < n; r++) {
    CPU_ZERO(&sets[r]);
    const long lo = (long)r * ncores / n;
    long hi = (long)(r + 1) * ncores / n;
    if (hi <= lo) hi = lo + 1;
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (core[c] >= lo && core[c] < hi) CPU_SET(c, &sets[r]);
  }
  return ncores;
}
