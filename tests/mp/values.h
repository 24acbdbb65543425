/*
 * values.h - inputs and expected results shared by the allreduce matrices
 * (host buffers in test_allreduce.c, device buffers in test_device.c).
 */
#ifndef HRING_TEST_VALUES_H
#define HRING_TEST_VALUES_H

#include <stddef.h>
#include <stdint.h>
#include "hring.h"

/* Element i of rank `rank`'s input for op, of n ranks, stored into buf. */
void mp_value(void *buf, size_t i, hring_datatype_t t, hring_redop_t op, int rank, int n);
/* Element i of the expected result. */
void mp_expected(void *buf, size_t i, hring_datatype_t t, hring_redop_t op, int n);

/* FNV-1a over n bytes: ranks compare the hashes of their results to check
 * that they hold the same bits. */
uint64_t values_hash(const void *p, size_t n);

#endif
