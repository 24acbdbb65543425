/* log.c - leveled logging (see log.h). */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"

int hring__log_level = -1;
int hring__log_subsys = HRING_SUB_ALL;
static FILE *log_file;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static _Thread_local int log_rank = -1;
static char log_host[64];

void hring__log_set_rank(int rank) { log_rank = rank; }

static int parse_subsys(const char *s) {
  if (!s || !*s) return HRING_SUB_ALL;
  static const struct { const char *name; int bit; } names[] = {
      {"INIT", HRING_SUB_INIT}, {"NET", HRING_SUB_NET}, {"SHM", HRING_SUB_SHM},
      {"COLL", HRING_SUB_COLL}, {"ALL", HRING_SUB_ALL}};
  int mask = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      if (strcasecmp(tok, names[i].name) == 0) mask |= names[i].bit;
  return mask ? mask : HRING_SUB_ALL;
}

/* %h -> host name, %p -> pid, in HRING_DEBUG_FILE. */
static FILE *open_log_file(const char *pattern) {
  char path[512];
  size_t o = 0;
  for (const char *p = pattern; *p && o + 32 < sizeof path; p++) {
    if (p[0] == '%' && p[1] == 'h') {
      o += (size_t)snprintf(path + o, sizeof path - o, "%s", log_host);
      p++;
    } else if (p[0] == '%' && p[1] == 'p') {
      o += (size_t)snprintf(path + o, sizeof path - o, "%d", (int)getpid());
      p++;
    } else {
      path[o++] = *p;
    }
  }
  path[o] = '\0';
  FILE *f = fopen(path, "a");
  if (f) setvbuf(f, NULL, _IOLBF, 0);
  return f;
}

static void log_init_once(void) {
  int saved = errno;
  gethostname(log_host, sizeof log_host - 1);
  const char *lvl = hring__cfg_str(HRING_CFG_DEBUG);
  int level = HRING_LOG_WARN;
  if (lvl) {
    if (strcasecmp(lvl, "NONE") == 0 || strcasecmp(lvl, "OFF") == 0) level = HRING_LOG_NONE;
    else if (strcasecmp(lvl, "INFO") == 0) level = HRING_LOG_INFO;
    else if (strcasecmp(lvl, "TRACE") == 0) level = HRING_LOG_TRACE;
  }
  hring__log_subsys = parse_subsys(hring__cfg_str(HRING_CFG_DEBUG_SUBSYS));
  const char *file = hring__cfg_str(HRING_CFG_DEBUG_FILE);
  log_file = file && *file ? open_log_file(file) : NULL;
  if (!log_file) log_file = stderr;
  __atomic_store_n(&hring__log_level, level, __ATOMIC_RELEASE);
  errno = saved;
}

void hring__log_init(void) { pthread_once(&log_once, log_init_once); }

void hring__log_emit(int level, int subsys, const char *file, int line, const char *fmt, ...) {
  int saved = errno;
  (void)subsys;
  static const char *names[] = {"NONE", "WARN", "INFO", "TRACE"};
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "%s:%d:%d [%d] hring %s ", log_host, (int)getpid(),
                   (int)(pthread_self() % 100000), log_rank, names[level]);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof msg) n += vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  if (level >= HRING_LOG_TRACE && n > 0 && (size_t)n < sizeof msg)
    snprintf(msg + n, sizeof msg - (size_t)n, " (%s:%d)", file, line);
  fprintf(log_file, "%s\n", msg);
  errno = saved;
}
