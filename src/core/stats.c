/*
 * stats.c - order statistics of a few timings (stats.h).
 */
#include "core/stats.h"

#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void hring__sort_doubles(double *v, int n) { qsort(v, (size_t)n, sizeof *v, cmp_double); }

double hring__median(double *v, int n) {
  hring__sort_doubles(v, n);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
