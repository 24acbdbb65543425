/* error.c - result strings, the thread's last error, and check tracing. */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/visibility.h"

static _Thread_local char last_error[512];

HRING_API const char *hring_strerror(hring_result_t result) {
  switch (result) {
#define HRING_X_STR(name, value, text) \
  case name:                           \
    return text;
    HRING_RESULT_MAP(HRING_X_STR)
#undef HRING_X_STR
    default:
      return "unknown result";
  }
}

HRING_API const char *hring_last_error(void) { return last_error; }

void hring__err_clear(void) { last_error[0] = '\0'; }

hring_result_t hring__err_quiet(hring_result_t code, const char *msg) {
  if (msg != last_error) snprintf(last_error, sizeof last_error, "%s", msg);
  return code;
}

static hring_result_t err_v(hring_result_t code, int errno_value, const char *fmt, va_list ap) {
  int saved = errno;
  /* Format aside first: callers may pass hring_last_error() as an argument
   * to wrap the previous message. */
  char msg[sizeof last_error];
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  if (errno_value && n >= 0 && (size_t)n < sizeof msg)
    snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(errno_value));
  memcpy(last_error, msg, sizeof last_error);
  /* Errors in the caller's use are the caller's to report; failures of the
   * system or of peers are logged where they are first detected. */
  if (code == HRING_ERR_INVALID_ARGUMENT || code == HRING_ERR_INVALID_USAGE ||
      code == HRING_ERR_UNSUPPORTED)
    HRING_INFO(HRING_SUB_ALL, "%s (%s)", last_error, hring_strerror(code));
  else
    HRING_WARN(HRING_SUB_ALL, "%s (%s)", last_error, hring_strerror(code));
  errno = saved;
  return code;
}

hring_result_t hring__err(hring_result_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hring_result_t r = err_v(code, 0, fmt, ap);
  va_end(ap);
  return r;
}

hring_result_t hring__err_errno(hring_result_t code, int errno_value, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hring_result_t r = err_v(code, errno_value, fmt, ap);
  va_end(ap);
  return r;
}

void hring__check_trace(const char *file, int line, hring_result_t r) {
  HRING_TRACE(HRING_SUB_ALL, "%s:%d -> %d (%s)", file, line, (int)r, hring_strerror(r));
}
