/*
 * harness.h - the test runner's interface.
 *
 * A test is a function registered with HTEST(name, timeout_s).  The runner
 * (tests/harness.c) forks every test into its own process with its own
 * timeout, so a hang or a crash fails one test, not the run, and prints one
 * closing line "N passed, N failed[, N skipped]".
 *
 * Inside a test: HCHECK(cond, fmt, ...) records a failure (and goes on);
 * HREQUIRE(cond, fmt, ...) records it and ends the test; HSKIP(fmt, ...) ends
 * the test as skipped.  A test passes when it returns with no failure.
 */
#ifndef HRING_TEST_HARNESS_H
#define HRING_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

typedef void (*htest_fn)(void);
void htest_register(const char *name, htest_fn fn, int timeout_s);
void htest_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void htest_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int htest_failures(void);
void htest_end(void) __attribute__((noreturn));

#define HTEST(name, timeout_s)                                             \
  static void htest_fn_##name(void);                                       \
  __attribute__((constructor)) static void htest_reg_##name(void) {        \
    htest_register(#name, htest_fn_##name, (timeout_s));                   \
  }                                                                        \
  static void htest_fn_##name(void)

#define HCHECK(cond, ...)                                                  \
  do {                                                                     \
    if (!(cond)) htest_fail(__FILE__, __LINE__, __VA_ARGS__);              \
  } while (0)

#define HREQUIRE(cond, ...)                                                \
  do {                                                                     \
    if (!(cond)) {                                                         \
      htest_fail(__FILE__, __LINE__, __VA_ARGS__);                         \
      htest_end();                                                         \
    }                                                                      \
  } while (0)

#define HSKIP(...) htest_skip(__VA_ARGS__)

#endif
