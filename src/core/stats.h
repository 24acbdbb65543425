/*
 * stats.h - order statistics of a few timings (stats.c): every timing loop
 * of the library and its tools takes a median or a quartile of its
 * repetitions, so noisy samples do not decide.
 */
#ifndef HRING_CORE_STATS_H
#define HRING_CORE_STATS_H

/* Sorts v[0..n) ascending, in place. */
void hring__sort_doubles(double *v, int n);

/* The median of v[0..n) (n >= 1; the mean of the middle two for even n);
 * sorts v. */
double hring__median(double *v, int n);

#endif
