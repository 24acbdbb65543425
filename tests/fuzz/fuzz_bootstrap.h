/*
 * fuzz_bootstrap.h - the input layout of fuzz_bootstrap.c, shared with the
 * seed generator gen_bootstrap_corpus.c.
 */
#ifndef HRING_FUZZ_BOOTSTRAP_H
#define HRING_FUZZ_BOOTSTRAP_H

#include <stdint.h>

/* Byte 0 of an input, mod FZ_KINDS. */
enum { FZ_HELLO, FZ_JOIN, FZ_ACK, FZ_ROUND, FZ_TOTAL, FZ_REPLY, FZ_ID, FZ_PROOF, FZ_KINDS };

/* FZ_HELLO: ctl[1] job[4] joined_mask[8] challenge[16], then the hello
 * (whose proof answers the challenge and the hello's own nonce). */
#define FZ_HELLO_PREFIX 29
#define FZ_MAX_JOB 1024
#define FZ_CTL_TRUST_PROOF 1 /* the expected proof is the hello's own */
#define FZ_CTL_RAW_JOB 2     /* job is any int32, with no fds array */
/* FZ_ACK: challenge[16] nonce[16] (of the rank's hello), then the ack. */
#define FZ_ACK_PREFIX 32
/* FZ_ROUND: ctl[1] expect[4], then the header. */
#define FZ_CTL_FIRST 1 /* rank 0's header: nothing to match */

/* The job secret of the fuzzed root (the seeds' proofs are made with it). */
static const uint8_t fz_secret[16] = {0x68, 0x72, 0x69, 0x6e, 0x67, 0x2d, 0x66, 0x75,
                                      0x7a, 0x7a, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x74};

#endif
