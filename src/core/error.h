/*
 * error.h - setting the thread's last error and propagating results.
 *
 * hring__err() is called where a failure is first detected: it formats the
 * message into the thread-local last error (what hring_last_error() returns),
 * logs it at WARN, and returns the code, so `return hring__err(...)` is the
 * idiom.  HRING_CHECK() propagates a failing result one level up and logs the
 * path at TRACE, like NCCL's NCCLCHECK.
 */
#ifndef HRING_CORE_ERROR_H
#define HRING_CORE_ERROR_H

#include "hring.h"

hring_result_t hring__err(hring_result_t code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like hring__err, but appends ": <strerror(errno_value)>". */
hring_result_t hring__err_errno(hring_result_t code, int errno_value,
                                const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the thread's last error to msg without logging it: for a failure
 * already reported where it happened (another thread's, handed over with
 * its request).  Returns code. */
hring_result_t hring__err_quiet(hring_result_t code, const char *msg);

/* Forgets the thread's last error (at the start of a public call that
 * succeeds, the previous message must not be mistaken for a new one). */
void hring__err_clear(void);

void hring__check_trace(const char *file, int line, hring_result_t r);

#define HRING_CHECK(call)                                  \
  do {                                                     \
    hring_result_t hring_check_r_ = (call);                \
    if (hring_check_r_ != HRING_SUCCESS) {                 \
      hring__check_trace(__FILE__, __LINE__, hring_check_r_); \
      return hring_check_r_;                               \
    }                                                      \
  } while (0)

/* Same, but jumps to a cleanup label with `res` set. */
#define HRING_CHECK_GOTO(call, res, label)                 \
  do {                                                     \
    (res) = (call);                                        \
    if ((res) != HRING_SUCCESS) {                          \
      hring__check_trace(__FILE__, __LINE__, (res));       \
      goto label;                                          \
    }                                                      \
  } while (0)

#endif
